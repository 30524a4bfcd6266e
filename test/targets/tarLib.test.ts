import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { it } from 'node:test';
import { TarWalker, blocks, headerRoom, loadTar, memberHeader } from '../../dist/lib/targets/tarLib.js';
import { rmTree, tmpDir } from '../helpers.js';

const NAMES = [
  'h/short.dat',
  `h/${'d'.repeat(90)}/${'n'.repeat(60)}.dat`, // over 100 bytes: ustar's prefix field holds the directories
  `h/${'long-'.repeat(60)}.dat`, // one name of 300 bytes: a pax header
  'h/ünïcødé 名前.dat', // not ASCII: a pax header
  'h/a "quoted" \'name\' with spaces\nand a newline.dat',
  `${'x'.repeat(120)}.dat`, // over 100 bytes with no slash to split it at: a pax header
];

/** What tar-stream's pack() writes for these members (no end-of-archive blocks). */
async function packed(members: { name: string; data: Buffer; mode: number; mtime: Date }[], finalize = false): Promise<Buffer> {
  const pack = (await loadTar()).pack();
  const chunks: Buffer[] = [];
  const done = pipeline(pack, new Writable({ write(c: Buffer, _e, cb) { chunks.push(c); cb(); } }));
  for (const m of members) pack.entry({ name: m.name, size: m.data.length, mode: m.mode, mtime: m.mtime, type: 'file' }, m.data);
  pack.finalize();
  await done;
  const all = Buffer.concat(chunks);
  return finalize ? all : all.subarray(0, all.length - 1024);
}

it('tarLib: memberHeader gives the header blocks tar-stream\'s pack() writes, byte for byte, for every kind of name; headerRoom bounds them', async () => {
  for (const [k, name] of NAMES.entries()) {
    const data = crypto.randomBytes(k * 700);
    const m = { name, data, mode: k % 2 ? 0o600 : 0o644, mtime: new Date(1_700_000_000_000 + k * 1000) };
    const header = memberHeader({ name, size: data.length, mode: m.mode, mtime: m.mtime });
    const laid = Buffer.concat([header, data, Buffer.alloc(blocks(data.length) - data.length)]);
    assert.deepEqual(laid, await packed([m]), name);
    assert.ok(header.length <= headerRoom(name), `${name}: ${header.length} > ${headerRoom(name)}`);
    assert.equal(header.length > 512, [2, 3, 5].includes(k), name); // a pax header exactly where ustar cannot hold the name
  }
  assert.equal(memberHeader({ name: NAMES[0], size: 1, mode: 0o644, mtime: new Date(0) }).length, 512);
  assert.equal(memberHeader({ name: NAMES[2], size: 1, mode: 0o644, mtime: new Date(0) }).length, 1536);
  assert.deepEqual([blocks(0), blocks(1), blocks(512), blocks(513)], [0, 512, 512, 1024]);
});

/** Every member TarWalker sees: name, size, data offset, bytes; throws what it throws. */
function walk(tar: Buffer, chunk: number): { name: string; size: number; offset: number; data: Buffer }[] {
  const out: { name: string; size: number; offset: number; data: Buffer; parts: Buffer[]; ended: boolean }[] = [];
  const w = new TarWalker({
    entry: (name, size, offset) => { out.push({ name, size, offset, data: Buffer.alloc(0), parts: [], ended: false }); },
    data: (b) => { out[out.length - 1].parts.push(b); },
    end: () => { const m = out[out.length - 1]; m.data = Buffer.concat(m.parts); m.ended = true; },
  });
  for (let at = 0; at < tar.length; at += chunk) w.write(tar.subarray(at, at + chunk));
  w.end();
  assert.ok(out.every((m) => m.ended));
  return out.map(({ name, size, offset, data }) => ({ name, size, offset, data }));
}

/** The same through tar-stream's extract(). */
async function extracted(tar: Buffer): Promise<{ name: string; size: number; offset: number; data: Buffer }[]> {
  const ex = (await loadTar()).extract();
  const out: { name: string; size: number; offset: number; data: Buffer }[] = [];
  ex.on('entry', (h, stream, next) => {
    const parts: Buffer[] = [];
    stream.on('data', (c) => { parts.push(c as Buffer); });
    stream.on('end', () => { out.push({ name: h.name, size: h.size!, offset: (stream as unknown as { offset: number }).offset + 512, data: Buffer.concat(parts) }); next(); });
  });
  await pipeline(async function* () { yield tar; }, ex as unknown as Writable);
  return out;
}

it('tarLib: TarWalker reads what extract() reads (names, sizes, data offsets, bytes), from tar-stream\'s tars and GNU tar\'s (pax, gnu long names, directories, empty files), whatever the chunks', async () => {
  const members = NAMES.map((name, k) => ({ name, data: crypto.randomBytes([0, 1, 511, 512, 513, 5000][k]), mode: 0o644, mtime: new Date(1_700_000_000_000) }));
  const tars: [string, Buffer][] = [['tar-stream', Buffer.concat([await packed(members, true), Buffer.alloc(10240 - ((await packed(members, true)).length % 10240))])]];
  const dir = tmpDir('replica-tarlib-');
  fs.mkdirSync(path.join(dir, 'src', 'sub dir'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'src', 'empty'), '');
  fs.writeFileSync(path.join(dir, 'src', 'sub dir', `${'g'.repeat(150)}.dat`), crypto.randomBytes(3000));
  fs.writeFileSync(path.join(dir, 'src', 'sub dir', 'ünï'), 'x');
  for (const format of ['gnu', 'pax', 'ustar']) {
    if (format === 'ustar') fs.rmSync(path.join(dir, 'src', 'sub dir', `${'g'.repeat(150)}.dat`)); // ustar cannot hold it
    const file = path.join(dir, `${format}.tar`);
    execFileSync('tar', [`--format=${format}`, '-cf', file, '-C', path.join(dir, 'src'), '.']);
    tars.push([`GNU tar --format=${format}`, fs.readFileSync(file)]);
  }
  for (const [what, tar] of tars) {
    const want = await extracted(tar);
    assert.ok(want.length >= 4, what);
    for (const chunk of [1, 7, 511, 512, 513, 4096, tar.length]) assert.deepEqual(walk(tar, chunk), want, `${what}, chunks of ${chunk}`);
  }
  const tar = tars[0][1];
  // cut short inside a header, inside a member's data, inside its padding: extract() and TarWalker both refuse it
  for (const cut of [100, 512 + 1, 512 + 2 * 512 + 100, 1536 + 511 + 5]) {
    await assert.rejects(extracted(tar.subarray(0, cut)), /Unexpected end of data/, `extract, cut at ${cut}`);
    assert.throws(() => walk(tar.subarray(0, cut), 512), /Unexpected end of data/, `cut at ${cut}`);
  }
  // a damaged header: its checksum
  const bad = Buffer.from(tar);
  bad[10] ^= 1;
  await assert.rejects(extracted(bad), /Invalid tar header/);
  assert.throws(() => walk(bad, 4096), /Invalid tar header/);
  rmTree(dir);
});
