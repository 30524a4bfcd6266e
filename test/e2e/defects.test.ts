import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { spawn, execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { CLI, age, cli, exited, json, mountTmpfs, onTarget, rmTree, tmpDir, treeDigest, until, writeConfig } from '../helpers.js';
import { PathFilter } from '../../dist/lib/scan/filter.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A source dir with aged files; returns its real path. */
function source(dir: string, files: Record<string, string | Buffer>): string {
  const src = path.join(dir, 'src');
  for (const [rel, data] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(src, rel)), { recursive: true });
    fs.writeFileSync(path.join(src, rel), data);
    age(path.join(src, rel));
  }
  fs.mkdirSync(src, { recursive: true });
  return fs.realpathSync(src);
}

describe('include and exclude globs: each pattern on its own', () => {
  it('every shape: top level, nested, dotfiles, negation, braces, ./ and / prefixes', () => {
    const f = new PathFilter(['**/*.dat', '**/*.tmp'], []);
    for (const p of ['d.dat', 'a/d.dat', 'a/b/c.tmp', '.hidden.dat', 'a/.h/x.dat']) assert.equal(f.file(p), true, p);
    for (const p of ['d.fits', 'a/d.datx']) assert.equal(f.file(p), false, p);
    const braces = new PathFilter(['**/*.{dat,fits}'], []);
    assert.equal(braces.file('x.fits'), true);
    assert.equal(braces.file('y/x.dat'), true);
    assert.equal(braces.file('x.tmp'), false);
    const neg = new PathFilter(['**/*.dat', '!**/skip.dat'], ['**/*.tmp', '!keep.tmp']);
    assert.equal(neg.file('a/skip.dat'), false);
    assert.equal(neg.file('a/ok.dat'), true);
    const excl = new PathFilter([], ['**/*.tmp', '!keep.tmp']);
    assert.equal(excl.file('keep.tmp'), true, 'a negated exclude keeps the file');
    assert.equal(excl.file('x/drop.tmp'), false);
    const anchored = new PathFilter(['./top/*.dat', '/other/*.dat'], ['./cache/**']);
    assert.equal(anchored.file('top/a.dat'), true);
    assert.equal(anchored.file('other/a.dat'), true);
    assert.equal(anchored.file('x/top/a.dat'), false);
    assert.equal(anchored.dir('cache'), false, 'an excluded directory is pruned');
  });

  it('two include patterns on a source keep its top-level files (global and per-source patterns); check prints keep/drop per source', async () => {
    const dir = tmpDir();
    const src = source(dir, { 'd.dat': 'a', 'x.tmp': 'b', 'sub/e.dat': 'c', 'sub/f.fits': 'd', 'cache/g.dat': 'e', '.DS_Store': 'f' });
    const cfg = writeConfig(dir, { host: 'm', sources: [{ path: src, include: ['**/*.dat', '**/*.tmp'], exclude: ['cache/**'] }], exclude: ['**/.DS_Store'], targets: [{ name: 'a', url: 'ta' }] });
    const r = await cli(['run', '--config', cfg]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual([...treeDigest(onTarget(path.join(dir, 'ta'), 'm', src)).keys()].sort(), ['d.dat', 'sub/e.dat', 'x.tmp']);
    const c = await cli(['check', '--json', '--config', cfg]);
    const item = json(c).find((i: { what: string }) => i.what === `source ${src}`);
    assert.deepEqual([item.kept, item.dropped], [3, 3]);
    const none = writeConfig(dir, { host: 'm', sources: [{ path: src, include: ['**/*.nothing'] }], targets: [{ name: 'a', url: 'ta' }] }, 'none.json');
    const c2 = await cli(['check', '--config', none]);
    assert.equal(c2.code, 1);
    assert.match(c2.stdout, /PROBLEM source .*keep 0 files and drop 6: every file is dropped/);
    rmTree(dir);
  });
});

describe('changes the mtime check alone misses', () => {
  it('same size, new bytes, mtime put back (touch -r): new-files lists it, run copies it again', async () => {
    const dir = tmpDir();
    const src = source(dir, { 'f.dat': 'version one' });
    const cfg = writeConfig(dir, { host: 'm', sources: [src], targets: [{ name: 'a', url: 'ta' }], settle: '1s' });
    assert.equal((await cli(['run', '--config', cfg])).code, 0);
    const f = path.join(src, 'f.dat');
    const st = fs.statSync(f);
    fs.writeFileSync(f, 'version two');
    fs.utimesSync(f, st.atime, st.mtime); // touch -r: the mtime is the old one
    await sleep(1100);
    const nf = await cli(['new-files', '--config', cfg]);
    assert.equal(nf.stdout, `${f}\n`);
    const r = await cli(['run', '--config', cfg]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(fs.readFileSync(path.join(onTarget(path.join(dir, 'ta'), 'm', src), 'f.dat'), 'utf8'), 'version two');
    rmTree(dir);
  });
});

describe('a torn copy never replaces a good one', () => {
  it('a same-size in-place overwrite during the copy: the copy is not published, the previous verified copy stays; the next run copies the new content', async () => {
    const dir = tmpDir();
    // 10 MiB at 2 MiB/s: the source is read a few MiB ahead of what is sent, never all of it at once
    const v1 = crypto.randomBytes(10 << 20);
    const src = source(dir, { 'img.fits': v1 });
    const cfg = writeConfig(dir, { host: 'm', sources: [src], targets: [{ name: 'a', url: 'ta', bwlimit: '2MiB', concurrency: 1 }] });
    assert.equal((await cli(['run', '--config', cfg])).code, 0);
    const onT = path.join(onTarget(path.join(dir, 'ta'), 'm', src), 'img.fits');
    const f = path.join(src, 'img.fits');
    fs.writeFileSync(f, crypto.randomBytes(10 << 20));
    age(f, 7200);
    const child = spawn(process.execPath, [CLI, 'run', '--log-level', 'verbose', '--config', cfg], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (d) => (err += d));
    await until(() => /hash took/.test(err), 30_000, 10);
    await sleep(1000); // img.fits is being copied: about 2 MiB sent, the end not read yet
    const fd = fs.openSync(f, 'r+');
    fs.writeSync(fd, crypto.randomBytes(64 << 10), 0, 64 << 10, 9 << 20); // in place, same size, near the end
    fs.closeSync(fd);
    assert.equal(await exited(child), 1);
    assert.match(err, /changed/);
    assert.deepEqual(fs.readFileSync(onT), v1, 'the previous verified copy is still there, whole');
    await sleep(1100);
    const r = await cli(['run', '--config', cfg]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(fs.readFileSync(onT), fs.readFileSync(f));
    rmTree(dir);
  });
});

describe('stale temp files', () => {
  it('kill -9 during a copy, then the source directory removed: the next run removes the temp file anyway', async () => {
    const dir = tmpDir();
    const src = source(dir, { 'gone/big.bin': crypto.randomBytes(4 << 20), 'stays.dat': 'x' });
    const cfg = writeConfig(dir, { host: 'm', sources: [src], targets: [{ name: 'a', url: 'ta', bwlimit: '1MiB' }] });
    const tdir = path.join(onTarget(path.join(dir, 'ta'), 'm', src), 'gone');
    const child = spawn(process.execPath, [CLI, 'run', '--config', cfg], { stdio: 'ignore' });
    await until(() => fs.existsSync(tdir) && fs.readdirSync(tdir).some((n) => n.endsWith('.tmp')), 30_000, 20);
    child.kill('SIGKILL'); // the supervisor: its worker dies with it
    await exited(child);
    await sleep(300);
    assert.ok(fs.readdirSync(tdir).some((n) => n.endsWith('.tmp')), 'a temp file was left');
    fs.rmSync(path.join(src, 'gone'), { recursive: true });
    const r = await cli(['run', '--config', cfg]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(fs.readdirSync(tdir), [], 'the temp file in a directory never written again is gone');
    rmTree(dir);
  });
});

describe('store fallbacks', () => {
  it('a deleted meta.json, a deleted shard and a shard {"files": null} all come back from the newest snapshot, with a warning', async () => {
    const dir = tmpDir();
    const files: Record<string, string> = {};
    for (let i = 0; i < 40; i++) files[`f${i}`] = `file ${i}`;
    const src = source(dir, files);
    const cfg = writeConfig(dir, { host: 'm', sources: [src], targets: [{ name: 'a', url: 'ta' }], snapshots: 2 });
    assert.equal((await cli(['run', '--config', cfg])).code, 0);
    const store = path.join(dir, '.replica');
    const createdAt = JSON.parse(fs.readFileSync(path.join(store, 'meta.json'), 'utf8')).createdAt;
    const shards = fs.readdirSync(path.join(store, 'files')).filter((n) => JSON.stringify(JSON.parse(fs.readFileSync(path.join(store, 'files', n), 'utf8')).files) !== '{}');
    assert.deepEqual(shards, ['00-of-1.json'], 'a small store is one shard');
    fs.rmSync(path.join(store, 'meta.json'));
    fs.rmSync(path.join(store, 'files', shards[0]));
    const c = await cli(['check', '--config', cfg]);
    assert.doesNotMatch(c.stderr, /TypeError/);
    assert.match(c.stdout, /PROBLEM store: .*meta\.json is unusable \(missing\); using the copy from snapshot/);
    let r = await cli(['run', '--json', '--config', cfg]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(json(r).counts.copied, 0, 'nothing re-copied: every record came back');
    assert.match(r.stderr, /files\/00-of-1\.json is unusable \(missing\); using the copy from snapshot/);
    assert.equal(JSON.parse(fs.readFileSync(path.join(store, 'meta.json'), 'utf8')).createdAt, createdAt);
    fs.writeFileSync(path.join(store, 'files', shards[0]), JSON.stringify({ formatVersion: 1, files: null }));
    r = await cli(['run', '--json', '--config', cfg]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(json(r).counts.copied, 0, 'nothing re-copied: every record came back');
    assert.match(r.stderr, /files\/00-of-1\.json is unusable \(not a replica store file/);
    rmTree(dir);
  });

  it('a full store disk: 74 with one line, no temp file left; a failed snapshot: exit 1, "last run" not ok; a full disk at lock time leaves no lock temp', async () => {
    const dir = tmpDir();
    const src = source(dir, { a: 'x' });
    const storeDir = path.join(dir, 'store');
    mountTmpfs(storeDir, '4m');
    const cfg = writeConfig(dir, { host: 'm', sources: [src], targets: [{ name: 'a', url: 'ta' }], store: 'store', snapshots: 3 });
    assert.equal((await cli(['run', '--config', cfg])).code, 0);
    const filler = path.join(dir, 'store', 'filler');
    /** Fill the store's disk, then leave `pages` 4 KiB pages free. */
    const fill = (pages: number) => {
      fs.writeFileSync(filler, '');
      for (let full = false; !full;) { try { fs.appendFileSync(filler, Buffer.alloc(64 << 10)); } catch { full = true; } }
      for (let full = false; !full;) { try { fs.appendFileSync(filler, Buffer.alloc(4096)); } catch { full = true; } }
      if (pages) fs.truncateSync(filler, fs.statSync(filler).size - pages * 4096);
    };
    const leftovers = (d: string): string[] => fs.readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? leftovers(path.join(d, e.name)) : /\.tmp$/.test(e.name) ? [path.join(d, e.name)] : []));
    const oneLine = (stderr: string) => stderr.trim().split('\n').filter((x) => !x.startsWith('{'));
    fs.writeFileSync(path.join(src, 'b'), crypto.randomBytes(3000));
    age(path.join(src, 'b'));
    fill(1); // room for the lock, not for the store
    const r = await cli(['run', '--config', cfg]);
    assert.equal(r.code, 74, r.stderr);
    assert.equal(oneLine(r.stderr).length, 1, r.stderr);
    assert.match(oneLine(r.stderr)[0], /^replica: store: .*no space left on device/i);
    assert.deepEqual(leftovers(storeDir), [], 'no temp file outlives a failed write');
    fs.rmSync(filler);
    assert.equal((await cli(['run', '--config', cfg])).code, 0, 'the next run with room works');
    // a snapshot that cannot be made (the snapshot directory refuses new entries)
    execFileSync('chattr', ['+i', path.join(storeDir, 'snapshots')]);
    try {
      fs.writeFileSync(path.join(src, 'c'), 'new');
      age(path.join(src, 'c'));
      const s = await cli(['run', '--config', cfg]);
      assert.equal(s.code, 1, s.stderr);
      assert.equal(oneLine(s.stderr).filter((l) => !l.startsWith('PROBLEMS') && !l.startsWith('store snapshot failed')).length, 0, s.stderr);
    } finally {
      execFileSync('chattr', ['-i', path.join(storeDir, 'snapshots')]);
    }
    assert.match((await cli(['status', '--config', cfg])).stdout, /last run: PROBLEMS/);
    assert.equal(fs.readdirSync(path.join(storeDir, 'snapshots')).filter((n) => n.startsWith('.tmp')).length, 0);
    fill(0); // nothing free: not even the lock can be written
    const l = await cli(['run', '--config', cfg]);
    assert.equal(l.code, 74, l.stderr);
    assert.equal(oneLine(l.stderr).length, 1, l.stderr);
    assert.match(oneLine(l.stderr)[0], /cannot take the lock/);
    assert.deepEqual(fs.readdirSync(storeDir).filter((n) => n.startsWith('lock')), []);
    rmTree(dir);
  });
});

describe('a directory replaced by a symlink', () => {
  it('is recorded as a link; the old directory\'s copies are left alone; runs exit 0', async () => {
    const dir = tmpDir();
    const src = source(dir, { 'd/one.dat': '1', 'd/two.dat': '2' });
    const cfg = writeConfig(dir, { host: 'm', sources: [src], targets: [{ name: 'a', url: 'ta' }] });
    assert.equal((await cli(['run', '--config', cfg])).code, 0);
    fs.rmSync(path.join(src, 'd'), { recursive: true });
    fs.symlinkSync('/elsewhere', path.join(src, 'd'));
    for (let i = 0; i < 2; i++) {
      const r = await cli(['run', '--config', cfg]);
      assert.equal(r.code, 0, r.stderr);
    }
    const t = onTarget(path.join(dir, 'ta'), 'm', src);
    assert.deepEqual(fs.readdirSync(path.join(t, 'd')).sort(), ['one.dat', 'two.dat']);
    const s = json(await cli(['status', '--json', '--config', cfg]));
    assert.equal(s.targets[0].failed.files, 0);
    rmTree(dir);
  });
});

describe('reporting', () => {
  it('a target removed from the config is shown as removed (with what it holds) by status and the monitor, never as failing', async () => {
    const dir = tmpDir();
    const src = source(dir, { 'f': 'x' });
    const gone = path.join(dir, 'gone');
    fs.mkdirSync(gone);
    const cfg = writeConfig(dir, { host: 'm', sources: [src], targets: [{ name: 'a', url: 'ta' }, { name: 'usb', url: path.join(gone, 'b'), mount: gone }] });
    assert.equal((await cli(['run', '--config', cfg])).code, 1); // usb not mounted: lastError recorded
    writeConfig(dir, { host: 'm', sources: [src], targets: [{ name: 'a', url: 'ta' }] });
    assert.equal((await cli(['run', '--config', cfg])).code, 0);
    const st = await cli(['status', '--config', cfg]);
    assert.match(st.stdout, /target usb .*REMOVED from the config/);
    const mon = await cli(['--version']); // warm
    assert.equal(mon.code, 0);
    const { spawnSync } = await import('node:child_process');
    const m = spawnSync(process.execPath, [CLI.replace('replica.js', 'replica-monitor.js'), path.join(dir, '.replica'), '--format', 'json'], { encoding: 'utf8' });
    assert.equal(m.status, 0, m.stdout + m.stderr);
    assert.ok(JSON.parse(m.stdout).hosts[0].targets.find((t: { name: string }) => t.name === 'usb').removedAt);
    rmTree(dir);
  });

  it('--log-level is validated (exit 2) and accepts any case', async () => {
    const dir = tmpDir();
    const src = source(dir, { f: 'x' });
    const cfg = writeConfig(dir, { sources: [src], targets: [{ name: 'a', url: 'ta' }] });
    const bad = await cli(['status', '--log-level', 'loud', '--config', cfg]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--log-level: expected one of error, warn, info, verbose, debug/);
    const ok = await cli(['run', '--log-level', 'WARN', '--config', cfg, '--target', 'nope']);
    assert.equal(ok.code, 2);
    assert.match(ok.stderr, /--target: no target named "nope"/, 'errors still logged at WARN');
    rmTree(dir);
  });

  it('check never claims what it did not establish, and agrees with run about config errors (S3 key variable unset, tape)', async () => {
    const dir = tmpDir();
    const src = source(dir, { f: 'x' });
    // the tape emulator without its capacity: a config error
    const cfg = writeConfig(dir, { sources: [src], targets: [{ name: 'a', url: 'ta' }, { name: 'c', url: 's3://bucket/x', endpoint: 'http://127.0.0.1:9', accessKeyEnv: 'REPLICA_TEST_UNSET_KEY', secretKeyEnv: 'REPLICA_TEST_UNSET_SECRET' }, { name: 'lto', url: `tape://${dir}/emu` }] });
    const r = await cli(['check', '--json', '--config', cfg]);
    assert.equal(r.code, 78);
    const items = json(r);
    for (const n of ['c', 'lto']) {
      const it = items.find((i: { what: string }) => i.what === `target ${n}`);
      assert.equal(it.ok, false);
      assert.equal(it.configError, true);
      assert.equal(it.reachable, undefined, `${n}: nothing established`);
      assert.equal(it.authenticated, undefined);
    }
    assert.equal((await cli(['run', '--config', cfg])).code, 78);
    rmTree(dir);
  });

  it('with no config from the cwd upward, the config is found in $XDG_CONFIG_HOME/replica', async () => {
    const dir = tmpDir();
    const src = source(dir, { f: 'x' });
    fs.mkdirSync(path.join(dir, 'xdg', 'replica'), { recursive: true });
    writeConfig(path.join(dir, 'xdg', 'replica'), { sources: [src], targets: [{ name: 'a', url: path.join(dir, 'ta') }] });
    const r = await cli(['status', '--json'], { cwd: '/', env: { XDG_CONFIG_HOME: path.join(dir, 'xdg') } });
    assert.equal(r.code, 0, r.stderr);
    const none = await cli(['status'], { cwd: '/', env: { XDG_CONFIG_HOME: path.join(dir, 'nothing') } });
    assert.equal(none.code, 78);
    assert.match(none.stderr, /then in \/etc\/replica and .*nothing\/replica/);
    rmTree(dir);
  });

  it('run is quiet off a terminal when all is well (-v prints the summary); failures go to stderr; 75 on a terminal says who holds the lock', async () => {
    const dir = tmpDir();
    const src = source(dir, { f: 'x' });
    const cfg = writeConfig(dir, { sources: [src], targets: [{ name: 'a', url: 'ta' }] });
    const quiet = await cli(['run', '--config', cfg]);
    assert.equal(quiet.code, 0);
    assert.equal(quiet.stdout, '');
    assert.match((await cli(['run', '-v', '--config', cfg])).stdout, /^ok: /);
    fs.mkdirSync(path.join(src, 'locked'));
    fs.writeFileSync(path.join(src, 'locked', 'g'), 'y');
    age(path.join(src, 'locked', 'g'));
    fs.chmodSync(path.join(src, 'locked', 'g'), 0);
    const drop = ['--inh-caps=-dac_override,-dac_read_search', '--bounding-set=-dac_override,-dac_read_search'];
    let out = '';
    try { execFileSync('setpriv', [...drop, process.execPath, CLI, 'run', '--config', cfg], { stdio: 'pipe' }); } catch (e) { out = String((e as { stdout: Buffer }).stdout); assert.match(String((e as { stderr: Buffer }).stderr), /PROBLEMS: /); }
    assert.equal(out, '', 'failures go to stderr, not stdout');
    fs.chmodSync(path.join(src, 'locked', 'g'), 0o644);
    const holder = spawn(process.execPath, [CLI, 'watch', '--config', cfg], { stdio: 'ignore' });
    await until(() => fs.existsSync(path.join(dir, '.replica', 'lock')), 20_000);
    const tty = execFileSync('script', ['-qfec', `${process.execPath} ${CLI} run --config ${cfg}; echo "exit=$?"`, '/dev/null'], { encoding: 'utf8' });
    assert.match(tty, /locked by pid \d+, replica watch, since \S+/);
    assert.match(tty, /exit=75/);
    holder.kill('SIGTERM');
    await exited(holder);
    rmTree(dir);
  });

  it('a lock naming a live pid but no start time: taken over (with a warning) once it is over an hour old, 75 before', async () => {
    const dir = tmpDir();
    const src = source(dir, { f: 'x' });
    const cfg = writeConfig(dir, { sources: [src], targets: [{ name: 'a', url: 'ta' }] });
    fs.mkdirSync(path.join(dir, '.replica'));
    const lock = path.join(dir, '.replica', 'lock');
    fs.writeFileSync(lock, JSON.stringify({ pid: 1, command: 'run', at: 'long ago' }));
    assert.equal((await cli(['run', '--config', cfg])).code, 75);
    const old = new Date(Date.now() - 2 * 3600_000);
    fs.utimesSync(lock, old, old);
    const r = await cli(['run', '--config', cfg]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /taking over the lock of pid 1 .*could not be proven live/);
    rmTree(dir);
  });

  it('new-files lists a name that is not valid UTF-8: escaped, and raw with -0', async () => {
    const dir = tmpDir();
    const src = source(dir, { ok: 'x' });
    const raw = Buffer.concat([Buffer.from(`${src}/bad-`), Buffer.from([0xff, 0xfe]), Buffer.from('.dat')]);
    fs.writeFileSync(raw, 'data');
    const cfg = writeConfig(dir, { sources: [src], targets: [{ name: 'a', url: 'ta' }] });
    const r = await cli(['new-files', '--config', cfg]);
    assert.match(r.stdout, new RegExp(`^${src}/bad-\\\\xff\\\\xfe\\.dat$`, 'm'));
    const { spawnSync } = await import('node:child_process');
    const z = spawnSync(process.execPath, [CLI, 'new-files', '-0', '--config', cfg]);
    assert.ok(z.stdout.includes(Buffer.concat([raw, Buffer.from([0])])), 'raw bytes with -0');
    const j = json(await cli(['new-files', '--json', '--config', cfg]));
    const e = j.find((x: { unsupportedName?: boolean }) => x.unsupportedName);
    assert.deepEqual(Buffer.from(e.pathBytes, 'base64'), raw);
    rmTree(dir);
  });

  it('a SIGTERM right after start (before any work) still ends run cleanly with 130', async () => {
    const dir = tmpDir();
    const src = source(dir, { f: 'x' });
    const cfg = writeConfig(dir, { sources: [src], targets: [{ name: 'a', url: 'ta' }] });
    /** Has the process started its worker (its handlers are installed before that)? */
    const started = (pid: number) => { try { return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim() !== ''; } catch { return false; } };
    for (const delay of [0, 50, 150, 300]) {
      const child = spawn(process.execPath, [CLI, 'run', '--config', cfg], { stdio: 'ignore' });
      // as early as replica's own code runs: the moment it has started its worker, before any work
      await until(() => started(child.pid!), 10_000, 1);
      await sleep(delay);
      child.kill('SIGTERM');
      const code = await exited(child);
      assert.ok(code === 130 || code === 0, `SIGTERM ${delay} ms after the handler was installed: ${code}`);
    }
    rmTree(dir);
  });
});
