import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { describe, it } from 'node:test';
import { execFileSync } from 'node:child_process';
import { CLI, age, cli, json, mountTmpfs, onTarget, rmTree, tmpDir, writeConfig } from '../helpers.js';

describe('replica restore', () => {
  it('an argument that cannot be a directory (a path through a file) is a plain "nothing matches" (exit 2), not a crash; a directory restores all under it', async () => {
    const dir = tmpDir();
    const src = path.join(dir, 'src');
    fs.mkdirSync(path.join(src, 'd'), { recursive: true });
    const f = path.join(src, 'd', 'f.dat');
    fs.writeFileSync(f, 'content');
    age(f);
    const cfg = writeConfig(dir, { host: 'h', sources: [src], targets: [{ name: 'a', url: 'ta' }] });
    assert.equal((await cli(['run', '--config', cfg])).code, 0);
    const through = await cli(['restore', '--to', path.join(dir, 'out'), `${f}/x`, '--config', cfg]);
    assert.equal(through.code, 2, through.stderr);
    assert.match(through.stderr, /nothing the store knows matches/);
    assert.doesNotMatch(through.stderr, /ENOTDIR|\n\s+at /);
    const all = await cli(['restore', '--to', path.join(dir, 'out'), path.join(src, 'd'), '--config', cfg]);
    assert.equal(all.code, 0, all.stderr);
    assert.equal(fs.readFileSync(path.join(dir, 'out', f), 'utf8'), 'content');
    rmTree(dir);
  });

  it('in place (source gone) and --to DIR: byte-identical, with the recorded mtime and the mode; a corrupt copy on one target is served by the next; --from that target fails with nothing written', async () => {
    const dir = tmpDir();
    const src = path.join(dir, 'src');
    fs.mkdirSync(path.join(src, 'cam'), { recursive: true });
    const big = path.join(src, 'cam', 'img 1.fits');
    const small = path.join(src, 'run.log');
    const bigData = crypto.randomBytes(3 << 20);
    fs.writeFileSync(big, bigData, { mode: 0o640 });
    fs.chmodSync(big, 0o640);
    fs.writeFileSync(small, 'log line\n');
    age(big, 7200); age(small, 3600);
    const mtime = fs.statSync(big).mtimeMs;
    const cfg = writeConfig(dir, { host: 'h', sources: [src], targets: [{ name: 'a', url: 'ta' }, { name: 'b', url: 'tb' }] });
    assert.equal((await cli(['run', '--config', cfg])).code, 0);

    // in place: only where the source is missing, unless --force
    const skipped = await cli(['restore', big, '--config', cfg]);
    assert.equal(skipped.code, 1);
    assert.match(skipped.stdout, /NOT restored .*the source exists/);
    fs.rmSync(path.join(src, 'cam'), { recursive: true });
    const r1 = await cli(['restore', '--json', 'img 1.fits', '--config', cfg]);
    assert.equal(r1.code, 0, r1.stderr);
    assert.deepEqual(json(r1).map((x: { from: string }) => x.from), ['a']);
    assert.deepEqual(fs.readFileSync(big), bigData);
    assert.equal(Math.round(fs.statSync(big).mtimeMs), Math.round(mtime));
    assert.equal(fs.statSync(big).mode & 0o777, 0o640);

    // a flipped byte on target a: the restore still gives the right bytes, from b, and says so
    const onA = onTarget(path.join(dir, 'ta'), 'h', src, 'cam/img 1.fits');
    const bad = fs.readFileSync(onA);
    bad[12345] ^= 0xff;
    fs.writeFileSync(onA, bad);
    const out = path.join(dir, 'out');
    const r2 = await cli(['restore', '--json', '--to', out, src, '--config', cfg]);
    assert.equal(r2.code, 0, r2.stderr);
    const res = json(r2) as { path: string; from: string; errors: string[] }[];
    assert.deepEqual(res.map((x) => [x.path, x.from]), [[big, 'b'], [small, 'a']]);
    assert.match(res[0].errors[0], /^a: .*reads back as [0-9a-f]{16}, expected /);
    assert.deepEqual(fs.readFileSync(path.join(out, big)), bigData);
    assert.equal(fs.readFileSync(path.join(out, small), 'utf8'), 'log line\n');

    // --from the corrupt target only: exit 1, nothing written, no temp file left
    const out2 = path.join(dir, 'out2');
    const r3 = await cli(['restore', '--from', 'a', '--to', out2, big, '--config', cfg]);
    assert.equal(r3.code, 1);
    assert.match(r3.stdout, /NOT restored/);
    assert.deepEqual(fs.readdirSync(path.join(out2, path.dirname(big))), [], 'nothing half-written');
    assert.equal((await cli(['restore', 'no-such-name', '--config', cfg])).code, 2);
    assert.equal((await cli(['restore', '--from', 'zz', big, '--config', cfg])).code, 2);
    rmTree(dir);
  });
});

