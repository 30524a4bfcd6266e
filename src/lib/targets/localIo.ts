import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { type ErrorClass, SourceError, TargetError, classifyErrno } from '../errors.js';
import type { Identity } from '../scan/sourceFs.js';
import { workerEntry } from '../workerEntry.js';

/**
 * A copy to fetch: read `src`, check it hashes to `hash`, write it as `dir/temp` with its mode and `mtimeMs`
 * (the copy's when absent), then rename it to `dir/final` when given.
 */
export interface FetchItem { src: string; dir: string; temp: string; final?: string; hash: string; mtimeMs?: number }
/** Copies to fetch (a restore), one after the other (FetchItem). */
export interface FetchJob { op: 'fetch'; id: number; items: FetchItem[] }
/** Files to hash (a batch of a read-back): each opened without following a symlink. */
export interface HashJob { op: 'hash'; id: number; files: string[] }
/**
 * A small file to put: read all of its source, check it holds `size` bytes hashing to `hash` (none given: the
 * reply says what they hash to), then write it as
 * the new file `dir/temp` (O_EXCL, no symlink followed) with `mode` and `mtimeMs`, and rename that to
 * `dir/final`. The source is `fd`, a descriptor the main thread opened (and holds open until the reply), or the
 * settled file `path` with its `identity`, opened by the worker as sourceFs.openSettled does (then `mode` is
 * the opened file's, and the file is looked at again once its copy is in place: a change is reported).
 */
export type PutItem = { label: string; size: number; hash?: string; mtimeMs?: number; dir: string; temp: string; final: string }
  & ({ fd: number; mode: number } | { path: string; identity: Identity });
/** Files to put, one after the other (PutItem): small ones, and big ones (written as they are read: putBig in the worker). */
export interface PutJob { op: 'put'; id: number; items: PutItem[] }
/**
 * A small settled file to lay out as a tar member named `name` (PackJob), for a kind that writes tar (tape, ssh
 * batches): opened as openSettled does, read one byte past its size, proven (size; hash when given, else
 * hashed), and looked at again (identity).
 */
export type PackItem = { label: string; size: number; hash?: string; path: string; identity: Identity; name: string; mtimeMs: number };
export interface PackJob { op: 'pack'; id: number; items: PackItem[] }
/** A pack job's buffer given back to a worker, for a later pack job to fill (no reply). */
export interface SpareJob { op: 'spare'; id: 0; buf: ArrayBuffer }
/** Temp files to rename into place (a durable restore's batch, once on disk): `dir/temp` to `dir/final`, never following a symlink in `dir`. */
export interface RenameItem { dir: string; temp: string; final: string }
export interface RenameJob { op: 'rename'; id: number; items: RenameItem[] }
export type IoJob = FetchJob | HashJob | PutJob | PackJob | RenameJob | SpareJob;
/**
 * One file packed: its member's header at `at` in the reply's `buf`, its mode and xxh64; `changed`: the source
 * changed after the read (its member is left out of `buf`, as is the member of any file not read whole).
 */
export type PackReply = { at: number; mode: number; hash: string; changed?: true } | { mismatch: string } | { source: string; errorClass: ErrorClass }
  | { error: string; code: string };
/**
 * One file's outcome: its bytes (`changed`: the copy is in place, but the source no longer shows its identity
 * since), the source's bytes were not the settled content, the source is not the file that settled (`source`:
 * openSettled's SourceError, nothing written), or the errno error.
 */
export type FileReply = { bytes: number; changed?: true; hash?: string } | { mismatch: string } | { source: string; errorClass: ErrorClass }
  | { error: string; code: string; write?: true };
export type IoReply = { id: number } & (FileReply | { hashes: (string | null)[] } | { puts: FileReply[] } | { fetches: FileReply[] } | { packed: PackReply[]; buf: ArrayBuffer; bytes: number }
  | { renames: (null | { error: string; code: string })[] });

