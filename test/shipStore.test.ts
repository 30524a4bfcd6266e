import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { shipStore } from '../dist/lib/backup/shipStore.js';
import { Store } from '../dist/lib/store/store.js';
import { MemoryTarget } from '../dist/lib/targets/memory.js';
import { silentLogger } from '../dist/lib/log.js';
import { rmTree, tmpDir } from './helpers.js';

/** A target that keeps mtimes to the second, as an ssh server does. */
class SecondsTarget extends MemoryTarget {
  override async stat(rel: string) {
    const st = await super.stat(rel);
    return st && { ...st, mtimeMs: st.mtimeMs === undefined ? undefined : Math.floor(st.mtimeMs / 1000) * 1000 };
  }
}

describe('shipping the store: only what changed since the last ship goes again (backup/shipStore.ts)', () => {
  it('unchanged shards are not sent again, a changed shard is, even on a target that keeps mtimes to the second and within the same second', async () => {
    const dir = tmpDir();
    const store = await Store.open(path.join(dir, 'st'), { host: 'h', agentVersion: 't', snapshots: 3, log: silentLogger() });
    // enough records for two shards (a new store has one; 4,097 records make it two)
    for (let i = 0; i < 5000; i++) store.set(`/r${i}`, { z: 1, m: 1, f: 1, t: {} });
    await store.flush();
    assert.equal(store.meta.shards, 2);
    for (const t of [new MemoryTarget('ms'), new SecondsTarget('s')]) {
      store.set('/a', { z: 1, m: 1, f: 1, t: {} });
      await store.flush();
      const first = await shipStore(t, (await store.snapshot())!, 'h');
      assert.equal(first, 3, `${t.name}: everything the first time: two shards and meta.json`);
      assert.equal(await shipStore(t, (await store.snapshot())!, 'h'), 1, `${t.name}: nothing changed: meta.json only`);
      for (let i = 0; i < 3; i++) { // several changes of one shard within a second, with the same size
        store.set('/a', { z: 1, m: 2 + i, f: 1, t: {} });
        await store.flush();
        const snap = (await store.snapshot())!;
        assert.equal(await shipStore(t, snap, 'h'), 2, `${t.name}: the changed shard and meta.json`);
        const shard = [...t.files.keys()].find((k) => k.startsWith('.replica/h/files/') && t.files.get(k)!.data.includes('"/a"'))!;
        assert.match(t.files.get(shard)!.data.toString(), new RegExp(`"m":${2 + i}`), 'the shipped shard is the new one');
      }
      assert.equal(await shipStore(t, store.dir, 'h', undefined, false), 3, 'from the live store (snapshots off): everything');
    }
    await store.close();
    rmTree(dir);
  });
});
