import { watch, type FSWatcher } from 'chokidar';
import type { Config } from '../config/schema.js';
import { PathFilter } from './filter.js';

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
  /** stop watching one file (it is verified everywhere); its directory stays watched */
  release(path: string): void;
  /** files that have a watch of their own now */
  watchedFiles(): Iterable<string>;
  close(): Promise<void>;
}

/**
 * Watch every source with chokidar: include/exclude applied before watching (excluded directories are never
 * entered), symlinks not followed, no initial events (the reconcile scan did that work). chokidar puts one
 * inotify watch on every directory and every file it watches, so files verified everywhere are left out:
 * their directory's watch still reports new files, and the periodic rescan covers the rare late change.
 */
export function watchSources(config: Config, h: WatchHandlers): SourceWatcher {
  const filters = config.sources.map((s) => ({ root: s.path, filter: new PathFilter(s.include, [...config.exclude, ...s.exclude]) }));
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
