import assert from 'node:assert/strict';
import { it } from 'node:test';
import { raceSignal, withDeadline } from '../../dist/lib/queue/deadline.js';

it('deadline: many calls at once under one signal (a pass\'s puts) print no MaxListenersExceededWarning, and each still ends with the signal', async () => {
  const warnings: Error[] = [];
  const onWarning = (w: Error) => { warnings.push(w); };
  process.on('warning', onWarning);
  try {
    const ac = new AbortController();
    const never = () => new Promise<never>(() => undefined);
    const calls = [
      ...Array.from({ length: 40 }, () => withDeadline(60_000, ac.signal, never)),
      ...Array.from({ length: 40 }, () => raceSignal(never(), ac.signal)),
    ];
    await new Promise((r) => setImmediate(r)); // a warning is emitted on the next tick
    ac.abort(new Error('stopped'));
    const settled = await Promise.allSettled(calls);
    assert.ok(settled.every((s) => s.status === 'rejected' && (s.reason as Error).message === 'stopped'));
    // and after they end, none of their listeners is left on it
    const done = await Promise.all(Array.from({ length: 20 }, (_, i) => withDeadline(60_000, new AbortController().signal, async () => i)));
    assert.deepEqual(done, Array.from({ length: 20 }, (_, i) => i));
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(warnings.map((w) => w.name), []);
  } finally {
    process.off('warning', onWarning);
  }
});
