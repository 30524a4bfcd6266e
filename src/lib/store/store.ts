import fs from 'node:fs';
import path from 'node:path';
import { Low } from 'lowdb';
import { StoreError, messageOf } from '../errors.js';
import { initHasher } from '../hash/xxh64.js';
import type { Logger } from '../log.js';
import { AtomicJsonFile, STORE_DIR_MODE, fsyncDir, makeDurable, writeFileAtomicSync } from './atomicFile.js';
import { FILES_DIR, SNAP_DIR, snapshotDirs, takeSnapshot } from './snapshots.js';
import { FORMAT_VERSION, type Meta, type Rec } from './model.js';
import type { TapeCatalog } from '../targets/tapeCatalog.js';

/** Where the tape catalog of target `name` is kept, relative to the store directory. */
const catalogRel = (name: string): string => path.join(FILES_DIR, `tape-${encodeURIComponent(name)}.json`);

/**
 * The most shards a store has. A new store has one; a flush that finds more records than its shards hold
 * re-shards to the count shardCountFor gives (docs/store-format.md); a store never shrinks.
 */
const MAX_SHARDS = 4096;
/**
 * Up to SMALL_STORE records, a shard holds up to 4,096 (10k records: 4 shards): few files to write, snapshot
 * and ship (each file sent to an ssh or S3 target costs round trips), and a load of such a store reads at most
 * ~16 MB. Beyond, at most 256 (~60 KB of JSON at ~240 bytes a record): 100k records, 512 shards; 1M, 4,096.
 * Why: a shard's text is one string, and V8 puts a string of over 128 KiB in pages of its own, fresh from the
 * kernel, where each page's first touch is a page fault (~20 us each on the VMs this is measured on). Loading
 * 1M records (bench/store1m.mjs) from 4,096 shards of ~60 KB: a median 5.0 s and 126k page faults, against
 * 6.1 s and ~200k from 256 of ~1 MB; replica-monitor reading 20 stores of 100k records, 3.0-4.1 s and 138 MB
 * against 6.7-7.3 s and 240 MB.
 */
const SMALL_STORE = 16 * 4096;
const SMALL_RECORDS_PER_SHARD = 4096;
const RECORDS_PER_SHARD = 256;

/** Shards for `records` records: a power of two, 1..MAX_SHARDS (rising with `records`). */
export function shardCountFor(records: number): number {
  const per = records <= SMALL_STORE ? SMALL_RECORDS_PER_SHARD : RECORDS_PER_SHARD;
  let n = 1;
  while (n < MAX_SHARDS && records > n * per) n *= 2;
  return n;
}

/**
 * A load lets the event loop turn after every shard of a small store (each up to ~1 MB of text), and every
 * this many of a bigger one (~1 MB of text: a turn after each cost ~0.12 s of a 4,096-shard load).
 */
const YIELD_SHARDS = 16;
/** The shard count of the first layout, whose files are named `00.json`..`ff.json` (shardName). */
const LEGACY_SHARDS = 256;

interface ShardData { formatVersion: number; files: Record<string, Rec> }

