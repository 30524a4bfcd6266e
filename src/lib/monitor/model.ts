import { formatDuration } from '../config/units.js';
import type { ErrorClass } from '../errors.js';
import type { Meta, Rec } from '../store/model.js';
import { codeOn, failureOn, isCurrent, owedSince } from '../store/records.js';
import { summarize, type StoreSummary, type TargetSummary } from '../report/summary.js';

/** Monitoring-plugin states, in exit-code order. */
export const STATUS = ['OK', 'WARNING', 'CRITICAL', 'UNKNOWN'] as const;
export type Status = (typeof STATUS)[number];

export interface Thresholds { staleMs: number; warnAgeMs: number; critAgeMs: number; scrubEveryMs: number }

export interface TargetReport extends TargetSummary {
  status: Status;
  /** every file that settled before this time is verified on this target */
  verifiedUpTo: string;
  /** age of the oldest settled, unverified file (ms), counted from when it settled */
  oldestUnverifiedAgeMs?: number;
  /** failed files with no automatic attempt left / still being retried */
  failedFinal: number;
  failedRetrying: number;
  /** the worst failed files (most attempts, then oldest) */
  worst: { path: string; class: ErrorClass; message: string; at: string; attempts: number; retrying: boolean }[];
  /** share of verified copies (re-)verified within verify.every */
  scrubCoverage: number;
}

export interface HostReport extends Omit<StoreSummary, 'targets'> {
  store: string;
  status: Status;
  /** the host-level part of `status` (the agent's heartbeat), which applies to every target of the host */
  agentStatus: Status;
  heartbeatAgeMs?: number;
  problems: string[];
  targets: TargetReport[];
}

export interface Report {
  generatedAt: string;
  status: Status;
  thresholds: Thresholds;
  hosts: HostReport[];
  unknown: { store: string; error: string }[];
}

/** The more serious of two states. */
export const worse = (a: Status, b: Status): Status => {
  // CRITICAL outranks UNKNOWN (a known disaster matters more than an unreadable store), then WARNING, OK
  const rank: Record<Status, number> = { OK: 0, WARNING: 1, UNKNOWN: 2, CRITICAL: 3 };
  return rank[a] >= rank[b] ? a : b;
};

/**
 * The report for one host : CRITICAL for a stale heartbeat, a target-level failure, a file
 * failed with no attempts left, a copy read back wrong or missing (until repaired), or a settled file
 * unverified for longer than critAge; WARNING for a failed
 * file still being retried or a settled file unverified for longer than warnAge.
 */
