/**
 * Worker thread of LocalIo (localIo.ts), with synchronous system calls (~3 us each here, against ~35 us for
 * each asynchronous call through libuv's thread pool): `fetch` copies a file from a target directory on this
 * machine into a temp file, hashing as it goes (restore); `hash` hashes a batch of files (read-back, scrub). A
 * hung disk blocks this thread only: the main thread's deadline fails the job and replaces the worker.
 */
import fs from 'node:fs';
import { promisify } from 'node:util';
import { parentPort } from 'node:worker_threads';
import { type ErrorClass, SourceError } from '../errors.js';
import { CHUNK, hashBuffer, hashBytes, hashFd, initHasher, newHasher, readAt } from '../hash/xxh64.js';
import { handled } from '../queue/deadline.js';
import { type Identity, openSettled, sameFile, utimeSeconds } from '../scan/sourceFs.js';
import type { FetchItem, FetchJob, FileReply, HashJob, IoJob, IoReply, PackItem, PackJob, PackReply, PutItem, PutJob, RenameJob, SpareJob } from './localIo.js';
import { blocks, headerRoom, memberHeader } from './tarLib.js';

const C = fs.constants;
const fdatasync = promisify(fs.fdatasync);
const UMASK = process.umask();
const api = initHasher();
let buf: Buffer | undefined;
/** Buffers of CHUNK bytes for reads that cross an await (read-ahead, big copies), reused. */
const spares: Buffer[] = [];

/**
 * One read buffer per worker, reused: a fresh 1 MiB buffer per file (allocation, page faults, GC) made hashing
 * 1 MiB files 5-15x slower than reading into the same buffer (measured: 1.0-3.2 s against 0.18-0.21 s for 1 GiB).
 * Like the spares, it is a hashBuffer(): what is read into it is hashed where it is, with no copy.
 */
const buffer = (): Buffer => (buf ??= hashBuffer());
const spare = (): Buffer => spares.pop() ?? hashBuffer();

/** Read from `fd` at `pos` until `b` is full or the file ends; the bytes read. */
function fill(fd: number, b: Buffer, pos: number): number {
  let off = 0;
  for (let n; off < b.length && (n = fs.readSync(fd, b, off, b.length - off, pos + off)) > 0;) off += n;
  return off;
}

/** Write all of `data` at `pos` (a short write on a filling disk loops until ENOSPC). */
function writeAllSync(fd: number, data: Buffer, pos: number): void {
  for (let off = 0; off < data.length;) off += fs.writeSync(fd, data, off, data.length - off, pos + off);
}

/** Hash `fd` from byte 0 through the reused buffer (or through `b`, whose first `first` bytes were read already). */
function hashThrough(fd: number, b = buffer(), first = fill(fd, b, 0)): { hash: string; size: number } {
  if (first < b.length) return { hash: hashBytes(b.subarray(0, first)), size: first };
  const h = newHasher();
  let size = 0;
  for (let n = first; n > 0; size += n, n = fill(fd, b, size)) h.update(b.subarray(0, n));
  return { hash: h.digest(), size };
}

/** Run a step on the restore's destination: its error (ENOSPC, EACCES...) is said as the destination's, not the target's. */
function destination<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw Object.assign(err as Error, { write: true });
  }
}

/**
 * Finish a new file open as `fd` (its bytes written): its mode (unless undefined), its mtime (the access time
 * now), closed (once, even when something failed: the number may be another thread's right after), then
 * renamed from `dir/temp` to `dir/final` when `final` is given. The caller no longer owns `fd`.
 */
function finishTemp(fd: number, dir: string, temp: string, final: string | undefined, mode: number | undefined, mtimeMs: number | undefined): void {
  try {
    if (mode !== undefined) fs.fchmodSync(fd, mode);
    if (mtimeMs !== undefined) fs.futimesSync(fd, Date.now() / 1000, utimeSeconds(mtimeMs));
  } finally {
    fs.closeSync(fd);
  }
  if (final !== undefined) fs.renameSync(`${dir}/${temp}`, `${dir}/${final}`);
}

/** A step that threw, as a reply: its message and errno code, and `write` when it was the destination's (destination()). */
function errorReply(err: unknown): { error: string; code: string; write?: true } {
  const e = err as NodeJS.ErrnoException & { write?: true };
  return { error: e.message, code: e.code ?? 'EIO', ...(e.write ? { write: true as const } : {}) };
}

