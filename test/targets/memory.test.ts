import assert from 'node:assert/strict';
import { it } from 'node:test';
import { MemoryTarget } from '../../dist/lib/targets/memory.js';
import { TargetError } from '../../dist/lib/errors.js';
import { testTarget } from './conformance.js';

testTarget({ name: 'memory', create: async () => new MemoryTarget('mem') });

it('memory target: injected faults surface as classified TargetErrors; corrupt() flips stored bytes', async () => {
  const t = new MemoryTarget('m');
  t.inject = (op) => (op === 'check' ? Object.assign(new Error('gone'), { code: 'ECONNREFUSED' }) : undefined);
  await assert.rejects(t.check(), (e: unknown) => e instanceof TargetError && e.errorClass === 'unreachable' && e.targetWide);
  t.inject = undefined;
  const { bufferSource } = await import('../../dist/lib/targets/source.js');
  await t.put('h/x', bufferSource(Buffer.from('abc')));
  const before = await t.hash('h/x');
  t.corrupt('h/x');
  assert.notEqual(await t.hash('h/x'), before);
  assert.throws(() => t.corrupt('h/none'));
});