export interface StoreOptions {
  host: string;
  agentVersion: string;
  /** rotated snapshots kept (the config's `snapshots`) */
  snapshots: number;
  log: Logger;
  /** read-only: no lock expected, nothing is ever written (status, new-files, monitor) */
  readOnly?: boolean;
  /**
   * with readOnly: the records are not held. Each pass of entries() reads the shards one at a time and lets
   * each go once passed (the monitor: a store of 10^5 records in the memory of one shard, and a third less of
   * its time in the garbage collector); get(), set() and size are not available.
   */
  streamed?: boolean;
  /** minimum time between background flushes (default 1 s); a flush also waits 4x its own last duration */
  flushMs?: number;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The records a shard file's content holds when it has a shard's shape (every record checked), else undefined.
 * One pass, no arrays of its keys and values (~0.2 s of a 10^6-record load).
 */
function shardRecords(v: unknown): number | undefined {
  if (!isObject(v) || v.formatVersion !== FORMAT_VERSION || !isObject(v.files)) return undefined;
  const files = v.files as Record<string, unknown>;
  let n = 0;
  for (const p in files) {
    const r = files[p];
    if (!isObject(r) || typeof r.z !== 'number' || typeof r.m !== 'number' || !isObject(r.t)) return undefined;
    n++;
  }
  return n;
}

/**
 * Shard `i` of `n`: `00.json`..`ff.json` for 256 (the first layout), `<i>-of-<n>.json` (i in hex, two digits
 * or three) for any other count. A re-shard writes files of new names and then meta.json (the commit): a
 * crash on the way leaves the old layout whole.
 */
export const shardName = (i: number, n: number): string => `${i.toString(16).padStart(2, '0')}${n === LEGACY_SHARDS ? '' : `-of-${n}`}.json`;
/** A shard file of any layout: its number (hex) and, but for 256, its layout's count. */
const SHARD_FILE = /^([0-9a-f]{2,3})(?:-of-(\d+))?\.json$/;

/**
 * Bytes of the JSON files (records, tape catalogs) that opening the store in `dir` reads, from their sizes
 * alone: how long the load will take. 0 when the store has no files yet.
 */
export function storeFileBytes(dir: string): number {
  try {
    const files = path.join(dir, FILES_DIR);
    return fs.readdirSync(files).filter((f) => f.endsWith('.json')).reduce((n, f) => n + fs.statSync(path.join(files, f)).size, 0);
  } catch {
    return 0;
  }
}

/** Files the store in `dir` held at its last save (meta.json's `files`), without loading it: 0 when unknown. */
export function storeFileCount(dir: string): number {
  try {
    const n = (JSON.parse(fs.readFileSync(path.join(dir, 'meta.json'), 'utf8')) as { files?: unknown }).files;
    return typeof n === 'number' && Number.isFinite(n) ? n : 0;
  } catch {
    return 0;
  }
}

/**
 * The state of one machine: Meta plus one record per source file, sharded over lowdb JSON files (shardCountFor)
 * by a hash of the path (docs/store-format.md). Writes are debounced; only dirty shards are written, each
 * atomically (temp + fsync + rename) with one directory fsync per flush. A shard or meta.json that fails to
 * load is taken from the newest snapshot where it loads, with a warning; none good -> StoreError.
 */
export class Store {
  meta!: Meta;
  private shards: Low<ShardData>[] = [];
  /** records in all shards (set() only ever adds) */
  private count = 0;
  private dirty = new Set<number>();
  private metaDirty = false;
  private timer?: NodeJS.Timeout;
  private flushing: Promise<void> = Promise.resolve();
  private lastFlushMs = 0;
  private h32!: (s: string) => number;
  /** warnings met while loading (also logged) */
  readonly warnings: string[] = [];

  private constructor(readonly dir: string, readonly opts: StoreOptions) {}

  /** Open (or, unless read-only, create) the store in `dir`. Throws StoreError when it cannot be loaded. */
  static async open(dir: string, opts: StoreOptions): Promise<Store> {
    const s = new Store(dir, opts);
    await s.load();
    return s;
  }

  private warn(msg: string): void {
    this.warnings.push(msg);
    this.opts.log.warn(msg);
  }

  /** Newest first: the snapshot directories that exist. */
  snapshotDirs(): string[] {
    return snapshotDirs(this.dir);
  }

  /** Read `rel` (a path inside the store) with fallback to the newest snapshot holding a good copy. */
  private readWithFallback<T>(rel: string, valid: (v: unknown) => v is T): { data: T | null; fromSnapshot?: string } {
    const file = path.join(this.dir, rel);
    let problem: string;
    try {
      const data = new AtomicJsonFile<unknown>(file).readSync();
      // missing: a new store, unless a snapshot holds the file (then it was lost: take it back)
      if (data === null && !this.snapshotDirs().some((s) => fs.existsSync(path.join(s, rel)))) return { data: null };
      if (data !== null && valid(data)) return { data };
      problem = data === null ? 'missing' : 'not a replica store file (wrong shape)';
    } catch (err) {
      problem = messageOf(err);
    }
    for (const snap of this.snapshotDirs()) {
      try {
        const data = new AtomicJsonFile<unknown>(path.join(snap, rel)).readSync();
        if (valid(data)) {
          this.warn(`store: ${file} is unusable (${problem}); using the copy from snapshot ${path.basename(snap)}`);
          return { data, fromSnapshot: snap };
        }
      } catch { /* try an older snapshot */ }
    }
    throw new StoreError(`store: ${file} is unusable (${problem}) and no snapshot holds a good copy; move the store aside to start afresh (every file will be re-verified)`);
  }

