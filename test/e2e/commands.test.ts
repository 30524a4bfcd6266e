import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { describe, it, before, after } from 'node:test';
import { age, cli, json, makeTree, ODD_NAMES, rmTree, tmpDir, writeConfig } from '../helpers.js';

describe('commands', () => {
  let dir: string; let src: string; let cfg: string;
  before(async () => {
    dir = tmpDir();
    src = path.join(dir, 'src');
    makeTree(src, 40);
    cfg = writeConfig(dir, { host: 'c', sources: [{ path: src, exclude: ['**/*.skip'] }], targets: [{ name: 'a', url: 'ta' }, { name: 'b', url: 'tb' }], settle: '200ms' });
    assert.equal((await cli(['run', '--config', cfg])).code, 0);
  });
  after(() => rmTree(dir));

  it('new-files lists exactly the files not verified everywhere (scanned now), with --since, --target, -0, --json', async () => {
    assert.equal((await cli(['new-files', '--config', cfg])).stdout, '');
    const fresh = path.join(src, 'new\nline fresh.dat');
    fs.writeFileSync(fresh, 'new');
    fs.writeFileSync(path.join(src, 'old.dat'), 'old');
    age(path.join(src, 'old.dat'), 7200);
    fs.writeFileSync(path.join(src, 'ignored.skip'), 'excluded');
    const all = await cli(['new-files', '-0', '--config', cfg]);
    assert.equal(all.code, 0);
    assert.deepEqual(all.stdout.split('\0').filter(Boolean).sort(), [fresh, path.join(src, 'old.dat')].sort());
    const recent = await cli(['--config', cfg, 'new-files', '--since', '1h', '--json']);
    const list = json(recent);
    assert.deepEqual(list.map((f: { path: string }) => f.path), [fresh]);
    assert.deepEqual(list[0].targets, { a: 'pending', b: 'pending' });
    const iso = await cli(['new-files', '--since', new Date(Date.now() - 10 * 3600_000).toISOString(), '--config', cfg]);
    assert.equal(iso.stdout.split('\n').filter(Boolean).length, 3, 'newline in a name splits the line: use -0');
    assert.equal((await cli(['run', '--target', 'a', '--config', cfg])).code, 0);
    assert.equal((await cli(['new-files', '--target', 'a', '--config', cfg])).stdout, '');
    assert.equal((await cli(['new-files', '--target', 'b', '-0', '--config', cfg])).stdout.split('\0').filter(Boolean).length, 2);
    const bad = await cli(['new-files', '--since', 'yesterday-ish', '--config', cfg]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--since: expected a duration/);
    assert.equal((await cli(['new-files', '--target', 'zz', '--config', cfg])).code, 2);
    assert.equal((await cli(['run', '--config', cfg])).code, 0);
  });

  it('status (text) shows each target, counts, and failures by class', async () => {
    const r = await cli(['status', '--config', cfg]);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^host c {2}agent \d+\.\d+\.\d+/);
    assert.match(r.stdout, /target a \(ta\)\n {2}verified 42 /);
    assert.match(r.stdout, /target b \(tb\)\n {2}verified 42 /);
  });

  it('check reports config, sources, targets, inotify and store; exit 1 when a target is unusable', async () => {
    const r = await cli(['check', '--json', '--config', cfg]);
    assert.equal(r.code, 0, r.stdout);
    const items = json(r);
    assert.deepEqual(items.map((i: { what: string }) => i.what), ['config', `source ${src}`, 'target a', 'target b', 'inotify', 'store', 'scrub']);
    assert.match(items[4].detail, /max_user_watches \d+/);
    const bad = writeConfig(dir, { host: 'c', sources: [src], targets: [{ name: 'usb', url: path.join(dir, 'nomount/b'), mount: path.join(dir, 'nomount') }] }, 'bad.json');
    const r2 = await cli(['check', '--config', bad]);
    assert.equal(r2.code, 1);
    assert.match(r2.stdout, /PROBLEM target usb: NOT reachable: \[not-mounted\]/);
  });

  it('hash prints exactly what `xxhsum -H1` prints, odd names included; unreadable files exit 1', async () => {
    const files = ODD_NAMES.filter((n) => !n.startsWith('-')).map((n, i) => {
      const f = path.join(dir, n);
      fs.writeFileSync(f, Buffer.alloc(i * 977 + (i === 3 ? 5 << 20 : 0), i));
      return f;
    });
    const ours = await cli(['hash', ...files]);
    assert.equal(ours.code, 0);
    assert.equal(ours.stdout, execFileSync('xxhsum', ['-H1', '-q', ...files], { encoding: 'utf8' }));
    const j = json(await cli(['hash', '--json', files[0]]));
    assert.equal(j[0].hash, ours.stdout.slice(0, 16));
    const miss = await cli(['hash', path.join(dir, 'missing')]);
    assert.equal(miss.code, 1);
    assert.match(miss.stderr, /cannot hash .*missing/);
  });

  it('usage: --help shows the exit-code table; unknown commands and options exit 2; --version', async () => {
    const h = await cli(['--help']);
    assert.equal(h.code, 0);
    for (const code of ['0 ', '1 ', '2 ', '74', '75', '78', '130']) assert.match(h.stdout, new RegExp(`^  ${code}`, 'm'));
    assert.equal((await cli([])).code, 2);
    const u = await cli(['frobnicate']);
    assert.equal(u.code, 2);
    assert.match(u.stderr, /unknown command 'frobnicate'/);
    assert.equal((await cli(['run', '--bogus'])).code, 2);
    assert.equal((await cli(['status', '--dry-run'])).code, 2);
    assert.equal((await cli(['status', 'extra'])).code, 2);
    assert.equal((await cli(['hash'])).code, 2);
    assert.equal((await cli(['run', '--target', 'nope', '--config', cfg])).code, 2);
    assert.match((await cli(['--version'])).stdout, /^\d+\.\d+\.\d+\n$/);
  });

  it('logs go to stderr as JSON lines when not a TTY, the first naming version and config', async () => {
    const r = await cli(['status', '--log-level', 'debug', '--config', cfg]);
    const first = JSON.parse(r.stderr.split('\n')[0]);
    assert.match(first.message, /^replica \d+\.\d+\.\d+ status, config /);
    assert.equal(first.config, cfg);
  });

  it('a tape drive target (tape:///dev/nst0) with no tape open: run says so (the tape target is down, exit 1), tape list shows no tapes', async () => {
    const c = writeConfig(dir, { sources: [src], targets: [{ name: 'p', url: 'tape:///dev/nst0' }] }, 'tape.json');
    const r = await cli(['run', '--config', c]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /target down: p: \[not-mounted\] \[p\] no tape open \(replica tape open LABEL\)/);
    const l = await cli(['tape', 'list', '--json', '--config', c]);
    assert.equal(l.code, 0, l.stderr);
    assert.deepEqual(json(l).tapes, []);
  });
});
