import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { it } from 'node:test';
import { TapeTarget } from '../../dist/lib/targets/tape.js';
import { EmulatedDrive } from '../../dist/lib/targets/tapeDrive.js';
import { type CatalogHost, emptyCatalog } from '../../dist/lib/targets/tapeCatalog.js';
import { TargetError } from '../../dist/lib/errors.js';
import { hashBytes, initHasher } from '../../dist/lib/hash/xxh64.js';
import { bufferSource } from '../../dist/lib/targets/source.js';
import { rmTree, tmpDir } from '../helpers.js';
import { testTarget } from './conformance.js';

/** A catalog kept in memory, counting its saves. */
function memCatalog(host = 'h'): CatalogHost & { saves: number } {
  const c = { host, catalog: emptyCatalog(), saves: 0, save() { c.saves++; } };
  return c;
}

async function emulated(capacity = 1 << 30, blockSize = 10240): Promise<{ t: TapeTarget; dir: string; cat: ReturnType<typeof memCatalog> }> {
  const dir = tmpDir('replica-tape-');
  const t = new TapeTarget('lto', new EmulatedDrive(dir, capacity, blockSize));
  const cat = memCatalog();
  t.attachCatalog(cat);
  await t.openTape('T001');
  return { t, dir, cat };
}

testTarget({
  name: 'tape (emulator)',
  create: async () => (await emulated()).t,
  cleanup: async (t) => rmTree(((t as TapeTarget).drive as EmulatedDrive).where),
});

it('tape: each sync() ends one tape file that GNU tar reads: members <host>/<path> byte-identical, and the manifest passes xxhsum -c', async () => {
  await initHasher();
  const { t, dir, cat } = await emulated();
  const files: Record<string, Buffer> = { 'h/data/a.fits': crypto.randomBytes(300_000), 'h/data/sp ace "q".txt': Buffer.from('x\n'), 'h/data/ünï.log': Buffer.alloc(0) };
  for (const [rel, data] of Object.entries(files)) await t.put(rel, bufferSource(data, { hash: hashBytes(data), mtimeMs: 1_700_000_000_500, mode: 0o640 }));
  await t.sync();
  await t.put('h/data/later', bufferSource(Buffer.from('later')));
  await t.sync();
  assert.deepEqual(fs.readdirSync(path.join(dir, 'T001')), ['file00001.tar', 'file00002.tar']);
  assert.deepEqual(cat.catalog.files.map((f) => [f.number, f.state, f.members.length]), [[1, 'written', 3], [2, 'written', 1]]);
  const rb = await t.readBack(Object.keys(files));
  for (const [rel, data] of Object.entries(files)) assert.equal(rb.get(rel), hashBytes(data), rel);
  assert.equal(cat.catalog.files[0].state, 'confirmed');
  assert.ok(cat.catalog.files[0].members.every((m) => typeof m[4] === 'number'), 'offsets recorded by the confirm');
  const out = tmpDir('replica-untar-');
  execFileSync('tar', ['-xf', path.join(dir, 'T001', 'file00001.tar')], { cwd: out });
  for (const [rel, data] of Object.entries(files)) assert.deepEqual(fs.readFileSync(path.join(out, rel)), data, rel);
  assert.equal(Math.floor(fs.statSync(path.join(out, 'h/data/a.fits')).mtimeMs / 1000), 1_700_000_000);
  assert.equal(fs.statSync(path.join(out, 'h/data/a.fits')).mode & 0o777, 0o640);
  assert.match(execFileSync('xxhsum', ['-c', 'h/.replica/manifest-1.xxh64'], { cwd: out, encoding: 'utf8' }), /a\.fits: OK/);
  // a scrub re-read of a confirmed member reads it at its offset
  assert.equal((await t.readBack(['h/data/a.fits'])).get('h/data/a.fits'), hashBytes(files['h/data/a.fits']));
  // extract and locate find the member by its content
  const chunks: Buffer[] = [];
  const ex = await t.extract('h/data/a.fits', hashBytes(files['h/data/a.fits']));
  assert.equal(ex.mode, 0o640);
  for await (const c of ex.data) chunks.push(c as Buffer);
  assert.deepEqual(Buffer.concat(chunks), files['h/data/a.fits']);
  assert.equal(t.locate('h/data/a.fits', hashBytes(files['h/data/a.fits'])), 'tape://T001/1/h/data/a.fits');
  await assert.rejects(t.extract('h/data/a.fits', '0000000000000000'), (e: unknown) => e instanceof TargetError && e.errorClass === 'missing');
  rmTree(dir);
  rmTree(out);
});

