import fs from 'node:fs';
import os from 'node:os';
import crypto from 'node:crypto';
import { posix } from 'node:path';
import type { Readable } from 'node:stream';
import { Client, type SFTPWrapper } from 'ssh2';
import { type ProtocolCodes, SourceError, TargetError, missingError, opOrigin, toTargetError } from '../errors.js';
import { hashStream } from '../hash/xxh64.js';
import { raceSignal } from '../queue/deadline.js';
import type { TargetConfig } from '../config/schema.js';
import type { TargetKindModule } from './kind.js';
import { STORE_DIR, checkRelPath, isReserved, sweepTemps, tempName } from './layout.js';
import type { PutSource } from './source.js';
import {
  type CheckReport, type Links, type PutOptions, type RandomRead, type ReadBack, type ReadBackOptions, type RemoteHash, type Target,
  type TempFiles, readBackEach,
} from './target.js';

export interface SshOptions {
  identity?: string;
  knownHosts?: string;
  /** strict host-key checking against known_hosts (default true: no trust on first use) */
  hostKeyCheck?: boolean;
  /** connect and per-command timeout; keepalives detect a hung server within about this long too */
  commandTimeoutMs: number;
}

/** Parse `ssh://[user@]host[:port]/path`. */
export function parseSshUrl(url: string): { user: string; host: string; port: number; path: string } {
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

/**
 * One connection. `dead` rejects when it closes: ssh2 never calls back SFTP requests still in flight on a
 * connection that died (a keepalive timeout on a stopped server), so every operation races against it.
 */
interface Session { client: Client; sftp: SFTPWrapper; dead: Promise<never> }
/** Copies larger than this are hashed on the server (xxhsum), smaller ones read back over SFTP. */
const REMOTE_HASH_MIN = 16 << 20;
/** Files up to this size are read into memory and written with one pipelined burst of SFTP requests. */
const SMALL_PUT = 1 << 20;
/** A write this long always fits one SFTP request (the protocol's minimum packet is 32768 bytes). */
const ONE_WRITE = 30_000;
/** hashMany() runs one remote xxhsum for at least this many files (one command costs ~100 ms). */
const HASH_MANY_MIN = 32;
/** SFTP write requests in flight per big put (fastPut's default is 64; 32 KiB each) */
const WINDOW = 32;

/**
 * A directory on another machine over SSH (ssh2: SFTP for data, one connection reused across files).
 * put() writes `.replica-<n>.tmp` and renames it into place with posix-rename@openssh.com; sync() runs
 * `sync` on the server once per batch; hash() runs `xxhsum -H1` there, with the path on stdin (never in a
 * shell string), or reads the copy back when the server has no xxhsum. Strict host-key checking.
 */
export class SshTarget implements Target, RandomRead, Links, RemoteHash, TempFiles {
  private session?: Promise<Session>;
  /**
   * directories checked (made, no symlink on the way) in this session since the last sync: one promise each,
   * so concurrent puts share one preparation
   */
  private dirs = new Map<string, Promise<void>>();
  /** directories whose stale temp files this session removed */
  private readonly swept = new Set<string>();
  private readonly remote: ReturnType<typeof parseSshUrl>;
  private noXxhsum = false;

  constructor(readonly name: string, readonly url: string, readonly opts: SshOptions) {
    this.remote = parseSshUrl(url);
  }

  private fail(err: unknown, op: string, rel: string): TargetError {
    if (err instanceof TargetError) return err;
    const e = err as { code?: number | string; level?: string; message?: string };
    const origin = opOrigin(this.name, op, rel);
    if (err instanceof SourceError || typeof e.code === 'number' || e.code === 'ENOENT') return toTargetError(err, this.name, origin, SFTP_CODES);
    // no status code: the connection failed (or a client timeout)
    const cls = e.level === 'client-timeout' || /timed out/i.test(e.message ?? '') ? 'timeout' : 'unreachable';
    return new TargetError(`${origin}: ${e.message ?? String(err)}`, { target: this.name, errorClass: cls, cause: err });
  }

  private connect(): Promise<Session> {
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
        this.dirs.clear();
        die(lastError ?? new Error(`connection to ${host}:${port} closed`));
      }));
      dead.catch(() => undefined);
      client.on('ready', () => {
        // SFTP is request/response: with Nagle's algorithm a lone write request waits for a delayed ACK
        // (40 ms on Linux): a paced (bwlimit) stream crawled at 1.6 MB/s on loopback
        client.setNoDelay(true);
        client.sftp((err, sftp) => (err ? reject(err) : resolve({ client, sftp, dead })));
      });
      client.on('error', (err) => {
        lastError = err;
        this.session = undefined;
        reject(hostKeyRefused ? new TargetError(`[${this.name}] ${host}:${port}: host key not in known_hosts (strict host-key checking; add it, or set hostKeyCheck: false)`, { target: this.name, errorClass: 'unreachable', permanent: true, stage: 'auth', cause: err }) : err);
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
  private async sftp<T>(fn: (s: SFTPWrapper, cb: (err: Error | null | undefined, v?: T) => void) => void): Promise<T> {
    const { sftp, dead } = await this.connect();
    return Promise.race([dead, new Promise<T>((resolve, reject) => fn(sftp, (err, v) => (err ? reject(err) : resolve(v as T))))]);
  }

  /** A temp name beside `dest`: short and fixed in shape (layout.ts), unique per process and put. */
  private tempPath(dest: string): string {
    return posix.join(posix.dirname(dest), tempName());
  }

  private abs(rel: string): string {
    checkRelPath(this.name, rel);
    return posix.join(this.remote.path, rel);
  }

  /**
   * Make `dir` a real directory with no symlink between the base and it (a link where a directory must be is
   * replaced; a link at `<host>` or `.replica/<host>` refuses the write), creating what is missing with the
   * mode `dirMode` gives (else 0700); on its first use in this session remove our stale temp files there.
   * Single flight: a second put into the same new directory waits for this, or the cleanup could delete its temp.
   */
  private prepareDir(dir: string, dirMode?: (relDir: string) => number | undefined): Promise<void> {
    let p = this.dirs.get(dir);
    if (!p) {
      p = (async () => {
        const base = this.remote.path.replace(/\/+$/, '') || '/';
        if (dir === base || !dir.startsWith(base === '/' ? '/' : base + '/')) {
          await this.mkdirs(dir); // the base itself (and above it) is the admin's: made as it is
        } else {
          const parent = posix.dirname(dir);
          await this.prepareDir(parent, dirMode);
          const rel = posix.relative(base, dir);
          await this.ensureDir(dir, parent === base || posix.relative(base, parent) === STORE_DIR, dirMode?.(rel));
        }
        if (!this.swept.has(dir)) {
          try {
            await this.sweep([dir]);
            this.swept.add(dir);
          } catch { /* the put will say why */ }
        }
      })();
      this.dirs.set(dir, p);
      p.catch(() => this.dirs.delete(dir));
    }
    return p;
  }

  /** mkdir -p of the base: components that exist are left as they are. */
  private async mkdirs(dir: string): Promise<void> {
    const parts = dir.split('/').filter(Boolean);
    // the first mkdir that failed for a reason other than "exists" (OpenSSH: code 4), e.g. permission
    let mkdirErr: unknown;
    for (let i = 1; i <= parts.length; i++) {
      const d = `/${parts.slice(0, i).join('/')}`;
      try { await this.sftp<void>((s, cb) => s.mkdir(d, cb)); } catch (err) { if ((err as { code?: number }).code !== 4) mkdirErr ??= err; }
    }
    try {
      await this.sftp((s, cb) => s.stat(dir, cb));
    } catch (err) {
      // the directory is not there: say why it could not be made (permission denied), not "no such file"
      throw (err as { code?: number }).code === 2 && mkdirErr !== undefined ? mkdirErr : err;
    }
  }

  /** One component below the base: a directory stays, a missing one is made, a symlink is replaced (or refused at the top). */
  private async ensureDir(dir: string, top: boolean, mode: number | undefined): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      let st: { isDirectory(): boolean; isSymbolicLink(): boolean } | undefined;
      try {
        st = await this.sftp((s, cb) => s.lstat(dir, cb));
      } catch (err) {
        if ((err as { code?: number }).code !== 2) throw err;
      }
      if (st?.isDirectory()) return;
      if (st?.isSymbolicLink()) {
        if (top) throw new TargetError(`[${this.name}] ${dir} is a symlink on the server: refusing to write through it (make it a real directory)`, { target: this.name, errorClass: 'EACCES', permanent: true });
        await this.sftp<void>((s, cb) => s.unlink(dir, cb)); // a link we recreated from a source that is now a directory
      } else if (st) {
        throw new TargetError(`[${this.name}] ${dir} exists on the server and is not a directory`, { target: this.name, errorClass: 'other', permanent: true });
      }
      try {
        await this.sftp<void>((s, cb) => s.mkdir(dir, { mode: mode ?? 0o700 }, cb));
        if (mode !== undefined) await this.sftp<void>((s, cb) => s.chmod(dir, mode, cb)); // the server's umask cuts mkdir's mode
        return;
      } catch (err) {
        if ((err as { code?: number }).code !== 4 || attempt > 2) throw err;
      }
    }
  }

  /** Remove stale temp files (of killed runs; never this session's own) in these directories. */
  async removeTemps(relDirs: string[]): Promise<number> {
    try {
      return await this.sweep(relDirs.map((rel) => this.abs(rel)));
    } catch (err) {
      throw this.fail(err, 'removeTemps', relDirs.join(' '));
    }
  }

  /** Remove stale temp files in these (absolute) directories on the server. */
  private sweep(dirs: string[]): Promise<number> {
    return sweepTemps(dirs, async (dir) => {
      try {
        return (await this.sftp<{ filename: string }[]>((s, cb) => s.readdir(dir, cb))).map((f) => f.filename);
      } catch (err) {
        if ((err as { code?: number }).code === 2) return undefined;
        throw err;
      }
    }, (dir, name) => this.sftp<void>((s, cb) => s.unlink(posix.join(dir, name), cb)).catch(() => undefined));
  }

  /**
   * Write a stream to an open handle with up to `WINDOW` SFTP write requests in flight (what fastPut does,
   * but in order: the source hashes its bytes as they are read, and errors before its last chunk when they
   * are not the settled content, so the handle never holds all of a bad copy).
   */
  private async writeStream(handle: Buffer, stream: Readable, maxLen: number): Promise<void> {
    const inFlight = new Set<Promise<void>>();
    let failed: unknown;
    let pos = 0;
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      for (let off = 0; off < chunk.length; off += maxLen) {
        if (failed !== undefined) throw failed;
        const len = Math.min(maxLen, chunk.length - off);
        const at = pos; // this.sftp() calls back after an await: pos has moved on by then
        const w = this.sftp<void>((s, cb) => s.write(handle, chunk, off, len, at, cb)).catch((e) => { failed ??= e; });
        pos += len;
        inFlight.add(w);
        void w.finally(() => inFlight.delete(w));
        if (inFlight.size >= WINDOW) await Promise.race(inFlight);
      }
    }
    await Promise.all(inFlight);
    if (failed !== undefined) throw failed;
  }

  async put(rel: string, src: PutSource, opts: PutOptions = {}): Promise<void> {
    const dest = this.abs(rel);
    const tmp = this.tempPath(dest);
    try {
      opts.signal?.throwIfAborted();
      await this.prepareDir(posix.dirname(dest), opts.dirMode);
      const { sftp, dead } = await this.connect();
      const work = (async () => {
        const attrs = { mode: src.mode, ...(src.mtimeMs !== undefined ? { atime: Date.now() / 1000, mtime: src.mtimeMs / 1000 } : {}) };
        const maxLen = (sftp as unknown as { _maxWriteLen?: number })._maxWriteLen ?? ONE_WRITE;
        if (src.size <= SMALL_PUT) {
          // three round trips: open; write + attributes + close sent together; rename (after all succeeded).
          // Only when the data goes in ONE write request: ssh2 sends the rest of a longer write from the
          // first part's callback, i.e. after the close, and the server may have given that handle to
          // another file by then (found by a test: a copy corrupted, caught by its read-back).
          const data = src.readAll(); // hashed against the settled hash before anything is sent
          const handle = await this.sftp<Buffer>((s, cb) => s.open(tmp, 'wx', cb));
          const write = () => this.sftp<void>((s, cb) => s.write(handle, data, 0, data.length, 0, cb));
          const finish = () => [this.sftp<void>((s, cb) => s.fsetstat(handle, attrs, cb)), this.sftp<void>((s, cb) => s.close(handle, cb))];
          const results = data.length === 0 ? await Promise.allSettled(finish())
            : data.length <= maxLen ? await Promise.allSettled([write(), ...finish()])
              : [...await Promise.allSettled([write()]), ...await Promise.allSettled(finish())];
          const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
          if (failed) throw failed.reason;
        } else {
          const handle = await this.sftp<Buffer>((s, cb) => s.open(tmp, 'wx', cb));
          let ok = false;
          try {
            await this.writeStream(handle, src.stream(), maxLen);
            ok = true;
          } finally {
            const closing = Promise.allSettled([...(ok ? [this.sftp<void>((s, cb) => s.fsetstat(handle, attrs, cb))] : []), this.sftp<void>((s, cb) => s.close(handle, cb))]);
            const failed = (await closing).find((r): r is PromiseRejectedResult => r.status === 'rejected');
            if (ok && failed) throw failed.reason;
          }
        }
        opts.signal?.throwIfAborted();
        await this.sftp<void>((s, cb) => s.ext_openssh_rename(tmp, dest, cb));
      })();
      await raceSignal(Promise.race([work, dead]), opts.signal);
    } catch (err) {
      await this.sftp<void>((s, cb) => s.unlink(tmp, cb)).catch(() => undefined);
      const e = this.fail(err, 'put', rel);
      if (e.errorClass === 'other') {
        // OpenSSH reports a full disk as a bare "Failure": ask the filesystem whether that is what it was
        const free = await this.freeBytes(posix.dirname(dest));
        if (free !== undefined && free < Math.max(src.size, 1)) throw new TargetError(`${e.message} (no space left on the server)`, { target: this.name, errorClass: 'ENOSPC', cause: err });
      }
      throw e;
    }
  }

  /** Run a fixed command (never built from a file name) with `stdin`; resolves to [exit code, stdout]. */
  private async exec(cmd: string, stdin: string, signal?: AbortSignal): Promise<[number, string]> {
    const { client, dead } = await this.connect();
    return Promise.race([dead, new Promise<[number, string]>((resolve, reject) => {
      client.exec(cmd, (err, ch) => {
        if (err) return reject(err);
        // the caller's deadline (wrappers.ts) aborts: close the channel so the server stops too
        const onAbort = () => { ch.close(); reject(signal!.reason); };
        signal?.addEventListener('abort', onAbort, { once: true });
        const out: Buffer[] = [];
        ch.on('data', (d: Buffer) => out.push(d));
        ch.stderr.resume();
        ch.on('close', (code: number) => { signal?.removeEventListener('abort', onAbort); resolve([code ?? 255, Buffer.concat(out).toString('utf8')]); });
        ch.end(stdin);
      });
    })]);
  }

  async sync(opts: { signal?: AbortSignal } = {}): Promise<void> {
    this.dirs = new Map(); // the next batch checks its directories again
    try {
      const [code] = await this.exec('sync', '', opts.signal);
      if (code !== 0) throw new Error(`sync exited ${code}`);
    } catch (err) {
      throw this.fail(err, 'sync', '.');
    }
  }

  async hash(rel: string, opts: { signal?: AbortSignal } = {}): Promise<string> {
    const file = this.abs(rel);
    try {
      // A remote command costs ~100 ms (sshd starts a session and a shell); reading a small copy back over
      // the open SFTP channel costs far less. Remote xxhsum only where moving the bytes would cost more.
      const st = await this.stat(rel);
      if (!st) throw missingError(this.name, 'hash', rel);
      const remote = st.size > REMOTE_HASH_MIN ? (await this.xxhsum([rel], opts.signal)).get(rel) : undefined;
      return remote ?? (await hashStream(await this.readStream(file), opts.signal)).hash;
    } catch (err) {
      throw this.fail(err, 'hash', rel);
    }
  }

  /**
   * Hash many copies with one remote `xxhsum -H1` (paths NUL-separated on stdin, never in a command line).
   * xxhsum prints `<hash>  <path>` in input order and does not escape names, so the output is matched path
   * by path; the answer is trusted only when xxhsum succeeded for every file and every line matched in
   * order. Otherwise (or for few files, or no xxhsum there) the result is empty and the caller hashes each
   * file itself.
   */
  async hashMany(rels: string[], opts: { signal?: AbortSignal } = {}): Promise<Map<string, string>> {
    if (rels.length < HASH_MANY_MIN) return new Map();
    try {
      return await this.xxhsum(rels, opts.signal);
    } catch (err) {
      throw this.fail(err, 'hash', `${rels.length} files`);
    }
  }

  /** `xxhsum -H1` on the server for `rels` (see hashMany); empty unless every file was hashed and matched. */
  private async xxhsum(rels: string[], signal?: AbortSignal): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    if (this.noXxhsum) return out;
    const files = rels.map((r) => this.abs(r));
    // the paths go on stdin, NUL-terminated: no shell ever sees them
    const [code, text] = await this.exec('xargs -0 -r xxhsum -H1 -q --', files.map((f) => `${f}\0`).join(''), signal);
    if (code === 127) this.noXxhsum = true; // no xxhsum there: read back from now on
    if (code !== 0) return out;
    let pos = 0;
    for (const [i, f] of files.entries()) {
      const line = `  ${f}\n`;
      if (!/^[0-9a-f]{16}$/.test(text.slice(pos, pos + 16)) || text.slice(pos + 16, pos + 16 + line.length) !== line) return new Map();
      out.set(rels[i], text.slice(pos, pos + 16));
      pos += 16 + line.length;
    }
    return pos === text.length ? out : new Map();
  }

  readBack(rels: string[], opts?: ReadBackOptions): Promise<ReadBack> {
    return readBackEach(this, rels, opts);
  }

  async stat(rel: string): Promise<{ size: number; mtimeMs: number } | undefined> {
    try {
      const st = await this.sftp<{ size: number; mtime: number }>((s, cb) => s.lstat(this.abs(rel), cb));
      return { size: st.size, mtimeMs: st.mtime * 1000 };
    } catch (err) {
      const e = this.fail(err, 'stat', rel);
      if (e.errorClass === 'missing') return undefined;
      throw e;
    }
  }

  async *list(prefix: string): AsyncIterable<string> {
    const root = prefix === '' ? this.remote.path : this.abs(prefix.replace(/\/+$/, ''));
    const out: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      let entries: { filename: string; attrs: { mode: number } }[];
      try { entries = await this.sftp((s, cb) => s.readdir(dir, cb)); } catch { return; }
      for (const e of entries) {
        const p = posix.join(dir, e.filename);
        if ((e.attrs.mode & 0o170000) === 0o040000) { if (e.filename !== STORE_DIR || dir !== this.remote.path) await walk(p); } else {
          const rel = posix.relative(this.remote.path, p);
          if (!isReserved(rel)) out.push(rel);
        }
      }
    };
    await walk(root);
    yield* out.sort();
  }

  async get(rel: string): Promise<Readable> {
    if (!(await this.stat(rel))) throw missingError(this.name, 'get', rel);
    return this.readStream(this.abs(rel));
  }

  /** The bytes of `file` over SFTP (the caller has checked that it exists). */
  private async readStream(file: string): Promise<Readable> {
    const { sftp, dead } = await this.connect();
    const stream = sftp.createReadStream(file);
    dead.catch((err: Error) => stream.destroy(err)); // a dead connection never ends the stream by itself
    return stream;
  }

  async putLink(rel: string, linkText: string, opts: PutOptions = {}): Promise<boolean> {
    const dest = this.abs(rel);
    const tmp = this.tempPath(dest);
    try {
      await this.prepareDir(posix.dirname(dest), opts.dirMode);
      const there = await this.sftp<{ isDirectory(): boolean }>((s, cb) => s.lstat(dest, cb)).catch(() => undefined);
      if (there?.isDirectory()) return false; // the source's former directory, with its copies: left alone
      await this.sftp<void>((s, cb) => s.symlink(linkText, tmp, cb));
      await this.sftp<void>((s, cb) => s.ext_openssh_rename(tmp, dest, cb));
      return true;
    } catch (err) {
      await this.sftp<void>((s, cb) => s.unlink(tmp, cb)).catch(() => undefined);
      throw this.fail(err, 'putLink', rel);
    }
  }

  async readLink(rel: string): Promise<string | undefined> {
    try {
      return await this.sftp<string>((s, cb) => s.readlink(this.abs(rel), cb));
    } catch (err) {
      if (this.fail(err, 'readLink', rel).errorClass === 'missing' || (err as { code?: number }).code === 4) return undefined;
      throw this.fail(err, 'readLink', rel);
    }
  }

  /** Connect (host key, then our key), write and remove a probe file in the base, and ask for free space. */
  async check(): Promise<CheckReport> {
    const probe = tempName();
    try {
      await this.connect();
    } catch (err) {
      const e = this.fail(err, 'connect', `${this.remote.host}:${this.remote.port}`);
      e.stage ??= (err as { level?: string }).level === 'client-authentication' ? 'auth' : 'reach';
      throw e;
    }
    try {
      await this.mkdirs(this.remote.path);
      await this.sftp<void>((s, cb) => s.writeFile(posix.join(this.remote.path, probe), '', cb));
      await this.sftp<void>((s, cb) => s.unlink(posix.join(this.remote.path, probe), cb));
    } catch (err) {
      const e = this.fail(err, 'check', this.remote.path);
      throw new TargetError(e.message, { target: this.name, errorClass: e.errorClass === 'missing' || e.errorClass === 'other' ? 'unreachable' : e.errorClass, permanent: e.permanent, stage: 'write', cause: err });
    }
    return { reachable: true, authenticated: true, writable: true, freeBytes: await this.freeBytes(this.remote.path) };
  }

  /** Bytes free to us in `dir` on the server (statvfs@openssh.com), or undefined if it cannot tell. */
  private async freeBytes(dir: string): Promise<number | undefined> {
    const vfs = await this.sftp<{ f_bavail: number; f_frsize: number }>((s, cb) => s.ext_openssh_statvfs(dir, cb as never)).catch(() => undefined);
    return vfs && vfs.f_bavail * vfs.f_frsize;
  }

  async close(): Promise<void> {
    const s = this.session;
    this.session = undefined;
    if (s) (await s.catch(() => undefined))?.client.end();
  }
}

/** `ssh://[user@]host[:port]/path`: a directory on a server, over SFTP (remote `xxhsum` and `sync` where present). */
export const sshKind: TargetKindModule = {
  kind: 'ssh', schemes: ['ssh'], urlForm: 'ssh://[user@]host[:port]/path', urlPattern: /^ssh:\/\/(?:[^@/]+@)?[^@/:]+(?::\d+)?\/./,
  options: { identity: 'path', knownHosts: 'path', hostKeyCheck: 'boolean' },
  concurrency: 8, maxConnections: 16,
  create: (cfg: TargetConfig) => new SshTarget(cfg.name, cfg.url, {
    identity: cfg.options.identity as string | undefined, knownHosts: cfg.options.knownHosts as string | undefined,
    hostKeyCheck: cfg.options.hostKeyCheck as boolean | undefined, commandTimeoutMs: cfg.timeouts.commandMs,
  }),
};
