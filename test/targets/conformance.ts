import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, it, before, after } from 'node:test';
import { TargetError } from '../../dist/lib/errors.js';
import { hashBytes, initHasher } from '../../dist/lib/hash/xxh64.js';
import type { Target } from '../../dist/lib/targets/target.js';
import { FdSource, bufferSource } from '../../dist/lib/targets/source.js';
import { ODD_NAMES, tmpDir } from '../helpers.js';

export interface ConformanceOptions {
  name: string;
  /** a fresh, empty target */
  create: () => Promise<Target>;
  cleanup?: (t: Target) => Promise<void>;
}

async function readAll(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks);
}

async function listAll(t: Target, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const p of t.list(prefix)) out.push(p);
  return out;
}

/** The Target contract, run against every kind of target (DESIGN.md): same tests, no exceptions. */
export function testTarget(opts: ConformanceOptions): void {
  describe(`Target conformance: ${opts.name}`, () => {
    let t: Target;
    let src: string;
    const fds: number[] = [];
    /** a real file, opened: the source put() reads, carrying the hash its bytes must have */
    const file = (name: string, data: Buffer, meta: { mtimeMs?: number; hash?: string } = {}) => {
      const p = path.join(src, `${name}-${crypto.randomUUID()}`);
      fs.writeFileSync(p, data);
      const fd = fs.openSync(p, 'r');
      fds.push(fd);
      return new FdSource(fd, data.length, 0o644, meta.mtimeMs, meta.hash ?? hashBytes(data), p);
    };

    before(async () => {
      await initHasher();
      src = tmpDir('replica-conf-src-');
      t = await opts.create();
    });
    after(async () => {
      await t.close();
      await opts.cleanup?.(t);
      for (const fd of fds) fs.closeSync(fd);
      fs.rmSync(src, { recursive: true, force: true });
    });

    it('check() passes on a fresh target and sync() with nothing to do resolves', async () => {
      await t.check();
      await t.sync();
    });

    it('put a file, then stat, hash, get and list see exactly its bytes', async () => {
      const data = crypto.randomBytes(100_000);
      await t.put('h/a/b/c.bin', file('c', data, { mtimeMs: 1_700_000_000_000 }));
      await t.sync();
      assert.equal((await t.stat('h/a/b/c.bin'))?.size, data.length);
      assert.equal(await t.hash('h/a/b/c.bin'), hashBytes(data));
      assert.deepEqual(await readAll(await t.get('h/a/b/c.bin')), data);
      assert.deepEqual(await listAll(t, 'h/a'), ['h/a/b/c.bin']);
      const st = await t.stat('h/a/b/c.bin');
      if (st?.mtimeMs !== undefined) assert.equal(Math.round(st.mtimeMs), 1_700_000_000_000);
    });

    it('put from memory, and a large file over several read chunks', async () => {
      const data = crypto.randomBytes(9 * 1024 * 1024 + 7);
      await t.put('h/stream.bin', bufferSource(data, { hash: hashBytes(data) }));
      assert.equal(await t.hash('h/stream.bin'), hashBytes(data));
      await t.put('h/big.bin', file('big', data));
      assert.equal(await t.hash('h/big.bin'), hashBytes(data));
    });

    it('concurrent puts into one new directory all land (first-use cleanup must not eat a neighbour\'s temp)', async () => {
      const datas = Array.from({ length: 16 }, (_, i) => crypto.randomBytes(1000 + i));
      await Promise.all(datas.map((d, i) => t.put(`h/conc/new/f${i}`, file(`c${i}`, d))));
      for (const [i, d] of datas.entries()) assert.equal(await t.hash(`h/conc/new/f${i}`), hashBytes(d));
      // and into new directories nested in each other, all at once (a parent another put is still making)
      const nested = ['h/nest/a', 'h/nest/a/b/c', 'h/nest/a/b', 'h/nest/a/b/c/d/e', 'h/nest/x/y', 'h/nest/a/b/c/d'];
      await Promise.all(nested.flatMap((d, i) => [0, 1].map((k) => t.put(`${d}/g${k}`, file(`n${i}${k}`, datas[i])))));
      for (const [i, d] of nested.entries()) assert.equal(await t.hash(`${d}/g1`), hashBytes(datas[i]), d);
    });

    it('concurrent puts of files larger than one write request (256 KiB..1 MiB) are byte-identical', async () => {
      const datas = Array.from({ length: 12 }, (_, i) => crypto.randomBytes(200_000 + i * 70_000));
      await Promise.all(datas.map((d, i) => t.put(`h/mid/f${i}`, file(`mid${i}`, d))));
      for (const [i, d] of datas.entries()) assert.equal(await t.hash(`h/mid/f${i}`), hashBytes(d), `f${i}`);
    });

    it('an empty file is a file', async () => {
      await t.put('h/empty', file('e', Buffer.alloc(0)));
      assert.equal((await t.stat('h/empty'))?.size, 0);
      assert.equal(await t.hash('h/empty'), 'ef46db3751d8e999');
    });

    it('put replaces an existing copy whole', async () => {
      await t.put('h/re.bin', file('1', Buffer.from('first version, longer')));
      await t.put('h/re.bin', file('2', Buffer.from('second')));
      assert.deepEqual(await readAll(await t.get('h/re.bin')), Buffer.from('second'));
    });

    it('odd names (spaces, quotes, newlines, unicode, $(...), 244 bytes) round-trip', async () => {
      for (const n of ODD_NAMES) {
        const data = Buffer.from(`content of ${n}`);
        await t.put(`h/odd/${n}`, file('o', data));
        assert.equal(await t.hash(`h/odd/${n}`), hashBytes(data), n);
      }
      assert.deepEqual((await listAll(t, 'h/odd')).sort(), ODD_NAMES.map((n) => `h/odd/${n}`).sort());
    });

    it('hashMany (where offered) returns exactly what hash() reads back, never a hash for a missing copy', async (ctx) => {
      if (!t.hashMany) return ctx.skip('target has no batch hashing');
      const rels: string[] = [];
      for (let i = 0; i < 40; i++) {
        const name = i < ODD_NAMES.length ? ODD_NAMES[i] : `m${i}`;
        const data = crypto.randomBytes(i * 100);
        await t.put(`h/many/${name}`, file('m', data));
        rels.push(`h/many/${name}`);
      }
      const all = await t.hashMany(rels);
      for (const [rel, h] of all) assert.equal(h, await t.hash(rel), rel);
      const withGap = [...rels.slice(0, 20), 'h/many/missing', ...rels.slice(20)];
      const some = await t.hashMany(withGap);
      assert.equal(some.has('h/many/missing'), false);
      for (const [rel, h] of some) assert.equal(h, await t.hash(rel), rel);
    });

    it('missing paths: stat is undefined, hash and get throw TargetError(missing)', async () => {
      assert.equal(await t.stat('h/nope'), undefined);
      await assert.rejects(t.hash('h/nope'), (e: unknown) => e instanceof TargetError && e.errorClass === 'missing');
      await assert.rejects(t.get('h/nope'), (e: unknown) => e instanceof TargetError && e.errorClass === 'missing');
    });

    it('paths that could escape the base are refused', async () => {
      for (const bad of ['../x', '/abs', 'a/../../x', 'a//b', '']) {
        await assert.rejects(t.put(bad, file('x', Buffer.from('x'))), TargetError, bad);
      }
    });

    it('an aborted put leaves nothing under the final name and no visible temp file', async () => {
      const data = crypto.randomBytes(4 << 20);
      const ac = new AbortController();
      ac.abort(new Error('stop'));
      await assert.rejects(t.put('h/abort/x.bin', file('a', data), { signal: ac.signal }), TargetError);
      assert.equal(await t.stat('h/abort/x.bin'), undefined);
      assert.deepEqual(await listAll(t, 'h/abort'), []);
    });

    for (const [what, size] of [['small', 3000], ['big', 3 << 20]] as const) {
      it(`a ${what} source whose bytes are not the settled content is never published: the previous copy stays`, async () => {
        const good = crypto.randomBytes(size);
        await t.put(`h/torn/${what}.bin`, file('good', good));
        const torn = Buffer.from(good);
        torn[size >> 1] ^= 0xff; // same size, other bytes: an in-place overwrite during the copy
        await assert.rejects(t.put(`h/torn/${what}.bin`, file('torn', torn, { hash: hashBytes(good) })), (e: unknown) => e instanceof TargetError && e.errorClass === 'changed');
        await t.sync();
        assert.equal(await t.hash(`h/torn/${what}.bin`), hashBytes(good));
        assert.deepEqual((await listAll(t, 'h/torn')).filter((p) => p.includes(what)), [`h/torn/${what}.bin`]);
      });
    }

    it('symlinks are recreated with the same link text when the target supports them', async (ctx) => {
      if (!t.capabilities.symlinks) return ctx.skip('target records symlinks in the store only');
      await t.putLink('h/ln/l1', '../some where/😀');
      assert.equal(await t.readLink('h/ln/l1'), '../some where/😀');
      await t.putLink('h/ln/l1', 'changed');
      assert.equal(await t.readLink('h/ln/l1'), 'changed');
      assert.equal(await t.readLink('h/ln/none'), undefined);
    });
  });
}
