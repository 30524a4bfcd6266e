import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { handOver } from '../../dist/bin/supervisor.js';
import { CLI, age, alive, assertNoPartialFiles, cli, cliSpawn, children, exited, json, makeTree, mountTmpfs, onTarget, rmTree, tmpDir, treeDigest, until, writeConfig } from '../helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('crash safety', () => {
  it('kill -9 at 20 random moments of a 2k-file backup: store loads, no partial file under a final name, one more run verifies all', async () => {
    const dir = tmpDir();
    const src = path.join(dir, 'src');
    makeTree(src, 2000, { maxBytes: 24 * 1024, seed: 42 });
    const cfg = writeConfig(dir, { host: 'k', sources: [src], targets: [{ name: 'a', url: 'ta' }, { name: 'b', url: 'tb' }], settle: '1s', snapshots: 3 });
    const source = treeDigest(src);
    let seed = 7;
    const rand = () => ((seed = (seed * 48271) % 2147483647) / 2147483647);
    for (let i = 0; i < 20; i++) {
      const child = cliSpawn(['run', '--config', cfg]);
      await sleep(100 + Math.floor(rand() * 1400));
      // kill -9 of replica as a user or a cron timeout would: the supervisor only; its worker must die with it
      // (dieWithSupervisor) before anything is checked, or it would still be renaming files under our eyes
      const worker = children(child.pid!); // replica's worker (not a `sync` it may have started, which ends on its own)
      child.kill('SIGKILL');
      await exited(child);
      await until(() => worker.every((p) => !alive(p)), 5000, 10);
      for (const t of ['ta', 'tb']) assertNoPartialFiles(onTarget(path.join(dir, t), 'k', src), source);
      const st = await cli(['status', '--json', '--config', cfg]);
      assert.equal(st.code, 0, `store must load after kill ${i}: ${st.stderr}`);
    }
    const r = await cli(['run', '--json', '--config', cfg]);
    assert.equal(r.code, 0, r.stderr);
    const s = json(await cli(['status', '--json', '--config', cfg]));
    for (const t of s.targets) assert.equal(t.verified.files, 2000);
    for (const t of ['ta', 'tb']) {
      assert.deepEqual(treeDigest(onTarget(path.join(dir, t), 'k', src)), treeDigest(src));
    }
    rmTree(dir);
  });

  it('kill -9 of the supervisor while its worker is still starting: the worker dies too (it would otherwise run the whole backup unseen)', async () => {
    const dir = tmpDir();
    const src = path.join(dir, 'src');
    makeTree(src, 50, { maxBytes: 4096 });
    const cfg = writeConfig(dir, { host: 'k', sources: [src], targets: [{ name: 'a', url: 'ta' }] });
    for (let i = 0; i < 5; i++) {
      const child = cliSpawn(['run', '--config', cfg]);
      const worker = (await until(() => { const d = children(child.pid!); return d.length ? d : undefined; }, 10_000, 2))!;
      child.kill('SIGKILL'); // the worker is still loading its modules
      await exited(child);
      await until(() => worker.every((p) => !alive(p)), 5000, 10);
    }
    rmTree(dir);
  });

  it('the supervisor hands a file or /dev/null to its worker as it is, and copies a pipe or a socket through itself; every line arrives', async () => {
    const devNull = fs.openSync('/dev/null', 'w');
    assert.equal(handOver(devNull), true);
    fs.closeSync(devNull);
    const dir = tmpDir();
    const file = path.join(dir, 'out.txt');
    const fd = fs.openSync(file, 'w');
    assert.equal(handOver(fd), true);
    execFileSync('mkfifo', [path.join(dir, 'fifo')]);
    const fifo = fs.openSync(path.join(dir, 'fifo'), fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
    assert.equal(handOver(fifo), false, 'a pipe');
    fs.closeSync(fifo);
    assert.equal(handOver(987_654), false, 'a descriptor fstat cannot see');
    const src = path.join(dir, 'src');
    makeTree(src, 30, { maxBytes: 512, aged: true });
    const cfg = writeConfig(dir, { host: 'k', sources: [src], targets: [{ name: 'a', url: 'ta' }], settle: '1s', heartbeat: '1s' });
    assert.equal((await cli(['run', '--config', cfg])).code, 0);
    // the worker's own descriptor 1 is the file (a long command: watch); with a pipe, the worker's is a pipe of the supervisor's
    for (const [out, want] of [[fd, file], ['pipe', /^(pipe|socket):/]] as const) {
      const child = spawn(process.execPath, [CLI, 'watch', '--config', cfg], { stdio: ['ignore', out, 'pipe'] });
      const worker = (await until(() => children(child.pid!)[0], 10_000, 10))!;
      const target = await until(() => { try { return fs.readlinkSync(`/proc/${worker}/fd/1`); } catch { return undefined; } });
      if (typeof want === 'string') assert.equal(target, want);
      else assert.match(target!, want);
      child.kill('SIGTERM');
      assert.equal(await exited(child), 0);
    }
    fs.closeSync(fd);
    // every line of a supervised command reaches the file (written by the worker itself)
    const out = fs.openSync(file, 'w');
    const res = spawnSync(process.execPath, [CLI, 'restore', '--to', path.join(dir, 'back'), src, '--config', cfg], { stdio: ['ignore', out, 'pipe'] });
    fs.closeSync(out);
    assert.equal(res.status, 0, String(res.stderr));
    assert.equal(fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.startsWith('restored ')).length, 30);
    rmTree(dir);
  });

  it('SIGTERM during a run saves the store and exits 130; the next run finishes the job', async () => {
    const dir = tmpDir();
    const src = path.join(dir, 'src');
    makeTree(src, 1500, { maxBytes: 16 * 1024 });
    const cfg = writeConfig(dir, { host: 't', sources: [src], targets: [{ name: 'a', url: 'ta' }] });
    const child = spawn(process.execPath, [CLI, 'run', '--config', cfg], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    await sleep(400);
    child.kill('SIGTERM');
    const code = await exited(child);
    assert.equal(code, 130, stderr);
    assert.match(stderr, /SIGTERM/);
    assertNoPartialFiles(onTarget(path.join(dir, 'ta'), 't', src), treeDigest(src));
    const r = await cli(['run', '--config', cfg]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(treeDigest(onTarget(path.join(dir, 'ta'), 't', src)), treeDigest(src));
    rmTree(dir);
  });
});

