import { type ErrorClass, TargetError, classifyErrno, messageOf } from '../errors.js';
import type { Rec } from '../store/model.js';
import { isVerifiedOn, markCopyBad, markReverified, verifiedAtOn } from '../store/records.js';
import type { Store } from '../store/store.js';
import { targetPath } from '../targets/layout.js';
import type { Target } from '../targets/target.js';

/** What one target's scrub found. */
export interface ScrubResult {
  target: string;
  /** copies read back, their bytes, and how many matched */
  read: number;
  bytes: number;
  good: number;
  bad: { path: string; class: ErrorClass; message: string }[];
  /** the target failed as a whole (unreachable, not mounted...): the copies not read are left as they were */
  error?: { class: ErrorClass; message: string };
}

/** Copies read back per readBack call (memory and progress are per slice). */
const SLICE = 256;

/**
 * The copies to read again on `target`: verified regular files (matching `filter`), oldest verification first,
 * as many as fit in `budgetBytes` (undefined: all; the oldest one is always taken, even when it alone is over
 * the budget, so a big file is never starved), then in path order, which a disk reads mostly sequentially.
 */
export function scrubSlice(store: Store, target: string, budgetBytes: number | undefined, filter: (p: string) => boolean = () => true): [string, Rec][] {
  const due = [...store.entries()].filter(([p, r]) => r.l === undefined && isVerifiedOn(r, target) && filter(p))
    .sort(([, a], [, b]) => verifiedAtOn(a, target)! - verifiedAtOn(b, target)!);
  const out: [string, Rec][] = [];
  let bytes = 0;
  for (const e of due) {
    if (budgetBytes !== undefined && out.length && bytes + e[1].z > budgetBytes) break;
    out.push(e);
    bytes += e[1].z;
  }
  return out.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * Read back `slice` on `t` and compare each copy with the store's hash (the scrub). A good copy is verified
 * again now; a bad one is failed with `mismatch`, `missing` or the target's class, attempts reset, due at
 * once (the next pass repairs it from the source). With `update: false` nothing in the store changes. A
 * target-wide failure stops this target and is reported; the copies not read keep their state.
 */
export async function scrubTarget(store: Store, t: Target, host: string, slice: [string, Rec][],
  opts: { update: boolean; signal?: AbortSignal; onRead?: (bytes: number) => void }): Promise<ScrubResult> {
  const res: ScrubResult = { target: t.name, read: 0, bytes: 0, good: 0, bad: [] };
  for (let i = 0; i < slice.length && !opts.signal?.aborted; i += SLICE) {
    const part = slice.slice(i, i + SLICE);
    let back: Map<string, string | TargetError>;
    try {
      back = await t.readBack(part.map(([p]) => targetPath(host, p)), { signal: opts.signal });
    } catch (err) {
      res.error = { class: classifyErrno(err), message: messageOf(err) };
      return res;
    }
    for (const [p, rec] of part) {
      const got = back.get(targetPath(host, p));
      if (got instanceof TargetError && got.targetWide) {
        res.error = { class: got.errorClass, message: got.message };
        return res;
      }
      if (got === undefined) continue; // not read (aborted)
      res.read++;
      res.bytes += rec.z;
      opts.onRead?.(rec.z);
      const now = Date.now();
      if (got === rec.h) {
        res.good++;
        if (opts.update) { markReverified(rec, t.name, now); store.set(p, rec); }
        continue;
      }
      const bad = typeof got === 'string'
        ? { class: 'mismatch' as const, message: `[${t.name}] ${targetPath(host, p)} reads back as ${got}, expected ${rec.h}` }
        : { class: got.errorClass, message: got.message };
      res.bad.push({ path: p, ...bad });
      if (opts.update) { markCopyBad(rec, t.name, bad.class, bad.message, now); store.set(p, rec); }
    }
  }
  return res;
}
