import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  checkRelPath, isOwnTemp, isReserved, isTempName, sortByPathBytes, staleTemps, storePath, sweepTemps, targetPath, tempName, versionPath, versionTime,
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

  it('sorts paths by their UTF-8 bytes (C-locale order), with or without characters past the BMP', () => {
    const byBytes = (xs: string[]) => [...xs].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    const plain = ['/d/b', '/d/a b', '/d/a', '/D/z', '/d/é', '/d/e', '/d/日本', '/d/a/b', '/d/a-b', '/d/\u00ff', '/d/\u07ff', '/d/\u0800'];
    assert.deepEqual(sortByPathBytes(plain, (p) => p), byBytes(plain));
    // U+FFFD is EF BF BD in UTF-8, an emoji F0 9F 98 80: the emoji goes last by bytes, first by UTF-16 code units
    const astral = ['/d/\u{1F600}', '/d/\uFFFD', '/d/\uE000', '/d/a', '/d/\u{10000}'];
    assert.deepEqual(sortByPathBytes(astral, (p) => p), ['/d/a', '/d/\uE000', '/d/\uFFFD', '/d/\u{10000}', '/d/\u{1F600}']);
    assert.deepEqual(sortByPathBytes(astral, (p) => p), byBytes(astral));
    // items, not only strings: each is kept whole
    const recs = plain.map((p, i) => [p, i] as const);
    assert.deepEqual(sortByPathBytes(recs, ([p]) => p).map(([p]) => p), byBytes(plain));
  });

  it('refuses paths that could leave the target base', () => {
    for (const bad of ['', '/abs', '../x', 'a/../b', 'a//b', 'a/./b', 'a\0b', '.', '..', 'a/', 'a/.', 'a/..', './a', '/', '//', 'a/b/']) {
      assert.throws(() => checkRelPath('t', bad), /invalid target path/, bad);
    }
    for (const ok of ['h/ok path/ü', 'a', '...', 'a/...', '.a/b', 'a/..b', 'a/b..', 'a./.b', 'h/.replica-versions/x@20260101T000000Z']) checkRelPath('t', ok);
  });
});
