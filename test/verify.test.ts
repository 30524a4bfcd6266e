import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { TargetError } from '../dist/lib/errors.js';
import { hashBytes, initHasher } from '../dist/lib/hash/xxh64.js';
import { MemoryTarget } from '../dist/lib/targets/memory.js';
import { bufferSource } from '../dist/lib/targets/source.js';
import { verifyCopies } from '../dist/lib/backup/verify.js';
import { wrapTarget } from '../dist/lib/targets/wrappers.js';

before(() => initHasher());

const put = async (t: MemoryTarget, rel: string, text: string) => {
  const data = Buffer.from(text);
  await t.put(rel, bufferSource(data, { hash: hashBytes(data) }));
  return hashBytes(data);
};
const cls = (e: TargetError | undefined) => e?.errorClass;

describe('verifyCopies (backup/verify.ts): the one read-back step', () => {
  it('a right copy passes; a flipped byte is mismatch, a deleted copy missing; symlinks by link text', async () => {
    const t = new MemoryTarget('m');
    const good = await put(t, 'h/good', 'good bytes');
    const bad = await put(t, 'h/bad', 'will be flipped');
    t.corrupt('h/bad');
    await t.putLink('h/ln', 'target text');
    const r = await verifyCopies(t, [
      { rel: 'h/good', hash: good }, { rel: 'h/bad', hash: bad }, { rel: 'h/gone', hash: good },
      { rel: 'h/ln', link: 'target text' }, { rel: 'h/ln', link: 'other' }, { rel: 'h/noln', link: 'x' },
    ]);
    assert.equal(r.get('h/good'), undefined);
    assert.ok(r.has('h/good'), 'read and right');
    assert.equal(cls(r.get('h/bad')), 'mismatch');
    assert.match(r.get('h/bad')!.message, /^\[m\] read-back of h\/bad hashes to [0-9a-f]{16}, expected /);
    assert.equal(cls(r.get('h/gone')), 'missing');
    assert.equal(cls(r.get('h/noln')), 'missing');
  });

  it('a link the target could not recreate (a directory in the way) is right as recorded; a target without links is never asked', async () => {
    const t = new MemoryTarget('m');
    const r = await verifyCopies(t, [{ rel: 'h/ln', link: 'x', linkInStoreOnly: true }]);
    assert.ok(r.has('h/ln') && r.get('h/ln') === undefined);
    const noLinks = { name: 'n', put: t.put.bind(t), sync: t.sync.bind(t), readBack: t.readBack.bind(t), check: t.check.bind(t), close: t.close.bind(t) };
    const r2 = await verifyCopies(noLinks, [{ rel: 'h/ln2', link: 'y' }]);
    assert.ok(r2.has('h/ln2') && r2.get('h/ln2') === undefined, 'recorded in the store only');
  });

  it('after a target-wide failure the copies not read yet are left out (neither right nor failed)', async () => {
    const mem = new MemoryTarget('m');
    const rels = await Promise.all(Array.from({ length: 6 }, (_, i) => put(mem, `h/f${i}`, `file ${i}`)));
    mem.inject = (op) => (op === 'hash' ? Object.assign(new Error('I/O error'), { code: 'EIO' }) : undefined);
    // the batch hash leaves every faulty path out; the first per-file read then fails as a whole-target EIO
    const w = wrapTarget(mem, { copyMs: 10_000, commandMs: 10_000, retry: { attempts: 1, baseMs: 1, maxMs: 1 } });
    const r = await verifyCopies(w, rels.map((hash, i) => ({ rel: `h/f${i}`, hash })), { concurrency: 1 });
    assert.equal(cls(r.get('h/f0')), 'EIO');
    assert.equal(r.get('h/f0')!.targetWide, true);
    for (let i = 1; i < 6; i++) assert.equal(r.has(`h/f${i}`), false, `h/f${i} is not read after the target failed`);
  });

  it('a read-back that fails as a whole fails every file of the batch with its class', async () => {
    const t = new MemoryTarget('m');
    const h = await put(t, 'h/a', 'a');
    const broken = { name: 'b', put: t.put.bind(t), sync: t.sync.bind(t), check: t.check.bind(t), close: t.close.bind(t),
      readBack: () => Promise.reject(Object.assign(new Error('drive not ready'), { code: 'EIO' })) };
    const r = await verifyCopies(broken, [{ rel: 'h/a', hash: h }, { rel: 'h/b', hash: h }]);
    assert.deepEqual([cls(r.get('h/a')), cls(r.get('h/b'))], ['EIO', 'EIO']);
    assert.match(r.get('h/a')!.message, /^\[b\] verify 2 files: drive not ready/);
  });
});
