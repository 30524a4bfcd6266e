import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { ROOT, age, cli, cliSpawn, exited, json, onTarget, rmTree, tmpDir, treeDigest, writeConfig } from '../helpers.js';

type Scrub = { ok: boolean; targets: { target: string; read: number; bytes: number; good: number; bad: { path: string; class: string }[] }[] };
const monitor = (...args: string[]): { code: number; out: string } => {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'dist/bin/replica-monitor.js'), ...args], { encoding: 'utf8' });
  return { code: r.status ?? -1, out: r.stdout };
};
const storeFiles = (dir: string) => Object.fromEntries(fs.readdirSync(path.join(dir, '.replica', 'files')).map((f) => [f, fs.readFileSync(path.join(dir, '.replica', 'files', f), 'utf8')]));

describe('replica verify: the scrub', () => {
  it('a flipped byte, a deleted copy and an emptied target are found (mismatch, missing), failed on that target only, and repaired by the next run', async () => {
    const dir = tmpDir();
    const src = path.join(dir, 'src');
    fs.mkdirSync(src);
    for (let i = 0; i < 6; i++) { fs.writeFileSync(path.join(src, `f${i}.dat`), crypto.randomBytes(20_000 + i)); age(path.join(src, `f${i}.dat`)); }
    const cfg = writeConfig(dir, { host: 'h', sources: [src], targets: [{ name: 'a', url: 'ta' }, { name: 'b', url: 'tb' }] });
    assert.equal((await cli(['run', '--config', cfg])).code, 0);
    const ok = json(await cli(['verify', '--json', '--all', '--config', cfg])) as Scrub;
    assert.equal(ok.ok, true);
    assert.deepEqual(ok.targets.map((t) => [t.target, t.read, t.good]), [['a', 6, 6], ['b', 6, 6]]);

    const onA = (f: string) => onTarget(path.join(dir, 'ta'), 'h', src, f);
    const bad = fs.readFileSync(onA('f1.dat'));
    bad[777] ^= 1;
    fs.writeFileSync(onA('f1.dat'), bad);
    fs.rmSync(onA('f4.dat'));
    const r = await cli(['verify', '--all', '--config', cfg]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /target a: 6 copies read .*, 4 good, 2 bad\n {2}mismatch {2}.*f1\.dat\n {2}missing {2}.*f4\.dat/);
    assert.match(r.stdout, /target b: 6 copies read .*, 6 good, 0 bad/);
    const st = json(await cli(['status', '--json', '--config', cfg]));
    const [a, b] = st.targets as { failed: { files: number; byClass: Record<string, { files: number }> }; verified: { files: number } }[];
    assert.deepEqual([a.failed.files, Object.keys(a.failed.byClass).sort(), b.verified.files], [2, ['mismatch', 'missing'], 6]);
    assert.equal((await cli(['run', '--config', cfg])).code, 0, 'the next run repairs both');
    assert.deepEqual(treeDigest(onTarget(path.join(dir, 'ta'), 'h', src)), treeDigest(src));
    assert.equal((await cli(['verify', '--all', '--config', cfg])).code, 0);

    // a whole target emptied (a disk swapped for an empty one): every copy missing, all repaired
    fs.rmSync(path.join(dir, 'tb', 'h'), { recursive: true });
    const gone = json(await cli(['verify', '--json', '--all', '--target', 'b', '--config', cfg])) as Scrub;
    assert.deepEqual(gone.targets.map((t) => [t.target, t.bad.length, [...new Set(t.bad.map((x) => x.class))]]), [['b', 6, ['missing']]]);
    const mon = monitor(path.join(dir, '.replica'));
    assert.equal(mon.code, 2, 'CRITICAL until repaired');
    assert.match(mon.out, /CRITICAL: b: 6 copies read back wrong or missing/);
    assert.equal((await cli(['run', '--config', cfg])).code, 0);
    assert.equal(monitor(path.join(dir, '.replica')).code, 0, 'OK once repaired');
    assert.deepEqual(treeDigest(onTarget(path.join(dir, 'tb'), 'h', src)), treeDigest(src));
    rmTree(dir);
  });

  it('a source deleted and one copy corrupted: the repair comes from the other target, byte-identical (a big file streamed, a small one fetched); never from a copy that is bad too', async () => {
    const dir = tmpDir();
    const src = path.join(dir, 'src');
    fs.mkdirSync(src);
    const big = crypto.randomBytes(3 << 20);
    const small = crypto.randomBytes(5000);
    fs.writeFileSync(path.join(src, 'big.bin'), big);
    fs.writeFileSync(path.join(src, 'small.bin'), small);
    fs.chmodSync(path.join(src, 'small.bin'), 0o640);
    fs.writeFileSync(path.join(src, 'stays.txt'), 'an empty source would read as an unmounted disk');
    age(path.join(src, 'big.bin')); age(path.join(src, 'small.bin')); age(path.join(src, 'stays.txt'));
    const cfg = writeConfig(dir, { host: 'h', sources: [src], targets: [{ name: 'a', url: 'ta' }, { name: 'b', url: 'tb' }] });
    assert.equal((await cli(['run', '--config', cfg])).code, 0);
    fs.rmSync(path.join(src, 'big.bin'));
    fs.rmSync(path.join(src, 'small.bin'));
    assert.equal((await cli(['run', '--config', cfg])).code, 0, 'deleted at the source: nothing owed');
    const onA = (f: string) => onTarget(path.join(dir, 'ta'), 'h', src, f);
    const onB = (f: string) => onTarget(path.join(dir, 'tb'), 'h', src, f);
    for (const f of ['big.bin', 'small.bin']) { const b = fs.readFileSync(onA(f)); b[100] ^= 0xff; fs.writeFileSync(onA(f), b); }
    assert.equal((await cli(['verify', '--all', '--config', cfg])).code, 1);
    const r = await cli(['run', '--json', '--config', cfg]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(json(r).counts.copied, 2, 'both repaired');
    assert.deepEqual(fs.readFileSync(onA('big.bin')), big);
    assert.deepEqual(fs.readFileSync(onA('small.bin')), small);
    assert.equal(fs.statSync(onA('small.bin')).mode & 0o777, 0o640);
    assert.equal((await cli(['verify', '--all', '--config', cfg])).code, 0);

    // both copies bad: nothing is published from b's bad copy; a fails, b fails
    for (const f of [onA('small.bin'), onB('small.bin')]) { const b = fs.readFileSync(f); b[7] ^= 1; fs.writeFileSync(f, b); }
    const badA = fs.readFileSync(onA('small.bin'));
    assert.equal((await cli(['verify', '--all', '--config', cfg])).code, 1);
    assert.equal((await cli(['run', '--config', cfg])).code, 0, 'a deleted file owes nothing: the run is not failed by it');
    assert.deepEqual(fs.readFileSync(onA('small.bin')), badA, 'never repaired from an unverified copy');
    const w = json(await cli(['where-is', '--json', 'small.bin', '--config', cfg]));
    assert.deepEqual([w[0].targets.a.state, w[0].targets.b.state], ['failed', 'failed']);
    rmTree(dir);
  });

  it('--budget reads at most that much per target, oldest verification first, so two runs cover 20 copies; --no-update writes nothing and runs while the lock is held', async () => {
    const dir = tmpDir();
    const src = path.join(dir, 'src');
    fs.mkdirSync(src);
    for (let i = 0; i < 20; i++) { fs.writeFileSync(path.join(src, `m${String(i).padStart(2, '0')}.bin`), crypto.randomBytes(1 << 20)); age(path.join(src, `m${String(i).padStart(2, '0')}.bin`)); }
    const cfg = writeConfig(dir, { host: 'h', sources: [src], targets: [{ name: 'a', url: 'ta' }], verify: { every: '30d', budget: '10MiB' } });
    assert.equal((await cli(['run', '--config', cfg])).code, 0);
    const seen: string[] = [];
    for (let round = 0; round < 2; round++) {
      const r = json(await cli(['verify', '--json', '--config', cfg])) as Scrub & { targets: { bad: unknown[]; read: number; bytes: number }[] };
      assert.equal(r.targets[0].read, 10, `round ${round}: the budget (verify.budget 10 MiB) is 10 copies`);
      assert.ok(r.targets[0].bytes <= 10 << 20);
      const st = json(await cli(['where-is', '--json', src, '--config', cfg])) as { path: string; targets: { a: { verifiedAt: string } } }[];
      const newest = [...st].sort((x, y) => y.targets.a.verifiedAt.localeCompare(x.targets.a.verifiedAt)).slice(0, 10).map((x) => x.path);
      seen.push(...newest);
    }
    assert.equal(new Set(seen).size, 20, 'two budgeted runs read every copy once');
    const chk = await cli(['check', '--config', cfg]);
    assert.match(chk.stdout, /^ok {6}scrub: verify\.budget 10\.0 MiB a day x verify\.every 30d reads 300\.0 MiB: covers the 20\.0 MiB verified on a$/m);
    const small = writeConfig(dir, { host: 'h', sources: [src], targets: [{ name: 'a', url: 'ta' }], verify: { every: '1d', budget: '5MiB' } }, 'small.json');
    const warn = await cli(['check', '--config', small]);
    assert.equal(warn.code, 0, 'a warning, not a failure');
    assert.match(warn.stdout, /^WARNING scrub: .* less than the 20\.0 MiB verified on a: .*raise verify\.budget to 20\.0 MiB/m);
    assert.equal((await cli(['verify', '--budget', '1', '--all', '--config', cfg])).code, 2);
    assert.equal((await cli(['verify', '--budget', 'lots', '--config', cfg])).code, 2);

    // --no-update while another process holds the lock: reads, changes nothing
    const before = storeFiles(dir);
    const sleeper = cliSpawn(['hash', '/dev/zero']);
    const start = fs.readFileSync(`/proc/${sleeper.pid}/stat`, 'utf8').split(') ')[1].split(' ')[19];
    fs.writeFileSync(path.join(dir, '.replica', 'lock'), JSON.stringify({ pid: sleeper.pid, start, command: 'run', at: 'x' }));
    try {
      assert.equal((await cli(['verify', '--config', cfg])).code, 75, 'updating verify needs the lock');
      const r = await cli(['verify', '--json', '--all', '--no-update', '--config', cfg]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal((json(r) as Scrub).targets[0].read, 20);
      assert.deepEqual(storeFiles(dir), before, 'no store file changed');
    } finally {
      sleeper.kill('SIGKILL');
      await exited(sleeper);
      fs.rmSync(path.join(dir, '.replica', 'lock'), { force: true });
    }
    rmTree(dir);
  });
});

describe('replica retry and ignore', () => {
  it('retry gives failed copies their attempts back; ignore records when and why, does not count against exit 0, and a change of the file makes it pending again', async () => {
    const dir = tmpDir();
    const src = path.join(dir, 'src');
    fs.mkdirSync(src);
    const f = path.join(src, 'secret.dat');
    fs.writeFileSync(f, 'x');
    fs.writeFileSync(path.join(src, 'ok.dat'), 'y');
    age(f); age(path.join(src, 'ok.dat'));
    fs.chmodSync(f, 0); // root reads it anyway: make it fail on the target side instead
    fs.chmodSync(f, 0o644);
    // a directory where the copy must go makes the copy fail on target a, every attempt
    fs.mkdirSync(onTarget(path.join(dir, 'ta'), 'h', src, 'secret.dat'), { recursive: true });
    const cfg = writeConfig(dir, { host: 'h', sources: [src], targets: [{ name: 'a', url: 'ta' }], retry: { maxAttempts: 1, backoff: '0s', maxBackoff: '0s' } });
    assert.equal((await cli(['run', '--config', cfg])).code, 1);
    assert.equal((await cli(['run', '--json', '--config', cfg])).code, 1, 'attempts used up: still failing');
    const before = json(await cli(['where-is', '--json', 'secret.dat', '--config', cfg]));
    assert.equal(before[0].targets.a.state, 'failed');
    const retried = await cli(['retry', '--json', '--config', cfg]);
    assert.equal(retried.code, 0, retried.stderr);
    assert.equal(json(retried).files, 1);
    fs.rmdirSync(onTarget(path.join(dir, 'ta'), 'h', src, 'secret.dat'));
    assert.equal((await cli(['run', '--config', cfg])).code, 0, 'the retried copy goes through');

    // ignore: a file that cannot be copied is set aside with a reason
    fs.writeFileSync(f, 'new content');
    age(f, 1000);
    fs.mkdirSync(path.join(dir, 'ta', 'h', src.slice(1), 'sub'), { recursive: true });
    const g = path.join(src, 'sub');
    fs.mkdirSync(g);
    fs.writeFileSync(path.join(g, 'bad.dat'), 'z');
    age(path.join(g, 'bad.dat'));
    fs.mkdirSync(onTarget(path.join(dir, 'ta'), 'h', src, 'sub/bad.dat'));
    assert.equal((await cli(['run', '--config', cfg])).code, 1);
    const ign = await cli(['ignore', 'bad.dat', '--reason', 'known bad sector', '--config', cfg]);
    assert.equal(ign.code, 0, ign.stderr);
    assert.match(ign.stdout, /1 copy ignored \(known bad sector\)/);
    const w = json(await cli(['where-is', '--json', 'bad.dat', '--config', cfg]));
    assert.equal(w[0].targets.a.state, 'ignored');
    const st = json(await cli(['status', '--json', '--config', cfg]));
    assert.equal(st.targets[0].ignored.files, 1);
    assert.deepEqual(st.targets[0].ignoredFiles.map((x: { path: string; reason: string }) => [x.path, x.reason]), [[path.join(g, 'bad.dat'), 'known bad sector']]);
    assert.equal((await cli(['run', '--config', cfg])).code, 0, 'an ignored copy does not count against exit 0');
    const store = path.join(dir, '.replica');
    const mj = JSON.parse(monitor(store, '--format', 'json').out);
    assert.deepEqual(mj.hosts[0].targets[0].ignoredFiles.map((x: { reason: string }) => x.reason), ['known bad sector']);
    assert.match(monitor(store, '--format', 'html').out, /<table class="f" id="ignored">.*bad\.dat<\/td><td>known bad sector<\/td>/s);
    assert.match(monitor(store).out, /ignored copies \(replica ignore\):\n {2}h\/a ignored since .*bad\.dat \(known bad sector\)/);
    fs.writeFileSync(path.join(g, 'bad.dat'), 'changed');
    age(path.join(g, 'bad.dat'), 100);
    assert.equal((await cli(['run', '--config', cfg])).code, 1, 'changed: pending again, and failing again');
    assert.equal((await cli(['ignore', '--config', cfg])).code, 2);
    assert.equal((await cli(['retry', '--target', 'zz', '--config', cfg])).code, 2);
    // a typo matches nothing the store knows: said, exit 1, nothing changed (the other argument still counts)
    const typo = await cli(['retry', '--json', 'bad.dat', 'bda.dat', '--config', cfg]);
    assert.equal(typo.code, 1);
    assert.match(typo.stderr, /retry: nothing known matches bda\.dat/);
    assert.equal(json(typo).files, 1);
    const typo2 = await cli(['ignore', '/no/such/file', '--config', cfg]);
    assert.equal(typo2.code, 1);
    assert.match(typo2.stderr, /ignore: nothing known matches \/no\/such\/file/);
    assert.match(typo2.stdout, /^0 copies ignored/);
    rmTree(dir);
  });
});

describe('the scrub in replica watch', () => {
  it('re-reads copies on its own (status coverage rises to 100%), and a corrupted copy it finds is repaired without an operator', async () => {
    const { spawn } = await import('node:child_process');
    const { CLI, until } = await import('../helpers.js');
    const dir = tmpDir();
    const src = path.join(dir, 'src');
    fs.mkdirSync(src);
    for (let i = 0; i < 5; i++) { fs.writeFileSync(path.join(src, `f${i}.dat`), crypto.randomBytes(10_000)); age(path.join(src, `f${i}.dat`)); }
    const cfg = writeConfig(dir, { host: 'h', sources: [src], targets: [{ name: 'a', url: 'ta' }], verify: { every: '6s', budget: '100GiB' }, heartbeat: '1s', rescan: '1h' });
    assert.equal((await cli(['run', '--config', cfg])).code, 0);
    const coverage = async () => (json(await cli(['status', '--json', '--config', cfg])).targets[0].scrub as { coverage: number }).coverage;
    await until(async () => (await coverage()) === 0, 20_000, 500); // every copy's verification is now older than 6 s
    assert.match((await cli(['status', '--config', cfg])).stdout, /scrub: 0% of verified copies read back within 6s; oldest verification/);
    const agent = spawn(process.execPath, [CLI, 'watch', '--config', cfg], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    agent.stderr!.on('data', (d) => (err += d));
    try {
      await until(async () => (await coverage()) === 1, 30_000, 300);
      const onA = onTarget(path.join(dir, 'ta'), 'h', src, 'f2.dat');
      const b = fs.readFileSync(onA);
      b[5] ^= 0xff;
      fs.writeFileSync(onA, b);
      await until(() => fs.readFileSync(onA).equals(fs.readFileSync(path.join(src, 'f2.dat'))), 30_000, 200);
      assert.match(err, /scrub: .*f2\.dat on a: \[mismatch\]/);
    } finally {
      agent.kill('SIGTERM');
      await exited(agent);
    }
    assert.equal((await cli(['verify', '--all', '--config', cfg])).code, 0);
    rmTree(dir);
  });
});