/** A worker, its jobs in flight, and the jobs not posted yet (posted together at the next turn of the loop). */
interface Slot { w: Worker; pending: Map<number, { resolve: (r: IoReply) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>; outbox: IoJob[]; ready?: true }

/**
 * A batch of up to this many files goes one by one in the main thread (the thread pool) while no worker is
 * ready: a worker takes 50-110 ms to start here, the main thread ~0.1 ms per small file.
 */
const FEW_FILES = 64;
/**
 * ...or this many bytes: a worker copies a big file with its read, write and hash overlapped (copyHashing in
 * localIoWorker.ts, with its figure), worth far more than its start (~40 ms).
 */
const FEW_BYTES = 64 << 20;

/**
 * Worker threads (one per core, 2 to 8) that read and write files on this machine with synchronous I/O (localIoWorker.ts): an asynchronous fs
 * call costs ~35 us here (libuv's thread pool), a synchronous one ~3 us, so restoring or reading back many
 * small files is not paced by the pool, and hashing runs on every core. Each job has a deadline: a worker
 * stuck on a hung disk fails its jobs with class `timeout` and is replaced (the stuck thread is left behind;
 * the supervisor ends the process if it cannot exit). Workers are unref'd: they never keep the process alive.
 */
export class LocalIo {
  /** started on first use (a worker costs ~20-40 ms to start: a run that puts a few files needs one or two) */
  private readonly workers: (Slot | undefined)[];
  private next = 0;
  private ids = 0;
  /**
   * The worker that writes into each directory (assigned in turn on first sight): two threads creating and
   * renaming files in one directory at once contend for its lock in the kernel (restore of 10k x 4 KiB in 100
   * directories: 0.92x, 4 pairs; first backup of the same: 0.98x, within the noise).
   */
  private readonly byDir = new Map<string, number>();

  constructor(readonly size = Math.max(2, Math.min(8, os.availableParallelism()))) {
    this.workers = Array.from({ length: size }, () => undefined);
  }

  private spawn(): Slot {
    const w = new Worker(workerEntry('localIoWorker', import.meta.url));
    const slot: Slot = { w, pending: new Map(), outbox: [] };
    w.on('message', (replies: IoReply[]) => {
      slot.ready = true; // its first message says it is (localIoWorker.ts)
      for (const r of replies) {
        const p = slot.pending.get(r.id);
        if (!p) continue;
        slot.pending.delete(r.id);
        clearTimeout(p.timer);
        p.resolve(r);
      }
    });
    w.on('error', (err) => this.fail(slot, err));
    w.unref();
    return slot;
  }

  /** Fail every job of a worker and replace it. */
  private fail(slot: Slot, err: Error): void {
    const i = this.workers.indexOf(slot);
    if (i < 0) return;
    for (const p of slot.pending.values()) { clearTimeout(p.timer); p.reject(err); }
    slot.pending.clear();
    slot.outbox = [];
    void slot.w.terminate().catch(() => undefined);
    this.workers[i] = undefined; // a new one on its next job
  }

  /**
   * The worker for a job: the one of the directory it writes into (`dir`); else the least busy, counting a
   * worker not started as busier than an idle one and less than one with a job: a job that reads (a read-back,
   * a scrub's share) goes to a started worker left idle rather than starting one (~100 ms: the read-back of a
   * 1 GiB copy waited that long for a second worker while the first, done copying, sat idle), and a second
   * share at once still gets a worker of its own. Ties in turn.
   */
  private pick(dir: string | undefined): number {
    if (dir === undefined) {
      let best = 0;
      let least = Infinity;
      for (let k = 0; k < this.size; k++) {
        const i = (this.next + k) % this.size;
        const w = this.workers[i];
        const load = w === undefined ? 0.5 : w.pending.size;
        if (load < least) [best, least] = [i, load];
      }
      this.next = best + 1;
      return best;
    }
    let i = this.byDir.get(dir);
    if (i === undefined) {
      if (this.byDir.size >= 4096) this.byDir.clear(); // bounded: only directories written together matter
      this.byDir.set(dir, (i = this.next++ % this.size));
    }
    return i;
  }

