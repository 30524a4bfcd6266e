import type { Readable } from 'node:stream';
import type { PutSource } from './source.js';
import type { SshSession } from './sshSession.js';

/** Files up to this size are read into memory and written with one pipelined burst of SFTP requests. */
const SMALL_PUT = 1 << 20;
/** A write this long always fits one SFTP request (the protocol's minimum packet is 32768 bytes). */
const ONE_WRITE = 30_000;
/** SFTP write requests in flight per big put (fastPut's default is 64; 32 KiB each) */
const WINDOW = 32;

/**
 * Write `src` to the new file `tmp` on the server (created exclusively: never through a planted link) with its
 * mode and mtime; the caller renames it into place. Rejects before the file holds all of a bad copy when the
 * source's bytes are not the settled content.
 */
export async function writeTemp(session: SshSession, tmp: string, src: PutSource): Promise<void> {
  const { sftp } = await session.connect();
  const attrs = { mode: src.mode, ...(src.mtimeMs !== undefined ? { atime: Date.now() / 1000, mtime: src.mtimeMs / 1000 } : {}) };
  const maxLen = (sftp as unknown as { _maxWriteLen?: number })._maxWriteLen ?? ONE_WRITE;
  const handle = await session.sftp<Buffer>((s, cb) => s.open(tmp, 'wx', cb));
  const setAttrs = () => session.sftp<void>((s, cb) => s.fsetstat(handle, attrs, cb));
  const close = () => session.sftp<void>((s, cb) => s.close(handle, cb));
  const firstFailure = (rs: PromiseSettledResult<void>[]) => rs.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (src.size <= SMALL_PUT) {
    // three round trips: open; write + attributes + close sent together; rename (after all succeeded).
    // Only when the data goes in ONE write request: ssh2 sends the rest of a longer write from the
    // first part's callback, i.e. after the close, and the server may have given that handle to
    // another file by then (found by a test: a copy corrupted, caught by its read-back).
    let data: Buffer;
    try {
      data = src.readAll(); // hashed against the settled hash before anything is sent
    } catch (err) {
      await close().catch(() => undefined);
      throw err;
    }
    const write = () => session.sftp<void>((s, cb) => s.write(handle, data, 0, data.length, 0, cb));
    const results = data.length === 0 ? await Promise.allSettled([setAttrs(), close()])
      : data.length <= maxLen ? await Promise.allSettled([write(), setAttrs(), close()])
        : [...await Promise.allSettled([write()]), ...await Promise.allSettled([setAttrs(), close()])];
    const failed = firstFailure(results);
    if (failed) throw failed.reason;
    return;
  }
  let ok = false;
  try {
    await writeStream(session, handle, src.stream(), maxLen);
    ok = true;
  } finally {
    const failed = firstFailure(await Promise.allSettled([...(ok ? [setAttrs()] : []), close()]));
    if (ok && failed) throw failed.reason;
  }
}

/**
 * Write a stream to an open handle with up to `WINDOW` SFTP write requests in flight (what fastPut does,
 * but in order: the source hashes its bytes as they are read, and errors before its last chunk when they
 * are not the settled content, so the handle never holds all of a bad copy).
 */
async function writeStream(session: SshSession, handle: Buffer, stream: Readable, maxLen: number): Promise<void> {
  const inFlight = new Set<Promise<void>>();
  let failed: unknown;
  let pos = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    for (let off = 0; off < chunk.length; off += maxLen) {
      if (failed !== undefined) throw failed;
      const len = Math.min(maxLen, chunk.length - off);
      const at = pos; // session.sftp() calls back after an await: pos has moved on by then
      const w = session.sftp<void>((s, cb) => s.write(handle, chunk, off, len, at, cb)).catch((e) => { failed ??= e; });
      pos += len;
      inFlight.add(w);
      void w.finally(() => inFlight.delete(w));
      if (inFlight.size >= WINDOW) await Promise.race(inFlight);
    }
  }
  await Promise.all(inFlight);
  if (failed !== undefined) throw failed;
}
