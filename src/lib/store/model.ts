import type { MarkerConfig } from '../config/schema.js';
import type { ErrorClass } from '../errors.js';
import type { TapeCatalog } from '../targets/tapeCatalog.js';

/** On-disk format version of the store (docs/store-format.md). */
export const FORMAT_VERSION = 1;

/** Per-target state codes, compact on disk: p pending, v verified, f failed, i ignored. */
export type StateCode = 'p' | 'v' | 'f' | 'i';
const STATE_NAMES = { p: 'pending', v: 'verified', f: 'failed', i: 'ignored' } as const;
export type TargetStateName = (typeof STATE_NAMES)[StateCode];

/**
 * Per-(file, target) state, decoded. On disk and in memory it is one compact string (see encodeState):
 * nested objects per target made JSON.parse of 10^6 records ~1.8x slower.
 */
export interface TState {
  s: StateCode;
  /** copiedAt, verifiedAt (epoch ms) */
  c?: number;
  v?: number;
  /** attempts spent (absent = 0), next attempt due */
  a?: number;
  n?: number;
  /** last error: [class, message, at] */
  e?: [ErrorClass, string, number];
  /** ignored by the operator: [at, reason] (state `i`) */
  ig?: [number, string];
}

/**
 * Encode a target state as `<code> <copiedAt> <verifiedAt> <attempts> <nextAttemptAt> <errorAt> <class> <message>`,
 * `-` for an absent field, trailing absent fields omitted: "v 1795499830190 1795499830412", "p",
 * "f - - 2 1795503430190 1795499830190 ENOSPC no space left on device". The message may hold spaces (it is last).
 */
export function encodeState(t: TState): string {
  // an ignored copy keeps when and why in the error slots, with `ignored` as its class
  const e = t.ig ? [t.ig[0], 'ignored', t.ig[1]] as const : [t.e?.[2], t.e?.[0], t.e?.[1]] as const;
  const f: (string | number | undefined)[] = [t.s, t.c, t.v, t.a || undefined, t.n, e[0], e[1], e[2]?.replace(/\s+/g, ' ')];
  while (f.length > 1 && f[f.length - 1] === undefined) f.pop();
  return f.map((x) => (x === undefined ? '-' : x)).join(' ');
}

const num = (x: string | undefined): number | undefined => (x === undefined || x === '-' ? undefined : Number(x));

/** Decode a stored target state (undefined = a target added later: pending). */
export function decodeState(x: string | undefined): TState {
  if (x === undefined) return { s: 'p' };
  const f = x.split(' ');
  const t: TState = { s: f[0] as StateCode };
  if (f.length === 1) return t;
  const [c, v, a, n, at] = [num(f[1]), num(f[2]), num(f[3]), num(f[4]), num(f[5])];
  if (c !== undefined) t.c = c;
  if (v !== undefined) t.v = v;
  if (a !== undefined) t.a = a;
  if (n !== undefined) t.n = n;
  if (at !== undefined && t.s === 'i' && f[6] === 'ignored') t.ig = [at, f.slice(7).join(' ')];
  else if (at !== undefined) t.e = [f[6] as ErrorClass, f.slice(7).join(' '), at];
  return t;
}

/** The state code alone, without decoding the rest (hot path of scans over every record). */
export const stateCode = (x: string | undefined): StateCode => (x === undefined ? 'p' : (x[0] as StateCode));

/** Field `k` (1: copiedAt, 2: verifiedAt, ...) of a stored state as a number, read in place; undefined when absent or `-`. */
function numField(x: string, k: number): number | undefined {
  let from = 0;
  for (let i = 0; i < k; i++) {
    from = x.indexOf(' ', from) + 1;
    if (from === 0) return undefined;
  }
  const to = x.indexOf(' ', from);
  const f = to < 0 ? x.slice(from) : x.slice(from, to);
  return f === '-' ? undefined : Number(f);
}

