import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it, before, after } from 'node:test';
import { age, cli, json, makeTree, onTarget, rmTree, tmpDir, treeDigest, writeConfig } from '../helpers.js';

describe('replica run: a tree with hostile names lands byte-identical on two local targets', () => {
  let dir: string; let src: string; let cfg: string; let files: string[];
  before(() => {
    dir = tmpDir();
    src = path.join(dir, 'src');
    files = makeTree(src, 300, { maxBytes: 48 * 1024 });
    cfg = writeConfig(dir, { host: 'h1', sources: [src], targets: [{ name: 'a', url: 'ta' }, { name: 'b', url: path.join(dir, 'tb') }], settle: '300ms' });
  });
  after(() => rmTree(dir));

  it('first run copies and verifies everything; trees are identical', async () => {
    const r = await cli(['run', '--json', '--config', cfg]);
    assert.equal(r.code, 0, r.stderr);
    const out = json(r);
    assert.equal(out.ok, true);
    assert.equal(out.counts.scanned, 300);
    assert.equal(out.counts.verified, 600);
    const expected = treeDigest(src);
    assert.equal(expected.size, 300);
    assert.deepEqual(treeDigest(onTarget(path.join(dir, 'ta'), 'h1', src)), expected);
    assert.deepEqual(treeDigest(onTarget(path.join(dir, 'tb'), 'h1', src)), expected);
  });

  it('status says every file verified on both targets', async () => {
    const s = json(await cli(['status', '--json', '--config', cfg]));
    assert.equal(s.host, 'h1');
    for (const t of s.targets) {
      assert.equal(t.verified.files, 300, t.name);
      assert.equal(t.pending.files + t.failed.files, 0);
    }
    assert.equal(s.lastRun.ok, true);
  });

  it('a second run copies nothing and exits 0, and ships no shard again (only meta.json)', async () => {
    const shards = (t: string) => fs.readdirSync(path.join(dir, t, '.replica', 'h1', 'files')).map((f) => fs.statSync(path.join(dir, t, '.replica', 'h1', 'files', f)).ino).join();
    const before = [shards('ta'), shards('tb')];
    const r = await cli(['run', '--json', '--config', cfg]);
    assert.deepEqual([shards('ta'), shards('tb')], before, 'the same inodes: not written again');
    assert.equal(r.code, 0);
    const out = json(r);
    assert.equal(out.counts.copied, 0);
    assert.equal(out.counts.hashed, 0);
  });

  it('the store snapshot is shipped to <base>/.replica/<host>/ on every target', () => {
    for (const t of ['ta', 'tb']) {
      const meta = JSON.parse(fs.readFileSync(path.join(dir, t, '.replica', 'h1', 'meta.json'), 'utf8'));
      assert.equal(meta.host, 'h1');
      assert.deepEqual(fs.readdirSync(path.join(dir, t, '.replica', 'h1', 'files')), ['00-of-1.json'], 'a small store is one shard');
    }
  });

  it('a same-size edit is re-copied; a deletion is recorded and never propagated', async () => {
    const [victim, gone] = [files[20], files[21]];
    const data = fs.readFileSync(victim);
    const edited = Buffer.from(data.map((b) => b ^ 0x55));
    fs.writeFileSync(victim, edited);
    fs.rmSync(gone);
    const r = await cli(['run', '--json', '--config', cfg]);
    assert.equal(r.code, 0, r.stderr);
    const out = json(r);
    assert.equal(out.counts.deleted, 1);
    const rel = path.relative(src, victim);
    assert.deepEqual(fs.readFileSync(onTarget(path.join(dir, 'ta'), 'h1', src, rel)), edited);
    assert.deepEqual(fs.readFileSync(onTarget(path.join(dir, 'tb'), 'h1', src, rel)), edited);
    assert.ok(fs.existsSync(onTarget(path.join(dir, 'ta'), 'h1', src, path.relative(src, gone))), 'deletion must not propagate');
  });

  it('symlinks are recreated with the same link text; FIFOs are skipped and counted', async () => {
    fs.symlinkSync('../d1/no such target', path.join(src, 'd0', 'link'));
    fs.mkdirSync(path.join(src, 'pipes'));
    fs.linkSync(files[30], path.join(src, 'd0', 'hardlink'));
    const { execFileSync } = await import('node:child_process');
    execFileSync('mkfifo', [path.join(src, 'pipes', 'fifo')]);
    const r = await cli(['run', '--json', '--config', cfg]);
    assert.equal(r.code, 0, r.stderr);
    const out = json(r);
    assert.equal(out.counts.skipped, 1);
    assert.equal(fs.readlinkSync(onTarget(path.join(dir, 'tb'), 'h1', src, 'd0/link')), '../d1/no such target');
    assert.equal(fs.existsSync(onTarget(path.join(dir, 'tb'), 'h1', src, 'pipes/fifo')), false);
    const hl = fs.statSync(onTarget(path.join(dir, 'tb'), 'h1', src, 'd0/hardlink'));
    assert.notEqual(hl.ino, fs.statSync(onTarget(path.join(dir, 'tb'), 'h1', src, path.relative(src, files[30]))).ino, 'hard links are copied as separate files');
    assert.equal(hl.nlink, 1);
    const s = json(await cli(['status', '--json', '--config', cfg]));
    assert.equal(s.skipped, 1);
  });

  it('a name that is not valid UTF-8 is skipped and reported (exit 1); every other file is still copied', async () => {
    const bad = Buffer.concat([Buffer.from(path.join(src, 'bad-')), Buffer.from([0xff, 0xfe]), Buffer.from('.dat')]);
    fs.writeFileSync(bad, 'x');
    fs.writeFileSync(path.join(src, 'fresh.dat'), 'fresh');
    age(path.join(src, 'fresh.dat'));
    const r = await cli(['run', '--json', '--config', cfg]);
    assert.equal(r.code, 1);
    const out = json(r);
    assert.equal(out.counts.unsupportedNames, 1);
    assert.match(r.stderr, /unsupported file name/);
    assert.equal(fs.readFileSync(onTarget(path.join(dir, 'ta'), 'h1', src, 'fresh.dat'), 'utf8'), 'fresh');
    fs.rmSync(bad);
  });

  it('--dry-run reports what would be copied and writes nothing', async () => {
    fs.writeFileSync(path.join(src, 'dry.dat'), 'dry');
    age(path.join(src, 'dry.dat'));
    const r = await cli(['run', '--dry-run', '--config', cfg]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /would copy .*dry\.dat -> a, b/);
    assert.equal(fs.existsSync(onTarget(path.join(dir, 'ta'), 'h1', src, 'dry.dat')), false);
    const r2 = await cli(['run', '--target', 'b', '--json', '--config', cfg]);
    assert.equal(r2.code, 0);
    assert.equal(fs.existsSync(onTarget(path.join(dir, 'tb'), 'h1', src, 'dry.dat')), true);
    assert.equal(fs.existsSync(onTarget(path.join(dir, 'ta'), 'h1', src, 'dry.dat')), false);
  });
});

