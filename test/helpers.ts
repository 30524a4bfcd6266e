import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after } from 'node:test';

/**
 * A test file whose process is still alive this long after its last test has left something open (a watcher, a
 * server, a child) that would keep `node --test` waiting for it forever, and CI with it. It fails instead, naming
 * what is open. The time counts from before the file's own top-level `after` hooks (this one is registered
 * first), so it leaves them room: stopping the Ceph cluster may take up to 60 s (ceph.ts).
 */
const EXIT_GUARD_MS = 120_000;
after(() => {
  setTimeout(() => {
    process.stderr.write(`this test file left handles open ${EXIT_GUARD_MS / 1000} s after its last test (${process.getActiveResourcesInfo().join(', ') || 'native ones'}): failed\n`);
    process.exit(1);
  }, EXIT_GUARD_MS).unref();
});

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const CLI = path.join(ROOT, 'dist/bin/replica.js');

/** A fresh temp directory, removed by the returned cleanup (after unmounting anything mounted in it). */
export function tmpDir(prefix = 'replica-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function rmTree(dir: string): void {
  for (const line of fs.readFileSync('/proc/self/mounts', 'utf8').split('\n').reverse()) {
    const mp = line.split(' ')[1];
    if (mp && (mp === dir || mp.startsWith(dir + '/'))) try { execFileSync('umount', ['-l', mp]); } catch { /* already gone */ }
  }
  fs.rmSync(dir, { recursive: true, force: true });
}

export interface CliResult { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

/** Run the built CLI to completion. */
export function cli(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('error', reject);
    child.on('close', (code, signal) => { clearTimeout(timer); resolve({ code, signal, stdout, stderr }); });
  });
}

/** Start the CLI without waiting (for kill tests). */
export function cliSpawn(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): ChildProcess {
  return spawn(process.execPath, [CLI, ...args], { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'ignore', 'ignore'] });
}

/** Parse the JSON on stdout of a `--json` run. */
export function json<T = any>(r: CliResult): T {
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`not JSON (exit ${r.code}): ${r.stdout}\nstderr: ${r.stderr}`);
  }
}

/** Write a config file; returns its path. */
export function writeConfig(dir: string, config: Record<string, unknown>, name = 'replica.config.json'): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}

/** Set a file's mtime into the past so it counts as settled at once. */
export function age(file: string, seconds = 3600): void {
  const t = new Date(Date.now() - seconds * 1000);
  fs.utimesSync(file, t, t);
}

/** Names that break naive shell or path handling. */
export const ODD_NAMES = [
  'with space.dat', "quote'single.dat", 'quote"double.dat', 'new\nline.dat', 'tab\there.dat', '$(touch pwned).dat',
  '`backtick`.dat', 'ünïcødé-ß-日本語.dat', 'emoji-🔭.dat', '-leading-dash.dat', '.hidden.dat', 'back\\slash.dat',
  'semi;colon&amp.dat', '*star?.dat', 'x'.repeat(251) + '.dat', // 255 bytes: the longest name ext4 allows
];

/** Build a tree of `n` files (0 B to `maxBytes`, some odd names, nested dirs) under `dir`, all aged. */
export function makeTree(dir: string, n: number, opts: { maxBytes?: number; seed?: number; aged?: boolean } = {}): string[] {
  const files: string[] = [];
  let seed = opts.seed ?? 1;
  const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  const maxBytes = opts.maxBytes ?? 64 * 1024;
  for (let i = 0; i < n; i++) {
    const sub = path.join(dir, `d${i % 7}`, i % 3 ? `e${i % 5}` : '');
    fs.mkdirSync(sub, { recursive: true });
    const name = i < ODD_NAMES.length ? ODD_NAMES[i] : `f${i}.bin`;
    const size = i === 0 ? 0 : i % 50 === 1 ? Math.floor(maxBytes * 8) : Math.floor(rand() * maxBytes);
    const file = path.join(sub, name);
    fs.writeFileSync(file, crypto.randomBytes(size));
    if (opts.aged !== false) age(file);
    files.push(file);
  }
  return files;
}

/** Every regular file and symlink under `dir`, relative, with content hash or link text (temp files included). */
export function treeDigest(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string, rel: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const abs = path.join(d, e.name);
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(abs, r);
      else if (e.isSymbolicLink()) out.set(r, `link:${fs.readlinkSync(abs)}`);
      else if (e.isFile()) out.set(r, crypto.createHash('sha256').update(fs.readFileSync(abs)).digest('hex'));
    }
  };
  if (fs.existsSync(dir)) walk(dir, '');
  return out;
}

/** A replica temp file's path (`.replica-<hex>.tmp`, layout.ts tempName), relative or not. */
export const TEMP_FILE = /(^|\/)\.replica-[0-9a-f]+\.tmp$/;

/**
 * Every file under a target with a final (non-temp) name must equal its source byte for byte: `source` is the
 * source tree's treeDigest. Returns how many files have a final name there.
 */
