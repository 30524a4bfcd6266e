import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { AbortMultipartUploadCommand, CreateMultipartUploadCommand, DeleteObjectCommand, HeadObjectCommand, ListMultipartUploadsCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { S3Target, multipartPlan, parseS3Url } from '../../dist/lib/targets/s3.js';
import { TargetError } from '../../dist/lib/errors.js';
import { hashBytes, initHasher } from '../../dist/lib/hash/xxh64.js';
import { age, cli, json, makeTree, onTarget, rmTree, tmpDir, treeDigest, writeConfig, srcOf } from '../helpers.js';
import { startCeph, type Ceph } from '../ceph.js';
import { testTarget } from './conformance.js';
import { contractMethodsOf } from '../../dist/lib/targets/lazy.js';
import { S3_METHODS } from '../../dist/lib/targets/s3Kind.js';

let ceph: Ceph;
let bucket: string;
before(async () => { ceph = await startCeph(); bucket = await ceph.bucket(); await initHasher(); }, { timeout: 300_000 });
after(() => ceph?.stop());

const make = (url: string, extra: Partial<ConstructorParameters<typeof S3Target>[2]> = {}) =>
  new S3Target('ceph', url, { endpoint: ceph.endpoint, accessKeyId: ceph.accessKeyId, secretAccessKey: ceph.secretAccessKey, commandTimeoutMs: 5000, ...extra });

/** A 70 MiB file of random bytes (a multipart upload: 4 parts of 16 MiB and one of 6 MiB) in a new temp dir. */
function bigFile(): { dir: string; f: string; data: Buffer } {
  const dir = tmpDir();
  const f = path.join(dir, 'big.bin');
  const data = crypto.randomBytes(70 << 20);
  fs.writeFileSync(f, data);
  return { dir, f, data };
}

/** The ids of the incomplete multipart uploads under `prefix` in the test bucket. */
async function uploadsUnder(t: S3Target, prefix: string): Promise<(string | undefined)[]> {
  return ((await t.client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }))).Uploads ?? []).map((u) => u.UploadId);
}

/**
 * radosgw picks a quota change up through its bucket-info cache, sometimes seconds later (a CI run saw 12 MB land
 * under a 3 MiB quota). Wait until a put larger than the quota is refused, so the test starts from an enforced quota.
 */
async function quotaInForce(b: string, overBytes: number): Promise<void> {
  const client = new S3Client({ endpoint: ceph.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: ceph.accessKeyId, secretAccessKey: ceph.secretAccessKey } });
  try {
    for (const t0 = Date.now(); Date.now() - t0 < 60_000; await new Promise((r) => setTimeout(r, 500))) {
      try {
        await client.send(new PutObjectCommand({ Bucket: b, Key: 'quota-probe', Body: Buffer.alloc(overBytes) }));
        await client.send(new DeleteObjectCommand({ Bucket: b, Key: 'quota-probe' }));
      } catch (err) {
        if ((err as { name?: string }).name === 'QuotaExceeded') return;
        // radosgw may refuse before reading the body and close the socket: the SDK then sees the pipe break
        if (!['EPIPE', 'ECONNRESET'].includes((err as { code?: string }).code ?? '')) throw err;
      }
    }
    throw new Error(`radosgw did not enforce the quota on ${b} within 60 s`);
  } finally { client.destroy(); }
}

testTarget({ name: 's3 (a real Ceph radosgw on loopback)', create: async () => make(`s3://${bucket}/conf${Math.random().toString(36).slice(2)}`) });

