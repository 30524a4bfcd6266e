import assert from 'node:assert/strict';
import fs from 'node:fs';
import crypto from 'node:crypto';
import path from 'node:path';
import { it } from 'node:test';
import { LocalTarget } from '../../dist/lib/targets/local.js';
import { localIo } from '../../dist/lib/targets/localIo.js';
import { SourceError, TargetError } from '../../dist/lib/errors.js';
import { SettledFile } from '../../dist/lib/targets/source.js';
import { hashBytes, initHasher } from '../../dist/lib/hash/xxh64.js';
import { isMountPoint } from '../../dist/lib/targets/mountinfo.js';
import { mountTmpfs, rmTree, tmpDir, srcOf } from '../helpers.js';
import { testTarget } from './conformance.js';

/** The file at `p` as it settled just now (identity from its stat); `hashed`: with its bytes' hash as the settled hash, else a new file. */
function settledNow(p: string, hashed: boolean): SettledFile {
  const st = fs.statSync(p);
  return new SettledFile(p, { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, ctimeMs: st.ctimeMs }, st.mtimeMs, hashed ? hashBytes(fs.readFileSync(p)) : undefined);
}

testTarget({
  name: 'local',
  create: async () => new LocalTarget('local', path.join(tmpDir('replica-local-'), 'base')),
  cleanup: async (t) => rmTree(path.dirname((t as LocalTarget).base)),
});

it('local target: `mount` refuses (not-mounted) until the path is a mount point, and creates nothing there', async () => {
  const dir = tmpDir();
  const mnt = path.join(dir, 'mnt');
  fs.mkdirSync(mnt);
  const t = new LocalTarget('usb', path.join(mnt, 'backup'), { mount: mnt });
  await assert.rejects(t.check(), (e: unknown) => e instanceof TargetError && e.errorClass === 'not-mounted' && e.targetWide);
  assert.deepEqual(fs.readdirSync(mnt), []);
  mountTmpfs(mnt, '4m');
  assert.equal(isMountPoint(mnt), true);
  await t.check();
  rmTree(dir);
});

it('local target: a full filesystem fails put with ENOSPC, removes the partial temp file, and check says ENOSPC', async () => {
  const dir = tmpDir();
  const mnt = path.join(dir, 'full');
  mountTmpfs(mnt, '1m');
  const src = path.join(dir, 'big');
  fs.writeFileSync(src, Buffer.alloc(3 << 20, 7));
  const t = new LocalTarget('full', mnt);
  await assert.rejects(t.put('h/big', await srcOf(src)), (e: unknown) => e instanceof TargetError && e.errorClass === 'ENOSPC' && !e.targetWide);
  assert.deepEqual(fs.readdirSync(path.join(mnt, 'h')), []);
  rmTree(dir);
});

it('local target: stale temp files from a killed run are removed the next time that directory is written', async () => {
  const base = tmpDir();
  fs.mkdirSync(path.join(base, 'h'), { recursive: true });
  fs.writeFileSync(path.join(base, 'h', '.replica-deadbeef0000.tmp'), 'partial');
  fs.writeFileSync(path.join(base, 'h', 'keep.replica.tmp'), 'not ours');
  const src = path.join(base, 'src');
  fs.writeFileSync(src, 'x');
  const t = new LocalTarget('t', base);
  await t.put('h/new', await srcOf(src));
  assert.deepEqual(fs.readdirSync(path.join(base, 'h')).sort(), ['keep.replica.tmp', 'new']);
  rmTree(base);
});

it('local target: a small file that only partly fits fails with ENOSPC; no short file under the final name', async () => {
  const dir = tmpDir();
  const mnt = path.join(dir, 'nearly-full');
  mountTmpfs(mnt, '1m');
  fs.writeFileSync(path.join(mnt, 'filler'), Buffer.alloc(700 << 10, 1));
  const src = path.join(dir, 'img.fits');
  fs.writeFileSync(src, Buffer.alloc(600 << 10, 2)); // <= 1 MiB: the read + write path
  const t = new LocalTarget('nf', mnt);
  await assert.rejects(t.put('h/img.fits', await srcOf(src)), (e: unknown) => e instanceof TargetError && e.errorClass === 'ENOSPC');
  assert.deepEqual(fs.readdirSync(path.join(mnt, 'h')), []);
  rmTree(dir);
});

