import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  checkRelPath, isOwnTemp, isReserved, isTempName, staleTemps, storePath, sweepTemps, targetPath, tempName, versionPath, versionTime,
} from '../dist/lib/targets/layout.js';

describe('target layout (targets/layout.ts)', () => {
  it('names copies, shipped stores and versions the same way on every target', () => {
    assert.equal(targetPath('exao1', '/data/a b/f.fits'), 'exao1/data/a b/f.fits');
    assert.equal(storePath('exao1'), '.replica/exao1');
    const at = new Date('2026-11-30T07:05:41.123Z');
    assert.equal(versionPath('exao1', '/data/f.fits', at), 'exao1/.replica-versions/data/f.fits@20261130T070541Z');
    assert.equal(versionPath('exao1', '/data/f.fits', at, 2), 'exao1/.replica-versions/data/f.fits@20261130T070541Z-2');
    assert.equal(versionTime(versionPath('exao1', '/data/f.fits', at, 2)), Math.floor(at.getTime() / 1000) * 1000, 'the stamp, to the second');
    assert.equal(versionTime('exao1/data/f.fits'), undefined);
  });

  it('reserves .replica, .replica-versions and temp names; a user file merely named like them elsewhere is a user file', () => {
    for (const rel of ['.replica/h/meta.json', 'h/.replica-versions/d/f@20260101T000000Z', 'h/d/.replica-0a1b2c3d0001.tmp']) assert.equal(isReserved(rel), true, rel);
    for (const rel of ['h/d/f', 'h/d/.replica/x', 'h/d/.replica-notes.txt']) assert.equal(isReserved(rel), false, rel);
  });

  it('temp names are short and unique; a sweep removes other runs\' temps only', async () => {
    const a = tempName();
    const b = tempName();
    assert.notEqual(a, b);
    assert.ok(isTempName(a) && isOwnTemp(a) && a.length < 32);
    const stale = '.replica-deadbeef0001.tmp';
    assert.deepEqual(staleTemps([a, stale, 'f.fits', '.replica-x']), [stale]);
    const removed: string[] = [];
    const n = await sweepTemps(['d1', 'gone'], async (d) => (d === 'd1' ? [stale, a, 'keep'] : undefined), async (d, name) => { removed.push(`${d}/${name}`); });
    assert.equal(n, 1);
    assert.deepEqual(removed, [`d1/${stale}`]);
  });

  it('refuses paths that could leave the target base', () => {
    for (const bad of ['', '/abs', '../x', 'a/../b', 'a//b', 'a/./b', 'a\0b']) assert.throws(() => checkRelPath('t', bad), /invalid target path/, bad);
    checkRelPath('t', 'h/ok path/ü');
  });
});
