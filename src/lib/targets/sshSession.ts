import fs from 'node:fs';
import os from 'node:os';
import crypto from 'node:crypto';
import { posix } from 'node:path';
import type { Readable } from 'node:stream';
import { Client, type SFTPWrapper } from 'ssh2';
import { type ProtocolCodes, SourceError, TargetError, opOrigin, toTargetError } from '../errors.js';

export interface SshOptions {
  identity?: string;
  knownHosts?: string;
  /** strict host-key checking against known_hosts (default true: no trust on first use) */
  hostKeyCheck?: boolean;
  /** connect and per-command timeout; keepalives detect a hung server within about this long too */
  commandTimeoutMs: number;
  /** putMany sends this many files or more through one remote `tar -x` (default 256; tests lower it) */
  tarMinFiles?: number;
  /** a tar batch of this many files or more is also renamed into place by its remote command (default 256; tests change it) */
  renamePassMinFiles?: number;
}

export interface SshRemote { user: string; host: string; port: number; path: string }

/** Parse `ssh://[user@]host[:port]/path`. */
export function parseSshUrl(url: string): SshRemote {
  const u = new URL(url);
  return { user: decodeURIComponent(u.username) || os.userInfo().username, host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 22), path: decodeURIComponent(u.pathname) };
}

/** Is `key` (base64) the host key of `host:port` in a known_hosts file? Hashed (|1|salt|hmac) entries too. */
export function knownHostKey(text: string, host: string, port: number, key: string): boolean {
  const name = port === 22 ? host : `[${host}]:${port}`;
  return text.split('\n').some((line) => {
    const [hosts, , k] = line.trim().split(/\s+/);
    if (!hosts || hosts.startsWith('#') || k !== key) return false;
    return hosts.split(',').some((h) => {
      if (!h.startsWith('|1|')) return h === name;
      const [, , salt, hash] = h.split('|');
      return crypto.createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64') === hash;
    });
  });
}

/** SFTP status codes: 2 no such file, 3 permission denied. */
const SFTP_CODES: ProtocolCodes = { 2: 'missing', 3: 'EACCES' };

/** Classify an error of an ssh target's operation: SFTP status codes, else a failed connection (or a client timeout). */
export function sshError(target: string, err: unknown, op: string, rel: string): TargetError {
  if (err instanceof TargetError) return err;
  const e = err as { code?: number | string; level?: string; message?: string };
  const origin = opOrigin(target, op, rel);
  if (err instanceof SourceError || typeof e.code === 'number' || e.code === 'ENOENT') return toTargetError(err, target, origin, SFTP_CODES);
  const cls = e.level === 'client-timeout' || /timed out/i.test(e.message ?? '') ? 'timeout' : 'unreachable';
  return new TargetError(`${origin}: ${e.message ?? String(err)}`, { target, errorClass: cls, cause: err });
}

/**
 * One connection. `dead` rejects when it closes: ssh2 never calls back SFTP requests still in flight on a
 * connection that died (a keepalive timeout on a stopped server), so every operation races against it.
 * `rttMs`: one SFTP round trip, timed as the connection opened (how far away the server is).
 */
export interface Session { client: Client; sftp: SFTPWrapper; dead: Promise<never>; rttMs: number }

/** A command's stdin in the server's buffer at most (bytes) when the server is near: see limitStdinWindow. */
const NEAR_STDIN_WINDOW = 256 << 10;
/** What a 1 Gb/s link carries per millisecond (bytes): a link's round trip needs this much in flight per ms. */
const LINK_BYTES_PER_MS = 125_000;

/**
 * Lower the window ssh2 may fill with a command's stdin to what a 1 Gb/s link needs in flight for one round
 * trip, and at least NEAR_STDIN_WINDOW, when the server is OpenSSH. ssh2 sends as much as the server granted
 * (`outgoing.window`, its record of that, not in its typings; OpenSSH grants 2 MiB). OpenSSH's sshd (9.2
 * here; since 8.9) keeps what its command has not read yet in a buffer that grows by what each packet needs
 * (32 KiB), copying itself each time: filled 2 MiB deep at once by a client on the same machine, it spent
 * ~1.2 s copying (memmove, page faults: perf) while the remote tar waited for input. A tar stream of
 * 10k x 4 KiB took 2.8-3.5 s, and 1.7-1.9 s with 256 KiB in flight. A far server's bytes in flight are on
 * the network, not in that buffer: it keeps the whole window. Sending less than granted is always allowed;
 * OpenSSH grants more once 3 packets were read, and the limit is 8 packets or more. Other servers keep the
 * whole window: a rule that grants more only once half of it was used would never grant more. Returns
 * whether the window was lowered.
 */