/** `one` on each of `items` in turn (after the hasher is loaded): a failure is that item's errorReply, the others go on. */
async function eachItem<T>(items: T[], one: (item: T) => Promise<FileReply>): Promise<FileReply[]> {
  await api;
  const replies: FileReply[] = [];
  for (const item of items) {
    try {
      replies.push(await one(item));
    } catch (err) {
      replies.push(errorReply(err));
    }
  }
  return replies;
}

async function fetch(job: FetchJob): Promise<IoReply> {
  return { id: job.id, fetches: await eachItem(job.items, fetchOne) };
}

async function fetchOne(job: FetchItem): Promise<FileReply> {
  const src = fs.openSync(job.src, C.O_RDONLY | C.O_NOFOLLOW | C.O_NONBLOCK);
  const temp = `${job.dir}/${job.temp}`;
  let out: number | undefined;
  let done = false;
  // its own buffers, not the shared one: the copy of a big file awaits, and another message's jobs run meanwhile
  const b = spare();
  try {
    const st = fs.fstatSync(src);
    if (!st.isFile()) return { error: `${job.src} is not a regular file`, code: 'EINVAL' };
    // made with the copy's mode, less write for group and other while its bytes arrive (nobody else may write
    // into it before it is proven); fchmod only where that or the umask took bits away
    const mode = st.mode & 0o777;
    const made = mode & 0o755 & ~UMASK;
    const create = () => destination(() => fs.openSync(temp, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, mode & 0o755));
    // a small copy is read to its size, not on to the end of file: one read, not two (what it holds beyond, if it
    // grew since, is not the content asked for, which the hash decides)
    const first = fill(src, st.size < CHUNK ? b.subarray(0, st.size) : b, 0);
    let r: { hash: string; size: number };
    if (first < CHUNK) { // a small file is written only once its hash is right
      r = { hash: hashBytes(b.subarray(0, first)), size: first };
      if (r.hash !== job.hash) return { mismatch: r.hash };
      out = create();
      const fd = out;
      destination(() => writeAllSync(fd, b.subarray(0, first), 0));
    } else { // a big one is written as it is read (and removed if it does not hash right)
      out = create();
      r = await copyHashing(src, out, b, first);
      if (r.hash !== job.hash) return { mismatch: r.hash };
    }
    destination(() => {
      const fd = out!;
      out = undefined; // finishTemp closes it
      finishTemp(fd, job.dir, job.temp, job.final, made !== mode ? mode : undefined, job.mtimeMs ?? st.mtimeMs);
    });
    done = true;
    return { bytes: r.size };
  } finally {
    spares.push(b);
    fs.closeSync(src);
    if (out !== undefined) fs.closeSync(out);
    if (!done) fs.rmSync(temp, { force: true });
  }
}

/** Read from `fd` at `pos` until `b` is full or the file ends (thread pool); the bytes read. */
async function fillAsync(fd: number, b: Buffer, pos: number): Promise<number> {
  let off = 0;
  for (let n; off < b.length && (n = await readAt(fd, off ? b.subarray(off) : b, pos + off)) > 0;) off += n;
  return off;
}

/** Write all of `data` to `fd` at `pos` (thread pool); an error is the destination's. */
async function writeAllAsync(fd: number, data: Buffer, pos: number): Promise<void> {
  try {
    for (let off = 0; off < data.length;) off += await writeAt(fd, off ? data.subarray(off) : data, pos + off);
  } catch (err) {
    throw Object.assign(err as Error, { write: true });
  }
}

const writeAt = (fd: number, data: Buffer, pos: number): Promise<number> =>
  new Promise((resolve, reject) => fs.write(fd, data, 0, data.length, pos, (err, n) => (err ? reject(err) : resolve(n))));

/**
 * Copy `src` (its first chunk, `first` bytes, already in `b`) to `out` at the same offsets, hashing what is
 * written, reading no more than `limit` bytes: each chunk is written and the next one read by the thread pool
 * while this thread hashes it, so the read, the write and the hash of a big file overlap instead of taking turns
 * (a restore of 1 GiB from the page cache took 0.44x the time of the main thread's stream copy, 8 alternating
 * pairs). A buffer is reused only once no call still uses it.
 */
