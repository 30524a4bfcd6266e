// Store at scale: build a store of N records (two targets each, realistic paths), then in fresh processes
// measure load time, the amortised cost of persisting one changed record, and peak RSS.
// usage: node bench/store1m.mjs build DIR N [HOST] | load DIR
import { Store } from '../dist/lib/store/store.js';
import { silentLogger } from '../dist/lib/log.js';

const [mode, dir, nArg, hostArg] = process.argv.slice(2);
const opts = { host: hostArg ?? 'bench', agentVersion: 'bench', snapshots: 2, log: silentLogger() };
const now = Date.now();
const rec = (i) => ({
  z: 4096 + (i % 1000), m: now - i * 1000 + 0.123, i: 1_000_000 + i, f: now - 5000, s: now,
  h: (BigInt(i) * 0x9e3779b97f4a7c15n & 0xffffffffffffffffn).toString(16).padStart(16, '0'),
  t: { backup: `v ${now} ${now + 250}`, usb: `v ${now} ${now + 300}` },
});
const pathOf = (i) => `/opt/MagAOX/rawimages/camsci${i % 4}/2026_11_${String(i % 30).padStart(2, '0')}/camsci_${String(i).padStart(8, '0')}.fits`;

if (mode === 'build') {
  const s = await Store.open(dir, opts);
  for (let i = 0; i < Number(nArg); i++) s.set(pathOf(i), rec(i));
  s.meta.heartbeatAt = new Date().toISOString();
  s.meta.targets = { backup: { url: '/mnt/backup' }, usb: { url: '/mnt/usb' } };
  s.touchMeta();
  await s.close();
  await s.snapshot();
} else {
  const t0 = performance.now();
  const s = await Store.open(dir, opts);
  const loadMs = performance.now() - t0;
  const records = s.size;
  // persist one changed record, 20 times (each a separate flush: the worst case, no batching)
  const t1 = performance.now();
  for (let k = 0; k < 20; k++) {
    const p = pathOf(k * 7919);
    s.set(p, { ...s.get(p), o: Date.now() });
    await s.flush();
  }
  const persistMs = (performance.now() - t1) / 20;
  await s.close();
  const rssMB = process.resourceUsage().maxRSS / 1024;
  process.stdout.write(JSON.stringify({ records, loadMs, persistMs, rssMB }) + '\n');
}