describe('s3 target', () => {
  it('parses s3://bucket/prefix; keys are <prefix>/<host>/<abs path>, with xxh64, mtime and mode in the metadata', async () => {
    assert.deepEqual(parseS3Url('s3://b/x/y/'), { bucket: 'b', prefix: 'x/y' });
    assert.deepEqual(parseS3Url('s3://b'), { bucket: 'b', prefix: '' });
    const dir = tmpDir();
    const f = path.join(dir, 'f.fits');
    const data = crypto.randomBytes(5000);
    fs.writeFileSync(f, data);
    fs.chmodSync(f, 0o640);
    const t = make(`s3://${bucket}/layout`);
    await t.put('exao1/data/f.fits', await srcOf(f, { mtimeMs: 1_700_000_000_500, hash: hashBytes(data) }));
    const h = await t.client.send(new HeadObjectCommand({ Bucket: bucket, Key: 'layout/exao1/data/f.fits' }));
    assert.deepEqual(h.Metadata, { xxh64: hashBytes(data), mtime: '1700000000.500', mode: '640' });
    assert.equal(h.ContentLength, 5000);
    await t.close();
    rmTree(dir);
  });

  it('a big file goes up as a multipart upload and reads back byte-identical', async () => {
    const { dir, f, data } = bigFile();
    const t = make(`s3://${bucket}/multipart`);
    await t.put('h/big.bin', await srcOf(f, { hash: hashBytes(data) }));
    assert.equal(await t.hash('h/big.bin'), hashBytes(data));
    const h = await t.client.send(new HeadObjectCommand({ Bucket: bucket, Key: 'multipart/h/big.bin' }));
    assert.match(h.ETag ?? '', /-5"$/, 'a multipart ETag: 4 parts of 16 MiB and one of 6 MiB');
    await t.close();
    rmTree(dir);
  });

  it('a big put whose source hangs (a failing disk) is aborted by its signal, and leaves no multipart upload', async () => {
    const t = make(`s3://${bucket}/mphang`);
    const first = crypto.randomBytes(20 << 20);
    const hanging = {
      size: 70 << 20, mode: 0o644,
      readAll: () => { throw new Error('streamed only'); },
      // one part's worth and more, then a read that never returns
      stream: () => Readable.from((async function* () { yield first; await new Promise(() => undefined); })()),
    };
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error('deadline')), 1500);
    const t0 = Date.now();
    await assert.rejects(t.put('h/hung.bin', hanging, { signal: ac.signal }), (e: unknown) => e instanceof TargetError);
    assert.ok(Date.now() - t0 < 10_000, 'the put ends when its signal aborts');
    assert.deepEqual(await uploadsUnder(t, 'mphang/'), [], 'the upload aborted');
    await t.close();
  });

  it('parts: 16 MiB, 4 at a time, up to 160 GiB; bigger objects get bigger parts to fit 10,000, and fewer at once', () => {
    const MiB = 2 ** 20; const GiB = 2 ** 30; const TiB = 2 ** 40;
    assert.deepEqual(multipartPlan(64 * MiB), { partSize: 16 * MiB, atOnce: 4 });
    assert.deepEqual(multipartPlan(156 * GiB), { partSize: 16 * MiB, atOnce: 4 });
    for (const size of [200 * GiB, 1 * TiB, 5 * TiB]) {
      const { partSize, atOnce } = multipartPlan(size);
      assert.ok(Math.ceil(size / partSize) <= 10_000, `${size}: ${Math.ceil(size / partSize)} parts`);
      assert.equal(partSize % MiB, 0);
      assert.ok(partSize * atOnce <= 256 * MiB || atOnce === 1, `${size}: ${atOnce} x ${partSize}`);
      assert.ok(partSize <= 5 * GiB, 'S3 refuses parts over 5 GiB');
    }
    assert.deepEqual(multipartPlan(1 * TiB), { partSize: 105 * MiB, atOnce: 2 });
    assert.equal(multipartPlan(5 * TiB).atOnce, 1);
  });

  it('a big file whose bytes are not the settled ones, or whose put is aborted, leaves no object and no multipart upload', async () => {
    const { dir, f, data } = bigFile();
    const t = make(`s3://${bucket}/mpfail`);
    // settled with other content: the source errors before its last chunk, so the upload is never completed
    await assert.rejects(t.put('h/changed.bin', await srcOf(f, { hash: hashBytes(Buffer.from('other')) })),
      (e: unknown) => e instanceof TargetError && e.errorClass === 'changed');
    assert.equal(await t.stat('h/changed.bin'), undefined);
    // aborted while its parts go up
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error('stop')), 300);
    await assert.rejects(t.put('h/aborted.bin', await srcOf(f, { hash: hashBytes(data) }), { signal: ac.signal }), (e: unknown) => e instanceof TargetError);
    assert.equal(await t.stat('h/aborted.bin'), undefined);
    assert.deepEqual(await uploadsUnder(t, 'mpfail/'), [], 'every multipart upload aborted');
    await t.close();
    rmTree(dir);
  });

  it('check() aborts the multipart uploads a crashed run left under its prefix once they are old, and only those', async () => {
    const t = make(`s3://${bucket}/leftover`);
    const start = async (Key: string) => (await t.client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key }))).UploadId!;
    const left = await start('leftover/h/big.bin');
    const notOurs = await start('elsewhere/h/big.bin');
    await t.check(); // default: 24 h, so a fresh upload (perhaps another agent's, still running) stays
    assert.deepEqual(await uploadsUnder(t, 'leftover/'), [left]);
    await new Promise((r) => setTimeout(r, 1100)); // the service stamps uploads to the second
    await make(`s3://${bucket}/leftover`, { staleUploadMs: 500 }).check();
    assert.deepEqual(await uploadsUnder(t, 'leftover/'), [], 'the old left-over aborted');
    assert.deepEqual(await uploadsUnder(t, 'elsewhere/'), [notOurs], 'an upload under another prefix is not this target\'s');
    await t.client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: 'elsewhere/h/big.bin', UploadId: notOurs }));
    await t.close();
  });

  it('check(): a missing bucket and wrong credentials are refused with clear messages; a good one reports its steps', async () => {
    const ok = await make(`s3://${bucket}/p`).check();
    assert.deepEqual([ok.reachable, ok.authenticated, ok.writable], [true, true, true]);
    await assert.rejects(make('s3://no-such-bucket-here/p').check(), (e: unknown) => e instanceof TargetError && e.errorClass === 'unreachable' && e.permanent && /does not exist/.test(e.message));
    await assert.rejects(make(`s3://${bucket}/p`, { secretAccessKey: 'wrong' }).check(),
      (e: unknown) => e instanceof TargetError && e.stage === 'auth' && e.permanent && /credentials/.test(e.message));
  });

  it('a stopped (SIGSTOP) radosgw fails a put within the timeout (class timeout), and works again after SIGCONT', async () => {
    const dir = tmpDir();
    const f = path.join(dir, 'x');
    fs.writeFileSync(f, crypto.randomBytes(200_000));
    const t = make(`s3://${bucket}/stop`, { commandTimeoutMs: 1500 });
    await t.check();
    process.kill(ceph.rgwPid(), 'SIGSTOP');
    try {
      const t0 = Date.now();
      await assert.rejects(t.put('h/x', await srcOf(f)), (e: unknown) => e instanceof TargetError && (e.errorClass === 'timeout' || e.errorClass === 'unreachable'));
      assert.ok(Date.now() - t0 < 15_000, 'a hung S3 service must not hang the agent');
    } finally {
      process.kill(ceph.rgwPid(), 'SIGCONT');
    }
    await t.put('h/x', await srcOf(f));
    assert.equal((await t.stat('h/x'))?.size, 200_000);
    await t.close();
    rmTree(dir);
  });
});