async function copyHashing(src: number, out: number, b: Buffer, first: number, limit = Infinity): Promise<{ hash: string; size: number }> {
  const bufs = [b, spare()];
  const h = newHasher();
  let reading: Promise<number> | undefined;
  let writing: Promise<void> | undefined;
  let size = 0;
  try {
    for (let n = first, more = first === b.length, cur = 0; n > 0; cur ^= 1) {
      const chunk = n === bufs[cur].length ? bufs[cur] : bufs[cur].subarray(0, n);
      writing = writeAllAsync(out, chunk, size);
      const want = more ? Math.min(CHUNK, limit - size - n) : 0;
      reading = want > 0 ? handled(fillAsync(src, bufs[cur ^ 1].subarray(0, want), size + n)) : Promise.resolve(0);
      h.update(chunk);
      await writing;
      size += n;
      n = await reading;
      more = n === want;
    }
    return { hash: h.digest(), size };
  } finally {
    await Promise.allSettled([reading, writing]);
    spares.push(bufs[1]);
  }
}

/**
 * Read a small source whole into `into` (its size + 1 bytes: a file that grew is seen) and prove it against its
 * settled size, and its settled hash when given: the bytes and their xxh64, or what is wrong.
 */
function readProven(fd: number, into: Buffer, item: { label: string; size: number; hash?: string }): { data: Buffer; hash: string } | { mismatch: string } {
  const n = fill(fd, into.subarray(0, item.size + 1), 0);
  if (n !== item.size) return { mismatch: `${item.label}: read ${n} bytes, settled size ${item.size}` };
  const data = into.subarray(0, n);
  const hash = hashBytes(data);
  if (item.hash !== undefined && hash !== item.hash) return { mismatch: `${item.label}: the bytes read hash to ${hash}, settled ${item.hash}` };
  return { data, hash };
}

/** The settled file opened as openSettled does; its SourceError (not the file that settled) as a reply. */
function openOrSay(file: string, identity: Identity): { fd: number; st: fs.Stats } | { source: string; errorClass: ErrorClass } {
  try {
    return openSettled(file, identity);
  } catch (err) {
    if (err instanceof SourceError) return { source: err.message, errorClass: err.errorClass };
    throw err;
  }
}

/**
 * A file's put (PutItem): the source (the descriptor given, or the settled file opened here as openSettled
 * does) read from byte 0 (one byte more than its settled size, so a file that grew is seen). A small one is read
 * whole and proven against the settled size and hash before anything is created, then written to a new temp
 * file and renamed into place; a big one (CHUNK or more) is written as it is read (putBig). A failed write
 * leaves no temp file.
 */
async function putOne(job: PutItem): Promise<FileReply> {
  if ('fd' in job) return putFrom(job.fd, job, job.mode);
  const opened = openOrSay(job.path, job.identity);
  if ('source' in opened) return opened;
  try {
    const r = await putFrom(opened.fd, job, opened.st.mode & 0o777);
    // in place: does the source still show the identity it settled with? (a change means a new content is coming)
    if ('bytes' in r && !sameFile(fs.fstatSync(opened.fd), job.identity)) r.changed = true;
    return r;
  } finally {
    fs.closeSync(opened.fd);
  }
}

/** putOne from the source descriptor `fd`; the copy gets `mode`. A big file: putBig. */
function putFrom(fd: number, job: PutItem, mode: number): FileReply | Promise<FileReply> {
  if (job.size >= CHUNK) return putBig(fd, job, mode);
  const proven = readProven(fd, buffer(), job);
  if ('mismatch' in proven) return proven;
  const { data, hash } = proven;
  const temp = `${job.dir}/${job.temp}`;
  const out = fs.openSync(temp, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, mode);
  try {
    try {
      writeAllSync(out, data, 0);
    } catch (err) {
      fs.closeSync(out);
      throw err;
    }
    // open's mode was cut by the umask: set again
    finishTemp(out, job.dir, job.temp, job.final, mode & UMASK ? mode : undefined, job.mtimeMs);
  } catch (err) {
    fs.rmSync(temp, { force: true });
    throw err;
  }
  return job.hash === undefined ? { bytes: data.length, hash } : { bytes: data.length };
}

/**
 * A big file's put: written to the temp file as it is read (read, write and hash overlapped: copyHashing), at
 * most one byte past its settled size (a file that grew is seen), and renamed into place only once the bytes
 * are proven against the settled size and hash; else the temp file is removed.
 */
