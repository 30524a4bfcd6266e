import type { Readable } from 'node:stream';
import { Transform } from 'node:stream';
import { ERROR_POLICY, TargetError, toTargetError } from '../errors.js';
import { SMALL_FILE } from '../hash/xxh64.js';
import { withDeadline } from '../queue/deadline.js';
import type { PutSource } from './source.js';
import {
  type Archive, type BatchPut, type CheckReport, type Links, type PutOptions, type RandomRead, type ReadBack, type ReadBackOptions, type RemoteHash, type Target, type TempFiles,
  type Versions, hasArchive, hasBatchPut, hasLinks, hasRandomRead, hasRemoteHash, hasTempFiles, hasVersions, readBackEach,
} from './target.js';

/**
 * Wrappers that any target gets, the way restic wraps its backends: bandwidth limit (innermost), a timeout
 * per operation, retries with exponential backoff (outermost). Each is a Target itself, so they compose and
 * pass the same conformance suite.
 */
type Op = 'put' | 'sync' | 'readBack' | 'hash' | 'stat' | 'get' | 'list' | 'putLink' | 'readLink' | 'check' | 'hashMany' | 'removeTemps'
  | 'keepAside' | 'listVersions' | 'removeVersion';
type Signal = { signal?: AbortSignal };

/**
 * Delegates every call to `inner` through around(); subclasses decide what happens around each call. It offers
 * exactly the capabilities the inner target offers (target.ts guards see the same kind through the wrapper).
 */
abstract class TargetWrapper implements Target, Partial<RandomRead & Links & RemoteHash & TempFiles & Versions & BatchPut> {
  readonly putMany?: BatchPut['putMany'];
  readonly hash?: RandomRead['hash'];
  readonly stat?: RandomRead['stat'];
  readonly get?: RandomRead['get'];
  readonly list?: RandomRead['list'];
  readonly putLink?: Links['putLink'];
  readonly readLink?: Links['readLink'];
  readonly hashMany?: RemoteHash['hashMany'];
  readonly removeTemps?: TempFiles['removeTemps'];
  readonly keepAside?: Versions['keepAside'];
  readonly listVersions?: Versions['listVersions'];
  readonly removeVersion?: Versions['removeVersion'];
  readonly attachCatalog?: Archive['attachCatalog'];
  readonly openTape?: Archive['openTape'];
  readonly closeTape?: Archive['closeTape'];
  readonly extract?: Archive['extract'];
  readonly locate?: Archive['locate'];
  constructor(readonly inner: Target) {
    const t = inner;
    if (hasArchive(t)) { // the catalog's own calls: no I/O to time or retry, but extract (a whole read, timed)
      this.attachCatalog = (h) => t.attachCatalog(h);
      this.openTape = (label, serial) => t.openTape(label, serial);
      this.closeTape = (label) => t.closeTape(label);
      this.extract = (rel, hash) => this.around('get', rel, undefined, true, () => t.extract(rel, hash));
      this.locate = (rel, hash) => t.locate(rel, hash);
    }
    if (hasBatchPut(t)) {
      // one operation (timed and retried as a whole: each item's put can be made again); each item's own error is
      // its answer, not retried here (the store's backoff takes it, as a failed put's)
      this.putMany = (items, o: PutOptions = {}) => this.around('put', `${items.length} files`, o.signal, true,
        async (signal) => { await this.beforePutMany(items, signal); return t.putMany(items, { ...o, signal }); });
    }
    if (hasRandomRead(t)) {
      this.hash = (rel, o: Signal = {}) => this.around('hash', rel, o.signal, true, (signal) => t.hash(rel, { signal }));
      this.stat = (rel) => this.around('stat', rel, undefined, true, () => t.stat(rel));
      this.get = (rel) => this.around('get', rel, undefined, true, () => t.get(rel));
      // the whole listing is one operation (timed and retried from the start): no half-listed answer
      this.list = (prefix) => this.listed(() => this.around('list', prefix || '.', undefined, true, async () => {
        const out: string[] = [];
        for await (const k of t.list(prefix)) out.push(k);
        return out;
      }));
    }
    if (hasLinks(t)) {
      this.putLink = (rel, text, o: PutOptions = {}) => this.around('putLink', rel, o.signal, true, (signal) => t.putLink(rel, text, { ...o, signal }));
      this.readLink = (rel) => this.around('readLink', rel, undefined, true, () => t.readLink(rel));
    }
    if (hasRemoteHash(t)) this.hashMany = (rels, o: Signal & { always?: boolean } = {}) => this.around('hashMany', `${rels.length} files`, o.signal, true, (signal) => t.hashMany(rels, { signal, always: o.always }));
    if (hasVersions(t)) {
      this.keepAside = (rel, v) => this.around('keepAside', rel, undefined, true, () => t.keepAside(rel, v));
      this.listVersions = (rel) => this.around('listVersions', rel, undefined, true, () => t.listVersions(rel));
      this.removeVersion = (v) => this.around('removeVersion', v, undefined, true, () => t.removeVersion(v));
    }
    if (hasTempFiles(t)) this.removeTemps = (dirs) => this.around('removeTemps', `${dirs.length} dirs`, undefined, true, () => t.removeTemps(dirs));
  }
  get name(): string { return this.inner.name; }