describe('the s3 kind loads its SDK lazily', () => {
  it('the stand-in offers exactly the methods S3Target has', () => {
    assert.deepEqual([...S3_METHODS].sort(), contractMethodsOf(make('s3://b/p')));
  });
});

describe('replica run to an S3 target', () => {
  it('a full bucket quota is class quota per file while the local target completes; after the quota is raised the next run verifies all', async () => {
    const qb = await ceph.bucket();
    const dir = tmpDir();
    const src = path.join(dir, 'src');
    makeTree(src, 30, { maxBytes: 300_000 });
    for (let i = 0; i < 6; i++) fs.writeFileSync(path.join(src, `big${i}.fits`), crypto.randomBytes(1 << 20));
    for (const f of fs.readdirSync(src, { recursive: true }) as string[]) age(path.join(src, f));
    ceph.admin('quota', 'set', '--quota-scope=bucket', `--bucket=${qb}`, '--max-size=3145728');
    ceph.admin('quota', 'enable', '--quota-scope=bucket', `--bucket=${qb}`);
    await quotaInForce(qb, 4 << 20);
    const cfg = writeConfig(dir, { host: 'exao1', sources: [src], targets: [
      { name: 'ceph', url: `s3://${qb}/obs`, endpoint: ceph.endpoint, accessKeyEnv: 'T_S3_KEY', secretKeyEnv: 'T_S3_SECRET', timeouts: { command: '10s' } },
      { name: 'local', url: 'tl' }], retry: { backoff: '0s', maxBackoff: '0s' } });
    const env = { T_S3_KEY: ceph.accessKeyId, T_S3_SECRET: ceph.secretAccessKey };
    const r1 = await cli(['run', '--json', '--config', cfg], { env });
    assert.equal(r1.code, 1, r1.stderr);
    assert.doesNotMatch(r1.stderr, /NodeVersionSupportWarning/, 'no SDK nag in every cron mail');
    assert.deepEqual(treeDigest(onTarget(path.join(dir, 'tl'), 'exao1', src)), treeDigest(src), 'the local target completes');
    const st = json(await cli(['status', '--json', '--config', cfg], { env }));
    const ct = (st.targets as { name: string; verified: { files: number }; failed: { files: number; byClass: Record<string, { files: number }> } }[]).find((x) => x.name === 'ceph')!;
    assert.ok(ct.failed.files > 0 && ct.verified.files > 0, `some files fitted, some did not: ${JSON.stringify(ct)}`);
    assert.deepEqual(Object.keys(ct.failed.byClass), ['quota'], JSON.stringify(ct.failed.byClass));
    ceph.admin('quota', 'disable', '--quota-scope=bucket', `--bucket=${qb}`);
    const r2 = await cli(['run', '--json', '--config', cfg], { env });
    assert.equal(r2.code, 0, r2.stderr + r2.stdout);
    // every object is there, under <prefix>/<host>/<abs path>, byte-identical
    const t = make(`s3://${qb}/obs`);
    for (const f of fs.readdirSync(src, { recursive: true }) as string[]) {
      const p = path.join(src, f);
      if (!fs.statSync(p).isFile()) continue;
      assert.equal(await t.hash(`exao1${p}`), hashBytes(fs.readFileSync(p)), p);
    }
    const listed: string[] = [];
    for await (const k of t.list('')) listed.push(k);
    assert.ok(listed.length >= 36);
    assert.ok((await t.stat('.replica/exao1/meta.json')) !== undefined, 'the store is shipped to the bucket too');
    await t.close();
    rmTree(dir);
  });
});

