import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type tar from 'tar-stream';
import type { TargetConfig } from '../config/schema.js';
import { ConfigError, SourceError, TargetError, messageOf, missingError, toTargetError } from '../errors.js';
import { SMALL_FILE, type Xxh64, createHasher, hashBytes, initHasher, newHasher } from '../hash/xxh64.js';
import type { TargetKindModule } from './kind.js';
import { checkRelPath, manifestLine } from './layout.js';
import { warmLocalIo } from './localIo.js';
import { type Packed, giveBack, packAhead } from './packAhead.js';
import { type PutSource, SettledFile } from './source.js';
import { type Archive, type CheckReport, type PutOptions, type ReadBack, type ReadBackOptions, type Target, putEach } from './target.js';
import { type CatalogHost, MemberIndex, type TapeCatalog, type TapeFile, activeTape, emptyCatalog, labelProblem, locationOf, tapeProblem } from './tapeCatalog.js';
import { EmulatedDrive, MtDrive, type TapeDrive, type TapeWriter } from './tapeDrive.js';
import { TarWalker, loadTar } from './tarLib.js';


/** Members up to this size are read (and proven) whole before their header goes to tape: a torn source never reaches it. */
const PROVEN_IN_MEMORY = 64 << 20;

export const TAPE_DEFAULTS = { blockSize: 512 << 10, volumeSize: 10 * 2 ** 30, maxWaitMs: 86_400_000 } as const;

/** What a tape target is configured with (the kind's options, defaults applied). */
export interface TapeOptions { blockSize: number; volumeSize: number; maxWaitMs: number; capacity?: number }

export function tapeOptions(cfg: TargetConfig): TapeOptions {
  const o = cfg.options as { blockSize?: number; volumeSize?: number; maxWait?: number; capacity?: number };
  return { blockSize: o.blockSize || TAPE_DEFAULTS.blockSize, volumeSize: o.volumeSize || TAPE_DEFAULTS.volumeSize, maxWaitMs: o.maxWait ?? TAPE_DEFAULTS.maxWaitMs, capacity: o.capacity };
}

/** The tape file being written by this process: tar members go through `pack` to the drive. */
interface Writing {
  file: TapeFile;
  pack: tar.Pack;
  out: TapeWriter;
  /** resolves when every byte of the pack reached the writer (rejects with the drive's error) */
  drained: Promise<void>;
  /** bytes handed to the pack, and bytes the drive took: a put waits while more than BUFFERED are in between */
  pushed: number;
  written: number;
  wake?: () => void;
  /** the drive's error, once it failed */
  failed?: unknown;
  /** resolves once the pack has taken its last entry given whole (its header is encoded when the pack gets to it) */
  last?: Promise<void>;
}

/** Bytes of tar that may wait in memory for the drive. */
const BUFFERED = 16 << 20;

/**
 * A tape target: put() appends a pax tar member to the open tape file, sync() ends the tape file (with its
 * xxh64 manifest member), readBack() reads tape files back (the first time: the confirm, which hashes every
 * member; a mismatch makes the whole tape file unusable). No random read, no rename, no links.
 */
export class TapeTarget implements Target, Archive {
  private host?: CatalogHost;
  private writing?: Writing;
  /** where each path's members are */
  private readonly index = new MemberIndex(() => this.catalog);

  constructor(readonly name: string, readonly drive: TapeDrive) {}

  attachCatalog(host: CatalogHost): void {
    this.host = host;
    this.index.reset();
    // a tape file this process did not write and nobody confirmed: interrupted (kill -9, a crash): never used
    let stale = false;
    for (const f of host.catalog.files) {
      if (f.state !== 'writing' && f.state !== 'written') continue;
      f.state = 'unusable';
      f.reason = 'interrupted before it was confirmed';
      stale = true;
    }
    if (stale) host.save();
  }

  private get catalog(): TapeCatalog {
    return (this.host ??= { host: '', catalog: emptyCatalog(), save: () => undefined }).catalog;
  }

  private error(message: string, errorClass: TargetError['errorClass'] = 'not-mounted', cause?: unknown): TargetError {
    return new TargetError(`[${this.name}] ${message}`, { target: this.name, errorClass, cause });
  }

