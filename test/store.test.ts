import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Store } from '../dist/lib/store/store.js';
import { StoreLock } from '../dist/lib/store/lock.js';
import { decodeState, encodeState, toFileRecord, type Rec } from '../dist/lib/store/model.js';
import { LockedError, StoreError } from '../dist/lib/errors.js';
import { silentLogger } from '../dist/lib/log.js';
import { settleRuleHolds, settlesAt } from '../dist/lib/scan/settle.js';
import { rmTree, tmpDir } from './helpers.js';

const opts = { host: 'h', agentVersion: '0.0.0', snapshots: 2, log: silentLogger(), flushMs: 20 };
const rec = (i: number): Rec => ({ z: i, m: 1000 + i, o: 1, f: 1, s: 2, h: i.toString(16).padStart(16, '0'), t: { a: 'v 3 4' } });

describe('store', () => {
  it('records survive reopen; only dirty shards are written; background flush happens by itself', async () => {
    const dir = tmpDir();
    const s = await Store.open(dir, opts);
    for (let i = 0; i < 1000; i++) s.set(`/data/f${i}`, rec(i));
    await s.close();
    const before = new Map(fs.readdirSync(path.join(dir, 'files')).map((f) => [f, fs.statSync(path.join(dir, 'files', f)).mtimeMs]));
    const s2 = await Store.open(dir, opts);
    assert.equal(s2.size, 1000);
    assert.deepEqual(s2.get('/data/f7'), rec(7));
    s2.set('/data/f7', { ...rec(7), z: 99 });
    await new Promise((r) => setTimeout(r, 200)); // the debounced flush
    const changed = fs.readdirSync(path.join(dir, 'files')).filter((f) => fs.statSync(path.join(dir, 'files', f)).mtimeMs !== before.get(f));
    assert.equal(changed.length, 1);
    assert.equal((await Store.open(dir, { ...opts, readOnly: true })).get('/data/f7')?.z, 99);
    await s2.close();
    rmTree(dir);
  });

  it('a store starts with one shard and re-shards as it grows (10k records: 4 shards); the old files go, every record stays', async () => {
    const dir = tmpDir();
    const s = await Store.open(dir, opts);
    s.set('/one', rec(1));
    await s.flush();
    assert.deepEqual(fs.readdirSync(path.join(dir, 'files')), ['00-of-1.json']);
    for (let i = 0; i < 10_000; i++) s.set(`/data/f${i}`, rec(i));
    await s.flush();
    assert.equal(s.meta.shards, 4);
    assert.deepEqual(fs.readdirSync(path.join(dir, 'files')).sort(), ['00-of-4.json', '01-of-4.json', '02-of-4.json', '03-of-4.json']);
    assert.equal(JSON.parse(fs.readFileSync(path.join(dir, 'meta.json'), 'utf8')).shards, 4);
    await s.close();
    const again = await Store.open(dir, { ...opts, readOnly: true });
    assert.equal(again.size, 10_001);
    assert.deepEqual(again.get('/data/f9999'), rec(9999));
    assert.deepEqual(again.get('/one'), rec(1));
    rmTree(dir);
  });

  it('past 65,536 records the shards get small (<= 256 records, under V8\'s 128 KiB large-object size), with three hex digits past ff; the layout is found without meta.json', async () => {
    const dir = tmpDir();
    const s = await Store.open(dir, { ...opts, snapshots: 0 });
    for (let i = 0; i < 65_536; i++) s.set(`/data/f${i}`, rec(i));
    await s.flush();
    assert.equal(s.meta.shards, 16, '65,536 records: 16 shards of 4,096');
    const names = () => fs.readdirSync(path.join(dir, 'files')).sort();
    for (let i = 65_536; i < 70_000; i++) s.set(`/data/f${i}`, rec(i));
    await s.close();
    assert.equal(s.meta.shards, 512);
    assert.deepEqual(names(), Array.from({ length: 512 }, (_, i) => `${i.toString(16).padStart(2, '0')}-of-512.json`).sort());
    for (const f of names()) assert.ok(fs.statSync(path.join(dir, 'files', f)).size < 128 << 10, f);
    const again = await Store.open(dir, { ...opts, readOnly: true });
    assert.equal(again.size, 70_000);
    assert.deepEqual(again.get('/data/f69999'), rec(69999));
    // meta.json lost: the layout is found from the files (1ff-of-512.json is one of them)
    fs.rmSync(path.join(dir, 'meta.json'));
    const found = await Store.open(dir, { ...opts, snapshots: 0 });
    assert.equal(found.meta.shards, 512);
    assert.equal(found.size, 70_000);
    await found.close();
    rmTree(dir);
  });

  it('a load turns the event loop between shards (what completed meanwhile, e.g. a watch subscription, is seen during the load)', async () => {
    const dir = tmpDir();
    const s = await Store.open(dir, opts);
    for (let i = 0; i < 10_000; i++) s.set(`/data/f${i}`, rec(i));
    await s.close(); // 4 shards
    let turns = 0;
    let loading = true;
    const spin = () => { if (loading) { turns++; setImmediate(spin); } };
    setImmediate(spin);
    const again = await Store.open(dir, { ...opts, readOnly: true });
    loading = false;
    assert.equal(again.size, 10_000);
    assert.ok(turns >= 3, `the event loop turned ${turns} times during a 4-shard load`);
    rmTree(dir);
  });

  it('a streamed store (read-only) gives every record a loaded one gives, reads the shards again at each pass, takes a damaged shard from the snapshot, and holds no records', async () => {
    const dir = tmpDir();
    const s = await Store.open(dir, opts);
    for (let i = 0; i < 10_000; i++) s.set(`/data/f${i}`, rec(i));
    await s.snapshot();
    s.set('/data/f1', { ...rec(1), z: 42 }); // after the snapshot
    await s.close();
    const loaded = await Store.open(dir, { ...opts, readOnly: true });
    const streamed = await Store.open(dir, { ...opts, readOnly: true, streamed: true });
    const sorted = (it: Iterable<[string, Rec]>) => [...it].sort((a, b) => (a[0] < b[0] ? -1 : 1));
    assert.deepEqual(sorted(streamed.entries()), sorted(loaded.entries()));
    assert.equal([...streamed.entries()].length, 10_000);
    assert.throws(() => streamed.get('/data/f1'), /streamed store holds no records/);
    assert.throws(() => streamed.size, /streamed store holds no records/);
    // each pass reads the files: a shard damaged since the open is taken from the snapshot, with a warning
    const shard = fs.readdirSync(path.join(dir, 'files')).find((f) => f.startsWith('00-of-'))!;
    fs.writeFileSync(path.join(dir, 'files', shard), '{"formatVersion": 1, "files": {"/x": {"z": "not a number"}}}');
    const again = new Map(streamed.entries());
    assert.equal(again.size, 10_000);
    assert.match(streamed.warnings.join('\n'), /is unusable \(not a replica store file \(wrong shape\)\); using the copy from snapshot/);
    rmTree(dir);
  });

  it('a re-shard cut short before meta.json (a crash) leaves the old layout as the store, and its leftovers are removed; a lost meta.json finds the layout on disk', async () => {
    const dir = tmpDir();
    const s = await Store.open(dir, { ...opts, snapshots: 0 });
    for (let i = 0; i < 5000; i++) s.set(`/data/f${i}`, rec(i));
    await s.close(); // 5000 records: 2 shards
    assert.equal(s.meta.shards, 2);
    // the files a re-shard to 4 writes before its commit (meta.json still says 2), as a crash would leave them
    for (let i = 0; i < 4; i++) fs.writeFileSync(path.join(dir, 'files', `0${i}-of-4.json`), JSON.stringify({ formatVersion: 1, files: {} }));
    const s2 = await Store.open(dir, { ...opts, snapshots: 0 });
    assert.equal(s2.size, 5000);
    assert.deepEqual(fs.readdirSync(path.join(dir, 'files')).sort(), ['00-of-2.json', '01-of-2.json']);
    await s2.close();
    // meta.json lost, no snapshot: the shard files there are read (2), not an empty one-shard store
    fs.rmSync(path.join(dir, 'meta.json'));
    const s3 = await Store.open(dir, { ...opts, snapshots: 0 });
    assert.equal(s3.meta.shards, 2);
    assert.equal(s3.size, 5000);
    await s3.close();
    rmTree(dir);
  });

  it('snapshots rotate, share no inode with live files, and a missing or damaged meta.json falls back', async () => {
    const dir = tmpDir();
    const s = await Store.open(dir, opts);
    s.set('/x', rec(1));
    const snaps: string[] = [];
    for (let i = 0; i < 4; i++) { s.set(`/y${i}`, rec(i)); snaps.push((await s.snapshot())!); }
    assert.equal(s.snapshotDirs().length, 2);
    assert.deepEqual(s.snapshotDirs(), snaps.slice(2).reverse());
    const liveIno = fs.statSync(path.join(dir, 'meta.json')).ino;
    assert.notEqual(fs.statSync(path.join(snaps[3], 'meta.json')).ino, liveIno);
    await s.close();
    fs.writeFileSync(path.join(dir, 'meta.json'), '{"formatVersion": 1');
    const s2 = await Store.open(dir, opts);
    assert.match(s2.warnings.join(), /meta\.json is unusable/);
    assert.equal(s2.get('/y3')?.z, 3);
    assert.equal(s2.size, 5, 'every record counted');
    await s2.close();
    // one record of the wrong shape (no target states) makes its shard unusable: the snapshot's copy is taken
    const shard = path.join(dir, 'files', fs.readdirSync(path.join(dir, 'files')).find((n) => n.endsWith('.json') && !n.startsWith('tape-'))!);
    const bad = JSON.parse(fs.readFileSync(shard, 'utf8'));
    delete bad.files['/y1'].t;
    fs.writeFileSync(shard, JSON.stringify(bad));
    const s3 = await Store.open(dir, opts);
    assert.match(s3.warnings.join(), /is unusable \(not a replica store file \(wrong shape\)\); using the copy from snapshot/);
    assert.deepEqual([s3.size, typeof s3.get('/y1')?.t], [5, 'object']);
    await s3.close();
    rmTree(dir);
  });

  it('tape catalogs live in files/tape-<target>.json, not in meta.json; snapshotted; a lost one comes back from the snapshot; one kept in meta.json by an older build moves out', async () => {
    const dir = tmpDir();
    const s = await Store.open(dir, opts);
    const catalog = { tapes: [{ label: 'T001', state: 'open' as const, bytes: 0, openedAt: 'x' }], files: [{ label: 'T001', number: 1, state: 'confirmed' as const, bytes: 10, startedAt: 'x', members: [['h/a', '0123456789abcdef', 1, 0o644, 1536]] as [string, string, number, number, number][] }] };
    s.meta.tape = { 'lto 1': catalog };
    s.saveCatalog('lto 1');
    s.touchMeta();
    await s.snapshot();
    await s.close();
    const file = path.join(dir, 'files', 'tape-lto%201.json');
    assert.deepEqual(JSON.parse(fs.readFileSync(file, 'utf8')).catalog, catalog);
    assert.equal(JSON.parse(fs.readFileSync(path.join(dir, 'meta.json'), 'utf8')).tape, undefined, 'meta.json stays small');
    assert.deepEqual((await Store.open(dir, { ...opts, readOnly: true })).meta.tape, { 'lto 1': catalog });
    fs.rmSync(file);
    const back = await Store.open(dir, opts);
    assert.deepEqual(back.meta.tape, { 'lto 1': catalog });
    assert.match(back.warnings.join('\n'), /tape-lto%201\.json is unusable \(missing\); using the copy from snapshot/);
    await back.close();
    // an older build's meta.json with the catalog inside
    const meta = JSON.parse(fs.readFileSync(path.join(dir, 'meta.json'), 'utf8'));
    fs.writeFileSync(path.join(dir, 'meta.json'), JSON.stringify({ ...meta, tape: { old: catalog } }));
    const moved = await Store.open(dir, opts);
    await moved.close();
    assert.ok(fs.existsSync(path.join(dir, 'files', 'tape-old.json')));
    assert.equal(JSON.parse(fs.readFileSync(path.join(dir, 'meta.json'), 'utf8')).tape, undefined);
    rmTree(dir);
  });

  it('refuses a store from a newer format, and a store dir it cannot create', async () => {
    const dir = tmpDir();
    fs.writeFileSync(path.join(dir, 'meta.json'), JSON.stringify({ formatVersion: 99 }));
    await assert.rejects(Store.open(dir, opts), StoreError);
    await assert.rejects(Store.open(path.join(dir, 'meta.json', 'sub'), opts), /cannot create/);
    rmTree(dir);
  });

  it('toFileRecord expands compact records to the logical FileRecords', () => {
    const r: Rec = { ...rec(5), t: { a: encodeState({ s: 'v', c: 3, v: 4 }), b: encodeState({ s: 'f', a: 2, n: 9, e: ['ENOSPC', 'disk  full\nnow', 8] }), c: 'p' } };
    const f = toFileRecord('/p', r);
    assert.equal(f.targets.a.state, 'verified');
    assert.equal(f.targets.a.hash, r.h);
    assert.equal(f.targets.a.size, 5);
    assert.deepEqual(f.targets.b.lastError, { class: 'ENOSPC', message: 'disk full now', at: new Date(8).toISOString() });
    assert.equal(r.t.a, 'v 3 4');
    assert.equal(r.t.b, 'f - - 2 9 8 ENOSPC disk full now');
    assert.deepEqual(decodeState(r.t.b), { s: 'f', a: 2, n: 9, e: ['ENOSPC', 'disk full now', 8] });
    assert.deepEqual(decodeState(undefined), { s: 'p' });
    assert.equal(f.targets.b.attempts, 2);
    assert.equal(f.targets.c.hash, undefined);
    assert.equal(f.kind, 'file');
  });
});