/**
 * A stored state's verifiedAt when it is verified (0 when it does not say), else undefined, read in place:
 * status and the monitor ask it of every record and target (decoding the whole state was a quarter of the
 * monitor's report time).
 */
export const verifiedAtOf = (x: string | undefined): number | undefined => (x === undefined || x[0] !== 'v' ? undefined : numField(x, 2) ?? 0);

/** A stored state's copiedAt, read in place (the scrub's re-verification of every copy keeps it). */
export const copiedAtOf = (x: string | undefined): number | undefined => (x === undefined ? undefined : numField(x, 1));

/** Compact file record as stored, keyed by absolute source path. Times are epoch ms. */
export interface Rec {
  /** size, mtimeMs, inode, ctimeMs of the last observation */
  z: number;
  m: number;
  i?: number;
  c?: number;
  /** when that observation was made (the settle rule's "previous observation"); dropped once settled */
  o?: number;
  /** hash of the settled content (absent until settled and hashed) */
  h?: string;
  /** firstSeenAt, settledAt, deletedAt, removedLocallyAt */
  f: number;
  s?: number;
  d?: number;
  r?: number;
  /** symlink: its link text (a record without `l` is a regular file) */
  l?: string;
  /** targets whose live copy is a previous verified content, to be moved aside (versions) before it is replaced */
  p?: string[];
  /** when the content of a file already verified somewhere last changed ("changed after verified") */
  x?: number;
  /** previous contents, oldest first: [hash, current since, replaced at, mtimeMs] (restore --at finds the one current at a time) */
  e?: [string, number, number, number?][];
  /** the mtime of the settled content, kept from its first change until the new content settles (for `e`) */
  q?: number;
  /** when the settled content settled (`s`), kept with `q`: a file created since that holds the same bytes and mtime is no new content */
  k?: number;
  /** deleteLocalAfter could not remove the source file: [at, message] (reported once; `replica retry` clears it) */
  u?: [number, string];
  /** target name -> encoded TState */
  t: Record<string, string>;
}

/** The logical file record, as `--json` output and docs/store-format.md show it. */
export interface FileRecord {
  path: string;
  size: number;
  mtimeMs: number;
  hash: string;
  kind: 'file' | 'symlink';
  linkTarget?: string;
  firstSeenAt: string;
  settledAt?: string;
  deletedAt?: string;
  removedLocallyAt?: string;
  /** deleteLocalAfter could not remove the source file (reported once; `replica retry` makes it try again) */
  removeLocalError?: { message: string; at: string };
  /** previous contents remembered (restore --at): hash, current from `since` until replaced at `until` */
  previousContents?: { hash: string; since: string; until: string; mtimeMs?: number }[];
  targets: Record<string, TargetState>;
}

export interface TargetState {
  state: TargetStateName;
  hash?: string;
  size?: number;
  copiedAt?: string;
  verifiedAt?: string;
  attempts: number;
  nextAttemptAt?: string;
  lastError?: { class: ErrorClass; message: string; at: string };
  /** ignored by the operator (`replica ignore`): when and why */
  ignoredAt?: string;
  reason?: string;
}

export interface RunCounts {
  scanned: number; settled: number; unsettled: number; hashed: number; copied: number; verified: number;
  failed: number; skipped: number; symlinks: number; unsupportedNames: number; deleted: number; bytesCopied: number;
  /** source files removed by deleteLocalAfter, and their bytes */
  removedLocally: number; bytesFreed: number;
}