it('local target: putMany answers per file; a file whose rename fails (a directory in the way) leaves no temp file, the others land', async () => {
  const dir = tmpDir();
  const base = path.join(dir, 'base');
  fs.mkdirSync(path.join(base, 'h', 'd', 'busy'), { recursive: true });
  fs.writeFileSync(path.join(base, 'h', 'd', 'busy', 'inside'), 'older copy');
  const files = ['a', 'busy', 'c'].map((n) => { const p = path.join(dir, n); fs.writeFileSync(p, `content ${n}`); return p; });
  const t = new LocalTarget('l', base);
  const res = await t.putMany(await Promise.all(files.map(async (f) => ({ rel: `h/d/${path.basename(f)}`, src: await srcOf(f) }))));
  assert.equal(res[0], undefined);
  assert.equal(res[2], undefined);
  assert.ok(res[1] instanceof TargetError && !res[1].targetWide, String(res[1]));
  assert.match(res[1].message, /busy/);
  assert.deepEqual(fs.readdirSync(path.join(base, 'h', 'd')).sort(), ['a', 'busy', 'c']);
  assert.equal(fs.readFileSync(path.join(base, 'h', 'd', 'c'), 'utf8'), 'content c');
  assert.deepEqual(fs.readdirSync(path.join(base, 'h', 'd', 'busy')), ['inside']);
  rmTree(dir);
});

for (const workers of [true, false]) it(`local target: putMany of SettledFile sources, ${workers ? 'a worker ready: the worker opens each' : 'no worker ready: a few go through put() here'} as openSettled does; a file swapped for a symlink or not the settled one is not published`, async () => {
  await localIo().close();
  if (workers) {
    localIo().warm();
    while (!localIo().worth(1)) await new Promise((r) => setTimeout(r, 5));
  } else assert.equal(localIo().worth(4), false, 'no worker ready: 4 files are not worth waiting for one');
  const dir = tmpDir();
  const base = path.join(dir, 'base');
  const secret = path.join(dir, 'secret');
  fs.writeFileSync(secret, 'not for the backup');
  const make = (n: string, body: string, mode = 0o640) => { const p = path.join(dir, n); fs.writeFileSync(p, body); fs.chmodSync(p, mode); return p; };
  const good = make('good', 'good bytes', 0o751);
  const swapped = make('swapped', 'settled bytes');
  const grown = make('grown', 'settled');
  const gone = make('gone', 'here once');
  await initHasher();
  const srcs = [good, swapped, grown, gone].map((p) => settledNow(p, true));
  fs.rmSync(swapped);
  fs.symlinkSync(secret, swapped); // swapped for a link to a secret after it settled
  fs.appendFileSync(grown, ' and more'); // written again after it settled
  fs.rmSync(gone);
  const t = new LocalTarget('l', base);
  const res = await t.putMany(srcs.map((src) => ({ rel: `h/d/${path.basename(src.path)}`, src })));
  if (workers) assert.ok(srcs.every((s) => !s.isOpen), 'opened by the worker, not here');
  else assert.equal(localIo().started, 0, 'no worker started for 4 files');
  assert.equal(res[0], undefined);
  assert.equal(fs.readFileSync(path.join(base, 'h/d/good'), 'utf8'), 'good bytes');
  assert.equal(fs.statSync(path.join(base, 'h/d/good')).mode & 0o777, 0o751);
  assert.ok(Math.abs(fs.statSync(path.join(base, 'h/d/good')).mtimeMs - srcs[0].mtimeMs!) < 1, 'the settled mtime');
  for (const [k, cls] of [[1, 'changed'], [2, 'changed'], [3, 'vanished']] as const) {
    assert.ok(res[k] instanceof TargetError && res[k].errorClass === cls, `${srcs[k].path}: ${String(res[k])}`);
  }
  assert.deepEqual(fs.readdirSync(path.join(base, 'h/d')), ['good'], 'nothing else published, no temp file left');
  rmTree(dir);
});

it('SettledFile read in this thread: opened by openSettled rules, checkUnchanged() sees a change after the read, close() closes', async () => {
  const dir = tmpDir();
  const p = path.join(dir, 'f');
  fs.writeFileSync(p, 'abc');
  const st = fs.statSync(p);
  await initHasher();
  const src = new SettledFile(p, { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, ctimeMs: st.ctimeMs }, st.mtimeMs, hashBytes(Buffer.from('abc')));
  assert.equal(src.isOpen, false);
  assert.equal(src.readAll().toString(), 'abc');
  assert.equal(src.mode, st.mode & 0o777);
  src.checkUnchanged();
  fs.appendFileSync(p, 'd');
  assert.throws(() => src.checkUnchanged(), (e: unknown) => e instanceof SourceError && e.errorClass === 'changed');
  src.close();
  assert.equal(src.isOpen, false);
  const link = path.join(dir, 'l');
  fs.symlinkSync(p, link);
  const viaLink = new SettledFile(link, { size: 4, mtimeMs: 0 }, undefined, undefined);
  assert.throws(() => viaLink.readAll(), (e: unknown) => e instanceof SourceError && e.errorClass === 'changed');
  rmTree(dir);
});

