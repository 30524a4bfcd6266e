import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, it } from 'node:test';
import { LocalIo } from '../../dist/lib/targets/localIo.js';
import { hashBytes, initHasher } from '../../dist/lib/hash/xxh64.js';
import { TargetError } from '../../dist/lib/errors.js';
import { blockingMount, rmTree, tmpDir } from '../helpers.js';

const dir = tmpDir('localio');
after(() => rmTree(dir));

/** Copies of every shape a hash job meets: big ones (read ahead when cold), one bigger than a read buffer, small ones, and what is not a regular file. */
function copies(): { files: string[]; want: Map<string, string> } {
  const want = new Map<string, string>();
  const files: string[] = [];
  const add = (name: string, size: number) => {
    const f = path.join(dir, name);
    const data = crypto.randomBytes(size);
    fs.writeFileSync(f, data);
    want.set(f, hashBytes(data));
    files.push(f);
  };
  for (let i = 0; i < 6; i++) add(`big${i}`, (1 << 20) + i);
  add('huge', (5 << 20) + 3); // past one 4 MiB chunk: hashed on from the first chunk
  add('mid', 300 << 10);
  add('small', 4096);
  add('empty', 0);
  fs.symlinkSync(path.join(dir, 'big0'), path.join(dir, 'link'));
  execFileSync('mkfifo', [path.join(dir, 'fifo')]);
  fs.mkdirSync(path.join(dir, 'sub'));
  // not regular files, or gone: left out, between the others so the read-ahead window spans them
  files.splice(2, 0, path.join(dir, 'link'), path.join(dir, 'fifo'));
  files.splice(7, 0, path.join(dir, 'missing'), path.join(dir, 'sub'));
  add('big-last', (1 << 20) + 77);
  return { files, want };
}

for (const [label, ahead] of [['synchronous reads', undefined], ['read ahead from the first copy (REPLICA_READ_AHEAD=1)', '1']] as const) {
  it(`hashMany: ${label}: every regular file hashed right, the rest left out`, async () => {
    await initHasher();
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true });
    const { files, want } = copies();
    if (ahead) process.env.REPLICA_READ_AHEAD = ahead; // read by each worker as it starts
    const io = new LocalIo(2);
    try {
      const got = await io.hashMany('t', files, 10_000);
      assert.deepEqual(new Map([...got].sort()), new Map([...want].sort()));
      // a flipped byte in a big copy is seen on the next job
      const f = path.join(dir, 'big3');
      const b = fs.readFileSync(f);
      b[1000] ^= 1;
      fs.writeFileSync(f, b);
      const again = await io.hashMany('t', files, 10_000);
      assert.equal(again.get(f), hashBytes(b));
      assert.notEqual(again.get(f), want.get(f));
    } finally {
      delete process.env.REPLICA_READ_AHEAD;
      await io.close();
    }
  });
}

it('hashMany reading ahead on a disk whose reads fail (EIO): those copies are left out, the others hashed; the reads asked ahead never end the worker', async () => {
  await initHasher();
  const d = tmpDir('localio-eio-');
  const fuse = await blockingMount(d);
  process.env.REPLICA_READ_AHEAD = '1'; // read ahead from the first copy, as on a cold disk
  const io = new LocalIo(2);
  try {
    // written to the backing directory: nothing of them is in the mount's page cache, every read asks the daemon
    const bad = Array.from({ length: 8 }, (_, i) => {
      fs.writeFileSync(path.join(d, 'backing', `bad${i}`), crypto.randomBytes((1 << 20) + i));
      return path.join(fuse.mnt, `bad${i}`);
    });
    const good = path.join(d, 'good');
    const data = crypto.randomBytes(300 << 10);
    fs.writeFileSync(good, data);
    fuse.eioFrom(0);
    const got = await io.hashMany('t', [...bad, good], 10_000);
    assert.deepEqual([...got], [[good, hashBytes(data)]]);
    // the same workers go on: nothing was lost with them
    assert.deepEqual([...(await io.hashMany('t', [good], 10_000))], [[good, hashBytes(data)]]);
  } finally {
    delete process.env.REPLICA_READ_AHEAD;
    await io.close();
    await fuse.stop();
    rmTree(d);
  }
});

