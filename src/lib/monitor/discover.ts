import { initHasher } from '../hash/xxh64.js';
import fs from 'node:fs';
import path from 'node:path';
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

/**
 * Read every store strictly read-only (files are only ever replaced by rename, so each is read whole) and
 * report each host once: when several stores describe one host (the machine's own store and its copies on
 * backup servers), the one with the newest heartbeat wins.
 */
export async function readHosts(stores: string[], t: Thresholds, now = Date.now()): Promise<{ hosts: HostReport[]; unknown: { store: string; error: string }[] }> {
  const byHost = new Map<string, HostReport>();
  const unknown: { store: string; error: string }[] = [];
  await initHasher(); // the markers' manifest hashes
  for (const dir of stores) {
    try {
      const s = await Store.open(dir, { host: '', agentVersion: '', snapshots: 0, log: silentLogger(), readOnly: true });
      const h = hostReport(dir, s.meta, () => s.entries(), t, now);
      const seen = byHost.get(h.host);
      if (!seen || (h.heartbeatAt ?? '') > (seen.heartbeatAt ?? '')) byHost.set(h.host, h);
    } catch (err) {
      unknown.push({ store: dir, error: messageOf(err) });
    }
  }
  return { hosts: [...byHost.values()], unknown };
}