describe('target faults', () => {
  it('a full tmpfs target: files fail with ENOSPC, the other target gets everything; after space is freed the next run verifies them', async () => {
    const dir = tmpDir();
    const src = path.join(dir, 'src');
    for (let i = 0; i < 12; i++) { fs.mkdirSync(src, { recursive: true }); fs.writeFileSync(path.join(src, `img${i}.fits`), Buffer.alloc(512 * 1024, i)); age(path.join(src, `img${i}.fits`)); }
    const full = path.join(dir, 'full');
    mountTmpfs(full, '2m');
    const cfg = writeConfig(dir, { host: 'f', sources: [src], targets: [{ name: 'full', url: full }, { name: 'ok', url: 'ok' }], retry: { backoff: '0s', maxBackoff: '0s' }, snapshots: 0 });
    const r = await cli(['run', '--json', '--config', cfg]);
    assert.equal(r.code, 1);
    const s = json(await cli(['status', '--json', '--config', cfg]));
    const [tFull, tOk] = s.targets;
    assert.equal(tOk.verified.files, 12);
    assert.ok(tFull.failed.files > 0, 'some files must fail on the full target');
    assert.equal(tFull.failed.byClass.ENOSPC.files, tFull.failed.files);
    assert.equal(tFull.verified.files + tFull.failed.files, 12);
    assertNoPartialFiles(onTarget(full, 'f', src), treeDigest(src));
    execFileSync('mount', ['-o', 'remount,size=16m', full]);
    const r2 = await cli(['run', '--json', '--config', cfg]);
    assert.equal(r2.code, 0, r2.stderr);
    assert.deepEqual(treeDigest(onTarget(full, 'f', src)), treeDigest(src));
    rmTree(dir);
  });

  it('an unmounted `mount` target: class not-mounted on the target, nothing written there, the other target completes', async () => {
    const dir = tmpDir();
    const src = path.join(dir, 'src');
    makeTree(src, 20);
    const usb = path.join(dir, 'usb');
    fs.mkdirSync(usb);
    const cfg = writeConfig(dir, { host: 'm', sources: [src], targets: [{ name: 'usb', url: path.join(usb, 'backup'), mount: usb }, { name: 'disk', url: 'disk' }] });
    const r = await cli(['run', '--json', '--config', cfg]);
    assert.equal(r.code, 1);
    assert.equal(json(r).targetsDown.usb.class, 'not-mounted');
    assert.deepEqual(fs.readdirSync(usb), []);
    const s = json(await cli(['status', '--json', '--config', cfg]));
    assert.equal(s.targets[0].lastError.class, 'not-mounted');
    assert.equal(s.targets[0].pending.files, 20);
    assert.equal(s.targets[0].failed.files, 0, 'a target-wide failure spends no attempts');
    assert.equal(s.targets[1].verified.files, 20);
    mountTmpfs(usb, '16m');
    assert.equal((await cli(['run', '--config', cfg])).code, 0);
    assert.equal(json(await cli(['status', '--json', '--config', cfg])).targets[0].lastError, undefined);
    rmTree(dir);
  });
});

