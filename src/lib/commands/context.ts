import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { ConfigError, type TargetError, UsageError } from '../errors.js';
import { createLogger, type Logger } from '../log.js';
import { storeKnows } from '../backup/reconcile.js';
import { attachCatalogs } from '../backup/archive.js';
import type { EarlyWatcher } from '../scan/watch.js';
import { Store, storeFileCount } from '../store/store.js';
import { StoreLock } from '../store/lock.js';
import { createTarget } from '../targets/registry.js';
import type { Target } from '../targets/target.js';
import { VERSION } from '../version.js';

/** Options every command takes. */
export interface GlobalOptions {
  config?: string;
  json?: boolean;
  logLevel?: string;
}

/** What a command needs: config, logger, the output stream. */
export interface Context {
  config: Config;
  log: Logger;
  opts: GlobalOptions;
  out: NodeJS.WritableStream;
  /** `watch`: the parcel watch started as soon as the config was known (startEarlyWatch), when one was */
  early?: EarlyWatcher;
}

/**
 * Load the config and make the logger; the first log line names the version and the config file. For `watch`,
 * the early parcel watch starts in between: its crawl of the tree (its own thread) then overlaps loading the
 * logger, the agent's modules and the store (0.1 s sooner ready on 10^5 files here than after the store lock).
 */
export async function createContext(opts: GlobalOptions, command: string, out: NodeJS.WritableStream = process.stdout): Promise<Context> {
  const config = await loadConfig({ file: opts.config });
  const early = command === 'watch' ? await startEarlyWatch(config) : undefined;
  try {
    const log = createLogger(opts.logLevel ?? config.log.level);
    log.info(`replica ${VERSION} ${command}, config ${config.file}`, { version: VERSION, config: config.file, command });
    return { config, log, opts, out, early };
  } catch (err) {
    await early?.close();
    throw err;
  }
}

/**
 * The parcel watch that `watch` starts before anything else, when the store's size calls for parcel (watcher
 * `auto`) or the config names it; undefined for chokidar, which cannot start before the store is loaded.
 */
async function startEarlyWatch(config: Config): Promise<EarlyWatcher | undefined> {
  const { EarlyWatcher, backendFor } = await import('../scan/watch.js');
  return backendFor(config, storeFileCount(config.store)) === 'parcel' ? EarlyWatcher.start(config) : undefined;
}

/**
 * A source directory that does not exist is a config error, unless the store knows files under it
 * (then it is `source-missing`, handled by the run). Throws ConfigError naming each such source.
 */
export function checkMissingSources(config: Config, store: Store): void {
  const problems = config.sources.flatMap((s, i) => (!s.exists && !storeKnows(store, s.path) ? [`sources[${i}].path: directory does not exist: ${s.path}`] : []));
  if (problems.length) throw new ConfigError(problems);
}

/**
 * Open the store for reading only (no lock): works while another process holds the lock. `streamed`: for one
 * pass over entries() that keeps no record (StoreOptions.streamed).
 */
export function openStoreReadOnly(ctx: Context, streamed = false): Promise<Store> {
  const { config, log } = ctx;
  return Store.open(config.store, { host: config.host, agentVersion: VERSION, snapshots: config.snapshots, log, readOnly: true, streamed });
}

/** Take the store lock and open the store for writing. The caller releases the lock (even on error). */
export async function openStoreLocked(ctx: Context, command: string): Promise<{ store: Store; lock: StoreLock }> {
  const { config, log } = ctx;
  const lock = StoreLock.acquire(config.store, command);
  for (const w of StoreLock.warnings.splice(0)) log.warn(w);
  try {
    const store = await Store.open(config.store, { host: config.host, agentVersion: VERSION, snapshots: config.snapshots, log });
    return { store, lock };
  } catch (err) {
    lock.release();
    throw err;
  }
}

/**
 * The names of the targets a command acts on: only `only` when given (from option `flag`), else all. Throws
 * UsageError when `only` names no configured target.
 */
export function targetNames(config: Config, only?: string, flag = '--target'): string[] {
  const names = config.targets.map((t) => t.name);
  if (only !== undefined && !names.includes(only)) throw new UsageError(`${flag}: no target named ${JSON.stringify(only)} (configured: ${names.join(', ')})`);
  return only === undefined ? names : [only];
}

export { sortByPathBytes } from '../targets/layout.js';

/**
 * Text for `out` gathered into writes of ~64 KiB: stdout's writes are synchronous (one system call each), and a
 * listing of a million lines was a million of them. flush() writes the rest.
 */
export function buffered(out: NodeJS.WritableStream): { write(s: string): void; flush(): void } {
  let buf = '';
  const flush = () => { if (buf) out.write(buf); buf = ''; };
  return { write: (s) => { buf += s; if (buf.length >= 65_536) flush(); }, flush };
}

/**
 * A JSON array written an element at a time, as exactly the text `JSON.stringify(all, null, 2)` gives: a listing
 * of millions of elements is never one string (V8's longest is 537M characters). end() closes it and flushes.
 */
export function jsonArray(out: NodeJS.WritableStream): { add(item: unknown): void; end(): void } {
  const w = buffered(out);
  let n = 0;
  return {
    add: (item) => w.write(`${n++ ? ',' : '['}\n  ${JSON.stringify(item, null, 2).replace(/\n/g, '\n  ')}`),
    end: () => { w.write(n ? '\n]\n' : '[]\n'); w.flush(); },
  };
}

/**
 * Build every configured target (or only `only`); tape targets get their catalog from `store` when given.
 * Throws ConfigError for a kind this build lacks, UsageError for an unknown `only`.
 */
export function createTargets(config: Config, log: Logger, only?: string, store?: Store): Target[] {
  targetNames(config, only);
  const onRetry = (name: string) => (err: TargetError, waitMs: number) => log.warn(`${err.message}: retrying in ${(waitMs / 1000).toFixed(1)} s`, { target: name, class: err.errorClass });
  const targets = config.targets.filter((t) => only === undefined || t.name === only).map((t) => createTarget(t, config.targets.indexOf(t), onRetry(t.name)));
  if (store) attachCatalogs(store, targets, config.host);
  return targets;
}
