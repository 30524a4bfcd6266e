import fs from 'node:fs';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Readable } from 'node:stream';
import { TargetError, opOrigin, toTargetError } from '../errors.js';
import { SMALL_FILE, hashFileAsync } from '../hash/xxh64.js';
import type { TargetConfig } from '../config/schema.js';
import type { TargetKindModule } from './kind.js';
import { STORE_DIR, checkRelPath, isReserved, sweepTemps, tempName, versionsIn } from './layout.js';
import { LocalDirs, PRIVATE_DIR_MODE } from './localDirs.js';
import { type PutItem, localIo, warmLocalIo } from './localIo.js';
import { writeTemp } from './localWrite.js';
import { isMountPoint } from './mountinfo.js';
import { FdSource, type PutSource, SettledFile } from './source.js';
import {
  type BatchPut, type CheckReport, type Links, type PutOptions, type RandomRead, type ReadBack, type ReadBackOptions, type RemoteHash, type Target, type TempFiles, type Versions, readBackEach,
} from './target.js';

const run = promisify(execFile);

/** Up to this many files put since the last sync are made durable one by one (fsync), more by one syncfs. */
const FSYNC_FILES_MAX = 16;

/** fsync each file, then each directory holding one (the renames): the durable write of a few files. */
async function fsyncEach(files: string[], signal?: AbortSignal): Promise<void> {
  for (const f of [...files, ...new Set(files.map((x) => path.dirname(x)))]) {
    signal?.throwIfAborted();
    const fh = await fs.promises.open(f, C.O_RDONLY | C.O_NOFOLLOW);
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  }
}
const C = fs.constants;


/**
 * A directory on this machine (a disk, a NAS mount). Every operation is asynchronous, so a hung disk (a dead
 * NFS server) occupies a thread-pool thread, never the event loop: the wrappers' timeouts fire and the agent
 * goes on. put() writes `.replica-<random>.tmp` beside the final name, opened O_EXCL|O_NOFOLLOW, and renames
 * it into place; every directory on the way is lstat'ed, never followed if it is a symlink (a link where a
 * directory must be is replaced; a link at `<host>` or `.replica/<host>` refuses the write). sync() is one
 * syncfs (`sync -f`) for the whole batch. With `mount`, check() refuses (class `not-mounted`) unless that
 * path is a mount point, and nothing is created there. A sync after a few puts only (no directory made, no link, no
 * version) fsyncs those files and their directories instead (cheaper when other data is dirty on that filesystem).
 */
export class LocalTarget implements Target, BatchPut, RandomRead, Links, RemoteHash, TempFiles, Versions {
  private readonly dirs: LocalDirs;
  private unsynced = false;
  /**
   * Files put (renamed into place) since the last sync, while that is all that changed (undefined once anything
   * else did: a directory made, a link, a version kept): a few are made durable by fsync of each file and its
   * directory, cheaper than syncfs of the whole filesystem when other programs have dirty data on it.
   */
  private putOnly: string[] | undefined = [];
  private dirsChanged = 0;

  constructor(readonly name: string, readonly base: string, readonly opts: { mount?: string; commandTimeoutMs?: number; copyTimeoutMs?: number } = {}) {
    this.dirs = new LocalDirs(name, base, (relDir) => this.removeTemps([relDir]));
  }

  private abs(rel: string): string {
    checkRelPath(this.name, rel);
    return path.join(this.base, rel);
  }

  private err(err: unknown, op: string, rel: string): TargetError {
    return toTargetError(err, this.name, opOrigin(this.name, op, rel));
  }

  /** Remove stale temp files (of killed runs) in these directories; returns how many. */
  async removeTemps(relDirs: string[]): Promise<number> {
    for (const d of relDirs) if (d !== '.') checkRelPath(this.name, d);
    try {
      return await sweepTemps(relDirs,
        (d) => fs.promises.readdir(path.join(this.base, d)).catch(() => undefined),
        (d, name) => fs.promises.rm(path.join(this.base, d, name), { force: true }));
    } catch (err) {
      throw this.err(err, 'removeTemps', relDirs.join(' '));
    }
  }

