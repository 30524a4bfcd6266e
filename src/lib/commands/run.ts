import { backup, type BackupResult } from '../backup/backup.js';
import { formatBytes } from '../config/units.js';
import { InterruptedError } from '../errors.js';
import { showProgress } from './progress.js';
import { prewalkFor } from '../scan/prewalk.js';
import type { Store } from '../store/store.js';
import type { Target } from '../targets/target.js';
import { type Context, checkMissingSources, createTargets, openStoreLocked, openStoreReadOnly } from './context.js';

export interface RunOptions {
  target?: string; dryRun?: boolean; signal?: AbortSignal;
  /** deleteLocalAfter: at most this many source files removed (default: the config's deleteLocalMax) */
  maxDelete?: number;
  /** print the summary even when all is well and nobody is at a terminal */
  verbose?: boolean;
  /** tape targets write what is pending now */
  flush?: boolean;
}

/**
 * `replica run`: lock, reconcile, hash, copy + verify, save, ship the store, exit. Returns the result;
 * throws InterruptedError (after saving) when the signal aborted it, LockedError when the store is locked.
 */
export async function runCommand(ctx: Context, opts: RunOptions): Promise<BackupResult> {
  const { config, log } = ctx;
  // a big store takes a while to load: the sources are walked meanwhile, in a worker
  const prewalk = prewalkFor(config);
  if (prewalk) log.debug('scan: the sources are walked in a worker thread while the store loads');
  let locked: Awaited<ReturnType<typeof openStoreLocked>> | undefined;
  let store: Store;
  let targets: Target[];
  try {
    locked = opts.dryRun ? undefined : await openStoreLocked(ctx, 'run');
    store = locked?.store ?? await openStoreReadOnly(ctx);
    targets = createTargets(config, log, opts.target);
  } catch (err) {
    prewalk?.stop();
    locked?.lock.release();
    throw err;
  }
  let result: BackupResult;
  // Progress only for a person at a terminal: never in logs, pipes or cron mail.
  const progress = process.stderr.isTTY && !ctx.opts.json ? showProgress(process.stderr) : undefined;
  try {
    checkMissingSources(config, store);
    result = await backup(config, store, targets, log, { target: opts.target, dryRun: opts.dryRun, maxDelete: opts.maxDelete, flush: opts.flush, signal: opts.signal, command: 'run', onStart: progress?.attach, prewalk });
    await store.close();
  } finally {
    progress?.stop();
    await Promise.allSettled(targets.map((t) => t.close()));
    locked?.lock.release();
  }
  if (opts.signal?.aborted) throw new InterruptedError(String(opts.signal.reason ?? 'signal'));
 printRun(ctx, result, opts.verbose ?? false);
  return result;
}

/**
 * The summary. Cron mails whatever a job prints: off a terminal, a run that went well prints nothing (unless
 * --json or -v), and one that did not prints its summary and problems on stderr.
 */
function printRun(ctx: Context, r: BackupResult, verbose: boolean): void {
  if (ctx.opts.json) {
    ctx.out.write(`${JSON.stringify(r)}\n`);
    return;
  }
  if (r.wouldCopy) {
    for (const [p, t] of Object.entries(r.wouldCopy)) ctx.out.write(`would copy ${p} -> ${t.join(', ')}\n`);
    for (const p of r.wouldRemove ?? []) ctx.out.write(`would remove ${p}\n`);
    ctx.out.write(`dry run: ${Object.keys(r.wouldCopy).length} files would be copied${r.wouldRemove ? `, ${r.wouldRemove.length} source files would be removed (deleteLocalAfter; each after a live check of the source and every target)` : ''}\n`);
    return;
  }
  const tty = (ctx.out as NodeJS.WriteStream).isTTY === true;
  if (r.ok && !tty && !verbose) return;
  const out = r.ok ? ctx.out : process.stderr;
  const c = r.counts;
  const down = Object.entries(r.targetsDown).map(([n, e]) => `${n}: [${e.class}] ${e.message}`);
  out.write(`${r.ok ? 'ok' : 'PROBLEMS'}: ${c.scanned} scanned, ${c.hashed} hashed, ${c.copied} copied (${formatBytes(c.bytesCopied)}), `
    + `${c.verified} verified, ${c.failed} failed, ${c.unsettled} not settled yet, ${c.skipped} special files skipped, ${c.deleted} deleted at source\n`);
  if (r.markersWritten?.length) out.write(`markers written: ${r.markersWritten.map((m) => `${m.dir} on ${m.target}`).join(', ')}\n`);
  const rm = r.removedLocally;
  if (rm?.removed.length) out.write(`deleteLocalAfter: removed ${rm.removed.length} source files (${formatBytes(rm.bytes)} freed)\n`);
  if (rm?.blocked) out.write(`deleteLocalAfter: ${rm.blocked}\n`);
  for (const k of rm?.kept ?? []) out.write(`not removed: ${k.path}: ${k.reason}\n`);
  for (const f of rm?.failed ?? []) out.write(`cannot remove: ${f.path}: ${f.message} (\`replica retry\` tries again)\n`);
  if (r.unverified) out.write(`${r.unverified} settled files are still not verified everywhere (failed earlier): see \`replica status\`\n`);
  for (const d of down) out.write(`target down: ${d}\n`);
  for (const m of r.missingSources) out.write(`source-missing: ${m}\n`);
  for (const p of r.problems) out.write(`${p.kind}: ${p.path}: ${p.message}\n`);
  for (const t of r.shipFailed) out.write(t === 'snapshot' ? 'store snapshot failed (see the log)\n' : `store copy failed: ${t}\n`);
}
