import fs from 'node:fs';
import path from 'node:path';
import type { PathFilter } from './filter.js';

export type EntryKind = 'file' | 'symlink' | 'special';

/** One thing found under a source, with its lstat (symlinks are never followed). */
export interface Entry {
  path: string;
  kind: EntryKind;
  size: number;
  mtimeMs: number;
  ino: number;
  mode: number;
}

export interface WalkProblem {
  path: string;
  /** `unsupported-name`: not valid UTF-8; `unreadable`: a directory or entry that could not be read */
  kind: 'unsupported-name' | 'unreadable';
  message: string;
  code?: string;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The entries of `dir` whose names are valid UTF-8; each other one is reported and left out. */
function utf8Only(dir: string, onProblem: (p: WalkProblem) => void): fs.Dirent[] {
  const out: fs.Dirent[] = [];
  for (const d of fs.readdirSync(dir, { withFileTypes: true, encoding: 'buffer' })) {
    try {
      const name = utf8.decode(d.name);
      out.push(Object.assign(d, { name }) as unknown as fs.Dirent);
    } catch {
      onProblem({ path: path.join(dir, d.name.toString('utf8')), kind: 'unsupported-name', message: 'unsupported file name (not valid UTF-8): skipped' });
    }
  }
  return out;
}

/**
 * Walk `root` depth-first with readdir(withFileTypes) + lstat: every regular file, symlink and special file
 * that `filter` keeps goes to `onEntry`. Problems (unreadable directories, names that are not valid UTF-8)
 * go to `onProblem` and never stop the walk. Synchronous on purpose: ~4x faster than async for 10^5 files.
 */
export function walk(root: string, filter: PathFilter, onEntry: (e: Entry) => void, onProblem: (p: WalkProblem) => void): void {
  const base = root.endsWith('/') ? root.slice(0, -1) : root;
  const stack: string[] = [''];
  while (stack.length) {
    const relDir = stack.pop()!;
    const dir = relDir === '' ? base : `${base}/${relDir}`;
    let dirents: fs.Dirent[];
    try {
      dirents = fs.readdirSync(dir || '/', { withFileTypes: true });
      // Invalid UTF-8 decodes to U+FFFD; only then read the raw bytes to tell it from a real U+FFFD.
      if (dirents.some((d) => d.name.includes('\uFFFD'))) dirents = utf8Only(dir || '/', onProblem);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (relDir !== '' || e.code !== 'ENOENT') onProblem({ path: dir, kind: 'unreadable', message: `cannot read directory: ${e.message}`, code: e.code });
      continue;
    }
    for (const d of dirents) {
      const name = d.name;
      const rel = relDir === '' ? name : `${relDir}/${name}`;
      if (d.isDirectory()) {
        if (filter.dir(rel)) stack.push(rel);
        continue;
      }
      if (!filter.file(rel)) continue;
      const abs = `${dir}/${name}`;
      let st: fs.Stats;
      try {
        st = fs.lstatSync(abs);
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        if (e.code !== 'ENOENT') onProblem({ path: abs, kind: 'unreadable', message: `cannot stat: ${e.message}`, code: e.code });
        continue; // ENOENT: deleted between readdir and lstat; the store notices next time
      }
      if (st.isDirectory()) { // the dirent type was unknown (some filesystems do not report it)
        if (filter.dir(rel)) stack.push(rel);
        continue;
      }
      const kind: EntryKind = st.isFile() ? 'file' : st.isSymbolicLink() ? 'symlink' : 'special';
      onEntry({ path: abs, kind, size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, mode: st.mode });
    }
  }
}