  private async load(): Promise<void> {
    this.h32 = (await initHasher()).h32;
    if (!this.opts.readOnly) {
      try {
        fs.mkdirSync(path.join(this.dir, FILES_DIR), { recursive: true, mode: STORE_DIR_MODE });
        fs.mkdirSync(path.join(this.dir, SNAP_DIR), { recursive: true, mode: STORE_DIR_MODE });
        // private: a store made by an older version (0755) is closed up too
        for (const d of [this.dir, path.join(this.dir, FILES_DIR), path.join(this.dir, SNAP_DIR)]) {
          if ((fs.statSync(d).mode & 0o777) !== STORE_DIR_MODE) fs.chmodSync(d, STORE_DIR_MODE);
        }
      } catch (err) {
        throw new StoreError(`store: cannot create ${this.dir}: ${messageOf(err)}; check the \`store\` path in the config`, { cause: err });
      }
    } else if (!fs.existsSync(path.join(this.dir, 'meta.json')) && this.snapshotDirs().length === 0) {
      this.opts.log.info(`store: ${this.dir} holds no replica store yet: nothing has been backed up`);
    }
    const isMeta = (v: unknown): v is Meta => isObject(v) && v.formatVersion === FORMAT_VERSION && typeof v.host === 'string'
      && isObject(v.targets) && Number.isInteger(v.shards) && (v.shards as number) > 0;
    const { data: meta, fromSnapshot } = this.readWithFallback('meta.json', isMeta);
    if (meta && typeof meta.formatVersion === 'number' && meta.formatVersion > FORMAT_VERSION) {
      throw new StoreError(`store: ${this.dir} has format ${meta.formatVersion}, newer than this replica understands (${FORMAT_VERSION}); upgrade replica`);
    }
    const now = new Date().toISOString();
    this.meta = meta ?? { formatVersion: FORMAT_VERSION, host: this.opts.host, agentVersion: this.opts.agentVersion, shards: this.layoutOnDisk(), createdAt: now, targets: {}, sources: [] };
    this.metaDirty = !meta || !!fromSnapshot;
    const n = this.meta.shards;
    // One shard at a time: peak memory is the parsed records plus one shard's text, not all texts at once.
    // About every 1 MB of text the event loop turns (YIELD_SHARDS): what completed meanwhile (the early watch's
    // subscription, commands/watch.ts) is seen then, not after the whole load (0.7 s for 10^5 records here).
    this.shards = [];
    const every = n > SMALL_STORE / SMALL_RECORDS_PER_SHARD ? YIELD_SHARDS : 1;
    for (let i = 0; i < n && !this.opts.streamed; i++) {
      if (i > 0 && i % every === 0) await new Promise((resolve) => setImmediate(resolve));
      const db = this.shardDb(i, n);
      const { data, fromSnapshot: snap, records } = this.readShard(i, n, meta !== null);
      if (data) { db.data = data; this.count += records; }
      if (!data || snap) this.dirty.add(i);
      this.shards.push(db);
    }
    this.loadCatalogs();
    if (!this.opts.readOnly) this.removeStaleShards();
    if (this.meta.host !== this.opts.host && !this.opts.readOnly) {
      this.warn(`store: was written for host "${this.meta.host}", config says "${this.opts.host}"; using "${this.opts.host}"`);
      this.meta.host = this.opts.host;
    }
    if (!this.opts.readOnly) {
      this.meta.agentVersion = this.opts.agentVersion;
      await this.flush();
    }
  }

  /** Shard `i` of `n` as read (or from a snapshot); a missing one is said when the store has a meta.json (`known`). */
  private readShard(i: number, n: number, known: boolean): { data: ShardData | null; fromSnapshot?: string; records: number } {
    const rel = path.join(FILES_DIR, shardName(i, n));
    let records = 0;
    const r = this.readWithFallback(rel, (v): v is ShardData => (records = shardRecords(v) ?? -1) >= 0);
    if (!r.data && known) this.warn(`store: shard ${rel} is missing; records in it will be rebuilt by the next scan`);
    return { ...r, records };
  }

  private shardDb(i: number, n: number): Low<ShardData> {
    return new Low<ShardData>(new AtomicJsonFile(path.join(this.dir, FILES_DIR, shardName(i, n)), { staged: true }), { formatVersion: FORMAT_VERSION, files: {} });
  }

  /** With no meta.json: the shard count whose files are there (the largest; 1 for a new store). */
  private layoutOnDisk(): number {
    let n = 1;
    try {
      for (const f of fs.readdirSync(path.join(this.dir, FILES_DIR))) {
        const m = SHARD_FILE.exec(f);
        if (m?.[1] === '00') n = Math.max(n, m[2] === undefined ? LEGACY_SHARDS : Number(m[2]));
      }
    } catch { /* no files yet */ }
    return n;
  }

