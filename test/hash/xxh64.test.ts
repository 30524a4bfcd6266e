import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, it } from 'node:test';
import { CHUNK, hashBuffer, hashBytes, hashFile, initHasher, newHasher, readAllAt } from '../../dist/lib/hash/xxh64.js';
import { rmTree, tmpDir } from '../helpers.js';

const dir = tmpDir();
after(() => rmTree(dir));

it('readAllAt: every buffer it returns holds its own file whole, also while hundreds are kept at once (small ones share slabs)', async () => {
  await initHasher();
  // sizes around the slab cut (32 KiB alone or in a slab) and the slab's end, many in a row
  const sizes = [0, 1, 7, 4096, 4095, 32 << 10, (32 << 10) - 1, (32 << 10) + 1, 300 << 10, ...Array.from({ length: 300 }, (_, i) => 1000 + i * 97)];
  const want: Buffer[] = [];
  const got: Buffer[] = [];
  for (const [i, size] of sizes.entries()) {
    const f = path.join(dir, `f${i}`);
    want.push(crypto.randomBytes(size));
    fs.writeFileSync(f, want[i]);
    const fd = fs.openSync(f, 'r');
    try {
      got.push(readAllAt(fd));
    } finally {
      fs.closeSync(fd);
    }
  }
  // compared only once all were read: a later read written into an earlier one's bytes would show here
  for (const [i, b] of got.entries()) assert.ok(b.equals(want[i]), `file ${i} (${sizes[i]} bytes) read back intact`);
  assert.equal(hashBytes(got[3]), (await hashFile(path.join(dir, 'f3'))).hash);
});

it('readAllAt: a file that grew past the size given is read to its end', () => {
  const f = path.join(dir, 'grown');
  const data = crypto.randomBytes(10_000);
  fs.writeFileSync(f, data);
  const fd = fs.openSync(f, 'r');
  try {
    assert.ok(readAllAt(fd, 100).equals(data));
  } finally {
    fs.closeSync(fd);
  }
});

/** The reference: xxhash-wasm's own API (its own instance, the input copied in whole), as hex. */
async function reference(b: Uint8Array): Promise<string> {
  return (await initHasher()).h64Raw(b).toString(16).padStart(16, '0');
}

// sizes around the 256 KiB pieces ordinary bytes are copied in by, and around a read buffer's size
const SIZES = [0, 1, 31, 32, 33, 4096, (256 << 10) - 1, 256 << 10, (256 << 10) + 1, (768 << 10) + 5, CHUNK - 1, CHUNK];

it('xxh64 in the hasher\'s memory (hashBuffer) and from ordinary memory, one-shot and in pieces, agree with xxhash-wasm\'s own API', async () => {
  await initHasher();
  const inPlace = hashBuffer();
  for (const size of SIZES) {
    const data = crypto.randomBytes(size);
    const want = await reference(data);
    assert.equal(hashBytes(data), want, `${size} bytes, ordinary memory`);
    data.copy(inPlace);
    const held = inPlace.subarray(0, size);
    assert.equal(hashBytes(held), want, `${size} bytes, in place`);
    // in pieces of odd sizes, from either memory; an update may also start inside a read buffer
    for (const from of [data, held]) {
      const h = newHasher();
      for (let off = 0, k = 0; off < size; k++) {
        const n = [1, 7, 300 << 10, 13, 64 << 10][k % 5];
        h.update(from.subarray(off, off + n));
        off += n;
      }
      assert.equal(h.digest(), want, `${size} bytes in pieces, ${from === data ? 'ordinary memory' : 'in place'}`);
    }
  }
});

it('xxh64: hashes updated in turn keep each its own state; the same hasher\'s digest can be asked twice', async () => {
  await initHasher();
  const a = crypto.randomBytes(3 << 20);
  const b = crypto.randomBytes(5 << 20);
  const ha = newHasher();
  const hb = newHasher();
  for (let off = 0; off < b.length; off += 1 << 20) {
    if (off < a.length) ha.update(a.subarray(off, off + (1 << 20)));
    hb.update(b.subarray(off, off + (1 << 20)));
  }
  assert.equal(ha.digest(), await reference(a));
  assert.equal(hb.digest(), await reference(b));
  assert.equal(hb.digest(), await reference(b));
});

it('hashBuffer: more buffers than fit in the hasher\'s memory are ordinary ones; none shares bytes with another', async () => {
  await initHasher();
  const bufs = Array.from({ length: 12 }, () => hashBuffer());
  const want = bufs.map(() => crypto.randomBytes(CHUNK));
  for (const [i, b] of bufs.entries()) {
    assert.equal(b.length, CHUNK);
    want[i].copy(b);
  }
  // checked only once all were written: overlapping buffers would show here
  for (const [i, b] of bufs.entries()) {
    assert.ok(b.equals(want[i]), `buffer ${i} intact`);
    assert.equal(hashBytes(b), await reference(want[i]), `buffer ${i} hashes right`);
  }
});