async function putBig(fd: number, job: PutItem, mode: number): Promise<FileReply> {
  await api;
  if (kernelCopies(job.dir)) return putInKernel(fd, job, mode);
  const b = spare();
  const temp = `${job.dir}/${job.temp}`;
  let out: number | undefined;
  let done = false;
  try {
    const first = fill(fd, b, 0);
    out = fs.openSync(temp, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, mode);
    const r = await copyHashing(fd, out, b, first, job.size + 1);
    const bad = bigMismatch(job, r.size, r.hash);
    if (bad) return bad;
    const o = out;
    out = undefined; // finishTemp closes it
    finishTemp(o, job.dir, job.temp, job.final, mode & UMASK ? mode : undefined, job.mtimeMs);
    done = true;
    return bigPut(job, r);
  } finally {
    spares.push(b);
    if (out !== undefined) fs.closeSync(out);
    if (!done) fs.rmSync(temp, { force: true });
  }
}

/** A big put's bytes (`size` read, hashing to `hash`) against the settled size and hash: the mismatch, or undefined when proven. */
function bigMismatch(job: PutItem, size: number, hash: string): { mismatch: string } | undefined {
  if (size !== job.size) return { mismatch: `${job.label}: read ${size} bytes, settled size ${job.size}` };
  if (job.hash !== undefined && hash !== job.hash) return { mismatch: `${job.label}: the bytes read hash to ${hash}, settled ${job.hash}` };
  return undefined;
}

/** A big put in place: its bytes, and the hash of a new file (one with no settled hash, hashed by this put). */
const bigPut = (job: PutItem, r: { size: number; hash: string }): FileReply => (job.hash === undefined ? { bytes: r.size, hash: r.hash } : { bytes: r.size });

/**
 * File systems on which the kernel's copy (copy_file_range, under fs.copyFile) writes every byte anew: ext2/3/4
 * and tmpfs, which cannot share blocks between files. On XFS, btrfs (across subvolumes too) or NFS 4.2 it may
 * clone the source's blocks instead (a reflink), and a copy sharing the source's sectors backs none of them up.
 */
const WRITES_ANEW = new Set([0xef53, 0x01021994]);
/** The source is copied through /proc/self/fd (the very file open, not its path): where /proc is mounted. */
const PROC_FD = fs.existsSync('/proc/self/fd');

/** Does the kernel copy big files into `dir` (its file system in WRITES_ANEW)? */
function kernelCopies(dir: string): boolean {
  if (!PROC_FD || process.env.REPLICA_KERNEL_COPY === '0') return false;
  try {
    return WRITES_ANEW.has(fs.statfsSync(dir).type);
  } catch {
    return false; // the put says what is wrong with the directory
  }
}

/**
 * putBig on a file system where the kernel copies (kernelCopies): the bytes go from the source to the temp file
 * inside the kernel (copy_file_range: from the page cache, 1 GiB in ~0.2 s against ~1.1 s through this
 * thread's buffers), from the file `fd` has open (/proc/self/fd/N, not the source's path, which may name
 * another file by now). Then the copy's pages are sent to the disk (fdatasync, in the thread pool) while this
 * thread reads and hashes the source: the durable step after the batch (syncfs) finds them written instead of
 * starting on 1 GiB then. (The copy and the hash at once, as before, took ~0.6 s for 1 GiB, both reading the
 * same pages, and left the whole write-out to the durable step: ~0.6 s more.) The copy is renamed into place
 * only when it and the bytes hashed are the settled size and the hash is the settled one; the read-back after
 * the durable step proves the copy itself against that hash.
 */
async function putInKernel(fd: number, job: PutItem, mode: number): Promise<FileReply> {
  const temp = `${job.dir}/${job.temp}`;
  let out: number | undefined;
  let done = false;
  try {
    await fs.promises.copyFile(`/proc/self/fd/${fd}`, temp, C.COPYFILE_EXCL);
    out = fs.openSync(temp, C.O_WRONLY | C.O_NOFOLLOW);
    // both to their end before anything is decided (or removed): the flush may still run while the hash failed
    const [flushed, hashed] = await Promise.allSettled([
      fdatasync(out),
      hashFd(fd, { size: job.size }), // a big file (CHUNK or more): read into the reused buffers, chunk by chunk
    ]);
    if (flushed.status === 'rejected') throw flushed.reason; // the destination's error (EIO; ENOSPC found at write-out)
    if (hashed.status === 'rejected') throw hashed.reason;
    const r = hashed.value;
    // the bytes hashed, then the copy, are the settled size
    const bad = bigMismatch(job, r.size !== job.size ? r.size : fs.fstatSync(out).size, r.hash);
    if (bad) return bad;
    const o = out;
    out = undefined; // finishTemp closes it
    // the kernel's copy has the source's mode already; set here as every put sets it (and the mtime)
    finishTemp(o, job.dir, job.temp, job.final, mode, job.mtimeMs);
    done = true;
    return bigPut(job, r);
  } finally {
    if (out !== undefined) fs.closeSync(out);
    if (!done) fs.rmSync(temp, { force: true });
  }
}

