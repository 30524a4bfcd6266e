import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError } from '../errors.js';
import { PathFilter } from '../scan/filter.js';
import {
  type Config, type MarkerConfig, type SchemaNode, type SourceConfig, type TargetConfig, type LogLevel,
  CONFIG_SCHEMA, DEFAULTS, LOG_LEVELS,
} from './schema.js';
import type { OptionType } from '../targets/kind.js';
import { type Raw, Reader, show, suggest } from './reader.js';
import validateSchema from './configSchemaValidate.js';
import { KINDS, kindOf } from '../targets/registry.js';

const NAME = /^[A-Za-z0-9._-]+$/;

function readTarget(r: Reader, v: unknown, i: number, base: { concurrency?: number; timeouts: Raw }): TargetConfig | undefined {
  const key = `targets[${i}]`;
  const t = r.object(v, key);
  if (!t) return v === undefined ? r.fail(key, 'expected an object') : undefined;
  const name = r.string(t.name, `${key}.name`) ?? r.fail(`${key}.name`, 'required: a unique name like "backup"');
  if (name && !NAME.test(name)) r.fail(`${key}.name`, `may contain only letters, digits, ".", "_" and "-", got ${show(name)}`);
  const schemes = KINDS.filter((k) => !k.schemes.includes('')).map((k) => `${k.schemes[0]}://`);
  const url = r.string(t.url, `${key}.url`) ?? r.fail(`${key}.url`, `required: a local path, ${schemes.slice(0, -1).join(', ')} or ${schemes.at(-1)} URL`);
  const kind = url === undefined ? undefined : kindOf(url);
  if (url !== undefined && !kind) r.fail(`${key}.url`, `expected ${schemes.join(', ')} or a local path, got ${show(url)}`);
  for (const k of KINDS) {
    for (const opt of Object.keys(k.options)) {
      if (t[opt] !== undefined && kind && k !== kind) r.fail(`${key}.${opt}`, `only valid for ${k.kind} targets, this one is ${kind.kind}`);
    }
  }
  const options: Record<string, unknown> = {};
  if (kind && url) {
    if (kind.urlPattern && !kind.urlPattern.test(url)) r.fail(`${key}.url`, `expected ${kind.urlForm}, got ${show(url)}`);
    for (const [opt, type] of Object.entries(kind.options)) if (t[opt] !== undefined) options[opt] = readOption(r, t[opt], `${key}.${opt}`, type);
  }
  const localPath = kind?.localBase && url ? r.resolvePath(kind.localBase(url)) : undefined;
  const mountRaw = r.string(t.mount, `${key}.mount`);
  return {
    name: name ?? `#${i}`, url: url ?? '', kind: kind?.kind ?? 'local', path: localPath,
    mount: mountRaw === undefined ? undefined : r.resolvePath(mountRaw),
    concurrency: t.concurrency === undefined ? base.concurrency : r.int(t.concurrency, `${key}.concurrency`, 1, 1),
    bwlimit: t.bwlimit === undefined || t.bwlimit === null ? undefined : r.size(t.bwlimit, `${key}.bwlimit`, 0),
    timeouts: r.timeouts(t.timeouts, `${key}.timeouts`, {
      copy: (base.timeouts.copy as string) ?? DEFAULTS.timeouts.copy, command: (base.timeouts.command as string) ?? DEFAULTS.timeouts.command,
    }),
    options,
  };
}

/** A kind-specific option's value, checked by its type (paths resolved against the config's directory). */
function readOption(r: Reader, v: unknown, key: string, type: OptionType): unknown {
  switch (type) {
    case 'boolean':
      if (typeof v !== 'boolean') r.fail(key, `expected true or false, got ${show(v)}`);
      return v;
    case 'size': return r.size(v, key, 0);
    case 'duration': return r.duration(v, key, 0);
    case 'path': return r.string(v, key) === undefined ? undefined : r.resolvePath(v as string);
    case 'http-url':
      if (r.string(v, key) !== undefined && !/^https?:\/\/./.test(v as string)) r.fail(key, `expected an http:// or https:// URL, got ${show(v)}`);
      return v;
    default: return r.string(v, key);
  }
}

