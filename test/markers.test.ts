import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MarkerScan, manifestHash, unmarked } from '../dist/lib/backup/markers.js';
import { initHasher } from '../dist/lib/hash/xxh64.js';
import type { Rec } from '../dist/lib/store/model.js';

const m = (dirs = '*', completeAfterMs = 60_000) => ({ source: '/d', dirs, completeAfterMs, name: '.replica-complete.json' });
const rec = (f: number, extra: Partial<Rec> = {}): Rec => ({ z: 10, m: 0, f, s: f, h: '0123456789abcdef', t: { a: `v ${f} ${f}` }, ...extra });

describe('completeness markers: which directories are complete (backup/markers.ts)', () => {
  it('a newer sibling (numbers compared as numbers) completes a directory from when it appeared; the newest waits for completeAfter', () => {
    const s = new MarkerScan([m()]);
    s.add('/d/9/x', rec(1000));
    s.add('/d/10/x', rec(5000));
    s.add('/d/10/sub/y', rec(6000));
    s.add('/d/top-file', rec(1000)); // not in a selected directory
    const at = (now: number) => Object.fromEntries(s.dirs(now).map((d) => [d.dir, d.completeAt]));
    assert.deepEqual(at(5500), { '/d/9': 5000, '/d/10': undefined }, '"10" sorts after "9"');
    assert.deepEqual(at(66_000), { '/d/9': 5000, '/d/10': 66_000 }, 'quiet for completeAfter since its last change');
    assert.equal(s.dirs(66_000).find((d) => d.dir === '/d/10')!.files.length, 2, 'files of subdirectories count');
  });

  it('a file still changing keeps it open; deleted files, symlinks and a source file named like the marker are not its files; deeper globs select deeper directories', () => {
    const s = new MarkerScan([m('*/*')]);
    s.add('/d/a/1/x', rec(1000));
    s.add('/d/a/1/y', { ...rec(1000), s: undefined });
    s.add('/d/a/2/x', rec(1000));
    s.add('/d/a/2/gone', rec(1000, { d: 1500 }));
    s.add('/d/a/2/link', rec(1000, { l: 'x' }));
    s.add('/d/a/2/.replica-complete.json', rec(1000));
    const dirs = s.dirs(100_000);
    assert.deepEqual(dirs.map((d) => [d.dir, d.files.map(([p]) => p)]), [['/d/a/1', ['/d/a/1/x']], ['/d/a/2', ['/d/a/2/x']]]);
    assert.equal(dirs[0].completeAt, 1000, 'the newer sibling /d/a/2 appeared at 1000, though /d/a/1 has a file still changing');
    assert.equal(dirs[1].completeAt, 61_500, 'the deletion at 1500 was its last change');
  });

  it('the manifest hash is of the sorted manifest lines; a marker is unmarked until the store records that hash on every target', async () => {
    await initHasher();
    const s = new MarkerScan([m()]);
    s.add('/d/1/b', rec(1, { h: '1111111111111111' }));
    s.add('/d/1/a', rec(1, { h: '2222222222222222' }));
    s.add('/d/2/a', rec(2));
    const dirs = s.dirs(10);
    const { hashBytes } = await import('../dist/lib/hash/xxh64.js');
    const h = manifestHash('h', dirs[0]);
    assert.equal(h, hashBytes(Buffer.from('2222222222222222  h/d/1/a\n1111111111111111  h/d/1/b\n')));
    const st = { files: 2, bytes: 20, manifestXxh64: h, writtenAt: '' };
    assert.deepEqual(unmarked('h', dirs, ['a', 'b'], { '/d/1': { a: st } }).map((u) => [u.dir, u.targets]), [['/d/1', ['b']]]);
    assert.deepEqual(unmarked('h', dirs, ['a'], { '/d/1': { a: { ...st, manifestXxh64: 'stale' } } })[0].targets, ['a']);
  });
});
