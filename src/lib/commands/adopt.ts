import { type AdoptResult, adopt } from '../backup/adopt.js';
import { Engine } from '../backup/engine.js';
import { formatBytes } from '../config/units.js';
import { UsageError } from '../errors.js';
import { hostNameProblem } from '../config/validate.js';
import type { Store } from '../store/store.js';
import { type Context, checkMissingSources, createTargets, openStoreLocked, openStoreReadOnly, targetNames } from './context.js';
import { progressLine } from './progress.js';

export interface AdoptOptions { target?: string; host?: string; dryRun?: boolean; signal?: AbortSignal }

/**
 * `replica adopt --target N [--host H] [--dry-run]`: scan and hash the sources (settled files), then walk
 * `<base>/<H>/` on target N (default H: this host) and enrol what is there (backup/adopt.ts). Takes the lock;
 * `--dry-run` records nothing and needs no lock. Exit 1 when a copy could not be hashed.
 */
export async function adoptCommand(ctx: Context, opts: AdoptOptions): Promise<AdoptResult> {
  const { config, log } = ctx;
  if (!opts.target) throw new UsageError('replica adopt: give --target N, the target that holds the existing backup');
  targetNames(config, opts.target);
  const fromHost = opts.host ?? config.host;
  const bad = fromHost ? hostNameProblem(fromHost) : 'must not be empty';
  if (bad) throw new UsageError(`--host: expected a plain host name (the directory under the target's base): ${bad}`);
  const targets = createTargets(config, log, opts.target);
  const locked = opts.dryRun ? undefined : await openStoreLocked(ctx, 'adopt');
  let store: Store | undefined;
  let engine: Engine | undefined;
  let shown: { res?: AdoptResult; hashed: number } = { hashed: 0 };
  const progress = process.stderr.isTTY && !ctx.opts.json
    ? progressLine(process.stderr, () => (shown.res ? `adopt: ${shown.res.listed} copies listed, ${shown.hashed} hashed, ${shown.res.adopted.files} adopted`
      : engine ? `adopt: sources scanned ${engine.counts.scanned}, hashed ${engine.counts.hashed}` : undefined))
    : undefined;
  let result: AdoptResult;
  try {
    store = locked?.store ?? await openStoreReadOnly(ctx);
    checkMissingSources(config, store);
    // adopt compares copies with settled, hashed content: the sources first, as a pass would see them
    engine = new Engine(config, store, targets, log, opts.signal ?? new AbortController().signal);
    const scan = await engine.scan();
    await engine.hash(scan.toHash);
    await targets[0].check({ signal: opts.signal });
    result = await adopt({
      store, target: targets[0], host: config.host, fromHost, dryRun: opts.dryRun ?? false, signal: opts.signal, skipNames: config.markers.map((m) => m.name),
      onProgress: (res, hashed) => { shown = { res, hashed }; },
    });
    if (locked) await store.close();
  } finally {
    progress?.stop();
    await Promise.allSettled(targets.map((t) => t.close()));
    locked?.lock.release();
  }
  for (const u of result.unreadable) log.error(`adopt: ${u.path} on ${result.target} could not be hashed: ${u.message}`, { path: u.path, target: result.target });
  print(ctx, result);
  return result;
}

function print(ctx: Context, r: AdoptResult): void {
  if (ctx.opts.json) {
    ctx.out.write(`${JSON.stringify(r, null, 2)}\n`);
    return;
  }
  const w = (l: string) => ctx.out.write(`${l}\n`);
  w(`adopt from target ${r.target}, ${r.from}: ${r.listed} copies listed${r.dryRun ? ' (dry run: nothing recorded)' : ''}`);
  w(`  adopted ${r.adopted.files} (${formatBytes(r.adopted.bytes)}): equal to the source, verified there without copying`);
  if (r.alreadyVerified) w(`  already verified ${r.alreadyVerified}`);
  w(`  differing ${r.differing.length}: the next run copies the source over them${r.dryRun ? '' : ' (the copy there kept as a version when versions > 0)'}`);
  w(`  orphaned ${r.orphaned.length}: no source file any more: recorded as deleted at the source (where-is and restore find them)`);
  if (r.notSettled.length) w(`  not settled yet ${r.notSettled.length}: the source is still changing; the next run takes it`);
  if (r.notBackedUp.length) w(`  not backed up ${r.notBackedUp.length}: the source is excluded, outside every source, or a symlink: left alone`);
  if (r.occupied.length) w(`  already at this host's path ${r.occupied.length}: left for the next run to check`);
  if (r.unreadable.length) w(`  UNREADABLE ${r.unreadable.length}: could not be hashed`);
  if (r.fromMetadata) w(`  ${r.fromMetadata} hashes taken from the xxh64 stored with the copy (S3 metadata): not read`);
  for (const p of r.differing) w(`differing ${p}`);
  for (const p of r.orphaned) w(`orphaned ${p}`);
  for (const u of r.unreadable) w(`unreadable ${u.path}: ${u.message}`);
}
