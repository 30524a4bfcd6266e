import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Scrubber, scrubTickMs } from '../dist/lib/agent/scrubber.js';
import { validateConfig } from '../dist/lib/config/validate.js';
import { silentLogger } from '../dist/lib/log.js';
import { Store } from '../dist/lib/store/store.js';
import { MemoryTarget } from '../dist/lib/targets/memory.js';
import type { ReadBack, ReadBackOptions } from '../dist/lib/targets/target.js';
import { rmTree, tmpDir } from './helpers.js';

/**
 * A target whose read-back answers only once the call is aborted, and then with the right hashes: a read that
 * completes just as the agent stops (its result must not be recorded any more).
 */
class LateReads extends MemoryTarget {
  started = 0;
  override readBack(rels: string[], opts: ReadBackOptions = {}): Promise<ReadBack> {
    this.started++;
    return new Promise((resolve) => opts.signal?.addEventListener('abort', () => resolve(new Map(rels.map((r) => [r, '0123456789abcdef'])))));
  }
}

describe('the agent scrub (agent/scrubber.ts)', () => {
  it('ticks a twentieth of verify.every, between 1 s and 15 min', () => {
    assert.deepEqual([scrubTickMs(6000), scrubTickMs(60_000), scrubTickMs(30 * 86_400_000)], [1000, 3000, 15 * 60_000]);
  });

  it('stop() aborts a tick stuck in a read, waits for it, and nothing is recorded afterwards; a tick never overlaps the previous one', async () => {
    const dir = tmpDir();
    const store = await Store.open(path.join(dir, 'store'), { host: 'h', agentVersion: 't', snapshots: 1, log: silentLogger() });
    fs.mkdirSync(path.join(dir, 'src'));
    const config = validateConfig({ host: 'h', sources: [path.join(dir, 'src')], targets: [{ name: 'a', url: '/unused/a' }], verify: { every: '2s', budget: '1GiB' } }, path.join(dir, 'c.json'));
    const old = Date.now() - 60_000;
    store.set('/data/f', { z: 10, m: 1, f: 1, s: 2, h: '0123456789abcdef', t: { a: `v ${old} ${old}` } });
    const t = new LateReads('a');
    const s = new Scrubber({ store, log: silentLogger(), config: () => config, targets: () => [t], usable: () => true, signal: new AbortController().signal, onBad: () => assert.fail('nothing is bad') });
    const tick = s.tick();
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(t.started, 1);
    void s.tick(); // still reading: no second tick
    assert.equal(t.started, 1);
    const t0 = Date.now();
    await s.stop(5000);
    await tick;
    assert.ok(Date.now() - t0 < 2000, 'the read was given up at once');
    assert.equal(store.get('/data/f')!.t.a, `v ${old} ${old}`, 'nothing recorded for a read that ended after stop');
    await s.tick();
    assert.equal(t.started, 1, 'no tick after stop');
    await store.close();
    rmTree(dir);
  });
});