export function assertNoPartialFiles(targetHostRoot: string, source: Map<string, string>, context = ''): number {
  let whole = 0;
  for (const [rel, digest] of treeDigest(targetHostRoot)) {
    if (TEMP_FILE.test(rel)) continue;
    assert.equal(digest, source.get(rel), `${context}partial or wrong file under a final name: ${rel}`);
    whole++;
  }
  return whole;
}

/** Where `source/rel` lands on a local target base for `host`. */
export const onTarget = (base: string, host: string, srcRoot: string, rel = ''): string => path.join(base, host, srcRoot, rel);

/** Can this process mount filesystems (root in CI)? Fault tests need it and fail loudly without it. */
export function mountTmpfs(dir: string, size: string, extra = ''): void {
  fs.mkdirSync(dir, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}${extra ? ',' + extra : ''}`, 'tmpfs', dir]);
}

/** Poll `fn` until it returns truthy or `ms` passes. */
export async function until<T>(fn: () => T | Promise<T>, ms = 20_000, step = 50): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, step));
  }
}

/** The pids of a process's children (from /proc: children of every thread). */
export function children(pid: number): number[] {
  let tasks: string[];
  try { tasks = fs.readdirSync(`/proc/${pid}/task`); } catch { return []; }
  return tasks.flatMap((t) => {
    try { return fs.readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').split(' ').filter(Boolean).map(Number); } catch { return []; }
  });
}

/** True while a process exists and is not a zombie. */
export function alive(pid: number): boolean {
  try { return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8')); } catch { return false; }
}

/** Wait for a child to exit (at once if it already has); resolves to its exit code or signal. */
export function exited(child: ChildProcess): Promise<number | NodeJS.Signals | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode ?? child.signalCode);
  return new Promise((r) => child.once('exit', (code, sig) => r(code ?? sig)));
}

/**
 * A put() source for an existing file (tests of single targets): opened now, read by descriptor, with the
 * file's size and mode; `meta` adds mtime and the hash its bytes must have. The descriptor stays open for the
 * test process's life.
 */
export async function srcOf(file: string, meta: { mtimeMs?: number; hash?: string } = {}) {
  const { FdSource } = await import('../dist/lib/targets/source.js');
  const fd = fs.openSync(file, 'r');
  const st = fs.fstatSync(fd);
  return new FdSource(fd, st.size, st.mode, meta.mtimeMs, meta.hash, file);
}

/**
 * A FUSE passthrough (test/fixtures/blockfs.py) whose writes block forever while BACKING/.block exists (reads too
 * with .blockread), and whose reads past `eioFrom(offset)` fail with EIO (a bad sector).
 */
export async function blockingMount(dir: string): Promise<{ mnt: string; block: () => void; blockReads: () => void; unblock: () => void; eioFrom: (offset: number) => void; stop: () => Promise<void> }> {
  const backing = path.join(dir, 'backing');
  const mnt = path.join(dir, 'stuck');
  fs.mkdirSync(backing);
  fs.mkdirSync(mnt);
  const fuse: ChildProcess = spawn('/usr/bin/python3', [path.join(ROOT, 'test/fixtures/blockfs.py'), backing, mnt], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  fuse.stderr!.on('data', (d) => (err += d));
  await until(() => fs.readFileSync('/proc/self/mounts', 'utf8').includes(` ${mnt} fuse`) || (fuse.exitCode !== null && Promise.reject(new Error(`blockfs failed: ${err}`))), 15_000);
  return {
    mnt,
    block: () => fs.writeFileSync(path.join(backing, '.block'), ''),
    blockReads: () => fs.writeFileSync(path.join(backing, '.blockread'), ''),
    unblock: () => fs.rmSync(path.join(backing, '.block'), { force: true }),
    eioFrom: (offset: number) => fs.writeFileSync(path.join(backing, '.eio-from'), String(offset)),
    stop: async () => {
      fs.rmSync(path.join(backing, '.block'), { force: true });
      fs.rmSync(path.join(backing, '.blockread'), { force: true });
      fs.rmSync(path.join(backing, '.eio-from'), { force: true });
      // abort the FUSE connection: processes still waiting on the sleeping daemon are released at once
      try {
        if (!fs.existsSync('/sys/fs/fuse/connections/.') || fs.readdirSync('/sys/fs/fuse/connections').length === 0) {
          execFileSync('mount', ['-t', 'fusectl', 'none', '/sys/fs/fuse/connections'], { stdio: 'ignore' });
        }
        const dev = fs.statSync(mnt).dev;
        const minor = (dev & 0xff) | ((dev >> 12) & 0xfff00);
        fs.writeFileSync(`/sys/fs/fuse/connections/${minor}/abort`, '1');
      } catch { /* no fusectl: the daemon's death ends them */ }
      try { execFileSync('umount', ['-l', mnt]); } catch { /* gone */ }
      fuse.kill('SIGKILL');
      await exited(fuse);
    },
  };
}