  /** Shard files of another layout (a re-shard that was cut short, or done and not yet cleaned up): removed. */
  private removeStaleShards(): void {
    const n = this.shards.length;
    let names: string[];
    try { names = fs.readdirSync(path.join(this.dir, FILES_DIR)); } catch { return; }
    for (const f of names) {
      const m = SHARD_FILE.exec(f);
      if (m && f !== shardName(parseInt(m[1], 16), n)) fs.rmSync(path.join(this.dir, FILES_DIR, f), { force: true });
    }
  }

  /**
   * Stage each shard of `dbs`, make them durable at once (one syncfs, or an fsync each when few), then rename
   * them into place and fsync the directory. A failure leaves no temp file.
   */
  private async writeShards(dbs: Low<ShardData>[]): Promise<void> {
    if (!dbs.length) return;
    const adapters = dbs.map((db) => db.adapter as AtomicJsonFile<ShardData>);
    try {
      for (const db of dbs) await db.write();
      makeDurable(adapters.map((a) => a.staged!));
      for (const a of adapters) a.commit();
      fsyncDir(path.join(this.dir, FILES_DIR));
    } catch (err) {
      for (const a of adapters) a.discard();
      throw err;
    }
  }

  /**
   * Re-shard to `n` shards: every record written to the files of the new layout (durable), which becomes this
   * store's. The caller then writes meta.json with the new count (the commit) and removes the old files: until
   * meta.json is replaced the old layout is the store on disk; a crash between the two leaves files of the other
   * layout, which the next open removes.
   */
  private async reshard(n: number): Promise<void> {
    const shards = Array.from({ length: n }, (_, i) => this.shardDb(i, n));
    for (const [p, rec] of this.entries()) shards[this.h32(p) % n].data.files[p] = rec;
    await this.writeShards(shards);
    this.opts.log.info(`store: ${this.count} records: now ${n} shards (was ${this.shards.length})`);
    this.shards = shards;
    this.meta.shards = n;
  }

  /**
   * Tape catalogs (meta.tape in memory) live in files of their own, `files/tape-<target>.json`: a catalog grows
   * with every member archived, and meta.json is rewritten by every flush. Each is written whole by
   * saveCatalog (the tape target's save), snapshotted and shipped with the shards. A catalog that an older
   * build kept inside meta.json is moved out on the first open for writing.
   */
  private loadCatalogs(): void {
    const names = new Set<string>();
    for (const dir of [this.dir, this.snapshotDirs()[0]]) {
      if (!dir) continue;
      try {
        for (const f of fs.readdirSync(path.join(dir, FILES_DIR))) {
          const m = /^tape-(.+)\.json$/.exec(f);
          if (m) names.add(decodeURIComponent(m[1]));
        }
      } catch { /* no files yet */ }
    }
    const isCatalog = (v: unknown): v is { formatVersion: number; catalog: TapeCatalog } => isObject(v) && v.formatVersion === FORMAT_VERSION
      && isObject(v.catalog) && Array.isArray(v.catalog.tapes) && Array.isArray(v.catalog.files);
    const inMeta = Object.keys(this.meta.tape ?? {});
    for (const name of names) {
      const { data } = this.readWithFallback(catalogRel(name), isCatalog);
      if (data) (this.meta.tape ??= {})[name] = data.catalog;
    }
    for (const name of inMeta) if (!names.has(name)) this.saveCatalog(name);
    if (inMeta.length) this.metaDirty = true; // meta.json is written again without them
  }

  /** Write the tape catalog of target `name` now (atomically, durably). Throws StoreError if the disk refuses. */
  saveCatalog(name: string): void {
    const catalog = this.meta.tape?.[name];
    if (this.opts.readOnly || !catalog) return;
    try {
      writeFileAtomicSync(path.join(this.dir, catalogRel(name)), JSON.stringify({ formatVersion: FORMAT_VERSION, catalog }));
    } catch (err) {
      throw new StoreError(`store: cannot write ${this.dir}: ${messageOf(err)}`, { cause: err });
    }
  }

  /** meta.json's text: the meta without the tape catalogs (their own files). */
  private metaText(): string {
    return JSON.stringify({ ...this.meta, files: this.count, tape: undefined }, null, 1);
  }

  private shardOf(p: string): number {
    return this.h32(p) % this.shards.length;
  }

