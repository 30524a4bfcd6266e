import fs from 'node:fs';
import type { Config, SourceConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { Store } from '../store/store.js';
import type { RunCounts } from '../store/model.js';
import { PathFilter } from '../scan/filter.js';
import { type Prewalk, entriesOf } from '../scan/prewalk.js';
import { walk, type Entry, type WalkProblem } from '../scan/walk.js';
import { observationChanged, observationOf, observe, settleRuleHolds } from '../scan/settle.js';
import { lstatUnder, rootOf } from '../scan/sourceFs.js';
import { isDeleted, isSettled, isSourceGone, markDeleted, markPresent, resetTargets, unsettle } from '../store/records.js';

export interface ReconcileResult {
  /** settled files whose content must be hashed */
  toHash: string[];
  /** files seen changing: not settled yet */
  waiting: string[];
  problems: WalkProblem[];
  /** source roots that are missing or empty while the store knows files under them */
  missingSources: string[];
}

/** Is there a live (not deleted) record under `root`? */
export function storeKnows(store: Store, root: string): boolean {
  for (const [p, r] of store.entries()) if (!isSourceGone(r) && p.startsWith(root + '/')) return true;
  return false;
}

/**
 * The reconcile scan: walk every source, bring the store up to date with what is there (new files,
 * changed files, symlinks, deletions), and sort files into "hash now" and "still changing". Nothing is
 * propagated for deletions: the record gets `deletedAt`. A source root that is gone or empty while the store
 * knows files under it is `source-missing` and nothing of it changes (an unmounted disk is not a deletion).
 */
export function reconcile(config: Config, store: Store, counts: RunCounts, log: Logger, now = Date.now()): ReconcileResult {
  const res: ReconcileResult = { toHash: [], waiting: [], problems: [], missingSources: [] };
  for (const src of config.sources) {
    const rootOk = fs.existsSync(src.path);
    const s = new SourceScan(config, store, counts, log, now, res, src);
    if (rootOk) walk(src.path, s.filter, s.onEntry, s.onProblem);
    s.finish(rootOk);
  }
  return res;
}

/**
 * reconcile(), with the sources walked by `prewalk` (in a worker, since before the store was loaded): each
 * batch is taken as it arrives, so the main thread reconciles while the worker walks on. `now` is when the
 * walk began (every entry was seen after it, as in reconcile). Should the worker fail, the rest of the source
 * is walked here (an entry or a problem taken already is not taken twice).
 */
export async function reconcileWalked(config: Config, store: Store, counts: RunCounts, log: Logger, prewalk: Prewalk): Promise<ReconcileResult> {
  const res: ReconcileResult = { toHash: [], waiting: [], problems: [], missingSources: [] };
  for (const [i, src] of config.sources.entries()) {
    const s = new SourceScan(config, store, counts, log, prewalk.startedAt, res, src);
    let rootOk: boolean | undefined;
    for await (const ev of prewalk.events(i)) {
      if ('rootOk' in ev) rootOk = ev.rootOk;
      else if ('problem' in ev) s.onProblem(ev.problem);
      else for (const e of entriesOf(ev)) s.onEntry(e);
    }
    if (rootOk === undefined) { // the worker failed
      log.warn(`scan: the walk worker failed; walking ${src.path} here`);
      rootOk = fs.existsSync(src.path);
      const said = new Set(res.problems.map((p) => `${p.kind}\0${p.path}`));
      if (rootOk) walk(src.path, s.filter, (e) => { if (!s.seen.has(e.path)) s.onEntry(e); }, (p) => { if (!said.has(`${p.kind}\0${p.path}`)) s.onProblem(p); });
    }
    s.finish(rootOk);
  }
  return res;
}

/** One source's part of a reconcile: the walk's entries and problems go to onEntry and onProblem, then finish(). */
class SourceScan {
  readonly seen = new Set<string>();
  readonly filter: PathFilter;
  private readonly unreadable: string[] = [];
  private readonly before: number;
  private readonly targetNames: string[];

  constructor(private readonly config: Config, private readonly store: Store, private readonly counts: RunCounts, private readonly log: Logger,
    private readonly now: number, private readonly res: ReconcileResult, private readonly src: SourceConfig) {
    this.filter = PathFilter.forSource(src, config.exclude);
    this.before = counts.scanned;
    this.targetNames = config.targets.map((t) => t.name);
  }

  // Entries are handled as the walk finds them. A source that turns out empty made no change to the store.
  readonly onEntry = (e: Entry): void => {
    this.seen.add(e.path);
    this.counts.scanned++;
    const next = observeEntry(this.store, e, this.now, this.config.settleMs, this.targetNames, this.counts);
    if (next === 'hash') this.res.toHash.push(e.path);
    else if (next === 'wait') { this.res.waiting.push(e.path); this.counts.unsettled++; }
  };

  readonly onProblem = (p: WalkProblem): void => {
    this.res.problems.push(p);
    if (p.kind === 'unreadable') this.unreadable.push(p.path + '/');
    if (p.kind === 'unsupported-name') this.counts.unsupportedNames++;
    this.log.error(`scan: ${p.path}: ${p.message}`);
  };

  /** The walk is over (`rootOk`: the root existed): a missing or empty source, or the deletions. */
  finish(rootOk: boolean): void {
    const { store, src, counts } = this;
    if (counts.scanned === this.before && !hasAnyEntry(src) && storeKnows(store, src.path)) {
      this.res.missingSources.push(src.path);
      this.log.error(`scan: source ${src.path} is ${rootOk ? 'empty' : 'missing'} but the store knows files under it: source-missing (is the disk mounted?); nothing of it changes`);
      return;
    }
    for (const [p, r] of store.entries()) {
      // Not seen: deleted, unless it is now excluded or under a directory that could not be read.
      if (!isSourceGone(r) && p.startsWith(src.path + '/') && !this.seen.has(p) && this.filter.file(p.slice(src.path.length + 1))
        && !this.unreadable.some((u) => p.startsWith(u))) {
        markDeleted(r, this.now);
        store.set(p, r);
        counts.deleted++;
      }
    }
  }
}

/**
 * Bring the record of one file found under a source up to date with what is there now: a new file, a
 * changed one (new observation, no longer settled), a symlink (settled at once: recorded by link text), a
 * file back after a deletion. Returns what the file needs next: `hash` (settled, content not yet known),
 * `wait` (still changing) or `none` (known and unchanged, or a special file).
 */
export function observeEntry(store: Store, e: Entry, now: number, settleMs: number, targetNames: string[], counts: RunCounts): 'hash' | 'wait' | 'none' {
  if (e.kind === 'special') { counts.skipped++; return 'none'; }
  let rec = store.get(e.path);
  if (e.kind === 'symlink') {
    counts.symlinks++;
    let text: string;
    try { text = fs.readlinkSync(e.path); } catch { return 'none'; }
    if (!rec || rec.l !== text || isDeleted(rec)) {
      rec = { z: e.size, m: e.mtimeMs, i: e.ino, f: rec?.f ?? now, s: now, l: text, t: {} };
      resetTargets(rec, targetNames);
      store.set(e.path, rec);
    }
    return 'none';
  }
  if (!rec) {
    rec = { z: e.size, m: e.mtimeMs, i: e.ino, c: e.ctimeMs, o: now, f: now, t: {} };
    store.set(e.path, rec);
  } else if (rec.l !== undefined || isSourceGone(rec) || observationChanged(rec, e)) {
    if (rec.l !== undefined || observationChanged(rec, e)) {
      observe(rec, e, now);
      unsettle(rec);
      delete rec.l;
    }
    markPresent(rec);
    store.set(e.path, rec);
  } else if (rec.c === undefined && rec.l === undefined) {
    rec.c = e.ctimeMs; // a record from before ctime was kept: from now on a change with the mtime put back shows
    store.set(e.path, rec);
  }
  if (isSettled(rec)) return 'none';
  return settleRuleHolds(rec, now, settleMs) ? 'hash' : 'wait';
}

/**
 * lstat one path as the walk would (no symlink followed, not even a parent directory swapped for one: it is
 * looked up from its source root in `roots`); undefined when it is gone, not under a root, or a directory.
 */
export function entryOf(p: string, roots: string[]): Entry | undefined {
  const root = rootOf(roots, p);
  const st = root === undefined ? undefined : lstatUnder(root, p);
  if (!st || st.isDirectory()) return undefined;
  return { path: p, kind: st.isFile() ? 'file' : st.isSymbolicLink() ? 'symlink' : 'special', ...observationOf(st), mode: st.mode };
}

/** Does the source root hold anything at all (even files all excluded)? */
function hasAnyEntry(src: SourceConfig): boolean {
  try {
    return fs.readdirSync(src.path).length > 0;
  } catch {
    return false;
  }
}

/**
 * Look again at files that were changing: re-stat each; one that has not changed since its last observation
 * and is now settled goes to "hash now", one that changed gets a new observation and keeps waiting.
 */
export function recheck(paths: string[], roots: string[], store: Store, settleMs: number, now = Date.now()): { toHash: string[]; waiting: string[] } {
  const res = { toHash: [] as string[], waiting: [] as string[] };
  for (const p of paths) {
    const rec = store.get(p);
    const e = entryOf(p, roots);
    if (!rec || e?.kind !== 'file') continue; // gone: the next scan records the deletion
    const obs = observationOf(e);
    if (observationChanged(rec, obs)) {
      observe(rec, obs, now);
      store.set(p, rec);
      res.waiting.push(p);
    } else if (settleRuleHolds(rec, now, settleMs)) res.toHash.push(p);
    else res.waiting.push(p);
  }
  return res;
}
