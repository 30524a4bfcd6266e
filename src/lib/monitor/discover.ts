import { initHasher } from '../hash/xxh64.js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { messageOf } from '../errors.js';
import { silentLogger } from '../log.js';
import { Store } from '../store/store.js';
import { hostReport, type HostReport, type Thresholds } from './model.js';

/**
 * Store directories under `given`: a directory holding meta.json is a store, otherwise each of its
 * subdirectories that holds one (e.g. `/mnt/backup/.replica`). Missing or unreadable paths are returned
 * as problems (UNKNOWN), never thrown.
 */
export function findStores(given: string[]): { stores: string[]; unknown: { store: string; error: string }[] } {
  const stores: string[] = [];
  const unknown: { store: string; error: string }[] = [];
  for (const g of given) {
    try {
      if (fs.existsSync(path.join(g, 'meta.json'))) { stores.push(g); continue; }
      const subs = fs.readdirSync(g).map((d) => path.join(g, d)).filter((d) => fs.existsSync(path.join(d, 'meta.json')));
      if (!subs.length) unknown.push({ store: g, error: 'no replica store here (no meta.json in it or in its subdirectories)' });
      stores.push(...subs);
    } catch (err) {
      unknown.push({ store: g, error: messageOf(err) });
    }
  }
  return { stores, unknown };
}

/** One store read: its host's report, or why it could not be read. */
export type StoreRead = { host: HostReport } | { error: string };

/**
 * Read `stores` one after the other in this thread (strictly read-only, streamed: one pass, one shard in memory
 * at a time), each into its host's report.
 */
export async function readStores(stores: string[], t: Thresholds, now: number): Promise<StoreRead[]> {
  await initHasher(); // the markers' manifest hashes
  const out: StoreRead[] = [];
  for (const dir of stores) {
    try {
      const s = await Store.open(dir, { host: '', agentVersion: '', snapshots: 0, log: silentLogger(), readOnly: true, streamed: true });
      out.push({ host: hostReport(dir, s.meta, () => s.entries(), t, now) });
    } catch (err) {
      out.push({ error: messageOf(err) });
    }
  }
  return out;
}

/**
 * Worker threads reading stores at most. Each holds one shard at a time (stores are read streamed): 20 x 100k
 * read by 2 threads peaked at 226 MB, by one at 147 MB, so 4 stay far under the monitor's 1 GiB.
 */
const MAX_THREADS = 4;

/**
 * `stores` read by `threads` worker threads (hostWorker.ts), each given every threads-th store: parsing a store's
 * JSON is the work (20 hosts x 100k files: ~0.5 GB), so a core each reads ~1/threads of them (20 x 100k: 7.8 s
 * in one thread, 5.1 s in two, see docs/architecture.md). A worker that fails (it cannot start, it runs out of memory) has its
 * stores read here instead. In the order given.
 */
async function readInWorkers(stores: string[], t: Thresholds, now: number, threads: number): Promise<StoreRead[]> {
  const out: StoreRead[] = new Array(stores.length);
  await Promise.all(Array.from({ length: threads }, async (_, k) => {
    const at = stores.map((_, i) => i).filter((i) => i % threads === k);
    const share = at.map((i) => stores[i]);
    let reads: StoreRead[];
    try {
      reads = await new Promise<StoreRead[]>((resolve, reject) => {
        const w = new Worker(new URL('./hostWorker.js', import.meta.url), { workerData: { stores: share, t, now } });
        w.once('message', resolve);
        w.once('error', reject);
        w.once('exit', (code) => reject(new Error(`monitor worker exited with ${code}`)));
      });
    } catch {
      reads = await readStores(share, t, now);
    }
    at.forEach((i, j) => { out[i] = reads[j]; });
  }));
  return out;
}

/**
 * Read every store strictly read-only (files are only ever replaced by rename, so each is read whole), in
 * worker threads when there are several stores and cores, and report each host once: when several stores
 * describe one host (the machine's own store and its copies on backup servers), the one with the newest
 * heartbeat wins (the first given, on a tie).
 */
export async function readHosts(stores: string[], t: Thresholds, now = Date.now(),
  threads = Math.min(stores.length, os.availableParallelism(), MAX_THREADS)): Promise<{ hosts: HostReport[]; unknown: { store: string; error: string }[] }> {
  const reads = threads >= 2 ? await readInWorkers(stores, t, now, threads) : await readStores(stores, t, now);
  const byHost = new Map<string, HostReport>();
  const unknown: { store: string; error: string }[] = [];
  reads.forEach((r, i) => {
    if ('error' in r) { unknown.push({ store: stores[i], error: r.error }); return; }
    const h = r.host;
    const seen = byHost.get(h.host);
    if (!seen || (h.heartbeatAt ?? '') > (seen.heartbeatAt ?? '')) byHost.set(h.host, h);
  });
  return { hosts: [...byHost.values()], unknown };
}
