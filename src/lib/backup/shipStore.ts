import fs from 'node:fs';
import path from 'node:path';
import { withFileSource } from '../targets/source.js';
import { storePath } from '../targets/layout.js';
import { type Target, hasRandomRead } from '../targets/target.js';

/**
 * Copy a store snapshot (a directory that never changes: hard links) to `<base>/.replica/<host>/` on a
 * target, so replica-monitor can read every host's state from a backup server. Shards first and
 * meta.json last. From a snapshot, a shard whose size and mtime (to the second: what every kind keeps; a
 * changed shard's snapshot copy is at least a second newer, snapshots.ts) already match there is not sent
 * again; from the live store (snapshots off) every file is sent. Returns the number of files sent.
 */
export async function shipStore(target: Target, snapshotDir: string, host: string, signal?: AbortSignal, fromSnapshot = true): Promise<number> {
  const files = fs.readdirSync(path.join(snapshotDir, 'files')).sort().map((f) => `files/${f}`);
  let shipped = 0;
  for (const rel of [...files, 'meta.json']) {
    const src = path.join(snapshotDir, rel);
    const st = fs.statSync(src);
    const dest = `${storePath(host)}/${rel}`;
    // where the kind can tell what is there already, an unchanged shard is not sent again
    const there = fromSnapshot && rel !== 'meta.json' && hasRandomRead(target) ? await target.stat(dest) : undefined;
    if (there && there.size === st.size && there.mtimeMs !== undefined && Math.floor(there.mtimeMs / 1000) === Math.floor(st.mtimeMs / 1000)) continue;
    // private: every path and hash of this machine is in there
    await withFileSource(src, { mode: 0o600, mtimeMs: st.mtimeMs }, (s) => target.put(dest, s, { signal }));
    shipped++;
  }
  await target.sync({ signal });
  return shipped;
}
