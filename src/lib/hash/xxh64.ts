import fs from 'node:fs';
import type { Readable } from 'node:stream';
import xxhash, { type XXHashAPI } from 'xxhash-wasm';

let api: XXHashAPI | undefined;
let loading: Promise<XXHashAPI> | undefined;

/** Load the wasm hasher once; every other function here needs it loaded first. */
export async function initHasher(): Promise<XXHashAPI> {
  if (api) return api;
  loading ??= xxhash().then((a) => (api = a));
  return loading;
}

function hasher(): XXHashAPI {
  if (!api) throw new Error('initHasher() must be awaited before hashing');
  return api;
}

/** Hex exactly as `xxhsum -H1` prints it: 16 lowercase digits, canonical (big-endian) order. */
export function toHex(h: bigint): string {
  return h.toString(16).padStart(16, '0');
}

/** xxh64 of bytes in memory. */
export function hashBytes(data: Uint8Array): string {
  return toHex(hasher().h64Raw(data));
}

/** Files up to this size are read whole with one readFileSync: ~5x cheaper per file than async reads. */
export const SMALL_FILE = 1 << 20;
const CHUNK = 4 << 20;
// Reused read buffers at a 64-byte offset: page-offset buffers hit 4K aliasing (DESIGN perf notes).
const pool: Buffer[] = [];

function takeBuffer(): Buffer {
  return pool.pop() ?? Buffer.allocUnsafeSlow(CHUNK + 64).subarray(64, 64 + CHUNK);
}

export interface FileHash { hash: string; size: number }

/** Hash a small file synchronously (whole read). Throws the fs error (ENOENT, EACCES, EISDIR...). */
export function hashFileSync(file: string): FileHash {
  const data = fs.readFileSync(file);
  return { hash: hashBytes(data), size: data.length };
}

/**
 * Hash a file of any size: one readFileSync for small files, else `fs.read` into a reused buffer (no streams).
 * Returns the hash and the number of bytes read. `signal` aborts between chunks. Throws the fs error.
 */
export async function hashFile(file: string, opts: { signal?: AbortSignal; sizeHint?: number } = {}): Promise<FileHash> {
  if (opts.sizeHint !== undefined && opts.sizeHint <= SMALL_FILE) {
    const r = hashFileSync(file);
    if (r.size <= SMALL_FILE) return r;
  }
  const fh = await fs.promises.open(file, 'r');
  const buf = takeBuffer();
  try {
    const h = hasher().create64();
    let size = 0;
    for (;;) {
      opts.signal?.throwIfAborted();
      const { bytesRead } = await fh.read(buf, 0, CHUNK, null);
      if (bytesRead === 0) break;
      h.update(bytesRead === CHUNK ? buf : buf.subarray(0, bytesRead));
      size += bytesRead;
    }
    return { hash: toHex(h.digest()), size };
  } finally {
    pool.push(buf);
    await fh.close();
  }
}

/** Hash everything a stream yields. */
export async function hashStream(stream: Readable, signal?: AbortSignal): Promise<FileHash> {
  const h = hasher().create64();
  let size = 0;
  for await (const chunk of stream) {
    signal?.throwIfAborted();
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    h.update(b);
    size += b.length;
  }
  return { hash: toHex(h.digest()), size };
}
