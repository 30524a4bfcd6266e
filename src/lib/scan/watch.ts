import fs from 'node:fs';
import path from 'node:path';
import type { FSWatcher } from 'chokidar';
import type { Config } from '../config/schema.js';
import { PathFilter } from './filter.js';
import { walk } from './walk.js';

export type WatchEvent = 'add' | 'change' | 'unlink';

export interface WatchHandlers {
  /** a file appeared or changed (path is absolute) */
  onChange: (path: string) => void;
  /** a file disappeared */
  onUnlink: (path: string) => void;
  /** the watcher failed or overflowed (e.g. ENOSPC: inotify limit): the caller must rescan */
  onError: (err: Error) => void;
  /** settled files verified everywhere: never given a watch of their own (instrument files do not change) */
  isDone: (path: string) => boolean;
}

/** The file watcher of `replica watch`: one chokidar instance over every source. */
export interface SourceWatcher {
  ready: Promise<void>;
  /** ms after the process started that it began catching changes, when that was before ready resolved (EarlyWatcher) */
  readyAtMs?: number;
  /** stop watching one file (it is verified everywhere); its directory stays watched */
  release(path: string): void;
  /** files that have a watch of their own now */
  watchedFiles(): Iterable<string>;
  close(): Promise<void>;
}

export type Backend = 'chokidar' | 'parcel';

/**
 * `watcher: "auto"` (the default) takes @parcel/watcher from this many files on: chokidar stats every entry
 * and, unreleased, watches every file, so its start grows with the tree (~6.6 s and ~310 MB at 100k files
 * here, against ~0.65 s and ~130 MB with parcel); below it, chokidar starts in well under a second.
 */
export const AUTO_PARCEL_FILES = 10_000;

/** The backend a config asks for, `auto` decided by the number of files the store holds (`files`). */
export function backendFor(config: Config, files: number): Backend {
  if (config.watcher !== 'auto') return config.watcher;
  return files >= AUTO_PARCEL_FILES ? 'parcel' : 'chokidar';
}

/** Watch every source with `backend` (parcel falls back to chokidar, saying so, where it cannot load). */
export async function createWatcher(config: Config, h: WatchHandlers, backend: Backend): Promise<SourceWatcher & { backend: Backend }> {
  if (backend === 'parcel') {
    try {
      return { backend: 'parcel', ...(await watchWithParcel(config, h)) };
    } catch (err) {
      // e.g. no prebuilt binary for this platform: say so (status shows it) and keep watching with chokidar
      h.onError(new Error(`@parcel/watcher unavailable (${err instanceof Error ? err.message : String(err)}): using chokidar`));
    }
  }
  return { backend: 'chokidar', ...(await watchSources(config, h)) };
}

/**
 * A parcel watch started before its handlers exist: `replica watch` starts it before loading the store,
 * so parcel's crawl of the tree (its own thread) overlaps the load (the main thread) instead of following
 * it. Events (and errors) until attach() are kept and handed over in order; no file is done before then.
 * chokidar cannot start this early: it asks isDone() of every file during its crawl.
 */
export class EarlyWatcher {
  private handlers?: WatchHandlers;
  private readonly held: Array<(h: WatchHandlers) => void> = [];
  private readonly started: Promise<SourceWatcher & { backend: Backend }>;

  /**
   * An EarlyWatcher whose subscription has been asked for when this resolves: parcel's module is loaded first,
   * so nothing the caller does next on the main thread (the store's load) can come between the two (a load
   * that ran while the module was still loading delayed the crawl's start by 0.7 s).
   */
  static async start(config: Config): Promise<EarlyWatcher> {
    await loadParcel().catch(() => undefined); // attach() reports it
    return new EarlyWatcher(config);
  }

  constructor(config: Config) {
    const relay = (f: (h: WatchHandlers) => void) => (this.handlers ? f(this.handlers) : void this.held.push(f));
    this.started = watchWithParcel(config, {
      onChange: (p) => relay((h) => h.onChange(p)),
      onUnlink: (p) => relay((h) => h.onUnlink(p)),
      onError: (e) => relay((h) => h.onError(e)),
      isDone: (p) => this.handlers?.isDone(p) ?? false,
    }).then((w) => ({ backend: 'parcel' as const, ...w, readyAtMs: Math.round(process.uptime() * 1000) }));
    this.started.catch(() => undefined); // attach() or close() reports it
  }

  /** Resolves once the subscription is in place (undefined), or with the reason it could not be made (attach() rejects with it). */
  subscribed(): Promise<Error | undefined> {
    return this.started.then(() => undefined, (err: unknown) => (err instanceof Error ? err : new Error(String(err))));
  }

  /** How many events (changes, deletions, errors) it holds for attach(). */
  get heldEvents(): number {
    return this.held.length;
  }

  /**
   * The watcher, its events from now on (and those held) going to `h`, with how many were held. Rejects if
   * parcel could not start.
   */
  async attach(h: WatchHandlers): Promise<SourceWatcher & { backend: Backend; held: number }> {
    const w = await this.started;
    this.handlers = h;
    const held = this.held.splice(0);
    for (const f of held) f(h);
    return { ...w, held: held.length };
  }

  /** Stop it if it was never attached (the store could not be opened, the agent never started). */
  async close(): Promise<void> {
    if (!this.handlers) await this.started.then((w) => w.close(), () => undefined);
  }
}

function sourceFilters(config: Config) {
  return config.sources.map((s) => ({ root: s.path, filter: PathFilter.forSource(s, config.exclude) }));
}

type Parcel = typeof import('@parcel/watcher');
let parcelModule: Parcel | undefined;
/** @parcel/watcher's module, loaded once (a native addon: it can fail to load where no prebuilt binary fits). */
async function loadParcel(): Promise<Parcel> {
  return (parcelModule ??= (await import('@parcel/watcher')).default);
}