it('warm() starts every worker before the first job, and the local kind warms them only for a pass with many files', async () => {
  const io = new LocalIo(2);
  try {
    assert.equal(io.started, 0);
    // before a worker is ready a batch of up to 64 files is not worth waiting for one, a bigger one is, and so
    // is one of 64 MiB or more (a big file is copied with its read, write and hash overlapped)
    assert.deepEqual([io.worth(1), io.worth(64), io.worth(65)], [false, false, true]);
    assert.deepEqual([io.worth(1, (64 << 20) - 1), io.worth(1, 64 << 20)], [false, true]);
    io.warm();
    assert.equal(io.started, 2);
    io.warm(); // none started twice
    assert.equal(io.started, 2);
    while (!io.worth(1)) await new Promise((r) => setTimeout(r, 5)); // ready: its first message came
    await io.close();
    assert.deepEqual([io.started, io.worth(1)], [0, false], 'close() ends every worker; a later job starts new ones');
    io.warm();
    const f = path.join(dir, 'warm');
    fs.writeFileSync(f, 'warm');
    await initHasher();
    assert.deepEqual([...(await io.hashMany('t', [f], 10_000))], [[f, hashBytes(Buffer.from('warm'))]]);
  } finally {
    await io.close();
  }
  const { localKind } = await import('../../dist/lib/targets/local.js');
  const { localIo } = await import('../../dist/lib/targets/localIo.js');
  const before = localIo().started;
  localKind.warm!(10);
  assert.equal(localIo().started, before, 'a pass of 10 files starts no worker');
  localKind.warm!(10_000);
  assert.equal(localIo().started, localIo().size);
});

it('a read job goes to a started worker left idle instead of starting another; two at once still get one each', async () => {
  await initHasher();
  const f = path.join(dir, 'idle');
  fs.writeFileSync(f, 'idle');
  const want = [[f, hashBytes(Buffer.from('idle'))]];
  const io = new LocalIo(2);
  try {
    // the first job starts one worker; the next ones, one at a time, find it idle (the read-back after a copy)
    for (let k = 0; k < 3; k++) {
      assert.deepEqual([...(await io.hashMany('t', [f], 10_000))], want);
      assert.equal(io.started, 1, `job ${k + 1}: no second worker started while the first was idle`);
    }
    // two shares at once: the idle worker takes one, the other is worth a worker of its own
    const many = Array.from({ length: 40 }, () => f);
    await io.hashMany('t', many, 10_000);
    assert.equal(io.started, 2);
  } finally {
    await io.close();
  }
});

it('fetch: the copy lands with its own mode, also one the umask would strip (0o666, 0o604), and the given mtime; a copy that hashes wrong leaves nothing', async () => {
  await initHasher();
  const io = new LocalIo(2);
  const src = path.join(dir, 'fsrc');
  const out = path.join(dir, 'fout');
  fs.mkdirSync(src, { recursive: true });
  fs.mkdirSync(out, { recursive: true });
  try {
    for (const [i, mode] of [0o666, 0o604, 0o640, 0o400].entries()) {
      // written whole once proven; written as it is read (a whole chunk and nothing after it; chunks and a tail)
      for (const size of [4096, 4 << 20, (8 << 20) + 5]) {
        const name = `m${i}-${size}`;
        const data = crypto.randomBytes(size);
        fs.writeFileSync(path.join(src, name), data);
        fs.chmodSync(path.join(src, name), mode);
        const r = await io.fetch('t', { src: path.join(src, name), dir: out, temp: `.tmp-${name}`, final: name, hash: hashBytes(data), mtimeMs: 1_600_000_000_000 }, 10_000);
        assert.equal(r.bytes, size);
        const st = fs.statSync(path.join(out, name));
        assert.equal(st.mode & 0o777, mode, `${name}: mode ${(st.mode & 0o777).toString(8)}`);
        assert.equal(st.mtimeMs, 1_600_000_000_000);
        assert.deepEqual(fs.readFileSync(path.join(out, name)), data);
      }
    }
    fs.writeFileSync(path.join(src, 'bad'), crypto.randomBytes((9 << 20) + 9));
    await assert.rejects(io.fetch('t', { src: path.join(src, 'bad'), dir: out, temp: '.tmp-bad', final: 'bad', hash: '0123456789abcdef' }, 10_000), /reads back as/);
    assert.deepEqual(fs.readdirSync(out).filter((n) => n.includes('bad')), [], 'no temp file, nothing published');
  } finally {
    await io.close();
  }
});

