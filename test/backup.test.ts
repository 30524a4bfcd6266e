import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it, beforeEach, afterEach } from 'node:test';
import { backup } from '../dist/lib/backup/backup.js';
import { validateConfig } from '../dist/lib/config/validate.js';
import { MemoryTarget } from '../dist/lib/targets/memory.js';
import { wrapTarget } from '../dist/lib/targets/wrappers.js';
import type { PutOptions } from '../dist/lib/targets/target.js';
import type { PutSource } from '../dist/lib/targets/source.js';
import { Store } from '../dist/lib/store/store.js';
import { decodeState } from '../dist/lib/store/model.js';
import { silentLogger } from '../dist/lib/log.js';
import { age, rmTree, tmpDir } from './helpers.js';

const log = silentLogger();

/** A target whose put never finishes on its own: only the copy timeout (or the run's signal) ends it. */
class HungTarget extends MemoryTarget {
  override async put(_rel: string, _src: PutSource, opts: PutOptions = {}): Promise<void> {
    await new Promise((_, reject) => opts.signal?.addEventListener('abort', () => reject(opts.signal!.reason)));
  }
}

describe('backup() with memory targets and injected faults', () => {
  let dir: string; let src: string; let store: Store;
  const config = (extra: Record<string, unknown> = {}) => validateConfig({
    host: 'mem', sources: [src], targets: [{ name: 'a', url: '/unused/a' }, { name: 'b', url: '/unused/b' }],
    retry: { backoff: '0s', maxBackoff: '0s', maxAttempts: 3 }, snapshots: 1, ...extra,
  }, path.join(dir, 'replica.config.json'));
  const file = (name: string, data: string | Buffer) => { const p = path.join(src, name); fs.writeFileSync(p, data); age(p); return p; };
  const rel = (p: string) => `mem${p}`;

  beforeEach(async () => {
    dir = tmpDir();
    src = fs.realpathSync(fs.mkdirSync(path.join(dir, 'src'), { recursive: true }) ?? path.join(dir, 'src'));
    store = await Store.open(path.join(dir, 'store'), { host: 'mem', agentVersion: 't', snapshots: 1, log });
  });
  afterEach(async () => { await store.close(); rmTree(dir); });

  it('copies, syncs once per batch, verifies; both targets hold identical bytes', async () => {
    const files = Array.from({ length: 30 }, (_, i) => file(`f${i}`, `data ${i}`));
    const a = new MemoryTarget('a'); const b = new MemoryTarget('b');
    const r = await backup(config(), store, [a, b], log);
    assert.equal(r.ok, true);
    assert.equal(r.counts.verified, 60);
    assert.equal(a.syncs, 2, 'one sync for the batch and one for the shipped store copy');
    for (const f of files) assert.deepEqual(a.files.get(rel(f))?.data, fs.readFileSync(f));
    assert.ok(b.files.has('.replica/mem/meta.json'));
  });

  it('new small files are hashed by their first copy (the first target that puts many): one read, the recorded hash is the bytes\', both targets verified', async () => {
    const small = Array.from({ length: 5 }, (_, i) => file(`n${i}`, `new ${i}`));
    const big = file('big.bin', Buffer.alloc((1 << 20) + 1, 7)); // past SMALL_FILE: hashed before its copies
    const a = new MemoryTarget('a'); const b = new MemoryTarget('b');
    const firstHashes: string[] = [];
    a.inject = (op, r) => {
      // when a's put of a new small file starts, nothing has recorded its hash yet; the big file was hashed first
      if (op === 'put' && small.some((f) => rel(f) === r)) firstHashes.push(String(store.get(r.slice(3))?.h));
      if (op === 'put' && r === rel(big)) assert.notEqual(store.get(big)?.h, undefined);
      return undefined;
    };
    b.inject = (op, r) => {
      if (op === 'put' && small.some((f) => rel(f) === r)) assert.notEqual(store.get(r.slice(3))?.h, undefined, 'b copies a settled file');
      return undefined;
    };
    const r = await backup(config(), store, [a, b], log);
    assert.equal(r.ok, true);
    assert.deepEqual(firstHashes, small.map(() => 'undefined'));
    assert.equal(r.counts.hashed, 6);
    assert.equal(r.counts.verified, 12);
    const { hashBytes } = await import('../dist/lib/hash/xxh64.js');
    for (const f of [...small, big]) {
      assert.equal(store.get(f)!.h, hashBytes(fs.readFileSync(f)));
      for (const t of [a, b]) assert.deepEqual(t.files.get(rel(f))?.data, fs.readFileSync(f));
      assert.equal(decodeState(store.get(f)!.t.a).s, 'v');
      assert.equal(decodeState(store.get(f)!.t.b).s, 'v');
    }
  });

  it('with one target, a new big file is hashed by its copy too (one read); the recorded hash is the bytes\'', async () => {
    const big = file('only.bin', Buffer.alloc((3 << 20) + 5, 9));
    const a = new MemoryTarget('a');
    const atPut: (string | undefined)[] = [];
    a.inject = (op, r) => {
      if (op === 'put' && r === rel(big)) atPut.push(store.get(big)?.h);
      return undefined;
    };
    const r = await backup(config({ targets: [{ name: 'a', url: '/unused/a' }] }), store, [a], log);
    assert.equal(r.ok, true);
    assert.deepEqual(atPut, [undefined], 'not hashed before its copy');
    const { hashBytes } = await import('../dist/lib/hash/xxh64.js');
    assert.equal(store.get(big)!.h, hashBytes(fs.readFileSync(big)));
    assert.equal(r.counts.hashed, 1);
    assert.equal(decodeState(store.get(big)!.t.a).s, 'v');
    assert.deepEqual(a.files.get(rel(big))?.data, fs.readFileSync(big));
  });

  it('with a tape as the only target, a new file (small or big) is hashed by the write of its member: one tape file, every member verified with the file\'s hash', async () => {
    const { TapeTarget } = await import('../dist/lib/targets/tape.js');
    const { EmulatedDrive } = await import('../dist/lib/targets/tapeDrive.js');
    const { attachCatalogs } = await import('../dist/lib/backup/archive.js');
    const { hashBytes } = await import('../dist/lib/hash/xxh64.js');
    const files = [...Array.from({ length: 4 }, (_, i) => file(`t${i}`, `to tape ${i}`)), file('big.bin', Buffer.alloc((3 << 20) + 5, 7))];
    const seen: (string | undefined)[] = [];
    class Watched extends TapeTarget {
      override async put(r: string, src: PutSource, opts?: PutOptions): Promise<void> {
        seen.push(store.get(r.slice(3))?.h);
        return super.put(r, src, opts);
      }
    }
    const emu = path.join(dir, 'emu');
    fs.mkdirSync(emu);
    const t = new Watched('tp', new EmulatedDrive(emu, 1 << 30, 512));
    attachCatalogs(store, [t], 'mem');
    await t.openTape('T1');
    const r = await backup(config({ targets: [{ name: 'tp', url: `tape://${emu}`, capacity: '1GiB' }] }), store, [t], log, { flush: true });
    assert.equal(r.ok, true);
    assert.deepEqual(seen, files.map(() => undefined), 'no hash was recorded before each member was written');
    assert.equal(r.counts.hashed, 5);
    assert.deepEqual(fs.readdirSync(path.join(emu, 'T1')), ['file00001.tar']);
    for (const f of files) {
      assert.equal(store.get(f)!.h, hashBytes(fs.readFileSync(f)));
      assert.equal(decodeState(store.get(f)!.t.tp).s, 'v');
    }
  });

  it('a new file hashed by its tape member waits for the tape\'s batching from when it settled, not from when it was first seen', async () => {
    const { TapeTarget } = await import('../dist/lib/targets/tape.js');
    const { EmulatedDrive } = await import('../dist/lib/targets/tapeDrive.js');
    const { attachCatalogs } = await import('../dist/lib/backup/archive.js');
    const emu = path.join(dir, 'emu');
    fs.mkdirSync(emu);
    const t = new TapeTarget('tp', new EmulatedDrive(emu, 1 << 30, 512));
    attachCatalogs(store, [t], 'mem');
    await t.openTape('T1');
    const cfg = config({ targets: [{ name: 'tp', url: `tape://${emu}`, capacity: '1GiB', maxWait: '1h' }] });
    const f = path.join(src, 'long.dat');
    fs.writeFileSync(f, 'written for hours'); // just written: seen, not settled
    await backup(cfg, store, [t], log, { waitForSettle: false });
    const rec = store.get(f)!;
    assert.equal(rec.h, undefined);
    rec.f = Date.now() - 2 * 3_600_000; // first seen two hours ago (maxWait is one)
    store.set(f, rec);
    age(f); // closed long enough ago: it settles in the next pass
    await backup(cfg, store, [t], log, { waitForSettle: false });
    assert.notEqual(store.get(f)!.h, undefined, 'settled in that pass');
    assert.equal(decodeState(store.get(f)!.t.tp).s, 'p', 'pending: it waits up to maxWait from now');
    assert.deepEqual(fs.readdirSync(path.join(emu, 'T1')).filter((n) => n.endsWith('.tar')), []);
  });

  it('a new file whose first copy fails on the target\'s side is hashed anyway: the other target gets it in the same pass, the failed one records one attempt', async () => {
    const f = file('n', 'no room on a');
    const a = new MemoryTarget('a'); const b = new MemoryTarget('b');
    a.inject = (op, r) => (op === 'put' && r === rel(f) ? Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' }) : undefined);
    const r = await backup(config(), store, [a, b], log);
    assert.equal(r.ok, false);
    const rec = store.get(f)!;
    assert.equal(rec.h !== undefined, true);
    assert.equal(decodeState(rec.t.b).s, 'v');
    assert.deepEqual(b.files.get(rel(f))?.data, fs.readFileSync(f));
    const ta = decodeState(rec.t.a);
    assert.equal(ta.s, 'f');
    assert.equal(ta.e?.[0], 'ENOSPC');
    assert.equal(ta.a, 1);
  });

  it('a read-back that does not match is class mismatch and spends an attempt; a later run repairs it', async () => {
    const f = file('x', 'precious');
    const a = new MemoryTarget('a'); const b = new MemoryTarget('b');
    a.inject = (op, r) => { if (op === 'hash' && r === rel(f)) a.corrupt(r); return undefined; };
    const r = await backup(config(), store, [a, b], log);
    assert.equal(r.ok, false);
    const t = { a: decodeState(store.get(f)!.t.a), b: decodeState(store.get(f)!.t.b) };
    assert.equal(t.a.s, 'f');
    assert.equal(t.a.e?.[0], 'mismatch');
    assert.equal(t.a.a, 1);
    assert.equal(t.b.s, 'v');
    a.inject = undefined;
    assert.equal((await backup(config(), store, [a, b], log)).ok, true);
    assert.equal(decodeState(store.get(f)!.t.a).s, 'v');
  });

  it('a copy missing at read-back is class missing', async () => {
    const f = file('y', 'soon gone');
    const a = new MemoryTarget('a');
    a.inject = (op, r) => { if (op === 'hash') a.files.delete(r); return undefined; };
    await backup(config(), store, [a, new MemoryTarget('b')], log);
    assert.equal(decodeState(store.get(f)!.t.a).e?.[0], 'missing');
  });

  it('a source that changes during the copy does not count (changed); one that vanishes is vanished', async () => {
    const grow = file('grow', 'v1');
    const gone = file('gone', 'bye');
    const a = new MemoryTarget('a');
    a.inject = (op, r) => {
      if (op === 'put' && r === rel(grow)) fs.appendFileSync(grow, ' and more');
      if (op === 'put' && r === rel(gone)) { fs.rmSync(gone); return Object.assign(new Error('ENOENT: no such file'), { code: 'ENOENT' }); }
      return undefined;
    };
    const r = await backup(config({ targets: [{ name: 'a', url: '/u' }] }), store, [a], log);
    assert.equal(r.ok, false);
    assert.equal(decodeState(store.get(grow)!.t.a).e?.[0], 'changed');
    assert.equal(store.get(grow)!.s, undefined, 'no longer settled');
    assert.equal(decodeState(store.get(gone)!.t.a).e?.[0], 'vanished');
  });

  it('a target-wide failure (EIO) mid-run stops that target, spends no attempts, the other target completes', async () => {
    for (let i = 0; i < 20; i++) file(`g${i}`, `g${i}`);
    const a = new MemoryTarget('a'); const b = new MemoryTarget('b');
    let puts = 0;
    a.inject = (op) => (op === 'put' && ++puts > 5 ? Object.assign(new Error('EIO: i/o error'), { code: 'EIO' }) : undefined);
    const r = await backup(config(), store, [a, b], log);
    assert.equal(r.targetsDown.a.class, 'EIO');
    assert.equal(store.meta.targets.a.lastError?.class, 'EIO');
    const states = [...store.entries()].map(([, rec]) => decodeState(rec.t.a));
    assert.ok(states.every((t) => (t.a ?? 0) === 0), 'no attempts spent');
    assert.equal(states.filter((t) => t.s === 'v').length, 0, 'the batch failed before its sync: nothing verified');
    assert.equal([...store.entries()].filter(([, rec]) => rec.t.b.startsWith('v')).length, 20);
  });

  it('a failing sync is target-wide: nothing in the batch is verified', async () => {
    file('s', 's');
    const a = new MemoryTarget('a');
    a.inject = (op) => (op === 'sync' ? Object.assign(new Error('EROFS'), { code: 'EROFS' }) : undefined);
    const r = await backup(config({ targets: [{ name: 'a', url: '/u' }] }), store, [a], log);
    assert.equal(r.targetsDown.a.class, 'EROFS');
    assert.equal([...store.entries()][0][1].t.a, 'p');
  });

  it('a hung target fails by timeouts.copy (class timeout) instead of hanging the run', async () => {
    file('h', 'h');
    const t0 = Date.now();
    const r = await backup(config({ targets: [{ name: 'a', url: '/u', timeouts: { copy: '300ms' } }] }), store, [wrapTarget(new HungTarget('a'), { copyMs: 300, commandMs: 300 })], log);
    assert.equal(r.targetsDown.a.class, 'timeout');
    assert.ok(Date.now() - t0 < 20_000);
  });

  it('after maxAttempts a file waits; a change of its source makes it due again', async () => {
    const f = file('flaky', 'one');
    const a = new MemoryTarget('a');
    a.inject = (op) => (op === 'put' ? Object.assign(new Error('ENOSPC: no space left'), { code: 'ENOSPC' }) : undefined);
    const cfg = config({ targets: [{ name: 'a', url: '/u' }] });
    for (let i = 0; i < 4; i++) await backup(cfg, store, [a], log);
    assert.equal(decodeState(store.get(f)!.t.a).a, 3);
    assert.equal(decodeState(store.get(f)!.t.a).n, undefined);
    a.inject = undefined;
    const waiting = await backup(cfg, store, [a], log);
    assert.equal(waiting.counts.copied, 0, 'attempts spent: waits for retry or a change');
    assert.equal(waiting.unverified, 1);
    assert.equal(waiting.ok, false, 'a settled file not verified everywhere is never exit 0');
    fs.writeFileSync(f, 'two');
    age(f, 100);
    const r = await backup(cfg, store, [a], log);
    assert.equal(r.counts.verified, 1);
    assert.equal(a.files.get(rel(f))?.data.toString(), 'two');
  });

  it('an aborted run stops taking work and abandons in-flight copies', async () => {
    for (let i = 0; i < 10; i++) file(`z${i}`, 'z');
    const ac = new AbortController();
    const a = new HungTarget('a');
    setTimeout(() => ac.abort('SIGTERM'), 200);
    const r = await backup(config({ targets: [{ name: 'a', url: '/u' }] }), store, [a], log, { signal: ac.signal });
    assert.equal(r.ok, false);
    // new files are hashed by their first copy (engine.hashAndCopy): stopped before it, they are not settled yet
    assert.equal([...store.entries()].filter(([, rec]) => rec.t.a?.startsWith('v')).length, 0);
  });

  it('a store copy that cannot be shipped makes the run not ok', async () => {
    file('q', 'q');
    const a = new MemoryTarget('a');
    a.inject = (op, r) => (op === 'put' && r.startsWith('.replica/') ? new Error('no room for the store') : undefined);
    const r = await backup(config({ targets: [{ name: 'a', url: '/u' }] }), store, [a], log);
    assert.deepEqual(r.shipFailed, ['a']);
    assert.equal(r.ok, false);
    assert.equal(r.counts.verified, 1);
  });
});
