import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { ROOT, age, cli, json, mountTmpfs, onTarget, rmTree, tmpDir, writeConfig } from '../helpers.js';

const monitor = (...args: string[]): { code: number; out: string } => {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'dist/bin/replica-monitor.js'), ...args], { encoding: 'utf8' });
  return { code: r.status ?? -1, out: r.stdout };
};
const AGE_MS = 2500;

/** A source of `n` aged files with random bytes; returns their paths and contents. */
function makeSource(dir: string, n: number): { src: string; files: Map<string, Buffer> } {
  const src = path.join(dir, 'src');
  const files = new Map<string, Buffer>();
  for (let i = 0; i < n; i++) {
    const p = path.join(src, `${String(10000 + Math.floor(i / 3))}`, `f${i}.dat`);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    const data = crypto.randomBytes(3000 + i);
    fs.writeFileSync(p, data);
    age(p);
    files.set(p, data);
  }
  return { src, files };
}

describe('deleteLocalAfter (SupRsync --delete-local-after): the built CLI on real files', () => {
  it('removes a source only after the age on every target, never while a mount target is unmounted; the age counts from the last target', async () => {
    const dir = tmpDir();
    const { src, files } = makeSource(dir, 4);
    const usb = path.join(dir, 'usb');
    const disk2 = path.join(dir, 'disk2'); // the usb disk's contents, bind-mounted at usb (they survive an unmount)
    fs.mkdirSync(usb);
    fs.mkdirSync(disk2);
    const plug = () => execFileSync('mount', ['--bind', disk2, usb]);
    const cfg = writeConfig(dir, { host: 'h', sources: [src], deleteLocalAfter: `${AGE_MS / 1000}s`, targets: [{ name: 'disk', url: 'disk' }, { name: 'usb', url: path.join(usb, 'b'), mount: usb }] });
    try {
      const first = await cli(['run', '--config', cfg]);
      assert.equal(first.code, 1, 'usb is not mounted');
      await sleep(AGE_MS + 200);
      plug();
      const copied = await cli(['run', '-v', '--config', cfg]);
      assert.equal(copied.code, 0, copied.stderr);
      assert.doesNotMatch(copied.stdout, /removed/, 'the copies on disk are old enough, those on usb are new: the age counts from the last target');
      assert.equal([...files.keys()].filter((f) => fs.existsSync(f)).length, 4);
      const st = json(await cli(['status', '--json', '--config', cfg]));
      assert.deepEqual([st.localRemoval.removed.files, st.localRemoval.waiting.files], [0, 4]);
      assert.match((await cli(['status', '--config', cfg])).stdout, /deleteLocalAfter 3s: 0 source files removed \(0 B freed\), 4 verified everywhere waiting for their age/);
      execFileSync('umount', [usb]);
      await sleep(AGE_MS + 200);
      const blocked = await cli(['run', '-v', '--config', cfg]);
      assert.equal(blocked.code, 1);
      assert.match(blocked.stderr, /deleteLocalAfter: 4 source files due for removal, none removed: target usb \(\[not-mounted\]/);
      assert.equal([...files.keys()].filter((f) => fs.existsSync(f)).length, 4, 'nothing removed while a target is unmounted');
      plug();
      const dry = await cli(['run', '--dry-run', '--config', cfg]);
      assert.equal(dry.stdout.split('\n').filter((l) => l.startsWith('would remove ')).length, 4);
      assert.equal([...files.keys()].filter((f) => fs.existsSync(f)).length, 4, 'a dry run removes nothing');
      const rm = await cli(['run', '-v', '--config', cfg]);
      assert.equal(rm.code, 0, rm.stderr);
      assert.match(rm.stdout, /deleteLocalAfter: removed 4 source files \(11\.7 KiB freed\)/);
      assert.equal([...files.keys()].filter((f) => fs.existsSync(f)).length, 0);
      for (const [f, data] of files) {
        assert.deepEqual(fs.readFileSync(onTarget(path.join(dir, 'disk'), 'h', src, path.relative(src, f))), data);
        assert.deepEqual(fs.readFileSync(onTarget(path.join(disk2, 'b'), 'h', src, path.relative(src, f))), data);
      }
      const after = json(await cli(['status', '--json', '--config', cfg]));
      assert.deepEqual([after.deleted, after.localRemoval.removed.files, after.localRemoval.removed.bytes], [0, 4, [...files.values()].reduce((n, d) => n + d.length, 0)]);
      assert.equal(json(await cli(['new-files', '--json', '--config', cfg])).length, 0, 'a removed file is not new');
      const mon = monitor(path.join(dir, '.replica'));
      assert.equal(mon.code, 0);
      assert.match(mon.out, /h: 4 removed \(11\.7 KiB freed\), 0 waiting/);
      assert.match(monitor('--format', 'prometheus', path.join(dir, '.replica')).out, /replica_removed_locally_bytes\{host="h"\} 12006/);
      // and it can be got back
      const [one, data] = [...files][0];
      const back = await cli(['restore', one, '--config', cfg]);
      assert.equal(back.code, 0, back.stderr);
      assert.deepEqual(fs.readFileSync(one), data);
      const w = json(await cli(['where-is', '--json', path.basename([...files.keys()][1]), '--config', cfg]));
      assert.ok(w[0].removedLocallyAt);
      // the file restored in place is the same content again: nothing is copied, and it is removed again only
      // deleteLocalAfter after it settled back, not by the next pass
      const again = json(await cli(['run', '--json', '--config', cfg]));
      assert.deepEqual([again.counts.hashed, again.counts.copied, again.counts.removedLocally], [1, 0, 0]);
      assert.ok(fs.existsSync(one), 'not removed again at once');
      await sleep(AGE_MS + 300);
      const later = json(await cli(['run', '--json', '--config', cfg]));
      assert.equal(later.counts.removedLocally, 1);
      assert.equal(fs.existsSync(one), false);
    } finally {
      spawnSync('umount', [usb]);
      rmTree(dir);
    }
  });

  it('at most deleteLocalMax (or --max-delete) per pass; a changed source is not removed; a copy deleted by hand stops that removal until it is re-made', async () => {
    const dir = tmpDir();
    const { src, files } = makeSource(dir, 6);
    const cfg = writeConfig(dir, { host: 'h', sources: [src], deleteLocalAfter: '0s', deleteLocalMax: 2, targets: [{ name: 'a', url: 'ta' }, { name: 'b', url: 'tb' }] });
    const paths = [...files.keys()].sort();
    assert.equal((await cli(['run', '--config', cfg, '--max-delete', '0'])).code, 0);
    assert.equal(paths.filter((f) => fs.existsSync(f)).length, 6, '--max-delete 0 removes nothing');
    // a source changed after it was verified: new content, copied again, not removed in the pass that finds it
    fs.appendFileSync(paths[0], 'more');
    age(paths[0]);
    // a copy deleted by hand on b: the store still says verified, the live check finds it gone
    fs.rmSync(onTarget(path.join(dir, 'tb'), 'h', src, path.relative(src, paths[1])));
    const r = await cli(['run', '-v', '--config', cfg]);
    assert.equal(r.code, 1, 'the missing copy is a problem of this pass');
    assert.match(r.stdout + r.stderr, new RegExp(`not removed: ${paths[1]}: target b: the copy there is missing: it is copied again`));
    assert.match(r.stderr, /removed 1 source files/, 'two were due (deleteLocalMax 2): one kept by the live check');
    assert.ok(fs.existsSync(paths[0]), 'the changed file is copied again first');
    assert.ok(fs.existsSync(paths[1]));
    const r2 = await cli(['run', '-v', '--max-delete', '1', '--config', cfg]);
    assert.equal(r2.code, 0, r2.stderr);
    assert.match(r2.stdout, /removed 1 source files/);
    assert.equal(fs.readFileSync(onTarget(path.join(dir, 'tb'), 'h', src, path.relative(src, paths[1]))).length, files.get(paths[1])!.length, 'the copy was re-made');
    for (let i = 0; i < 4 && paths.some((f) => fs.existsSync(f)); i++) assert.equal((await cli(['run', '--config', cfg])).code, 0);
    assert.equal(paths.filter((f) => fs.existsSync(f)).length, 0);
    const changed = fs.readFileSync(onTarget(path.join(dir, 'ta'), 'h', src, path.relative(src, paths[0])));
    assert.deepEqual(changed, Buffer.concat([files.get(paths[0])!, Buffer.from('more')]), 'the changed content is what was kept');
    rmTree(dir);
  });

  it('a source the agent cannot remove (read-only file system) is reported once, not a crash; retry tries again', async () => {
    const dir = tmpDir();
    const src = path.join(dir, 'src');
    mountTmpfs(src, '4m');
    try {
      const p = path.join(src, 'ro.dat');
      fs.writeFileSync(p, crypto.randomBytes(1000));
      age(p);
      const cfg = writeConfig(dir, { host: 'h', sources: [src], deleteLocalAfter: '0s', targets: [{ name: 'a', url: 'ta' }] });
      assert.equal((await cli(['run', '--config', cfg, '--max-delete', '0'])).code, 0);
      execFileSync('mount', ['-o', 'remount,ro', src]);
      const r = await cli(['run', '--config', cfg]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`cannot remove: ${p}: EROFS: read-only file system, unlink '${p}' \\(\`replica retry\` tries again\\)`));
      const again = await cli(['run', '--config', cfg]);
      assert.equal(again.code, 0, 'reported once');
      assert.doesNotMatch(again.stderr, /cannot remove/);
      assert.match((await cli(['status', '--config', cfg])).stdout, /cannot remove .*ro\.dat: EROFS/);
      assert.match(monitor(path.join(dir, '.replica')).out, /WARNING: deleteLocalAfter could not remove 1 source files/);
      execFileSync('mount', ['-o', 'remount,rw', src]);
      assert.match((await cli(['retry', '--config', cfg])).stdout, /^1 file/);
      assert.equal((await cli(['run', '--config', cfg])).code, 0);
      assert.equal(fs.existsSync(p), false);
    } finally {
      spawnSync('umount', [src]);
      rmTree(dir);
    }
  });
});