it('fetchMany: one job, one result per copy: fetched, mismatch (nothing left), missing, not a regular file, an unwritable destination', async () => {
  const io = new LocalIo(1);
  const src = path.join(dir, 'msrc');
  const out = path.join(dir, 'mout');
  fs.mkdirSync(src, { recursive: true });
  fs.mkdirSync(out, { recursive: true });
  try {
    const good = crypto.randomBytes(5000);
    fs.writeFileSync(path.join(src, 'good'), good);
    fs.writeFileSync(path.join(src, 'flipped'), 'other bytes');
    fs.mkdirSync(path.join(src, 'adir'));
    const item = (name: string, hash: string, to = out) => ({ src: path.join(src, name), dir: to, temp: `.tmp-${name}`, final: name, hash });
    const rs = await io.fetchMany('t', [item('good', hashBytes(good)), item('flipped', hashBytes(good)), item('gone', hashBytes(good)), item('adir', hashBytes(good)),
      item('good', hashBytes(good), path.join(dir, 'no-such-dir'))], 10_000);
    assert.equal(rs.length, 5);
    assert.deepEqual(rs[0], { bytes: 5000 });
    assert.ok(fs.readFileSync(path.join(out, 'good')).equals(good));
    const err = (k: number) => (rs[k] as { err: Error }).err;
    assert.ok(err(1) instanceof TargetError && (err(1) as TargetError).errorClass === 'mismatch' && /reads back as/.test(err(1).message));
    assert.ok(err(2) instanceof TargetError && (err(2) as TargetError).errorClass === 'missing', err(2).message);
    assert.match(err(3).message, /not a regular file/);
    assert.ok(!(err(4) instanceof TargetError), 'a destination that cannot be written is not the target\'s fault');
    assert.match(err(4).message, /ENOENT/);
    assert.deepEqual(fs.readdirSync(out).sort(), ['good'], 'no temp file, nothing else published');
  } finally {
    await io.close();
  }
});

it('fetch: big copies fetched at once by one worker (each awaits its reads and writes) keep their own bytes', async () => {
  const io = new LocalIo(1);
  const src = path.join(dir, 'psrc');
  const out = path.join(dir, 'pout');
  fs.mkdirSync(src, { recursive: true });
  fs.mkdirSync(out, { recursive: true });
  try {
    const datas = [0, 1, 2, 3].map((i) => crypto.randomBytes((12 << 20) + i * 4099));
    datas.forEach((d, i) => fs.writeFileSync(path.join(src, `p${i}`), d));
    // posted in turn, each in its own message, so the worker takes the next while the first awaits its I/O
    const rs = [];
    for (const [i, d] of datas.entries()) {
      rs.push(io.fetch('t', { src: path.join(src, `p${i}`), dir: out, temp: `.tmp-p${i}`, final: `p${i}`, hash: hashBytes(d) }, 10_000));
      await new Promise((r) => setImmediate(r));
    }
    assert.deepEqual((await Promise.all(rs)).map((r) => r.bytes), datas.map((d) => d.length));
    datas.forEach((d, i) => assert.ok(fs.readFileSync(path.join(out, `p${i}`)).equals(d), `p${i} byte-identical`));
  } finally {
    await io.close();
  }
});

