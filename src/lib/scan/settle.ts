import type { Rec } from '../store/model.js';
import { contentChanging } from '../store/records.js';
import { sameFile } from './sourceFs.js';

/** One lstat of a file: what the settle rule compares (a walk Entry is one). */
export interface Observation { readonly size: number; readonly mtimeMs: number; readonly ino: number; readonly ctimeMs: number }

/**
 * Did the file change between the record's last observation and `o`? Size, mtime, inode and ctime: the ctime
 * catches a rewrite whose mtime was put back (`touch -r`), which no user can set back.
 */
export function observationChanged(rec: Rec, o: Observation): boolean {
  return !sameFile(o, identityOf(rec));
}

/** The identity of the observed file, as an opened descriptor must show it (sourceFs.openSettled). */
export const identityOf = (rec: Rec) => ({ size: rec.z, mtimeMs: rec.m, ino: rec.i, ctimeMs: rec.c });

/** An observation from a stat of the file. */
export const observationOf = (st: { size: number; mtimeMs: number; ino: number; ctimeMs: number }): Observation =>
  ({ size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, ctimeMs: st.ctimeMs });

/**
 * The settle rule, for a record whose last observation equals the file now: settled when that
 * observation is at least `settleMs` old (two observations `settle` apart agree), or when the mtime is more
 * than `settleMs` in the past. A future mtime (clock skew) settles only by the two-observation rule.
 */
export function settleRuleHolds(rec: Rec, now: number, settleMs: number): boolean {
  return now - (rec.o ?? 0) >= settleMs || (rec.m <= now && now - rec.m > settleMs);
}

/** When `rec` (unchanged from now on) will be settled: the earlier of the two rules. */
export function settlesAt(rec: Rec, settleMs: number): number {
  const byObservation = (rec.o ?? 0) + settleMs;
  return Math.min(byObservation, rec.m + settleMs + 1);
}

/** Record a new observation: the old one no longer counts, the settled content (hash) stays until re-hashed. */
export function observe(rec: Rec, o: Observation, now: number): void {
  contentChanging(rec);
  rec.z = o.size;
  rec.m = o.mtimeMs;
  rec.i = o.ino;
  rec.c = o.ctimeMs;
  rec.o = now;
}