  /** Workers running now. */
  get started(): number {
    return this.workers.filter((w) => w !== undefined).length;
  }

  /**
   * Whether a batch of `files` is worth the workers: always once one is ready; before that (a worker not
   * started, or still starting) only a batch of more than FEW_FILES or of at least FEW_BYTES (`bytes`), which
   * waits for the start.
   */
  worth(files: number, bytes = 0): boolean {
    return files > FEW_FILES || bytes >= FEW_BYTES || this.workers.some((w) => w?.ready);
  }

  /** Start every worker not started yet (a command about to read or write many files, while it still does other work). */
  warm(): void {
    for (let i = 0; i < this.size; i++) this.workers[i] ??= this.spawn();
  }

  /**
   * Run `job` on its worker within `timeoutMs`; past it, or once `signal` aborts (a pass stopped during a big
   * copy), the worker's jobs fail and it is replaced (what it left half done is a temp file, swept later).
   */
  private run(target: string, job: Omit<FetchJob, 'id'> | Omit<HashJob, 'id'> | Omit<PutJob, 'id'> | Omit<PackJob, 'id'> | Omit<RenameJob, 'id'>, timeoutMs: number, what: string, signal?: AbortSignal): Promise<IoReply> {
    signal?.throwIfAborted();
    const i = this.pick(job.op === 'fetch' || job.op === 'put' || job.op === 'rename' ? job.items[0]?.dir : undefined);
    const slot = (this.workers[i] ??= this.spawn());
    const id = ++this.ids;
    return new Promise<IoReply>((resolve, reject) => {
      const onAbort = () => this.fail(slot, signal!.reason instanceof Error ? signal!.reason : new Error(String(signal!.reason)));
      signal?.addEventListener('abort', onAbort, { once: true });
      const done = <T>(fn: (v: T) => void) => (v: T) => { signal?.removeEventListener('abort', onAbort); fn(v); };
      const timer = setTimeout(() => this.fail(slot, new TargetError(`[${target}] ${what} took longer than ${timeoutMs} ms`, { target, errorClass: 'timeout' })), timeoutMs);
      slot.pending.set(id, { resolve: done(resolve), reject: done(reject), timer });
      // one message per worker and turn of the event loop: posting costs ~40 us here, whatever it carries
      if (slot.outbox.push({ ...job, id } as IoJob) === 1) {
        setImmediate(() => {
          if (slot.outbox.length) slot.w.postMessage(slot.outbox);
          slot.outbox = [];
        });
      }
    });
  }

  /**
   * Fetch one copy of target `target` into a temp file within `timeoutMs`. Resolves with the bytes written;
   * throws TargetError (`mismatch`: nothing left written; `missing`, `timeout`, the errno's class), or a plain
   * Error when the temp file cannot be written.
   */
  async fetch(target: string, item: FetchItem, timeoutMs: number): Promise<{ bytes: number }> {
    const [r] = await this.fetchMany(target, [item], timeoutMs);
    if ('err' in r) throw r.err;
    return r;
  }

