import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it, beforeEach, afterEach } from 'node:test';
import { backup } from '../dist/lib/backup/backup.js';
import { removalDue, removeLocal } from '../dist/lib/backup/deleteLocal.js';
import { validateConfig } from '../dist/lib/config/validate.js';
import { MemoryTarget } from '../dist/lib/targets/memory.js';
import { Store } from '../dist/lib/store/store.js';
import { decodeState, emptyCounts } from '../dist/lib/store/model.js';
import { TargetError } from '../dist/lib/errors.js';
import { silentLogger } from '../dist/lib/log.js';
import { age, rmTree, tmpDir } from './helpers.js';

const log = silentLogger();

describe('deleteLocalAfter: the removal and its live check (backup/deleteLocal.ts)', () => {
  let dir: string; let src: string; let store: Store; let a: MemoryTarget; let b: MemoryTarget;
  const config = (extra: Record<string, unknown> = {}) => validateConfig({
    host: 'mem', sources: [src], targets: [{ name: 'a', url: '/unused/a' }, { name: 'b', url: '/unused/b' }], snapshots: 1, deleteLocalAfter: 0, ...extra,
  }, path.join(dir, 'replica.config.json'));
  const file = (name: string, data: string) => { const p = path.join(src, name); fs.mkdirSync(path.dirname(p), { recursive: true }); fs.writeFileSync(p, data); age(p); return p; };
  const env = () => ({ store, targets: [a, b], host: 'mem', roots: [src], log, signal: new AbortController().signal, counts: emptyCounts() });

  beforeEach(async () => {
    dir = tmpDir();
    fs.mkdirSync(path.join(dir, 'src'));
    src = fs.realpathSync(path.join(dir, 'src'));
    store = await Store.open(path.join(dir, 'store'), { host: 'mem', agentVersion: 't', snapshots: 1, log });
    a = new MemoryTarget('a');
    b = new MemoryTarget('b');
  });
  afterEach(async () => { await store.close(); rmTree(dir); });

  it('due only once verified on every target for the age, longest held first, at most max; a removed file is recorded, never a deletion', async () => {
    const f1 = file('d/one', 'one'); const f2 = file('d/two', 'two'); const f3 = file('d/three', 'three');
    await backup(config({ deleteLocalAfter: null }), store, [a, b], log, { target: 'a' });
    assert.deepEqual(removalDue(store, ['a', 'b'], 0, 10), [], 'verified on a only: nothing is due');
    assert.deepEqual(removalDue(store, ['a'], 0, 10).length, 3);
    await backup(config({ deleteLocalAfter: null }), store, [a, b], log);
    const only = await backup(config(), store, [a, b], log, { target: 'a' });
    assert.match(only.removedLocally?.blocked ?? '', /3 source files due for removal, none removed: target b \(not in this pass\)/);
    assert.deepEqual([f1, f2, f3].map((f) => fs.existsSync(f)), [true, true, true], 'a pass that left a target out removes nothing');
    assert.deepEqual(removalDue(store, ['a', 'b'], 3_600_000, 10), [], 'not old enough');
    assert.equal(removalDue(store, ['a', 'b'], 0, 2).length, 2, 'at most max');
    const res = await backup(config({ deleteLocalMax: 2 }), store, [a, b], log);
    assert.equal(res.ok, true);
    assert.equal(res.removedLocally?.removed.length, 2);
    assert.equal(res.counts.removedLocally, 2);
    const again = await backup(config(), store, [a, b], log);
    assert.equal(again.counts.deleted, 0, 'a removed file is never counted as a deletion at the source');
    assert.deepEqual([f1, f2, f3].map((f) => fs.existsSync(f)), [false, false, false]);
    assert.ok(fs.existsSync(path.join(src, 'd')), 'empty directories are left alone');
    for (const f of [f1, f2, f3]) {
      assert.equal(store.get(f)?.r !== undefined, true);
      assert.equal(store.get(f)?.d, undefined);
    }
    const third = await backup(config(), store, [a, b], log);
    assert.equal(third.ok, true, 'a source with every file removed is not source-missing');
    assert.deepEqual(third.missingSources, []);
    // a target added after the removal is owed the files too: copied from a verified copy on another target
    const c = new MemoryTarget('c');
    const cfgC = validateConfig({ host: 'mem', sources: [src], snapshots: 1, deleteLocalAfter: 0,
      targets: [{ name: 'a', url: '/unused/a' }, { name: 'b', url: '/unused/b' }, { name: 'c', url: '/unused/c' }] }, path.join(dir, 'replica.config.json'));
    const withC = await backup(cfgC, store, [a, b, c], log);
    assert.equal(withC.ok, true);
    assert.equal(withC.counts.copied, 3);
    for (const f of [f1, f2, f3]) assert.deepEqual(c.files.get(`mem${f}`)?.data, a.files.get(`mem${f}`)?.data);
  });

  it('the live check: a source changed in the pass, a copy gone or short on a target, a directory swapped for a symlink: nothing removed', async () => {
    const changed = file('changed', 'aaaa'); const gone = file('gone', 'bbbb'); const short = file('short', 'cccc'); const linked = file('sub/linked', 'dddd');
    const keep = file('keep', 'eeee');
    await backup(config({ deleteLocalAfter: null }), store, [a, b], log);
    // after the scan of a pass, before its removal step
    const st = fs.statSync(changed);
    fs.writeFileSync(changed, 'AAAA');
    fs.utimesSync(changed, st.atime, st.mtime); // same size and mtime: ctime shows it
    b.files.delete(`mem${gone}`);
    a.files.set(`mem${short}`, { ...a.files.get(`mem${short}`)!, data: Buffer.from('cc') });
    fs.renameSync(path.join(src, 'sub'), path.join(dir, 'elsewhere'));
    fs.symlinkSync(path.join(dir, 'elsewhere'), path.join(src, 'sub'));
    const res = await removeLocal(env(), [changed, gone, short, linked, keep].sort());
    assert.deepEqual(res.removed, [keep]);
    const why = Object.fromEntries(res.kept.map((k) => [path.basename(k.path), k.reason]));
    assert.match(why.changed, /changed since it was verified/);
    assert.match(why.gone, /target b: the copy there is missing: it is copied again/);
    assert.match(why.short, /target a: the copy there has 2 bytes, not 4/);
    assert.match(why.linked, /gone or its directory is not a directory/);
    assert.ok(fs.existsSync(path.join(dir, 'elsewhere', 'linked')), 'the file behind the symlink is untouched');
    assert.deepEqual([changed, gone, short].map((f) => fs.existsSync(f)), [true, true, true]);
    assert.equal(decodeState(store.get(gone)!.t.b).e?.[0], 'missing', 'the store learns the copy is gone: it is re-made');
    assert.equal(decodeState(store.get(short)!.t.a).e?.[0], 'mismatch');
    const next = await backup(config({ deleteLocalAfter: null }), store, [a, b], log);
    assert.equal(next.ok, true);
    assert.equal(b.files.get(`mem${gone}`)?.data.toString(), 'bbbb', 'the next pass copies it again');
  });

  it('bytes that differ behind an unchanged stat (bit rot on the source) are never removed', async () => {
    const p = file('rot', 'xxxx');
    await backup(config({ deleteLocalAfter: null }), store, [a, b], log);
    const rec = store.get(p)!;
    rec.h = '0000000000000000';
    store.set(p, rec);
    const res = await removeLocal(env(), [p]);
    assert.deepEqual(res.removed, []);
    assert.match(res.kept[0].reason, /hash to [0-9a-f]{16}, not the verified 0000000000000000/);
    assert.ok(fs.existsSync(p));
  });

  it('a target that stops answering stops the removal of every file after it', async () => {
    const files = ['p', 'q', 'r'].map((n) => file(n, n));
    await backup(config({ deleteLocalAfter: null }), store, [a, b], log);
    b.inject = (op) => (op === 'stat' ? new TargetError('timed out', { target: 'b', errorClass: 'unreachable' }) : undefined);
    const res = await removeLocal(env(), files);
    assert.equal(res.removed.length, 0);
    assert.equal(res.kept.length, 1, 'the first file is kept and the rest are not tried');
    assert.deepEqual(files.map((f) => fs.existsSync(f)), [true, true, true]);
  });
});
