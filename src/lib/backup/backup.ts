import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { Store } from '../store/store.js';
import type { RunCounts } from '../store/model.js';
import type { WalkProblem } from '../scan/walk.js';
import type { Prewalk } from '../scan/prewalk.js';
import { settlesAt } from '../scan/settle.js';
import type { Target } from '../targets/target.js';
import { Engine } from './engine.js';
import { type RemovalResult, removalDue } from './deleteLocal.js';
import { MAX_TIMER_MS } from '../queue/timers.js';
import { isDue, isSettled, isSourceGone } from '../store/records.js';

export interface BackupOptions {
  /** only this target (by name) */
  target?: string;
  /** report what would be copied; write nothing */
  dryRun?: boolean;
  /** SIGINT/SIGTERM: stop taking work, abandon in-flight copies cleanly */
  signal?: AbortSignal;
  /** the command recorded in meta.lastRun */
  command?: string;
  /** wait for files seen changing, up to `settle` (true for `run`) */
  waitForSettle?: boolean;
  /** deleteLocalAfter: at most this many source files removed in this pass (default: the config's deleteLocalMax) */
  maxDelete?: number;
  /** tape targets: write what is pending now, however small the tape file (`run --flush`) */
  flush?: boolean;
  /** called with the pass's engine as it starts (progress display) */
  onStart?: (engine: Engine) => void;
  /** the sources, being walked in a worker since before the store was loaded (the reconcile takes its result) */
  prewalk?: Prewalk;
}

export interface BackupResult {
  ok: boolean;
  counts: RunCounts;
  /** target name -> the target-wide failure that stopped it this run */
  targetsDown: Record<string, { class: string; message: string }>;
  missingSources: string[];
  problems: WalkProblem[];
  /** dry run: path -> targets a copy is due to */
  wouldCopy?: Record<string, string[]>;
  /** targets the store snapshot could not be shipped to ("snapshot" when the snapshot itself failed) */
  shipFailed: string[];
  /** settled, existing files not verified on a target that was usable this run (failed earlier, waiting) */
  unverified?: number;
  /** deleteLocalAfter in this pass: what was removed, kept (live check) or could not be removed; why none was when blocked */
  removedLocally?: RemovalResult & { blocked?: string };
  /** completeness markers written in this pass (directory, target) */
  markersWritten?: { dir: string; target: string }[];
  /** dry run: source files deleteLocalAfter would remove (subject to the live check) */
  wouldRemove?: string[];
  /** files still changing when the pass ended (watch arms a settle timer for each) */
  waiting: string[];
}

/**
 * One backup pass (`replica run`; `watch` runs it at start and on every rescan): check targets, reconcile
 * the sources with the store, hash settled files, copy and verify every due file on every target, wait up
 * to `settle` for files seen changing and handle those that settled, save, snapshot the store and ship it
 * to every target. Never throws for a file or target failure: those are in the store and the result.
 */
export async function backup(config: Config, store: Store, targets: Target[], log: Logger, opts: BackupOptions = {}): Promise<BackupResult> {
  const signal = opts.signal ?? new AbortController().signal;
  return runPass(new Engine(config, store, targets.filter((t) => !opts.target || t.name === opts.target), log, signal), opts);
}

/**
 * One full pass on a long-lived Engine (what `backup` does; `watch` runs it at start and on every rescan, on
 * the Engine its events use): the targets are opened and checked once for the pass, and stay open after it.
 */
export async function runPass(engine: Engine, opts: Omit<BackupOptions, 'signal' | 'target'> = {}): Promise<BackupResult> {
  const { config, store, log, signal } = engine;
  const startedAt = new Date();
  engine.begin();
  engine.flushArchives = opts.flush ?? false;
  opts.onStart?.(engine);
  const phase = (name: string, t0: number) => log.verbose(`${name} took ${Math.round(performance.now() - t0)} ms`, { phase: name });
  let t0 = performance.now();
  const scan = await engine.scan(opts.prewalk);
  phase('scan', t0);
  const result: BackupResult = { ok: false, counts: engine.counts, targetsDown: engine.targetsDown, missingSources: scan.missingSources, problems: scan.problems, shipFailed: [], waiting: scan.waiting };

  if (opts.dryRun) {
    result.wouldCopy = {};
    const now = Date.now();
    const toHash = new Set(scan.toHash);
    for (const [p, r] of store.entries()) {
      if (isSourceGone(r)) continue;
      const due = engine.targets.filter((t) => (!isSettled(r) ? toHash.has(p) : isDue(r, t.name, now, config.retry))).map((t) => t.name);
      if (due.length) result.wouldCopy[p] = due;
    }
    if (config.deleteLocalAfterMs !== null) result.wouldRemove = removalDue(store, engine.names, config.deleteLocalAfterMs, opts.maxDelete ?? config.deleteLocalMax).sort();
    result.ok = true;
    return result;
  }

  await engine.openTargets();
  t0 = performance.now();
  await engine.hashAndCopy(scan.toHash, () => {
    phase('hash', t0);
    t0 = performance.now();
  });
  phase('copy', t0);
  if (opts.waitForSettle !== false && scan.waiting.length && !signal.aborted) {
    // Wait (at most `settle` from the start) for files seen changing, then take those that settled.
    const last = scan.waiting.reduce((m, p) => Math.max(m, settlesAt(store.get(p)!, config.settleMs)), 0);
    const until = Math.min(startedAt.getTime() + config.settleMs, last);
    if (until > Date.now()) await sleep(Math.min(until - Date.now(), MAX_TIMER_MS), undefined, { signal }).catch(() => undefined);
    if (!signal.aborted) {
      result.waiting = await engine.settle(scan.waiting);
      engine.counts.unsettled = result.waiting.length;
      await engine.copy();
    }
  }
  t0 = performance.now();
  const marked = await engine.writeMarkers();
  if (marked.length) result.markersWritten = marked;
  phase('markers', t0);
  t0 = performance.now();
  result.removedLocally = await engine.removeLocal(opts.maxDelete ?? config.deleteLocalMax);
  phase('delete-local', t0);
  if (!signal.aborted) engine.markTargetsOk();
  result.unverified = engine.unverified();
  const ok = !signal.aborted && engine.counts.failed === 0 && result.unverified === 0 && Object.keys(engine.targetsDown).length === 0
    && result.missingSources.length === 0 && result.problems.length === 0 && !result.removedLocally?.failed.length;
  store.meta.lastRun = { command: opts.command ?? 'run', startedAt: startedAt.toISOString(), endedAt: new Date().toISOString(), ok, counts: engine.counts };
  store.meta.heartbeatAt = new Date().toISOString();
  store.touchMeta();
  t0 = performance.now();
  if (!signal.aborted) result.shipFailed = await engine.saveAndShip();
  phase('save+ship', t0);
  result.ok = ok && result.shipFailed.length === 0;
  if (ok && !result.ok) {
    store.meta.lastRun.ok = false; // the snapshot or a store copy failed: the run did not end well
    store.touchMeta();
  }
  return result;
}