describe('replica check on S3 targets', () => {
  it('reports reachable, authenticated, writable (no free space from S3); a missing bucket and bad credentials say so; an unset credential variable is a config error', async () => {
    const dir = tmpDir();
    const t = (name: string, url: string, extra = {}) => ({ name, url, endpoint: ceph.endpoint, accessKeyEnv: 'T_S3_KEY', secretKeyEnv: 'T_S3_SECRET', ...extra });
    fs.mkdirSync(path.join(dir, 'src')); // the store (.replica beside the config) must not be inside a source
    const cfg = writeConfig(dir, { host: 'c', sources: [path.join(dir, 'src')], targets: [t('good', `s3://${bucket}/chk`), t('nobucket', 's3://replica-missing-bucket/x'), t('badkey', `s3://${bucket}/chk`, { secretKeyEnv: 'T_S3_WRONG' })] });
    const env = { T_S3_KEY: ceph.accessKeyId, T_S3_SECRET: ceph.secretAccessKey, T_S3_WRONG: 'not-the-secret' };
    const r = await cli(['check', '--json', '--config', cfg], { env });
    assert.equal(r.code, 1, r.stderr);
    const items = json(r) as { what: string; ok: boolean; reachable?: boolean; authenticated?: boolean; writable?: boolean; freeBytes?: number; detail: string }[];
    const good = items.find((i) => i.what === 'target good')!;
    assert.deepEqual([good.ok, good.reachable, good.authenticated, good.writable, good.freeBytes], [true, true, true, true, undefined]);
    const nb = items.find((i) => i.what === 'target nobucket')!;
    assert.equal(nb.ok, false);
    assert.match(nb.detail, /bucket replica-missing-bucket does not exist \(replica never creates it/);
    const bad = items.find((i) => i.what === 'target badkey')!;
    assert.deepEqual([bad.ok, bad.reachable, bad.authenticated], [false, true, false]);
    const unset = await cli(['run', '--config', cfg], { env: { T_S3_KEY: ceph.accessKeyId } });
    assert.equal(unset.code, 78);
    assert.match(unset.stderr, /targets\[0\]\.secretKeyEnv: environment variable T_S3_SECRET is not set/);
    rmTree(dir);
  });
});

describe('replica restore from an S3 target', () => {
  it('--to and in place, byte-identical with mtime and mode; --at reads the version kept in the bucket; a corrupt object is served by the local target', async () => {
    const { restoreScenario } = await import('../restoreScenario.js');
    const b = await ceph.bucket();
    const client = new S3Client({ endpoint: ceph.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: ceph.accessKeyId, secretAccessKey: ceph.secretAccessKey } });
    try {
      await restoreScenario({ url: `s3://${b}/obs`, endpoint: ceph.endpoint, accessKeyEnv: 'T_S3_KEY', secretKeyEnv: 'T_S3_SECRET', timeouts: { command: '10s' } }, {
        env: { T_S3_KEY: ceph.accessKeyId, T_S3_SECRET: ceph.secretAccessKey },
        corrupt: async (rel) => { // the same size and metadata, one byte flipped
          const Key = `obs/${rel}`;
          const head = await client.send(new HeadObjectCommand({ Bucket: b, Key }));
          const t = make(`s3://${b}/obs`);
          const chunks: Buffer[] = [];
          for await (const c of await t.get(rel) as AsyncIterable<Buffer>) chunks.push(c);
          await t.close();
          const body = Buffer.concat(chunks);
          body[1000] ^= 0xff;
          await client.send(new PutObjectCommand({ Bucket: b, Key, Body: body, Metadata: head.Metadata }));
        },
      });
    } finally {
      client.destroy();
    }
  });
});

