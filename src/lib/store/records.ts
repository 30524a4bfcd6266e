import type { ErrorClass } from '../errors.js';
import { decodeState, encodeState, copiedAtOf, stateCode, stateName, verifiedAtOf, type Rec, type StateCode, type TState, type TargetStateName } from './model.js';

/**
 * The record lifecycle, in one place: a file is seen (observed), settles (its content hashed), is copied and
 * verified on each target (or fails there, with attempts and backoff), and may be deleted at the source. Every
 * module outside the store asks these functions; none reads the compact keys (`s`, `d`, `t`) itself.
 */

/** Retry policy of the config's `retry`: attempts per file and target, first backoff, backoff cap. */
export interface RetryPolicy { maxAttempts: number; backoffMs: number; maxBackoffMs: number }

/** The content of the file is settled and hashed (it changes no more, as far as the last look showed). */
export const isSettled = (r: Rec): boolean => r.s !== undefined;

/** The file was not found by the last scan (a deletion at the source: its copies stay). */
export const isDeleted = (r: Rec): boolean => r.d !== undefined;

/** Settled and not deleted at the source: the records every target owes a verified copy of (also once removed by deleteLocalAfter). */
export const isCurrent = (r: Rec): boolean => r.s !== undefined && r.d === undefined;

/** replica removed the source file (deleteLocalAfter) once it was verified on every target: its copies are the file now. */
export const isRemovedLocally = (r: Rec): boolean => r.r !== undefined;

/** The source no longer holds the settled content: deleted there, or removed by deleteLocalAfter. */
export const isSourceGone = (r: Rec): boolean => r.d !== undefined || r.r !== undefined;

/** deleteLocalAfter removed the source file now (never a deletion: nothing is propagated, it is not "new"). */
export function markRemovedLocally(r: Rec, now: number): void {
  r.r = now;
  delete r.u;
}

/** deleteLocalAfter could not remove the source file: recorded (reported once), not tried again until `retry` or a change. */
export function markRemoveFailed(r: Rec, message: string, now: number): void {
  r.u = [now, message];
}

/** Why deleteLocalAfter could not remove the source file, if it could not. */
export const removeFailure = (r: Rec): { at: number; message: string } | undefined => r.u && { at: r.u[0], message: r.u[1] };

/** `replica retry`: try the removal again. Returns whether anything changed. */
export function clearRemoveFailure(r: Rec): boolean {
  if (!r.u) return false;
  delete r.u;
  return true;
}

/**
 * Since when every one of `targets` has held a verified copy (the latest of their copy times: a copy
 * repaired later counts from then), or undefined when one of them does not hold one.
 */
export function heldEverywhereSince(r: Rec, targets: string[]): number | undefined {
  let since = 0;
  for (const t of targets) {
    if (codeOn(r, t) !== 'v') return undefined;
    const st = stateOn(r, t);
    since = Math.max(since, st.c ?? st.v ?? 0);
  }
  return targets.length ? since : undefined;
}

/** When the content settled (epoch ms), or undefined while it is still changing. */
export const settledAt = (r: Rec): number | undefined => r.s;

/** Since when a copy has been owed: settled time, else first seen (the age the monitor warns about). */
export const owedSince = (r: Rec): number => r.s ?? r.f;

/** Mark the file deleted at the source (now), unless it is already. */
export function markDeleted(r: Rec, now: number): boolean {
  if (r.d !== undefined) return false;
  r.d = now;
  return true;
}

/** The file is at the source again (a scan found it after a deletion). */
export function markPresent(r: Rec): void {
  delete r.d;
  delete r.r;
  delete r.u;
}

/**
 * The file is seen with a new size, mtime, inode or ctime: when its settled content had been hashed, keep that
 * content's mtime until the new content settles (it then goes into the previous contents, for restore --at),
 * and when it settled (settle: the same bytes and mtime in a file created since are not copied again).
 */
export function contentChanging(r: Rec): void {
  if (r.s === undefined || r.h === undefined || r.q !== undefined) return;
  r.q = r.m;
  r.k = r.s;
}

/** The content is not (or no longer) known to be settled: it must settle and be hashed again. */
export function unsettle(r: Rec): void {
  delete r.s;
}

/**
 * The content settled with this hash: every target must copy it again. When it is new content for a file
 * verified before, the targets holding that verified copy keep it as a previous version when it is replaced
 * (previousCopyOn), and the file counts as changed after verified. The previous content is remembered (hash and
 * when it was current; the last 2 x `versions`) so that `restore --at` can tell which version to read.
 * One exception: the settled content again, with its mtime, in a file created after that content settled
 * (`bornMs`, the hashed file's birth time: a restore in place, `cp -p` back from a copy) keeps every target's
 * state: the copies there are still these bytes, and nothing is copied again (as rsync skips a file of the
 * same size and mtime). The same file touched back or chmod-ed (born before) is copied again, so the copies
 * get its mode; so is every file where the file system keeps no birth time (`bornMs` 0 or absent).
 */
