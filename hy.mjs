import fs from 'node:fs';
import xxhash from 'xxhash-wasm';
let inst;
const orig = WebAssembly.instantiate;
WebAssembly.instantiate = async (...a) => { const r = await orig(...a); inst = r.instance; return r; };
const api = await xxhash();
WebAssembly.instantiate = orig;
const { mem, init64, update64, digest64 } = inst.exports;
const CH = (Number(process.argv[3]) || 4096) << 10;
const NB = Number(process.argv[4]) || 2;
const base = 1024;
const need = base + NB * CH;
if (mem.buffer.byteLength < need) mem.grow(Math.ceil((need - mem.buffer.byteLength) / 65536));
const bufs = Array.from({length: NB}, (_, i) => Buffer.from(mem.buffer, base + i * CH, CH));
const readAt = (fd, buf, pos) => new Promise((res, rej) => fs.read(fd, buf, 0, buf.length, pos, (e, n) => e ? rej(e) : res(n)));
async function hash(file) {
  const fd = fs.openSync(file, 'r');
  init64(0, 0n);
  const q = [];
  let pos = 0, size = 0;
  for (let i = 0; i < NB; i++) { q.push(readAt(fd, bufs[i], pos)); pos += CH; }
  for (let i = 0;; i++) {
    const n = await q.shift();
    if (n === 0) break;
    update64(0, base + (i % NB) * CH, n);
    size += n;
    if (n < CH) break;
    q.push(readAt(fd, bufs[i % NB], pos)); pos += CH;
  }
  await Promise.all(q);
  fs.closeSync(fd);
  return (digest64(0) & (2n**64n-1n)).toString(16);
}
for (let r = 0; r < 3; r++) { const t = performance.now(); const x = await hash(process.argv[2]); console.log(CH >> 10, NB, x, (performance.now() - t).toFixed(0), 'ms'); }
const t = performance.now(); const fd = fs.openSync(process.argv[2]); const b = Buffer.allocUnsafeSlow(CH); let p = 0, n; while ((n = fs.readSync(fd, b, 0, CH, p)) > 0) p += n; console.log('read alone', (performance.now() - t).toFixed(0));
