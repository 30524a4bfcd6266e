import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { describe, it } from 'node:test';
import { MemoryTarget } from '../../dist/lib/targets/memory.js';
import { BwlimitTarget, RetryingTarget, Throttle, TimeoutTarget, wrapTarget } from '../../dist/lib/targets/wrappers.js';
import { createTarget } from '../../dist/lib/targets/registry.js';
import { TargetError } from '../../dist/lib/errors.js';
import { hashBytes, initHasher } from '../../dist/lib/hash/xxh64.js';
import type { Target } from '../../dist/lib/targets/target.js';
import { bufferSource } from '../../dist/lib/targets/source.js';
import { testTarget } from './conformance.js';

/** A virtual clock: sleep() advances it at once and records every wait. */
function virtualClock() {
  const c = { t: 0, waits: [] as number[], now: () => c.t, sleep: async (ms: number) => { c.waits.push(ms); c.t += ms; } };
  return c;
}

const errno = (code: string) => Object.assign(new Error(code), { code });

/** The memory target behind every wrapper passes the unchanged conformance suite. */
testTarget({
  name: 'memory wrapped in bwlimit + timeouts + retries',
  create: async () => wrapTarget(new MemoryTarget('wrapped'), { copyMs: 60_000, commandMs: 30_000, bwlimit: 1 << 30 }),
});

describe('retry wrapper (injecting fake)', () => {
  const setup = (fail: (n: number) => Error | undefined) => {
    const mem = new MemoryTarget('m');
    let calls = 0;
    mem.inject = (op) => (op === 'put' ? fail(++calls) : undefined);
    const clock = virtualClock();
    const retries: [string, number][] = [];
    const t = new RetryingTarget(mem, { attempts: 4, baseMs: 1000, maxMs: 3000, sleep: clock.sleep, onRetry: (_op, _rel, e, _n, w) => retries.push([e.errorClass, w]) });
    const src = bufferSource(Buffer.from('payload'));
    return { mem, t, clock, retries, src, calls: () => calls, done: () => undefined };
  };

  it('transient failures are retried with exponential backoff (jittered within the upper half, capped)', async () => {
    const s = setup((n) => (n <= 3 ? errno(n === 2 ? 'EIO' : 'ECONNRESET') : undefined));
    await s.t.put('h/f', s.src);
    assert.equal(s.calls(), 4);
    assert.deepEqual(s.retries.map(([c]) => c), ['unreachable', 'EIO', 'unreachable']);
    const [w1, w2, w3] = s.retries.map(([, w]) => w);
    assert.ok(w1 >= 500 && w1 <= 1000, `first wait ${w1}`);
    assert.ok(w2 >= 1000 && w2 <= 2000, `second wait ${w2}`);
    assert.ok(w3 >= 1500 && w3 <= 3000, `third wait ${w3} (cap 3000)`);
    assert.equal(await s.mem.hash('h/f'), hashBytes(Buffer.from('payload')));
    s.done();
  });

  it('gives up after `attempts` calls with the last error', async () => {
    const s = setup(() => errno('ECONNRESET'));
    await assert.rejects(s.t.put('h/f', s.src), (e: unknown) => e instanceof TargetError && e.errorClass === 'unreachable');
    assert.equal(s.calls(), 4);
    s.done();
  });

  it('permanent errors and classes a retry cannot fix are not retried', async () => {
    for (const [code, cls] of [['EACCES', 'EACCES'], ['ENOSPC', 'ENOSPC'], ['EDQUOT', 'quota'], ['ETIMEDOUT', 'timeout']] as const) {
      const s = setup(() => errno(code));
      await assert.rejects(s.t.put('h/f', s.src), (e: unknown) => e instanceof TargetError && e.errorClass === cls);
      assert.equal(s.calls(), 1, code);
      s.done();
    }
    const s = setup(() => new TargetError('bucket gone', { target: 'm', errorClass: 'other', permanent: true }));
    await assert.rejects(s.t.put('h/f', s.src), /bucket gone/);
    assert.equal(s.calls(), 1);
    s.done();
  });

  it('an aborted run stops retrying', async () => {
    const s = setup(() => errno('ECONNRESET'));
    const ac = new AbortController();
    const mem = new MemoryTarget('m2');
    let calls = 0;
    mem.inject = () => { calls++; ac.abort(new Error('SIGTERM')); return errno('ECONNRESET'); };
    const t = new RetryingTarget(mem, { attempts: 5, baseMs: 10, maxMs: 10 });
    await assert.rejects(t.put('h/f', s.src, { signal: ac.signal }));
    assert.equal(calls, 1);
    s.done();
  });
});

