import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { TargetError } from '../errors.js';
import { fileName } from './tapeCatalog.js';

/**
 * Where tape files go: the emulator (a directory: one subdirectory per tape, named by its label, each tape file
 * `fileNNNNN.tar` in it; `capacity` is the tape size) or a real non-rewinding drive positioned with `mt`
 * (mt-st). Both write whole blocks of `blockSize` (the last one padded with zeros, as tar pads a record), and
 * both fail a write past the end of the tape with ENOSPC, leaving what was written: a partial tape file.
 */
export interface TapeDrive {
  /** for messages: the directory or device */
  readonly where: string;
  /** The tape `label` can be written and read now; throws TargetError not-mounted when not. Free bytes where known. */
  check(label: string): Promise<{ freeBytes?: number }>;
  /** Make a new tape ready under `label` (the emulator: its directory; a drive: rewind and write the label as tape file 0). */
  load(label: string): Promise<void>;
  /** The number the next tape file on `label` gets (after every file on it, partial ones included). */
  nextNumber(label: string, catalogNext: number): number;
  /** Write tape file `number` at the end of the data on `label`. */
  writer(label: string, number: number): Promise<TapeWriter>;
  /** Read `size` bytes (all when undefined) of tape file `number` on `label` from byte `offset` (repositioned: never a cache of ours). */
  read(label: string, number: number, offset?: number, size?: number): Readable;
  /**
   * Read tape file `number` on `label` whole, as read() does, for a reader done with each chunk before it asks
   * for the next (a confirm): a drive may hand out the same buffer each time.
   */
  scan(label: string, number: number): Iterable<Buffer> | AsyncIterable<Buffer>;
}

export interface TapeWriter {
  /** bytes that reached the tape (whole blocks) */
  readonly bytes: number;
  /** true when a chunk is no longer held once its write() resolved (its memory can be used again) */
  readonly releases: boolean;
  write(chunk: Buffer): Promise<void>;
  /** Pad and write the last block, make it durable (the emulator fsyncs; a drive writes the filemark on close). */
  close(): Promise<void>;
  /** Give up (the tape file stays as far as it was written). */
  abort(): void;
}

const READ_CHUNK = 128 << 10;

const endOfTape = (where: string, label: string): TargetError =>
  new TargetError(`[${where}] tape ${label}: end of tape (no space left)`, { target: where, errorClass: 'ENOSPC' });

/** Buffers writes into `blockSize` blocks; `put` writes one whole block (a drive: one write is one tape block). */
class Blocker implements TapeWriter {
  bytes = 0;
  /** whole blocks go to `put` as slices of the chunk */
  readonly releases = false;
  private buf: Buffer;
  private used = 0;
  constructor(private readonly blockSize: number, private readonly put: (block: Buffer) => void, private readonly finish: () => void, readonly abort: () => void) {
    this.buf = Buffer.alloc(blockSize);
  }

  async write(chunk: Buffer): Promise<void> {
    let at = 0;
    if (this.used === 0 && chunk.length >= this.blockSize) { // whole blocks straight from the chunk: no copy
      at = chunk.length - (chunk.length % this.blockSize);
      for (let b = 0; b < at; b += this.blockSize) {
        this.put(chunk.subarray(b, b + this.blockSize));
        this.bytes += this.blockSize;
      }
    }
    for (; at < chunk.length;) {
      const n = chunk.copy(this.buf, this.used, at);
      this.used += n;
      at += n;
      if (this.used === this.blockSize) this.flush();
    }
  }

  private flush(): void {
    this.put(this.buf);
    this.bytes += this.blockSize;
    this.used = 0;
  }

  async close(): Promise<void> {
    if (this.used) {
      this.buf.fill(0, this.used);
      this.flush();
    }
    this.finish();
  }
}

/**
 * Writes a tape file of the emulator: chunks as they come (a file has no blocks to keep: no copy into a block
 * buffer), the end padded to a whole block as a drive's last block is; past `free` bytes it writes what fits and
 * fails like the end of a tape.
 */
class EmulatedWriter implements TapeWriter {
  bytes = 0;
  /** every chunk is written (or copied into its buffer) before write() returns */
  readonly releases = true;
  private open = true;
  /** tar-stream hands over a few hundred bytes at a time (headers, padding): gathered into 1 MiB writes */
  private readonly buf = Buffer.allocUnsafe(1 << 20);
  private held = 0;
  constructor(private readonly fd: number, private free: number, private readonly blockSize: number, private readonly eot: () => TargetError) {}

