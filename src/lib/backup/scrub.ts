import type { ErrorClass, TargetError } from '../errors.js';
import type { Rec } from '../store/model.js';
import { isVerifiedOn, markCopyBad, markReverified, verifiedAtOn } from '../store/records.js';
import type { Store } from '../store/store.js';
import { targetPath } from '../targets/layout.js';
import type { Target } from '../targets/target.js';
import { verifyCopies } from './verify.js';

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

/**
 * Copies read back per verifyCopies call, at most (progress and the store's updates are per part). READ_AHEAD
 * parts are read at once: with one, the readers waited for the slowest share and the main thread at the end
 * of each part (idle ~1/3 of a scrub of 1 MiB files).
 */
const SLICE_FILES = 256;
const SLICE_BYTES = 256 << 20;
/** Parts being read at once (scrubTarget). */
const READ_AHEAD = 2;

/**
 * The copies to read again on `target`: verified files and symlinks (matching `filter`), oldest verification first,
 * as many as fit in `budgetBytes` (undefined: all; the oldest one is always taken, even when it alone is over
 * the budget, so a big file is never starved), then in path order, which a disk reads mostly sequentially.
 */
export function scrubSlice(store: Store, target: string, budgetBytes: number | undefined, filter: (p: string, r: Rec) => boolean = () => true): [string, Rec][] {
  // each record's verifiedAt decoded once, not in every comparison (10k records: 80 ms of the sort otherwise)
  const due: { e: [string, Rec]; at: number }[] = [];
  for (const e of store.entries()) {
    const at = verifiedAtOn(e[1], target);
    if (at !== undefined && filter(e[0], e[1])) due.push({ e, at });
  }
  due.sort((a, b) => a.at - b.at);
  const out: [string, Rec][] = [];
  let bytes = 0;
  for (const { e } of due) {
    if (budgetBytes !== undefined && out.length && bytes + e[1].z > budgetBytes) break;
    out.push(e);
    bytes += e[1].z;
  }
  return out.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * Read back `slice` on `t` and compare each copy with the store's hash or link text (the scrub, through the
 * one verification step, verifyCopies). A good copy is verified
 * again now; a bad one is failed with `mismatch`, `missing` or the target's class, attempts reset, due at
 * once (the next pass repairs it from the source). With `update: false` nothing in the store changes. A
 * target-wide failure stops this target and is reported; the copies not read keep their state.
 */
export async function scrubTarget(store: Store, t: Target, host: string, slice: [string, Rec][],
  opts: { update: boolean; signal?: AbortSignal; onRead?: (bytes: number) => void; concurrency?: number }): Promise<ScrubResult> {
  const res: ScrubResult = { target: t.name, read: 0, bytes: 0, good: 0, bad: [] };
  const parts: [string, Rec][][] = [];
  for (let i = 0; i < slice.length;) {
    const from = i;
    for (let bytes = 0; i < slice.length && i - from < SLICE_FILES && (i === from || bytes + slice[i][1].z <= SLICE_BYTES); i++) bytes += slice[i][1].z;
    parts.push(slice.slice(from, i));
  }
  const read = (part: [string, Rec][]) => verifyCopies(t, part.map(([p, r]) => ({ rel: targetPath(host, p), ...(r.l === undefined ? { hash: r.h } : { link: r.l }) })), { signal: opts.signal, concurrency: opts.concurrency });
  // two parts ahead are being read while one's results are recorded: a reader that finished its share of a
  // part goes on with the next instead of waiting for the slowest one, or for the main thread
  const ahead: Promise<Map<string, TargetError | undefined>>[] = [];
  const readAhead = (k: number) => { while (ahead.length < READ_AHEAD && k + ahead.length < parts.length && !opts.signal?.aborted) ahead.push(read(parts[k + ahead.length])); };
  try {
    for (let k = 0; k < parts.length && !opts.signal?.aborted; k++) {
      readAhead(k);
      const checked = await ahead.shift()!;
      readAhead(k + 1);
      if (opts.signal?.aborted) return res; // stopped: record nothing more (the store may be saved and unlocked already)
      for (const [p, was] of parts[k]) {
        const rel = targetPath(host, p);
        if (!checked.has(rel)) continue; // not read (aborted)
        // the record may have moved on while we read (a new content settled, a copy repaired): judge only the
        // copy we read, and only while the store still says it is that verified content
        const rec = store.get(p);
        if (!rec || rec.h !== was.h || rec.l !== was.l || !isVerifiedOn(rec, t.name)) continue;
        const err = checked.get(rel);
        if (err?.targetWide) {
          res.error = { class: err.errorClass, message: err.message };
          return res;
        }
        res.read++;
        res.bytes += rec.z;
        opts.onRead?.(rec.z);
        const now = Date.now();
        if (!err) {
          res.good++;
          if (opts.update) { markReverified(rec, t.name, now); store.set(p, rec); }
          continue;
        }
        res.bad.push({ path: p, class: err.errorClass, message: err.message });
        if (opts.update) { markCopyBad(rec, t.name, err.errorClass, err.message, now); store.set(p, rec); }
      }
    }
  } finally {
    for (const p of ahead) void p.catch(() => undefined); // parts read ahead of a stop: nothing is recorded from them
  }
  return res;
}
