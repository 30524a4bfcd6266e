import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryTarget } from '../dist/lib/targets/memory.js';
import { bufferSource } from '../dist/lib/targets/source.js';
import { keepPreviousVersion, pruneVersions } from '../dist/lib/backup/versions.js';

describe('keeping versions (backup/versions.ts)', () => {
  it('names a version by the replacement second, -1/-2 on a clash; nothing there: nothing kept; prune keeps the newest', async () => {
    const t = new MemoryTarget('m');
    const put = (text: string) => t.put('h/d/f', bufferSource(Buffer.from(text)));
    const at = new Date('2026-11-30T09:00:00.500Z');
    assert.equal(await keepPreviousVersion(t, 'h', '/d/f', at), undefined, 'no copy yet');
    await put('one');
    assert.equal(await keepPreviousVersion(t, 'h', '/d/f', at), 'h/.replica-versions/d/f@20261130T090000Z');
    await put('two');
    assert.equal(await keepPreviousVersion(t, 'h', '/d/f', at), 'h/.replica-versions/d/f@20261130T090000Z-1');
    await put('three');
    assert.equal(await keepPreviousVersion(t, 'h', '/d/f', new Date('2026-11-30T09:00:01Z')), 'h/.replica-versions/d/f@20261130T090001Z');
    assert.equal(await pruneVersions(t, 'h', '/d/f', 2), 1);
    const left = await t.listVersions('h/d/f');
    assert.deepEqual(left, ['h/.replica-versions/d/f@20261130T090000Z-1', 'h/.replica-versions/d/f@20261130T090001Z']);
    assert.deepEqual(left.map((v) => t.files.get(v)!.data.toString()), ['two', 'three'], 'the oldest went');
    assert.equal(t.files.get('h/d/f')!.data.toString(), 'three', 'the live copy is untouched');
    assert.equal(await pruneVersions(t, 'h', '/d/f', 5), 0);
  });
});
