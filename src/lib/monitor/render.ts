import picocolors from 'picocolors';
import { formatBytes, formatDuration } from '../config/units.js';
import type { Report, Status } from './model.js';
import { STATUS, worse } from './model.js';

const PAINT = { OK: 'green', WARNING: 'yellow', CRITICAL: 'red', UNKNOWN: 'magenta' } as const satisfies Record<Status, string>;
/** A time to the minute, marked UTC: `2026-11-30 13:22Z`. */
const minute = (iso: string) => `${iso.slice(0, 16).replace('T', ' ')}Z`;
const age = (ms?: number) => (ms === undefined ? 'never' : `${formatDuration(ms)} ago`);
/** Scrub coverage for people: whole percent, one decimal just under 100 (99.9% is not 100%). */
const pct = (x: number) => `${(x * 100).toFixed(x < 1 && x > 0.99 ? 1 : 0)}%`;

/** A terminal report a person reads in ten seconds: one line per host and target, then the problems. */
export function renderText(r: Report, color = false): string {
  const pc = picocolors.createColors(color);
  const c = (s: Status, text: string = s) => pc[PAINT[s]](text);
  const out = [`replica backup report ${r.generatedAt}: ${c(r.status)} (${r.hosts.length} host${r.hosts.length === 1 ? '' : 's'})`, ''];
  const rows = [['HOST', 'STATUS', 'HEARTBEAT', 'TARGET', 'VERIFIED', 'PENDING', 'FAILED', 'OLDEST UNVERIFIED', 'VERIFIED UP TO', 'SCRUBBED']];
  for (const h of r.hosts) {
    for (const [i, t] of h.targets.entries()) {
      rows.push([i ? '' : h.host, i ? '' : h.status, i ? '' : age(h.heartbeatAgeMs), `${t.name} ${t.status === 'OK' ? '' : `[${t.status}]`}`.trim(),
        `${t.verified.files} (${formatBytes(t.verified.bytes)})`, String(t.pending.files), String(t.failed.files),
        t.oldestUnverifiedAgeMs === undefined ? '-' : formatDuration(t.oldestUnverifiedAgeMs), minute(t.verifiedUpTo), pct(t.scrubCoverage)]);
    }
    if (!h.targets.length) rows.push([h.host, h.status, age(h.heartbeatAgeMs), '(no targets)', '', '', '', '', '', '']);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  for (const row of rows) {
    const line = row.map((cell, i) => cell.padEnd(widths[i])).join('  ').trimEnd();
    out.push(color && STATUS.includes(row[1] as Status) ? line.replace(row[1], c(row[1] as Status)) : line);
  }
  const problems = r.hosts.flatMap((h) => h.problems.map((p) => `${h.host}: ${p}`));
  for (const u of r.unknown) problems.push(`UNKNOWN: ${u.store}: ${u.error}`);
  if (problems.length) out.push('', 'problems:', ...problems.map((p) => `  ${p}`));
  for (const h of r.hosts) for (const t of h.targets) for (const [cls, x] of Object.entries(t.failed.byClass)) {
    out.push(`  ${h.host}/${t.name} [${cls}] ${x.files} files, latest ${x.latest.path}: ${x.latest.message}`);
  }
  const ignored = r.hosts.flatMap((h) => h.targets.flatMap((t) => t.ignoredFiles.map((i) => `  ${h.host}/${t.name} ignored since ${minute(i.at)}: ${i.path}${i.reason ? ` (${i.reason})` : ''}`)));
  if (ignored.length) out.push('', 'ignored copies (replica ignore):', ...ignored);
  const unmarkedDirs = r.hosts.flatMap((h) => (h.markers?.unmarked ?? []).map((u) => `  ${h.host}: ${u.dir} complete since ${minute(u.completeAt)}, no marker on ${u.targets.join(', ')}`));
  if (unmarkedDirs.length) out.push('', 'complete directories not marked yet:', ...unmarkedDirs);
  const freed = r.hosts.filter((h) => h.localRemoval);
  if (freed.length) out.push('', 'deleteLocalAfter (source files removed once verified everywhere long enough):', ...freed.map((h) => `  ${localRemovalLine(h)}`));
  const changed = r.hosts.filter((h) => h.changedAfterVerified > 0);
  // an instrument file should never change once closed: say so, though the good copies are kept as versions
  if (changed.length) out.push('', ...changed.map((h) => `${h.host}: ${h.changedAfterVerified} files changed after they were verified (the previous copies are kept as versions)`));
  return `${out.join('\n')}\n`;
}

/** One host's deleteLocalAfter in words: removed and freed, waiting for their age. */
function localRemovalLine(h: Report['hosts'][number]): string {
  const rm = h.localRemoval!;
  return `${h.host}: ${rm.removed.files} removed (${formatBytes(rm.removed.bytes)} freed), ${rm.waiting.files} waiting for their age of ${formatDuration(rm.afterMs)} (${formatBytes(rm.waiting.bytes)})`
    + `${rm.failed.files ? `, ${rm.failed.files} COULD NOT BE REMOVED` : ''}`;
}

/** The report as JSON (docs/schemas/monitor.schema.json). */
export function renderJson(r: Report): string {
  return `${JSON.stringify(r, null, 2)}\n`;
}

const esc = (s: string) => s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

/**
 * node_exporter textfile format (metric names in the README). Times are exported as unix timestamps, never
 * as ages: the file is written every few minutes at best, and an age frozen in it would be wrong in between;
 * Prometheus computes the age (`time() - replica_heartbeat_timestamp_seconds`).
 */
export function renderPrometheus(r: Report): string {
  const lines: string[] = [];
  const metric = (name: string, help: string, type: string, samples: [Record<string, string>, number][]) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, v] of samples) {
      const l = Object.entries(labels).map(([k, x]) => `${k}="${esc(x)}"`).join(',');
      // unknown is NaN, never 0 (a 0 timestamp or age would look like real data)
      lines.push(`${name}${l ? `{${l}}` : ''} ${Number.isFinite(v) ? v : 'NaN'}`);
    }
  };
  const hs = r.hosts;
  const ts = hs.flatMap((h) => h.targets.map((t) => ({ h, t, l: { host: h.host, target: t.name } })));
  metric('replica_monitor_status', 'Overall status: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN', 'gauge', [[{}, STATUS.indexOf(r.status)]]);
  metric('replica_host_status', 'Host status: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN', 'gauge', hs.map((h) => [{ host: h.host }, STATUS.indexOf(h.status)]));
  metric('replica_heartbeat_timestamp_seconds', 'When the agent last recorded a heartbeat (unix time; NaN: never)', 'gauge', hs.map((h) => [{ host: h.host }, Date.parse(h.heartbeatAt ?? '') / 1000]));
  metric('replica_last_run_timestamp_seconds', 'End of the last run (unix time)', 'gauge', hs.map((h) => [{ host: h.host }, Date.parse(h.lastRun?.endedAt ?? '') / 1000]));
  metric('replica_last_run_ok', '1 if the last run ended with every settled file verified everywhere', 'gauge', hs.map((h) => [{ host: h.host }, h.lastRun?.ok ? 1 : 0]));
  metric('replica_changed_after_verified_files', 'Files whose content changed after a copy was verified', 'gauge', hs.map((h) => [{ host: h.host }, h.changedAfterVerified]));
  metric('replica_files', 'Files by state on each target', 'gauge', ts.flatMap(({ t, l }) => (['verified', 'pending', 'failed', 'ignored'] as const).map((s) => [{ ...l, state: s }, t[s].files] as [Record<string, string>, number])));
  metric('replica_bytes', 'Bytes by state on each target', 'gauge', ts.flatMap(({ t, l }) => (['verified', 'pending', 'failed', 'ignored'] as const).map((s) => [{ ...l, state: s }, t[s].bytes] as [Record<string, string>, number])));
  metric('replica_failed_files', 'Failed files by error class', 'gauge', ts.flatMap(({ t, l }) => Object.entries(t.failed.byClass).map(([cls, x]) => [{ ...l, class: cls }, x.files] as [Record<string, string>, number])));
  metric('replica_target_up', '0 while the target failed as a whole (not mounted, unreachable, ...)', 'gauge', ts.map(({ t, l }) => [l, t.lastError ? 0 : 1]));
  metric('replica_oldest_unverified_timestamp_seconds', 'When the oldest file not yet verified on the target settled (unix time; absent when every file is verified)', 'gauge',
    ts.filter(({ t }) => t.oldestUnverified !== undefined).map(({ t, l }) => [l, Date.parse(t.oldestUnverified!.since) / 1000]));
  metric('replica_verified_up_to_timestamp_seconds', 'Every file that settled before this time is verified on the target', 'gauge', ts.map(({ t, l }) => [l, Date.parse(t.verifiedUpTo) / 1000]));
  metric('replica_scrub_coverage_ratio', 'Share of verified copies re-verified within verify.every', 'gauge', ts.map(({ t, l }) => [l, t.scrubCoverage]));
  const rms = hs.filter((h) => h.localRemoval);
  metric('replica_removed_locally_bytes', 'Bytes freed on the source by deleteLocalAfter (files removed once verified everywhere long enough)', 'gauge', rms.map((h) => [{ host: h.host }, h.localRemoval!.removed.bytes]));
  metric('replica_removed_locally_files', 'Source files removed by deleteLocalAfter', 'gauge', rms.map((h) => [{ host: h.host }, h.localRemoval!.removed.files]));
  metric('replica_removal_waiting_files', 'Files verified on every target, waiting for their deleteLocalAfter age', 'gauge', rms.map((h) => [{ host: h.host }, h.localRemoval!.waiting.files]));
  metric('replica_removal_failed_files', 'Source files deleteLocalAfter could not remove (EACCES...)', 'gauge', rms.map((h) => [{ host: h.host }, h.localRemoval!.failed.files]));
  const mks = hs.filter((h) => h.markers);
  metric('replica_marker_unmarked_dirs', 'Complete directories whose completeness marker is missing or stale on a target', 'gauge', mks.map((h) => [{ host: h.host }, h.markers!.unmarked.length]));
  metric('replica_store_unreadable', 'Stores that could not be read', 'gauge', [[{}, r.unknown.length]]);
  return `${lines.join('\n')}\n`;
}