describe('replica restore: the destination side', () => {
  it('never follows a symlink planted below the source root, refuses a file where a directory must be, and says so per file (exit 1, nothing written, no stack)', async () => {
    const dir = tmpDir();
    const src = path.join(dir, 'src');
    fs.mkdirSync(path.join(src, 'cam', 'night1'), { recursive: true });
    const f = path.join(src, 'cam', 'night1', 'img.fits');
    fs.writeFileSync(f, 'pixels');
    fs.writeFileSync(path.join(src, 'top.log'), 'top');
    age(f); age(path.join(src, 'top.log'));
    const cfg = writeConfig(dir, { host: 'h', sources: [src], targets: [{ name: 'a', url: 'ta' }] });
    assert.equal((await cli(['run', '--config', cfg])).code, 0);

    // someone replaces src/cam by a link to a directory of theirs (/etc, for a root restore)
    const evil = path.join(dir, 'evil');
    fs.mkdirSync(path.join(evil, 'night1'), { recursive: true });
    fs.rmSync(path.join(src, 'cam'), { recursive: true });
    fs.symlinkSync(evil, path.join(src, 'cam'));
    fs.rmSync(path.join(src, 'top.log'));
    const r = await cli(['restore', '--json', src, '--config', cfg]);
    assert.equal(r.code, 1, r.stderr);
    const res = json(r) as { path: string; ok: boolean; errors: string[] }[];
    assert.deepEqual(res.map((x) => [x.path, x.ok]), [[f, false], [path.join(src, 'top.log'), true]], 'the other file is restored');
    assert.match(res[0].errors.join(';'), /cam is a symlink: not followed/);
    assert.deepEqual(fs.readdirSync(path.join(evil, 'night1')), [], 'nothing written through the link');
    assert.equal(fs.readFileSync(path.join(src, 'top.log'), 'utf8'), 'top');

    // --to DIR with a file where a directory must be
    const out = path.join(dir, 'out');
    fs.mkdirSync(path.join(out, src), { recursive: true });
    fs.writeFileSync(path.join(out, src, 'cam'), 'a file');
    const r2 = await cli(['restore', '--to', out, 'img.fits', '--config', cfg]);
    assert.equal(r2.code, 1);
    assert.match(r2.stdout, /NOT restored .*cam exists and is not a directory/);
    assert.doesNotMatch(r2.stderr, /\n\s+at /, 'no stack trace');
    // a --to under an unwritable place: one line per file, no crash
    const r3 = await cli(['restore', '--to', path.join(dir, 'out', src, 'cam', 'below'), 'img.fits', '--config', cfg]);
    assert.equal(r3.code, 1);
    assert.match(r3.stdout, /NOT restored .*cannot write/);

    // an in-place restore of a path no configured source holds (the config changed) is refused, not guessed
    const cfg2 = writeConfig(dir, { host: 'h', sources: [path.join(dir, 'other')], targets: [{ name: 'a', url: 'ta' }] });
    fs.rmSync(path.join(src, 'cam'));
    const r4 = await cli(['restore', 'img.fits', '--config', cfg2]);
    assert.equal(r4.code, 1);
    assert.match(r4.stdout, /is not under .*restore it with --to DIR/);
    assert.equal(fs.existsSync(path.join(src, 'cam')), false);
    rmTree(dir);
  });

  it('a store key with ".." in it (a store edited by someone) never leads a restore out of its root, in place or with --to: refused, nothing made', async () => {
    const dir = tmpDir();
    const src = path.join(dir, 'src');
    fs.mkdirSync(path.join(src, 'a'), { recursive: true });
    fs.writeFileSync(path.join(src, 'a', 'f.txt'), 'data');
    age(path.join(src, 'a', 'f.txt'));
    const cfg = writeConfig(dir, { host: 'h', sources: [src], targets: [{ name: 't', url: 'tt' }] });
    assert.equal((await cli(['run', '--config', cfg])).code, 0);
    const shards = path.join(dir, '.replica', 'files');
    for (const name of fs.readdirSync(shards)) {
      const file = path.join(shards, name);
      const doc = JSON.parse(fs.readFileSync(file, 'utf8')) as { files: Record<string, unknown> };
      const rec = doc.files[path.join(src, 'a', 'f.txt')];
      if (!rec) continue;
      delete doc.files[path.join(src, 'a', 'f.txt')];
      doc.files[`${src}/a/../../escape/f.txt`] = rec; // in place: dir/escape, outside the source
      fs.writeFileSync(file, JSON.stringify(doc));
    }
    fs.rmSync(path.join(src, 'a'), { recursive: true });
    for (const to of [[], ['--to', path.join(dir, 'out')]]) {
      const r = await cli(['restore', ...to, 'f.txt', '--config', cfg]);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stdout, /NOT restored .*has a "\." or "\.\." in it: refused/);
    }
    assert.equal(fs.existsSync(path.join(dir, 'escape')), false, 'nothing made outside the source');
    assert.equal(fs.existsSync(path.join(src, 'a')), false);
    assert.equal(fs.existsSync(path.join(dir, 'out')), false, 'nothing made under --to either');
    rmTree(dir);
  });

  it('a full destination disk fails the file as the destination\'s ENOSPC (not the target\'s), leaves no temp file, and the next file still comes', async () => {
    const dir = tmpDir();
    const src = path.join(dir, 'src');
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'big.bin'), crypto.randomBytes(3 << 20));
    fs.writeFileSync(path.join(src, 'small.txt'), 'fits');
    age(path.join(src, 'big.bin')); age(path.join(src, 'small.txt'));
    const cfg = writeConfig(dir, { host: 'h', sources: [src], targets: [{ name: 'a', url: 'ta' }] });
    assert.equal((await cli(['run', '--config', cfg])).code, 0);
    const out = path.join(dir, 'full');
    mountTmpfs(out, '1m');
    try {
      const r = await cli(['restore', '--json', '--to', out, src, '--config', cfg]);
      assert.equal(r.code, 1);
      const res = json(r) as { path: string; ok: boolean; errors: string[] }[];
      assert.deepEqual(res.map((x) => [path.basename(x.path), x.ok]), [['big.bin', false], ['small.txt', true]]);
      assert.match(res[0].errors.join(';'), /^a: ENOSPC/, 'said as the write that failed');
      assert.doesNotMatch(res[0].errors.join(';'), /\[a\]/, 'not blamed on the target');
      assert.deepEqual(fs.readdirSync(path.join(out, src)).sort(), ['small.txt'], 'no temp file, no partial file');
    } finally {
      execFileSync('umount', [out]);
    }
    rmTree(dir);
  });

  it('many files from local targets (fetched in worker batches): a corrupt or missing copy on the first target is served by the next, per file; deep trees of more directories than are kept open; with and without --fsync', async () => {
    const dir = tmpDir();
    const src = path.join(dir, 'src');
    const files: string[] = [];
    for (let d = 0; d < 90; d++) { // 90 leaf directories two levels down: more than the 64 kept open
      const sub = path.join(src, `n${Math.floor(d / 10)}`, `d${d}`);
      fs.mkdirSync(sub, { recursive: true });
      for (let i = 0; i < 3; i++) {
        const f = path.join(sub, `f${i}.dat`);
        fs.writeFileSync(f, `content ${d}/${i}\n`, { mode: 0o640 });
        fs.chmodSync(f, 0o640);
        age(f, 7200 + d);
        files.push(f);
      }
    }
    const cfg = writeConfig(dir, { host: 'h', sources: [src], targets: [{ name: 'a', url: 'ta' }, { name: 'b', url: 'tb' }] });
    assert.equal((await cli(['run', '--config', cfg])).code, 0);
    const onA = (f: string) => onTarget(path.join(dir, 'ta'), 'h', src, path.relative(src, f));
    const flipped = [files[5], files[100], files[269]];
    for (const f of flipped) fs.writeFileSync(onA(f), 'not the content\n');
    fs.rmSync(onA(files[200]));
    const bad = new Set([...flipped, files[200]]);
    for (const durable of [false, true]) {
      const out = path.join(dir, durable ? 'out-fsync' : 'out');
      const r = await cli(['restore', '--json', ...(durable ? ['--fsync'] : []), '--to', out, src, '--config', cfg]);
      assert.equal(r.code, 0, r.stderr);
      const res = json(r) as { path: string; ok: boolean; from: string; errors: string[] }[];
      assert.equal(res.length, files.length);
      for (const x of res) {
        assert.equal(x.ok, true, x.path);
        assert.equal(x.from, bad.has(x.path) ? 'b' : 'a', x.path);
        if (bad.has(x.path)) assert.match(x.errors[0], x.path === files[200] ? /^a: .*(ENOENT|missing)/ : /^a: .*reads back as [0-9a-f]{16}, expected /);
        else assert.deepEqual(x.errors, []);
      }
      for (const f of files) {
        const d = path.join(out, f);
        assert.equal(fs.readFileSync(d, 'utf8'), fs.readFileSync(f, 'utf8'), d);
        assert.equal(fs.statSync(d).mode & 0o777, 0o640);
        assert.equal(Math.round(fs.statSync(d).mtimeMs), Math.round(fs.statSync(f).mtimeMs));
      }
      const left = fs.readdirSync(out, { recursive: true }).filter((x) => String(x).includes('.replica-'));
      assert.deepEqual(left, [], 'no temp file left');
    }
    // --from the damaged target only: those four are not restored (exit 1), nothing of them written; the rest are
    const out3 = path.join(dir, 'out3');
    const r3 = await cli(['restore', '--json', '--from', 'a', '--to', out3, src, '--config', cfg]);
    assert.equal(r3.code, 1);
    const res3 = json(r3) as { path: string; ok: boolean }[];
    assert.deepEqual(res3.filter((x) => !x.ok).map((x) => x.path).sort(), [...bad].sort());
    for (const f of bad) assert.equal(fs.existsSync(path.join(out3, f)), false);
    assert.equal(fs.readFileSync(path.join(out3, files[0]), 'utf8'), fs.readFileSync(files[0], 'utf8'));
    rmTree(dir);
  });

  it('--fsync with many files (renamed into place by the workers): a directory standing where one file goes fails that file alone, with no temp file left', async () => {
    const dir = tmpDir();
    const src = path.join(dir, 'src');
    const files: string[] = [];
    for (let i = 0; i < 300; i++) {
      const f = path.join(src, `d${i % 3}`, `f${i}.dat`);
      fs.mkdirSync(path.dirname(f), { recursive: true });
      fs.writeFileSync(f, `content ${i}\n`);
      age(f);
      files.push(f);
    }
    const cfg = writeConfig(dir, { host: 'h', sources: [src], targets: [{ name: 'a', url: 'ta' }] });
    assert.equal((await cli(['run', '--config', cfg])).code, 0);
    const out = path.join(dir, 'out');
    const blocked = files[7];
    fs.mkdirSync(path.join(out, blocked, 'inside'), { recursive: true });
    const r = await cli(['restore', '--json', '--fsync', '--to', out, src, '--config', cfg]);
    assert.equal(r.code, 1, r.stderr);
    const res = json(r) as { path: string; ok: boolean; errors: string[] }[];
    assert.equal(res.length, files.length);
    for (const x of res) {
      if (x.path === blocked) {
        assert.equal(x.ok, false);
        assert.match(x.errors.join('; '), new RegExp(`cannot write ${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}.*f7\\.dat: .*(EISDIR|ENOTEMPTY|EEXIST)`));
      } else assert.equal(x.ok, true, `${x.path}: ${x.errors.join('; ')}`);
    }
    for (const f of files) if (f !== blocked) assert.equal(fs.readFileSync(path.join(out, f), 'utf8'), fs.readFileSync(f, 'utf8'));
    assert.ok(fs.statSync(path.join(out, blocked, 'inside')).isDirectory(), 'what stood there is left as it was');
    assert.deepEqual(fs.readdirSync(out, { recursive: true }).filter((x) => String(x).includes('.replica-')), [], 'no temp file left');
    rmTree(dir);
  });

  it('shows its progress on a TTY; restores many files in durable batches with --fsync, and at once without', async () => {
    const dir = tmpDir();
    const src = path.join(dir, 'src');
    for (let d = 0; d < 6; d++) fs.mkdirSync(path.join(src, `d${d}`), { recursive: true });
    const n = 4500; // more than one batch (4,096 files)
    for (let i = 0; i < n; i++) fs.writeFileSync(path.join(src, `d${i % 6}`, `f${i}.dat`), `content ${i}\n`);
    const cfg = writeConfig(dir, { host: 'h', sources: [src], targets: [{ name: 'a', url: 'ta' }], settle: '1s' });
    await new Promise((r) => setTimeout(r, 1200));
    assert.equal((await cli(['run', '--config', cfg])).code, 0);
    const out = path.join(dir, 'out');
    const tty = execFileSync('script', ['-qfec', `${process.execPath} ${CLI} restore --fsync --to ${out} ${src} --config ${cfg}; echo "exit=$?"`, '/dev/null'], { encoding: 'utf8', maxBuffer: 64 << 20 });
    assert.match(tty, /\r\x1b\[Krestored \d+\/4500 \(/);
    assert.match(tty, /exit=0/);
    for (let i = 0; i < n; i++) assert.equal(fs.readFileSync(path.join(out, src, `d${i % 6}`, `f${i}.dat`), 'utf8'), `content ${i}\n`);
    const left = fs.readdirSync(path.join(out, src), { recursive: true }).filter((x) => String(x).includes('.replica-'));
    assert.deepEqual(left, [], 'no temp file left');
    // into a pipe: every line arrives (process.exit right after asynchronous pipe writes dropped most of them)
    const piped = await cli(['restore', '--to', path.join(dir, 'out2'), src, '--config', cfg]);
    assert.equal(piped.code, 0);
    assert.equal(piped.stdout.split('\n').filter((l) => l.startsWith('restored ')).length, n);
    // without --fsync the files stream through the workers (at most a window of them in flight): every one whole
    for (let i = 0; i < n; i++) assert.equal(fs.readFileSync(path.join(dir, 'out2', src, `d${i % 6}`, `f${i}.dat`), 'utf8'), `content ${i}\n`);
    assert.deepEqual(fs.readdirSync(path.join(dir, 'out2', src), { recursive: true }).filter((x) => String(x).includes('.replica-')), [], 'no temp file left');
    rmTree(dir);
  });
});
