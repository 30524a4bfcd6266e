import fs from 'node:fs';
import path from 'node:path';
import type { Adapter } from 'lowdb';

/** fsync a directory so that a rename inside it survives power loss. */
export function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try { fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
}

/**
 * Write `data` to `file` crash-safely: temp name in the same directory, fsync, rename over the final name.
 * The directory fsync is left to the caller (`syncDir`) so a batch of files costs one.
 */
export function writeFileAtomicSync(file: string, data: string | Uint8Array, syncDir = true): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  const fd = fs.openSync(tmp, 'w', 0o644);
  try {
    fs.writeSync(fd, data as string);
    // fsync before rename: otherwise a crash can leave an empty file under the final name
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  if (syncDir) fsyncDir(path.dirname(file));
}

/** lowdb adapter: JSON file read whole, written atomically and durably (lowdb's own JSONFile has no fsync). */
export class AtomicJsonFile<T> implements Adapter<T> {
  constructor(readonly file: string, readonly opts: { syncDir?: boolean; space?: number } = {}) {}

  /** Parsed content, or null when the file does not exist. Throws on unreadable or invalid JSON. */
  async read(): Promise<T | null> {
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
    writeFileAtomicSync(this.file, JSON.stringify(data, null, this.opts.space), this.opts.syncDir ?? true);
  }
}
