import { type TapeCatalog, activeTape, tapeProblem } from '../targets/tapeCatalog.js';
import type { ErrorClass } from '../errors.js';
import { type Meta, type Rec, stateCode, verifiedAtOf } from '../store/model.js';
import { MarkerScan, unmarked } from '../backup/markers.js';
import { changedAfterVerifiedAt, failureOn, ignoredOn, isDeleted, isRemovedLocally, isSettled, localRemovalDueAt, owedSince, removeFailure } from '../store/records.js';

export interface Bucket { files: number; bytes: number }

export interface TargetSummary {
  name: string;
  url: string;
  verified: Bucket;
  pending: Bucket;
  failed: Bucket & { byClass: Partial<Record<ErrorClass, { files: number; latest: { path: string; message: string; at: string } }>> };
  ignored: Bucket;
  /**
   * The scrub: the share of verified copies read back within `verify.every` (1 when there are none), and the
   * oldest verification of a copy
   */
  scrub: { coverage: number; oldestVerifiedAt?: string };
  /** the ignored copies (`replica ignore`) with when and why, by path (at most IGNORED_LISTED of them) */
  ignoredFiles: { path: string; at: string; reason: string }[];
  /** the unverified file waiting longest (age counted from when it settled, else first seen) */
  oldestUnverified?: { path: string; since: string };
  lastError?: { class: ErrorClass; message: string; at: string };
  lastOkAt?: string;
  /** no longer in the config since then: only what it still holds (verified copies) is counted */
  removedAt?: string;
  /** a tape target: the open tape (or why none can be written), and its tapes and tape files */
  tape?: { open: string | null; problem?: string; tapes: number; tapeFiles: number; confirmedFiles: number; unusableFiles: number; bytes: number };
}

export interface StoreSummary {
  host: string;
  agentVersion: string;
  heartbeatAt?: string;
  lastRun?: Meta['lastRun'];
  files: number;
  /** files not settled yet (still changing, or not hashed) */
  unsettled: number;
  /** source files deleted (records kept, never propagated) */
  deleted: number;
  /** files whose content changed after a copy was verified (an instrument file should never change once closed) */
  changedAfterVerified: number;
  /** special files (FIFOs, sockets, devices) skipped by the last scan */
  skipped: number;
  /** the watch agent, when one has run: backend, inotify watches in use and the limit, fallback mode */
  watch?: Meta['watch'];
  /** every copy should be read back within this (verify.every): what scrub coverage is measured against */
  verifyEveryMs: number;
  /** deleteLocalAfter, when configured */
  localRemoval?: LocalRemovalSummary;
  /**
   * completeness markers, when configured: directories complete, and those complete whose marker is missing or
   * stale on a target (the targets named), with when they became complete (at most IGNORED_LISTED listed)
   */
  markers?: { complete: number; unmarked: { dir: string; completeAt: string; targets: string[] }[] };
  targets: TargetSummary[];
}

export interface LocalRemovalSummary {
  afterMs: number;
  /** source files removed (their copies are the file now) and the bytes freed */
  removed: Bucket;
  /** verified on every target, waiting for their age (or for a pass); when the next one is due */
  waiting: Bucket & { nextAt?: string };
  /** files that could not be removed (EACCES...), reported once: `replica retry` tries again (at most IGNORED_LISTED listed) */
  failed: { files: number; list: { path: string; at: string; message: string }[] };
}

const bucket = (): Bucket => ({ files: 0, bytes: 0 });
/** `verify.every` when the store does not say (written by a version before the scrub): the config default, 30 days. */
const DEFAULT_VERIFY_EVERY_MS = 30 * 86_400_000;
/** Ignored copies listed per target (the count is in `ignored`). */
export const IGNORED_LISTED = 100;

/** A tape target's line in status and the monitor. */
function tapeState(c: TapeCatalog): NonNullable<TargetSummary['tape']> {
  const problem = tapeProblem(c);
  const n = (st: string) => c.files.filter((f) => f.state === st).length;
  return {
    open: activeTape(c)?.label ?? null, ...(problem ? { problem } : {}), tapes: c.tapes.length, tapeFiles: c.files.length,
    confirmedFiles: n('confirmed'), unusableFiles: n('unusable'), bytes: c.tapes.reduce((b, t) => b + t.bytes, 0),
  };
}

/**
 * Summarise a store per target (`status`, and the monitor's per-host model): verified / pending /
 * failed (by error class, with the latest message) / ignored counts and bytes, the oldest unverified file.
 * `onRecord` sees each record on the way (the monitor's own per-record counts: one pass over the store, not two).
 */
