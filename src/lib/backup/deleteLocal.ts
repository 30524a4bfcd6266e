import fs from 'node:fs';
import { type TargetError, messageOf, toTargetError } from '../errors.js';
import { hashFd } from '../hash/xxh64.js';
import type { Logger } from '../log.js';
import { identityOf } from '../scan/settle.js';
import { FILE_FLAGS, openParentUnder, rootOf, sameFile } from '../scan/sourceFs.js';
import type { Rec, RunCounts } from '../store/model.js';
import { localRemovalDueAt, markCopyBad, markRemoveFailed, markRemovedLocally } from '../store/records.js';
import type { Store } from '../store/store.js';
import { targetPath } from '../targets/layout.js';
import { type Target, hasArchive, hasRandomRead } from '../targets/target.js';

/**
 * deleteLocalAfter (SupRsync's `--delete-local-after`, with git-annex's live check before a drop): a source file
 * is removed once every configured target has held a verified copy of it for `afterMs`, and only after a check
 * made just before: the source is still the settled file (size, mtime, inode, ctime, and its bytes hash to the
 * settled hash), and every target still holds a copy of the right size. The file is unlinked through the
 * descriptor of its directory, opened without following a symlink, so a directory swapped for a link cannot
 * turn the removal against another file. Empty directories are left alone.
 */

export interface RemovalEnv {
  store: Store;
  /** every configured target, opened for this pass (none of them down) */
  targets: Target[];
  host: string;
  roots: string[];
  log: Logger;
  signal: AbortSignal;
  counts: RunCounts;
}

export interface RemovalResult {
  /** source files removed (and their bytes) */
  removed: string[];
  bytes: number;
  /** due files kept, with why (the live check failed: the source changed, a copy is missing, ...) */
  kept: { path: string; reason: string }[];
  /** files that could not be removed (EACCES...): recorded, reported once */
  failed: { path: string; message: string }[];
}

/** Files due for removal now (verified on every target for `afterMs`), longest held first, then by path; at most `max`. */
export function removalDue(store: Store, targets: string[], afterMs: number, max: number, now = Date.now()): string[] {
  const due: [string, number][] = [];
  for (const [p, r] of store.entries()) {
    const at = localRemovalDueAt(r, targets, afterMs);
    if (at !== undefined && at <= now) due.push([p, at]);
  }
  due.sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return due.slice(0, max).map(([p]) => p);
}

/** Remove the due source files (removalDue), each after its live check. Never throws for a file. */
export async function removeLocal(env: RemovalEnv, paths: string[]): Promise<RemovalResult> {
  const res: RemovalResult = { removed: [], bytes: 0, kept: [], failed: [] };
  for (const p of paths) {
    if (env.signal.aborted) break;
    const rec = env.store.get(p);
    if (!rec) continue;
    let outcome: Outcome;
    try {
      outcome = await removeOne(env, p, rec);
    } catch (err) {
      if (env.signal.aborted) break;
      outcome = { kept: `the live check failed: ${messageOf(err)}` };
    }
    if ('removed' in outcome) {
      markRemovedLocally(rec, Date.now());
      res.removed.push(p);
      res.bytes += rec.z;
      env.counts.removedLocally++;
      env.counts.bytesFreed += rec.z;
      env.log.info(`removed the source ${p} (${rec.z} bytes): verified on every target long enough (deleteLocalAfter)`, { path: p });
    } else if ('failed' in outcome) {
      markRemoveFailed(rec, outcome.failed, Date.now());
      res.failed.push({ path: p, message: outcome.failed });
      env.log.error(`deleteLocalAfter: cannot remove ${p}: ${outcome.failed} (reported once; \`replica retry\` tries again)`, { path: p });
    } else {
      res.kept.push({ path: p, reason: outcome.kept });
      env.log.warn(`deleteLocalAfter: ${p} not removed: ${outcome.kept}`, { path: p });
      if (outcome.down) break; // a target stopped answering: no removal relies on it
    }
    env.store.set(p, rec);
  }
  return res;
}

type Outcome = { removed: true } | { failed: string } | { kept: string; down?: boolean };

async function removeOne(env: RemovalEnv, p: string, rec: Rec): Promise<Outcome> {
  const root = rootOf(env.roots, p);
  const parent = root === undefined ? undefined : openParentUnder(root, p);
  if (!parent) return { kept: 'the source is gone or its directory is not a directory any more' };
  const { fd: dirFd, name } = parent;
  const id = identityOf(rec);
  try {
    // 1. the source is the file that settled, and still holds the verified bytes
    let fd: number;
    try {
      fd = fs.openSync(name, FILE_FLAGS);
    } catch (err) {
      return { kept: `the source cannot be opened (${(err as NodeJS.ErrnoException).code ?? messageOf(err)})` };
    }
    try {
      const st = fs.fstatSync(fd);
      if (!st.isFile() || !sameFile(st, id)) return { kept: 'the source changed since it was verified (size, mtime, inode or ctime)' };
      const { hash } = await hashFd(fd, { signal: env.signal });
      if (hash !== rec.h) return { kept: `the source's bytes hash to ${hash}, not the verified ${rec.h}` };
    } finally {
      fs.closeSync(fd);
    }
    // 2. every target still holds a copy of the right size (stat; a kind that cannot tell keeps the file)
    const rel = targetPath(env.host, p);
    for (const t of env.targets) {
      // tape: its confirmed catalog entry (a tape is not read at random; the confirm read it back whole)
      if (hasArchive(t) && t.locate(rel, rec.h!)) continue;
      if (!hasRandomRead(t)) return { kept: `target ${t.name} cannot show that its copy is there` };
      let st: { size: number } | undefined;
      try {
        st = await t.stat(rel);
      } catch (err) {
        const e: TargetError = toTargetError(err, t.name, `[${t.name}] stat ${rel}`);
        return { kept: `target ${t.name}: [${e.errorClass}] ${e.message}`, down: e.targetWide || e.errorClass === 'unreachable' };
      }
      if (st?.size === rec.z) continue;
      // the store said verified, the target disagrees: the copy is re-made by the next pass, as a scrub would
      const why = st ? `the copy there has ${st.size} bytes, not ${rec.z}` : 'the copy there is missing';
      markCopyBad(rec, t.name, st ? 'mismatch' : 'missing', `${why} (seen by the check before removing the source)`, Date.now());
      return { kept: `target ${t.name}: ${why}: it is copied again` };
    }
    // 3. the last look, then the unlink through the directory's descriptor
    let now: fs.Stats;
    try {
      now = fs.lstatSync(name);
    } catch {
      return { kept: 'the source vanished during the check' };
    }
    if (!now.isFile() || !sameFile(now, id)) return { kept: 'the source changed during the check' };
    try {
      fs.unlinkSync(name);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return { kept: 'the source vanished during the check' };
      return { failed: messageOf(err).replace(name, p) };
    }
    return { removed: true };
  } finally {
    fs.closeSync(dirFd);
  }
}
