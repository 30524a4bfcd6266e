import fs from 'node:fs';
import path from 'node:path';
import { PACKAGE_ROOT } from '../packageRoot.js';
/** The resolved configuration (README: Configuration): every duration in ms, every size in bytes, every path absolute. */
export interface Config {
  /** the config file this came from */
  file: string;
  /** the machine name used for per-host folders on targets (default: the short hostname) */
  host: string;
  /** store directory: state shards, meta.json, snapshots, lock (default: .replica beside the config) */
  store: string;
  /** directories to back up */
  sources: SourceConfig[];
  /** micromatch globs excluded from every source */
  exclude: string[];
  /** every settled file goes to every target */
  targets: TargetConfig[];
  /** a file is settled when size and mtime are unchanged for this long */
  settleMs: number;
  /** watch backend for `replica watch` */
  watcher: 'auto' | 'chokidar' | 'parcel';
  /** how often `watch` records that it is alive */
  heartbeatMs: number;
  /** full reconcile scan interval in `watch` */
  rescanMs: number;
  /** rotated store snapshots kept */
  snapshots: number;
  /** copies in flight per target as configured (each target's `concurrency` overrides it; unset: the target's default) */
  concurrency: number;
  /** per-file retry policy: attempts, first backoff, backoff cap */
  retry: { maxAttempts: number; backoffMs: number; maxBackoffMs: number };
  /** per-copy and per-command timeouts */
  timeouts: Timeouts;
  /** previous versions kept per changed file on each target */
  versions: number;
  /** remove a source file this long after it is verified on every target; null = never */
  deleteLocalAfterMs: number | null;
  /** at most this many source files removed per pass (deleteLocalAfter; `run --max-delete` overrides it) */
  deleteLocalMax: number;
  /** completeness markers written into finished directories' copies (SupRsync's finalized timecode directories) */
  markers: MarkerConfig[];
  /** scrub: re-read each target copy every `everyMs`, at most `budgetBytes` per day */
  verify: { everyMs: number; budgetBytes: number };
  /** log level: error, warn, info, verbose, debug */
  log: { level: LogLevel };
  /** replica-monitor thresholds */
  monitor: { staleMs: number; warnAgeMs: number; critAgeMs: number };
}

/** One `markers` entry: directories under `source` matching `dirs` get `name` written into their copies once complete. */
export interface MarkerConfig {
  /** absolute real path: a configured source or a directory inside one */
  source: string;
  /** micromatch glob of directories, relative to `source` ("*": its top-level directories) */
  dirs: string;
  /** complete when nothing under it changed for this long (or a newer sibling matching `dirs` exists) */
  completeAfterMs: number;
  /** the marker's file name */
  name: string;
}

export type LogLevel = 'error' | 'warn' | 'info' | 'verbose' | 'debug';
export const LOG_LEVELS: readonly LogLevel[] = ['error', 'warn', 'info', 'verbose', 'debug'];

export interface Timeouts { copyMs: number; commandMs: number }

/** One source directory. `path` is the absolute real path (resolved once at start). */
export interface SourceConfig {
  path: string;
  include: string[];
  exclude: string[];
  /** false when the directory does not exist now (decided against the store: config error or source-missing) */
  exists: boolean;
}

/** A target kind's name (targets/registry.ts lists them). */
export type TargetKind = string;

/** One target. `url` is as written; `path` is the absolute base for local targets. */
export interface TargetConfig {
  name: string;
  url: string;
  kind: TargetKind;
  /** the absolute base directory, for kinds whose base is a path on this machine (local) */
  path?: string;
  /** refuse to write unless this path is a mount point */
  mount?: string;
  /** copies in flight, when the config sets it (per target or at the top); else the target's own default */
  concurrency?: number;
  /** bytes per second, or undefined for no limit */
  bwlimit?: number;
  timeouts: Timeouts;
  /** kind-specific options (ssh identity/knownHosts/hostKeyCheck, s3 endpoint/region/..., tape blockSize) */
  options: Record<string, unknown>;
}

export const DEFAULTS = {
  settle: '10s', watcher: 'auto', heartbeat: '1m', rescan: '1h', snapshots: 5, concurrency: 2,
  retry: { maxAttempts: 10, backoff: '30s', maxBackoff: '1h' },
  timeouts: { copy: '30m', command: '30s' },
  versions: 1, deleteLocalAfter: null, deleteLocalMax: 1000, verify: { every: '30d', budget: '20GiB' }, log: { level: 'info' },
  monitor: { stale: '1h', warnAge: '1h', critAge: '24h' },
  marker: { dirs: '*', completeAfter: '1d', name: '.replica-complete.json' },
} as const;

/**
 * The config's JSON Schema (docs/schemas/config.schema.json, shipped in the package): the source of truth for
 * which keys exist and what shape each value has. Every config is validated against it (compiled to code at
 * build time: scripts/gen-config-validator.mjs), then the values are read and checked further (paths, URLs
 * per kind, nesting) by validate.ts. Editors complete and check a config with it (`"$schema"`); `replica
 * config schema` prints it; a test checks that its defaults are DEFAULTS and its target keys the kinds' options.
 */
export const CONFIG_SCHEMA_FILE = path.join(PACKAGE_ROOT, 'docs/schemas/config.schema.json');
/** A node of the config's JSON Schema, as far as replica walks it. */
export interface SchemaNode { properties?: Record<string, SchemaNode>; items?: SchemaNode; anyOf?: SchemaNode[]; $ref?: string; $defs?: Record<string, SchemaNode> }
export const CONFIG_SCHEMA = JSON.parse(fs.readFileSync(CONFIG_SCHEMA_FILE, 'utf8')) as SchemaNode & { $defs: Record<string, SchemaNode> };

/** every key a target may have: the common ones and each kind's options */
export const TARGET_KEYS = Object.keys(CONFIG_SCHEMA.$defs.target.properties ?? {});
/** the keys every kind of target takes (the rest are its kind's options: targets/<kind>.ts) */
export const TARGET_COMMON_KEYS = ['name', 'url', 'mount', 'concurrency', 'bwlimit', 'timeouts'];
