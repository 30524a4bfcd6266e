import { Worker } from 'node:worker_threads';
import type { Config } from '../config/schema.js';
import { storeFileBytes } from '../store/store.js';
import { workerEntry } from '../workerEntry.js';
import { type Entry, KIND_CODES, NUMS, type WalkMessage, type WalkProblem, type WalkRequest } from './walk.js';

/** What the worker found in one source, in walk order; the last event of a source says whether its root existed. */
export type WalkEvent = { paths: string[]; nums: Float64Array } | { problem: WalkProblem } | { rootOk: boolean };

/** The entries of a batch, as walk() gives them. */
export function* entriesOf(batch: { paths: string[]; nums: Float64Array }): Generator<Entry> {
  const { paths, nums } = batch;
  for (let k = 0, o = 0; k < paths.length; k++, o += NUMS) {
    yield { path: paths[k], kind: KIND_CODES[nums[o]], size: nums[o + 1], mtimeMs: nums[o + 2], ino: nums[o + 3], ctimeMs: nums[o + 4], mode: nums[o + 5] };
  }
}

/**
 * Bytes of store records from which a command walks its sources in a worker thread while the store loads: a
 * smaller store loads in less time than a worker takes to start (50-110 ms here). 1 MiB is ~5k records.
 */
const PREWALK_STORE_BYTES = 1 << 20;

/**
 * The sources of `config`, walked in a worker thread started now (walkWorker.ts), so the walk (lstat of every
 * file: ~0.7 s for 100k files here) runs while the main thread loads the store (~0.5 s for 100k records), and
 * its results are reconciled as they arrive (reconcileWalked). `startedAt` is when the walk began. The
 * worker never keeps the process alive.
 */
export class Prewalk {
  readonly startedAt = Date.now();
  private readonly worker: Worker;
  /** per source: what arrived and was not taken yet */
  private readonly queues: WalkEvent[][];
  /** batches taken so far (shared with the worker, which posts at most `ahead` more) */
  private readonly taken = new Int32Array(new SharedArrayBuffer(4));
  private failed = false;
  private wake?: () => void;

  /**
   * `ahead`: batches the worker may post before the main thread takes them. The store of a big tree loads
   * for seconds, and every batch waiting costs memory (~300 bytes a file): 64 batches are 262k files.
   */
  constructor(config: Config, ahead = 64) {
    const req: WalkRequest = { sources: config.sources.map((s) => ({ path: s.path, include: s.include, exclude: s.exclude })), globalExclude: config.exclude, taken: this.taken, ahead };
    this.queues = req.sources.map(() => []);
    this.worker = new Worker(workerEntry('walkWorker', import.meta.url), { workerData: req });
    this.worker.unref();
    this.worker.on('message', (m: WalkMessage) => {
      const q = this.queues[m.src];
      if ('paths' in m) q.push({ paths: m.paths, nums: m.nums });
      else if ('problem' in m) {
        const raw = m.problem.raw && Buffer.from(m.problem.raw.buffer, m.problem.raw.byteOffset, m.problem.raw.byteLength); // a Buffer arrives as a Uint8Array
        q.push({ problem: { ...m.problem, ...(raw ? { raw } : {}) } });
      } else q.push({ rootOk: m.rootOk });
      this.wake?.();
    });
    const fail = () => { this.failed = true; this.wake?.(); };
    this.worker.on('error', fail);
    this.worker.on('exit', fail); // after its last message: events already queued are still taken
  }

  /**
   * Source `i`'s walk, as it arrives; it ends with `{ rootOk }`, or without it when the worker failed (the
   * caller walks the rest itself). Sources are walked in order: take them in order.
   */
  async *events(i: number): AsyncGenerator<WalkEvent> {
    const q = this.queues[i];
    for (;;) {
      while (q.length) {
        const ev = q.shift()!;
        if ('paths' in ev) { Atomics.add(this.taken, 0, 1); Atomics.notify(this.taken, 0); } // one more may come
        yield ev;
        if ('rootOk' in ev) return;
      }
      if (this.failed) return;
      await new Promise<void>((resolve) => { this.wake = resolve; });
      this.wake = undefined;
    }
  }

  /** Batches arrived and not taken yet, in every source. */
  get waiting(): number {
    return this.queues.reduce((n, q) => n + q.filter((ev) => 'paths' in ev).length, 0);
  }

  /** End the worker (a command that stops before its reconcile). */
  stop(): void {
    void this.worker.terminate().catch(() => undefined);
  }
}

/** A Prewalk of `config`'s sources when its store is big enough to be worth one (PREWALK_STORE_BYTES), else undefined. */
export function prewalkFor(config: Config): Prewalk | undefined {
  // a new store (0 bytes): nothing to load meanwhile
  return storeFileBytes(config.store) >= PREWALK_STORE_BYTES && config.sources.length ? new Prewalk(config) : undefined;
}