describe('timeout wrapper (injecting fake)', () => {
  /** A target whose operations never finish, and records whether they were told to stop. */
  const hung = () => {
    const mem = new MemoryTarget('hung');
    const aborted: string[] = [];
    const never = (op: string, signal?: AbortSignal) => new Promise<never>(() => { signal?.addEventListener('abort', () => aborted.push(op)); });
    const t: Target = Object.assign(Object.create(mem) as MemoryTarget, {
      put: (_r: string, _s: unknown, o: { signal?: AbortSignal }) => never('put', o.signal),
      sync: (o: { signal?: AbortSignal } = {}) => never('sync', o.signal),
      hash: () => never('hash'), // ignores its signal: the wrapper must still return
      check: (o: { signal?: AbortSignal } = {}) => never('check', o.signal),
      // a listing that starts and then hangs (a dead NFS server mid-directory)
      list: async function* () { yield 'h/first'; await never('list'); },
    });
    return { t, aborted };
  };

  it('a listing that hangs fails as class timeout, with nothing half-listed handed out', async () => {
    const { t } = hung();
    const w = new TimeoutTarget(t, { copyMs: 80, commandMs: 40 });
    const got: string[] = [];
    await assert.rejects((async () => { for await (const k of w.list!('h')) got.push(k); })(), /list h: timed out after 80 ms/);
    assert.deepEqual(got, [], 'the whole listing is one operation');
  });

  it('a listing that fails on a dropped connection is retried from its start', async () => {
    const mem = new MemoryTarget('m');
    await mem.put('h/a', bufferSource(Buffer.from('a')));
    let n = 0;
    const flaky: Target = Object.assign(Object.create(mem) as MemoryTarget, {
      list: async function* (prefix: string) {
        if (n++ === 0) throw Object.assign(new Error('reset'), { code: 'ECONNRESET' });
        yield* mem.list(prefix);
      },
    });
    const w = new RetryingTarget(flaky, { attempts: 3, baseMs: 1, maxMs: 1 });
    const got: string[] = [];
    for await (const k of w.list!('h')) got.push(k);
    assert.deepEqual(got, ['h/a']);
    assert.equal(n, 2);
  });

  it('a hung put, hash, sync or check fails as class timeout, with the copy or the command timeout', async () => {
    const { t, aborted } = hung();
    // a fresh wrapper per call: after one hung call, a wrapper calls the target no more (next test)
    const w = () => new TimeoutTarget(t, { copyMs: 120, commandMs: 40 });
    await assert.rejects(w().put('h/x', bufferSource(Buffer.alloc(0))), (e: unknown) => e instanceof TargetError && e.errorClass === 'timeout' && /put h\/x: timed out after 120 ms/.test(e.message));
    await assert.rejects(w().hash!('h/x'), /hash h\/x: timed out after 120 ms/);
    await assert.rejects(w().sync(), /sync \.: timed out after 40 ms/);
    await assert.rejects(w().check(), /check \.: timed out after 40 ms/);
    assert.deepEqual(aborted, ['put', 'sync', 'check'], 'operations that take a signal are told to stop');
  });

  it('a target with a call still hung after its timeout is not called again until that call returns', async () => {
    const mem = new MemoryTarget('slow');
    let release!: () => void;
    let calls = 0;
    const t: Target = Object.assign(Object.create(mem) as MemoryTarget, {
      check: () => { calls++; return new Promise((r) => { release = () => r({ reachable: true, authenticated: true, writable: true }); }); },
    });
    const w = new TimeoutTarget(t, { copyMs: 60_000, commandMs: 30 });
    await assert.rejects(w.check(), /timed out after 30 ms/);
    await assert.rejects(w.check(), /not called: 1 earlier call\(s\) hung/);
    await assert.rejects(w.put('h/x', bufferSource(Buffer.from('x'))), /not called/);
    assert.equal(calls, 1, 'no second call piled onto the hung target');
    release();
    await new Promise((r) => setImmediate(r));
    await w.put('h/x', bufferSource(Buffer.from('x')));
    assert.equal((await w.stat!('h/x'))?.size, 1);
  });

  it('the run\'s own abort (SIGTERM) passes through with its reason', async () => {
    const { t } = hung();
    const w = new TimeoutTarget(t, { copyMs: 60_000, commandMs: 60_000 });
    const ac = new AbortController();
    const p = w.put('h/x', bufferSource(Buffer.alloc(0)), { signal: ac.signal });
    ac.abort(new Error('interrupted'));
    await assert.rejects(p, /interrupted/);
    await assert.rejects(w.sync({ signal: ac.signal }), /interrupted/);
  });

  it('a call that finishes in time returns its value', async () => {
    const w = new TimeoutTarget(new MemoryTarget('fast'), { copyMs: 60_000, commandMs: 60_000 });
    await w.put('h/y', bufferSource(Buffer.from('ok')));
    assert.equal((await w.stat!('h/y'))?.size, 2);
  });
});