  async write(chunk: Buffer): Promise<void> {
    if (chunk.length > this.free) { // the end of the tape: what fits is written, as a drive writes it
      this.flush();
      this.writeAll(chunk.subarray(0, this.free));
      this.bytes += this.free;
      this.free = 0;
      this.abort();
      throw this.eot();
    }
    this.bytes += chunk.length;
    this.free -= chunk.length;
    if (this.held + chunk.length > this.buf.length) this.flush();
    if (chunk.length >= this.buf.length) this.writeAll(chunk);
    else this.held += chunk.copy(this.buf, this.held);
  }

  private flush(): void {
    this.writeAll(this.buf.subarray(0, this.held));
    this.held = 0;
  }

  private writeAll(data: Buffer): void {
    for (let off = 0; off < data.length;) off += fs.writeSync(this.fd, data, off, data.length - off);
  }

  async close(): Promise<void> {
    const pad = (this.blockSize - (this.bytes % this.blockSize)) % this.blockSize;
    if (pad) await this.write(Buffer.alloc(pad));
    this.flush();
    fs.fsyncSync(this.fd);
    this.abort();
  }

  abort(): void {
    if (this.open) { this.open = false; fs.closeSync(this.fd); }
  }
}

/** `tape:///dir`: the emulator every test uses. */
export class EmulatedDrive implements TapeDrive {
  constructor(readonly where: string, private readonly capacity: number, private readonly blockSize: number) {}

  private dir(label: string): string {
    return path.join(this.where, label);
  }

  private used(label: string): number {
    let n = 0;
    for (const f of fs.readdirSync(this.dir(label))) if (/^file\d{5}\.tar$/.test(f)) n += fs.lstatSync(path.join(this.dir(label), f)).size;
    return n;
  }

  async check(label: string): Promise<{ freeBytes?: number }> {
    const st = fs.lstatSync(this.dir(label), { throwIfNoEntry: false });
    if (!st?.isDirectory()) throw new TargetError(`[${this.where}] tape ${label} is not loaded (no directory ${this.dir(label)})`, { target: this.where, errorClass: 'not-mounted' });
    return { freeBytes: Math.max(0, this.capacity - this.used(label)) };
  }

  async load(label: string): Promise<void> {
    const st = fs.lstatSync(this.where, { throwIfNoEntry: false });
    if (!st?.isDirectory()) throw new TargetError(`[${this.where}] the tape emulator directory does not exist: create it`, { target: this.where, errorClass: 'not-mounted' });
    if (fs.existsSync(this.dir(label))) throw new TargetError(`[${this.where}] tape ${label} already exists (not in this store's catalog): never written over; use a new label`, { target: this.where, errorClass: 'other', permanent: true });
    fs.mkdirSync(this.dir(label), { mode: 0o700 });
  }

  nextNumber(label: string, catalogNext: number): number {
    const onTape = fs.readdirSync(this.dir(label)).map((f) => /^file(\d{5})\.tar$/.exec(f)?.[1]).filter((x) => x !== undefined).map(Number);
    return Math.max(catalogNext, ...onTape.map((n) => n + 1));
  }

  async writer(label: string, number: number): Promise<TapeWriter> {
    // O_EXCL and no symlink followed: a tape file is written once, never over another
    const fd = fs.openSync(path.join(this.dir(label), fileName(number)), fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
    return new EmulatedWriter(fd, this.capacity - this.used(label), this.blockSize, () => endOfTape(this.where, label));
  }

  /**
   * One buffer for the whole tape file: a fresh 128 KiB buffer per chunk is fresh memory, faulted in page by page
   * (45 MB read in 96-232 ms in fresh buffers, in 8-12 ms into one).
   */
  *scan(label: string, number: number): Generator<Buffer> {
    const fd = fs.openSync(path.join(this.dir(label), fileName(number)), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    try {
      const buf = Buffer.allocUnsafe(READ_CHUNK);
      for (let pos = 0, n; (n = fs.readSync(fd, buf, 0, buf.length, pos)) > 0; pos += n) yield n === buf.length ? buf : buf.subarray(0, n);
    } finally {
      fs.closeSync(fd);
    }
  }

  read(label: string, number: number, offset = 0, size?: number): Readable {
    const file = path.join(this.dir(label), fileName(number));
    const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    // synchronous reads of 128 KiB, one per turn of the event loop: a tape file is read by one reader, start to
    // end, and an async read per chunk cost more in thread-pool round trips than the read itself. Small chunks:
    // each new buffer is fresh memory the kernel must fault in, which made 4 MiB chunks 3x slower (1 GiB
    // confirm: 1.34 s at 4 MiB, 0.40 s at 128 KiB)
    return Readable.from((function* () {
      try {
        const end = size === undefined ? Infinity : offset + size;
        for (let pos = offset; pos < end;) {
          const buf = Buffer.allocUnsafe(Math.min(READ_CHUNK, end - pos));
          const n = fs.readSync(fd, buf, 0, buf.length, pos);
          if (n === 0) return;
          pos += n;
          yield n === buf.length ? buf : buf.subarray(0, n);
        }
      } finally {
        fs.closeSync(fd);
      }
    })(), { objectMode: false, highWaterMark: 2 });
  }
}

/** Run `mt -f <device> <args>` (no shell); rejects with the drive as not-mounted when it fails. */
function mt(device: string, ...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('mt', ['-f', device, ...args], { timeout: 10 * 60_000 }, (err, stdout, stderr) => {
      const why = (err as NodeJS.ErrnoException | null)?.code === 'ENOENT' ? 'mt is not installed (apt-get install mt-st)' : (stderr || err?.message || '').trim();
      if (err) reject(new TargetError(`[${device}] mt ${args.join(' ')}: ${why}`, { target: device, errorClass: 'not-mounted', cause: err }));
      else resolve(stdout);
    });
  });
}