  /**
   * One file, through the thread pool (putMany takes small files to the LocalIo workers: worth it for many),
   * or a big one through a LocalIo worker (viaWorker).
   */
  async put(rel: string, src: PutSource, opts: PutOptions = {}): Promise<void> {
    if (viaWorker(src) === 'big') {
      const [err] = await this.putByWorker([{ rel, src: src as FdSource | SettledFile }], opts);
      if (err) throw err;
      return;
    }
    const dest = this.abs(rel);
    let tmp: string | undefined;
    try {
      opts.signal?.throwIfAborted();
      const relDir = path.dirname(rel);
      await this.dirs.prepare(relDir, opts.dirMode);
      tmp = path.join(this.base, relDir, tempName());
      await writeTemp(tmp, src, opts.signal);
      opts.signal?.throwIfAborted();
      await fs.promises.rename(tmp, dest);
      tmp = undefined;
      this.published(dest);
    } catch (err) {
      if (tmp) await fs.promises.rm(tmp, { force: true }).catch(() => undefined);
      throw this.err(err, 'put', rel);
    }
  }

  /**
   * Small files (an FdSource, or a SettledFile not opened yet: the worker opens it) are put by one LocalIo job:
   * read, proven, written to a temp file and renamed in a worker thread with synchronous calls; and so are big
   * ones (viaWorker). Any other item goes through put(), and so does every small item of a batch too small to
   * wait for a worker to start (LocalIo.worth). Their directories are made first, here, as put() makes them.
   */
  async putMany(items: { rel: string; src: PutSource }[], opts: PutOptions = {}): Promise<(Error | undefined)[]> {
    opts.signal?.throwIfAborted();
    const out: (Error | undefined)[] = items.map(() => undefined);
    // the directories first, all at once (each a few thread-pool calls: made, checked, swept on first use);
    // a directory that fails is made again for its item below, and its error is that item's
    await Promise.all([...new Set(items.map((x) => path.dirname(x.rel)))].map((d) => this.dirs.prepare(d, opts.dirMode).catch(() => undefined)));
    const byWorker: { rel: string; src: FdSource | SettledFile }[] = [];
    const at: number[] = [];
    const direct = !localIo().worth(items.length);
    for (const [i, { rel, src }] of items.entries()) {
      const via = viaWorker(src);
      if (via === 'big' || (via === 'small' && !direct && items.length > 1)) {
        byWorker.push({ rel, src: src as FdSource | SettledFile });
        at.push(i);
        continue;
      }
      try {
        await this.put(rel, src, opts);
      } catch (err) {
        out[i] = this.err(err, 'put', rel);
      }
    }
    (await this.putByWorker(byWorker, opts)).forEach((err, k) => { out[at[k]] = err; });
    return out;
  }

  /** Put these through one LocalIo job (the worker reads each source itself); an error per item. */
  private async putByWorker(items: { rel: string; src: FdSource | SettledFile }[], opts: PutOptions): Promise<(Error | undefined)[]> {
    const out: (Error | undefined)[] = items.map(() => undefined);
    const jobs: PutItem[] = [];
    const at: number[] = [];
    for (const [i, { rel, src }] of items.entries()) {
      try {
        const dest = this.abs(rel);
        const relDir = path.dirname(rel);
        await this.dirs.prepare(relDir, opts.dirMode);
        const job = { size: src.size, hash: src.hash, mtimeMs: src.mtimeMs, dir: path.join(this.base, relDir), temp: tempName(), final: path.basename(dest) };
        // a file opened here is read through its descriptor (the caller checks its identity after the put)
        const fd = src.fd;
        const label = src instanceof SettledFile ? src.path : src.label;
        jobs.push(fd === undefined ? { ...job, label, path: label, identity: (src as SettledFile).identity } : { ...job, label, fd, mode: src.mode });
        at.push(i);
      } catch (err) {
        out[i] = this.err(err, 'put', rel);
      }
    }
    if (!jobs.length) return out;
    opts.signal?.throwIfAborted();
    let results: { placed: boolean; err?: Error; hash?: string }[];
    try {
      // a big copy stops with the pass (SIGTERM) instead of running to its end; a batch of small ones ends first
      const big = jobs.some((j) => j.size > SMALL_FILE);
      results = await localIo().putMany(this.name, jobs, this.opts.copyTimeoutMs ?? 30 * 60_000, big ? opts.signal : undefined);
    } catch (err) {
      throw this.err(err, 'put', `${jobs.length} files`);
    }
    results.forEach(({ placed, err, hash }, k) => {
      const { rel, src } = items[at[k]];
      if (placed) this.published(this.abs(rel));
      if (err) out[at[k]] = this.err(err, 'put', rel);
      else if (hash !== undefined && src instanceof SettledFile) src.hashed = hash;
    });
    return out;
  }

  /** A file was renamed into place at `dest`: durable at the next sync (by its own fsync while few and nothing else changed). */
  private published(dest: string): void {
    this.unsynced = true;
    if (this.dirs.changed !== this.dirsChanged || (this.putOnly?.length ?? Infinity) >= FSYNC_FILES_MAX) this.putOnly = undefined;
    else this.putOnly?.push(dest);
  }