/**
 * @parcel/watcher: one inotify watch per directory (never per file), recursive, native: ~0.4 s and ~70 MB
 * for 10^5 files where chokidar takes seconds. Events are filtered here with the same include/exclude rules;
 * a directory that appears is walked, so files written into it before its watch existed are not missed.
 */
async function watchWithParcel(config: Config, h: WatchHandlers): Promise<SourceWatcher> {
  const parcel = parcelModule ?? await loadParcel(); // loaded: the subscriptions below are asked for before this returns
  const filters = sourceFilters(config);
  const subs = new Map<string, { unsubscribe(): Promise<void> }>();
  let closed = false;
  // `dir` is watched (recursively) under the rules of source `root`
  const subscribe = async (dir: string, root: string, filter: PathFilter) => {
    subs.set(dir, await parcel.subscribe(dir, (err, events) => {
      if (err) return h.onError(err);
      for (const ev of events) handle(root, filter, ev);
    }));
  };
  // parcel does not watch subdirectories that already exist when it adds the watch of a new directory
  // (e.g. `night/cam1` made right after `night`). A new directory therefore gets a subscription of its
  // own, which watches its whole subtree; the few duplicate events that follow are harmless. New
  // directories are rare on instrument machines (one per night or run); the subscriptions end at close().
  const watchNewDir = (dir: string, root: string, filter: PathFilter) => {
    if (closed || subs.has(dir)) return;
    void subscribe(dir, root, filter).then(() => {
      walk(dir, new PathFilter([], []), (e) => { if (filter.file(e.path.slice(root.length + 1))) h.onChange(e.path); }, () => undefined);
    }).catch((e: Error) => h.onError(e));
  };
  const handle = (root: string, filter: PathFilter, ev: { path: string; type: string }) => {
    if (!ev.path.startsWith(root + '/')) return;
    const rel = ev.path.slice(root.length + 1);
    const parts = rel.split('/');
    if (parts.slice(0, -1).some((_, i) => !filter.dir(parts.slice(0, i + 1).join('/')))) return; // under an excluded dir
    if (ev.type === 'delete') { if (filter.file(rel)) h.onUnlink(ev.path); return; }
    let isDir = false;
    try { isDir = fs.lstatSync(ev.path).isDirectory(); } catch { return; }
    if (!isDir) { if (filter.file(rel)) h.onChange(ev.path); return; }
    if (filter.dir(rel)) watchNewDir(ev.path, root, filter);
  };
  // A source that is not there (an unmounted disk, a directory not made yet; the store knows its files): parcel
  // cannot subscribe it, so its parent is watched (not recursively, as chokidar does) until it appears; then it
  // is subscribed and walked like a new directory. Where the parent is missing too, the rescans find it.
  const parents: fs.FSWatcher[] = [];
  const isDirectory = (p: string) => { try { return fs.statSync(p).isDirectory(); } catch { return false; } };
  const awaitRoot = (root: string, filter: PathFilter) => {
    let seen = false;
    const appeared = () => { if (!seen && isDirectory(root)) { seen = true; w?.close(); watchNewDir(root, root, filter); } };
    let w: fs.FSWatcher | undefined;
    try {
      w = fs.watch(path.dirname(root), { persistent: false }, appeared);
      w.on('error', () => w?.close());
      parents.push(w);
    } catch { return; }
    appeared(); // made between the check and the watch
  };
  await Promise.all(filters.map(({ root, filter }) => (isDirectory(root) ? subscribe(root, root, filter) : awaitRoot(root, filter))));
  return {
    ready: Promise.resolve(),
    release: () => undefined, // parcel never watches single files
    watchedFiles: () => [],
    close: async () => {
      closed = true;
      for (const w of parents) w.close();
      await Promise.all([...subs.values()].map((x) => x.unsubscribe()));
    },
  };
}

/**
 * Watch every source with chokidar: include/exclude applied before watching (excluded directories are never
 * entered), symlinks not followed, no initial events (the reconcile scan did that work). chokidar puts one
 * inotify watch on every directory and every file it watches, so files verified everywhere are left out:
 * their directory's watch still reports new files, and the periodic rescan covers the rare late change.
 */
export async function watchSources(config: Config, h: WatchHandlers): Promise<SourceWatcher> {
  const { watch } = await import('chokidar'); // 34 ms to load: not when parcel watches
  const filters = sourceFilters(config);
  const watched = new Set<string>();
  const ignored = (p: string, stats?: { isFile(): boolean; isDirectory(): boolean }) => {
    const src = filters.find((f) => p === f.root || p.startsWith(f.root + '/'));
    if (!src || p === src.root) return false;
    const rel = p.slice(src.root.length + 1);
    // chokidar asks first without stats: only an exclude can be decided then (include is for files only)
    if (!stats || stats.isDirectory()) return !src.filter.dir(rel);
    const skip = !src.filter.file(rel) || h.isDone(p);
    if (!skip) watched.add(p);
    return skip;
  };
  const w: FSWatcher = watch(config.sources.map((s) => s.path), {
    ignored, ignoreInitial: true, followSymlinks: false, persistent: true, alwaysStat: false, atomic: false,
  });
  w.on('add', (p) => h.onChange(p));
  w.on('change', (p) => h.onChange(p));
  w.on('unlink', (p) => h.onUnlink(p));
  w.on('error', (e) => h.onError(e instanceof Error ? e : new Error(String(e))));
  const ready = new Promise<void>((resolve) => w.once('ready', () => resolve()));
  return {
    ready,
    release: (p) => { if (watched.delete(p)) w.unwatch(p); },
    watchedFiles: () => watched,
    close: () => w.close(),
  };
}