  /** The record of a source path, or undefined. Mutate it only through set(). */
  get(p: string): Rec | undefined {
    this.held();
    return this.shards[this.shardOf(p)].data.files[p];
  }

  /** Store (or replace) the record of `p`; it is written by the next flush. */
  set(p: string, rec: Rec): void {
    this.held();
    const i = this.shardOf(p);
    const files = this.shards[i].data.files;
    if (!(p in files)) this.count++;
    files[p] = rec;
    this.dirty.add(i);
    this.schedule();
  }

  /** Meta changed: written by the next flush. */
  touchMeta(): void {
    this.metaDirty = true;
    this.schedule();
  }

  /** Every record, in no particular order (streamed: read from disk, shard by shard, at each pass). */
  *entries(): IterableIterator<[string, Rec]> {
    if (this.opts.streamed) {
      for (let i = 0, n = this.meta.shards; i < n; i++) {
        const files = this.readShard(i, n, true).data?.files ?? {};
        for (const p in files) yield [p, files[p]];
      }
      return;
    }
    for (const s of this.shards) {
      const files = s.data.files;
      for (const p in files) yield [p, files[p]];
    }
  }

  /** Number of records. */
  get size(): number {
    this.held();
    return this.count;
  }

  /** Records are held (not a streamed store): get(), set() and size need them. */
  private held(): void {
    if (this.opts.streamed) throw new Error('store: a streamed store holds no records (entries() only)');
  }

  private schedule(): void {
    if (this.timer || this.opts.readOnly) return;
    const wait = Math.max(this.opts.flushMs ?? 1000, 4 * this.lastFlushMs);
    this.timer = setTimeout(() => { this.timer = undefined; void this.flush().catch((err) => this.opts.log.error(`store: flush failed: ${messageOf(err)}`)); }, wait);
    this.timer.unref();
  }

  /**
   * Write meta.json alone now (atomically, durably), leaving dirty shards to the debounced flush: for state
   * that must be on disk before the next step (the temp directories of a batch about to be written).
   */
  flushMeta(): void {
    if (this.opts.readOnly) return;
    try {
      writeFileAtomicSync(path.join(this.dir, 'meta.json'), this.metaText());
    } catch (err) {
      throw new StoreError(`store: cannot write ${this.dir}: ${messageOf(err)}`, { cause: err });
    }
  }

  /** Write every dirty shard and meta.json now (atomically, durably). Throws StoreError if the disk refuses. */
  flush(): Promise<void> {
    if (this.opts.readOnly) return Promise.resolve();
    clearTimeout(this.timer);
    this.timer = undefined;
    this.flushing = this.flushing.catch(() => undefined).then(() => this.flushNow());
    return this.flushing;
  }

  private async flushNow(): Promise<void> {
    if (!this.dirty.size && !this.metaDirty) return;
    const t0 = performance.now();
    const reshard = shardCountFor(this.count) > this.shards.length;
    const dirty = [...this.dirty];
    this.dirty.clear();
    try {
      // every record into the files of a bigger layout, or only the dirty shards
      if (reshard) await this.reshard(shardCountFor(this.count));
      else await this.writeShards(dirty.map((i) => this.shards[i]));
      this.metaDirty = false;
      writeFileAtomicSync(path.join(this.dir, 'meta.json'), this.metaText());
    } catch (err) {
      // no temp file outlives a failed flush (a full disk): the next flush writes them all again
      for (const i of dirty) this.dirty.add(i);
      this.metaDirty = true;
      throw new StoreError(`store: cannot write ${this.dir}: ${messageOf(err)}`, { cause: err });
    }
    if (reshard) this.removeStaleShards();
    this.lastFlushMs = performance.now() - t0;
  }

  /**
   * Flush, then keep the current generation as a snapshot (snapshots.ts); rotates to the newest `snapshots`.
   * Returns its directory, or undefined with snapshots off. Throws StoreError when it cannot be made.
   */
  async snapshot(): Promise<string | undefined> {
    await this.flush();
    if (this.opts.snapshots <= 0) return undefined;
    const catalogs = Object.keys(this.meta.tape ?? {}).map(catalogRel);
    return takeSnapshot(this.dir, ['meta.json', ...this.shards.map((_, i) => path.join(FILES_DIR, shardName(i, this.shards.length))), ...catalogs], this.opts.snapshots);
  }

  /** Flush and stop the background timer. */
  async close(): Promise<void> {
    await this.flush();
    clearTimeout(this.timer);
  }
}
