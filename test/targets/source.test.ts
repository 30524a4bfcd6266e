import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, it } from 'node:test';
import { SourceError } from '../../dist/lib/errors.js';
import { hashBytes, initHasher } from '../../dist/lib/hash/xxh64.js';
import { FdSource } from '../../dist/lib/targets/source.js';
import { blockingMount, rmTree, tmpDir } from '../helpers.js';

const dir = tmpDir('replica-source-');
after(() => rmTree(dir));

function fileOf(name: string, data: Buffer): { fd: number; file: string } {
  const file = path.join(dir, name);
  fs.writeFileSync(file, data);
  return { fd: fs.openSync(file, 'r'), file };
}

async function drain(s: NodeJS.ReadableStream): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const c of s) out.push(c as Buffer);
  return out;
}

it('stream() hands out the bytes in order, in chunks of at most 256 KiB, and proves them against the settled hash', async () => {
  await initHasher();
  const data = crypto.randomBytes((5 << 20) / 2 + 3); // 2.5 MiB + 3: ten whole chunks and a short one
  const { fd, file } = fileOf('whole.bin', data);
  try {
    const chunks = await drain(new FdSource(fd, data.length, 0o644, undefined, hashBytes(data), file).stream());
    assert.ok(chunks.every((c) => c.length <= 256 << 10), `chunk sizes ${chunks.map((c) => c.length).join(',')}`);
    assert.equal(chunks.length, 11);
    assert.deepEqual(Buffer.concat(chunks), data);
    // the same source read again: from byte 0 (a put may be retried)
    assert.deepEqual(Buffer.concat(await drain(new FdSource(fd, data.length, 0o644, undefined, hashBytes(data), file).stream())), data);
  } finally {
    fs.closeSync(fd);
  }
});

it('stream() of a file that grew after it settled errors (changed) before its last chunk is handed out', async () => {
  await initHasher();
  const settled = crypto.randomBytes(600 << 10);
  const { fd, file } = fileOf('grew.bin', settled);
  fs.appendFileSync(file, 'more'); // written to after it settled: the read sees 4 bytes more than the settled size
  try {
    const got: Buffer[] = [];
    const s = new FdSource(fd, settled.length, 0o644, undefined, hashBytes(settled), file).stream();
    await assert.rejects((async () => { for await (const c of s) got.push(c as Buffer); })(), (e: unknown) => e instanceof SourceError && e.errorClass === 'changed');
    assert.ok(Buffer.concat(got).length < settled.length, 'the last chunk was held back');
  } finally {
    fs.closeSync(fd);
  }
});

it('stream() of a file cut short after it settled errors (changed): what it handed out is the file from byte 0, nothing read ahead from past the cut', async () => {
  await initHasher();
  const settled = crypto.randomBytes(2 << 20); // eight chunks: reads are asked for several chunks ahead
  const { fd, file } = fileOf('cut.bin', settled);
  fs.truncateSync(file, (300 << 10) + 5); // mid-chunk: the second read comes back short
  try {
    const got: Buffer[] = [];
    const s = new FdSource(fd, settled.length, 0o644, undefined, hashBytes(settled), file).stream();
    await assert.rejects((async () => { for await (const c of s) got.push(c as Buffer); })(), (e: unknown) => e instanceof SourceError && e.errorClass === 'changed');
    const out = Buffer.concat(got);
    assert.ok(out.length <= (300 << 10) + 5);
    assert.deepEqual(out, settled.subarray(0, out.length));
  } finally {
    fs.closeSync(fd);
  }
});

it('stream() of a descriptor whose reads fail (EISDIR here, EIO on a failing disk) errors with that error; the reads asked ahead fail unhandled nowhere', async () => {
  await initHasher();
  const d = path.join(dir, 'not-a-file');
  fs.mkdirSync(d, { recursive: true });
  const fd = fs.openSync(d, 'r');
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown) => unhandled.push(e);
  process.on('unhandledRejection', onUnhandled);
  try {
    const s = new FdSource(fd, 2 << 20, 0o644, undefined, undefined, d).stream();
    await assert.rejects(drain(s), (e: unknown) => (e as NodeJS.ErrnoException).code === 'EISDIR');
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(unhandled, []);
  } finally {
    process.off('unhandledRejection', onUnhandled);
    fs.closeSync(fd);
  }
});

it('stream() of a file on a disk that fails past its second chunk (EIO): the reads asked ahead fail while the consumer holds the first, and the error comes where the next chunk is asked for, not as an unhandled rejection', async () => {
  await initHasher();
  const d = tmpDir('replica-source-eio-');
  const fuse = await blockingMount(d);
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown) => unhandled.push(e);
  process.on('unhandledRejection', onUnhandled);
  try {
    const data = crypto.randomBytes(2 << 20);
    const file = path.join(fuse.mnt, 'bad-sector.bin');
    fs.writeFileSync(file, data);
    // every read from the third chunk on: the first is handed out once the second is in (provenChunks holds one back)
    fuse.eioFrom(512 << 10);
    const fd = fs.openSync(file, 'r');
    try {
      const it = new FdSource(fd, data.length, 0o644, undefined, hashBytes(data), file).stream()[Symbol.asyncIterator]();
      const first = await it.next();
      assert.deepEqual(first.value, data.subarray(0, 256 << 10));
      await new Promise((r) => setTimeout(r, 300)); // the consumer busy with it: the reads ahead fail meanwhile
      assert.deepEqual(unhandled, [], 'no read failed unhandled');
      // on from there: the kernel's own read-ahead may have brought a little past the bad offset into its cache
      const got = [first.value as Buffer];
      await assert.rejects((async () => { for (let r = await it.next(); !r.done; r = await it.next()) got.push(r.value as Buffer); })(),
        (e: unknown) => (e as NodeJS.ErrnoException).code === 'EIO');
      const out = Buffer.concat(got);
      assert.ok(out.length < data.length, 'the stream ended with the error, not with the whole file');
      assert.deepEqual(out, data.subarray(0, out.length));
    } finally {
      fs.closeSync(fd);
    }
  } finally {
    process.off('unhandledRejection', onUnhandled);
    await fuse.stop();
    rmTree(d);
  }
});

it('a consumer that stops after the first chunk ends the stream cleanly: the read already in flight is waited for, never left to fail on a closed descriptor', async () => {
  await initHasher();
  const data = crypto.randomBytes(4 << 20);
  const { fd, file } = fileOf('stop.bin', data);
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown) => unhandled.push(e);
  process.on('unhandledRejection', onUnhandled);
  try {
    for (let round = 0; round < 20; round++) {
      const s = new FdSource(fd, data.length, 0o644, undefined, hashBytes(data), file).stream();
      for await (const c of s) {
        assert.deepEqual(c, data.subarray(0, (c as Buffer).length));
        break; // destroys the stream: the generator's finally runs
      }
      await new Promise((r) => setImmediate(r));
      assert.equal(s.destroyed, true);
    }
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(unhandled, []);
  } finally {
    process.off('unhandledRejection', onUnhandled);
    fs.closeSync(fd);
  }
});