const html = (s: string) => s.replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]!);

/** One self-contained HTML file (no network): sortable host table, red/amber/green, readable on a phone. */
export function renderHtml(r: Report): string {
  const rows = r.hosts.flatMap((h) => h.targets.map((t) => ({ h, t, s: worse(t.status, h.agentStatus) })).map(({ h, t, s }) => `<tr class="s-${s}" data-status="${STATUS.indexOf(s)}">
<td>${html(h.host)}</td><td class="st">${s}</td><td data-v="${h.heartbeatAgeMs ?? 1e15}">${age(h.heartbeatAgeMs)}</td><td>${html(t.name)}</td>
<td data-v="${t.verified.files}">${t.verified.files} <small>${formatBytes(t.verified.bytes)}</small></td><td data-v="${t.pending.files}">${t.pending.files}</td><td data-v="${t.failed.files}">${t.failed.files}</td>
<td data-v="${t.oldestUnverifiedAgeMs ?? 0}">${t.oldestUnverifiedAgeMs === undefined ? '-' : formatDuration(t.oldestUnverifiedAgeMs)}</td><td>${minute(t.verifiedUpTo)}</td><td data-v="${t.scrubCoverage}">${pct(t.scrubCoverage)}</td></tr>`));
  const ignored = r.hosts.flatMap((h) => h.targets.flatMap((t) => t.ignoredFiles.map((i) => `<tr><td>${html(h.host)}</td><td>${html(t.name)}</td><td>${minute(i.at)}</td><td class="p">${html(i.path)}</td><td>${html(i.reason)}</td></tr>`)));
  const problems = [...r.hosts.flatMap((h) => h.problems.map((p) => `${h.host}: ${p}`)), ...r.unknown.map((u) => `UNKNOWN: ${u.store}: ${u.error}`)];
  const failures = r.hosts.flatMap((h) => h.targets.flatMap((t) => t.worst.map((w) => `<tr><td>${html(h.host)}</td><td>${html(t.name)}</td><td>${w.class}</td><td>${w.attempts}${w.retrying ? '' : ' (final)'}</td><td class="p">${html(w.path)}</td><td>${html(w.message)}</td></tr>`)));
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${r.status}: replica backup report</title><style>
body{font:14px/1.4 system-ui,sans-serif;margin:1em;color:#222}h1{font-size:1.3em}.badge{padding:.1em .5em;border-radius:.3em;color:#fff}
table{border-collapse:collapse;width:100%;margin:.5em 0 1.5em}th,td{padding:.3em .5em;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}
th{cursor:pointer;background:#f3f3f3;position:sticky;top:0}.s-OK .st,.b-OK{background:#2e7d32;color:#fff}.s-WARNING .st,.b-WARNING{background:#f9a825;color:#000}
.s-CRITICAL .st,.b-CRITICAL{background:#c62828;color:#fff}.s-UNKNOWN .st,.b-UNKNOWN{background:#6a1b9a;color:#fff}.p{word-break:break-all}
.f td{overflow-wrap:anywhere}.f td:nth-child(3){overflow-wrap:normal;white-space:nowrap}
@media (max-width:700px){body{margin:.5em}#hosts td:nth-child(5) small,#hosts th:nth-child(3),#hosts td:nth-child(3),#hosts th:nth-child(8),#hosts td:nth-child(8),#hosts th:nth-child(9),#hosts td:nth-child(9),#hosts th:nth-child(10),#hosts td:nth-child(10),.f th:nth-child(1),.f td:nth-child(1){display:none}th,td{padding:.25em .3em}}
</style></head><body>
<h1>replica backup report <span class="badge b-${r.status}" id="overall">${r.status}</span></h1>
<p>${r.generatedAt} · ${r.hosts.length} host${r.hosts.length === 1 ? '' : 's'} · stale after ${formatDuration(r.thresholds.staleMs)}, warn ${formatDuration(r.thresholds.warnAgeMs)}, critical ${formatDuration(r.thresholds.critAgeMs)}</p>
<table id="hosts"><thead><tr><th>host</th><th>status</th><th>heartbeat</th><th>target</th><th>verified</th><th>pending</th><th>failed</th><th>oldest unverified</th><th>verified up to</th><th>scrubbed</th></tr></thead><tbody>
${rows.join('\n')}
</tbody></table>
${problems.length ? `<h2>Problems</h2><ul id="problems">${problems.map((p) => `<li>${html(p)}</li>`).join('')}</ul>` : '<p id="problems">No problems.</p>'}
${r.hosts.some((h) => h.localRemoval) ? `<h2>Source files removed (deleteLocalAfter)</h2><ul id="removed">${r.hosts.filter((h) => h.localRemoval).map((h) => `<li>${html(localRemovalLine(h))}</li>`).join('')}</ul>` : ''}
${r.hosts.some((h) => h.markers?.unmarked.length) ? `<h2>Complete directories not marked yet</h2><table class="f" id="unmarked"><thead><tr><th>host</th><th>directory</th><th>complete since</th><th>targets without it</th></tr></thead><tbody>${r.hosts.flatMap((h) => (h.markers?.unmarked ?? []).map((u) => `<tr><td>${html(h.host)}</td><td class="p">${html(u.dir)}</td><td>${minute(u.completeAt)}</td><td>${html(u.targets.join(', '))}</td></tr>`)).join('')}</tbody></table>` : ''}
${ignored.length ? `<h2>Ignored copies</h2><table class="f" id="ignored"><thead><tr><th>host</th><th>target</th><th>since</th><th>path</th><th>reason</th></tr></thead><tbody>${ignored.join('')}</tbody></table>` : ''}
${failures.length ? `<h2>Worst failed files</h2><table class="f"><thead><tr><th>host</th><th>target</th><th>class</th><th>attempts</th><th>path</th><th>message</th></tr></thead><tbody>${failures.join('')}</tbody></table>` : ''}
<script>
document.querySelectorAll('#hosts th').forEach((th, i) => th.addEventListener('click', () => {
  const body = document.querySelector('#hosts tbody'); const asc = th.dataset.asc !== '1'; th.dataset.asc = asc ? '1' : '0';
  const key = (tr) => { const td = tr.children[i]; return i === 1 ? Number(tr.dataset.status) : td.dataset.v !== undefined ? Number(td.dataset.v) : td.textContent; };
  [...body.rows].sort((a, b) => { const x = key(a), y = key(b); return (x > y ? 1 : x < y ? -1 : 0) * (asc ? 1 : -1); }).forEach((tr) => body.appendChild(tr));
}));
</script></body></html>
`;
}
