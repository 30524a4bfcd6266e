import fs from 'node:fs';
import { messageOf, toTargetError } from '../errors.js';
import { createTarget } from '../targets/registry.js';
import { userWatches } from '../scan/inotify.js';
import { type Context, openStoreReadOnly } from './context.js';

export interface CheckItem { what: string; ok: boolean; detail: string }

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
      try { await t.check(); } finally { await t.close(); }
      items.push({ what: `target ${tc.name}`, ok: true, detail: `${tc.url}: reachable, writable${tc.mount ? ', mounted' : ''}` });
    } catch (err) {
      const e = toTargetError(err, tc.name, `[${tc.name}] check`);
      items.push({ what: `target ${tc.name}`, ok: false, detail: `[${e.errorClass}] ${e.message}` });
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
