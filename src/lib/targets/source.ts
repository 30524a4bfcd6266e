import fs from 'node:fs';
import { Readable } from 'node:stream';
import { SourceError } from '../errors.js';
import { handled } from '../queue/deadline.js';
import { createHasher, hashBytes, initHasher, readAllAt, readAt } from '../hash/xxh64.js';
import { type Identity, openSettled, sameFile } from '../scan/sourceFs.js';

/**
 * What put() copies: the bytes of one opened file (never a path a target would open again), with the
 * metadata the copy gets. When `hash` is set, the bytes are hashed as they are handed out and a mismatch
 * fails the read *before* the last bytes leave: readAll() throws, stream() errors instead of yielding its
 * final chunk. So a target that publishes only what it received whole (rename after the stream ended,
 * multipart complete after the last part, a PUT whose body ended) never publishes bytes that are not the
 * settled content, whatever happened to the source during the copy. Every read starts again from byte 0,
 * so a put can be retried.
 */
export interface PutSource {
  readonly size: number;
  /** permission bits of the copy: never setuid, setgid or sticky (a backup must not mint a setuid binary) */
  readonly mode: number;
  readonly mtimeMs?: number;
  /** the settled xxh64 the bytes must hash to (also stored as metadata where the target keeps it: S3) */
  readonly hash?: string;
  /** The whole content (meant for small files). Throws SourceError(changed) on a hash or size mismatch. */
  readAll(): Buffer;
  /** The content as a stream of Buffers; errors (SourceError changed) before the final chunk on a mismatch. */
  stream(): Readable;
}

/** Permission bits a copy may carry: rwx for user, group, other; never setuid/setgid/sticky. */
export const COPY_MODE_MASK = 0o777;

const CHUNK = 256 << 10;
/** Chunks being read at once by the thread pool while the consumer hashes and writes the one before. */
const READS_AHEAD = 4;

/**
 * A PutSource reading an open descriptor with positioned reads (the descriptor's offset is never used, so
 * concurrent reads cannot disturb each other). The owner closes the descriptor after the put.
 */
export class FdSource implements PutSource {
  readonly mode: number;
  constructor(readonly fd: number, readonly size: number, mode: number, readonly mtimeMs?: number, readonly hash?: string,
    /** the path, for messages only: never opened */
    readonly label = `fd ${fd}`) {
    this.mode = mode & COPY_MODE_MASK;
  }

  /** Told the xxh64 of the whole content each time a read handed it out (SettledFile: a file not hashed before its copy). */
  onRead?: (hash: string) => void;

  private check(got: string | undefined, bytes: number): void {
    if (bytes !== this.size) throw new SourceError(`source changed while copying: ${this.label}: read ${bytes} bytes, settled size ${this.size}`, 'changed');
    if (this.hash !== undefined && got !== this.hash) {
      throw new SourceError(`source changed while copying: ${this.label}: the bytes read hash to ${got}, settled ${this.hash}: not published`, 'changed');
    }
    if (got !== undefined) this.onRead?.(got);
  }

  readAll(): Buffer {
    const data = readAllAt(this.fd, this.size);
    this.check(this.hash === undefined && !this.onRead ? undefined : hashBytes(data), data.length);
    return data;
  }

  /**
   * One chunk read ahead: the thread pool reads the next chunk while the consumer hashes and writes this one.
   * Chunks of 256 KiB: each is a fresh buffer (a consumer may keep it), and a fresh 1 MiB buffer costs a page
   * fault per page (1 GiB streamed and hashed twice: 1.63 s in 1 MiB chunks read in turn, 0.90 s now). A read
   * still in flight when the consumer stops is waited for, so the owner never closes the descriptor under it.
   */
  stream(): Readable {
    const fd = this.fd;
    const chunkAt = async (pos: number): Promise<Buffer> => {
      const buf = Buffer.allocUnsafe(CHUNK);
      const n = await readAt(fd, buf, pos);
      return n === CHUNK ? buf : buf.subarray(0, n);
    };
    async function* chunks(): AsyncGenerator<Buffer> {
      const ahead: Promise<Buffer>[] = [];
      let next = 0; // the offset of the next read asked for
      // each read handled from the start: one that fails while the consumer still holds an earlier chunk (EIO
      // on a failing disk) is thrown where it is awaited, not as an unhandled rejection (the process's end)
      const fill = (reads = READS_AHEAD) => { for (; ahead.length < reads; next += CHUNK) ahead.push(handled(chunkAt(next))); };
      try {
        fill();
        for (let pos = 0; ;) {
          const buf = await ahead.shift()!;
          if (buf.length === 0) return;
          pos += buf.length;
          if (buf.length < CHUNK) {
            // the end, or a read cut short: the reads ahead were asked at offsets past it. One read from here
            // says which (0 bytes: the end); a full chunk after it fills the reads ahead again
            await Promise.allSettled(ahead.splice(0));
            next = pos;
            fill(1);
          } else fill();
          yield buf;
        }
      } finally {
        await Promise.allSettled(ahead);
      }
    }
    return Readable.from(provenChunks(chunks(), (hash, bytes) => this.check(hash, bytes)), { objectMode: false });
  }
}

/**
 * Yield `chunks`, one behind: the last chunk is held back until `check(hash, bytes)` has accepted the whole
 * content, so a consumer that publishes only what it received whole never publishes bytes that are wrong.
 */
async function* provenChunks(chunks: AsyncIterable<Buffer>, check: (hash: string, bytes: number) => void): AsyncGenerator<Buffer> {
  const h = await createHasher();
  let bytes = 0;
  let held: Buffer | undefined;
  for await (const chunk of chunks) {
    h.update(chunk);
    bytes += chunk.length;
    if (held) yield held;
    held = chunk;
  }
  check(h.digest(), bytes);
  if (held) yield held;
}

