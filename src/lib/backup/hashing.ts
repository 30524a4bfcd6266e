import fs from 'node:fs';
import { classifyErrno, messageOf } from '../errors.js';
import { hashFile } from '../hash/xxh64.js';
import type { Store } from '../store/store.js';
import type { RunCounts } from '../store/model.js';
import type { Logger } from '../log.js';
import { observationChanged, observe } from '../scan/settle.js';
import { markFailed, resetTargets, type RetryPolicy } from './states.js';

/**
 * Hash settled files and record their content. Re-stat after hashing: a file that changed meanwhile is not
 * settled after all (its new observation is recorded, it waits). A file that cannot be read fails on every
 * target with its class (EACCES...), spending an attempt; a file gone is left for the scan to mark deleted.
 * Returns the paths whose content is now settled.
 */
export async function hashSettled(paths: string[], store: Store, targets: string[], policy: RetryPolicy,
  counts: RunCounts, log: Logger, signal: AbortSignal): Promise<string[]> {
  const settled: string[] = [];
  for (const p of paths) {
    if (signal.aborted) break;
    const rec = store.get(p);
    if (!rec) continue;
    try {
      const { hash } = await hashFile(p, { signal });
      const st = fs.lstatSync(p);
      const now = Date.now();
      if (observationChanged(rec, { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino })) {
        observe(rec, { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino }, now);
        counts.unsettled++;
      } else {
        rec.h = hash;
        rec.s = now;
        delete rec.o; // only unsettled records need their observation time
        resetTargets(rec, targets);
        settled.push(p);
        counts.hashed++;
        counts.settled++;
      }
      store.set(p, rec);
    } catch (err) {
      if (signal.aborted) break;
      const cls = classifyErrno(err);
      if (cls === 'missing') continue; // deleted since the scan
      log.error(`hash failed: ${p}: [${cls}] ${messageOf(err)}`, { path: p, class: cls });
      for (const t of targets) markFailed(rec, t, cls, `cannot read source: ${messageOf(err)}`, Date.now(), policy);
      counts.failed++;
      store.set(p, rec);
    }
  }
  return settled;
}