export function hostReport(store: string, meta: Meta, records: () => Iterable<[string, Rec]>, t: Thresholds, now = Date.now()): HostReport {
  const names = Object.keys(meta.targets);
  // upTo: the oldest copy owed (what "verified up to" and the oldest unverified age say); lateFrom: when the
  // first of them becomes late (the age warnings). Counted as summarize passes each record (one pass).
  const extra = names.map((n) => ({ n, waitMs: meta.targets[n].waitMs ?? 0, upTo: Infinity, lateFrom: Infinity, final: 0, retrying: 0, lost: 0, worst: [] as TargetReport['worst'] }));
  const onRecord = (p: string, r: Rec) => {
    if (!isCurrent(r)) return;
    for (const x of extra) {
      const code = codeOn(r, x.n);
      if (code === 'v' || code === 'i') continue;
      // a copy waiting for its tape file is late only once it waited longer than the tape target's maxWait;
      // it is unverified all the same (never an age below zero, never "verified up to" a time to come)
      const since = owedSince(r);
      x.upTo = Math.min(x.upTo, since);
      x.lateFrom = Math.min(x.lateFrom, since + (code === 'p' ? x.waitMs : 0));
      if (code === 'f') {
        const { class: cls, message, at, attempts, retrying } = failureOn(r, x.n);
        if (cls === 'mismatch' || cls === 'missing') x.lost++;
        if (retrying) x.retrying++; else x.final++;
        x.worst.push({ path: p, class: cls, message, at: new Date(at).toISOString(), attempts, retrying });
      }
    }
  };
  // coverage against the host's own verify.every (recorded by its runs), else the monitor's
  const s = summarize(meta.verify ? meta : { ...meta, verify: { everyMs: t.scrubEveryMs, budgetBytes: 0 } }, records(), names, now, onRecord);
  const problems: string[] = [];
  let status: Status = 'OK';
  const raise = (st: Status, msg: string) => { status = worse(status, st); problems.push(`${st}: ${msg}`); };
  const heartbeatAgeMs = meta.heartbeatAt ? now - Date.parse(meta.heartbeatAt) : undefined;
  const stale = heartbeatAgeMs === undefined || heartbeatAgeMs > t.staleMs;
  if (stale) raise('CRITICAL', `agent heartbeat ${heartbeatAgeMs === undefined ? 'never recorded' : `is ${Math.round(heartbeatAgeMs / 60000)} min old`} (stale after ${Math.round(t.staleMs / 60000)} min)`);
  const targets: TargetReport[] = s.targets.map((ts) => {
    const x = extra.find((e) => e.n === ts.name)!;
    let tStatus: Status = 'OK';
    const flag = (st: Status, msg: string) => { tStatus = worse(tStatus, st); raise(st, `${ts.name}: ${msg}`); };
    if (ts.removedAt !== undefined) {
      // removed from the config: what it holds is reported, nothing about it is a failure
      return { ...ts, status: tStatus, failedFinal: 0, failedRetrying: 0, worst: [], verifiedUpTo: ts.removedAt, oldestUnverifiedAgeMs: undefined, scrubCoverage: 1 };
    }
    if (ts.lastError) flag('CRITICAL', `target failed: [${ts.lastError.class}] ${ts.lastError.message}`);
    if (x.final) flag('CRITICAL', `${x.final} files failed with no attempts left`);
    // a copy that was there and is not any more (read back wrong, or gone): the backup lost it until repaired
    if (x.lost) flag('CRITICAL', `${x.lost} copies read back wrong or missing (the scrub or a read-back found them): being repaired`);
    const age = x.upTo === Infinity ? undefined : now - x.upTo;
    const late = x.lateFrom === Infinity ? undefined : now - x.lateFrom;
    // the thresholds apply to `late` (a tape copy counts from the end of its maxWait); the message says how long
    // the file has been unverified in all
    if (late !== undefined && late > t.critAgeMs) flag('CRITICAL', `a file has been unverified for ${Math.round(age! / 3600000)} h`);
    else if (late !== undefined && late > t.warnAgeMs) flag('WARNING', `a file has been unverified for ${Math.round(age! / 60000)} min`);
    if (x.retrying) flag('WARNING', `${x.retrying} files failed and are being retried`);
    x.worst.sort((a, b) => b.attempts - a.attempts || a.at.localeCompare(b.at));
    return {
      ...ts, status: tStatus, failedFinal: x.final, failedRetrying: x.retrying, worst: x.worst.slice(0, 10),
      verifiedUpTo: new Date(x.upTo === Infinity ? Date.parse(meta.lastRun?.endedAt ?? meta.heartbeatAt ?? new Date(now).toISOString()) : x.upTo).toISOString(),
      oldestUnverifiedAgeMs: age, scrubCoverage: ts.scrub.coverage,
    };
  });
  // a directory complete for longer than warnAge without its marker on every target: downstream waits for it
  const late = (s.markers?.unmarked ?? []).filter((u) => now - Date.parse(u.completeAt) > t.warnAgeMs);
  if (late.length) raise('WARNING', `${late.length} complete directories without their marker for over ${formatDuration(t.warnAgeMs)} (first: ${late[0].dir} on ${late[0].targets.join(', ')})`);
  // a source file deleteLocalAfter could not remove fills the instrument's disk: someone must look
  if (s.localRemoval?.failed.files) raise('WARNING', `deleteLocalAfter could not remove ${s.localRemoval.failed.files} source files (first: ${s.localRemoval.failed.list[0]?.path}: ${s.localRemoval.failed.list[0]?.message})`);
  return { ...s, store, status, agentStatus: stale ? 'CRITICAL' : 'OK', heartbeatAgeMs, problems, targets };
}

/** The whole report: worst host decides; an unreadable store makes it UNKNOWN unless something is CRITICAL. */
export function buildReport(hosts: HostReport[], unknown: Report['unknown'], t: Thresholds, now = Date.now()): Report {
  let status: Status = hosts.reduce<Status>((s, h) => worse(s, h.status), 'OK');
  if (unknown.length) status = worse(status, 'UNKNOWN');
  return { generatedAt: new Date(now).toISOString(), status, thresholds: t, hosts: hosts.sort((a, b) => a.host.localeCompare(b.host)), unknown };
}