  async openTape(label: string, serial?: string): Promise<void> {
    const bad = labelProblem(label);
    if (bad) throw this.error(bad, 'other');
    const c = this.catalog;
    const known = c.tapes.find((t) => t.label === label);
    if (known && known.state !== 'open') throw this.error(`tape ${label} is ${known.state}: a tape is written once; open a new label`, 'other');
    for (const t of c.tapes) if (t.state === 'open' && t.label !== label) { t.state = 'closed'; t.closedAt = new Date().toISOString(); }
    if (!known) {
      await this.drive.load(label);
      c.tapes.push({ label, ...(serial ? { serial } : {}), state: 'open', bytes: 0, openedAt: new Date().toISOString() });
    }
    this.host!.save();
  }

  closeTape(label?: string): void {
    const t = label === undefined ? activeTape(this.catalog) : this.catalog.tapes.find((x) => x.label === label);
    if (!t) throw this.error(label === undefined ? 'no tape open' : `no tape ${label} in the catalog`, 'other');
    if (t.state === 'open') { t.state = 'closed'; t.closedAt = new Date().toISOString(); }
    this.host!.save();
  }

  async check(): Promise<CheckReport> {
    const tape = activeTape(this.catalog);
    if (!tape) throw Object.assign(this.error(tapeProblem(this.catalog)!), { stage: 'write' as const });
    const { freeBytes } = await this.drive.check(tape.label);
    return { reachable: true, authenticated: true, writable: true, freeBytes, detail: `tape ${tape.label}, ${this.catalog.files.filter((f) => f.label === tape.label).length} tape files` };
  }

  /** The open tape file, started (durably in the catalog, before its first byte) when none is. */
  private async start(): Promise<Writing> {
    if (this.writing) return this.writing;
    await initHasher(); // put hashes members with hashBytes once a tape file is being written
    const tape = activeTape(this.catalog);
    if (!tape) throw this.error(tapeProblem(this.catalog)!);
    const c = this.catalog;
    const number = this.drive.nextNumber(tape.label, Math.max(1, ...c.files.filter((f) => f.label === tape.label).map((f) => f.number + 1)));
    const file: TapeFile = { label: tape.label, number, state: 'writing', bytes: 0, startedAt: new Date().toISOString(), members: [] };
    c.files.push(file);
    this.index.reset();
    this.host!.save();
    let out: TapeWriter;
    try {
      out = await this.drive.writer(tape.label, number);
    } catch (err) {
      file.state = 'unusable';
      file.reason = messageOf(err);
      this.host!.save();
      throw toTargetError(err, this.name, `[${this.name}] tape ${tape.label}`);
    }
    const pack = (await loadTar()).pack();
    const w: Writing = { file, pack, out, drained: Promise.resolve(), pushed: 0, written: 0 };
    w.drained = pipeline(pack as unknown as Readable, new Writable({
      write: (chunk: Buffer, _enc, cb) => {
        out.write(chunk).then(() => {
          w.written += chunk.length;
          if (out.releases) giveBack(chunk); // a batch's tar: its memory goes back to the workers
          w.wake?.();
          cb();
        }, cb);
      },
      final: (cb) => { out.close().then(() => cb(), cb); },
    }));
    // awaited by put (through wake) and sync; an end of tape is handled there
    w.drained.catch((err: unknown) => { w.failed = err; w.wake?.(); });
    this.writing = w;
    return w;
  }

  /**
   * The open tape file cannot go on (the drive failed, or a streamed member was cut short: a tar cannot
   * continue past it): it ends here, unusable, as far as it reached the tape; the next put starts a new one. At
   * the end of the tape the tape is full, and the error is target-wide ("open a new one").
   */
  private abandon(w: Writing, err: unknown, reason?: string): TargetError {
    this.writing = undefined;
    w.pack.destroy();
    w.out.abort();
    const tape = this.catalog.tapes.find((t) => t.label === w.file.label)!;
    w.file.state = 'unusable';
    w.file.bytes = w.out.bytes;
    tape.bytes += w.out.bytes;
    const e = toTargetError(err, this.name, `[${this.name}] tape ${tape.label}`);
    w.file.reason = reason ?? (e.errorClass === 'ENOSPC' ? 'end of tape' : e.message);
    if (e.errorClass === 'ENOSPC') {
      tape.state = 'full';
      tape.fullAt = new Date().toISOString();
    }
    this.host!.save();
    if (e.errorClass !== 'ENOSPC') return e;
    return this.error(`tape ${tape.label} full: open a new one (replica tape open LABEL); tape file ${w.file.number} is unusable, its files wait for the next tape`, 'not-mounted', err);
  }