export function summarize(meta: Meta, records: Iterable<[string, Rec]>, targetNames: string[], now = Date.now(), onRecord?: (p: string, r: Rec) => void): StoreSummary {
  // targets the store knows that are not configured (any more) are listed as removed
  const removed = Object.keys(meta.targets).filter((n) => !targetNames.includes(n) || meta.targets[n].removedAt !== undefined);
  const names = [...new Set([...targetNames, ...removed])];
  const targets = new Map<string, TargetSummary>(names.map((n) => [n, {
    name: n, url: meta.targets[n]?.url ?? '', verified: bucket(), pending: bucket(), failed: { ...bucket(), byClass: {} }, ignored: bucket(), ignoredFiles: [], scrub: { coverage: 1 },
    ...(removed.includes(n) ? { removedAt: meta.targets[n].removedAt ?? meta.lastRun?.endedAt ?? meta.createdAt } : { lastError: meta.targets[n]?.lastError, lastOkAt: meta.targets[n]?.lastOkAt }),
    ...(meta.tape?.[n] ? { tape: tapeState(meta.tape[n]) } : {}),
  }]));
  // per target, in one array (the loop below runs for every record and target): copies verified within
  // verify.every, the oldest verification, the unverified file waiting longest
  const acc = [...targets].map(([name, t]) => ({ name, t, fresh: 0, oldestCheck: Infinity, oldest: undefined as [string, number] | undefined }));
  const since = now - (meta.verify?.everyMs ?? DEFAULT_VERIFY_EVERY_MS);
  const s: StoreSummary = {
    host: meta.host, agentVersion: meta.agentVersion, heartbeatAt: meta.heartbeatAt, lastRun: meta.lastRun,
    files: 0, unsettled: 0, deleted: 0, changedAfterVerified: 0, skipped: meta.lastRun?.counts.skipped ?? 0, watch: meta.watch,
    verifyEveryMs: meta.verify?.everyMs ?? DEFAULT_VERIFY_EVERY_MS, targets: [],
  };
  const rm: LocalRemovalSummary | undefined = meta.deleteLocal && { afterMs: meta.deleteLocal.afterMs, removed: bucket(), waiting: bucket(), failed: { files: 0, list: [] } };
  const live = targetNames.filter((n) => !removed.includes(n));
  let nextAt = Infinity;
  const ms = meta.markerConfig?.length ? new MarkerScan(meta.markerConfig) : undefined;
  for (const [p, r] of records) {
    s.files++;
    ms?.add(p, r);
    if (rm) {
      const due = localRemovalDueAt(r, live, rm.afterMs);
      const failed = removeFailure(r);
      if (isRemovedLocally(r)) { rm.removed.files++; rm.removed.bytes += r.z; }
      else if (due !== undefined) { rm.waiting.files++; rm.waiting.bytes += r.z; nextAt = Math.min(nextAt, due); }
      else if (failed && ++rm.failed.files <= IGNORED_LISTED) rm.failed.list.push({ path: p, at: new Date(failed.at).toISOString(), message: failed.message });
    }
    const deleted = isDeleted(r);
    if (deleted) s.deleted++;
    if (changedAfterVerifiedAt(r) !== undefined) s.changedAfterVerified++;
    else if (!isSettled(r)) s.unsettled++;
    onRecord?.(p, r);
    const states = r.t;
    for (const a of acc) {
      const { name, t } = a;
      const x = states[name];
      const st = stateCode(x);
      if (deleted && st !== 'v') continue; // gone before it was copied: nothing can be done
      if (t.removedAt !== undefined && st !== 'v') continue; // a removed target is owed nothing
      const b = st === 'v' ? t.verified : st === 'f' ? t.failed : st === 'i' ? t.ignored : t.pending;
      if (st === 'v') {
        const v = verifiedAtOf(x)!;
        if (v >= since) a.fresh++;
        if (v < a.oldestCheck) a.oldestCheck = v;
      }
      b.files++;
      b.bytes += r.z;
      if (st === 'f') {
        const { class: cls, message, at } = failureOn(r, name);
        const c = (t.failed.byClass[cls] ??= { files: 0, latest: { path: p, message, at: new Date(at).toISOString() } });
        c.files++;
        if (new Date(at).toISOString() > c.latest.at) c.latest = { path: p, message, at: new Date(at).toISOString() };
      }
      if (st === 'i' && t.ignoredFiles.length < IGNORED_LISTED) {
        const ig = ignoredOn(r, name);
        t.ignoredFiles.push({ path: p, at: new Date(ig?.at ?? 0).toISOString(), reason: ig?.reason ?? '' });
      }
      if (st === 'p' || st === 'f') {
        const owed = owedSince(r);
        if (!a.oldest || owed < a.oldest[1]) a.oldest = [p, owed];
      }
    }
  }
  if (rm) {
    if (nextAt < Infinity) rm.waiting.nextAt = new Date(nextAt).toISOString();
    rm.failed.list.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    s.localRemoval = rm;
  }
  if (ms) {
    // needs the hasher loaded (initHasher): status and the monitor load it before they summarise
    const dirs = ms.dirs(now);
    s.markers = { complete: dirs.filter((d) => d.completeAt !== undefined).length, unmarked: unmarked(meta.host, dirs, live, meta.markers ?? {}).slice(0, IGNORED_LISTED) };
  }
  for (const { t, fresh, oldestCheck, oldest: o } of acc) {
    if (o) t.oldestUnverified = { path: o[0], since: new Date(o[1]).toISOString() };
    if (t.verified.files) t.scrub = { coverage: fresh / t.verified.files, oldestVerifiedAt: new Date(oldestCheck).toISOString() };
    t.ignoredFiles.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    s.targets.push(t);
  }
  return s;
}
