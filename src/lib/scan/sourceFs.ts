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
 * lstat `p` (a path under the source root `root`) with every directory between them opened without following
 * symlinks: a directory replaced by a link to /etc is never entered. Undefined when `p` (or a parent) is gone,
 * is not under `root`, or a parent is not a directory.
 */
export function lstatUnder(root: string, p: string): fs.Stats | undefined {
  if (!p.startsWith(root === '/' ? '/' : root + '/')) return undefined;
  const parts = p.slice(root.length).split('/').filter(Boolean);
  const name = parts.pop();
  if (name === undefined) return undefined;
  let fd: number;
  try {
    fd = fs.openSync(root, C.O_RDONLY | C.O_DIRECTORY);
  } catch {
    return undefined;
  }
  try {
    for (const part of parts) {
      const next = fs.openSync(at(fd, part), DIR_FLAGS);
      fs.closeSync(fd);
      fd = next;
    }
    return fs.lstatSync(at(fd, name));
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