/** The store's meta.json (always present in a store directory). */
export interface Meta {
  formatVersion: number;
  host: string;
  agentVersion: string;
  shards: number;
  /** records at the last save (for a reader that needs the size without loading the shards: `watcher: "auto"`) */
  files?: number;
  createdAt: string;
  heartbeatAt?: string;
  lastRun?: { command: string; startedAt: string; endedAt?: string; ok: boolean; counts: RunCounts };
  targets: Record<string, {
    url: string; lastError?: { class: ErrorClass; message: string; at: string }; lastOkAt?: string;
    /** the target is no longer in the config (since then): shown as removed with what it still holds, never as failing */
    removedAt?: string;
    /** target-relative directories where a put may have left a temp file (a killed run): swept by the next run */
    tempDirs?: string[];
    /** a tape target's maxWait: a pending copy may wait this long for its tape file before it is late (the monitor) */
    waitMs?: number;
  }>;
  sources: string[];
  /** the `replica watch` agent: how it watches, and whether it had to fall back to periodic scans */
  watch?: WatchInfo;
  /** the config's scrub (`verify`): every copy re-read within `everyMs`, `budgetBytes` a day (for status and the monitor) */
  verify?: { everyMs: number; budgetBytes: number };
  /** the config's deleteLocalAfter (absent: sources are never removed) */
  deleteLocal?: { afterMs: number };
  /** the config's `markers` (absent: none), for status and the monitor */
  markerConfig?: MarkerConfig[];
  /** completeness markers written: directory -> target -> what its marker there says */
  markers?: Record<string, Record<string, MarkerState>>;
  /** tape targets' catalogs: target name -> tapes, tape files and their members (targets/tapeCatalog.ts); in memory only: each is kept in files/tape-<name>.json */
  tape?: Record<string, TapeCatalog>;
}

/** A completeness marker written on a target (docs/store-format.md). */
export interface MarkerState { files: number; bytes: number; manifestXxh64: string; writtenAt: string }

export interface WatchInfo {
  backend: string;
  pid: number;
  startedAt: string;
  /** inotify watches the agent holds, and the per-user limit */
  watches: number;
  maxWatches?: number;
  /** `events`: the watcher reports changes; `polling`: it failed (e.g. inotify limit) and rescans run often */
  mode: 'events' | 'polling';
  error?: { message: string; at: string };
  stoppedAt?: string;
}

export function emptyCounts(): RunCounts {
  return { scanned: 0, settled: 0, unsettled: 0, hashed: 0, copied: 0, verified: 0, failed: 0, skipped: 0, symlinks: 0, unsupportedNames: 0, deleted: 0, bytesCopied: 0, removedLocally: 0, bytesFreed: 0 };
}

const iso = (t: number | undefined): string | undefined => (t === undefined ? undefined : new Date(t).toISOString());

/** Expand a compact record to the logical FileRecord. */
export function toFileRecord(path: string, r: Rec): FileRecord {
  const targets: Record<string, TargetState> = {};
  for (const [name, enc] of Object.entries(r.t)) {
    const t = decodeState(enc);
    const done = t.s === 'v' || t.c !== undefined;
    targets[name] = {
      state: STATE_NAMES[t.s], attempts: t.a ?? 0,
      hash: done ? r.h : undefined, size: done ? r.z : undefined,
      copiedAt: iso(t.c), verifiedAt: iso(t.v), nextAttemptAt: iso(t.n),
      lastError: t.e && { class: t.e[0], message: t.e[1], at: new Date(t.e[2]).toISOString() },
      ...(t.ig ? { ignoredAt: new Date(t.ig[0]).toISOString(), reason: t.ig[1] } : {}),
    };
  }
  return {
    path, size: r.z, mtimeMs: r.m, hash: r.h ?? '', kind: r.l === undefined ? 'file' : 'symlink', linkTarget: r.l,
    firstSeenAt: iso(r.f)!, settledAt: iso(r.s), deletedAt: iso(r.d), removedLocallyAt: iso(r.r),
    ...(r.u ? { removeLocalError: { message: r.u[1], at: iso(r.u[0])! } } : {}),
    previousContents: r.e?.map(([hash, since, until, m]) => ({ hash, since: iso(since)!, until: iso(until)!, ...(m === undefined ? {} : { mtimeMs: m }) })), targets,
  };
}

export function stateName(code: StateCode): TargetStateName {
  return STATE_NAMES[code];
}
