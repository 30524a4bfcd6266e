import { isVerifiedOn } from '../store/records.js';
import { manifestLine, targetPath } from '../targets/layout.js';
import { type Context, buffered, openStoreReadOnly, sortByPathBytes, targetNames } from './context.js';

export { manifestLine } from '../targets/layout.js';

/**
 * `replica manifest [--target N]`: `<xxh64>  <host>/<abs path>` for every copy verified on target N (default:
 * verified on every target), sorted by path (bytes), from the store: `cd <target base> && xxhsum -c` checks
 * them without replica. Symlinks have no bytes to hash and are left out. Returns the number of lines.
 */
export async function manifestCommand(ctx: Context, opts: { target?: string } = {}): Promise<number> {
  const { config } = ctx;
  const names = targetNames(config, opts.target);
  const store = await openStoreReadOnly(ctx);
  const found: { hash: string; path: string }[] = [];
  for (const [p, r] of store.entries()) {
    if (r.l !== undefined || r.h === undefined || !names.every((n) => isVerifiedOn(r, n))) continue;
    found.push({ hash: r.h, path: targetPath(config.host, p) });
  }
  const rows = sortByPathBytes(found, (r) => r.path);
  if (ctx.opts.json) ctx.out.write(`${JSON.stringify(rows)}\n`);
  else {
    const out = buffered(ctx.out);
    for (const row of rows) out.write(`${manifestLine(row.hash, row.path)}\n`);
    out.flush();
  }
  return rows.length;
}