describe('store and lock', () => {
  it('a second run while the lock is held exits 75 at once and quietly; a stale lock is taken over', async () => {
    const dir = tmpDir();
    const src = path.join(dir, 'src');
    makeTree(src, 3);
    const cfg = writeConfig(dir, { host: 'l', sources: [src], targets: [{ name: 'a', url: 'ta' }] });
    fs.mkdirSync(path.join(dir, '.replica'));
    const sleeper = cliSpawn(['hash', '/dev/zero']); // a live process that is not us
    const start = fs.readFileSync(`/proc/${sleeper.pid}/stat`, 'utf8').split(') ')[1].split(' ')[19];
    fs.writeFileSync(path.join(dir, '.replica', 'lock'), JSON.stringify({ pid: sleeper.pid, start, command: 'run', at: 'x' }));
    const t0 = Date.now();
    const r = await cli(['run', '--config', cfg]);
    assert.equal(r.code, 75);
    assert.ok(Date.now() - t0 < 10_000);
    assert.doesNotMatch(r.stderr, /error/i);
    sleeper.kill('SIGKILL');
    await exited(sleeper);
    const r2 = await cli(['run', '--config', cfg]);
    assert.equal(r2.code, 0, r2.stderr);
    assert.equal(fs.existsSync(path.join(dir, '.replica', 'lock')), false);
    rmTree(dir);
  });

  it('a corrupt shard falls back to the newest good snapshot with a warning; with no good snapshot, exit 74', async () => {
    const dir = tmpDir();
    const src = path.join(dir, 'src');
    makeTree(src, 50);
    const cfg = writeConfig(dir, { host: 's', sources: [src], targets: [{ name: 'a', url: 'ta' }], snapshots: 2 });
    assert.equal((await cli(['run', '--config', cfg])).code, 0);
    assert.equal((await cli(['run', '--config', cfg])).code, 0);
    assert.equal(fs.readdirSync(path.join(dir, '.replica', 'snapshots')).length, 2);
    const shards = path.join(dir, '.replica', 'files');
    const victim = fs.readdirSync(shards).map((f) => path.join(shards, f)).find((f) => fs.statSync(f).size > 100)!;
    fs.writeFileSync(victim, '{"formatVersion":1,"files":{"truncated');
    const r = await cli(['run', '--json', '--config', cfg]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /unusable.*snapshot/);
    assert.equal(json(r).counts.copied, 0, 'the snapshot knew every file: nothing to redo');
    fs.writeFileSync(victim, 'garbage');
    fs.rmSync(path.join(dir, '.replica', 'snapshots'), { recursive: true });
    const r2 = await cli(['run', '--config', cfg]);
    assert.equal(r2.code, 74);
    assert.match(r2.stderr, /no snapshot holds a good copy/);
    rmTree(dir);
  });

  it('a source root that vanished while the store knows files under it is source-missing: exit 1, nothing marked deleted', async () => {
    const dir = tmpDir();
    const src = path.join(dir, 'src');
    makeTree(src, 10);
    const cfg = writeConfig(dir, { host: 'x', sources: [src], targets: [{ name: 'a', url: 'ta' }] });
    assert.equal((await cli(['run', '--config', cfg])).code, 0);
    fs.renameSync(src, `${src}.away`);
    const r = await cli(['run', '--json', '--config', cfg]);
    assert.equal(r.code, 1);
    assert.deepEqual(json(r).missingSources, [src]);
    assert.match(r.stderr, /source-missing/);
    fs.mkdirSync(src); // mounted-over empty directory: same
    const r2 = await cli(['run', '--json', '--config', cfg]);
    assert.equal(r2.code, 1);
    assert.equal(json(r2).counts.deleted, 0);
    assert.equal(json(await cli(['status', '--json', '--config', cfg])).deleted, 0);
    // a target added meanwhile is owed every file, but nothing is tried while their disk is missing
    writeConfig(dir, { host: 'x', sources: [src], targets: [{ name: 'a', url: 'ta' }, { name: 'b', url: 'tb' }] });
    assert.equal((await cli(['run', '--config', cfg])).code, 1);
    const s = json(await cli(['status', '--json', '--config', cfg]));
    assert.equal(s.targets[1].failed.files, 0, 'no attempt spent on files whose source disk is missing');
    assert.equal(s.targets[1].pending.files, 10);
    rmTree(dir);
  });
});

