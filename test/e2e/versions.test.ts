import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { ROOT, age, cli, json, onTarget, rmTree, tmpDir, writeConfig } from '../helpers.js';

const monitor = (...args: string[]) => {
  try {
    return execFileSync(process.execPath, [path.join(ROOT, 'dist/bin/replica-monitor.js'), ...args]).toString();
  } catch (err) {
    return (err as { stdout: Buffer }).stdout.toString(); // a WARNING/CRITICAL exit still prints the report
  }
};

/** The versions kept of `file` on a local target base: name -> content, oldest first. */
function versionsOf(base: string, host: string, file: string): [string, string][] {
  const dir = path.join(base, host, '.replica-versions', path.dirname(file));
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).filter((n) => n.startsWith(`${path.basename(file)}@`)).sort()
    .map((n) => [n, fs.readFileSync(path.join(dir, n), 'utf8')]);
}

describe('versions: a verified copy replaced by new content is kept aside', () => {
  it('versions: 2 keeps exactly the two previous contents, named by the replacement time; a truncated source leaves the good copy as a version and is counted as changed after verified', async () => {
    const dir = tmpDir();
    const src = path.join(dir, 'src');
    fs.mkdirSync(src);
    const f = path.join(src, 'img.fits');
    const cfg = writeConfig(dir, { host: 'h', sources: [src], targets: [{ name: 'a', url: 'ta' }], versions: 2, settle: '1s' });
    const live = () => fs.readFileSync(onTarget(path.join(dir, 'ta'), 'h', src, 'img.fits'), 'utf8');
    const contents = ['first content', 'second content', 'third', 'fourth and last'];
    const current: { at: number; mtime: number }[] = []; // a time when content i was the backed-up one, and its mtime
    const beforeAll = Date.now() - 1000;
    for (const [i, c] of contents.entries()) {
      fs.writeFileSync(f, c);
      age(f, 3600 - i * 60); // a new mtime each time, long settled
      const before = Date.now();
      const r = await cli(['run', '--json', '--config', cfg]);
      assert.equal(r.code, 0, r.stderr);
      current.push({ at: Date.now(), mtime: fs.statSync(f).mtimeMs });
      assert.equal(live(), c);
      const kept = versionsOf(path.join(dir, 'ta'), 'h', f);
      assert.deepEqual(kept.map(([, v]) => v), contents.slice(Math.max(0, i - 2), i), `after content ${i + 1}`);
      if (i > 0) {
        const stamp = /@(\d{8}T\d{6}Z)/.exec(kept.at(-1)![0])![1];
        const at = Date.parse(`${stamp.slice(0, 4)}-${stamp.slice(4, 6)}-${stamp.slice(6, 8)}T${stamp.slice(9, 11)}:${stamp.slice(11, 13)}:${stamp.slice(13, 15)}Z`);
        assert.ok(at >= Math.floor(before / 1000) * 1000 && at <= Date.now(), 'named by the time it was replaced');
      }
    }
    // the instrument file is truncated after it was verified: the good copy must survive
    fs.writeFileSync(f, '');
    age(f, 1000);
    assert.equal((await cli(['run', '--config', cfg])).code, 0);
    assert.equal(live(), '');
    assert.deepEqual(versionsOf(path.join(dir, 'ta'), 'h', f).map(([, v]) => v), ['third', 'fourth and last']);
    const st = json(await cli(['status', '--json', '--config', cfg]));
    assert.equal(st.changedAfterVerified, 1);
    assert.match((await cli(['status', '--config', cfg])).stdout, /1 changed after verified/);
    const store = path.join(dir, '.replica');
    assert.match(monitor(store), /^h: 1 files changed after they were verified/m, 'the daily report says so');
    assert.match(monitor(store, '--format', 'prometheus'), /^replica_changed_after_verified_files\{host="h"\} 1$/m);
    assert.equal(JSON.parse(monitor(store, '--format', 'json')).hosts[0].changedAfterVerified, 1);
    // restore --at: each content still kept comes back from its version, with its own mtime; the live one too
    const out = path.join(dir, 'out');
    for (const [i, c] of contents.entries()) {
      const r = await cli(['restore', '--json', '--at', new Date(current[i].at).toISOString(), '--to', out, '--force', f, '--config', cfg]);
      const [res] = json(r) as { ok: boolean; from?: string; version?: string; errors: string[] }[];
      if (i < 2) { // pruned (versions: 2): said, nothing written
        assert.equal(r.code, 1);
        assert.equal(res.ok, false);
        assert.match(res.errors.join(';'), /a: no version there holds that content/);
        continue;
      }
      assert.equal(r.code, 0, r.stderr);
      assert.equal(res.from, 'a');
      assert.match(res.version!, /^\d{8}T\d{6}Z(-\d+)?$/); // -1, -2: a second version of this file in the same second (fast runs)
      assert.equal(fs.readFileSync(path.join(out, f), 'utf8'), c, `content ${i + 1} at its time`);
      assert.equal(Math.round(fs.statSync(path.join(out, f)).mtimeMs), Math.round(current[i].mtime));
    }
    const now = await cli(['restore', '--json', '--at', '1s', '--to', out, f, '--config', cfg]);
    assert.equal(now.code, 0, now.stderr);
    assert.equal(json(now)[0].version, undefined, 'the live copy');
    assert.equal(fs.readFileSync(path.join(out, f), 'utf8'), '');
    const before = await cli(['restore', '--at', new Date(beforeAll - 3600_000).toISOString(), '--to', out, f, '--config', cfg]);
    assert.equal(before.code, 2, 'nothing existed then');
    assert.match(before.stderr, /existed at/);
    assert.equal((await cli(['restore', '--at', 'yesterday', f, '--config', cfg])).code, 2);
    const w = json(await cli(['where-is', '--json', f, '--config', cfg]));
    assert.equal(w[0].previousContents.length, 4, 'the store remembers 2 x versions previous contents');
    // versions are not user files: new-files and the next run see one file, verified
    const again = json(await cli(['run', '--json', '--config', cfg]));
    assert.equal(again.counts.scanned, 1);
    assert.equal(again.counts.copied, 0);
    rmTree(dir);
  });

  it('versions: 0 replaces the copy in place and keeps nothing', async () => {
    const dir = tmpDir();
    const src = path.join(dir, 'src');
    fs.mkdirSync(src);
    const f = path.join(src, 'log.txt');
    const cfg = writeConfig(dir, { host: 'h', sources: [src], targets: [{ name: 'a', url: 'ta' }], versions: 0 });
    fs.writeFileSync(f, 'one');
    age(f);
    assert.equal((await cli(['run', '--config', cfg])).code, 0);
    fs.writeFileSync(f, 'two');
    age(f, 1800);
    assert.equal((await cli(['run', '--config', cfg])).code, 0);
    assert.equal(fs.readFileSync(onTarget(path.join(dir, 'ta'), 'h', src, 'log.txt'), 'utf8'), 'two');
    assert.deepEqual(versionsOf(path.join(dir, 'ta'), 'h', f), []);
    assert.equal(json(await cli(['status', '--json', '--config', cfg])).changedAfterVerified, 1, 'counted whatever is kept');
    rmTree(dir);
  });
});