// the kernel's copy where the target's file system writes every byte anew (here a tmpfs), and through the
// worker's buffers (REPLICA_KERNEL_COPY=0, as on XFS or btrfs, where the kernel might clone the source's blocks)
for (const kernel of [true, false]) it(`local target: a big file (64 MiB or more) is put by a LocalIo worker (${kernel ? 'copied by the kernel' : 'copied through its buffers'}), opened here or not, with no settled hash too; one that grew or changed after it settled is not published`, async () => {
  if (!kernel) process.env.REPLICA_KERNEL_COPY = '0'; // read by each worker as it starts
  await localIo().close();
  const dir = tmpDir();
  const base = path.join(dir, 'base');
  if (kernel) mountTmpfs(base, '512m');
  await initHasher();
  const big = (n: string, fill: number) => { const p = path.join(dir, n); fs.writeFileSync(p, Buffer.alloc((65 << 20) + 12_345, fill)); fs.chmodSync(p, 0o604); return p; };
  const t = new LocalTarget('l', base);
  // opened here first, as the copier does: the worker reads it through the descriptor
  const a = settledNow(big('a', 1), true);
  a.open();
  assert.equal(localIo().started, 0);
  await t.put('h/a', a);
  assert.ok(localIo().started > 0, 'a worker did the copy');
  a.checkUnchanged();
  a.close();
  assert.ok(fs.readFileSync(path.join(base, 'h/a')).equals(fs.readFileSync(a.path)));
  assert.equal(fs.statSync(path.join(base, 'h/a')).mode & 0o777, 0o604);
  assert.ok(Math.abs(fs.statSync(path.join(base, 'h/a')).mtimeMs - a.mtimeMs!) < 0.001, 'the settled mtime, to the microsecond');
  // not opened here, no settled hash (hashed by its first copy): the worker opens it and says its hash
  const b = settledNow(big('b', 2), false);
  const [errB] = await t.putMany([{ rel: 'h/b', src: b }]);
  assert.equal(errB, undefined);
  assert.equal(b.isOpen, false);
  assert.equal(b.hashed, hashBytes(fs.readFileSync(b.path)));
  // grew after it settled; one byte changed in the middle (same size): neither is published, no temp left
  const grown = settledNow(big('grown', 3), true);
  fs.appendFileSync(grown.path, 'more');
  const flipped = settledNow(big('flipped', 4), true);
  flipped.open(); // opened here, then written to: the worker reads the new bytes through the descriptor
  const fd = fs.openSync(flipped.path, 'r+');
  fs.writeSync(fd, Buffer.from([9]), 0, 1, 40 << 20);
  fs.closeSync(fd);
  const res = await t.putMany([{ rel: 'h/grown', src: grown }, { rel: 'h/flipped', src: flipped }]);
  flipped.close();
  for (const e of res) assert.ok(e instanceof TargetError && e.errorClass === 'changed', String(e));
  assert.deepEqual(fs.readdirSync(path.join(base, 'h')).sort(), ['a', 'b'], 'nothing else published, no temp file left');
  delete process.env.REPLICA_KERNEL_COPY;
  await localIo().close();
  rmTree(dir);
});

it('local target: a big file copied by the kernel onto a file system that fills (tmpfs) fails with ENOSPC and leaves no temp file; the next put works', async () => {
  await localIo().close();
  const dir = tmpDir();
  const mnt = path.join(dir, 'full');
  mountTmpfs(mnt, '16m');
  await initHasher();
  const src = path.join(dir, 'big');
  fs.writeFileSync(src, crypto.randomBytes((65 << 20) + 5));
  const big = settledNow(src, false);
  const t = new LocalTarget('full', mnt);
  const [err] = await t.putMany([{ rel: 'h/big', src: big }]);
  assert.ok(err instanceof TargetError && err.errorClass === 'ENOSPC', String(err));
  assert.deepEqual(fs.readdirSync(path.join(mnt, 'h')), [], 'no temp file left');
  const small = path.join(dir, 'small');
  fs.writeFileSync(small, 'fits');
  await t.put('h/small', await srcOf(small));
  assert.equal(fs.readFileSync(path.join(mnt, 'h/small'), 'utf8'), 'fits');
  rmTree(dir);
});

it('local target: a big put stops when its signal aborts mid-copy (the worker is replaced): nothing published, the next put works', async () => {
  const dir = tmpDir();
  const base = path.join(dir, 'base');
  await initHasher();
  const p = path.join(dir, 'huge');
  fs.writeFileSync(p, crypto.randomBytes(256 << 20));
  const src = settledNow(p, true);
  const t = new LocalTarget('l', base);
  const ac = new AbortController();
  const put = t.put('h/huge', src, { signal: ac.signal });
  // abort once the copy is under way: its temp file exists
  const temps = () => (fs.existsSync(path.join(base, 'h')) ? fs.readdirSync(path.join(base, 'h')) : []);
  while (!temps().length) await new Promise((r) => setTimeout(r, 1));
  ac.abort(new Error('stopping'));
  await assert.rejects(put, /stopping/);
  assert.equal(fs.existsSync(path.join(base, 'h/huge')), false, 'not published');
  await t.put('h/again', src);
  assert.ok(fs.readFileSync(path.join(base, 'h/again')).equals(fs.readFileSync(p)));
  rmTree(dir);
});
