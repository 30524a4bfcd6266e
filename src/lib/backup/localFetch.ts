import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { TargetError, classifyErrno } from '../errors.js';

/**
 * A copy to fetch: read `src`, check it hashes to `hash`, write it as `dir/temp` with its mode and `mtimeMs`
 * (the copy's when absent), then rename it to `dir/final` when given.
 */
export interface FetchJob { id: number; src: string; dir: string; temp: string; final?: string; hash: string; mtimeMs?: number }
export type FetchReply = { id: number } & ({ bytes: number } | { mismatch: string } | { error: string; code: string; write?: true });

interface Pending { resolve: (r: FetchReply) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }

/**
 * A few worker threads that fetch copies from a local target with synchronous I/O (localFetchWorker.ts).
 * Each fetch has a deadline (`timeoutMs`): a worker stuck on a hung disk fails its jobs with class `timeout`
 * and is replaced (the stuck thread is left behind; the supervisor ends the process when it cannot exit).
 */
export class LocalFetch {
  private readonly workers: { w: Worker; pending: Map<number, Pending> }[] = [];
  private next = 0;
  private ids = 0;

  constructor(size = Math.min(4, Math.max(1, os.availableParallelism()))) {
    for (let i = 0; i < size; i++) this.workers.push(this.spawn());
  }

  private spawn(): { w: Worker; pending: Map<number, Pending> } {
    const w = new Worker(new URL('./localFetchWorker.js', import.meta.url));
    const slot = { w, pending: new Map<number, Pending>() };
    w.on('message', (r: FetchReply) => {
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
  private fail(slot: { w: Worker; pending: Map<number, Pending> }, err: Error): void {
    const i = this.workers.indexOf(slot);
    if (i < 0) return;
    for (const p of slot.pending.values()) { clearTimeout(p.timer); p.reject(err); }
    slot.pending.clear();
    void slot.w.terminate().catch(() => undefined);
    this.workers[i] = this.spawn();
  }

  /**
   * Fetch one copy of target `target` into a temp file within `timeoutMs`. Resolves with the bytes written;
   * throws TargetError (`mismatch`: nothing left written; `missing`, `timeout`, the errno's class), or a plain
   * Error when the temp file cannot be written.
   */
  async fetch(target: string, job: Omit<FetchJob, 'id'>, timeoutMs: number): Promise<{ bytes: number }> {
    const slot = this.workers[this.next++ % this.workers.length];
    const id = ++this.ids;
    const r = await new Promise<FetchReply>((resolve, reject) => {
      const timer = setTimeout(() => this.fail(slot, new TargetError(`[${target}] reading ${job.src} took longer than ${timeoutMs} ms`, { target, errorClass: 'timeout' })), timeoutMs);
      slot.pending.set(id, { resolve, reject, timer });
      slot.w.postMessage({ ...job, id });
    });
    if ('mismatch' in r) throw new TargetError(`[${target}] ${job.src} reads back as ${r.mismatch}, expected ${job.hash}`, { target, errorClass: 'mismatch' });
    if ('error' in r) {
      if (r.write) throw new Error(r.error);
      const cls = classifyErrno(Object.assign(new Error(r.error), { code: r.code }));
      throw new TargetError(`[${target}] ${r.error}`, { target, errorClass: cls === 'vanished' ? 'missing' : cls });
    }
    return r;
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((s) => s.w.terminate().catch(() => undefined)));
  }
}
