import fs from 'node:fs';
import type { Readable } from 'node:stream';
import xxhash, { type XXHashAPI } from 'xxhash-wasm';

let api: XXHashAPI | undefined;
let loading: Promise<XXHashAPI> | undefined;

/**
 * Load the wasm hasher once; every other function here needs it loaded first. Resolves to xxhash-wasm's API
 * (the store's h32); xxh64 goes through this module's functions, which hash in place where they can (inPlace).
 */
export async function initHasher(): Promise<XXHashAPI> {
  if (api) return api;
  loading ??= (async () => {
    // xxhash-wasm's own instance first (each instance's memory is allocated as it is made: where address space
    // is short, this is the one that must fit)
    const a = await xxhash();
    const raw = await privateInstance();
    try {
      if (raw) inPlace = new InPlace(raw);
    } catch {
      // its memory could not grow (an address-space limit): hashing copies, as xxhash-wasm's API does
    }
    return (api = a);
  })();
  return loading;
}

function hasher(): XXHashAPI {
  if (!api) throw new Error('initHasher() must be awaited before hashing');
  return api;
}

// WebAssembly as far as this module uses it (the project's TypeScript libs, ES2022 without DOM, do not declare it)
interface WasmMemory { readonly buffer: ArrayBuffer; grow(pages: number): number }
interface Wasm {
  instantiate(...args: unknown[]): Promise<unknown>;
  Memory: abstract new (...args: never[]) => WasmMemory;
  Instance: abstract new (...args: never[]) => { exports: unknown };
}
const wasm = (globalThis as unknown as { WebAssembly: Wasm }).WebAssembly;

/** The exports of xxhash-wasm's module that hash at a pointer in its memory (its own API copies the input there first). */
interface RawXxh64 {
  mem: WasmMemory;
  xxh64(ptr: number, len: number, seed: bigint): bigint;
  init64(state: number, seed: bigint): void;
  update64(state: number, ptr: number, len: number): void;
  digest64(state: number): bigint;
}

/**
 * A second instance of xxhash-wasm's module, ours alone: its exports, seen as xxhash() instantiates it. Why: the
 * package's API copies every input into the module's memory before hashing it, and that copy cost as much as
 * a third of hashing a cached file (1 GiB: ~250 ms through the API, ~170 ms reading into the module's memory and
 * hashing there). undefined when the package no longer instantiates that way: hashing then copies, as before.
 */
async function privateInstance(): Promise<RawXxh64 | undefined> {
  const instantiate = wasm.instantiate;
  let raw: RawXxh64 | undefined;
  // instantiate() gives an Instance, or { module, instance } from bytes
  const seen = (r: unknown) => {
    const e = ((r instanceof wasm.Instance ? r : (r as { instance?: { exports?: unknown } }).instance)?.exports ?? {}) as Partial<RawXxh64>;
    if (e.mem instanceof wasm.Memory && [e.xxh64, e.init64, e.update64, e.digest64].every((f) => typeof f === 'function')) raw ??= e as RawXxh64;
    return r;
  };
  // xxhash() instantiates before its first await: the patch is in place for that synchronous call only
  try {
    wasm.instantiate = (...args: unknown[]) => instantiate.apply(wasm, args).then(seen);
  } catch {
    return undefined; // frozen (node --frozen-intrinsics): hashing copies, as the package does
  }
  let loaded: Promise<unknown>;
  try {
    loaded = xxhash();
  } finally {
    wasm.instantiate = instantiate;
  }
  try {
    await loaded;
  } catch {
    // no room for a second instance (V8 reserves ~10 GB of address space for each: a `ulimit -v` can say no
    // to the second where the first fitted): hashing copies, as xxhash-wasm's API does
    return undefined;
  }
  return raw;
}

/** Bytes of each read buffer (CHUNK) in the module's memory, at most this many (the rest are ordinary buffers). */
const IN_PLACE_BUFFERS = 8;
/** Input from ordinary memory is copied in and hashed this much at a time (fits the cache: ~11 GB/s against ~7.5 at 4 MiB). */
const SCRATCH = 256 << 10;
/** The state of the hash being updated, at 0 (88 bytes, as xxhash-wasm lays it out); the scratch after it. */
const STATE = 0;
const SCRATCH_AT = 128;
const MASK64 = 2n ** 64n - 1n;

/**
 * The private instance's memory, laid out once (it is never grown again: growing detaches every view of it):
 * the state of the hash being updated, a scratch area, and IN_PLACE_BUFFERS read buffers handed out by
 * hashBuffer(). Bytes in a read buffer are hashed where they are; others are copied into the scratch first.
 * Every call is synchronous, so one state area serves any number of hashes: each keeps its 88 bytes of state
 * outside between updates.
 */
class InPlace {
  readonly bytes: Uint8Array;
  private handedOut = 0;
  private readonly first: number;