/**
 * `tape:///dev/nst0`: a real non-rewinding drive. Tape file 0 holds the label (a tiny file written by `load`);
 * tape file N is at position N. Positioning is `mt rewind` + `mt fsf N` (reads) and `mt eod` (appends). Not
 * exercised in CI (no drive there): the emulator runs the same target code above this interface.
 */
export class MtDrive implements TapeDrive {
  constructor(readonly where: string, private readonly blockSize: number) {}

  private async readLabel(): Promise<string> {
    await mt(this.where, 'rewind');
    const chunks: Buffer[] = [];
    for await (const c of this.blocks(1)) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8').replace(/\0+$/, '').trim();
  }

  async check(label: string): Promise<{ freeBytes?: number }> {
    await mt(this.where, 'status');
    const got = await this.readLabel().catch(() => '');
    if (got !== `replica-tape ${label}`) throw new TargetError(`[${this.where}] the loaded tape is not ${label} (its label: ${JSON.stringify(got.slice(0, 80))})`, { target: this.where, errorClass: 'not-mounted' });
    return {};
  }

  async load(label: string): Promise<void> {
    // only a blank tape gets a label: a tape with one (another label, or this one from a lost catalog) is never written over
    const got = await this.readLabel().catch(() => '');
    if (got) throw new TargetError(`[${this.where}] the loaded tape already holds data (${JSON.stringify(got.slice(0, 80))}): load a blank tape for ${label}`, { target: this.where, errorClass: 'other', permanent: true });
    await mt(this.where, 'rewind');
    const w = await this.openWriter();
    await w.write(Buffer.from(`replica-tape ${label}\n`));
    await w.close();
  }

  nextNumber(_label: string, catalogNext: number): number {
    return catalogNext;
  }

  private async openWriter(): Promise<TapeWriter> {
    const fd = fs.openSync(this.where, fs.constants.O_WRONLY);
    let open = true;
    const close = () => { if (open) { open = false; fs.closeSync(fd); } }; // closing after writes writes the filemark
    return new Blocker(this.blockSize, (block) => {
      try {
        fs.writeSync(fd, block);
      } catch (err) {
        close();
        if ((err as NodeJS.ErrnoException).code === 'ENOSPC') throw endOfTape(this.where, '');
        throw err;
      }
    }, close, close);
  }

  async writer(label: string, _number: number): Promise<TapeWriter> {
    await this.check(label);
    await mt(this.where, 'eod');
    return this.openWriter();
  }

  /** The blocks of the tape file at the drive's position, up to its filemark. */
  private blocks(maxBlocks = Infinity): Readable {
    const fd = fs.openSync(this.where, fs.constants.O_RDONLY);
    const size = this.blockSize;
    return Readable.from((async function* () {
      try {
        for (let i = 0; i < maxBlocks; i++) {
          const buf = Buffer.alloc(size);
          const n = fs.readSync(fd, buf, 0, size, null);
          if (n === 0) return; // the filemark
          yield buf.subarray(0, n);
        }
      } finally {
        fs.closeSync(fd);
      }
    })());
  }

  scan(label: string, number: number): AsyncIterable<Buffer> {
    return this.read(label, number) as AsyncIterable<Buffer>;
  }

  read(label: string, number: number, offset = 0, size?: number): Readable {
    const self = this;
    return Readable.from((async function* () {
      await self.check(label);
      await mt(self.where, 'rewind');
      await mt(self.where, 'fsf', String(number));
      let pos = 0;
      const end = size === undefined ? Infinity : offset + size;
      for await (const c of self.blocks()) {
        const b = c as Buffer;
        const from = Math.max(0, offset - pos);
        const to = Math.min(b.length, end - pos);
        if (to > from) yield b.subarray(from, to);
        pos += b.length;
        if (pos >= end) return;
      }
    })());
  }
}
