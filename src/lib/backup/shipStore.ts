import fs from 'node:fs';
import path from 'node:path';
import PQueue from 'p-queue';
import { withFileSource } from '../targets/source.js';
import { storePath } from '../targets/layout.js';
import { type Target, hasRandomRead } from '../targets/target.js';

/**
 * Shards looked at (stat) and sent at once: each is a round trip or a few, and a store of 10^5 records has 512
 * shards to look at every run. 512 stats over ssh to localhost: 208-238 ms one at a time, 93-112 ms 16 at a
 * time (more where each round trip crosses a network).
 */
const SHIP_AT_ONCE = 16;

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
  const ship = async (rel: string) => {
    const src = path.join(snapshotDir, rel);
    const st = fs.statSync(src);
    const dest = `${storePath(host)}/${rel}`;
    // where the kind can tell what is there already, an unchanged shard is not sent again
    const there = fromSnapshot && rel !== 'meta.json' && hasRandomRead(target) ? await target.stat(dest) : undefined;
    if (there && there.size === st.size && there.mtimeMs !== undefined && Math.floor(there.mtimeMs / 1000) === Math.floor(st.mtimeMs / 1000)) return;
    // private: every path and hash of this machine is in there
    await withFileSource(src, { mode: 0o600, mtimeMs: st.mtimeMs }, (s) => target.put(dest, s, { signal }));
    shipped++;
  };
  // the shards SHIP_AT_ONCE at a time (a store of 10^5 records has 512), then meta.json, once they are all there
  const queue = new PQueue({ concurrency: SHIP_AT_ONCE });
  const failed: unknown[] = [];
  await Promise.all(files.map((rel) => queue.add(async () => {
    if (failed.length) return; // the first failure is the answer: nothing more is started
    try { await ship(rel); } catch (err) { failed.push(err); }
  })));
  if (failed.length) throw failed[0];
  await ship('meta.json');
  await target.sync({ signal });
  return shipped;
}
