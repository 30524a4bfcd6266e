import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { EXTRA_CA_ENV } from '../lib/extraCa.js';

/** Set in the worker process, so it does not supervise itself again. */
export const SUPERVISED_ENV = 'REPLICA_SUPERVISED';
/** libuv thread-pool threads in the worker: a hung disk keeps one per stuck call; the rest keep working. */
const POOL_THREADS = '64';
/** After the worker reported its exit code, how long it may take to exit before it is killed. */
const EXIT_GRACE_MS = 2000;

/**
 * Run this command in a worker process and exit with the exit code the worker reports. Why: a call stuck in
 * the kernel on a hung disk (a dead NFS server, a blocked FUSE mount) holds a libuv thread-pool thread, and
 * Node cannot exit while one is stuck (libuv joins its threads at exit): the worker says which code it
 * exits with just before exiting, and if it then cannot exit it is killed (SIGKILL ends a process waiting on
 * NFS or FUSE). The worker also gets a big thread pool (UV_THREADPOOL_SIZE is read only at process start).
 * SIGINT, SIGTERM and SIGHUP are passed on.
 */
export function supervise(script: string, argv: string[]): void {
  // A terminal, a file or /dev/null is handed over as it is (progress and colours on a terminal; a file's bytes
  // need no copy): nobody waits for the end of those. A pipe or a socket (cron, journald) is copied through
  // here, so a worker stuck in the kernel never holds the caller's pipe open (cron waits for its end).
  const out = (fd: number) => (handOver(fd) ? 'inherit' as const : 'pipe' as const);
  // signals that arrive before the worker has its handlers are held and passed on once it says it has them
  let ready = false;
  const held: NodeJS.Signals[] = [];
  // handlers first: from the moment the worker exists, a signal is never lost nor kills us uncleanly
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => (ready ? child.kill(sig) : held.push(sig)));
  const child = spawn(process.execPath, [...process.execArgv, script, ...argv], {
    stdio: ['ignore', out(1), out(2), 'ipc'],
    env: workerEnv(process.env),
  });
  // a reader that went away (`| head`) is not an error of ours: what is left is dropped, as any filter does
  for (const s of [process.stdout, process.stderr]) s.on('error', () => undefined);
  child.stdout?.pipe(process.stdout);
  child.stderr?.pipe(process.stderr);
  let reported: number | undefined;
  child.on('message', (m: { exit?: unknown; ready?: unknown }) => {
    if (m?.ready === true) {
      ready = true;
      for (const sig of held.splice(0)) child.kill(sig);
      return;
    }
    if (typeof m?.exit !== 'number') return;
    reported = m.exit;
    setTimeout(() => {
      // still not gone: a thread waits in the kernel on a hung disk. Kill it and do not wait for it: a process
      // waiting on a FUSE request its daemon already took cannot end before the daemon answers. (It wrote
      // all its output before it reported: what is in the pipe is copied out first, for a while.)
      child.kill('SIGKILL');
      void exitAfterOutput(reported!, EXIT_GRACE_MS);
    }, EXIT_GRACE_MS).unref();
  });
  child.on('close', (code, signal) => { // 'close': after the last of its output was copied
    void exitAfterOutput(reported ?? code ?? 128 + (signal ? os.constants.signals[signal] : 1));
  });
  child.on('error', (err) => {
    process.stderr.write(`replica: cannot start: ${err.message}\n`);
    process.exit(1);
  });
}

/**
 * Whether the output descriptor `fd` can be the worker's own: a regular file or a character device (a
 * terminal, /dev/null), whose end nobody waits for. Not a pipe nor a socket, nor anything fstat cannot say.
 */
export function handOver(fd: number): boolean {
  try {
    const st = fs.fstatSync(fd);
    return st.isFile() || st.isCharacterDevice();
  } catch {
    return false;
  }
}

/**
 * The worker's environment: supervised, a big thread pool, and NODE_EXTRA_CA_CERTS handed over as
 * EXTRA_CA_ENV: Node parses that bundle at every start (~40 ms for Debian's ca-certificates.crt here) and a
 * command that talks no TLS never needs it; the one client that does (S3, s3.ts) adds it to its own agent.
 */
export function workerEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...env, [SUPERVISED_ENV]: '1', UV_THREADPOOL_SIZE: env.UV_THREADPOOL_SIZE ?? POOL_THREADS };
  if (env.NODE_EXTRA_CA_CERTS) {
    out[EXTRA_CA_ENV] = env.NODE_EXTRA_CA_CERTS;
    delete out.NODE_EXTRA_CA_CERTS;
  }
  return out;
}

/** In the worker: its signal handlers are installed; the supervisor may pass signals on now. */
export function workerReady(): void {
  if (process.send && process.connected) process.send({ ready: true });
}

/**
 * In the worker: when the supervisor dies without telling us (kill -9 of it), die as abruptly: a worker that
 * outlived a killed replica would go on writing while the next run starts.
 */
export function dieWithSupervisor(): void {
  if (!process.send) return;
  process.on('disconnect', () => { if (!exiting) process.kill(process.pid, 'SIGKILL'); });
  // killed while we were still loading: the channel is gone already and 'disconnect' will not come again
  if (!process.connected) process.kill(process.pid, 'SIGKILL');
}
let exiting = false;

/**
 * Run the CLI (`main`, main.ts) in this process, the supervised worker or an unsupervised command, and exit
 * with its code. The exit is explicit: a stuck thread-pool call must not keep the process alive (the supervisor
 * kills it if even exiting hangs), and chokidar can leave an fs.watch handle open after watch-limit errors.
 */
export function runCli(main: (argv: string[]) => Promise<number>, argv: string[]): void {
  dieWithSupervisor();
  for (const s of [process.stdout, process.stderr]) s.on('error', () => undefined); // `| head` went away: not our error
  void main(argv).then(exitWith);
}

/**
 * In the worker: tell the supervisor the exit code, then exit. Where the supervisor is absent (tests that
 * import the CLI, REPLICA_SUPERVISED set by hand) this is a plain exit.
 */
export async function exitWith(code: number): Promise<void> {
  exiting = true;
  await outputWritten();
  if (process.send && process.connected) {
    process.send({ exit: code }, () => process.exit(code));
  } else {
    process.exit(code);
  }
}

/**
 * Resolves when everything written to stdout and stderr has left the process. Writes to a pipe are
 * asynchronous in Node: process.exit() right after them drops what is still queued (`replica restore ... |
 * wc -l` saw 2,000 of 10,000 lines). An empty write's callback runs after every write queued before it; a
 * reader that went away (EPIPE) ends the wait too. `capMs`: give up after that long.
 */
export function outputWritten(capMs?: number): Promise<void> {
  const flushed = (s: NodeJS.WriteStream) => new Promise<void>((resolve) => {
    if (s.writableLength === 0 || s.destroyed) return resolve();
    s.write('', () => resolve());
  });
  const all = Promise.all([flushed(process.stdout), flushed(process.stderr)]).then(() => undefined);
  return capMs === undefined ? all : Promise.race([all, new Promise<void>((r) => setTimeout(r, capMs).unref())]);
}

async function exitAfterOutput(code: number, capMs?: number): Promise<void> {
  await outputWritten(capMs);
  process.exit(code);
}
