import fs from 'node:fs';
import { messageOf, toTargetError } from '../errors.js';
import { createTarget } from '../targets/registry.js';
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
  try {
    const max = Number(fs.readFileSync('/proc/sys/fs/inotify/max_user_watches', 'utf8').trim());
    items.push({ what: 'inotify', ok: true, detail: `max_user_watches ${max}` });
  } catch {
    items.push({ what: 'inotify', ok: true, detail: 'not available on this system (watch falls back to periodic scans)' });
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
