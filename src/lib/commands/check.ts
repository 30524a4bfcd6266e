import fs from 'node:fs';
import { attachCatalogs } from '../backup/archive.js';
import { ConfigError, messageOf, toTargetError } from '../errors.js';
import { isExecutableConfig } from '../config/load.js';
import type { Config, SourceConfig } from '../config/schema.js';
import { PathFilter } from '../scan/filter.js';
import { walk } from '../scan/walk.js';
import { formatBytes, formatDuration } from '../config/units.js';
import { isVerifiedOn } from '../store/records.js';
import type { Store } from '../store/store.js';
import { createTarget } from '../targets/registry.js';
import { type CheckReport, hasArchive } from '../targets/target.js';
import { userWatches } from '../scan/inotify.js';
import { type Context, checkMissingSources, openStoreReadOnly } from './context.js';

export interface CheckItem {
  what: string; ok: boolean; detail: string;
  /** ok, but worth a look (printed as WARNING; the exit code stays 0) */
  warning?: boolean;
  /** the config is invalid (what `run` would refuse with exit 78) */
  configError?: boolean;
  /** sources: files the include/exclude patterns keep and drop */
  kept?: number; dropped?: number;
  /** targets: what was established, step by step (free space where the target can tell) */
  reachable?: boolean; authenticated?: boolean; writable?: boolean; freeBytes?: number;
}

/** "reachable, authenticated, writable, 1.2 GiB free": the steps check() got through. */
function steps(r: { reachable?: boolean; authenticated?: boolean; writable?: boolean; freeBytes?: number }): string {
  if (r.reachable === undefined) return 'not established';
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
  if (isExecutableConfig(config.file)) items.push({ what: 'config', ok: true, detail: `config is executable JS: ${config.file} (it runs as this user; only root may be able to write it)` });
  for (const s of config.sources) {
    let ok = true;
    let detail = s.path;
    let counts: { kept: number; dropped: number } | undefined;
    try {
      fs.accessSync(s.path, fs.constants.R_OK | fs.constants.X_OK);
      counts = countFiltered(s, config.exclude);
      detail = `${s.path}: the filters keep ${counts.kept} files and drop ${counts.dropped}`;
      if (counts.kept === 0 && counts.dropped > 0) { ok = false; detail += ': every file is dropped (check include/exclude)'; }
    } catch (err) { ok = false; detail = `${s.path}: ${messageOf(err)}`; }
    items.push({ what: `source ${s.path}`, ok, detail, ...counts });
  }
  // opened once, when first needed: a tape target's catalog, and the store's own item below
  let opened: Promise<Store> | undefined;
  const openStore = () => (opened ??= openStoreReadOnly(ctx));
  for (const [i, tc] of config.targets.entries()) {
    try {
      const t = createTarget(tc, i);
      // a tape target's open tape is in its catalog, in the store (an unreadable store is reported below)
      if (hasArchive(t)) {
        const store = await openStore().catch(() => undefined);
        if (store) attachCatalogs(store, [t], config.host);
      }
      let r: CheckReport;
      try { r = await t.check(); } finally { await t.close(); }
      const facts = { reachable: r.reachable, authenticated: r.authenticated, writable: r.writable, freeBytes: r.freeBytes };
      items.push({ what: `target ${tc.name}`, ok: true, detail: `${tc.url}: ${steps(facts)}${r.detail ? ` (${r.detail})` : ''}`, ...facts });
    } catch (err) {
      if (err instanceof ConfigError) {
        // what `run` refuses with 78: nothing about the target was established
        items.push({ what: `target ${tc.name}`, ok: false, configError: true, detail: `config invalid: ${err.problems.join('; ')}` });
        continue;
      }
      const e = toTargetError(err, tc.name, `[${tc.name}] check`);
      // only the steps the target got through are facts; a failure at an unknown step establishes none
      const stage = e.stage ?? (e.errorClass === 'unreachable' ? 'reach' : undefined);
      const facts = stage === undefined ? {} : { reachable: stage !== 'reach', authenticated: stage === 'write', writable: false };
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
    const store = await openStore();
    items.push({ what: 'store', ok: store.warnings.length === 0, detail: store.warnings.length ? store.warnings.join('; ') : `${config.store}: ${store.size} records` });
    items.push(scrubItem(config, store));
    try {
      checkMissingSources(config, store);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      items[0] = { what: 'config', ok: false, configError: true, detail: `config invalid: ${err.problems.join('; ')}` };
    }
  } catch (err) {
    items.push({ what: 'store', ok: false, detail: messageOf(err) });
  }
  if (ctx.opts.json) ctx.out.write(`${JSON.stringify(items, null, 2)}\n`);
  else for (const it of items) ctx.out.write(`${it.ok ? (it.warning ? 'WARNING' : 'ok     ') : 'PROBLEM'} ${it.what}: ${it.detail}\n`);
  return items;
}

/**
 * Can the scrub read every copy again within `verify.every`? `verify.budget` a day times `every` must cover
 * the bytes verified on the fullest target; a warning (not a failure) when it cannot, saying what would.
 */
function scrubItem(config: Config, store: Store): CheckItem {
  const { everyMs, budgetBytes } = config.verify;
  const days = everyMs / 86_400_000;
  const bytes = new Map(config.targets.map((t) => [t.name, 0]));
  for (const [, r] of store.entries()) for (const [name, n] of bytes) if (isVerifiedOn(r, name)) bytes.set(name, n + r.z);
  const held = [...bytes].map(([name, b]) => ({ name, bytes: b })).sort((a, b) => b.bytes - a.bytes)[0];
  const reach = budgetBytes * days;
  const base = `verify.budget ${formatBytes(budgetBytes)} a day x verify.every ${formatDuration(everyMs)} reads ${formatBytes(reach)}`;
  if (!held || held.bytes <= reach) return { what: 'scrub', ok: true, detail: `${base}: covers the ${formatBytes(held?.bytes ?? 0)} verified${held ? ` on ${held.name}` : ''}` };
  return { what: 'scrub', ok: true, warning: true, detail: `${base}, less than the ${formatBytes(held.bytes)} verified on ${held.name}: copies will go unread for longer than verify.every (raise verify.budget to ${formatBytes(Math.ceil(held.bytes / days))} or verify.every)` };
}

/** Walk a source without pruning and count the files its patterns keep and drop (pruned directories included). */
function countFiltered(s: SourceConfig, globalExclude: string[]): { kept: number; dropped: number } {
  const filter = PathFilter.forSource(s, globalExclude);
  const dirOk = new Map<string, boolean>();
  const under = (rel: string): boolean => {
    const i = rel.lastIndexOf('/');
    if (i < 0) return true;
    const d = rel.slice(0, i);
    let ok = dirOk.get(d);
    if (ok === undefined) { ok = under(d) && filter.dir(d); dirOk.set(d, ok); }
    return ok;
  };
  const counts = { kept: 0, dropped: 0 };
  walk(s.path, new PathFilter([], []), (e) => {
    if (e.kind === 'special') return;
    const rel = e.path.slice(s.path.length + 1);
    if (under(rel) && filter.file(rel)) counts.kept++;
    else counts.dropped++;
  }, () => undefined);
  return counts;
}