/**
 * A settled source file named by its path and the identity it settled with (inode, size, mtime, ctime), opened
 * only when first read, by sourceFs.openSettled's rules (no symlink followed, the recorded identity or
 * SourceError). A kind that reads sources in another thread (a local target's LocalIo workers) takes `path`
 * and `identity` and applies the same rules there, and reports a source that changed after its copy was
 * published as SourceError(changed); anything else reads it here, through an FdSource of the opened file, and
 * the caller's `checkUnchanged()` after the put says whether the file still shows its identity. The owner
 * calls close().
 */
export class SettledFile implements PutSource {
  private opened?: FdSource;
  /**
   * Without a settled `hash` (a new file hashed by its first copy: Engine.hashAndCopy), the xxh64 of the
   * bytes the put published: set by the read that handed them out, here or in the kind's worker.
   */
  hashed?: string;
  constructor(readonly path: string, readonly identity: Identity, readonly mtimeMs: number | undefined, readonly hash: string | undefined) {}

  get size(): number { return this.identity.size; }

  /** Opened here (by a read or `mode`)? Else nothing read it in this thread. */
  get isOpen(): boolean { return this.opened !== undefined; }

  /** Its descriptor once opened here (a kind's worker thread may read it there: positioned reads). */
  get fd(): number | undefined { return this.opened?.fd; }

  /** Open it now (openSettled's SourceError when it is not the file that settled); every read uses this descriptor. */
  open(): void { this.source(); }

  private source(): FdSource {
    if (!this.opened) {
      const { fd, st } = openSettled(this.path, this.identity);
      this.opened = new FdSource(fd, this.size, st.mode, this.mtimeMs, this.hash, this.path);
      if (this.hash === undefined) this.opened.onRead = (h) => { this.hashed = h; };
    }
    return this.opened;
  }

  get mode(): number { return this.source().mode; }
  readAll(): Buffer { return this.source().readAll(); }
  stream(): Readable { return this.source().stream(); }

  /**
   * After the put: throws SourceError(changed) when the file read here no longer shows its identity (the bytes
   * published were the settled content, but a new one is coming). A file not opened here was checked where it
   * was read.
   */
  checkUnchanged(): void {
    if (this.opened && !sameFile(fs.fstatSync(this.opened.fd), this.identity)) throw new SourceError(`source changed while copying: ${this.path}`, 'changed');
  }

  close(): void {
    if (this.opened) fs.closeSync(this.opened.fd);
    this.opened = undefined;
  }
}

/** A PutSource from bytes in memory (tests, and small generated files). */
export function bufferSource(data: Buffer, meta: { mode?: number; mtimeMs?: number; hash?: string } = {}): PutSource {
  const mode = (meta.mode ?? 0o644) & COPY_MODE_MASK;
  const check = () => {
    if (meta.hash !== undefined && hashBytes(data) !== meta.hash) throw new SourceError(`source bytes hash to ${hashBytes(data)}, expected ${meta.hash}`, 'changed');
  };
  return {
    size: data.length, mode, mtimeMs: meta.mtimeMs, hash: meta.hash,
    readAll: () => { check(); return data; },
    stream: () => Readable.from((function* () { check(); if (data.length) yield data; })()),
  };
}

/**
 * Run `fn` with a PutSource for a file of our own (the store's snapshot files), opened without following a
 * symlink; closed afterwards. Mode and mtime are the file's unless given.
 */
export async function withFileSource<T>(file: string, meta: { mode?: number; mtimeMs?: number }, fn: (src: PutSource) => Promise<T>): Promise<T> {
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    const st = fs.fstatSync(fd);
    return await fn(new FdSource(fd, st.size, meta.mode ?? st.mode, meta.mtimeMs ?? st.mtimeMs, undefined, file));
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * A PutSource reading another target's copy of `rel` (repairing a copy whose source is gone). Its bytes must
 * hash to the store's hash `rec.h`: a small copy is fetched and checked before the put starts; a big one is
 * streamed and errors before its last chunk when it does not match, so nothing wrong is published. The mode is
 * the peer copy's, the mtime the recorded one.
 */
export async function peerSource(peer: { name: string; stat(rel: string): Promise<{ size: number; mode?: number } | undefined>; get(rel: string): Promise<Readable> },
  rel: string, rec: { z: number; m: number; h?: string }): Promise<PutSource> {
  const st = await peer.stat(rel);
  if (!st) throw new SourceError(`[${peer.name}] ${rel} is missing`, 'missing');
  const mode = (st.mode ?? 0o600) & COPY_MODE_MASK;
  const check = (got: string) => {
    if (got !== rec.h) throw new SourceError(`[${peer.name}] ${rel} hashes to ${got}, expected ${rec.h}: not used`, 'mismatch');
  };
  if (st.size <= CHUNK) {
    const parts: Buffer[] = [];
    for await (const c of await peer.get(rel) as AsyncIterable<Buffer>) parts.push(c);
    const data = Buffer.concat(parts);
    await initHasher();
    check(hashBytes(data));
    return bufferSource(data, { mode, mtimeMs: rec.m, hash: rec.h });
  }
  return {
    size: st.size, mode, mtimeMs: rec.m, hash: rec.h,
    readAll: () => { throw new SourceError(`[${peer.name}] ${rel}: a large copy is only streamed`, 'other'); },
    stream: () => Readable.from((async function* () { yield* provenChunks(await peer.get(rel) as AsyncIterable<Buffer>, check); })()),
  };
}