async function put(job: PutJob): Promise<IoReply> {
  return { id: job.id, puts: await eachItem(job.items, putOne) };
}

/** A copy opened for hashing without following a symlink: its descriptor and size, or null when it is not a regular file we can read. */
function openCopy(file: string): { fd: number; size: number } | null {
  let fd: number;
  try {
    fd = fs.openSync(file, C.O_RDONLY | C.O_NOFOLLOW | C.O_NONBLOCK);
  } catch {
    return null;
  }
  try {
    const st = fs.fstatSync(fd);
    if (st.isFile()) return { fd, size: st.size };
  } catch { /* unreadable: null */ }
  fs.closeSync(fd);
  return null;
}

/** Copies at least this big have their first chunk read by the thread pool while the ones before them are hashed. */
const PREFETCH_MIN = 256 << 10;
/** Copies opened ahead of the one being hashed (each big one with a read in flight, into its own buffer). */
const AHEAD = 4;
/** Read and hashed slower than this (bytes per ms: 1 GB/s; the page cache gives ~5 GB/s here), a copy came from the disk. */
const COLD_BYTES_PER_MS = 1e6;
/** REPLICA_READ_AHEAD=1: read ahead from the first copy (disks known to be cold; the tests of this path). */
const ALWAYS_AHEAD = process.env.REPLICA_READ_AHEAD === '1';

/** A copy opened ahead: its first chunk being read into `buf` when it is big. */
interface Ahead { fd: number; size: number; read?: Promise<number>; buf?: Buffer }

/**
 * xxh64 of each file (null when it cannot be read as a regular file), in order. A scrub of a cold disk waits on
 * reads: once two big copies in a row took longer than the disk-free rate (COLD_BYTES_PER_MS) to read and hash, the copies
 * are opened a few ahead and the first chunk of each big one is read by the thread pool meanwhile, so the disk
 * has several reads to do while one copy is hashed. From the page cache that costs more than it gives (reads on
 * another core, buffers crossing caches: 1.20x for 1 GiB in 1 MiB files), so a job starts with synchronous reads.
 * Small copies are always read in turn with synchronous calls (a thread-pool round trip costs more there).
 */
async function hash(job: HashJob): Promise<IoReply> {
  await api;
  const files = job.files;
  const hashes: (string | null)[] = [];
  const ahead: (Ahead | null)[] = [];
  let slow = 0; // big copies in a row that came slower than the page cache gives (the first read of a fresh buffer is slow too)
  const cold = () => ALWAYS_AHEAD || slow >= 2;
  const open = (j: number) => {
    const o = openCopy(files[j]);
    if (o && cold() && o.size >= PREFETCH_MIN) {
      const b = spare();
      ahead[j] = { ...o, buf: b, read: handled(readAt(o.fd, b, 0)) };
    } else ahead[j] = o;
  };
  for (let i = 0, opened = 0; i < files.length; i++) {
    for (; opened < files.length && opened <= i + (cold() ? AHEAD : 0); opened++) open(opened);
    const a = ahead[i];
    ahead[i] = null;
    if (!a) { hashes.push(null); continue; }
    try {
      if (a.read) hashes.push(hashThrough(a.fd, a.buf, await a.read).hash);
      else {
        const t0 = performance.now();
        hashes.push(hashThrough(a.fd).hash);
        if (a.size >= PREFETCH_MIN) slow = performance.now() - t0 > a.size / COLD_BYTES_PER_MS ? slow + 1 : 0;
      }
    } catch {
      hashes.push(null);
    } finally {
      if (a.buf) spares.push(a.buf);
      fs.closeSync(a.fd);
    }
  }
  return { id: job.id, hashes };
}

