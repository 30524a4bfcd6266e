import fs from 'node:fs';
import type { Readable } from 'node:stream';
import { SMALL_FILE } from '../hash/xxh64.js';
import { utimeSeconds } from '../scan/sourceFs.js';
import type { PutSource } from './source.js';

const C = fs.constants;
const UMASK = process.umask();

/**
 * Write `src` to the new file `tmp` (created O_EXCL|O_NOFOLLOW: never opened through a link someone planted
 * under the temp name) with its mode and mtime; the caller renames it into place. Rejects before the file holds
 * all of a bad copy when the source's bytes are not the settled content.
 */
export async function writeTemp(tmp: string, src: PutSource, signal?: AbortSignal): Promise<void> {
  const fh = await fs.promises.open(tmp, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, src.mode);
  try {
    if (src.size <= SMALL_FILE) await writeAll(fh, src.readAll());
    else await writeStream(fh, src.stream(), signal);
    if (src.mode & UMASK) await fh.chmod(src.mode); // open's mode was cut by the umask
    if (src.mtimeMs !== undefined) await fh.utimes(Date.now() / 1000, utimeSeconds(src.mtimeMs));
  } finally {
    await fh.close();
  }
}

/**
 * Write all of `data` at `pos` (write(2) may write less than asked on a filling filesystem: loop, so ENOSPC
 * surfaces instead of a short file).
 */
export async function writeAll(fh: fs.promises.FileHandle, data: Buffer, pos = 0): Promise<void> {
  for (let off = 0; off < data.length;) off += (await fh.write(data, off, data.length - off, pos + off)).bytesWritten;
}

/** Write a source's stream to `fh` chunk by chunk (the source errors before its end if its bytes are not the settled ones). */
async function writeStream(fh: fs.promises.FileHandle, stream: Readable, signal?: AbortSignal): Promise<void> {
  let pos = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    signal?.throwIfAborted();
    await writeAll(fh, chunk, pos);
    pos += chunk.length;
  }
}
