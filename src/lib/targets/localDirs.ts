import fs from 'node:fs';
import path from 'node:path';
import { TargetError } from '../errors.js';
import { CheckedDirs } from './checkedDirs.js';
import { STORE_DIR } from './layout.js';

const UMASK = process.umask();

/** Mode of directories replica creates when the caller does not know the source directory's. */
export const PRIVATE_DIR_MODE = 0o700;

/** The directories of one local target (CheckedDirs): made with no symlink between the base and them. */
export class LocalDirs extends CheckedDirs {
  /** directories made or replaced (a symlink removed) by this process: a file-by-file fsync would not make those durable */
  changed = 0;

  constructor(private readonly target: string, private readonly base: string, private readonly sweep: (relDir: string) => Promise<unknown>) {
    super();
  }

  /**
   * Make `relDir` a real directory below the base with no symlink on the way, creating what is missing
   * (mode from `dirMode`, else private), and remove stale temp files there on its first use in this process.
   */
  prepare(relDir: string, dirMode?: (relDir: string) => number | undefined): Promise<void> {
    return this.once(relDir, async () => {
      const parent = relDir.includes('/') ? relDir.slice(0, relDir.lastIndexOf('/')) : undefined;
      if (parent !== undefined) await this.prepare(parent, dirMode);
      else if (await fs.promises.mkdir(this.base, { recursive: true, mode: PRIVATE_DIR_MODE }) !== undefined) this.changed++;
      return this.ensureDir(relDir, parent === undefined || (parent === STORE_DIR), dirMode?.(relDir));
    }, () => this.sweep(relDir));
  }

  /**
   * One component: a directory stays, a missing one is made, a symlink is replaced (or refused at the top).
   * True when this call made it (empty: nothing to sweep).
   */
  private async ensureDir(relDir: string, top: boolean, mode: number | undefined): Promise<boolean> {
    const dir = path.join(this.base, relDir);
    for (let attempt = 0; ; attempt++) {
      let st: fs.Stats | undefined;
      try { st = await fs.promises.lstat(dir); } catch (err) { if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err; }
      if (st?.isDirectory()) return false;
      if (st?.isSymbolicLink()) {
        if (top) {
          throw new TargetError(`[${this.target}] ${dir} is a symlink: refusing to write through it (make it a real directory)`, { target: this.target, errorClass: 'EACCES', permanent: true });
        }
        // a link we recreated from a source that has since become a directory: the link text is in the store
        await fs.promises.unlink(dir);
        this.changed++;
      } else if (st) {
        throw new TargetError(`[${this.target}] ${dir} exists and is not a directory`, { target: this.target, errorClass: 'other', permanent: true });
      }
      try {
        await fs.promises.mkdir(dir, { mode: mode ?? PRIVATE_DIR_MODE });
        this.changed++;
        if (mode !== undefined && (mode & UMASK)) await fs.promises.chmod(dir, mode); // mkdir's mode was cut by the umask
        return true;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 2) throw err;
      }
    }
  }
}