describe('replica run with a big store: the sources are walked in a worker while the store loads', () => {
  it('a change, a deletion and a new file are found as a walk in the main thread finds them', async () => {
    const dir = tmpDir();
    try {
      const src = path.join(dir, 'src');
      for (let d = 0; d < 70; d++) {
        fs.mkdirSync(path.join(src, `d${d}`), { recursive: true });
        for (let i = 0; i < 100; i++) {
          const f = path.join(src, `d${d}`, `file-${i}.dat`);
          fs.writeFileSync(f, `${d}/${i}`);
          age(f);
        }
      }
      const cfg = writeConfig(dir, { host: 'h', store: path.join(dir, 'store'), sources: [src], targets: [{ name: 'a', url: path.join(dir, 'ta') }], settle: '300ms', log: { level: 'debug' } });
      const first = await cli(['run', '--json', '--config', cfg]);
      assert.equal(first.code, 0, first.stderr);
      assert.equal(json(first).counts.verified, 7000);
      assert.doesNotMatch(first.stderr, /walked in a worker/, 'a new store: nothing to load meanwhile');
      const storeBytes = fs.readdirSync(path.join(dir, 'store', 'files')).reduce((n, f) => n + fs.statSync(path.join(dir, 'store', 'files', f)).size, 0);
      assert.ok(storeBytes >= 1 << 20, `${storeBytes} bytes of records: enough for the walk in a worker`);
      const edited = path.join(src, 'd5', 'file-5.dat');
      fs.writeFileSync(edited, 'edited, and longer');
      age(edited);
      fs.rmSync(path.join(src, 'd6', 'file-6.dat'));
      const added = path.join(src, 'd7', 'new.dat');
      fs.writeFileSync(added, 'new');
      age(added);
      const second = await cli(['run', '--json', '--config', cfg]);
      assert.equal(second.code, 0, second.stderr);
      assert.match(second.stderr, /walked in a worker/);
      assert.doesNotMatch(second.stderr, /walk worker failed/, 'the worker of the bundle ran');
      const c = json(second).counts;
      assert.deepEqual([c.scanned, c.copied, c.deleted], [7000, 2, 1]);
      for (const f of [edited, added]) assert.equal(fs.readFileSync(onTarget(path.join(dir, 'ta'), 'h', src, path.relative(src, f)), 'utf8'), fs.readFileSync(f, 'utf8'));
    } finally {
      rmTree(dir);
    }
  });
});