  /** Wait while the drive is more than BUFFERED behind; throws its error once it failed. */
  private async keepUp(w: Writing): Promise<void> {
    while (!w.failed && w.pushed - w.written > BUFFERED) await new Promise<void>((resolve) => { w.wake = resolve; });
    if (w.failed) throw w.failed;
  }

  async put(rel: string, src: PutSource, opts: PutOptions = {}): Promise<void> {
    checkRelPath(this.name, rel);
    opts.signal?.throwIfAborted();
    // the member's hash for the catalog and the manifest: the settled hash where the source proves its bytes
    // against it (it fails before its last chunk otherwise); else hashed here on the way
    let hash = src.hash;
    // small and medium files are proven (hashed to the settled hash) before anything goes to tape
    let data: Buffer | undefined;
    try {
      // small files whole (readAll: for small files only, as every kind reads it); bigger ones through the stream,
      // which a bandwidth limit paces and which errors before its last chunk if the bytes are not the settled ones
      if (src.size <= SMALL_FILE) data = src.readAll();
      else if (src.size <= PROVEN_IN_MEMORY) {
        const chunks: Buffer[] = [];
        for await (const c of src.stream()) chunks.push(c as Buffer);
        data = Buffer.concat(chunks);
      }
    } catch (err) {
      throw toTargetError(err, this.name, `[${this.name}] put ${rel}`);
    }
    const w = this.writing ?? await this.start();
    // a ustar header, with a pax extended header before it only where ustar cannot hold the name (longer than
    // 100 + 155 bytes, not ASCII): tar-stream adds it then. One on every member cost 2 more blocks per member
    // to write and read back, and ~0.25 s of the archive + confirm of 10k small files in tar-stream.
    const header: Partial<tar.Header> & { name: string } = { name: rel, size: src.size, mode: src.mode, mtime: new Date(src.mtimeMs ?? Date.now()), type: 'file' };
    try {
      if (data) {
        // a new file (no settled hash) was hashed by the read that handed its bytes out (SettledFile.hashed)
        hash ??= (src instanceof SettledFile ? src.hashed : undefined) ?? hashBytes(data);
        w.last = new Promise<void>((resolve) => { w.pack.entry(header, data!, () => resolve()); });
        w.pushed += data.length + 1536; // its header (and pax header), padding: at most about
        if (w.failed || w.pushed - w.written > BUFFERED) await this.keepUp(w);
      } else {
        const entry = w.pack.entry(header) as unknown as Writable;
        if (hash === undefined && !(src instanceof SettledFile)) {
          const hasher = await createHasher();
          await pipeline(src.stream(), async function* (chunks) {
            for await (const c of chunks) { hasher.update(c as Buffer); yield c; }
          }, entry);
          hash = hasher.digest();
        } else {
          await pipeline(src.stream(), entry);
          // a new file (no settled hash) was hashed by the read that streamed it (SettledFile.hashed): once, not twice
          hash ??= (src as SettledFile).hashed;
        }
        w.pushed += src.size;
      }
    } catch (err) {
      if (err instanceof SourceError) {
        this.abandon(w, err, `a member changed while it was written (${rel}): the tar cannot go on past it`);
        throw toTargetError(err, this.name, `[${this.name}] put ${rel}`);
      }
      throw this.abandon(w, w.failed ?? err);
    }
    w.file.members.push([rel, hash!, src.size, src.mode]);
    this.index.added(w.file, w.file.members.length - 1);
  }

  /**
   * Put each item as put() does, in order, into the open tape file (one call for many small members: the wrappers'
   * deadline and the copier's queue once per batch, not per member); after a target-wide failure (the tape full,
   * the drive gone) the rest get that error without being tried.
   */
  putMany(items: { rel: string; src: PutSource }[], opts: PutOptions = {}): Promise<(Error | undefined)[]> {
    const ahead = packAhead(this.name, items.map(({ rel, src }) => ({ name: rel, src })), (packed) => this.putPacked(packed));
    return putEach(async (rel, src, o) => {
      const r = ahead?.get(src);
      if (!r) return this.put(rel, src, o);
      const got = await r;
      if ('err' in got) throw got.err; // nothing of it went to tape
      const settled = src as SettledFile;
      if (settled.hash === undefined) settled.hashed = got.hash; // a new file: hashed by its read
    }, items, opts);
  }

