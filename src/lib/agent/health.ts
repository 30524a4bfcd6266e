import type { Logger } from '../log.js';
import { maxUserWatches, processWatches } from '../scan/inotify.js';
import type { WatchInfo } from '../store/model.js';
import type { Store } from '../store/store.js';

/** While the watcher is down (inotify limit, overflow), rescans run this often at least. */
export const POLL_MS = 60_000;

/** What `status` and the monitor show about the running agent: backend, watches, events or polling, last error. */
export function watchInfo(store: Store, backend: string, polling: boolean): WatchInfo {
  const mine = store.meta.watch?.pid === process.pid;
  return {
    backend, pid: process.pid,
    startedAt: mine ? store.meta.watch!.startedAt : new Date().toISOString(),
    watches: processWatches(), maxWatches: maxUserWatches(), mode: polling ? 'polling' : 'events',
    error: mine ? store.meta.watch!.error : undefined,
  };
}

/** Record that the agent is alive (the monitor calls a host stale without it), with its watch budget. */
export function heartbeat(store: Store, info: WatchInfo, log: Logger): void {
  store.meta.heartbeatAt = new Date().toISOString();
  store.meta.watch = info;
  if (info.maxWatches && info.watches > 0.9 * info.maxWatches) log.warn(`watch: ${info.watches} inotify watches of ${info.maxWatches} allowed: near the limit`);
  store.touchMeta();
}

/** The one line that says why the watcher failed and what the agent does instead. */
export function watchFailure(err: Error, rescanMs: number): { limit: boolean; message: string } {
  const limit = (err as NodeJS.ErrnoException).code === 'ENOSPC';
  const message = limit
    ? `inotify watch limit reached (fs.inotify.max_user_watches = ${maxUserWatches()}): falling back to a full scan every ${Math.min(POLL_MS, rescanMs) / 1000} s; raise the limit (sysctl fs.inotify.max_user_watches=...) and restart`
    : `watcher error: ${err.message}: rescanning`;
  return { limit, message };
}