describe('bwlimit (token bucket, on a virtual clock)', () => {
  it('Throttle: 10 MiB at 1 MiB/s takes 10 s of virtual time, less the burst', async () => {
    const c = virtualClock();
    const th = new Throttle(1 << 20, 64 << 10, c.now, c.sleep);
    for (let i = 0; i < 160; i++) await th.take(64 << 10);
    assert.ok(Math.abs(c.t - (10_000 - 62.5)) < 1, `virtual time ${c.t}`);
    c.t += 60_000; // idle for a minute: the bucket refills only up to the burst
    const before = c.t;
    for (let i = 0; i < 32; i++) await th.take(64 << 10);
    assert.ok(Math.abs(c.t - before - (2000 - 62.5)) < 1, `after idling ${c.t - before}`);
  });

  it('concurrent puts share one limit and land byte-identical', async () => {
    await initHasher();
    const c = virtualClock();
    const mem = new MemoryTarget('slow');
    const t = new BwlimitTarget(mem, new Throttle(2 << 20, 64 << 10, c.now, c.sleep));
    const datas = [0, 1, 2, 3].map(() => crypto.randomBytes(1 << 20));
    await Promise.all(datas.map((d, i) => t.put(`h/f${i}`, bufferSource(d, { hash: hashBytes(d) }))));
    for (const [i, d] of datas.entries()) assert.equal(await mem.hash(`h/f${i}`), hashBytes(d));
    // 4 MiB at 2 MiB/s: 2 s of virtual time in all (not 2 s per file)
    assert.ok(c.t > 1800 && c.t < 2100, `virtual time ${c.t}`);
  });

  it('createTarget wraps every configured target: retries outside, timeouts, then bwlimit when set', () => {
    const base = { name: 'x', url: '/tmp/x', kind: 'local' as const, path: '/tmp/x', concurrency: 2, timeouts: { copyMs: 1000, commandMs: 1000 }, options: {} };
    const chain = (t: Target) => { const out: string[] = []; for (let w: any = t; w; w = w.inner) out.push(w.constructor.name); return out; };
    assert.deepEqual(chain(createTarget({ ...base, bwlimit: 1000 }, 0)), ['RetryingTarget', 'TimeoutTarget', 'BwlimitTarget', 'LocalTarget']);
    assert.deepEqual(chain(createTarget(base, 0)), ['RetryingTarget', 'TimeoutTarget', 'LocalTarget']);
    assert.deepEqual(chain(createTarget({ ...base, kind: 'tape', url: 'tape:///dev/nst0' }, 3)), ['RetryingTarget', 'TimeoutTarget', 'TapeTarget']);
    assert.throws(() => createTarget({ ...base, kind: 'tape', url: 'tape:///srv/emu' }, 3), /targets\[3\]\.capacity: required for the tape emulator/);
  });
});