  async sync(opts: { signal?: AbortSignal } = {}): Promise<void> {
    // the next batch checks its directories again (someone may have swapped one for a link meanwhile)
    this.dirs.forget();
    if (!this.unsynced) return;
    const files = this.putOnly;
    this.unsynced = false;
    this.putOnly = [];
    this.dirsChanged = this.dirs.changed;
    try {
      if (files) await fsyncEach(files, opts.signal);
      // syncfs(2) of the target filesystem: one flush for the whole batch instead of one fsync per file.
      else await run('sync', ['-f', this.base], { signal: opts.signal, timeout: this.opts.commandTimeoutMs });
    } catch (err) {
      this.unsynced = true;
      this.putOnly = undefined;
      throw this.err(err, 'sync', '.');
    }
  }

  async hash(rel: string, opts: { signal?: AbortSignal } = {}): Promise<string> {
    try {
      return (await hashFileAsync(this.abs(rel), { signal: opts.signal })).hash;
    } catch (err) {
      throw this.err(err, 'hash', rel);
    }
  }

  readBack(rels: string[], opts?: ReadBackOptions): Promise<ReadBack> {
    return readBackEach(this, rels, opts);
  }

  /**
   * Hash a batch of copies in the LocalIo worker threads (synchronous reads, every core): a read-back or a
   * scrub of many small files is not paced by the thread pool. A copy it cannot read is left out (readBack
   * then hashes it on its own, to say why).
   */
  async hashMany(rels: string[], opts: { signal?: AbortSignal } = {}): Promise<Map<string, string>> {
    opts.signal?.throwIfAborted();
    if (!localIo().worth(rels.length)) return new Map(); // a few: hashed one by one (readBack)
    const files = new Map(rels.map((r) => [this.abs(r), r]));
    const hashed = await localIo().hashMany(this.name, [...files.keys()], this.opts.copyTimeoutMs ?? 30 * 60_000);
    return new Map([...hashed].map(([f, h]) => [files.get(f)!, h]));
  }

  async stat(rel: string): Promise<{ size: number; mtimeMs: number; mode: number } | undefined> {
    try {
      const st = await fs.promises.lstat(this.abs(rel));
      return { size: st.size, mtimeMs: st.mtimeMs, mode: st.mode & 0o777 };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw this.err(err, 'stat', rel);
    }
  }

  async *list(prefix: string): AsyncIterable<string> {
    const root = prefix === '' ? this.base : this.abs(prefix.replace(/\/+$/, ''));
    try { await fs.promises.access(root); } catch { return; }
    // loaded here, when first needed: fdir looks for its optional picomatch as it loads (six files from
    // node_modules: ~0.2 s of every command's start on a cold page cache, a scrub's usual case)
    const { fdir } = await import('fdir');
    const files = await new fdir().withRelativePaths().exclude((name) => name === STORE_DIR).crawl(root).withPromise();
    for (const f of files.sort()) {
      const rel = prefix === '' ? f : `${prefix.replace(/\/+$/, '')}/${f}`;
      if (!isReserved(rel)) yield rel;
    }
  }

  async get(rel: string): Promise<Readable> {
    const file = this.abs(rel);
    let fh: fs.promises.FileHandle;
    try {
      fh = await fs.promises.open(file, C.O_RDONLY | C.O_NOFOLLOW);
    } catch (err) {
      throw this.err(err, 'get', rel);
    }
    return fh.createReadStream();
  }

  async putLink(rel: string, linkText: string, opts: { dirMode?: (relDir: string) => number | undefined } = {}): Promise<boolean> {
    const dest = this.abs(rel);
    const relDir = path.dirname(rel);
    let tmp: string | undefined;
    try {
      await this.dirs.prepare(relDir, opts.dirMode);
      tmp = path.join(this.base, relDir, tempName());
      await fs.promises.symlink(linkText, tmp);
      try {
        await fs.promises.rename(tmp, dest);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        // a directory (the source's former directory, with its copies) is in the way: leave it alone
        if (code === 'EISDIR' || code === 'ENOTEMPTY' || code === 'EEXIST') return false;
        throw err;
      }
      tmp = undefined;
      this.unsynced = true;
      this.putOnly = undefined; // a link: syncfs
      return true;
    } catch (err) {
      throw this.err(err, 'putLink', rel);
    } finally {
      if (tmp) await fs.promises.rm(tmp, { force: true }).catch(() => undefined);
    }
  }