function readSource(r: Reader, v: unknown, i: number): SourceConfig | undefined {
  const key = `sources[${i}]`;
  const s = typeof v === 'string' ? { path: v } : r.object(v, key);
  if (!s) return undefined;
  const p = r.string(s.path, `${key}.path`) ?? r.fail(`${key}.path`, 'required: the directory to back up');
  const source: SourceConfig = { path: '', include: r.globs(s.include, `${key}.include`), exclude: r.globs(s.exclude, `${key}.exclude`), exists: false };
  if (p === undefined) return source;
  const abs = r.resolvePath(p);
  try {
    source.path = fs.realpathSync(abs);
    if (!fs.statSync(source.path).isDirectory()) r.fail(`${key}.path`, `not a directory: ${abs}`);
    source.exists = true;
  } catch {
    source.path = abs; // missing: the caller decides between a config error and `source-missing`
  }
  return source;
}

/**
 * Why `host` cannot name a per-host directory on a target (`<base>/<host>/`), or undefined when it can: the
 * config's `host` and `adopt --host` are checked alike.
 */
export function hostNameProblem(host: string): string | undefined {
  if (host.includes('/') || host === '.' || host === '..' || /[\0\n]/.test(host)) return `must be a plain name (no "/", not "." or ".."), got ${show(host)}`;
  if (host.startsWith('.replica')) return `must not start with ".replica" (replica's own names on targets), got ${show(host)}`;
  return undefined;
}

/** The segments of a JSON pointer (as ajv says where a problem is: `/targets/1/url`), unescaped. */
const segments = (pointer: string): string[] => pointer.split('/').slice(1).map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));

/** A JSON pointer as the key path the validator's messages use: `targets[1].url`. */
const keyPath = (pointer: string): string => segments(pointer).reduce((acc, seg) => (/^\d+$/.test(seg) ? `${acc}[${seg}]` : acc ? `${acc}.${seg}` : seg), '');

/** The value at a JSON pointer of `root`. */
const at = (root: unknown, pointer: string): unknown => segments(pointer).reduce<unknown>((v, seg) => (v && typeof v === 'object' ? (v as Raw)[seg] : undefined), root);

/** The keys the schema allows in the object at a JSON pointer of the config (for "did you mean"). */
function keysAllowedAt(pointer: string): string[] {
  const resolve = (n: SchemaNode | undefined): SchemaNode | undefined => {
    const r = n?.$ref ? CONFIG_SCHEMA.$defs[n.$ref.replace('#/$defs/', '')] : n;
    return r?.anyOf?.find((x) => x.properties) ?? r;
  };
  let node = resolve(CONFIG_SCHEMA);
  for (const seg of segments(pointer)) node = resolve(/^\d+$/.test(seg) ? node?.items : node?.properties?.[seg]);
  return Object.keys(node?.properties ?? {});
}

const article = (type: string) => (type === 'object' ? 'an object' : type === 'array' ? 'an array' : type === 'integer' ? 'an integer' : `a ${type}`);

/**
 * Check `raw` against the config's JSON Schema (compiled at build time: configSchemaValidate.js) and say each
 * problem as the rest of the validator does: its key path, what was expected, what was found; an unknown key
 * with the closest allowed one. One problem per key (ajv reports each branch of an anyOf).
 */