it('renameMany: each temp renamed over its final name through a directory descriptor; one that cannot be says its errno, the others go on; a hung disk fails the job by its deadline', async () => {
  const io = new LocalIo(1);
  const out = path.join(dir, 'rout');
  fs.mkdirSync(path.join(out, 'busy', 'inside'), { recursive: true });
  for (const n of ['a', 'b', 'c']) fs.writeFileSync(path.join(out, `.tmp-${n}`), `new ${n}`);
  fs.writeFileSync(path.join(out, 'b'), 'old b');
  fs.writeFileSync(path.join(out, '.tmp-busy'), 'cannot go');
  const fd = fs.openSync(out, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  try {
    const d = `/proc/self/fd/${fd}`;
    const errs = await io.renameMany('restore', [
      { dir: d, temp: '.tmp-a', final: 'a' }, { dir: d, temp: '.tmp-b', final: 'b' }, { dir: d, temp: '.tmp-gone', final: 'gone' },
      { dir: d, temp: '.tmp-busy', final: 'busy' }, { dir: d, temp: '.tmp-c', final: 'c' },
    ], 10_000);
    assert.deepEqual(errs.map((e) => (e ? (e as NodeJS.ErrnoException).code : undefined)), [undefined, undefined, 'ENOENT', 'EISDIR', undefined]);
    for (const n of ['a', 'b', 'c']) assert.equal(fs.readFileSync(path.join(out, n), 'utf8'), `new ${n}`, n);
    assert.ok(fs.statSync(path.join(out, 'busy', 'inside')).isDirectory(), 'what stood there is left as it was');
  } finally {
    fs.closeSync(fd);
    await io.close();
  }
  // a hung disk (its renames never answer): the job fails by its deadline, with class timeout, and the next
  // job gets a new worker
  const d = tmpDir('localio-rename-');
  const fuse = await blockingMount(d);
  const io2 = new LocalIo(1);
  try {
    fs.writeFileSync(path.join(fuse.mnt, '.tmp-x'), 'x');
    fuse.block();
    await assert.rejects(io2.renameMany('restore', [{ dir: fuse.mnt, temp: '.tmp-x', final: 'x' }], 500), (e: unknown) => e instanceof TargetError && e.errorClass === 'timeout');
    fuse.unblock();
    fs.writeFileSync(path.join(out, '.tmp-d'), 'new d');
    assert.deepEqual(await io2.renameMany('restore', [{ dir: out, temp: '.tmp-d', final: 'd' }], 10_000), [undefined]);
    assert.equal(fs.readFileSync(path.join(out, 'd'), 'utf8'), 'new d');
  } finally {
    fuse.unblock();
    await io2.close();
    await fuse.stop();
    rmTree(d);
  }
});

it('packMany lays files out as tar-stream\'s pack() would; a buffer given back (recycle) is moved to the worker and filled again by the next pack, with no byte of its old content left', async () => {
  await initHasher();
  const { loadTar } = await import('../../dist/lib/targets/tarLib.js');
  const { Writable } = await import('node:stream');
  const { pipeline } = await import('node:stream/promises');
  const items = (n: number, size: number, tag: string) => Array.from({ length: n }, (_, i) => {
    const file = path.join(dir, `pack-${tag}-${i}`);
    fs.writeFileSync(file, crypto.randomBytes(size + i));
    const st = fs.statSync(file);
    return { label: file, size: st.size, path: file, identity: { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, ctimeMs: st.ctimeMs }, name: `h/${tag}/${i}.dat`, mtimeMs: st.mtimeMs };
  });
  /** tar-stream's pack() of the same members, without its two end-of-archive blocks */
  const packed = async (xs: ReturnType<typeof items>) => {
    const pack = (await loadTar()).pack();
    const chunks: Buffer[] = [];
    const done = pipeline(pack, new Writable({ write(c: Buffer, _e, cb) { chunks.push(c); cb(); } }));
    for (const x of xs) pack.entry({ name: x.name, size: x.size, mode: fs.statSync(x.path).mode & 0o777, mtime: new Date(x.mtimeMs), type: 'file' }, fs.readFileSync(x.path));
    pack.finalize();
    await done;
    const all = Buffer.concat(chunks);
    return all.subarray(0, all.length - 1024);
  };
  const io = new LocalIo(1);
  try {
    const big = items(20, 3000, 'big');
    const first = await io.packMany('t', big, 10_000);
    assert.deepEqual(first.tar, await packed(big));
    assert.ok(first.reads.every((r) => 'hash' in r));
    const size = first.tar.buffer.byteLength;
    io.recycle(first.tar);
    assert.equal(first.tar.buffer.byteLength, 0, 'moved to the worker, not copied');
    const small = items(5, 100, 'small'); // its padding lies where the first batch's bytes were
    const second = await io.packMany('t', small, 10_000);
    assert.equal(second.tar.buffer.byteLength, size, 'the buffer given back');
    assert.deepEqual(second.tar, await packed(small));
    assert.deepEqual(second.reads.map((r) => ('hash' in r ? r.hash : r.err.message)), small.map((x) => hashBytes(fs.readFileSync(x.path))));
  } finally {
    await io.close();
  }
});
