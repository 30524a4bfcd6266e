import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { TargetError, classifyErrno } from '../errors.js';

/**
 * A copy to fetch: read `src`, check it hashes to `hash`, write it as `dir/temp` with its mode and `mtimeMs`
 * (the copy's when absent), then rename it to `dir/final` when given.
 */
export interface FetchJob { op: 'fetch'; id: number; src: string; dir: string; temp: string; final?: string; hash: string; mtimeMs?: number }
/** Files to hash (a batch of a read-back): each opened without following a symlink. */
export interface HashJob { op: 'hash'; id: number; files: string[] }
export type IoJob = FetchJob | HashJob;
export type IoReply = { id: number } & ({ bytes: number } | { mismatch: string } | { error: string; code: string; write?: true } | { hashes: (string | null)[] });

interface Slot { w: Worker; pending: Map<number, { resolve: (r: IoReply) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }> }

/**
 * Worker threads that read files on this machine with synchronous I/O (localIoWorker.ts): an asynchronous fs
 * call costs ~35 us here (libuv's thread pool), a synchronous one ~3 us, so restoring or reading back many
 * small files is not paced by the pool, and hashing runs on every core. Each job has a deadline: a worker
 * stuck on a hung disk fails its jobs with class `timeout` and is replaced (the stuck thread is left behind;
 * the supervisor ends the process if it cannot exit). Workers are unref'd: they never keep the process alive.
 */
export class LocalIo {
  private readonly workers: Slot[] = [];
  private next = 0;
  private ids = 0;

  constructor(readonly size = Math.max(4, Math.min(8, os.availableParallelism()))) {
    for (let i = 0; i < size; i++) this.workers.push(this.spawn());
  }

  private spawn(): Slot {
    const w = new Worker(new URL('./localIoWorker.js', import.meta.url));
    const slot: Slot = { w, pending: new Map() };
    w.on('message', (r: IoReply) => {
      const p = slot.pending.get(r.id);
      if (!p) return;
      slot.pending.delete(r.id);
      clearTimeout(p.timer);
      p.resolve(r);
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
    void slot.w.terminate().catch(() => undefined);
    this.workers[i] = this.spawn();
  }

  private run(target: string, job: Omit<FetchJob, 'id'> | Omit<HashJob, 'id'>, timeoutMs: number, what: string): Promise<IoReply> {
    const slot = this.workers[this.next++ % this.workers.length];
    const id = ++this.ids;
    return new Promise<IoReply>((resolve, reject) => {
      const timer = setTimeout(() => this.fail(slot, new TargetError(`[${target}] ${what} took longer than ${timeoutMs} ms`, { target, errorClass: 'timeout' })), timeoutMs);
      slot.pending.set(id, { resolve, reject, timer });
      slot.w.postMessage({ ...job, id });
    });
  }

  /**
   * Fetch one copy of target `target` into a temp file within `timeoutMs`. Resolves with the bytes written;
   * throws TargetError (`mismatch`: nothing left written; `missing`, `timeout`, the errno's class), or a plain
   * Error when the temp file cannot be written.
   */
  async fetch(target: string, job: Omit<FetchJob, 'id' | 'op'>, timeoutMs: number): Promise<{ bytes: number }> {
    const r = await this.run(target, { op: 'fetch', ...job }, timeoutMs, `reading ${job.src}`);
    if ('mismatch' in r) throw new TargetError(`[${target}] ${job.src} reads back as ${r.mismatch}, expected ${job.hash}`, { target, errorClass: 'mismatch' });
    if ('error' in r) {
      if (r.write) throw new Error(r.error);
      const cls = classifyErrno(Object.assign(new Error(r.error), { code: r.code }));
      throw new TargetError(`[${target}] ${r.error}`, { target, errorClass: cls === 'vanished' ? 'missing' : cls });
    }
    return r as { bytes: number };
  }

  /**
   * xxh64 of each of `files` (absolute paths), spread over the workers, within `timeoutMs` per share. A file
   * that cannot be read is left out of the result (the caller reads it again on its own, to say why).
   */
  async hashMany(target: string, files: string[], timeoutMs: number): Promise<Map<string, string>> {
    const n = Math.min(this.workers.length, Math.ceil(files.length / 16));
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

  async close(): Promise<void> {
    await Promise.all(this.workers.map((s) => s.w.terminate().catch(() => undefined)));
  }
}

let shared: LocalIo | undefined;

/** The process's LocalIo workers (made on first use; unref'd, so nothing needs to close them). */
export function localIo(): LocalIo {
  shared ??= new LocalIo();
  return shared;
}
