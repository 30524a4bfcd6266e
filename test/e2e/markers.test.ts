import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { hashBytes, initHasher } from '../../dist/lib/hash/xxh64.js';
import { ROOT, age, cli, json, mountTmpfs, onTarget, rmTree, tmpDir, writeConfig } from '../helpers.js';

const monitor = (...args: string[]): { code: number; out: string } => {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'dist/bin/replica-monitor.js'), ...args], { encoding: 'utf8' });
  return { code: r.status ?? -1, out: r.stdout };
};
type Marker = { host: string; dir: string; files: number; bytes: number; manifestXxh64: string; completeAt: string; verifiedAt: string; agentVersion: string; writtenAt: string };

describe('completeness markers on a SupRsync-like tree (<5-digit timecode>/<subdirs>/<files>)', () => {
  it('the older timecode is marked once complete and verified, never on a target still missing a file; the newest after completeAfter; a late file rewrites it', async () => {
    await initHasher();
    const dir = tmpDir();
    const src = path.join(dir, 'src');
    const put = (rel: string, data: Buffer) => { const p = path.join(src, rel); fs.mkdirSync(path.dirname(p), { recursive: true }); fs.writeFileSync(p, data); age(p); return p; };
    put('17001/smurf/a.g3', crypto.randomBytes(700 << 10));
    put('17001/smurf/b.g3', crypto.randomBytes(700 << 10));
    put('17001/hk/h.g3', crypto.randomBytes(3000));
    put('17002/hk/h.g3', crypto.randomBytes(2000));
    const small = path.join(dir, 'small'); // a target too small for 17001: its marker must wait there
    mountTmpfs(small, '1m');
    try {
      const cfg = writeConfig(dir, { host: 'h', sources: [src], targets: [{ name: 'a', url: 'ta' }, { name: 'b', url: small }], markers: [{ source: src, dirs: '*', completeAfter: '3s' }], retry: { backoff: '0s', maxBackoff: '0s' } });
      const marker = (base: string, tc: string): Marker | undefined => {
        const f = onTarget(base, 'h', src, `${tc}/.replica-complete.json`);
        return fs.existsSync(f) ? JSON.parse(fs.readFileSync(f, 'utf8')) : undefined;
      };
      const manifestOf = async (tc: string) => {
        const lines = (await cli(['manifest', '--target', 'a', '--config', cfg])).stdout.split('\n').filter((l) => l.includes(`${src}/${tc}/`));
        return { files: lines.length, hash: hashBytes(Buffer.from(lines.map((l) => `${l}\n`).join(''))) };
      };

      const first = await cli(['run', '--config', cfg]);
      assert.equal(first.code, 1, 'b is full');
      const m1 = marker(path.join(dir, 'ta'), '17001');
      assert.ok(m1, '17001 is complete (a newer sibling exists) and verified on a');
      const man = await manifestOf('17001');
      assert.deepEqual([m1.host, m1.dir, m1.files, m1.bytes, m1.manifestXxh64], ['h', path.join(src, '17001'), 3, (1400 << 10) + 3000, man.hash]);
      assert.ok(m1.verifiedAt <= m1.writtenAt && m1.completeAt <= m1.writtenAt);
      assert.equal(marker(small, '17001'), undefined, 'never written where a file of it is not verified');
      assert.equal(marker(path.join(dir, 'ta'), '17002'), undefined, 'the newest is not complete before completeAfter');
      const st = json(await cli(['status', '--json', '--config', cfg]));
      assert.deepEqual(st.markers.unmarked.map((u: { dir: string; targets: string[] }) => [path.basename(u.dir), u.targets]), [['17001', ['b']]]);
      assert.match(monitor(path.join(dir, '.replica')).out, /complete directories not marked yet:\n {2}h: .*17001 complete since .*, no marker on b/);

      execFileSync('mount', ['-o', 'remount,size=8m', small]);
      await sleep(3200);
      const second = await cli(['run', '-v', '--config', cfg]);
      assert.equal(second.code, 0, second.stderr);
      assert.deepEqual(marker(small, '17001')?.manifestXxh64, man.hash, 'written on b once every file is verified there');
      assert.ok(marker(path.join(dir, 'ta'), '17002') && marker(small, '17002'), 'the newest is marked after completeAfter');
      assert.equal(marker(path.join(dir, 'ta'), '17001')?.writtenAt, m1.writtenAt, 'an up-to-date marker is not rewritten');
      assert.deepEqual(json(await cli(['status', '--json', '--config', cfg])).markers, { complete: 2, unmarked: [] });

      put('17001/hk/late.g3', crypto.randomBytes(100)); // a late file in a marked directory
      const third = await cli(['run', '-v', '--config', cfg]);
      assert.equal(third.code, 0, third.stderr);
      const m3 = marker(path.join(dir, 'ta'), '17001')!;
      const man3 = await manifestOf('17001');
      assert.deepEqual([m3.files, m3.manifestXxh64], [4, man3.hash]);
      assert.notEqual(man3.hash, man.hash);
      assert.equal(marker(small, '17001')?.manifestXxh64, man3.hash);
      const w = json(await cli(['where-is', '--json', '.replica-complete.json', '--config', cfg]), );
      assert.deepEqual(w, [], 'a marker is not a backed-up file');
    } finally {
      spawnSync('umount', [small]);
      rmTree(dir);
    }
  });
});