  /**
   * Fetch copies of target `target` (FetchItems) in one worker job within `timeoutMs`: one message, one deadline
   * and one promise for all of them (a restore of 10k small files spent ~0.3 s of its main thread on a promise,
   * a timer and a queue task per file). One entry per item: its bytes, or `err` as `fetch` throws it. Throws
   * TargetError(timeout) when the job as a whole took too long.
   */
  async fetchMany(target: string, items: FetchItem[], timeoutMs: number): Promise<({ bytes: number } | { err: Error })[]> {
    const r = await this.run(target, { op: 'fetch', items }, timeoutMs, items.length === 1 ? `reading ${items[0].src}` : `reading ${items.length} copies`);
    const each: FileReply[] = 'fetches' in r ? r.fetches : items.map(() => r as FileReply); // the job failed as a whole
    return each.map((x, k) => {
      if ('bytes' in x) return { bytes: x.bytes };
      if ('mismatch' in x) return { err: new TargetError(`[${target}] ${items[k].src} reads back as ${x.mismatch}, expected ${items[k].hash}`, { target, errorClass: 'mismatch' }) };
      if (!('error' in x)) return { err: new Error(`LocalIo: unexpected reply to a fetch job: ${JSON.stringify(x)}`) };
      if (x.write) return { err: new Error(x.error) };
      const cls = classifyErrno(Object.assign(new Error(x.error), { code: x.code }));
      return { err: new TargetError(`[${target}] ${x.error}`, { target, errorClass: cls === 'vanished' ? 'missing' : cls }) };
    });
  }

  /**
   * Rename temp files into place (RenameItems) in one worker job within `timeoutMs`, each with rename(2) there
   * (~15 us, against ~70 us of the main thread's time for each asynchronous rename). One entry per item: undefined
   * when it is in place, else the errno error. Throws TargetError(timeout) when the job as a whole took too
   * long (`what` names what was being renamed, for that error).
   */
  async renameMany(what: string, items: RenameItem[], timeoutMs: number): Promise<(Error | undefined)[]> {
    const r = await this.run(what, { op: 'rename', items }, timeoutMs, `renaming ${items.length} files into place`);
    if (!('renames' in r)) throw new Error(`LocalIo: unexpected reply to a rename job: ${JSON.stringify(r)}`);
    return r.renames.map((x) => (x === null ? undefined : Object.assign(new Error(x.error), { code: x.code })));
  }

  /**
   * Put small files of target `target` (PutItems) in one worker job within `timeoutMs`: each file's read, hash
   * check, write and rename are synchronous calls there (~3 us each) instead of six thread-pool round trips.
   * One entry per item: `placed` when the copy is in place, and `err`: SourceError(changed) when its bytes were
   * not the settled content (nothing written) or the source changed after its copy was placed, openSettled's
   * SourceError when the source is not the file that settled, or the errno error of a failed write (no temp
   * file left); `hash`: the xxh64 of the bytes placed, for an item that gave no settled hash (a new file
   * hashed by its first copy). Throws TargetError(timeout) when the job as a whole took too long, and the
   * signal's reason once `signal` aborts.
   */
  async putMany(target: string, items: PutItem[], timeoutMs: number, signal?: AbortSignal): Promise<{ placed: boolean; err?: Error; hash?: string }[]> {
    const r = await this.run(target, { op: 'put', items }, timeoutMs, `writing ${items.length} files`, signal);
    if (!('puts' in r)) throw new Error(`LocalIo: unexpected reply to a put job: ${JSON.stringify(r)}`);
    return r.puts.map((p, k) => (!('bytes' in p) ? { placed: false, err: fileError(p) }
      : p.changed ? { placed: true, err: new SourceError(`source changed while copying: ${items[k].label}`, 'changed') }
      : { placed: true, hash: p.hash }));
  }

  /**
   * Lay small settled files out as one tar in one worker job within `timeoutMs` (PackItem), for target
   * `target`'s put: each member as tar-stream's pack() would write it (tarLib.memberHeader), its bytes read in
   * place and proven, then padded; no end-of-archive blocks (the tar goes on). `tar`: the members of the files
   * read whole, in order. One entry per item: its mode and xxh64; or `err` (its member is not in `tar`):
   * SourceError(changed) when its bytes were not the settled content or it changed after the read, openSettled's
   * SourceError when it is not the file that settled, or the errno error. Throws TargetError(timeout) when the
   * job as a whole took too long.
   */
  async packMany(target: string, items: PackItem[], timeoutMs: number): Promise<{ tar: Buffer; reads: ({ mode: number; hash: string } | { err: Error })[] }> {
    const r = await this.run(target, { op: 'pack', items }, timeoutMs, `reading ${items.length} sources`);
    if (!('packed' in r)) throw new Error(`LocalIo: unexpected reply to a pack job: ${JSON.stringify(r)}`);
    return {
      tar: Buffer.from(r.buf, 0, r.bytes),
      reads: r.packed.map((x, k) => (!('at' in x) ? { err: fileError(x) }
        : x.changed ? { err: new SourceError(`source changed while copying: ${items[k].label}: not published`, 'changed') }
        : { mode: x.mode, hash: x.hash })),
    };
  }