export function limitStdinWindow(serverSoftware: string | undefined, ch: unknown, rttMs: number): boolean {
  const out = (ch as { outgoing?: { window?: unknown; packetSize?: unknown } }).outgoing;
  if (typeof out?.window !== 'number' || !serverSoftware?.startsWith('OpenSSH')) return false;
  const packet = typeof out.packetSize === 'number' ? out.packetSize : 32 << 10;
  const limit = Math.max(NEAR_STDIN_WINDOW, 8 * packet, Math.ceil(rttMs * LINK_BYTES_PER_MS));
  if (out.window <= limit) return false;
  out.window = limit;
  return true;
}

/**
 * The connection of one ssh target (ssh2), opened on first use and again after it drops: strict host-key
 * checking, keepalives, SFTP requests and fixed remote commands, each raced against the connection's death.
 */
export class SshSession {
  private session?: Promise<Session>;
  private noXxhsum = false;
  /** commands whose stdin window was lowered (limitStdinWindow): tests and debugging */
  stdinWindowsLimited = 0;

  /** `onClose` runs when the connection drops (what the target knew about the server is stale then). */
  constructor(readonly target: string, readonly remote: SshRemote, readonly opts: SshOptions, private readonly onClose: () => void) {}

  connect(): Promise<Session> {
    this.session ??= new Promise((resolve, reject) => {
      const client = new Client();
      const { host, port, user } = this.remote;
      let knownHosts = '';
      if (this.opts.hostKeyCheck !== false) {
        const file = this.opts.knownHosts ?? posix.join(os.homedir(), '.ssh', 'known_hosts');
        try { knownHosts = fs.readFileSync(file, 'utf8'); } catch { /* unknown host: refused below */ }
      }
      let hostKeyRefused = false;
      let lastError: Error | undefined;
      const dead = new Promise<never>((_, die) => client.on('close', () => {
        this.session = undefined;
        this.onClose();
        die(lastError ?? new Error(`connection to ${host}:${port} closed`));
      }));
      dead.catch(() => undefined);
      client.on('ready', () => {
        // SFTP is request/response: with Nagle's algorithm a lone write request waits for a delayed ACK
        // (40 ms on Linux): a paced (bwlimit) stream crawled at 1.6 MB/s on loopback
        client.setNoDelay(true);
        client.sftp((err, sftp) => {
          if (err) return reject(err);
          // one round trip (an error answer is one too): how much a command's stdin may have in flight; raced
          // against the connection's end, since ssh2 never answers a request on a connection that died
          const t0 = performance.now();
          Promise.race([new Promise<void>((answered) => sftp.realpath('.', () => answered())), dead])
            .then(() => resolve({ client, sftp, dead, rttMs: performance.now() - t0 }), reject);
        });
      });
      client.on('error', (err) => {
        lastError = err;
        this.session = undefined;
        reject(hostKeyRefused ? new TargetError(`[${this.target}] ${host}:${port}: host key not in known_hosts (strict host-key checking; add it, or set hostKeyCheck: false)`, { target: this.target, errorClass: 'unreachable', permanent: true, stage: 'auth', cause: err }) : err);
      });
      try {
        client.connect({
          host, port, username: user,
          privateKey: this.opts.identity ? fs.readFileSync(this.opts.identity) : undefined,
          agent: this.opts.identity ? undefined : process.env.SSH_AUTH_SOCK,
          readyTimeout: this.opts.commandTimeoutMs,
          keepaliveInterval: Math.max(250, Math.min(5000, Math.floor(this.opts.commandTimeoutMs / 3))),
          keepaliveCountMax: 3,
          hostVerifier: (key: Buffer) => {
            const ok = this.opts.hostKeyCheck === false || knownHostKey(knownHosts, host, port, key.toString('base64'));
            hostKeyRefused = !ok;
            return ok;
          },
        });
      } catch (err) {
        this.session = undefined;
        reject(err);
      }
    });
    return this.session;
  }

  /** Run an SFTP call; the connection is opened (or re-opened) as needed. */
  async sftp<T>(fn: (s: SFTPWrapper, cb: (err: Error | null | undefined, v?: T) => void) => void): Promise<T> {
    const { sftp, dead } = await this.connect();
    return Promise.race([dead, new Promise<T>((resolve, reject) => fn(sftp, (err, v) => (err ? reject(err) : resolve(v as T))))]);
  }