  /** A batch laid out by packAhead, to the open tape file: its tar in one piece, the members it holds into the catalog. */
  private async putPacked(packed: Packed): Promise<void> {
    const w = this.writing ?? await this.start();
    try {
      await w.last; // the pack's last entry is out: its header goes when the pack opens it
      w.pack.push(packed.tar);
      w.pushed += packed.tar.length;
      packed.reads.forEach((r, k) => {
        if ('err' in r) return;
        w.file.members.push([packed.items[k].name, r.hash, packed.items[k].src.size, r.mode]);
        this.index.added(w.file, w.file.members.length - 1);
      });
      if (w.failed || w.pushed - w.written > BUFFERED) await this.keepUp(w);
    } catch (err) {
      throw this.abandon(w, w.failed ?? err);
    }
  }

  /** End the open tape file: the manifest member, the last block, durable; then `written` (not verified: readBack confirms). */
  async sync(): Promise<void> {
    const w = this.writing;
    if (!w) return;
    const host = this.host!.host || w.file.members[0]?.[0].split('/')[0] || 'replica';
    const manifest = Buffer.from(w.file.members.map(([rel, h]) => `${manifestLine(h, rel)}\n`).join(''));
    w.pack.entry({ name: `${host}/.replica/manifest-${w.file.number}.xxh64`, size: manifest.length, mode: 0o644, mtime: new Date(), type: 'file' }, manifest);
    w.pack.finalize();
    try {
      await w.drained;
    } catch (err) {
      throw this.abandon(w, err);
    }
    this.writing = undefined;
    w.file.bytes = w.out.bytes;
    this.catalog.tapes.find((t) => t.label === w.file.label)!.bytes += w.out.bytes;
    w.file.state = 'written';
    w.file.writtenAt = new Date().toISOString();
    this.host!.save();
  }

  /**
   * Read tape files back. A `written` tape file is confirmed: every member read and hashed against the
   * catalog (all right: `confirmed`, with the members' offsets; else `unusable`, and each path asked for from it
   * is a mismatch); a confirmed one gives the hash of each member asked for.
   */
  async readBack(rels: string[], opts: ReadBackOptions = {}): Promise<ReadBack> {
    const out: ReadBack = new Map();
    const byFile = new Map<TapeFile, [string, number][]>();
    for (const rel of rels) {
      const found = this.index.find(rel, ['written', 'confirmed']);
      if (!found) { out.set(rel, missingError(this.name, 'readBack', rel)); continue; }
      const list = byFile.get(found.file);
      if (list) list.push([rel, found.i]); else byFile.set(found.file, [[rel, found.i]]);
    }
    for (const [f, wanted] of byFile) {
      opts.signal?.throwIfAborted();
      let got: Map<number, string>;
      try {
        got = await this.readTapeFile(f, f.state === 'written' ? undefined : new Set(wanted.map(([, i]) => i)));
      } catch (err) {
        const e = toTargetError(err, this.name, `[${this.name}] read tape ${f.label} file ${f.number}`);
        for (const [rel] of wanted) out.set(rel, e.errorClass === 'missing' || e.targetWide ? e : this.error(`tape ${f.label} file ${f.number}: ${e.message}`, 'mismatch'));
        if (e.targetWide) return out;
        if (f.state === 'written') { // a tape file that cannot be read back whole is never confirmed
          f.state = 'unusable';
          f.reason = `confirm failed: ${e.message}`;
          this.host!.save();
        }
        continue;
      }
      if (f.state === 'written') this.confirm(f, got);
      const unusable = f.state === 'unusable';
      for (const [rel, i] of wanted) {
        const h = got.get(i);
        out.set(rel, unusable ? this.error(`tape ${f.label} file ${f.number} failed its confirm (${f.reason}): archived again in the next tape file`, 'mismatch')
          : h ?? this.error(`tape ${f.label} file ${f.number}: member ${rel} not found on the tape`, 'missing'));
      }
    }
    return out;
  }

  private confirm(f: TapeFile, got: Map<number, string>): void {
    const bad = f.members.findIndex((m, i) => got.get(i) !== m[1]);
    if (bad >= 0) {
      f.state = 'unusable';
      f.reason = `confirm failed: ${f.members[bad][0]} ${got.has(bad) ? `reads back as ${got.get(bad)}, written ${f.members[bad][1]}` : 'is not on the tape'}`;
    } else {
      f.state = 'confirmed';
      f.confirmedAt = new Date().toISOString();
    }
    this.host!.save();
  }

