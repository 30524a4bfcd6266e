import fs from 'node:fs';
import path from 'node:path';
import { UsageError } from '../errors.js';
import { restoreFile, type RestoreResult } from '../backup/restore.js';
import { isSettled } from '../store/records.js';
import { type Context, createTargets, openStoreReadOnly } from './context.js';
import { matcher } from './whereIs.js';

export interface RestoreOptions { from?: string; to?: string; at?: string; force?: boolean }

/**
 * `replica restore PATH|GLOB|NAME... [--from N] [--to DIR] [--force]`: every file the store knows that
 * matches (and has settled content) is restored, hash-checked, from the first target in config order (or
 * only N) whose copy hashes right. With `--to DIR` a file goes to DIR/<abs path>; without it, in place, but
 * only where the source is missing or with `--force` (else it is skipped, saying so). Returns the results.
 */
export async function restoreCommand(ctx: Context, args: string[], opts: RestoreOptions = {}): Promise<RestoreResult[]> {
  if (!args.length) throw new UsageError('replica restore: give at least one PATH, GLOB or NAME');
  if (opts.at !== undefined) throw new UsageError('replica restore: --at is not in this version yet (restore the live copy, or read a version under <target>/<host>/.replica-versions/)');
  const { config } = ctx;
  if (opts.from !== undefined && !config.targets.some((t) => t.name === opts.from)) {
    throw new UsageError(`--from: no target named ${JSON.stringify(opts.from)} (configured: ${config.targets.map((t) => t.name).join(', ')})`);
  }
  const to = opts.to === undefined ? undefined : path.resolve(opts.to);
  const store = await openStoreReadOnly(ctx);
  const tests = args.map(matcher);
  const matches = [...store.entries()].filter(([p, r]) => isSettled(r) && tests.some((t) => t(p)))
    .sort(([a], [b]) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  if (!matches.length) throw new UsageError(`replica restore: nothing the store knows matches ${args.join(' ')}`);
  const targets = createTargets(config, ctx.log, opts.from);
  const results: RestoreResult[] = [];
  try {
    for (const [p, r] of matches) {
      const dest = to === undefined ? p : path.join(to, p);
      if (to === undefined && !opts.force && fs.existsSync(p)) {
        results.push({ path: p, to: dest, ok: false, errors: ['the source exists: restore it elsewhere with --to DIR, or over it with --force'] });
        continue;
      }
      const res = await restoreFile(p, r, dest, targets, config.host);
      results.push(res);
      if (res.ok) ctx.log.info(`restored ${p} -> ${dest} from ${res.from}`, { path: p, target: res.from });
      else ctx.log.error(`could not restore ${p}: ${res.errors.join('; ')}`, { path: p });
    }
  } finally {
    await Promise.allSettled(targets.map((t) => t.close()));
  }
  if (ctx.opts.json) ctx.out.write(`${JSON.stringify(results, null, 2)}\n`);
  else for (const r of results) ctx.out.write(r.ok ? `restored ${r.path} -> ${r.to} (from ${r.from})\n` : `NOT restored ${r.path}: ${r.errors.join('; ')}\n`);
  return results;
}