function schemaProblems(raw: unknown): { key: string; msg: string }[] {
  if (validateSchema(raw)) return [];
  const out: { key: string; msg: string }[] = [];
  const said = new Set<string>();
  for (const e of validateSchema.errors ?? []) {
    const key = keyPath(e.instancePath);
    if (e.keyword === 'additionalProperties') {
      const prop = String(e.params.additionalProperty);
      out.push({ key: key ? `${key}.${prop}` : prop, msg: `unknown key${suggest(prop, keysAllowedAt(e.instancePath))}` });
      continue;
    }
    if (e.keyword === 'required') { out.push({ key: key ? `${key}.${String(e.params.missingProperty)}` : String(e.params.missingProperty), msg: 'required' }); continue; }
    if (said.has(key)) continue;
    said.add(key);
    const v = show(at(raw, e.instancePath));
    const msg = e.schemaPath.includes('$defs/duration') ? `expected a duration like "500ms", "10s", "5m", "1h", "7d" or a number of seconds, got ${v}`
      : e.schemaPath.includes('$defs/size') ? `expected a size like "512KiB", "20MiB", "10GiB" or a number of bytes, got ${v}`
        : e.keyword === 'type' ? `expected ${article(String(e.params.type))}, got ${v}`
          : e.keyword === 'enum' ? `expected one of ${(e.params.allowedValues as unknown[]).map((x) => JSON.stringify(x)).join(', ')}, got ${v}`
            : e.keyword === 'minimum' ? `expected a number >= ${String(e.params.limit)}, got ${v}`
              : e.keyword === 'minItems' ? `expected a non-empty array, got ${v}`
                : e.keyword === 'minLength' ? `expected a non-empty string, got ${v}`
                  : e.keyword === 'pattern' ? `${v} does not have the form this key takes (${String(e.params.pattern)})`
                    : `${e.message ?? 'not valid'}, got ${v}`;
    out.push({ key, msg });
  }
  return out;
}

/** Does one of the validator's own problems (`key: message`) already speak of `key` (or of a part of it)? */
function covered(problems: string[], key: string): boolean {
  return problems.some((p) => {
    const k = p.slice(0, p.indexOf(': '));
    return k === key || key.startsWith(`${k}.`) || key.startsWith(`${k}[`) || k.startsWith(`${key}.`) || k.startsWith(`${key}[`);
  });
}

/** `markers`: each entry's source must be a configured source or a directory inside one. */
function readMarkers(r: Reader, v: unknown, sources: SourceConfig[]): MarkerConfig[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) return r.fail('markers', `expected an array of { "source", "dirs", "completeAfter", "name" }, got ${show(v)}`) ?? [];
  const out: MarkerConfig[] = [];
  v.forEach((raw, i) => {
    const key = `markers[${i}]`;
    const m = r.object(raw, key);
    if (!m) return;
    const src = r.string(m.source, `${key}.source`) ?? r.fail(`${key}.source`, 'required: a source directory (or a directory inside one)');
    let abs = src === undefined ? '' : realPathOf(r.resolvePath(src));
    if (src !== undefined && !sources.some((s) => s.path && (abs === s.path || abs.startsWith(s.path + '/')))) {
      r.fail(`${key}.source`, `${abs} is not a configured source nor inside one: markers are written for directories replica backs up`);
      abs = '';
    }
    const dirs = r.string(m.dirs, `${key}.dirs`) ?? DEFAULTS.marker.dirs;
    if (dirs.startsWith('/') || dirs.split('/').includes('..')) r.fail(`${key}.dirs`, `expected a glob relative to the marker's source (like "*"), got ${show(dirs)}`);
    const name = r.string(m.name, `${key}.name`) ?? DEFAULTS.marker.name;
    if (!name || name.includes('/') || name === '.' || name === '..' || name.includes('\0')) r.fail(`${key}.name`, `expected a plain file name, got ${show(name)}`);
    out.push({ source: abs, dirs, completeAfterMs: r.duration(m.completeAfter, `${key}.completeAfter`, DEFAULTS.marker.completeAfter), name });
  });
  return out;
}

/**
 * Validate a raw config object (as parsed from `file`) and resolve it: every key checked, defaults filled.
 * Throws ConfigError listing every problem, each naming its key path. Source directories that do not exist
 * are returned with `exists: false`: whether that is an error depends on the store (an unmounted disk is source-missing, not a deletion).
 */
