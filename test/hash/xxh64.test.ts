import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, it } from 'node:test';
import { hashBytes, hashFile, initHasher, readAllAt } from '../../dist/lib/hash/xxh64.js';
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