  private async *listed(all: () => Promise<string[]>): AsyncIterable<string> {
    yield* await all();
  }

  /** Run `fn` (the inner call) for operation `op`; `repeatable` is false when it consumed a one-shot stream. */
  protected abstract around<T>(op: Op, rel: string, signal: AbortSignal | undefined, repeatable: boolean, fn: (signal?: AbortSignal) => Promise<T>): Promise<T>;

  /** Before a putMany reaches the inner target (a bandwidth limit takes the items' bytes here). */
  protected beforePutMany(_items: { src: PutSource }[], _signal?: AbortSignal): Promise<void> {
    return Promise.resolve();
  }

  put(rel: string, src: PutSource, opts: PutOptions = {}): Promise<void> {
    // a PutSource reads from byte 0 every time: a put can always be called again
    return this.around('put', rel, opts.signal, true, (signal) => this.inner.put(rel, src, { ...opts, signal }));
  }
  sync(opts: Signal = {}): Promise<void> {
    return this.around('sync', '.', opts.signal, true, (signal) => this.inner.sync({ signal }));
  }
  /** Per file through this wrapper's own hash (each read timed and retried) where the kind reads at random; else the kind's batch. */
  readBack(rels: string[], opts: ReadBackOptions = {}): Promise<ReadBack> {
    if (this.hash) return readBackEach(this as unknown as RandomRead & Partial<RemoteHash>, rels, opts);
    return this.around('readBack', `${rels.length} files`, opts.signal, true, (signal) => this.inner.readBack(rels, { ...opts, signal }));
  }
  check(opts: Signal = {}): Promise<CheckReport> {
    return this.around('check', '.', opts.signal, true, (signal) => this.inner.check({ signal }));
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

/** Sleep `ms`, or reject with the signal's reason when it aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => { clearTimeout(timer); reject(signal!.reason); };
    const timer = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(); }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export interface RetryOptions {
  /** calls in all, the first included */
  attempts: number;
  /** wait before the first retry; doubled each time */
  baseMs: number;
  maxMs: number;
  /** injectable for tests */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** told of each retry (for the log) */
  onRetry?: (op: string, rel: string, err: TargetError, attempt: number, waitMs: number) => void;
}

/**
 * Classes where calling again at once cannot help: the store's retry policy (backoff across passes) takes
 * them. A timeout already waited the full configured time: retrying here would multiply it.
 */

/** Retry transient failures (a dropped connection, a 5xx, EIO) with exponential backoff and jitter. */
export class RetryingTarget extends TargetWrapper {
  constructor(inner: Target, readonly opts: RetryOptions) { super(inner); }

  protected async around<T>(op: Op, rel: string, signal: AbortSignal | undefined, repeatable: boolean, fn: (signal?: AbortSignal) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn(signal);
      } catch (err) {
        const e = toTargetError(err, this.name, `[${this.name}] ${op} ${rel}`);
        if (e.permanent || !ERROR_POLICY[e.errorClass].retryOp || !repeatable || signal?.aborted || attempt >= this.opts.attempts) throw e;
        // full jitter on the upper half: spread the retries of many files without ever retrying at once
        const cap = Math.min(this.opts.maxMs, this.opts.baseMs * 2 ** (attempt - 1));
        const wait = Math.round(cap / 2 + (Math.random() * cap) / 2);
        this.opts.onRetry?.(op, rel, e, attempt, wait);
        await (this.opts.sleep ?? sleep)(wait, signal);
      }
    }
  }
}

/**
 * A deadline on every call: data operations (put, hash, get) get `copyMs`, the others `commandMs`. On expiry
 * the call's signal is aborted and the caller gets TargetError(timeout) at once, even from a target that
 * ignores its signal (a hung server must never hang the agent).
 */
export class TimeoutTarget extends TargetWrapper {
  /** calls that timed out and have not returned yet (each holds a thread or a request somewhere), and since when */
  private hung = 0;
  private hungSince = 0;
  constructor(inner: Target, readonly opts: { copyMs: number; commandMs: number }) { super(inner); }