/**
 * One PackItem laid out in `tar` from byte `at`: its header blocks, then its bytes read in place (its size + 1:
 * a file that grew is seen), proven and looked at again, then zeros to the end of its last block. `end`: where
 * the next member goes (a file not read whole leaves `at` there: nothing of it stays).
 */
function packOne(item: PackItem, tar: Buffer, at: number): PackReply & { end?: number } {
  const opened = openOrSay(item.path, item.identity);
  if ('source' in opened) return opened;
  try {
    const mode = opened.st.mode & 0o777;
    const data = at + memberHeader({ name: item.name, size: item.size, mode, mtime: new Date(item.mtimeMs) }).copy(tar, at);
    const proven = readProven(opened.fd, tar.subarray(data, data + item.size + 1), item);
    if ('mismatch' in proven) return proven;
    if (!sameFile(fs.fstatSync(opened.fd), item.identity)) return { at, mode, hash: proven.hash, changed: true };
    const end = data + blocks(item.size);
    tar.fill(0, data + item.size, end); // the byte read past its end, a file left out before it
    return { at, mode, hash: proven.hash, end };
  } finally {
    fs.closeSync(opened.fd);
  }
}

/** Buffers of pack jobs given back by the main thread once written (LocalIo.recycle), at most SPARE_TAR_BYTES in all (an agent keeps them). */
const spareTars: ArrayBuffer[] = [];
const SPARE_TAR_BYTES = 8 << 20;

/** A PackJob: the files' tar members in one buffer (handed to the main thread, not copied; a spare one if big enough). */
async function pack(job: PackJob): Promise<IoReply> {
  await api; // hashBytes needs the wasm instance
  const need = job.items.reduce((n, x) => n + headerRoom(x.name) + blocks(x.size + 1), 0);
  const k = spareTars.findIndex((b) => b.byteLength >= need);
  // every byte up to the last member's end is written again (headers, data, padding): nothing old goes out
  const buf = k >= 0 ? spareTars.splice(k, 1)[0] : new ArrayBuffer(need);
  const tar = Buffer.from(buf);
  const packed: PackReply[] = [];
  let at = 0;
  for (const item of job.items) {
    try {
      const { end, ...r } = packOne(item, tar, at);
      packed.push(r);
      if (end !== undefined) at = end;
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      packed.push({ error: e.message, code: e.code ?? 'EIO' });
    }
  }
  return { id: job.id, packed, buf, bytes: at };
}

/** A RenameJob: each item renamed in turn; its errno error, or null once it is in place. */
function rename(job: RenameJob): IoReply {
  return {
    id: job.id,
    renames: job.items.map(({ dir, temp, final }) => {
      try {
        fs.renameSync(`${dir}/${temp}`, `${dir}/${final}`);
        return null;
      } catch (err) {
        return errorReply(err);
      }
    }),
  };
}

async function run(job: Exclude<IoJob, SpareJob>): Promise<IoReply> {
  try {
    return job.op === 'hash' ? await hash(job) : job.op === 'put' ? await put(job) : job.op === 'pack' ? await pack(job) : job.op === 'rename' ? rename(job) : await fetch(job);
  } catch (err) {
    return { id: job.id, ...errorReply(err) };
  }
}

/** Replies are sent together for at most this long: many quick jobs cost one message, a long one is not held back. */
const REPLY_EVERY_MS = 5;

// ready (the hasher too): an empty message says so (LocalIo.worth)
void api.then(() => parentPort!.postMessage([]));

// the jobs posted in one turn of the main thread's loop, answered in order, in as few messages as that allows
parentPort!.on('message', async (jobs: IoJob[]) => {
  let replies: IoReply[] = [];
  let since = performance.now();
  // a read's buffer is handed over, not copied
  const post = (rs: IoReply[]) => parentPort!.postMessage(rs, rs.flatMap((r) => ('buf' in r ? [r.buf] : [])));
  for (const job of jobs) {
    if (job.op === 'spare') {
      if (spareTars.reduce((n, b) => n + b.byteLength, job.buf.byteLength) <= SPARE_TAR_BYTES) spareTars.push(job.buf);
      continue;
    }
    replies.push(await run(job));
    if (performance.now() - since >= REPLY_EVERY_MS) {
      post(replies);
      replies = [];
      since = performance.now();
    }
  }
  if (replies.length) post(replies);
});
