import fs from 'node:fs';

export interface InotifyUsage {
  /** watches held by the process(es) counted */
  watches: number;
  /** fs.inotify.max_user_watches, or undefined where there is no inotify */
  max?: number;
}

/** fs.inotify.max_user_watches (per user), or undefined on systems without inotify. */
export function maxUserWatches(): number | undefined {
  try {
    return Number(fs.readFileSync('/proc/sys/fs/inotify/max_user_watches', 'utf8').trim());
  } catch {
    return undefined;
  }
}

/** inotify watches held by one process: the `inotify wd:` lines of its inotify descriptors' fdinfo. */
export function processWatches(pid: number | 'self' = 'self'): number {
  let n = 0;
  let fds: string[];
  try {
    fds = fs.readdirSync(`/proc/${pid}/fd`);
  } catch {
    return 0;
  }
  for (const fd of fds) {
    try {
      if (fs.readlinkSync(`/proc/${pid}/fd/${fd}`) !== 'anon_inode:inotify') continue;
      const info = fs.readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
      n += info.split('\n').filter((l) => l.startsWith('inotify wd:')).length;
    } catch { /* closed meanwhile */ }
  }
  return n;
}

/** inotify watches in use by every process of this user (the budget max_user_watches applies to). */
export function userWatches(): InotifyUsage {
  const uid = process.getuid?.();
  let watches = 0;
  for (const pid of fs.existsSync('/proc') ? fs.readdirSync('/proc') : []) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (uid !== undefined && fs.statSync(`/proc/${pid}`).uid !== uid) continue;
    } catch {
      continue;
    }
    watches += processWatches(Number(pid));
  }
  return { watches, max: maxUserWatches() };
}
