import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { contractMethodsOf, lazyTarget } from '../../dist/lib/targets/lazy.js';
import { MemoryTarget } from '../../dist/lib/targets/memory.js';
import { hasLinks, hasRandomRead, hasVersions } from '../../dist/lib/targets/target.js';
import { bufferSource } from '../../dist/lib/targets/source.js';
import { initHasher } from '../../dist/lib/hash/xxh64.js';

describe('lazy targets (targets/lazy.ts)', () => {
  it('load the implementation on the first call only, offer exactly the listed methods, and close nothing before any call', async () => {
    await initHasher();
    let loads = 0;
    const mem = new MemoryTarget('m');
    const methods = contractMethodsOf(mem);
    const t = lazyTarget('m', async () => { loads++; return mem; }, methods.filter((m) => m !== 'putLink' && m !== 'readLink'));
    assert.equal(t.name, 'm');
    assert.equal(hasRandomRead(t), true);
    assert.equal(hasVersions(t), hasVersions(mem));
    assert.equal(hasLinks(t), false, 'a method left out of the list is not offered');
    await t.close();
    assert.equal(loads, 0, 'close before any call loads nothing');
    await t.put('h/a', bufferSource(Buffer.from('abc')));
    await t.put('h/b', bufferSource(Buffer.from('de')));
    const listed: string[] = [];
    for await (const k of (t as unknown as { list(p: string): AsyncIterable<string> }).list('h')) listed.push(k);
    assert.deepEqual(listed.sort(), ['h/a', 'h/b']);
    assert.equal(loads, 1);
    await t.close();
  });
});
