import { createRequire } from 'node:module';
import path from 'node:path';
import type tar from 'tar-stream';

let tarLib: Promise<typeof tar> | undefined;

/** tar-stream, imported on first use (every command loads the kinds; only tape targets and ssh batches need it). */
export const loadTar = (): Promise<typeof tar> => (tarLib ??= import('tar-stream').then((m) => (m as { default?: typeof tar }).default ?? (m as typeof tar)));

/** tar-stream's header encoders (its headers.js), as its pack() uses them. */
interface TarHeaders {
  encode(h: Record<string, unknown>): Buffer | null;
  encodePax(h: { name: string; linkname?: string; pax?: Record<string, string> }): Buffer;
  /** null for a block of zeros; throws on a bad checksum */
  decode(b: Buffer, filenameEncoding: string, allowUnknownFormat: boolean): { name: string; size: number; type: string } | null;
  decodePax(b: Buffer): Record<string, string>;
  decodeLongPath(b: Buffer, encoding: string): string;
}
let headers: TarHeaders | undefined;

/**
 * tar-stream's headers.js, loaded by its file: the package's `exports` names only pack() and extract(), whose
 * streams cost ~27 us per member against ~4 us for the encoder alone (10k members of 4 KiB laid out in a
 * LocalIo worker thread instead of packed in the main thread: tape.ts packAhead).
 */
function tarHeaders(): TarHeaders {
  if (headers) return headers;
  const req = createRequire(import.meta.url);
  return (headers = req(path.join(path.dirname(req.resolve('tar-stream')), 'headers.js')) as TarHeaders);
}

/** A regular file member's header fields, as tape and ssh batches give them to tar-stream's pack. */
export interface MemberHeader { name: string; size: number; mode: number; mtime: Date }

/**
 * The blocks tar-stream's pack() writes before a regular file member's bytes, by its own encoders: the ustar
 * header; where ustar cannot hold the name (not ASCII, or too long for its name and prefix fields) a pax header
 * before it, the same steps as its Pack._encodePax (a `PaxHeader` ustar header, the pax records padded to a
 * block, then the ustar header under the name `PaxHeader`). tarLib.test compares this with pack()'s output
 * byte for byte, names of every kind.
 */
export function memberHeader(m: MemberHeader): Buffer {
  const enc = tarHeaders();
  const h = { name: m.name, size: m.size, mode: m.mode, mtime: m.mtime, type: 'file', uid: 0, gid: 0 };
  const plain = enc.encode(h);
  if (plain) return plain;
  const pax = enc.encodePax({ name: m.name });
  const paxHeader = enc.encode({ ...h, name: 'PaxHeader', size: pax.length, type: 'pax-header' })!;
  const padded = Buffer.alloc(blocks(pax.length));
  pax.copy(padded);
  return Buffer.concat([paxHeader, padded, enc.encode({ ...h, name: 'PaxHeader' })!]);
}

/** `n` rounded up to whole 512-byte tar blocks. */
export const blocks = (n: number): number => Math.ceil(n / 512) * 512;

/** At most this many bytes of header blocks before a member named `name` (memberHeader's pax case included). */
export const headerRoom = (name: string): number => 1024 + blocks(Buffer.byteLength(name) + 32);

/** What TarWalker tells of a tar's members, in order. */
export interface TarVisitor {
  /** a member: its name and size after its pax or GNU long-name header, and the offset of its first data byte */
  entry(name: string, size: number, offset: number): void;
  /** the next bytes of the member last entered (slices of the chunks written: no copy) */
  data(bytes: Buffer): void;
  /** the member last entered is whole */
  end(): void;
}

/**
 * Walks the members of a tar written to it chunk by chunk, as tar-stream's extract() reads them (its own decoders
 * for the ustar, pax and GNU long-name headers; blocks of zeros skipped; names and sizes from a pax header; the
 * same errors: a bad checksum, data cut short), but with no stream per member: a tape's confirm of 10k members
 * of 4 KiB took ~300 ms through extract()'s streams. tarLib.test reads the same tars with both.
 */
