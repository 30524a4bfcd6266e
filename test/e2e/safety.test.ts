import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { spawn, execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { CLI, ROOT, age, blockingMount, cli, exited, json, onTarget, rmTree, tmpDir, treeDigest, until, writeConfig } from '../helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Every byte on a target must come from inside the source: no file there may equal `secret`. */
function assertNoCopyOf(targetRoot: string, secret: Buffer): void {
  const bad = crypto.createHash('sha256').update(secret).digest('hex');
  for (const [rel, digest] of treeDigest(targetRoot)) assert.notEqual(digest, bad, `a copy of a file outside the source landed at ${rel}`);
}

describe('safety: modes', () => {
  it('setuid, setgid and sticky bits are never copied (small and > 1 MiB files)', async () => {
    const dir = tmpDir();
    const src = path.join(dir, 'src');
    fs.mkdirSync(src);
    const small = path.join(src, 'suid-small');
    const big = path.join(src, 'suid-big');
    fs.writeFileSync(small, '#!/bin/sh\nid\n');
    fs.writeFileSync(big, crypto.randomBytes(2 << 20));
    const nobody = Number(execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).trim());
    fs.chownSync(small, nobody, nobody);
    fs.chownSync(big, nobody, nobody);
    fs.chmodSync(small, 0o4755);
    fs.chmodSync(big, 0o6755);
    fs.mkdirSync(path.join(src, 'sticky'));
    fs.writeFileSync(path.join(src, 'sticky', 'f'), 'x');
    fs.chmodSync(path.join(src, 'sticky', 'f'), 0o1644);
    for (const f of [small, big, path.join(src, 'sticky', 'f')]) age(f);
    const cfg = writeConfig(dir, { host: 'm', sources: [src], targets: [{ name: 'a', url: 'ta' }] });
    const r = await cli(['run', '--config', cfg]);
    assert.equal(r.code, 0, r.stderr);
    const t = onTarget(path.join(dir, 'ta'), 'm', fs.realpathSync(src));
    assert.equal(fs.statSync(path.join(t, 'suid-small')).mode & 0o7777, 0o755);
    assert.equal(fs.statSync(path.join(t, 'suid-big')).mode & 0o7777, 0o755);
    assert.equal(fs.statSync(path.join(t, 'sticky', 'f')).mode & 0o7777, 0o644);
    rmTree(dir);
  });
});

describe('safety: nothing is written through a symlink on the target', () => {
  it('a source directory that was a symlink (recreated as a link on the target) and is now a real directory: the link is replaced, nothing lands where it pointed', async () => {
    const dir = tmpDir();
    const src = path.join(dir, 'src');
    const outside = path.join(dir, 'outside');
    fs.mkdirSync(src);
    fs.mkdirSync(outside);
    fs.writeFileSync(path.join(outside, 'f.dat'), 'precious file outside the target');
    fs.symlinkSync(outside, path.join(src, 'sub'));
    const cfg = writeConfig(dir, { host: 'm', sources: [src], targets: [{ name: 'a', url: 'ta' }], settle: '1s' });
    assert.equal((await cli(['run', '--config', cfg])).code, 0);
    const t = onTarget(path.join(dir, 'ta'), 'm', fs.realpathSync(src));
    assert.equal(fs.readlinkSync(path.join(t, 'sub')), outside, 'the link was recreated as a link');
    fs.rmSync(path.join(src, 'sub'));
    fs.mkdirSync(path.join(src, 'sub'));
    fs.writeFileSync(path.join(src, 'sub', 'f.dat'), 'new data from the source');
    age(path.join(src, 'sub', 'f.dat'));
    const r = await cli(['run', '--config', cfg]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(fs.readFileSync(path.join(outside, 'f.dat'), 'utf8'), 'precious file outside the target');
    assert.ok(fs.lstatSync(path.join(t, 'sub')).isDirectory(), 'the link on the target became a real directory');
    assert.equal(fs.readFileSync(path.join(t, 'sub', 'f.dat'), 'utf8'), 'new data from the source');
    rmTree(dir);
  });

  it('a <host> or .replica directory on the target that is a symlink is refused: nothing is written through it', async () => {
    const dir = tmpDir();
    const src = path.join(dir, 'src');
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'f.dat'), 'x');
    age(path.join(src, 'f.dat'));
    const elsewhere = path.join(dir, 'elsewhere');
    fs.mkdirSync(elsewhere);
    const base = path.join(dir, 'ta');
    fs.mkdirSync(path.join(base, '.replica'), { recursive: true });
    fs.symlinkSync(elsewhere, path.join(base, 'm'));
    fs.symlinkSync(elsewhere, path.join(base, '.replica', 'm'));
    const cfg = writeConfig(dir, { host: 'm', sources: [src], targets: [{ name: 'a', url: 'ta' }] });
    const r = await cli(['run', '--json', '--config', cfg]);
    assert.equal(r.code, 1);
    assert.deepEqual(fs.readdirSync(elsewhere), [], 'nothing written through the links');
    assert.match(r.stderr, /is a symlink: refusing to write through it/);
    rmTree(dir);
  });
});

