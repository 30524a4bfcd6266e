import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { buffered, jsonArray } from '../dist/lib/commands/context.js';

/** A stream that keeps what is written to it, and each write's size. */
function sink(): { out: Writable; text: () => string; writes: number[] } {
  const chunks: string[] = [];
  const writes: number[] = [];
  const out = new Writable({ write(c: Buffer, _e, cb) { chunks.push(c.toString()); writes.push(c.length); cb(); } });
  return { out, text: () => chunks.join(''), writes };
}

describe('command output (commands/context.ts): buffered and jsonArray', () => {
  it('buffered gathers lines into writes of ~64 KiB and flush() writes the rest, in order', () => {
    const s = sink();
    const w = buffered(s.out);
    const lines = Array.from({ length: 5000 }, (_, i) => `${i.toString(16).padStart(16, '0')}  host/d/f${i}.dat\n`);
    for (const l of lines) w.write(l);
    assert.ok(s.writes.length >= 2 && s.writes.length <= 5, `${s.writes.length} writes for ${lines.join('').length} bytes`);
    w.flush();
    w.flush(); // nothing left: no empty write
    assert.equal(s.text(), lines.join(''));
    assert.ok(s.writes.every((n) => n > 0));
  });

  it('jsonArray writes exactly the text of JSON.stringify(all, null, 2), for none, one and many elements', () => {
    const cases: unknown[][] = [
      [],
      [{ path: '/a', targets: {} }],
      Array.from({ length: 3000 }, (_, i) => ({ path: `/d/f ${i}\n"quoted"\\`, ok: i % 2 === 0, errors: i % 3 ? [] : ['a', 'b'], nested: { x: [1, { y: null }] } })),
    ];
    for (const items of cases) {
      const s = sink();
      const j = jsonArray(s.out);
      for (const x of items) j.add(x);
      j.end();
      assert.equal(s.text(), `${JSON.stringify(items, null, 2)}\n`);
      assert.deepEqual(JSON.parse(s.text()), items);
    }
  });
});