it('tape: a byte flipped on tape fails the confirm: the whole tape file is unusable and each of its paths a mismatch', async () => {
  await initHasher();
  const { t, dir, cat } = await emulated();
  const a = crypto.randomBytes(50_000);
  await t.put('h/x/a', bufferSource(a));
  await t.put('h/x/b', bufferSource(Buffer.from('b')));
  await t.sync();
  const f = path.join(dir, 'T001', 'file00001.tar');
  const buf = fs.readFileSync(f);
  buf[buf.indexOf(a.subarray(0, 64)) + 1000] ^= 1;
  fs.writeFileSync(f, buf);
  const rb = await t.readBack(['h/x/a', 'h/x/b']);
  for (const rel of ['h/x/a', 'h/x/b']) assert.ok(rb.get(rel) instanceof TargetError && (rb.get(rel) as TargetError).errorClass === 'mismatch', rel);
  assert.equal(cat.catalog.files[0].state, 'unusable');
  assert.match(cat.catalog.files[0].reason!, /confirm failed: h\/x\/a reads back as/);
  rmTree(dir);
});

it('tape: a write past the capacity fails like the end of a tape: the tape is full, the partial tape file stays and is unusable, no tape is open', async () => {
  const { t, dir, cat } = await emulated(100 << 10, 10240);
  await t.put('h/a', bufferSource(crypto.randomBytes(40 << 10)));
  await t.sync();
  await assert.rejects((async () => {
    await t.put('h/b', bufferSource(crypto.randomBytes(80 << 10)));
    await t.sync();
  })(), (e: unknown) => e instanceof TargetError && e.targetWide && /tape T001 full: open a new one/.test(e.message));
  assert.deepEqual(cat.catalog.tapes.map((x) => [x.label, x.state]), [['T001', 'full']]);
  assert.deepEqual(cat.catalog.files.map((f) => [f.number, f.state]), [[1, 'written'], [2, 'unusable']]);
  const sizes = fs.readdirSync(path.join(dir, 'T001')).map((n) => fs.statSync(path.join(dir, 'T001', n)).size);
  assert.equal(sizes.reduce((x, y) => x + y, 0), 100 << 10, 'written up to the end of the tape');
  await assert.rejects(t.check(), (e: unknown) => e instanceof TargetError && e.errorClass === 'not-mounted' && /T001 full/.test(e.message));
  await t.openTape('T002');
  await t.check();
  await assert.rejects(t.openTape('T001'), /T001 is full/);
  rmTree(dir);
});

it('tape: putMany writes its members in order into one tape file; once the tape is full, the items after it get that error without being tried', async () => {
  await initHasher();
  const { t, dir, cat } = await emulated(1 << 20, 10240);
  const small = [crypto.randomBytes(3000), crypto.randomBytes(5000)];
  // no settled hash given: each member is hashed as it is written (a new file hashed by its first copy)
  assert.deepEqual(await t.putMany(small.map((d, i) => ({ rel: `h/s${i}`, src: bufferSource(d) }))), [undefined, undefined]);
  await t.sync();
  assert.deepEqual(cat.catalog.files[0].members.map((m) => [m[0], m[1]]), [['h/s0', hashBytes(small[0])], ['h/s1', hashBytes(small[1])]]);
  // a member bigger than what may wait in memory for the drive (16 MiB) meets the end of the tape before the call ends
  const big = crypto.randomBytes(17 << 20);
  const res = await t.putMany([{ rel: 'h/big', src: bufferSource(big) }, { rel: 'h/after1', src: bufferSource(small[0]) }, { rel: 'h/after2', src: bufferSource(small[1]) }]);
  assert.ok(res[0] instanceof TargetError && res[0].targetWide && /tape T001 full/.test(res[0].message), String(res[0]));
  assert.equal(res[1], res[0]);
  assert.equal(res[2], res[0]);
  assert.deepEqual(cat.catalog.files.map((f) => [f.number, f.state, f.members.length]), [[1, 'written', 2], [2, 'unusable', 0]], 'the items after it never started a tape file');
  assert.deepEqual(cat.catalog.tapes.map((x) => [x.label, x.state]), [['T001', 'full']]);
  rmTree(dir);
});