describe('safety: a source swapped for a symlink between hash and copy (TOCTOU)', () => {
  it('a file swapped for a link to a secret, and a directory swapped for a link to another directory, after hashing: no byte from outside the source reaches a target', async () => {
    const dir = tmpDir();
    const src = path.join(dir, 'src');
    const secretDir = path.join(dir, 'secret');
    fs.mkdirSync(path.join(src, 'b'), { recursive: true });
    fs.mkdirSync(secretDir);
    const secret = Buffer.from(`root:x:0:0:${crypto.randomBytes(16).toString('hex')}\n`);
    fs.writeFileSync(path.join(secretDir, 'f.dat'), secret, { mode: 0o600 });
    fs.writeFileSync(path.join(secretDir, 'c.dat'), secret, { mode: 0o600 });
    // a big file first: at 1 MiB/s its copy holds the queue while the test swaps the others
    fs.writeFileSync(path.join(src, 'a.big'), crypto.randomBytes(3 << 20));
    fs.writeFileSync(path.join(src, 'b', 'f.dat'), 'inside b');
    fs.writeFileSync(path.join(src, 'c.dat'), 'inside c');
    for (const f of ['a.big', 'b/f.dat', 'c.dat']) age(path.join(src, f));
    const cfg = writeConfig(dir, { host: 'm', sources: [src], targets: [{ name: 'slow', url: 'ts', bwlimit: '1MiB', concurrency: 1 }, { name: 'slow2', url: 'ts2', bwlimit: '1MiB', concurrency: 1 }] });
    const child = spawn(process.execPath, [CLI, 'run', '--log-level', 'verbose', '--config', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    await until(() => /hash took/.test(stderr), 30_000, 10);
    // hashing is over, copies are queued behind the big file: swap now
    fs.rmSync(path.join(src, 'c.dat'));
    fs.symlinkSync(path.join(secretDir, 'c.dat'), path.join(src, 'c.dat'));
    fs.renameSync(path.join(src, 'b'), path.join(dir, 'b-moved'));
    fs.symlinkSync(secretDir, path.join(src, 'b'));
    const code = await exited(child);
    assert.equal(code, 1, 'the swapped files failed as changed');
    assert.match(stderr, /changed/);
    for (const t of ['ts', 'ts2']) assertNoCopyOf(path.join(dir, t), secret);
    const r = await cli(['run', '--config', cfg]);
    for (const t of ['ts', 'ts2']) {
      assertNoCopyOf(path.join(dir, t), secret);
      const base = onTarget(path.join(dir, t), 'm', fs.realpathSync(src));
      assert.equal(fs.readlinkSync(path.join(base, 'c.dat')), path.join(secretDir, 'c.dat'), 'the link is recorded as a link');
    }
    assert.equal(r.code, 0, r.stderr);
    rmTree(dir);
  });
});

describe('safety: a stuck target (FUSE that blocks forever, a hung NFS stand-in) never hangs replica', () => {
  it('restore from a target whose reads hang ends within its timeout, served by the next target (the worker threads reading it are given up)', async (t) => {
    const dir = tmpDir();
    const fuse = await blockingMount(dir);
    try {
      const src = path.join(dir, 'src');
      fs.mkdirSync(src);
      const small = path.join(src, 'small.dat');
      const big = path.join(src, 'big.dat');
      fs.writeFileSync(small, crypto.randomBytes(5000));
      fs.writeFileSync(big, crypto.randomBytes(3 << 20));
      age(small); age(big);
      const cfg = writeConfig(dir, { host: 'm', sources: [src], targets: [{ name: 'stuck', url: fuse.mnt, timeouts: { command: '2s', copy: '3s' } }, { name: 'ok', url: 'ok' }] });
      assert.equal((await cli(['run', '--config', cfg])).code, 0);
      fuse.blockReads();
      const out = path.join(dir, 'out');
      const t0 = Date.now();
      const r = await cli(['restore', '--json', '--to', out, src, '--config', cfg], { timeoutMs: 60_000 });
      const took = Date.now() - t0;
      t.diagnostic(`restore with a stuck first target (copy timeout 3 s): ${took} ms`);
      assert.equal(r.code, 0, r.stderr);
      const res = json(r) as { path: string; from: string; errors: string[] }[];
      assert.deepEqual(res.map((x) => x.from), ['ok', 'ok']);
      for (const x of res) assert.match(x.errors.join(';'), /^stuck: .*(took longer|timed out|timeout)/i);
      assert.deepEqual(fs.readFileSync(path.join(out, small)), fs.readFileSync(small));
      assert.deepEqual(fs.readFileSync(path.join(out, big)), fs.readFileSync(big));
      assert.ok(took < 3000 * 2 + 8000, `restore took ${took} ms against a stuck target`);
    } finally {
      await fuse.stop();
      rmTree(dir);
    }
  });

  it('run ends within about command + copy timeout, the other target complete; the stuck one is down', async (t) => {
    const dir = tmpDir();
    const fuse = await blockingMount(dir);
    try {
      const src = path.join(dir, 'src');
      fs.mkdirSync(src);
      for (let i = 0; i < 20; i++) { fs.writeFileSync(path.join(src, `f${i}`), crypto.randomBytes(5000)); age(path.join(src, `f${i}`)); }
      fuse.block();
      const cfg = writeConfig(dir, { host: 'm', sources: [src], targets: [{ name: 'stuck', url: fuse.mnt, timeouts: { command: '2s', copy: '3s' } }, { name: 'ok', url: 'ok' }] });
      const t0 = Date.now();
      const r = await cli(['run', '--json', '--config', cfg], { timeoutMs: 60_000 });
      const took = Date.now() - t0;
      assert.equal(r.code, 1, r.stderr);
      assert.ok(took < 2000 + 3000 + 6000, `run took ${took} ms against a stuck target`);
      t.diagnostic(`run against a stuck target (command 2 s, copy 3 s): ${took} ms`);
      assert.equal(json(r).targetsDown.stuck.class, 'timeout');
      assert.deepEqual(treeDigest(onTarget(path.join(dir, 'ok'), 'm', fs.realpathSync(src))), treeDigest(src));
      // SIGTERM while a call to the stuck target hangs (long timeouts): the run ends at once, 130
      const cfg2 = writeConfig(dir, { host: 'm', sources: [src], targets: [{ name: 'stuck', url: fuse.mnt, timeouts: { command: '5m', copy: '5m' } }, { name: 'ok', url: 'ok' }] }, 'long.json');
      const child = spawn(process.execPath, [CLI, 'run', '--config', cfg2], { stdio: 'ignore' });
      await sleep(2500);
      const t1 = Date.now();
      child.kill('SIGTERM');
      const code = await Promise.race([exited(child), sleep(10_000).then(() => 'still running')]);
      assert.equal(code, 130);
      assert.ok(Date.now() - t1 < 5000, `SIGTERM took ${Date.now() - t1} ms`);
      t.diagnostic(`SIGTERM while a call hangs: exit 130 after ${Date.now() - t1} ms`);
    } finally {
      await fuse.stop();
      rmTree(dir);
    }
  });

  it('watch keeps serving the healthy target while the stuck one is down, and stops on SIGTERM', async () => {
    const dir = tmpDir();
    const fuse = await blockingMount(dir);
    try {
      const src = path.join(dir, 'src');
      fs.mkdirSync(src);
      fuse.block();
      const cfg = writeConfig(dir, { host: 'm', sources: [src], settle: '300ms', targets: [{ name: 'stuck', url: fuse.mnt, timeouts: { command: '1s', copy: '2s' } }, { name: 'ok', url: 'ok' }] });
      const child = spawn(process.execPath, [CLI, 'watch', '--config', cfg], { stdio: 'ignore' });
      const okRoot = onTarget(path.join(dir, 'ok'), 'm', fs.realpathSync(src));
      await sleep(3000);
      for (let i = 0; i < 3; i++) {
        fs.writeFileSync(path.join(src, `new${i}`), `file ${i}`);
        await until(() => fs.existsSync(path.join(okRoot, `new${i}`)), 20_000);
        assert.equal(fs.readFileSync(path.join(okRoot, `new${i}`), 'utf8'), `file ${i}`);
      }
      const t1 = Date.now();
      child.kill('SIGTERM');
      const code = await Promise.race([exited(child), sleep(15_000).then(() => 'still running')]);
      assert.equal(code, 0);
      assert.ok(Date.now() - t1 < 10_000);
      const s = json(await cli(['status', '--json', '--config', cfg]));
      assert.equal(s.targets.find((t: { name: string }) => t.name === 'ok').verified.files, 3);
      assert.equal(s.targets.find((t: { name: string }) => t.name === 'stuck').lastError.class, 'timeout');
    } finally {
      await fuse.stop();
      rmTree(dir);
    }
  });
});

describe('safety: the backup never backs itself up (config checks on real paths)', () => {
  const base = () => {
    const dir = fs.realpathSync(tmpDir());
    fs.mkdirSync(path.join(dir, 'src', 'data'), { recursive: true });
    return dir;
  };
  const run78 = async (dir: string, cfg: Record<string, unknown>, expect: RegExp) => {
    const r = await cli(['run', '--config', writeConfig(dir, cfg)]);
    assert.equal(r.code, 78, r.stderr);
    assert.match(r.stderr, expect);
  };

  it('a target inside a source, also reached through a symlink, is an error unless that source excludes it', async () => {
    const dir = base();
    await run78(dir, { sources: ['src'], targets: [{ name: 'a', url: 'src/backup' }] }, /targets\[0\]\.url: .*src\/backup is inside sources\[0\]/);
    fs.symlinkSync(path.join(dir, 'src', 'data'), path.join(dir, 'via-link'));
    await run78(dir, { sources: ['src'], targets: [{ name: 'a', url: 'via-link/bk' }] }, /targets\[0\]\.url: .*src\/data\/bk is inside sources\[0\].*exclude it in that source's "exclude" \(e\.g\. "data\/bk\/\*\*"\)/);
    // excluded by the source's own patterns: allowed
    const ok = await cli(['run', '--config', writeConfig(dir, { sources: [{ path: 'src', exclude: ['data/bk/**'] }], targets: [{ name: 'a', url: 'via-link/bk' }] })]);
    assert.equal(ok.code, 0, ok.stderr);
    rmTree(dir);
  });

  it('a source inside a target, the store inside a source, and a host named .replica* are errors', async () => {
    const dir = base();
    fs.mkdirSync(path.join(dir, 'tgt', 'h', 'x'), { recursive: true });
    await run78(dir, { sources: ['tgt/h/x'], targets: [{ name: 'a', url: 'tgt' }] }, /sources\[0\]\.path: .*tgt\/h\/x is inside target a/);
    await run78(dir, { sources: ['src'], store: 'src/.replica', targets: [{ name: 'a', url: 'tgt' }] }, /^config: store: .*src\/\.replica is inside sources\[0\]/m);
    await run78(dir, { host: '.replica', sources: ['src'], targets: [{ name: 'a', url: 'tgt' }] }, /^config: host: must not start with "\.replica"/m);
    await run78(dir, { host: '.replica-x', sources: ['src'], targets: [{ name: 'a', url: 'tgt' }] }, /^config: host: must not start with "\.replica"/m);
    rmTree(dir);
  });
});

describe('safety: timers and config input', () => {
  it('durations past Node\'s timer limit (~24.8 days) do not fire at once; zero timeouts are refused', async () => {
    const { setLongTimeout, MAX_TIMER_MS } = await import('../../dist/lib/queue/timers.js');
    let fired = false;
    const t = setLongTimeout(() => { fired = true; }, MAX_TIMER_MS + 10_000);
    await sleep(100);
    assert.equal(fired, false);
    t.clear();
    const dir = tmpDir();
    const src = path.join(dir, 'src');
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'f'), 'x');
    age(path.join(src, 'f'));
    const r = await cli(['run', '--config', writeConfig(dir, { sources: [src], targets: [{ name: 'a', url: 'ta' }], timeouts: { command: '30d', copy: '30d' } })]);
    assert.equal(r.code, 0, `a 30-day timeout must not expire at once: ${r.stderr}`);
    assert.doesNotMatch(r.stderr, /TimeoutOverflowWarning/, 'no timer anywhere got a delay past the limit');
    const z = await cli(['run', '--config', writeConfig(dir, { sources: [src], targets: [{ name: 'a', url: 'ta', timeouts: { copy: '0s' } }] })]);
    assert.equal(z.code, 78);
    assert.match(z.stderr, /targets\[0\]\.timeouts\.copy: must be greater than 0/);
    // the agent with rescan 30d: one pass at start, not a pass every millisecond
    const cfg = writeConfig(dir, { sources: [src], targets: [{ name: 'a', url: 'ta' }], rescan: '30d', heartbeat: '30d' }, 'w.json');
    const child = spawn(process.execPath, [CLI, 'watch', '--config', cfg], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (d) => (err += d));
    await sleep(4000);
    child.kill('SIGTERM');
    assert.equal(await exited(child), 0);
    assert.equal((err.match(/pass done/g) ?? []).length, 1, err);
    rmTree(dir);
  });

  it('5,000 exclude patterns work (no 64 KiB pattern limit); a YAML alias bomb is refused at once, without expanding it', async () => {
    const dir = tmpDir();
    const src = path.join(dir, 'src');
    fs.mkdirSync(src);
    for (const f of ['keep.dat', 'skip-4999.tmp', 'skip-17.tmp']) { fs.writeFileSync(path.join(src, f), f); age(path.join(src, f)); }
    const exclude = Array.from({ length: 5000 }, (_, i) => `**/skip-${i}.tmp`);
    const cfg = writeConfig(dir, { host: 'm', sources: [src], exclude, targets: [{ name: 'a', url: 'ta' }] });
    assert.ok(fs.statSync(cfg).size > 95_000);
    const r = await cli(['run', '--config', cfg]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(fs.readdirSync(onTarget(path.join(dir, 'ta'), 'm', fs.realpathSync(src))), ['keep.dat']);
    const lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
    for (let i = 1; i < 9; i++) lines.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(9).fill(`*${String.fromCharCode(96 + i)}`).join(',')}]`);
    lines.push('sources: *i');
    fs.writeFileSync(path.join(dir, '.replicarc.yaml'), `${lines.join('\n')}\n`);
    const t0 = Date.now();
    const b = await cli(['status', '--config', path.join(dir, '.replicarc.yaml')]);
    assert.equal(b.code, 78);
    assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`);
    assert.match(b.stderr, /YAML anchors and aliases .* are not allowed/);
    assert.ok(b.stderr.length < 2000, 'no expanded value in the message');
    rmTree(dir);
  });
});

