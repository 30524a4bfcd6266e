import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import type { Adapter } from 'lowdb';

/** fsync a directory so that a rename inside it survives power loss. */
export function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try { fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
}

/** fsync one file by path. */
export function fsyncFile(file: string): void {
  const fd = fs.openSync(file, 'r');
  try { fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
}

/** Batches at least this large are made durable with one syncfs instead of one fsync per file. */
const SYNCFS_MIN = 8;

/**
 * Make `files` (all on one filesystem) durable: one syncfs(2) (`sync -f`: one journal commit) for a batch,
 * an fsync each for a few files or where `sync -f` is unavailable.
 */
export function makeDurable(files: string[]): void {
  if (files.length >= SYNCFS_MIN && spawnSync('sync', ['-f', files[0]], { stdio: 'ignore' }).status === 0) return;
  for (const f of files) fsyncFile(f);
}

/**
 * Write `data` to `file` crash-safely: temp name in the same directory, fsync, rename over the final name.
 * The directory fsync is left to the caller (`syncDir`) so a batch of files costs one.
 */
export function writeFileAtomicSync(file: string, data: string | Uint8Array, syncDir = true): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    // private (0600): the store names every file of the machine
    const fd = fs.openSync(tmp, 'w', STORE_FILE_MODE);
    try {
      fs.writeFileSync(fd, data); // loops over short writes: a full disk is ENOSPC, never a short file
      // fsync before rename: otherwise a crash can leave an empty file under the final name
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true }); // a failed write (disk full) leaves no temp file behind
    throw err;
  }
  if (syncDir) fsyncDir(path.dirname(file));
}

/** Store files and directories are private to the user running replica. */
export const STORE_FILE_MODE = 0o600;
export const STORE_DIR_MODE = 0o700;

/**
 * lowdb adapter: JSON file read whole, written atomically and durably (lowdb's own JSONFile has no fsync).
 * With `staged`, write() only writes the temp file; the owner makes a batch durable and calls commit().
 */
export class AtomicJsonFile<T> implements Adapter<T> {
  /** temp file written by a staged write, waiting for commit() */
  staged?: string;
  constructor(readonly file: string, readonly opts: { syncDir?: boolean; space?: number; staged?: boolean } = {}) {}

  /** Parsed content, or null when the file does not exist. Throws on unreadable or invalid JSON. */
  async read(): Promise<T | null> {
    return this.readSync();
  }

  /** read(), synchronously. */
  readSync(): T | null {
    let text: string;
    try {
      // One synchronous read: fs.promises.readFile splits a file into 512 KiB thread-pool round trips.
      text = fs.readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
    return JSON.parse(text) as T;
  }

  async write(data: T): Promise<void> {
    const text = JSON.stringify(data, null, this.opts.space);
    if (!this.opts.staged) return writeFileAtomicSync(this.file, text, this.opts.syncDir ?? true);
    this.staged = `${this.file}.${process.pid}.tmp`;
    try {
      fs.writeFileSync(this.staged, text, { mode: STORE_FILE_MODE });
    } catch (err) {
      this.discard();
      throw err;
    }
  }

  /** Remove a staged temp file that will not be committed (a failed flush). */
  discard(): void {
    if (this.staged) fs.rmSync(this.staged, { force: true });
    this.staged = undefined;
  }

  /** Rename a staged (and by now durable) temp file over the final name. */
  commit(): void {
    if (!this.staged) return;
    fs.renameSync(this.staged, this.file);
    this.staged = undefined;
  }
}