  /**
   * Hash members of tape file `f`, by their index in the catalog. `only` undefined: read it whole (the confirm;
   * offsets are recorded); else only those members, each at its offset (read through the file where none is known).
   */
  private async readTapeFile(f: TapeFile, only?: Set<number>): Promise<Map<number, string>> {
    const hashes = new Map<number, string>();
    await initHasher();
    const all = only === undefined;
    if (only && [...only].every((i) => f.members[i]?.[4] !== undefined)) {
      for (const i of only) {
        const m = f.members[i];
        const h = newHasher();
        for await (const c of this.drive.read(f.label, f.number, m[4], m[2])) h.update(c as Buffer);
        hashes.set(i, h.digest());
      }
      return hashes;
    }
    let next = 0;
    let i = -1;
    let offset = 0;
    let h: Xxh64 | undefined;
    let whole: Buffer | undefined; // a member's bytes in one slice (most of the small ones): hashed at once
    const walker = new TarWalker({
      entry: (name, size, at) => {
        // members come in catalog order: look from the last one found on (a search from 0 each time: 10k members, 50M steps)
        i = -1;
        for (let k = next; k < f.members.length; k++) if (f.members[k][0] === name && f.members[k][2] === size) { i = k; break; }
        [offset, h, whole] = [at, undefined, undefined];
      },
      data: (bytes) => {
        if (i < 0) return; // the manifest, or a member the catalog does not hold
        // a member given whole in one slice ends there: it never gets a second one
        if (!h && bytes.length === f.members[i][2]) whole = bytes;
        else (h ??= newHasher()).update(bytes);
      },
      end: () => {
        if (i < 0) return;
        next = i + 1;
        if (!only || only.has(i)) hashes.set(i, h ? h.digest() : hashBytes(whole ?? Buffer.alloc(0)));
        if (all) f.members[i][4] = offset; // its data's offset
      },
    });
    for await (const chunk of this.drive.scan(f.label, f.number)) walker.write(chunk); // done with each before the next
    walker.end();
    return hashes;
  }

  async extract(rel: string, hash: string): Promise<{ data: Readable; mode: number }> {
    const found = this.index.find(rel, ['confirmed'], hash);
    if (!found) throw missingError(this.name, 'extract', rel);
    const { file } = found;
    const member = file.members[found.i];
    return { data: this.drive.read(file.label, file.number, member[4], member[2]), mode: member[3] };
  }

  locate(rel: string, hash: string): string | undefined {
    const found = this.index.find(rel, ['confirmed'], hash);
    return found && locationOf(found.file, rel);
  }

  async close(): Promise<void> {
    // an interrupted batch (SIGTERM, a target given up): the tape file ends where it is, unconfirmed and
    // unusable (its files are archived again); never wait for a put that may not finish
    if (this.writing) this.abandon(this.writing, new Error('interrupted'), 'interrupted before it was confirmed');
  }

}

/**
 * `tape:///dev/nst0` (a non-rewinding drive, positioned with mt) or `tape:///dir` (the emulator: a directory,
 * with `capacity` as the tape size).
 */
export const tapeKind: TargetKindModule = {
  kind: 'tape', schemes: ['tape'], urlForm: 'tape:///dev/DEVICE or tape:///DIR (the emulator)', urlPattern: /^tape:\/\/\/./,
  options: { blockSize: 'size', capacity: 'size', volumeSize: 'size', maxWait: 'duration' },
  concurrency: 1, maxConnections: 1,
  batching: (cfg) => tapeOptions(cfg),
  // a batch's small files go to one putMany, whose reads the LocalIo workers do (readAhead): started ahead
  putManyFiles: 10_000,
  warm: warmLocalIo,
  create(cfg: TargetConfig, index: number): Target {
    const dev = cfg.url.slice('tape://'.length);
    const o = tapeOptions(cfg);
    if (!dev.startsWith('/dev/') && o.capacity === undefined) throw new ConfigError([`targets[${index}].capacity: required for the tape emulator (${cfg.url}): the tape size, e.g. "100GiB"`]);
    return new TapeTarget(cfg.name, dev.startsWith('/dev/') ? new MtDrive(dev, o.blockSize) : new EmulatedDrive(dev, o.capacity ?? Infinity, o.blockSize));
  },
};
