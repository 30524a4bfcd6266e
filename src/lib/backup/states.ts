import type { ErrorClass } from '../errors.js';
import { decodeState, encodeState, stateCode, type Rec, type TState } from '../store/model.js';

/** Retry policy of SPEC 2 `retry`. */
export interface RetryPolicy { maxAttempts: number; backoffMs: number; maxBackoffMs: number }

/** Backoff before attempt `attempts + 1`: backoff * 2^(attempts-1), capped. */
export function backoffMs(policy: RetryPolicy, attempts: number): number {
  return Math.min(policy.maxBackoffMs, policy.backoffMs * 2 ** Math.max(0, attempts - 1));
}

/** The state of `rec` on `target` (a target added to the config later starts as pending). */
export function stateOn(rec: Rec, target: string): TState {
  return decodeState(rec.t[target]);
}

/** Is a copy of `rec` to `target` due now? Pending, or failed with attempts left and its backoff over. */
export function isDue(rec: Rec, target: string, now: number, policy: RetryPolicy): boolean {
  if (rec.s === undefined || rec.d !== undefined) return false;
  const code = stateCode(rec.t[target]);
  if (code === 'p') return true;
  if (code !== 'f') return false;
  const t = stateOn(rec, target);
  return (t.a ?? 0) < policy.maxAttempts && (t.n ?? 0) <= now;
}

/** A new settled content: every target must copy it again. */
export function resetTargets(rec: Rec, targets: string[]): void {
  rec.t = {};
  for (const t of targets) rec.t[t] = 'p';
}

/** Record a per-file failure on one target: spends an attempt, schedules the next by backoff. */
export function markFailed(rec: Rec, target: string, cls: ErrorClass, message: string, now: number, policy: RetryPolicy): void {
  const a = (stateOn(rec, target).a ?? 0) + 1;
  const t: TState = { s: 'f', a, e: [cls, message, now] };
  if (a < policy.maxAttempts) t.n = now + backoffMs(policy, a);
  rec.t[target] = encodeState(t);
}

/** The copy on `target` was read back and matches the settled hash. */
export function markVerified(rec: Rec, target: string, copiedAt: number, now: number): void {
  rec.t[target] = encodeState({ s: 'v', c: copiedAt, v: now });
}
