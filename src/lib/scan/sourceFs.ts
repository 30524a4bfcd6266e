import fs from 'node:fs';
import { SourceError, classifyErrno, messageOf } from '../errors.js';

const C = fs.constants;
/** Open a directory without following a symlink in its last component. */
export const DIR_FLAGS = C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW;
/**
 * Open a source file for reading: never through a symlink (ELOOP), never blocking on a FIFO that was swapped
 * in (O_NONBLOCK has no effect on regular files).
 */
export const FILE_FLAGS = C.O_RDONLY | C.O_NOFOLLOW | C.O_NONBLOCK;

/**
 * The path of `name` inside the directory open as `dirFd`, resolved by the kernel from that very directory
 * (the /proc/self/fd magic link), not from its path again: Linux's openat(2) for Node, which has none.
 * A directory swapped for a symlink after we opened it cannot redirect what we read through this.
 */
export const at = (dirFd: number, name: string): string => `/proc/self/fd/${dirFd}/${name}`;

/**
 * An mtime in epoch ms (fs.Stats.mtimeMs) as the seconds fs.utimes takes, so that the file gets that mtime to
 * the microsecond: libuv keeps whole microseconds and truncates, and the nearest double below the exact value
 * (a seconds count near 1.8e9 is exact to ~0.24 us) would lose one. A `Date` would keep milliseconds only.
 */
export const utimeSeconds = (ms: number): number => (Math.round(ms * 1000) + 0.5) / 1e6;

/** The identity of the file that settled: what an opened descriptor must still show. */
export interface Identity { readonly size: number; readonly mtimeMs: number; readonly ino?: number; readonly ctimeMs?: number }

/**
 * Does `st` still show the file `id` describes (size, mtime; inode and ctime where recorded)? The one
 * comparison of a file against what was recorded of it: the settle rule's change check uses it too.
 */
export function sameFile(st: { size: number; mtimeMs: number; ino: number; ctimeMs: number }, id: Identity): boolean {
  return st.size === id.size && st.mtimeMs === id.mtimeMs && (id.ino === undefined || st.ino === id.ino)
    && (id.ctimeMs === undefined || st.ctimeMs === id.ctimeMs);
}

/**
 * Open the directory `dir` (the source root `root` or a directory under it) with every directory between them
 * opened without following symlinks: a directory replaced by a link to /etc is never entered. Returns its
 * descriptor (the caller closes it; `at(fd, name)` names what is inside), or undefined when it is gone, is
 * not under `root`, or a component is not a directory.
 */
export function openDirUnder(root: string, dir: string): number | undefined {
  if (dir !== root && !dir.startsWith(root === '/' ? '/' : root + '/')) return undefined;
  let fd: number;
  try {
    fd = fs.openSync(root, C.O_RDONLY | C.O_DIRECTORY);
  } catch {
    return undefined;
  }
  try {
    for (const part of dir.slice(root.length).split('/').filter(Boolean)) {
      const next = fs.openSync(at(fd, part), DIR_FLAGS);
      fs.closeSync(fd);
      fd = next;
    }
    return fd;
  } catch {
    fs.closeSync(fd);
    return undefined;
  }
}

/**
 * Open the directory holding `p` (a path under the source root `root`) as openDirUnder does: its descriptor
 * and `p` named through it (`at(fd, name)`). The caller closes `fd`. Undefined when `p` is not under `root`,
 * or its directory is gone or not reachable without following a symlink.
 */
export function openParentUnder(root: string, p: string): { fd: number; name: string } | undefined {
  if (!p.startsWith(root === '/' ? '/' : root + '/') || p.endsWith('/')) return undefined;
  const cut = p.lastIndexOf('/');
  const fd = openDirUnder(root, p.slice(0, cut) || '/');
  return fd === undefined ? undefined : { fd, name: at(fd, p.slice(cut + 1)) };
}

/**
 * lstat `p` (a path under the source root `root`) without following a symlink on the way (openParentUnder).
 * Undefined when `p` (or a parent) is gone, is not under `root`, or a parent is not a directory.
 */
export function lstatUnder(root: string, p: string): fs.Stats | undefined {
  const parent = openParentUnder(root, p);
  if (!parent) return undefined;
  const { fd } = parent;
  try {
    return fs.lstatSync(parent.name);
  } catch {
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Open the settled source file `p` for reading and prove it is the file that settled: opened without following
 * a symlink (a file swapped for a link to a secret fails with ELOOP), and its descriptor shows the recorded
 * inode, size, mtime and ctime (a parent directory swapped for a link leads to another inode). Returns the
 * descriptor and its fstat; the caller closes it. Throws SourceError: `vanished`, `changed`, or the errno's
 * class (EACCES).
 */
export function openSettled(p: string, id: Identity): { fd: number; st: fs.Stats } {
  let fd: number;
  try {
    fd = fs.openSync(p, FILE_FLAGS);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new SourceError(`source vanished: ${p}`, 'vanished', { cause: err });
    if (code === 'ELOOP') throw new SourceError(`source changed: ${p} is now a symlink: not followed`, 'changed', { cause: err });
    throw new SourceError(`cannot read source ${p}: ${messageOf(err)}`, classifyErrno(err), { cause: err });
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile() || !sameFile(st, id)) {
      throw new SourceError(`source changed: ${p} is not the file that settled (${st.isFile() ? 'inode, size, mtime or ctime differ' : 'not a regular file'})`, 'changed');
    }
    return { fd, st };
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
}

/** The source root of `p` among `roots` (the longest that contains it), or undefined. */
export function rootOf(roots: string[], p: string): string | undefined {
  let best: string | undefined;
  for (const r of roots) if ((p.startsWith(r + '/') || r === '/') && (!best || r.length > best.length)) best = r;
  return best;
}

/** Is there anything (a file, a link, a directory) at `p`? A symlink counts as itself, never followed. */
export function exists(p: string): boolean {
  try {
    fs.lstatSync(p);
    return true;
  } catch {
    return false;
  }
}