describe('source faults', () => {
  it('a file still being appended to is never copied; once it stops it is copied whole', async () => {
    const dir = tmpDir();
    const src = path.join(dir, 'src');
    fs.mkdirSync(src);
    const cfg = writeConfig(dir, { host: 'w', sources: [src], targets: [{ name: 'a', url: 'ta' }], settle: '1s' });
    const file = path.join(src, 'growing.log');
    const fd = fs.openSync(file, 'a');
    let writing = true;
    const writer = (async () => { for (let i = 0; writing; i++) { fs.writeSync(fd, `line ${i} ${'x'.repeat(100)}\n`); await sleep(150); } })();
    for (let i = 0; i < 3; i++) {
      const r = await cli(['run', '--json', '--config', cfg]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(json(r).counts.copied, 0);
      assert.equal(fs.existsSync(onTarget(path.join(dir, 'ta'), 'w', src, 'growing.log')), false, 'a partial copy appeared');
    }
    writing = false;
    await writer;
    fs.closeSync(fd);
    const r = await cli(['run', '--json', '--config', cfg]);
    assert.equal(r.code, 0);
    assert.deepEqual(fs.readFileSync(onTarget(path.join(dir, 'ta'), 'w', src, 'growing.log')), fs.readFileSync(file));
    rmTree(dir);
  });

  it('an unreadable source file fails with EACCES on every target; the others go on', async () => {
    const dir = tmpDir();
    const src = path.join(dir, 'src');
    makeTree(src, 20);
    const secret = path.join(src, 'secret.dat');
    fs.writeFileSync(secret, 'top secret');
    age(secret);
    fs.chmodSync(secret, 0);
    fs.chmodSync(dir, 0o777);
    const cfg = writeConfig(dir, { host: 'e', sources: [src], targets: [{ name: 'a', url: 'ta' }, { name: 'b', url: 'tb' }] });
    // root bypasses mode bits: drop the capability that lets it
    const drop = ['--inh-caps=-dac_override,-dac_read_search', '--bounding-set=-dac_override,-dac_read_search'];
    let code = 0;
    try { execFileSync('setpriv', [...drop, process.execPath, CLI, 'run', '--config', cfg], { stdio: 'pipe' }); } catch (e) { code = (e as { status: number }).status; }
    assert.equal(code, 1);
    const s = json(await cli(['status', '--json', '--config', cfg]));
    for (const t of s.targets) {
      assert.equal(t.failed.byClass.EACCES.files, 1);
      assert.equal(t.verified.files, 20);
    }
    rmTree(dir);
  });
});