  constructor(readonly raw: RawXxh64) {
    this.first = Math.ceil((SCRATCH_AT + SCRATCH) / 4096) * 4096;
    const need = this.first + IN_PLACE_BUFFERS * CHUNK;
    const have = raw.mem.buffer.byteLength;
    if (have < need) raw.mem.grow(Math.ceil((need - have) / 65536));
    this.bytes = new Uint8Array(raw.mem.buffer);
  }

  /** A read buffer of CHUNK bytes in the module's memory, or undefined when all are handed out. */
  buffer(): Buffer | undefined {
    if (this.handedOut === IN_PLACE_BUFFERS) return undefined;
    return Buffer.from(this.bytes.buffer, this.first + CHUNK * this.handedOut++, CHUNK);
  }

  /** Is `b` in the module's memory (hashed where it is)? */
  holds(b: Uint8Array): boolean {
    return b.buffer === this.bytes.buffer;
  }

  /** One-shot xxh64 of `b`. */
  hash(b: Uint8Array): bigint {
    if (this.holds(b)) return this.raw.xxh64(b.byteOffset, b.length, 0n) & MASK64;
    if (b.length <= SCRATCH) {
      this.bytes.set(b, SCRATCH_AT);
      return this.raw.xxh64(SCRATCH_AT, b.length, 0n) & MASK64;
    }
    const state = this.start();
    this.update(state, b);
    return this.digest(state);
  }

  /** A new hash's state. */
  start(): Uint8Array {
    this.bytes.fill(0, STATE, STATE + 88);
    this.raw.init64(STATE, 0n);
    return this.bytes.slice(STATE, STATE + 88);
  }

  update(state: Uint8Array, b: Uint8Array): void {
    this.bytes.set(state, STATE);
    if (this.holds(b)) this.raw.update64(STATE, b.byteOffset, b.length);
    else {
      for (let off = 0; off < b.length; off += SCRATCH) {
        const piece = b.subarray(off, off + SCRATCH);
        this.bytes.set(piece, SCRATCH_AT);
        this.raw.update64(STATE, SCRATCH_AT, piece.length);
      }
    }
    state.set(this.bytes.subarray(STATE, STATE + 88));
  }

  digest(state: Uint8Array): bigint {
    this.bytes.set(state, STATE);
    return this.raw.digest64(STATE) & MASK64;
  }
}

let inPlace: InPlace | undefined;

/** Hex exactly as `xxhsum -H1` prints it: 16 lowercase digits, canonical (big-endian) order. */
function toHex(h: bigint): string {
  return h.toString(16).padStart(16, '0');
}

/** xxh64 of bytes in memory. */
export function hashBytes(data: Uint8Array): string {
  return toHex(inPlace ? inPlace.hash(data) : hasher().h64Raw(data));
}

/** An incremental xxh64: update() with chunks, then digest(): the hex as hashBytes gives it. */
export interface Xxh64 { update(b: Uint8Array): Xxh64; digest(): string }

/** A new incremental xxh64 (initHasher() awaited first). Chunks in a hashBuffer() are hashed where they are. */
export function newHasher(): Xxh64 {
  const ip = inPlace;
  if (ip) {
    const state = ip.start();
    const h: Xxh64 = { update: (b) => { ip.update(state, b); return h; }, digest: () => toHex(ip.digest(state)) };
    return h;
  }
  const c = hasher().create64();
  const h: Xxh64 = { update: (b) => { c.update(b); return h; }, digest: () => toHex(c.digest()) };
  return h;
}

/** Files up to this size are read whole with one readFileSync: ~5x cheaper per file than async reads. */
export const SMALL_FILE = 1 << 20;
/** The size of a hashBuffer(). */
export const CHUNK = 4 << 20;
// hashFile's read buffers, reused
const pool: Buffer[] = [];

/**
 * A new read buffer of CHUNK bytes (initHasher() awaited first; callers keep and reuse it): in the hasher's
 * memory while there is room, so what is read into it is hashed without a copy; else an ordinary buffer at a
 * 64-byte offset (copied into the hasher to be hashed: page-aligned buffers copied to a page-aligned offset
 * hit 4K aliasing, ~2.5 against ~10 GB/s).
 */
export function hashBuffer(): Buffer {
  return inPlace?.buffer() ?? Buffer.allocUnsafeSlow(CHUNK + 64).subarray(64, 64 + CHUNK);
}

export interface FileHash { hash: string; size: number }

/**
 * Hash a file of any size: small files (<= SMALL_FILE) with one synchronous read (thread-pool round trips
 * cost more than the read), big ones with `fs.read` into a reused buffer, chunk by chunk (no streams).
 * Returns the hash and the number of bytes read. `signal` aborts between chunks. Throws the fs error.
 */
export async function hashFile(file: string, opts: { signal?: AbortSignal } = {}): Promise<FileHash> {
  const fd = fs.openSync(file, 'r');
  try {
    return await hashFd(fd, opts);
  } finally {
    fs.closeSync(fd);
  }
}