it('tape: a tape file left writing or unconfirmed by another process is unusable once a catalog is attached; labels are checked', async () => {
  const dir = tmpDir('replica-tape-');
  const cat = memCatalog();
  cat.catalog.tapes.push({ label: 'T001', state: 'open', bytes: 0, openedAt: new Date().toISOString() });
  cat.catalog.files.push({ label: 'T001', number: 1, state: 'writing', bytes: 0, startedAt: new Date().toISOString(), members: [['h/a', '0', 1, 0o644]] });
  const t = new TapeTarget('lto', new EmulatedDrive(dir, 1 << 20, 512));
  t.attachCatalog(cat);
  assert.equal(cat.catalog.files[0].state, 'unusable');
  assert.equal(cat.saves, 1);
  await assert.rejects(t.openTape('../x'), /tape label/);
  fs.mkdirSync(path.join(dir, 'T009'));
  await assert.rejects(t.openTape('T009'), /tape T009 already exists \(not in this store's catalog\): never written over/);
  rmTree(dir);
});

it('tape: a big member (streamed, past 64 MiB) whose source changes mid-write ends that tape file unusable, and the next put starts a new one; close() mid-batch leaves it unusable too', async () => {
  await initHasher();
  const { FdSource } = await import('../../dist/lib/targets/source.js');
  const { t, dir, cat } = await emulated();
  const src = tmpDir('replica-tape-src-');
  const good = Buffer.alloc(65 << 20, 7);
  const file = path.join(src, 'big');
  fs.writeFileSync(file, good);
  good[1000] = 8; // the settled content differs from what the file now holds: the copy tears
  const fd = fs.openSync(file, 'r');
  await t.put('h/small', bufferSource(Buffer.from('first')));
  await assert.rejects(t.put('h/big', new FdSource(fd, good.length, 0o644, undefined, hashBytes(good), file)), (e: unknown) => e instanceof TargetError && e.errorClass === 'changed');
  fs.closeSync(fd);
  assert.equal(cat.catalog.files[0].state, 'unusable');
  assert.match(cat.catalog.files[0].reason!, /changed while it was written \(h\/big\)/);
  const rb = await t.readBack(['h/small']);
  assert.ok(rb.get('h/small') instanceof TargetError, 'the member before it is not counted: its tape file is unusable');
  await t.put('h/small', bufferSource(Buffer.from('first')));
  assert.equal(cat.catalog.files[1].number, 2);
  await t.close();
  assert.deepEqual(cat.catalog.files.map((f) => f.state), ['unusable', 'unusable']);
  assert.match(cat.catalog.files[1].reason!, /interrupted/);
  rmTree(dir);
  rmTree(src);
});

it('tape: a big member (streamed) of a new file, with no settled hash, gets the hash of the bytes its read streamed: the catalog, the confirm and the file agree', async () => {
  await initHasher();
  const { SettledFile } = await import('../../dist/lib/targets/source.js');
  const { t, dir, cat } = await emulated();
  const src = tmpDir('replica-tape-src-');
  const data = crypto.randomBytes((64 << 20) + 4097); // past 64 MiB: streamed, not proven in memory first
  const file = path.join(src, 'new.bin');
  fs.writeFileSync(file, data);
  const st = fs.statSync(file);
  const settled = new SettledFile(file, { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, ctimeMs: st.ctimeMs }, st.mtimeMs, undefined);
  try {
    await t.put('h/new.bin', settled);
  } finally {
    settled.close();
  }
  await t.sync();
  const want = hashBytes(data);
  assert.equal(settled.hashed, want, 'the read that streamed it hashed it');
  assert.equal(cat.catalog.files[0].members[0][1], want, 'the catalog holds the hash of the bytes written');
  assert.equal((await t.readBack(['h/new.bin'])).get('h/new.bin'), want);
  assert.equal(cat.catalog.files[0].state, 'confirmed');
  rmTree(dir);
  rmTree(src);
});

it('tape drive (mt): a drive that is not there is the whole target not mounted, saying what mt said; nothing is labelled', async () => {
  const { MtDrive } = await import('../../dist/lib/targets/tapeDrive.js');
  const drive = new MtDrive('/dev/replica-no-such-drive', 512);
  const notThere = (e: unknown) => e instanceof TargetError && e.errorClass === 'not-mounted' && e.targetWide && /\[\/dev\/replica-no-such-drive\] mt (status|rewind): .*No such file or directory/.test(e.message);
  await assert.rejects(drive.check('T001'), notThere);
  await assert.rejects(drive.load('T001'), notThere);
  await assert.rejects(drive.writer('T001', 1), notThere);
  await assert.rejects((async () => { for await (const _ of drive.read('T001', 1)) { /* nothing */ } })(), notThere);
  const t = new TapeTarget('lto', drive);
  t.attachCatalog(memCatalog());
  await assert.rejects(t.openTape('T001'), notThere);
  await assert.rejects(t.check(), (e: unknown) => e instanceof TargetError && /no tape open/.test(e.message), 'nothing was opened');
});

it('tape: a tape file whose tar cannot be read back (a damaged header) fails its confirm: unusable, each path a mismatch', async () => {
  await initHasher();
  const { t, dir, cat } = await emulated();
  await t.put('h/x/a', bufferSource(crypto.randomBytes(3000)));
  await t.sync();
  const f = path.join(dir, 'T001', 'file00001.tar');
  const buf = fs.readFileSync(f);
  buf.fill(0x41, 0, 1024); // the first headers: no longer a tar
  fs.writeFileSync(f, buf);
  const rb = await t.readBack(['h/x/a']);
  assert.ok(rb.get('h/x/a') instanceof TargetError && (rb.get('h/x/a') as TargetError).errorClass === 'mismatch', String(rb.get('h/x/a')));
  assert.equal(cat.catalog.files[0].state, 'unusable');
  assert.match(cat.catalog.files[0].reason!, /^confirm failed: /);
  rmTree(dir);
});

it('tape: putMany of many small settled files lays them out as tar members in the LocalIo workers: members in order (around members put here) and byte-identical, long and unicode names too, new files hashed by that read, a changed, grown, replaced or vanished source fails alone with nothing of it on tape', async () => {
  await initHasher();
  const { SettledFile } = await import('../../dist/lib/targets/source.js');
  const { SourceError } = await import('../../dist/lib/errors.js');
  const { t, dir, cat } = await emulated();
  const src = tmpDir('replica-tape-src-');
  const n = 700; // more than LocalIo's few-files threshold and than two read batches of 256
  const datas = Array.from({ length: n }, (_, i) => crypto.randomBytes(i % 97 === 0 ? 0 : 100 + (i * 37) % 9000));
  const settled = datas.map((d, i) => {
    const file = path.join(src, `f${i}.dat`);
    fs.writeFileSync(file, d, { mode: i === 5 ? 0o600 : 0o644 });
    const st = fs.statSync(file);
    // every other file is new (no settled hash: hashed by its read), the others give theirs
    return new SettledFile(file, { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, ctimeMs: st.ctimeMs }, st.mtimeMs, i % 2 ? hashBytes(d) : undefined);
  });
  // after they settled: 10 rewritten with other bytes of the same size (same inode), 11 grown, 12 replaced, 13 removed
  fs.writeFileSync(path.join(src, 'f10.dat'), crypto.randomBytes(datas[10].length));
  fs.utimesSync(path.join(src, 'f10.dat'), new Date(settled[10].mtimeMs! ), new Date(settled[10].mtimeMs!));
  fs.appendFileSync(path.join(src, 'f11.dat'), 'more');
  fs.rmSync(path.join(src, 'f12.dat'));
  fs.writeFileSync(path.join(src, 'f12.dat'), datas[12]);
  fs.rmSync(path.join(src, 'f13.dat'));
  const bad = new Set([10, 11, 12, 13]);
  // names that need a pax header (not ASCII, longer than ustar holds) among them, and members put by this thread
  // between them (a source it reads itself): the tape keeps the items' order
  const rels = datas.map((_, i) => (i % 50 === 7 ? `h/ünïcødé ${i}/${'long-'.repeat(40)}/${'long-'.repeat(20)}f${i}.dat` : `h/f${i}.dat`));
  const here = [300, 301, 450].map((i) => ({ rel: `h/here${i}.dat`, src: bufferSource(Buffer.from(`put here ${i}`)), at: i }));
  const items: { rel: string; src: unknown }[] = settled.map((s, i) => ({ rel: rels[i], src: s }));
  for (const h of here.slice().reverse()) items.splice(h.at, 0, h);
  const res = await t.putMany(items as Parameters<TapeTarget['putMany']>[0]);
  const resOf = (i: number) => res[items.findIndex((x) => x.src === settled[i])];
  assert.ok(here.every((h) => res[items.indexOf(h)] === undefined));
  for (const i of datas.keys()) {
    const r = resOf(i);
    if (bad.has(i)) assert.ok(r instanceof SourceError, `f${i}: ${String(r)}`);
    else assert.equal(r, undefined, `f${i}: ${String(r)}`);
  }
  for (const [i, s] of settled.entries()) if (!bad.has(i) && s.hash === undefined) assert.equal(s.hashed, hashBytes(datas[i]), `f${i} hashed by its read`);
  assert.ok(settled.every((s) => !s.isOpen), 'the workers opened them, not this thread');
  await t.sync();
  const members = cat.catalog.files[0].members.map((m) => m[0]);
  assert.deepEqual(members, items.filter((x) => !bad.has(settled.indexOf(x.src as never))).map((x) => x.rel), 'in order, none of the failed ones');
  const out = tmpDir('replica-untar-');
  const tarFile = path.join(dir, 'T001', 'file00001.tar');
  execFileSync('tar', ['-xf', tarFile], { cwd: out });
  // GNU tar lists the members in the same order
  assert.deepEqual(execFileSync('tar', ['-tf', tarFile], { encoding: 'utf8' }).split('\n').filter((x) => x && !x.includes('.replica/')), members);
  for (const [i, d] of datas.entries()) if (!bad.has(i)) assert.deepEqual(fs.readFileSync(path.join(out, rels[i])), d, `f${i}`);
  for (const h of here) assert.equal(fs.readFileSync(path.join(out, h.rel), 'utf8'), `put here ${h.at}`);
  assert.equal(fs.statSync(path.join(out, 'h/f5.dat')).mode & 0o777, 0o600);
  const rb = await t.readBack(members);
  assert.equal(cat.catalog.files[0].state, 'confirmed');
  for (const [i, d] of datas.entries()) if (!bad.has(i)) assert.equal(rb.get(rels[i]), hashBytes(d), `f${i}`);
  // the offsets the confirm recorded: each member's bytes are there
  const tape = fs.readFileSync(tarFile);
  for (const m of cat.catalog.files[0].members) assert.equal(hashBytes(tape.subarray(m[4]!, m[4]! + m[2])), m[1], m[0]);
  rmTree(dir);
  rmTree(src);
  rmTree(out);
});