export function validateConfig(raw: unknown, file: string): Config {
  const r = new Reader(path.dirname(file));
  const c = r.object(raw, '');
  if (!c) throw new ConfigError([`${file}: expected a JSON object at the top level, got ${show(raw)}`]);
  const host = c.host === undefined ? os.hostname().split('.')[0] : r.string(c.host, 'host');
  const hostProblem = host === undefined ? undefined : hostNameProblem(host);
  if (hostProblem) r.fail('host', hostProblem);
  const store = r.resolvePath(r.string(c.store, 'store') ?? './.replica');
  let sources: SourceConfig[] = [];
  if (!Array.isArray(c.sources) || c.sources.length === 0) {
    r.fail('sources', c.sources === undefined ? 'required: at least one source directory' : `expected a non-empty array, got ${show(c.sources)}`);
  } else {
    sources = c.sources.map((s, i) => readSource(r, s, i)).filter((s): s is SourceConfig => !!s);
    const seen = new Map<string, number>();
    sources.forEach((s, i) => {
      const other = [...seen.entries()].find(([p]) => s.path === p || s.path.startsWith(p + '/') || p.startsWith(s.path + '/'));
      if (s.path && other) r.fail(`sources[${i}].path`, `overlaps sources[${other[1]}] (${other[0]}): list each directory once`);
      seen.set(s.path, i);
    });
  }
  const concurrency = r.int(c.concurrency, 'concurrency', DEFAULTS.concurrency, 1);
  const timeoutsRaw = r.object(c.timeouts, 'timeouts') ?? {};
  let targets: TargetConfig[] = [];
  if (!Array.isArray(c.targets) || c.targets.length === 0) {
    r.fail('targets', c.targets === undefined ? 'required: at least one target' : `expected a non-empty array, got ${show(c.targets)}`);
  } else {
    targets = c.targets.map((t, i) => readTarget(r, t, i, { concurrency: c.concurrency === undefined ? undefined : concurrency, timeouts: timeoutsRaw })).filter((t): t is TargetConfig => !!t);
    const names = new Set<string>();
    targets.forEach((t, i) => {
      if (names.has(t.name)) r.fail(`targets[${i}].name`, `duplicate target name ${show(t.name)}: names must be unique`);
      names.add(t.name);
    });
  }
  const watcher = c.watcher ?? DEFAULTS.watcher;
  if (watcher !== 'auto' && watcher !== 'chokidar' && watcher !== 'parcel') r.fail('watcher', `expected "auto", "chokidar" or "parcel", got ${show(watcher)}`);
  const retry = r.object(c.retry, 'retry') ?? {};
  const verify = r.object(c.verify, 'verify') ?? {};
  const log = r.object(c.log, 'log') ?? {};
  const monitor = r.object(c.monitor, 'monitor') ?? {};
  const level = (typeof log.level === 'string' ? log.level.toLowerCase() : log.level ?? DEFAULTS.log.level) as LogLevel;
  if (!LOG_LEVELS.includes(level)) r.fail('log.level', `expected one of ${LOG_LEVELS.join(', ')}, got ${show(log.level)}`);
  const config: Config = {
    file, host: host ?? 'localhost', store, sources, exclude: r.globs(c.exclude, 'exclude'), targets,
    settleMs: r.duration(c.settle, 'settle', DEFAULTS.settle),
    watcher: watcher as Config['watcher'],
    heartbeatMs: r.duration(c.heartbeat, 'heartbeat', DEFAULTS.heartbeat),
    rescanMs: r.duration(c.rescan, 'rescan', DEFAULTS.rescan),
    snapshots: r.int(c.snapshots, 'snapshots', DEFAULTS.snapshots, 0),
    concurrency,
    retry: {
      maxAttempts: r.int(retry.maxAttempts, 'retry.maxAttempts', DEFAULTS.retry.maxAttempts, 1),
      backoffMs: r.duration(retry.backoff, 'retry.backoff', DEFAULTS.retry.backoff),
      maxBackoffMs: r.duration(retry.maxBackoff, 'retry.maxBackoff', DEFAULTS.retry.maxBackoff),
    },
    timeouts: r.timeouts(timeoutsRaw, 'timeouts', DEFAULTS.timeouts),
    versions: r.int(c.versions, 'versions', DEFAULTS.versions, 0),
    deleteLocalAfterMs: c.deleteLocalAfter === undefined || c.deleteLocalAfter === null ? null : r.duration(c.deleteLocalAfter, 'deleteLocalAfter', 0),
    deleteLocalMax: r.int(c.deleteLocalMax, 'deleteLocalMax', DEFAULTS.deleteLocalMax, 0),
    markers: readMarkers(r, c.markers, sources),
    verify: { everyMs: r.duration(verify.every, 'verify.every', DEFAULTS.verify.every), budgetBytes: r.size(verify.budget, 'verify.budget', DEFAULTS.verify.budget) },
    log: { level },
    monitor: {
      staleMs: r.duration(monitor.stale, 'monitor.stale', DEFAULTS.monitor.stale),
      warnAgeMs: r.duration(monitor.warnAge, 'monitor.warnAge', DEFAULTS.monitor.warnAge),
      critAgeMs: r.duration(monitor.critAge, 'monitor.critAge', DEFAULTS.monitor.critAge),
    },
  };
  if (config.heartbeatMs === 0) r.fail('heartbeat', 'must be greater than 0');
  if (config.rescanMs === 0) r.fail('rescan', 'must be greater than 0');
  if (config.retry.maxBackoffMs < config.retry.backoffMs) r.fail('retry.maxBackoff', 'must not be shorter than retry.backoff');
  checkNesting(r, config);
  // the schema decides which keys and shapes are allowed; the checks above say more about the values they
  // read (and check what a schema cannot: paths, URLs per kind, nesting): their message wins for a key
  const fromSchema = schemaProblems(raw).filter((p) => !covered(r.problems, p.key)).map((p) => `${p.key}: ${p.msg}`);
  const problems = [...fromSchema, ...r.problems];
  if (problems.length) throw new ConfigError(problems);
  return config;
}

