import fs from 'node:fs';
import { classifyErrno, messageOf } from '../errors.js';
import { hashFd } from '../hash/xxh64.js';
import { openSettled } from '../scan/sourceFs.js';
import type { Store } from '../store/store.js';
import type { RunCounts } from '../store/model.js';
import type { Logger } from '../log.js';
import { identityOf, observationChanged, observationOf, observe } from '../scan/settle.js';
import { markFailed, settle, unsettle, type RetryPolicy } from '../store/records.js';

/**
 * Hash settled files and record their content. Each is opened as the file that was observed (no symlink
 * followed, same inode, size, mtime, ctime: sourceFs.openSettled) and hashed from that descriptor; fstat
 * after hashing: a file that changed meanwhile is not settled after all (its new observation is recorded, it
 * waits). A file that is no longer the observed one (swapped, replaced) waits for the next scan. A file that cannot be read fails on every
 * target with its class (EACCES...), spending an attempt; a file gone is left for the scan to mark deleted.
 * Returns the paths whose content is now settled.
 */
export async function hashSettled(paths: string[], store: Store, targets: string[], policy: RetryPolicy,
  counts: RunCounts, log: Logger, signal: AbortSignal, versions = 1): Promise<string[]> {
  const settled: string[] = [];
  for (const p of paths) {
    if (signal.aborted) break;
    const rec = store.get(p);
    if (!rec) continue;
    try {
      let hash: string;
      let st: fs.Stats;
      const opened = openSettled(p, identityOf(rec));
      try {
        hash = (await hashFd(opened.fd, { signal, size: opened.st.size })).hash;
        st = fs.fstatSync(opened.fd);
      } finally {
        fs.closeSync(opened.fd);
      }
      const now = Date.now();
      if (observationChanged(rec, observationOf(st))) {
        observe(rec, observationOf(st), now);
        counts.unsettled++;
      } else {
        settle(rec, hash, now, targets, versions, st.birthtimeMs);
        settled.push(p);
        counts.hashed++;
        counts.settled++;
      }
      store.set(p, rec);
    } catch (err) {
      if (signal.aborted) break;
      const cls = classifyErrno(err);
      if (cls === 'missing' || cls === 'vanished') continue; // deleted since the scan
      if (cls === 'changed') { // not the observed file any more (replaced, or swapped for a link): look again next scan
        unsettle(rec);
        rec.o = Date.now();
        store.set(p, rec);
        counts.unsettled++;
        continue;
      }
      log.error(`hash failed: ${p}: [${cls}] ${messageOf(err)}`, { path: p, class: cls });
      for (const t of targets) markFailed(rec, t, cls, `cannot read source: ${messageOf(err)}`, Date.now(), policy);
      counts.failed++;
      store.set(p, rec);
    }
  }
  return settled;
}
