import { formatBytes, formatDuration } from '../config/units.js';
import { initHasher } from '../hash/xxh64.js';
import { IGNORED_LISTED, summarize, type StoreSummary } from '../report/summary.js';
import { type Context, openStoreReadOnly } from './context.js';

/** `replica status`: per target verified / pending / failed (by class), oldest unverified, last run. */
export async function statusCommand(ctx: Context): Promise<StoreSummary> {
  const store = await openStoreReadOnly(ctx, true); // one pass (summarize): no record is kept
  await initHasher(); // the markers' manifest hashes
  const s = summarize(store.meta, store.entries(), ctx.config.targets.map((t) => t.name));
  for (const t of s.targets) t.url ||= ctx.config.targets.find((c) => c.name === t.name)?.url ?? ''; // before the first run the store has none
  if (ctx.opts.json) {
    ctx.out.write(`${JSON.stringify(s, null, 2)}\n`);
    return s;
  }
  const now = Date.now();
  const ago = (iso?: string) => (iso ? `${formatDuration(now - Date.parse(iso))} ago` : 'never');
  const w = (l: string) => ctx.out.write(`${l}\n`);
  w(`host ${s.host}  agent ${s.agentVersion}  heartbeat ${ago(s.heartbeatAt)}`);
  w(`last run: ${s.lastRun ? `${s.lastRun.ok ? 'ok' : 'PROBLEMS'}, ended ${ago(s.lastRun.endedAt)}` : 'never'}`);
  if (s.watch) {
    const wch = s.watch;
    const budget = wch.maxWatches ? ` of ${wch.maxWatches} allowed${wch.watches > 0.9 * wch.maxWatches ? ' (NEAR THE LIMIT)' : ''}` : '';
    w(`watch: ${wch.stoppedAt ? `stopped ${ago(wch.stoppedAt)}` : `pid ${wch.pid}, ${wch.mode === 'polling' ? 'POLLING (watcher failed)' : 'events'}`}, ${wch.backend}, ${wch.watches} inotify watches${budget}`);
    if (wch.error) w(`watch error ${ago(wch.error.at)}: ${wch.error.message}`);
  }
  w(`files: ${s.files} known, ${s.unsettled} not settled yet, ${s.deleted} deleted at source, ${s.changedAfterVerified} changed after verified, ${s.skipped} special files skipped`);
  const rm = s.localRemoval;
  if (rm) {
    w(`deleteLocalAfter ${formatDuration(rm.afterMs)}: ${rm.removed.files} source files removed (${formatBytes(rm.removed.bytes)} freed), `
      + `${rm.waiting.files} verified everywhere waiting for their age (${formatBytes(rm.waiting.bytes)})${rm.waiting.nextAt ? `, next due ${rm.waiting.nextAt.slice(0, 19)}Z` : ''}`);
    for (const f of rm.failed.list.slice(0, 10)) w(`  cannot remove ${f.path}: ${f.message} (since ${ago(f.at)}; \`replica retry\` tries again)`);
  }
  if (s.markers) {
    w(`markers: ${s.markers.complete} directories complete, ${s.markers.unmarked.length} of them not marked on every target yet`);
    for (const u of s.markers.unmarked.slice(0, 10)) w(`  unmarked ${u.dir} (complete ${ago(u.completeAt)}) on ${u.targets.join(', ')}`);
  }
  for (const t of s.targets) {
    if (t.removedAt !== undefined) {
      w(`target ${t.name} (${t.url})  REMOVED from the config ${ago(t.removedAt)}: still holds ${t.verified.files} verified copies (${formatBytes(t.verified.bytes)})`);
      continue;
    }
    w(`target ${t.name} (${t.url})${t.lastError ? `  DOWN since ${t.lastError.at}: [${t.lastError.class}] ${t.lastError.message}` : ''}`);
    w(`  verified ${t.verified.files} (${formatBytes(t.verified.bytes)})  pending ${t.pending.files} (${formatBytes(t.pending.bytes)})  failed ${t.failed.files} (${formatBytes(t.failed.bytes)})  ignored ${t.ignored.files}`);
    if (t.tape) w(`  tape: ${t.tape.problem ?? `${t.tape.open} open`}; ${t.tape.tapes} tape${t.tape.tapes === 1 ? '' : 's'}, ${t.tape.tapeFiles} tape file${t.tape.tapeFiles === 1 ? '' : 's'} (${t.tape.confirmedFiles} confirmed, ${t.tape.unusableFiles} unusable), ${formatBytes(t.tape.bytes)} on tape${t.tape.open && t.pending.files ? `; ${t.pending.files} pending wait for their tape file (volumeSize or maxWait; \`replica run --flush\` writes them now)` : ''}`);
    for (const [cls, c] of Object.entries(t.failed.byClass)) w(`  failed [${cls}] ${c.files}: latest ${c.latest.path}: ${c.latest.message}`);
    if (t.oldestUnverified) w(`  oldest unverified: ${t.oldestUnverified.path} (${ago(t.oldestUnverified.since)})`);
    if (t.scrub.oldestVerifiedAt) w(`  scrub: ${(t.scrub.coverage * 100).toFixed(t.scrub.coverage < 1 && t.scrub.coverage > 0.99 ? 1 : 0)}% of verified copies read back within ${formatDuration(s.verifyEveryMs)}; oldest verification ${ago(t.scrub.oldestVerifiedAt)}`);
    for (const i of t.ignoredFiles.slice(0, 10)) w(`  ignored ${ago(i.at)}: ${i.path}${i.reason ? ` (${i.reason})` : ''}`);
    if (t.ignored.files > 10) w(`  ... ${t.ignored.files - 10} more ignored (status --json lists ${Math.min(t.ignored.files, IGNORED_LISTED)})`);
  }
  return s;
}