export function settle(r: Rec, hash: string, now: number, targets: string[], versions = 1, bornMs?: number): void {
  const sameAgain = r.h === hash && r.q !== undefined && sameMtime(r.q, r.m) && r.k !== undefined && !!bornMs && bornMs > r.k;
  if (r.h !== undefined && r.h !== hash) {
    const held = targets.filter((t) => codeOn(r, t) === 'v' || r.p?.includes(t));
    if (held.length) {
      r.p = held;
      r.x = now;
    }
    const e = r.e ?? [];
    e.push(r.q === undefined ? [r.h, currentSince(r), now] : [r.h, currentSince(r), now, r.q]);
    // twice the versions kept: a target that missed a content (down meanwhile) still holds older ones
    r.e = e.slice(-Math.max(1, 2 * versions));
  }
  delete r.q;
  delete r.k;
  r.h = hash;
  r.s = now;
  delete r.o; // only unsettled records need their observation time
  if (!sameAgain) resetTargets(r, targets);
}

/**
 * Two mtimes (epoch ms) equal as far as a copy or a restore can set one: to the microsecond (libuv sets
 * whole microseconds, sourceFs.utimeSeconds; a nanosecond mtime comes back rounded).
 */
const sameMtime = (a: number, b: number): boolean => Math.abs(a - b) < 0.001;

/** Since when the settled content has been current: when it replaced the previous one, else first seen. */
const currentSince = (r: Rec): number => r.e?.at(-1)?.[2] ?? r.f;

/** The content of a file at a time: its hash, whether it is the live content, and the span it was current. */
export interface ContentAt { hash: string; live: boolean; since: number; until?: number; mtimeMs?: number }

/**
 * The content that was current at `at` (epoch ms): the live content when it was current since then, else the
 * previous content current then (it replaced the one before at `since`, and was replaced at `until`).
 * Undefined before the file was first seen, or before the oldest content the record still remembers.
 */
export function contentAt(r: Rec, at: number): ContentAt | undefined {
  if (r.h === undefined) return undefined;
  if (at >= currentSince(r)) return { hash: r.h, live: true, since: currentSince(r) };
  const old = r.e?.find(([, since, until]) => at >= since && at < until);
  return old && toContent(old);
}

/** The previous contents the record remembers (oldest first). */
export const previousContents = (r: Rec): ContentAt[] => (r.e ?? []).map(toContent);

const toContent = ([hash, since, until, mtimeMs]: [string, number, number, number?]): ContentAt =>
  ({ hash, live: false, since, until, ...(mtimeMs === undefined ? {} : { mtimeMs }) });

/** A new settled content: every target must copy it again. */
export function resetTargets(r: Rec, targets: string[]): void {
  r.t = {};
  for (const t of targets) r.t[t] = 'p';
}

/** The live copy on `target` is a previous verified content (moved aside, with `versions`, before it is replaced). */
export const previousCopyOn = (r: Rec, target: string): boolean => r.p?.includes(target) ?? false;

/** The previous copy on `target` was moved aside, or replaced: nothing to keep there any more. */
export function previousCopyGone(r: Rec, target: string): void {
  if (!r.p) return;
  r.p = r.p.filter((t) => t !== target);
  if (!r.p.length) delete r.p;
}

/** A file verified somewhere whose content changed since (usually a fault in an instrument file): when, or undefined. */
export const changedAfterVerifiedAt = (r: Rec): number | undefined => r.x;

/** The state of `r` on `target`, decoded (a target added to the config later starts as pending). */
export function stateOn(r: Rec, target: string): TState {
  return decodeState(r.t[target]);
}

/** The state code alone (hot path of scans over every record). */
export const codeOn = (r: Rec, target: string): StateCode => stateCode(r.t[target]);

/** The state's name for output (pending, verified, failed, ignored). */
export const stateNameOn = (r: Rec, target: string): TargetStateName => stateName(codeOn(r, target));

/** The copy on `target` was read back and matched. */
export const isVerifiedOn = (r: Rec, target: string): boolean => codeOn(r, target) === 'v';

/** Nothing more is owed on `target`: verified, or ignored by the operator. */
export function isDoneOn(r: Rec, target: string): boolean {
  const c = codeOn(r, target);
  return c === 'v' || c === 'i';
}

/**
 * When deleteLocalAfter may remove the source file: `afterMs` after every one of `targets` held a verified copy;
 * undefined when it may not (not settled, deleted or removed already, a symlink, a removal that failed, or a
 * target without a verified copy).
 */
export function localRemovalDueAt(r: Rec, targets: string[], afterMs: number): number | undefined {
  if (!isCurrent(r) || r.r !== undefined || r.l !== undefined || r.u !== undefined) return undefined;
  const since = heldEverywhereSince(r, targets);
  // counted from the later of the copies and the settle: a file restored in place (its copies kept, settle)
  // stays `afterMs` from its return, not removed again at once
  return since === undefined ? undefined : Math.max(since, r.s ?? 0) + afterMs;
}