describe('safety: privacy of the store and of copies', () => {
  it('store files and shipped store copies are 0600 in 0700 directories; a 0700 source directory stays 0700 on the target', async () => {
    const dir = tmpDir();
    const src = path.join(dir, 'src');
    fs.mkdirSync(path.join(src, 'private'), { recursive: true });
    fs.chmodSync(path.join(src, 'private'), 0o700);
    fs.writeFileSync(path.join(src, 'private', 'f'), 'x');
    age(path.join(src, 'private', 'f'));
    const cfg = writeConfig(dir, { host: 'm', sources: [src], targets: [{ name: 'a', url: 'ta' }], snapshots: 2 });
    const r = await cli(['run', '--config', cfg]);
    assert.equal(r.code, 0, r.stderr);
    const modes = (root: string) => {
      const bad: string[] = [];
      const walk = (d: string) => {
        if ((fs.statSync(d).mode & 0o077) !== 0) bad.push(`${d} ${(fs.statSync(d).mode & 0o777).toString(8)}`);
        for (const e of fs.readdirSync(d, { withFileTypes: true })) {
          const p = path.join(d, e.name);
          if (e.isDirectory()) walk(p);
          else if (e.name !== 'lock' && (fs.statSync(p).mode & 0o077) !== 0) bad.push(`${p} ${(fs.statSync(p).mode & 0o777).toString(8)}`);
        }
      };
      walk(root);
      return bad;
    };
    assert.deepEqual(modes(path.join(dir, '.replica')), []);
    assert.deepEqual(modes(path.join(dir, 'ta', '.replica')), []);
    const t = onTarget(path.join(dir, 'ta'), 'm', fs.realpathSync(src));
    assert.equal(fs.statSync(path.join(t, 'private')).mode & 0o777, 0o700);
    rmTree(dir);
  });
});

describe('safety: JS configs', () => {
  it('a JS config another user can write is refused; an owner-only one loads and `check` says it is executable', async () => {
    const dir = tmpDir();
    const src = path.join(dir, 'src');
    fs.mkdirSync(src);
    const js = path.join(dir, 'replica.config.cjs');
    fs.writeFileSync(js, `module.exports = ${JSON.stringify({ sources: [src], targets: [{ name: 'a', url: path.join(dir, 'ta') }] })};\n`);
    fs.chmodSync(js, 0o666);
    const bad = await cli(['status', '--config', js]);
    assert.equal(bad.code, 78);
    assert.match(bad.stderr, /refusing to execute a JS config that another user can write/);
    fs.chmodSync(js, 0o644);
    const ok = await cli(['check', '--config', js]);
    assert.match(ok.stdout, /config is executable JS: .*replica\.config\.cjs/);
    rmTree(dir);
  });
});