  async readLink(rel: string): Promise<string | undefined> {
    try {
      return await fs.promises.readlink(this.abs(rel));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'EINVAL') return undefined;
      throw this.err(err, 'readLink', rel);
    }
  }

  async check(): Promise<CheckReport> {
    if (this.opts.mount !== undefined) {
      let real: string;
      try {
        real = await fs.promises.realpath(this.opts.mount);
      } catch {
        real = this.opts.mount;
      }
      if (!isMountPoint(real)) {
        throw new TargetError(`[${this.name}] ${this.opts.mount} is not a mount point: refusing to write (is the disk mounted?)`, { target: this.name, errorClass: 'not-mounted', stage: 'reach' });
      }
    }
    const probe = path.join(this.base, tempName());
    try {
      if (await fs.promises.mkdir(this.base, { recursive: true, mode: PRIVATE_DIR_MODE }) !== undefined) this.dirs.changed++; // made: syncfs next
      const fh = await fs.promises.open(probe, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o600);
      await fh.close();
      await fs.promises.rm(probe);
    } catch (err) {
      const e = this.err(err, 'check', this.base);
      // A target that refuses even an empty file is unusable as a whole, whatever the errno.
      throw new TargetError(e.message, { target: this.name, errorClass: e.errorClass === 'ENOSPC' ? 'ENOSPC' : e.targetWide ? e.errorClass : 'unreachable', stage: 'write', cause: err });
    }
    const vfs = await fs.promises.statfs(this.base);
    return { reachable: true, authenticated: true, writable: true, freeBytes: vfs.bavail * vfs.bsize, detail: this.opts.mount ? `${this.opts.mount} mounted` : undefined };
  }

  async keepAside(rel: string, versionRel: string): Promise<boolean> {
    const from = this.abs(rel);
    const to = this.abs(versionRel);
    try {
      const st = await fs.promises.lstat(from).catch((e: NodeJS.ErrnoException) => { if (e.code === 'ENOENT') return undefined; throw e; });
      if (!st?.isFile()) return false;
      await this.dirs.prepare(path.dirname(versionRel)); // private: a version directory is not a source directory
      await fs.promises.link(from, to); // the same inode: the put's rename then detaches the live name from it
      this.unsynced = true;
      this.putOnly = undefined; // a version kept: syncfs
      return true;
    } catch (err) {
      throw this.err(err, 'keepAside', rel);
    }
  }

  async listVersions(rel: string): Promise<string[]> {
    try {
      return await versionsIn(rel, (dir) => fs.promises.readdir(this.abs(dir)).catch((e: NodeJS.ErrnoException) => { if (e.code === 'ENOENT') return undefined; throw e; }));
    } catch (err) {
      throw this.err(err, 'listVersions', rel);
    }
  }

  async removeVersion(versionRel: string): Promise<void> {
    try {
      await fs.promises.rm(this.abs(versionRel), { force: true });
    } catch (err) {
      throw this.err(err, 'removeVersion', versionRel);
    }
  }

  async close(): Promise<void> {
    await this.sync();
  }
}

/**
 * Whether a LocalIo worker puts `src`: 'small' for a small FdSource or SettledFile not opened here (the worker
 * opens it; worth it in a batch), 'big' for a bigger FdSource or SettledFile (read through its descriptor
 * when opened here) once a worker is worth waiting for (LocalIo.worth: 64 MiB, or a worker ready), which the
 * worker copies with its read, write and hash overlapped; else undefined (the thread pool, here).
 */
function viaWorker(src: PutSource): 'small' | 'big' | undefined {
  if (!(src instanceof FdSource || src instanceof SettledFile)) return undefined;
  if (src.size <= SMALL_FILE) return src instanceof SettledFile && src.isOpen ? undefined : 'small';
  return localIo().worth(1, src.size) ? 'big' : undefined;
}

/** `/path` or `file:///path` (relative to the config file's directory): a directory on this machine. */
export const localKind: TargetKindModule = {
  kind: 'local', schemes: ['', 'file'], urlForm: 'a local path', options: {},
  concurrency: 2, maxConnections: 4,
  localBase: (url) => url.replace(/^file:\/\//, ''),
  // the LocalIo workers take ~100 ms to start: while the main thread hashes or plans, not after (first backup
  // and restore of 10k x 4 KiB: 0.97x each); a few files go one by one and need none
  warm: warmLocalIo,
  create: (cfg: TargetConfig) => new LocalTarget(cfg.name, cfg.path!, { mount: cfg.mount, commandTimeoutMs: cfg.timeouts.commandMs, copyTimeoutMs: cfg.timeouts.copyMs }),
};