describe('replica adopt on an S3 target', () => {
  it('objects written with an xxh64 in their metadata are adopted without a read; objects without it (another tool) are read back; a different one stays pending, an orphan is recorded', async () => {
    await initHasher();
    const b = await ceph.bucket();
    const client = new S3Client({ endpoint: ceph.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: ceph.accessKeyId, secretAccessKey: ceph.secretAccessKey } });
    const dir = tmpDir();
    const src = path.join(dir, 'src');
    fs.mkdirSync(src);
    try {
      const data = Array.from({ length: 6 }, (_, i) => crypto.randomBytes(10_000 + i));
      for (const [i, d] of data.entries()) { fs.writeFileSync(path.join(src, `f${i}`), d); age(path.join(src, `f${i}`)); }
      const put = (name: string, body: Buffer, meta: boolean) => client.send(new PutObjectCommand({ Bucket: b, Key: `obs/h${src}/${name}`, Body: body, ...(meta ? { Metadata: { xxh64: hashBytes(body) } } : {}) }));
      for (let i = 0; i < 3; i++) await put(`f${i}`, data[i], true);
      for (let i = 3; i < 5; i++) await put(`f${i}`, data[i], false);
      await put('f5', Buffer.from('an older content'), false);
      await put('gone', Buffer.from('only in the bucket'), false);
      const cfg = writeConfig(dir, { host: 'h', sources: [src], targets: [{ name: 'ceph', url: `s3://${b}/obs`, endpoint: ceph.endpoint, accessKeyEnv: 'T_S3_KEY', secretKeyEnv: 'T_S3_SECRET' }] });
      const env = { T_S3_KEY: ceph.accessKeyId, T_S3_SECRET: ceph.secretAccessKey };
      const r = await cli(['adopt', '--json', '--target', 'ceph', '--config', cfg], { env });
      assert.equal(r.code, 0, r.stderr);
      const a = json(r);
      assert.deepEqual([a.listed, a.adopted.files, a.fromMetadata, a.differing, a.orphaned], [7, 5, 3, [path.join(src, 'f5')], [path.join(src, 'gone')]]);
      const run = json(await cli(['run', '--json', '--config', cfg], { env }));
      assert.equal(run.counts.copied, 1, 'only the differing object is written');
      assert.equal((await cli(['verify', '--all', '--config', cfg], { env })).code, 0, 'every adopted object verifies by its bytes');
      const out = path.join(dir, 'out');
      assert.equal((await cli(['restore', path.join(src, 'gone'), '--to', out, '--config', cfg], { env })).code, 0);
      assert.equal(fs.readFileSync(path.join(out, src, 'gone'), 'utf8'), 'only in the bucket');
    } finally {
      client.destroy();
      rmTree(dir);
    }
  });
});