/** The real path of `p`, also when its tail does not exist yet (the longest existing prefix is resolved). */
export function realPathOf(p: string): string {
  const rest: string[] = [];
  let cur = p;
  for (;;) {
    try {
      return path.join(fs.realpathSync(cur), ...rest.reverse());
    } catch {
      const parent = path.dirname(cur);
      if (parent === cur) return p;
      rest.push(path.basename(cur));
      cur = parent;
    }
  }
}

const inside = (child: string, parent: string) => child === parent || parent === '/' || child.startsWith(parent + '/');

/** Is `p` (under source `s`) left out by that source's own exclude patterns (a directory on the way pruned)? */
function excludedBy(s: SourceConfig, exclude: string[], p: string): boolean {
  const rel = path.relative(s.path, p);
  if (rel === '') return false;
  const filter = PathFilter.forSource({ include: [], exclude: s.exclude }, exclude); // only excludes prune directories
  const parts = rel.split('/');
  return parts.some((_, i) => !filter.dir(parts.slice(0, i + 1).join('/')));
}

/**
 * The backup must never back itself up (it would nest one level deeper every run): compared as real paths, a
 * local target or the store inside a source is an error unless that source's patterns exclude it, and a
 * source inside a local target is an error.
 */
function checkNesting(r: Reader, config: Config): void {
  const store = realPathOf(config.store);
  for (const [i, s] of config.sources.entries()) {
    if (!s.path) continue;
    if (inside(store, s.path) && !excludedBy(s, config.exclude, store)) {
      r.fail('store', `${store} is inside sources[${i}] (${s.path}): the store would be backed up while it changes; move it, or exclude it in that source's "exclude" (e.g. "${path.relative(s.path, store) || '.'}/**")`);
    }
  }
  for (const [ti, t] of config.targets.entries()) {
    if (!t.path) continue;
    const tp = realPathOf(t.path);
    for (const [i, s] of config.sources.entries()) {
      if (!s.path) continue;
      if (inside(tp, s.path) && !excludedBy(s, config.exclude, tp)) {
        r.fail(`targets[${ti}].url`, `${tp} is inside sources[${i}] (${s.path}): the backup would back itself up; exclude it in that source's "exclude" (e.g. "${path.relative(s.path, tp)}/**") or move the target`);
      } else if (inside(s.path, tp)) {
        r.fail(`sources[${i}].path`, `${s.path} is inside target ${t.name} (${tp}): replica would back up its own copies`);
      }
    }
  }
}