describe('lock', () => {
  it('is exclusive within a live process and released on release()', () => {
    const dir = tmpDir();
    const l = StoreLock.acquire(dir, 'run');
    assert.throws(() => StoreLock.acquire(dir, 'run'), LockedError);
    l.release();
    StoreLock.acquire(dir, 'run').release();
    fs.writeFileSync(path.join(dir, 'lock'), 'half-written');
    StoreLock.acquire(dir, 'run').release();
    fs.writeFileSync(path.join(dir, 'lock'), JSON.stringify({ pid: 2 ** 22 + 1, command: 'run', at: 'x' }));
    StoreLock.acquire(dir, 'run').release();
    rmTree(dir);
  });
});

describe('settle rule', () => {
  it('settles by two observations `settle` apart, or by an old mtime; a future mtime only by observations', () => {
    const r = { z: 1, m: 10_000, o: 10_000, f: 0, t: {} } as Rec;
    assert.equal(settleRuleHolds(r, 10_500, 1000), false);
    assert.equal(settleRuleHolds(r, 11_000, 1000), true);
    assert.equal(settleRuleHolds({ ...r, o: 50_000 }, 50_100, 1000), true, 'old mtime');
    assert.equal(settleRuleHolds({ ...r, m: 99_999, o: 50_000 }, 50_100, 1000), false, 'future mtime');
    assert.equal(settlesAt(r, 1000), 11_000);
  });
});
