import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from '../config/schema.js';
import { TargetError, messageOf, toTargetError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Store } from '../store/store.js';
import { emptyCounts, stateCode, type RunCounts } from '../store/model.js';
import type { WalkProblem } from '../scan/walk.js';
import { settlesAt } from '../scan/settle.js';
import type { Target } from '../targets/target.js';
import { TargetCopier } from './copier.js';
import { hashSettled } from './hashing.js';
import { reconcile, recheck } from './reconcile.js';
import { shipStore } from './shipStore.js';
import { isDue } from './states.js';
import { withDeadline } from '../queue/deadline.js';

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
  /** targets the store snapshot could not be shipped to */
  shipFailed: string[];
  /** settled, existing files not verified on a target that was usable this run (failed earlier, waiting) */
  unverified?: number;
}

/** Settled source files (not deleted) that are not verified (or ignored) on one of `targets`. */
function countUnverified(store: Store, targets: string[]): number {
  let n = 0;
  for (const [, r] of store.entries()) {
    if (r.s === undefined || r.d !== undefined) continue;
    if (targets.some((t) => { const c = stateCode(r.t[t]); return c !== 'v' && c !== 'i'; })) n++;
  }
  return n;
}

/**
 * One backup pass (`replica run`; `watch` runs it at start and on every rescan): check targets, reconcile
 * the sources with the store, hash settled files, copy and verify every due file on every target, wait up
 * to `settle` for files seen changing and handle those that settled, save, snapshot the store and ship it
 * to every target. Never throws for a file or target failure: those are in the store and the result.
 */
export async function backup(config: Config, store: Store, targets: Target[], log: Logger, opts: BackupOptions = {}): Promise<BackupResult> {
  const signal = opts.signal ?? new AbortController().signal;
  const counts = emptyCounts();
  const startedAt = new Date();
  const result: BackupResult = { ok: false, counts, targetsDown: {}, missingSources: [], problems: [], shipFailed: [] };
  const policy = config.retry;
  const names = config.targets.map((t) => t.name);
  const active = targets.filter((t) => !opts.target || t.name === opts.target);
  const recordDown = (name: string, err: TargetError) => {
    result.targetsDown[name] = { class: err.errorClass, message: err.message };
    const m = (store.meta.targets[name] ??= { url: config.targets.find((t) => t.name === name)?.url ?? '' });
    m.lastError = { class: err.errorClass, message: err.message, at: new Date().toISOString() };
    store.touchMeta();
    log.error(`target ${name} unusable for this run: [${err.errorClass}] ${err.message}`, { target: name, class: err.errorClass });
  };

  store.meta.heartbeatAt = startedAt.toISOString();
  store.meta.sources = config.sources.map((s) => s.path);
  for (const t of config.targets) store.meta.targets[t.name] = { ...store.meta.targets[t.name], url: t.url };
  const phase = (name: string, t0: number) => log.verbose(`${name} took ${Math.round(performance.now() - t0)} ms`, { phase: name });
  let t0 = performance.now();
  const rec = reconcile(config, store, counts, log);
  phase('scan', t0);
  result.missingSources = rec.missingSources;
  result.problems = rec.problems;

  if (opts.dryRun) {
    result.wouldCopy = {};
    const now = Date.now();
    const toHash = new Set(rec.toHash);
    for (const [p, r] of store.entries()) {
      if (r.d !== undefined) continue;
      const due = active.filter((t) => (r.s === undefined ? toHash.has(p) : isDue(r, t.name, now, policy))).map((t) => t.name);
      if (due.length) result.wouldCopy[p] = due;
    }
    result.ok = true;
    return result;
  }

  const copiers: TargetCopier[] = [];
  for (const t of active) {
    try {
      await t.check();
    } catch (err) {
      const e = toTargetError(err, t.name, `[${t.name}] check`);
      // A full target still takes the per-file path, so every file records its own ENOSPC.
      if (e.targetWide || e.errorClass === 'unreachable') { recordDown(t.name, e); continue; }
      log.warn(`target ${t.name}: ${e.message}`);
    }
    const cfg = config.targets.find((c) => c.name === t.name)!;
    copiers.push(new TargetCopier(t, Math.min(cfg.concurrency, t.capabilities.maxConnections), {
      host: config.host, store, log, policy, counts, signal,
      copyTimeoutMs: cfg.timeouts.copyMs, commandTimeoutMs: cfg.timeouts.commandMs,
    }));
  }

  const copyDue = async (): Promise<void> => {
    const now = Date.now();
    const due = new Map<TargetCopier, string[]>(copiers.map((c) => [c, []]));
    for (const [p, r] of store.entries()) for (const c of copiers) if (!c.down && isDue(r, c.target.name, now, policy)) due.get(c)!.push(p);
    await Promise.all(copiers.map((c) => c.copyAll(due.get(c)!.sort())));
  };

  t0 = performance.now();
  await hashSettled(rec.toHash, store, names, policy, counts, log, signal);
  phase('hash', t0);
  t0 = performance.now();
  await copyDue();
  phase('copy', t0);
  if (opts.waitForSettle !== false && rec.waiting.length && !signal.aborted) {
    // Wait (at most `settle` from the start) for files seen changing, then take those that settled.
    const last = rec.waiting.reduce((m, p) => Math.max(m, settlesAt(store.get(p)!, config.settleMs)), 0);
    const until = Math.min(startedAt.getTime() + config.settleMs, last);
    if (until > Date.now()) await sleep(until - Date.now(), undefined, { signal }).catch(() => undefined);
    if (!signal.aborted) {
      const again = recheck(rec.waiting, store, config.settleMs);
      counts.unsettled = again.waiting.length;
      await hashSettled(again.toHash, store, names, policy, counts, log, signal);
      await copyDue();
    }
  }

  for (const c of copiers) {
    if (c.down) recordDown(c.target.name, c.down);
    else if (!signal.aborted) {
      const m = store.meta.targets[c.target.name];
      delete m.lastError;
      m.lastOkAt = new Date().toISOString();
    }
  }
  result.unverified = countUnverified(store, copiers.filter((c) => !c.down).map((c) => c.target.name));
  const ok = !signal.aborted && counts.failed === 0 && result.unverified === 0 && Object.keys(result.targetsDown).length === 0
    && result.missingSources.length === 0 && result.problems.length === 0;
  store.meta.lastRun = { command: opts.command ?? 'run', startedAt: startedAt.toISOString(), endedAt: new Date().toISOString(), ok, counts };
  store.meta.heartbeatAt = new Date().toISOString();
  store.touchMeta();
  t0 = performance.now();
  // With snapshots off, ship the live files: each is replaced only by rename, so each is read whole.
  const snap = signal.aborted ? undefined : (await store.snapshot()) ?? store.dir;
  phase('save', t0);
  t0 = performance.now();
  if (snap) {
    for (const c of copiers) {
      if (c.down) continue;
      try {
        await withDeadline(c.ctx.copyTimeoutMs, signal, (sig) => shipStore(c.target, snap, config.host, sig));
      } catch (err) {
        result.shipFailed.push(c.target.name);
        log.error(`store copy to ${c.target.name} failed: ${messageOf(err)}`, { target: c.target.name });
      }
    }
  }
  phase('ship', t0);
  result.ok = ok && result.shipFailed.length === 0;
  return result;
}