  /**
   * The buffer of a packMany answer (`tar`), given back once its bytes are written and nothing holds it: a later
   * pack job fills it instead of fresh memory, which the kernel faults in page by page (10k files of 4 KiB read
   * into fresh buffers in 330-430 ms of one thread, into one buffer in 135-184 ms). Moved, not copied: a view
   * of it left here reads as empty from then on.
   */
  recycle(tar: Buffer): void {
    const slot = this.workers[this.next++ % this.size];
    if (!slot?.ready || tar.byteOffset !== 0 || tar.buffer.byteLength === 0) return;
    const job: SpareJob = { op: 'spare', id: 0, buf: tar.buffer as ArrayBuffer };
    slot.w.postMessage([job], [job.buf]);
  }

  /**
   * xxh64 of each of `files` (absolute paths), spread over the workers, within `timeoutMs` per share. A file
   * that cannot be read is left out of the result (the caller reads it again on its own, to say why).
   */
  async hashMany(target: string, files: string[], timeoutMs: number): Promise<Map<string, string>> {
    const n = Math.min(this.size, Math.ceil(files.length / 16));
    // contiguous runs (the caller sorts by path: a disk reads each run mostly sequentially), one per worker
    const per = Math.ceil(files.length / n);
    const shares = Array.from({ length: n }, (_, k) => files.slice(k * per, (k + 1) * per)).filter((x) => x.length);
    const out = new Map<string, string>();
    await Promise.all(shares.map(async (share) => {
      const r = await this.run(target, { op: 'hash', files: share }, timeoutMs, `hashing ${share.length} files`);
      if ('hashes' in r) r.hashes.forEach((h, i) => { if (h !== null) out.set(share[i], h); });
    }));
    return out;
  }

  /** End every worker (a later job starts new ones). */
  async close(): Promise<void> {
    const slots = this.workers.splice(0, this.size, ...Array.from({ length: this.size }, () => undefined));
    await Promise.all(slots.map((s) => s?.w.terminate().catch(() => undefined)));
  }
}

let shared: LocalIo | undefined;

/**
 * What a worker's reply about one source file says went wrong: its bytes were not the settled content (nothing
 * published), it is not the file that settled (openSettled's SourceError), or the errno error.
 */
function fileError(x: { mismatch: string } | { source: string; errorClass: ErrorClass } | { error: string; code: string }): Error {
  return 'mismatch' in x ? new SourceError(`source changed while copying: ${x.mismatch}: not published`, 'changed')
    : 'source' in x ? new SourceError(x.source, x.errorClass)
    : Object.assign(new Error(x.error), { code: x.code });
}

/** Files a pass must copy before the workers are started ahead of it (warmLocalIo): a worker takes ~100 ms to start. */
const WARM_FILES = 256;

/**
 * A kind's `warm` (kind.ts) for the kinds whose puts use these workers (local: its copies; tape: its sources'
 * reads): started while the main thread hashes or plans, not after, once `files` are worth them.
 */
export function warmLocalIo(files: number): void {
  if (files >= WARM_FILES) localIo().warm();
}

/** The process's LocalIo workers (made on first use; unref'd, so nothing needs to close them). */
export function localIo(): LocalIo {
  shared ??= new LocalIo();
  return shared;
}
