import fs from 'node:fs';
import { messageOf, toTargetError } from '../errors.js';
import { formatBytes } from '../config/units.js';
import { createTarget } from '../targets/registry.js';
import type { CheckReport } from '../targets/target.js';
import { userWatches } from '../scan/inotify.js';
import { type Context, openStoreReadOnly } from './context.js';

export interface CheckItem {
  what: string; ok: boolean; detail: string;
  /** targets: what was established, step by step (free space where the target can tell) */
  reachable?: boolean; authenticated?: boolean; writable?: boolean; freeBytes?: number;
}

/** "reachable, authenticated, writable, 1.2 GiB free": the steps check() got through. */
function steps(r: { reachable?: boolean; authenticated?: boolean; writable?: boolean; freeBytes?: number }): string {
  const out = [r.reachable ? 'reachable' : 'NOT reachable'];
  if (r.reachable) out.push(r.authenticated ? 'authenticated' : 'NOT authenticated');
  if (r.authenticated) out.push(r.writable ? 'writable' : 'NOT writable');
  if (r.freeBytes !== undefined) out.push(`${formatBytes(r.freeBytes)} free`);
  return out.join(', ');
}

/**
 * `replica check`: config valid (it loaded), each target reachable/mounted/writable, each source readable,
 * the inotify watch budget, the store loadable. Returns every item; the caller exits 1 if any failed.
 */
export async function checkCommand(ctx: Context): Promise<CheckItem[]> {
  const { config } = ctx;
  const items: CheckItem[] = [{ what: 'config', ok: true, detail: config.file }];
  for (const s of config.sources) {
    let ok = true;
    let detail = s.path;
    try { fs.accessSync(s.path, fs.constants.R_OK | fs.constants.X_OK); } catch (err) { ok = false; detail = `${s.path}: ${messageOf(err)}`; }
    items.push({ what: `source ${s.path}`, ok, detail });
  }
  for (const [i, tc] of config.targets.entries()) {
    try {
      const t = createTarget(tc, i);
      let r: CheckReport;
      try { r = await t.check(); } finally { await t.close(); }
      const facts = { reachable: r.reachable, authenticated: r.authenticated, writable: r.writable, freeBytes: r.freeBytes };
      items.push({ what: `target ${tc.name}`, ok: true, detail: `${tc.url}: ${steps(facts)}${r.detail ? ` (${r.detail})` : ''}`, ...facts });
    } catch (err) {
      const e = toTargetError(err, tc.name, `[${tc.name}] check`);
      const stage = e.stage ?? (e.errorClass === 'unreachable' || e.errorClass === 'timeout' ? 'reach' : 'write');
      const facts = { reachable: stage !== 'reach', authenticated: stage === 'write', writable: false };
      items.push({ what: `target ${tc.name}`, ok: false, detail: `${steps(facts)}: [${e.errorClass}] ${e.message}`, ...facts });
    }
  }
  const { watches, max } = userWatches();
  if (max === undefined) {
    items.push({ what: 'inotify', ok: true, detail: 'not available on this system (watch falls back to periodic scans)' });
  } else {
    const near = watches > 0.9 * max;
    items.push({ what: 'inotify', ok: !near, detail: `${watches} watches in use by this user of max_user_watches ${max}${near ? ': near the limit, raise fs.inotify.max_user_watches' : ''}` });
  }
  try {
    const store = await openStoreReadOnly(ctx);
    items.push({ what: 'store', ok: store.warnings.length === 0, detail: store.warnings.length ? store.warnings.join('; ') : `${config.store}: ${store.size} records` });
  } catch (err) {
    items.push({ what: 'store', ok: false, detail: messageOf(err) });
  }
  if (ctx.opts.json) ctx.out.write(`${JSON.stringify(items, null, 2)}\n`);
  else for (const it of items) ctx.out.write(`${it.ok ? 'ok     ' : 'PROBLEM'} ${it.what}: ${it.detail}\n`);
  return items;
}