describe('deleteLocalAfter with an S3 target', () => {
  it('the live check HEADs each object: an object deleted keeps its source until it is copied again; removed sources restore byte-identical', async () => {
    const { deleteLocalScenario } = await import('../deleteLocalScenario.js');
    const b = await ceph.bucket();
    const client = new S3Client({ endpoint: ceph.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: ceph.accessKeyId, secretAccessKey: ceph.secretAccessKey } });
    try {
      await deleteLocalScenario({ url: `s3://${b}/obs`, endpoint: ceph.endpoint, accessKeyEnv: 'T_S3_KEY', secretKeyEnv: 'T_S3_SECRET', timeouts: { command: '10s' } }, {
        env: { T_S3_KEY: ceph.accessKeyId, T_S3_SECRET: ceph.secretAccessKey },
        remove: async (rel) => { await client.send(new DeleteObjectCommand({ Bucket: b, Key: `obs/${rel}` })); },
      });
    } finally {
      client.destroy();
    }
  });
});

describe('replica verify on an S3 target', () => {
  it('a corrupted and a deleted object are found (mismatch, missing) and repaired by the next run', async () => {
    const { verifyScenario } = await import('../verifyScenario.js');
    const b = await ceph.bucket();
    const client = new S3Client({ endpoint: ceph.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: ceph.accessKeyId, secretAccessKey: ceph.secretAccessKey } });
    const t = make(`s3://${b}/obs`);
    const read = async (rel: string) => { const chunks: Buffer[] = []; for await (const c of await t.get(rel) as AsyncIterable<Buffer>) chunks.push(c); return Buffer.concat(chunks); };
    try {
      await verifyScenario({ url: `s3://${b}/obs`, endpoint: ceph.endpoint, accessKeyEnv: 'T_S3_KEY', secretKeyEnv: 'T_S3_SECRET', timeouts: { command: '10s' } }, {
        env: { T_S3_KEY: ceph.accessKeyId, T_S3_SECRET: ceph.secretAccessKey },
        corrupt: async (rel) => {
          const head = await client.send(new HeadObjectCommand({ Bucket: b, Key: `obs/${rel}` }));
          const body = await read(rel);
          body[2000] ^= 1;
          await client.send(new PutObjectCommand({ Bucket: b, Key: `obs/${rel}`, Body: body, Metadata: head.Metadata }));
        },
        remove: async (rel) => { await client.send(new DeleteObjectCommand({ Bucket: b, Key: `obs/${rel}` })); },
        read,
      });
    } finally {
      await t.close();
      client.destroy();
    }
  });
});