/** Backoff before attempt `attempts + 1`: backoff * 2^(attempts-1), capped. */
export function backoffMs(policy: RetryPolicy, attempts: number): number {
  return Math.min(policy.maxBackoffMs, policy.backoffMs * 2 ** Math.max(0, attempts - 1));
}

/** Is a copy of `r` to `target` due now? Current, and pending, or failed with attempts left and its backoff over. */
export function isDue(r: Rec, target: string, now: number, policy: RetryPolicy): boolean {
  if (!isCurrent(r) || r.r !== undefined) return false;
  const code = codeOn(r, target);
  if (code === 'p') return true;
  if (code !== 'f') return false;
  const t = stateOn(r, target);
  return (t.a ?? 0) < policy.maxAttempts && (t.n ?? 0) <= now;
}

/**
 * Is a copy of `r` to `target` due now from another target? The source is gone (deleted after it settled, or
 * removed by deleteLocalAfter), another target holds a verified copy to read it from, and on `target` the copy
 * failed (the scrub found it bad) with attempts left and its backoff over, or, for a file removed by
 * deleteLocalAfter, was never made (a target added since: every target owes it; a file deleted at the source
 * is not owed to a target added after it).
 */
export function isRepairDue(r: Rec, target: string, now: number, policy: RetryPolicy): boolean {
  const code = codeOn(r, target);
  if (!isSettled(r) || !isSourceGone(r) || r.l !== undefined || (code !== 'f' && !(code === 'p' && r.r !== undefined))) return false;
  const t = stateOn(r, target);
  return (t.a ?? 0) < policy.maxAttempts && (t.n ?? 0) <= now && Object.keys(r.t).some((o) => o !== target && codeOn(r, o) === 'v');
}

/** Record a per-file failure on one target: spends an attempt, schedules the next by backoff. */
export function markFailed(r: Rec, target: string, cls: ErrorClass, message: string, now: number, policy: RetryPolicy): void {
  const a = (stateOn(r, target).a ?? 0) + 1;
  const t: TState = { s: 'f', a, e: [cls, message, now] };
  if (a < policy.maxAttempts) t.n = now + backoffMs(policy, a);
  r.t[target] = encodeState(t);
}

/** The copy on `target` was read back and matches the settled hash. */
export function markVerified(r: Rec, target: string, copiedAt: number, now: number): void {
  r.t[target] = encodeState({ s: 'v', c: copiedAt, v: now });
}

/** When the copy on `target` was last read back and matched (epoch ms), if it is verified. */
export const verifiedAtOn = (r: Rec, target: string): number | undefined => verifiedAtOf(r.t[target]);

/** The last failure on `target`: class, message, when; with attempts spent and whether another is scheduled. */
export function failureOn(r: Rec, target: string): { class: ErrorClass; message: string; at: number; attempts: number; retrying: boolean } {
  const t = stateOn(r, target);
  const [cls, message, at] = t.e ?? ['other', '', 0];
  return { class: cls, message, at, attempts: t.a ?? 0, retrying: t.n !== undefined };
}

/** A re-read (the scrub) of the verified copy on `target` matched: verified again now, copiedAt kept. */
export function markReverified(r: Rec, target: string, now: number): void {
  r.t[target] = encodeState({ s: 'v', c: copiedAtOf(r.t[target]), v: now });
}

/**
 * A re-read found the copy on `target` bad (`mismatch`, `missing`, or the target's class): failed, with its
 * attempts reset and due at once, so the next pass repairs it.
 */
export function markCopyBad(r: Rec, target: string, cls: ErrorClass, message: string, now: number): void {
  r.t[target] = encodeState({ s: 'f', n: now, e: [cls, message, now] });
}

/**
 * `replica retry`: a failed copy gets its attempts back and is due at once (its last error kept); an ignored
 * one is pending again. Returns whether anything changed.
 */
export function resetForRetry(r: Rec, target: string, now: number): boolean {
  const t = stateOn(r, target);
  if (t.s === 'f') { r.t[target] = encodeState({ s: 'f', n: now, e: t.e }); return true; }
  if (t.s === 'i') { r.t[target] = 'p'; return true; }
  return false;
}

/** `replica ignore`: the copy on `target` is not owed any more, recording when and why (until the content changes). */
export function markIgnored(r: Rec, target: string, reason: string, now: number): void {
  const t = stateOn(r, target);
  r.t[target] = encodeState({ s: 'i', c: t.c, v: t.v, ig: [now, reason] });
}

/** When and why the copy on `target` was ignored, if it is. */
export function ignoredOn(r: Rec, target: string): { at: number; reason: string } | undefined {
  const ig = codeOn(r, target) === 'i' ? stateOn(r, target).ig : undefined;
  return ig && { at: ig[0], reason: ig[1] };
}
