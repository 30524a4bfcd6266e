import { UsageError } from '../errors.js';
import { formatBytes, parseSize } from '../config/units.js';
import { type ScrubResult, scrubSlice, scrubTarget } from '../backup/scrub.js';
import { type Store, storeFileCount } from '../store/store.js';
import { kindModule } from '../targets/registry.js';
import type { Target } from '../targets/target.js';
import { type Context, createTargets, openStoreLocked, openStoreReadOnly } from './context.js';
import { progressLine } from './progress.js';
import { matcher } from './whereIs.js';

export interface VerifyOptions { target?: string; budget?: string; all?: boolean; noUpdate?: boolean }

/**
 * `replica verify [--target N] [--budget SIZE | --all] [--no-update] [PATH|GLOB|NAME...]`: the scrub. On each
 * target (or only N), read back the verified copies (matching the arguments), oldest verification first, up to
 * the budget per target (default `verify.budget`; `--all`: every one), and compare them with the store. Good
 * copies are verified again now; bad ones are failed (`mismatch`, `missing`, the target's class) and due at
 * once, so the next `run` repairs them. `--no-update` writes nothing and works while another process holds
 * the lock; without it the lock is taken. Returns the results per target (exit 1 when a copy was bad or a
 * target could not be read).
 */
export async function verifyCommand(ctx: Context, args: string[], opts: VerifyOptions = {}): Promise<ScrubResult[]> {
  const { config, log } = ctx;
  if (opts.all && opts.budget !== undefined) throw new UsageError('replica verify: give --budget SIZE or --all, not both');
  let budget: number | undefined = config.verify.budgetBytes;
  if (opts.all) budget = undefined;
  else if (opts.budget !== undefined) {
    budget = parseSize(opts.budget);
    if (budget === undefined || budget <= 0) throw new UsageError(`--budget: expected a size such as 10GiB or 500MB, got ${JSON.stringify(opts.budget)}`);
  }
  createTargets(config, log, opts.target); // a config or --target problem before the lock is taken
  // the local kind's worker threads start while the store loads (~0.15 s here, else waited for after it), by
  // the files the store held at its last save; a slice turns out smaller only under a budget or a filter
  const known = storeFileCount(config.store);
  for (const t of config.targets) if (opts.target === undefined || t.name === opts.target) kindModule(t).warm?.(known);
  const locked = opts.noUpdate ? undefined : await openStoreLocked(ctx, 'verify');
  let targets: Target[] = [];
  const results: ScrubResult[] = [];
  let store: Store | undefined;
  const total = { read: 0, bytes: 0 };
  const progress = process.stderr.isTTY && !ctx.opts.json
    ? progressLine(process.stderr, () => `verified ${total.read} copies (${formatBytes(total.bytes)})`)
    : undefined;
  try {
    store = locked?.store ?? await openStoreReadOnly(ctx);
    targets = createTargets(config, log, opts.target, store);
    const tests = args.map(matcher);
    const filter = tests.length ? (p: string) => tests.some((t) => t(p)) : undefined;
    const slices = targets.map((t) => scrubSlice(store!, t.name, budget, filter));
    // the local kind's worker threads, all at once, for a big slice (a few copies are read in the main thread)
    targets.forEach((t, k) => kindModule(config.targets.find((c) => c.name === t.name)!).warm?.(slices[k].length));
    for (const [k, t] of targets.entries()) {
      const slice = slices[k];
      const r = await scrubTarget(store, t, config.host, slice, { update: !opts.noUpdate, onRead: (b) => { total.read++; total.bytes += b; } });
      results.push(r);
      for (const b of r.bad) log.error(`verify: ${b.path} on ${t.name}: [${b.class}] ${b.message}`, { path: b.path, target: t.name, class: b.class });
      if (r.error) log.error(`verify: target ${t.name} could not be read: [${r.error.class}] ${r.error.message}`, { target: t.name, class: r.error.class });
    }
    if (locked) await store.close();
  } finally {
    progress?.stop();
    await Promise.allSettled(targets.map((t) => t.close()));
    locked?.lock.release();
  }
  if (ctx.opts.json) ctx.out.write(`${JSON.stringify({ ok: results.every((r) => !r.bad.length && !r.error), updated: !opts.noUpdate, targets: results }, null, 2)}\n`);
  else {
    for (const r of results) {
      ctx.out.write(`target ${r.target}: ${r.read} copies read (${formatBytes(r.bytes)}), ${r.good} good, ${r.bad.length} bad${r.error ? `; stopped: [${r.error.class}] ${r.error.message}` : ''}\n`);
      for (const b of r.bad) ctx.out.write(`  ${b.class}  ${b.path}\n`);
    }
    if (!opts.noUpdate && results.some((r) => r.bad.length)) ctx.out.write('the next `replica run` (or the agent) repairs the bad copies\n');
  }
  return results;
}
