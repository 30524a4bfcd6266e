import assert from 'node:assert/strict';
import path from 'node:path';
import { it } from 'node:test';
import { scrubSlice, scrubTarget } from '../dist/lib/backup/scrub.js';
import { TargetError } from '../dist/lib/errors.js';
import { initHasher, hashBytes } from '../dist/lib/hash/xxh64.js';
import { silentLogger } from '../dist/lib/log.js';
import { codeOn, isVerifiedOn, verifiedAtOn } from '../dist/lib/store/records.js';
import { Store } from '../dist/lib/store/store.js';
import { MemoryTarget } from '../dist/lib/targets/memory.js';
import { rmTree, tmpDir } from './helpers.js';

/** A store and a memory target holding `n` verified copies of /data/fNNNN (each 8 bytes), verified long ago. */
async function setup(n: number): Promise<{ dir: string; store: Store; t: MemoryTarget; old: number }> {
  await initHasher();
  const dir = tmpDir();
  const store = await Store.open(path.join(dir, 'store'), { host: 'h', agentVersion: 't', snapshots: 0, log: silentLogger() });
  const t = new MemoryTarget('m');
  const old = Date.now() - 86_400_000;
  for (let i = 0; i < n; i++) {
    const p = `/data/f${String(i).padStart(4, '0')}`;
    const data = Buffer.from(p.slice(-8));
    t.files.set(`h${p}`, { data });
    store.set(p, { z: data.length, m: 1, f: 1, s: 2, h: hashBytes(data), t: { m: `v ${old} ${old}` } });
  }
  return { dir, store, t, old };
}

it('scrubTarget reads every copy across many parts (read ahead): good ones verified again, bad ones failed, each once', async () => {
  const { dir, store, t, old } = await setup(700); // parts of 256: three, two of them read ahead of the one recorded
  t.corrupt('h/data/f0003');
  t.corrupt('h/data/f0600');
  t.files.delete('h/data/f0300');
  const slice = scrubSlice(store, 'm', undefined);
  assert.equal(slice.length, 700);
  let reported = 0;
  const res = await scrubTarget(store, t, 'h', slice, { update: true, onRead: () => reported++ });
  assert.equal(res.read, 700);
  assert.equal(reported, 700);
  assert.equal(res.good, 697);
  assert.deepEqual(res.bad.map((b) => [b.path, b.class]), [['/data/f0003', 'mismatch'], ['/data/f0300', 'missing'], ['/data/f0600', 'mismatch']]);
  for (const [p, r] of store.entries()) {
    if (['/data/f0003', '/data/f0300', '/data/f0600'].includes(p)) assert.equal(codeOn(r, 'm'), 'f', p);
    else assert.ok(isVerifiedOn(r, 'm') && verifiedAtOn(r, 'm')! > old, p);
  }
  await store.close();
  rmTree(dir);
});

it('scrubTarget: a target-wide failure in a later part stops the scrub; what was not recorded keeps its state', async () => {
  const { dir, store, t, old } = await setup(600);
  let reads = 0;
  // the target goes away while the second part is read (hashMany and per-file hash both fail from then on)
  t.inject = (op) => (op === 'hash' && ++reads > 256 ? new TargetError('[m] gone', { target: 'm', errorClass: 'unreachable' }) : undefined);
  const res = await scrubTarget(store, t, 'h', scrubSlice(store, 'm', undefined), { update: true });
  assert.equal(res.error?.class, 'unreachable');
  assert.equal(res.read, 256, 'the first part was recorded, nothing after the failure');
  const states = [...store.entries()].map(([, r]) => verifiedAtOn(r, 'm'));
  assert.equal(states.filter((v) => v !== undefined && v > old).length, 256);
  assert.equal(states.filter((v) => v === old).length, 600 - 256, 'the rest untouched: verified as before, not failed');
  await store.close();
  rmTree(dir);
});

it('scrubTarget: a record that changed in place to a new content, verified again, while its old copy was read is not judged by that read', async () => {
  const { dir, store, t } = await setup(3);
  t.corrupt('h/data/f0001'); // the read of the old copy will say mismatch
  const slice = scrubSlice(store, 'm', undefined);
  const now = Date.now();
  t.inject = (op, rel) => {
    if (rel === 'h/data/f0001') {
      // meanwhile: a new content settled and its copy was written and verified (records change in place)
      const rec = store.get('/data/f0001')!;
      rec.h = hashBytes(Buffer.from('new content'));
      rec.t.m = `v ${now} ${now}`;
      store.set('/data/f0001', rec);
    }
    return undefined;
  };
  const res = await scrubTarget(store, t, 'h', slice, { update: true });
  assert.deepEqual(res.bad, [], 'the read was against the old content: nothing said of the new one');
  assert.equal(res.read, 2);
  const rec = store.get('/data/f0001')!;
  assert.ok(isVerifiedOn(rec, 'm'));
  assert.equal(verifiedAtOn(rec, 'm'), now, 'its verification stays the one of the new copy');
  await store.close();
  rmTree(dir);
});
