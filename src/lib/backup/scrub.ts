import type { ErrorClass, TargetError } from '../errors.js';
import type { Rec } from '../store/model.js';
import { isVerifiedOn, markCopyBad, markReverified, verifiedAtOn } from '../store/records.js';
import type { Store } from '../store/store.js';
import { targetPath } from '../targets/layout.js';
import type { Target } from '../targets/target.js';
import { type CopyToVerify, verifyCopies } from './verify.js';

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
  const due: [string, Rec][] = [];
  const at: number[] = [];
  for (const e of store.entries()) {
    const v = verifiedAtOn(e[1], target);
    if (v !== undefined && filter(e[0], e[1])) { due.push(e); at.push(v); }
  }
  let out = due; // no budget: every copy, so no order by age is needed
  if (budgetBytes !== undefined) {
    out = [];
    let bytes = 0;
    for (const k of Uint32Array.from(due.keys()).sort((a, b) => at[a] - at[b])) {
      const e = due[k];
      if (out.length && bytes + e[1].z > budgetBytes) break;
      out.push(e);
      bytes += e[1].z;
    }
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
  // each part's copies as read: their rels, and the hash or link text each was read against
  const copies = parts.map((part) => part.map(([p, r]): CopyToVerify => (r.l === undefined ? { rel: targetPath(host, p), hash: r.h } : { rel: targetPath(host, p), link: r.l })));
  const read = (k: number) => verifyCopies(t, copies[k], { signal: opts.signal, concurrency: opts.concurrency });
  // two parts ahead are being read while one's results are recorded: a reader that finished its share of a
  // part goes on with the next instead of waiting for the slowest one, or for the main thread
  const ahead: Promise<Map<string, TargetError | undefined>>[] = [];
  const readAhead = (k: number) => { while (ahead.length < READ_AHEAD && k + ahead.length < parts.length && !opts.signal?.aborted) ahead.push(read(k + ahead.length)); };
  try {
    for (let k = 0; k < parts.length && !opts.signal?.aborted; k++) {
      readAhead(k);
      const checked = await ahead.shift()!;
      readAhead(k + 1);
      if (opts.signal?.aborted) return res; // stopped: record nothing more (the store may be saved and unlocked already)
      for (let j = 0; j < parts[k].length; j++) {
        const p = parts[k][j][0];
        const { rel, hash, link } = copies[k][j];
        if (!checked.has(rel)) continue; // not read (aborted)
        // the record may have moved on while we read (a new content settled, a copy repaired; records change
        // in place): judge only the copy we read, and only while the store still says it is the content we
        // read it against, verified
        const rec = store.get(p);
        if (!rec || (link === undefined ? rec.l !== undefined || rec.h !== hash : rec.l !== link) || !isVerifiedOn(rec, t.name)) continue;
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