/** One reused buffer for hashing small files (their bytes are not kept): no allocation per file, hashed in place. */
let smallBuf: Buffer | undefined;

/**
 * Hash what an open descriptor holds, from its start (as hashFile); the caller closes `fd`. `size`: what the
 * caller's fstat of it said (saves one here).
 */
export async function hashFd(fd: number, opts: { signal?: AbortSignal; size?: number } = {}): Promise<FileHash> {
  if ((opts.size ?? fs.fstatSync(fd).size) <= SMALL_FILE) {
    // synchronous from here to the hash: nothing else can use the shared buffer meanwhile
    const b = (smallBuf ??= hashBuffer().subarray(0, SMALL_FILE + 1));
    let off = 0;
    for (let n; off < b.length && (n = fs.readSync(fd, b, off, b.length - off, off)) > 0;) off += n;
    if (off <= SMALL_FILE) return { hash: hashBytes(b.subarray(0, off)), size: off };
    // grew past the limit since fstat: hash what is there now, incrementally (update() is done with `b` at once)
    return finishHash(fd, newHasher().update(b), b.length, opts.signal);
  }
  return finishHash(fd, newHasher(), 0, opts.signal);
}

/** Every byte of `fd` from offset 0 (positioned reads: the descriptor's offset is not used). */
export function readAllAt(fd: number, size = fs.fstatSync(fd).size): Buffer {
  // one byte more than expected: the read that finds the end needs no second buffer
  let buf = carve(size + 1);
  let off = 0;
  for (;;) {
    if (off === buf.length) { const b = Buffer.allocUnsafe(buf.length * 2); buf.copy(b); buf = b; }
    const n = fs.readSync(fd, buf, off, buf.length - off, off);
    if (n === 0) return buf.subarray(0, off);
    off += n;
  }
}

/** Small buffers are cut from slabs of this size (never reused: each view keeps its slab alive, at most this much). */
const SLAB = 256 << 10;
let slab: Buffer | undefined;
let slabUsed = 0;

/**
 * A new buffer of `n` bytes, not zeroed: up to SLAB/8 cut from the current slab (a file of 4 KiB is past
 * Buffer's own pool, and an ArrayBuffer each cost ~8 us: 10k small tape members, ~80 ms), bigger ones alone.
 */
function carve(n: number): Buffer {
  if (n > SLAB / 8) return Buffer.allocUnsafe(n);
  if (!slab || slabUsed + n > SLAB) { slab = Buffer.allocUnsafeSlow(SLAB); slabUsed = 0; }
  const b = slab.subarray(slabUsed, slabUsed + n);
  slabUsed += (n + 7) & ~7; // 8-byte aligned, as Buffer's pool
  return b;
}

/**
 * Hash a file on a target without blocking the event loop at any point (a hung disk must let timers fire):
 * opened without following a symlink, read with asynchronous positioned reads.
 */
export async function hashFileAsync(file: string, opts: { signal?: AbortSignal } = {}): Promise<FileHash> {
  const fh = await fs.promises.open(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    return await finishHash(fh.fd, newHasher(), 0, opts.signal);
  } finally {
    await fh.close();
  }
}

/** One read of up to `buf.length` bytes of `fd` at `pos` into `buf`, on the thread pool. */
export const readAt = (fd: number, buf: Buffer, pos: number): Promise<number> =>
  new Promise((resolve, reject) => fs.read(fd, buf, 0, buf.length, pos, (err, n) => (err ? reject(err) : resolve(n))));

/** Hash from `start` to the end of `fd`: the next chunk is read (thread pool) while this one is hashed. */
async function finishHash(fd: number, h: Xxh64, start: number, signal?: AbortSignal): Promise<FileHash> {
  const bufs = [pool.pop() ?? hashBuffer(), pool.pop() ?? hashBuffer()];
  let pending: Promise<number> | undefined;
  try {
    let size = start;
    let cur = 0;
    pending = readAt(fd, bufs[cur], size);
    for (;;) {
      signal?.throwIfAborted();
      const n = await pending;
      pending = undefined;
      if (n === 0) break;
      size += n;
      pending = readAt(fd, bufs[cur ^ 1], size);
      h.update(n === CHUNK ? bufs[cur] : bufs[cur].subarray(0, n));
      cur ^= 1;
    }
    return { hash: h.digest(), size };
  } finally {
    await pending?.catch(() => undefined); // never recycle a buffer a read may still fill
    pool.push(...bufs);
  }
}

/** newHasher() once the hasher is loaded. */
export async function createHasher(): Promise<Xxh64> {
  await initHasher();
  return newHasher();
}

/** Hash everything a stream yields. */
export async function hashStream(stream: Readable, signal?: AbortSignal): Promise<FileHash> {
  const h = newHasher();
  let size = 0;
  for await (const chunk of stream) {
    signal?.throwIfAborted();
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    h.update(b);
    size += b.length;
  }
  return { hash: h.digest(), size };
}