  protected around<T>(op: Op, rel: string, signal: AbortSignal | undefined, _r: boolean, fn: (signal?: AbortSignal) => Promise<T>): Promise<T> {
    if (this.hung > 0) {
      // Do not pile more calls onto a target that has not answered: on a hung disk each one would hold
      // another thread until the disk comes back.
      return Promise.reject(new TargetError(`[${this.name}] ${op} ${rel}: not called: ${this.hung} earlier call(s) hung for ${Math.round((Date.now() - this.hungSince) / 1000)} s and have not returned`, { target: this.name, errorClass: 'timeout' }));
    }
    // a tape's sync ends a tape file (its last blocks, fsync or the filemark): data work, like a put
    const data = op === 'put' || op === 'hash' || op === 'get' || op === 'hashMany' || op === 'list' || op === 'readBack' || (op === 'sync' && hasArchive(this.inner));
    const ms = data ? this.opts.copyMs : this.opts.commandMs;
    let inner: Promise<T> | undefined;
    const timedOut = () => new TargetError(`[${this.name}] ${op} ${rel}: timed out after ${ms} ms`, { target: this.name, errorClass: 'timeout' });
    return withDeadline(ms, signal, (s) => (inner = fn(s)), timedOut).catch((err: unknown) => {
      if (inner && err instanceof TargetError && err.errorClass === 'timeout' && !(signal?.aborted)) {
        if (this.hung++ === 0) this.hungSince = Date.now();
        inner.then(() => this.hung--, () => this.hung--);
      }
      throw err;
    });
  }

  override close(): Promise<void> {
    // never wait on a target that did not answer (close() of a local target syncs it)
    if (this.hung > 0) return Promise.resolve();
    return withDeadline(this.opts.commandMs, undefined, () => this.inner.close()).catch(() => undefined);
  }
}

/**
 * A token bucket shared by every transfer to one target: `bytesPerSec` on average, bursts up to `burst` bytes.
 * `now` and `sleep` are injectable so tests measure it on a virtual clock.
 */
export class Throttle {
  private debt = 0;
  private last: number;
  constructor(readonly bytesPerSec: number, readonly burst = Math.max(64 * 1024, bytesPerSec / 10),
    private readonly now: () => number = () => performance.now(),
    private readonly wait: (ms: number, signal?: AbortSignal) => Promise<void> = sleep) {
    this.last = this.now();
  }

  /** Account for `n` bytes; resolves when sending them keeps the average rate. */
  async take(n: number, signal?: AbortSignal): Promise<void> {
    const t = this.now();
    this.debt = Math.max(0, this.debt - ((t - this.last) * this.bytesPerSec) / 1000) + n;
    this.last = t;
    const over = this.debt - this.burst;
    if (over > 0) await this.wait((over * 1000) / this.bytesPerSec, signal);
  }

  /** A pass-through stream that paces what flows through it. */
  stream(signal?: AbortSignal): Transform {
    return new Transform({
      transform: (chunk: Buffer, _enc, cb) => { this.take(chunk.length, signal).then(() => cb(null, chunk), cb); },
    });
  }
}

/**
 * `bwlimit` (bytes/s) on what is sent to the target: every put's bytes pass one shared Throttle (a small
 * file's whole size is taken before it is read; a big file's stream is paced chunk by chunk).
 */
export class BwlimitTarget extends TargetWrapper {
  constructor(inner: Target, readonly throttle: Throttle) { super(inner); }

  protected around<T>(_op: Op, _rel: string, signal: AbortSignal | undefined, _r: boolean, fn: (signal?: AbortSignal) => Promise<T>): Promise<T> {
    return fn(signal);
  }

  /** A batch takes all its bytes at once, as one small file does (the copier batches small files only). */
  protected override async beforePutMany(items: { src: PutSource }[], signal?: AbortSignal): Promise<void> {
    await this.throttle.take(items.reduce((a, i) => a + i.src.size, 0), signal);
  }

  override async put(rel: string, src: PutSource, opts: PutOptions = {}): Promise<void> {
    if (src.size <= SMALL_FILE) {
      await this.throttle.take(src.size, opts.signal);
      return this.inner.put(rel, src, opts);
    }
    const throttle = this.throttle;
    const paced: PutSource = {
      size: src.size, mode: src.mode, mtimeMs: src.mtimeMs, hash: src.hash,
      readAll: () => src.readAll(),
      stream(): Readable {
        const input = src.stream();
        const pacer = throttle.stream(opts.signal);
        input.on('error', (err) => pacer.destroy(err));
        return input.pipe(pacer);
      },
    };
    return this.inner.put(rel, paced, opts);
  }
}

export interface WrapOptions {
  copyMs: number;
  commandMs: number;
  bwlimit?: number;
  retry?: RetryOptions;
}

/** In-operation retries: 3 calls, 1 s then 2 s apart (at most 10 s). Longer outages are the store's backoff. */
export const DEFAULT_OP_RETRY: RetryOptions = { attempts: 3, baseMs: 1000, maxMs: 10_000 };

/** retry(timeout(bwlimit(target))): what every configured target is used through. */
export function wrapTarget(t: Target, o: WrapOptions): Target {
  let w: Target = t;
  if (o.bwlimit) w = new BwlimitTarget(w, new Throttle(o.bwlimit));
  w = new TimeoutTarget(w, { copyMs: o.copyMs, commandMs: o.commandMs });
  return new RetryingTarget(w, o.retry ?? DEFAULT_OP_RETRY);
}
