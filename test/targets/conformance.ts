import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, it, before, after } from 'node:test';
import { TargetError } from '../../dist/lib/errors.js';
import { hashBytes, initHasher } from '../../dist/lib/hash/xxh64.js';
import {
  type BatchPut, type Links, type RandomRead, type RemoteHash, type Target, type TempFiles, type Versions, hasBatchPut, hasLinks, hasRandomRead, hasRemoteHash, hasTempFiles, hasVersions,
} from '../../dist/lib/targets/target.js';
import { tempName, versionPath } from '../../dist/lib/targets/layout.js';
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

/** What a kind may offer beyond the core: each block of the suite runs where its capability is offered. */
type AnyTarget = Target & Partial<RandomRead & Links & RemoteHash & TempFiles & Versions>;

async function listAll(t: RandomRead, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const p of t.list(prefix)) out.push(p);
  return out;
}

/**
 * The Target contract, run against every kind of target: the core block on all, one block per capability on
 * the kinds that offer it (a kind without it skips that block, saying so). Same tests, no exceptions.
 */
export function testTarget(opts: ConformanceOptions): void {
  describe(`Target conformance: ${opts.name}`, () => {
    let t: AnyTarget & RandomRead & Links & RemoteHash & TempFiles & Versions;
    let core: Target;
    /** skip the test unless the target offers `cap` */
    const needs = (ctx: { skip: (why: string) => void }, cap: string, offered: boolean): boolean => {
      if (!offered) ctx.skip(`the target does not offer ${cap}`);
      return offered;
    };
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
      core = await opts.create();
      t = core as typeof t;
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

    it('core: readBack hashes what was put, per path, and says missing for a path with nothing there', async () => {
      const a = crypto.randomBytes(70_000);
      const b = crypto.randomBytes(10);
      await core.put('h/rb/a', file('rba', a));
      await core.put('h/rb/b c', file('rbb', b));
      await core.sync();
      const got = await core.readBack(['h/rb/a', 'h/rb/b c', 'h/rb/none'], { concurrency: 2 });
      assert.equal(got.get('h/rb/a'), hashBytes(a));
      assert.equal(got.get('h/rb/b c'), hashBytes(b));
      const none = got.get('h/rb/none');
      assert.ok(none instanceof TargetError && none.errorClass === 'missing', String(none));
    });

    it('random read: put a file, then stat, hash, get and list see exactly its bytes', async (ctx) => {
      if (!needs(ctx, 'random read', hasRandomRead(core))) return;
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

    it('random read: put from memory, and a large file over several read chunks', async (ctx) => {
      if (!needs(ctx, 'random read', hasRandomRead(core))) return;
      const data = crypto.randomBytes(9 * 1024 * 1024 + 7);
      await t.put('h/stream.bin', bufferSource(data, { hash: hashBytes(data) }));
      assert.equal(await t.hash('h/stream.bin'), hashBytes(data));
      await t.put('h/big.bin', file('big', data));
      assert.equal(await t.hash('h/big.bin'), hashBytes(data));
    });

    it('random read: concurrent puts into one new directory all land (first-use cleanup must not eat a neighbour\'s temp)', async (ctx) => {
      if (!needs(ctx, 'random read', hasRandomRead(core))) return;
      const datas = Array.from({ length: 16 }, (_, i) => crypto.randomBytes(1000 + i));
      await Promise.all(datas.map((d, i) => t.put(`h/conc/new/f${i}`, file(`c${i}`, d))));
      for (const [i, d] of datas.entries()) assert.equal(await t.hash(`h/conc/new/f${i}`), hashBytes(d));
      // and into new directories nested in each other, all at once (a parent another put is still making)
      const nested = ['h/nest/a', 'h/nest/a/b/c', 'h/nest/a/b', 'h/nest/a/b/c/d/e', 'h/nest/x/y', 'h/nest/a/b/c/d'];
      await Promise.all(nested.flatMap((d, i) => [0, 1].map((k) => t.put(`${d}/g${k}`, file(`n${i}${k}`, datas[i])))));
      for (const [i, d] of nested.entries()) assert.equal(await t.hash(`${d}/g1`), hashBytes(datas[i]), d);
    });

    it('random read: concurrent puts of files larger than one write request (256 KiB..1 MiB) are byte-identical', async (ctx) => {
      if (!needs(ctx, 'random read', hasRandomRead(core))) return;
      const datas = Array.from({ length: 12 }, (_, i) => crypto.randomBytes(200_000 + i * 70_000));
      await Promise.all(datas.map((d, i) => t.put(`h/mid/f${i}`, file(`mid${i}`, d))));
      for (const [i, d] of datas.entries()) assert.equal(await t.hash(`h/mid/f${i}`), hashBytes(d), `f${i}`);
    });

    it('random read: an empty file is a file', async (ctx) => {
      if (!needs(ctx, 'random read', hasRandomRead(core))) return;
      await t.put('h/empty', file('e', Buffer.alloc(0)));
      assert.equal((await t.stat('h/empty'))?.size, 0);
      assert.equal(await t.hash('h/empty'), 'ef46db3751d8e999');
    });

    it('random read: put replaces an existing copy whole', async (ctx) => {
      if (!needs(ctx, 'random read', hasRandomRead(core))) return;
      await t.put('h/re.bin', file('1', Buffer.from('first version, longer')));
      await t.put('h/re.bin', file('2', Buffer.from('second')));
      assert.deepEqual(await readAll(await t.get('h/re.bin')), Buffer.from('second'));
    });

    it('random read: odd names (spaces, quotes, newlines, unicode, $(...), 244 bytes) round-trip', async (ctx) => {
      if (!needs(ctx, 'random read', hasRandomRead(core))) return;
      for (const n of ODD_NAMES) {
        const data = Buffer.from(`content of ${n}`);
        await t.put(`h/odd/${n}`, file('o', data));
        assert.equal(await t.hash(`h/odd/${n}`), hashBytes(data), n);
      }
      assert.deepEqual((await listAll(t, 'h/odd')).sort(), ODD_NAMES.map((n) => `h/odd/${n}`).sort());
    });

    it('batch put: putMany puts each file whole with its mode and mtime, and answers per item (a source that is not its settled content is not published)', async (ctx) => {
      if (!needs(ctx, 'batch put', hasBatchPut(core))) return;
      const b = core as Target & BatchPut;
      const datas = Array.from({ length: 5 }, (_, i) => crypto.randomBytes(100 + i * 3000));
      const items = datas.map((d, i) => ({ rel: `h/many/${i % 2 ? 'new/deeper' : 'top'}/f ${i}`, src: file(`m${i}`, d, { mtimeMs: 1_650_000_000_000 + i * 1000 }) }));
      // item 2's bytes are not what it claims (a source changed after it settled)
      items[2] = { rel: 'h/many/top/changed', src: file('m2', datas[2], { hash: '0123456789abcdef' }) };
      const res = await b.putMany(items);
      assert.equal(res.length, 5);
      for (const i of [0, 1, 3, 4]) assert.equal(res[i], undefined, `item ${i}: ${String(res[i])}`);
      assert.ok(res[2] !== undefined && /changed/.test(String((res[2] as TargetError).errorClass ?? res[2].message)), String(res[2]));
      await core.sync();
      const back = await core.readBack(items.map((x) => x.rel));
      for (const i of [0, 1, 3, 4]) assert.equal(back.get(items[i].rel), hashBytes(datas[i]), items[i].rel);
      const none = back.get('h/many/top/changed');
      assert.ok(none instanceof TargetError && none.errorClass === 'missing', `nothing published for the changed source: ${String(none)}`);
      if (hasRandomRead(core)) {
        const st = await t.stat(items[3].rel);
        if (st?.mtimeMs !== undefined) assert.equal(Math.round(st.mtimeMs), 1_650_000_003_000);
        if (st?.mode !== undefined) assert.equal(st.mode, 0o644);
        // no temp file left beside them
        assert.deepEqual((await listAll(t, 'h/many')).sort(), items.filter((_, i) => i !== 2).map((x) => x.rel).sort());
      }
    });

    it('remote hash: hashMany returns exactly what hash() reads back, never a hash for a missing copy', async (ctx) => {
      if (!needs(ctx, 'remote hashing', hasRemoteHash(core))) return;
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

    it('random read: missing paths: stat is undefined, hash and get throw TargetError(missing)', async (ctx) => {
      if (!needs(ctx, 'random read', hasRandomRead(core))) return;
      assert.equal(await t.stat('h/nope'), undefined);
      await assert.rejects(t.hash('h/nope'), (e: unknown) => e instanceof TargetError && e.errorClass === 'missing');
      await assert.rejects(t.get('h/nope'), (e: unknown) => e instanceof TargetError && e.errorClass === 'missing');
    });

    it('core: paths that could escape the base are refused', async () => {
      for (const bad of ['../x', '/abs', 'a/../../x', 'a//b', '']) {
        await assert.rejects(core.put(bad, file('x', Buffer.from('x'))), TargetError, bad);
      }
    });

    it('random read: replica\'s own files (.replica, .replica-versions, temp names) are never listed as user files', async (ctx) => {
      if (!needs(ctx, 'random read', hasRandomRead(core))) return;
      const x = Buffer.from('x');
      for (const rel of ['.replica/h/meta.json', '.replica/h/files/00-of-1.json', 'h/.replica-versions/opt/a@20260101T000000Z', 'h/res/user.txt']) {
        await t.put(rel, file('res', x));
      }
      await t.sync();
      const all = await listAll(t, '');
      assert.ok(all.includes('h/res/user.txt'), all.join(','));
      assert.deepEqual(all.filter((p) => p.includes('.replica')), []);
      assert.deepEqual(await listAll(t, 'h/res'), ['h/res/user.txt']);
    });

    it('random read: an aborted put leaves nothing under the final name and no visible temp file', async (ctx) => {
      if (!needs(ctx, 'random read', hasRandomRead(core))) return;
      const data = crypto.randomBytes(4 << 20);
      const ac = new AbortController();
      ac.abort(new Error('stop'));
      await assert.rejects(t.put('h/abort/x.bin', file('a', data), { signal: ac.signal }), TargetError);
      assert.equal(await t.stat('h/abort/x.bin'), undefined);
      assert.deepEqual(await listAll(t, 'h/abort'), []);
    });

    for (const [what, size] of [['small', 3000], ['big', 3 << 20]] as const) {
      it(`core: a ${what} source whose bytes are not the settled content is never published: the previous copy stays`, async () => {
        const good = crypto.randomBytes(size);
        await core.put(`h/torn/${what}.bin`, file('good', good));
        const torn = Buffer.from(good);
        torn[size >> 1] ^= 0xff; // same size, other bytes: an in-place overwrite during the copy
        await assert.rejects(core.put(`h/torn/${what}.bin`, file('torn', torn, { hash: hashBytes(good) })), (e: unknown) => e instanceof TargetError && e.errorClass === 'changed');
        await core.sync();
        assert.equal((await core.readBack([`h/torn/${what}.bin`])).get(`h/torn/${what}.bin`), hashBytes(good));
        if (hasRandomRead(core)) assert.deepEqual((await listAll(core, 'h/torn')).filter((p) => p.includes(what)), [`h/torn/${what}.bin`]);
      });
    }

    it('links: symlinks are recreated with the same link text', async (ctx) => {
      if (!needs(ctx, 'symlinks (it records them in the store only)', hasLinks(core))) return;
      await t.putLink('h/ln/l1', '../some where/😀');
      assert.equal(await t.readLink('h/ln/l1'), '../some where/😀');
      await t.putLink('h/ln/l1', 'changed');
      assert.equal(await t.readLink('h/ln/l1'), 'changed');
      assert.equal(await t.readLink('h/ln/none'), undefined);
    });

    it('versions: a copy kept aside holds its bytes under the version name while the live copy stays until replaced; listed oldest first; removeVersion deletes one', async (ctx) => {
      if (!needs(ctx, 'versions', hasVersions(core))) return;
      const v1 = Buffer.from('first content');
      const v2 = Buffer.from('second, longer content');
      const v3 = Buffer.from('third');
      const rel = 'h/ver/a b.fits';
      const at = (s: number) => new Date(Date.UTC(2026, 10, 30, 7, 0, s));
      await t.put(rel, file('v1', v1));
      assert.equal(await t.keepAside(rel, versionPath('h', '/ver/a b.fits', at(1))), true);
      assert.equal((await t.readBack([rel])).get(rel), hashBytes(v1), 'the live copy stays until the new content replaces it');
      await t.put(rel, file('v2', v2));
      assert.equal(await t.keepAside(rel, versionPath('h', '/ver/a b.fits', at(1), 1)), true, 'a clash in the same second takes -1');
      await t.put(rel, file('v3', v3));
      const versions = await t.listVersions(rel);
      assert.deepEqual(versions, ['h/.replica-versions/ver/a b.fits@20261130T070001Z', 'h/.replica-versions/ver/a b.fits@20261130T070001Z-1']);
      const back = await t.readBack([rel, ...versions]);
      assert.deepEqual([back.get(rel), back.get(versions[0]), back.get(versions[1])], [hashBytes(v3), hashBytes(v1), hashBytes(v2)]);
      assert.deepEqual(await listAll(t, 'h/ver'), [rel], 'versions are never listed as user files');
      assert.deepEqual(await t.listVersions('h/ver/a b'), [], 'a name that is a prefix of another has no versions of its own');
      assert.equal(await t.keepAside('h/ver/none', versionPath('h', '/ver/none', at(2))), false, 'nothing there: nothing kept');
      await t.removeVersion(versions[0]);
      assert.deepEqual(await t.listVersions(rel), [versions[1]]);
    });

    it('temp files: removeTemps removes a killed run\'s temp files in the named directories, never this process\'s own', async (ctx) => {
      if (!needs(ctx, 'temp files', hasTempFiles(core))) return;
      await t.put('h/tmp/keep', file('k', Buffer.from('k')));
      const stale = '.replica-deadbeef0001.tmp';
      await t.put(`h/tmp/${stale}`, file('s', Buffer.from('stale'))); // what a killed run leaves
      const own = tempName();
      await t.put(`h/tmp/${own}`, file('o', Buffer.from('own')));
      assert.equal(await t.removeTemps(['h/tmp']), 1);
      assert.equal(await t.stat(`h/tmp/${stale}`), undefined);
      assert.notEqual(await t.stat(`h/tmp/${own}`), undefined, 'a temp of this process (a put in flight) stays');
      assert.notEqual(await t.stat('h/tmp/keep'), undefined);
    });
  });
}