  /**
   * Run a fixed command (never built from a file name) with `stdin`: a string, or a function that writes it
   * (with the channel's flow control: `write` waits while the server is behind, and says false once the channel
   * has closed: the command exited, and what the function would still write goes nowhere); the channel's input
   * is ended when it returns, and closed when it throws (its error is the answer). Resolves to [exit code, stdout].
   */
  async exec(cmd: string, stdin: string | ((write: (chunk: Buffer, sent?: () => void) => Promise<boolean>) => Promise<void>), signal?: AbortSignal): Promise<[number, string]> {
    const { client, dead, rttMs } = await this.connect();
    return Promise.race([dead, new Promise<[number, string]>((resolve, reject) => {
      client.exec(cmd, (err, ch) => {
        if (err) return reject(err);
        // ssh2 keeps the server's software name from its ident line (not in its typings)
        if (limitStdinWindow((client as unknown as { _remoteVer?: string })._remoteVer, ch, rttMs)) this.stdinWindowsLimited++;
        // the caller's deadline (wrappers.ts) aborts: close the channel so the server stops too
        const onAbort = () => { ch.close(); reject(signal!.reason); };
        signal?.addEventListener('abort', onAbort, { once: true });
        const out: Buffer[] = [];
        let closed = false;
        let wake: (() => void) | undefined;
        ch.on('data', (d: Buffer) => out.push(d));
        ch.on('drain', () => wake?.());
        ch.stderr.resume();
        ch.on('close', (code: number) => {
          closed = true;
          wake?.();
          signal?.removeEventListener('abort', onAbort);
          resolve([code ?? 255, Buffer.concat(out).toString('utf8')]);
        });
        if (typeof stdin === 'string') return void ch.end(stdin);
        // `sent`: called once the channel holds no more of `chunk` (ssh2 keeps the part its window has no room for)
        const write = async (chunk: Buffer, sent?: () => void) => {
          // a channel closed early (the command exited) answers with its exit code: the rest goes nowhere
          if (!closed && !ch.write(chunk, sent && ((err?: Error | null) => { if (!err) sent(); }))) await new Promise<void>((r) => { wake = r; });
          wake = undefined;
          return !closed;
        };
        stdin(write).then(() => ch.end(), (e: unknown) => { ch.close(); reject(e); });
      });
    })]);
  }

  /**
   * `xxhsum -H1` of `files` (absolute) on the server (after `after` succeeded there), the paths NUL-separated
   * on stdin (no shell ever sees them). xxhsum prints `<hash>  <path>` in input order and does not escape
   * names, so the output is matched path by path: the hashes in order, or undefined unless every file was
   * hashed and every line matched (or when the server has no xxhsum: then never asked again; with `after`, an
   * exit 127 may also be a missing `sync`, which the caller's own `sync` then reports).
   */
  async xxhsum(files: string[], signal?: AbortSignal, after?: 'sync'): Promise<string[] | undefined> {
    if (this.noXxhsum) return undefined;
    // after `sync &&`: hashed only once the server's sync succeeded (the caller runs `sync` alone when this fails)
    const [code, text] = await this.exec(`${after ? `${after} && ` : ''}xargs -0 -r xxhsum -H1 -q --`, files.map((f) => `${f}\0`).join(''), signal);
    if (code === 127) this.noXxhsum = true; // no xxhsum there: read back from now on
    if (code !== 0) return undefined;
    const out: string[] = [];
    let pos = 0;
    for (const f of files) {
      const line = `  ${f}\n`;
      if (!/^[0-9a-f]{16}$/.test(text.slice(pos, pos + 16)) || text.slice(pos + 16, pos + 16 + line.length) !== line) return undefined;
      out.push(text.slice(pos, pos + 16));
      pos += 16 + line.length;
    }
    return pos === text.length ? out : undefined;
  }

  /** Bytes free to us in `dir` on the server (statvfs@openssh.com), or undefined if it cannot tell. */
  async freeBytes(dir: string): Promise<number | undefined> {
    const vfs = await this.sftp<{ f_bavail: number; f_frsize: number }>((s, cb) => s.ext_openssh_statvfs(dir, cb as never)).catch(() => undefined);
    return vfs && vfs.f_bavail * vfs.f_frsize;
  }

  /** The bytes of `file` over SFTP (the caller has checked that it exists). */
  async readStream(file: string): Promise<Readable> {
    const { sftp, dead } = await this.connect();
    const stream = sftp.createReadStream(file);
    dead.catch((err: Error) => stream.destroy(err)); // a dead connection never ends the stream by itself
    // the stream closes its handle after its last byte was read: a connection closed before the server answered
    // that makes the stream emit an error after its reader is gone ("No response from server"), which nobody
    // would hear (an uncaught exception: found by a test that closed the target right after a read-back)
    stream.on('error', () => undefined);
    return stream;
  }

  /** End the connection; resolves once it is closed (or after 2 s: a server that does not answer is left to its keepalive). */
  async close(): Promise<void> {
    const s = this.session;
    this.session = undefined;
    const open = s && await s.catch(() => undefined);
    if (!open) return;
    const closed = new Promise<void>((resolve) => {
      const t = setTimeout(resolve, 2000);
      open.client.once('close', () => { clearTimeout(t); resolve(); });
    });
    open.client.end();
    await closed;
  }
}