export class TarWalker {
  private readonly enc = tarHeaders();
  /** bytes of a header (or a long header's data) not whole yet */
  private held: Buffer[] = [];
  private heldBytes = 0;
  /** what the bytes at `pos` are: a header block, a long header's data (its size), a member's data (left), padding */
  private state: 'header' | 'long' | 'data' | 'pad' = 'header';
  private left = 0;
  private pos = 0;
  private long?: { type: string; size: number };
  private pax?: Record<string, string>;
  private paxGlobal?: Record<string, string>;
  private gnuName?: string;

  constructor(private readonly visit: TarVisitor) {}

  write(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.state === 'data' || this.state === 'pad') {
        const n = Math.min(this.left, chunk.length - at);
        if (this.state === 'data' && n) this.visit.data(chunk.subarray(at, at + n));
        at += n;
        this.pos += n;
        this.left -= n;
        if (this.left === 0) this.endData();
        continue;
      }
      // a header block, or a long header's data: gathered whole
      const want = (this.state === 'header' ? 512 : this.long!.size) - this.heldBytes;
      const n = Math.min(want, chunk.length - at);
      const part = chunk.subarray(at, at + n);
      at += n;
      if (n < want) { this.held.push(part); this.heldBytes += n; continue; }
      const whole = this.heldBytes ? Buffer.concat([...this.held, part]) : part;
      [this.held, this.heldBytes] = [[], 0];
      const start = this.pos;
      this.pos += whole.length;
      if (this.state === 'header') this.header(whole, start);
      else this.longHeader(whole);
    }
  }

  /** The tar ended: throws if it ended inside a header or a member, as extract() does. */
  end(): void {
    if (this.state !== 'header' || this.heldBytes) throw new Error('Unexpected end of data');
  }

  private header(block: Buffer, offset: number): void {
    const h = this.enc.decode(block, 'utf-8', false);
    if (!h) return; // a block of zeros: the end of the archive, or the padding of the last record
    if (h.type === 'gnu-long-path' || h.type === 'gnu-long-link-path' || h.type === 'pax-global-header' || h.type === 'pax-header') {
      if (h.size > MAX_LONG_HEADER) throw new Error('Header exceeds max size');
      this.long = { type: h.type, size: h.size };
      this.state = 'long';
      if (h.size === 0) this.longHeader(Buffer.alloc(0));
      return;
    }
    let { name, size } = h;
    if (this.gnuName !== undefined) { name = this.gnuName; this.gnuName = undefined; }
    if (this.pax) {
      if (this.pax.path) name = this.pax.path;
      if (this.pax.size) size = parseInt(this.pax.size, 10);
      this.pax = undefined;
    }
    if (!(size >= 0)) throw new Error('Invalid header');
    this.visit.entry(name, size, offset + 512);
    this.left = h.type === 'directory' ? 0 : size;
    this.state = 'data';
    if (this.left === 0) this.endData();
  }

  private longHeader(data: Buffer): void {
    const { type, size } = this.long!;
    this.long = undefined;
    if (type === 'gnu-long-path') this.gnuName = this.enc.decodeLongPath(data, 'utf-8');
    else if (type === 'pax-global-header') this.paxGlobal = this.enc.decodePax(data);
    else if (type === 'pax-header') this.pax = { ...this.paxGlobal, ...this.enc.decodePax(data) };
    this.state = 'pad';
    this.left = blocks(size) - size;
    if (this.left === 0) this.state = 'header';
  }

  private endData(): void {
    if (this.state === 'data') {
      this.visit.end();
      const rest = (512 - (this.pos % 512)) % 512;
      if (rest) { this.state = 'pad'; this.left = rest; return; }
    }
    this.state = 'header';
  }
}

/** tar-stream's bound on a pax or GNU long-name header's data. */
const MAX_LONG_HEADER = 4 * 1024 * 1024;
