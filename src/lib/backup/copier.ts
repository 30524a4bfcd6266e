import fs from 'node:fs';
import PQueue from 'p-queue';
import { TargetError, messageOf, opOrigin, toTargetError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Store } from '../store/store.js';
import type { Rec, RunCounts } from '../store/model.js';
import { identityOf, observationChanged, observationOf, observe } from '../scan/settle.js';
import { lstatUnder, rootOf } from '../scan/sourceFs.js';
import { SettledFile, peerSource } from '../targets/source.js';
import { SMALL_FILE } from '../hash/xxh64.js';
import type { ArchiveBatching } from '../targets/kind.js';
import { targetPath } from '../targets/layout.js';
import { type BatchPut, type PutOptions, type RandomRead, type Target, hasArchive, hasBatchPut, hasLinks, hasRandomRead, hasTempFiles, hasVersions } from '../targets/target.js';
import { keepPreviousVersion, pruneVersions } from './versions.js';
import { verifyCopies } from './verify.js';
import { isSourceGone, isVerifiedOn, markFailed, markVerified, previousCopyGone, previousCopyOn, unsettle, type RetryPolicy } from '../store/records.js';

export interface CopyContext {
  host: string;
  store: Store;
  log: Logger;
  policy: RetryPolicy;
  /** bound on shipping the store (each target call has its own timeout from the wrappers) */
  copyTimeoutMs: number;
  /** previous versions kept per file on each target (the config's `versions`) */
  versions: number;
  counts: RunCounts;
  /** the source roots (real paths): a changed file is looked at again only through them */
  roots: string[];
  /** aborts the whole run (SIGINT/SIGTERM): in-flight copies are abandoned cleanly */
  signal: AbortSignal;
  /** every target of the pass: a copy whose source is gone is repaired from another one's verified copy */
  peers?: Target[];
  /** an archive kind (tape): a batch (one sync and read-back each) is one tape file of `volumeSize` bytes */
  batching?: ArchiveBatching;
  /** small files per putMany call (the kind's; default PUT_MANY) */
  putManyFiles?: number;
  /** a new file hashed by its put here (Engine.hashAndCopy) was published with the content hashing to `hash`: record it settled */
  settledByPut?: (p: string, rec: Rec, hash: string) => void;
}

/** Files and bytes per durability batch: one sync (syncfs) and then read-back for each batch. */
const BATCH_FILES = 10_000;
const BATCH_BYTES = 1 << 30;
/** Small files per putMany call by default (one worker job on a local target). */
const PUT_MANY = 64;

/**
 * Copies due files to one target through its own p-queue, in batches: put every file of the batch
 * (atomic), make the batch durable with one sync(), then read each copy back and compare with the settled
 * hash; only then `verified`. Per-file failures spend an attempt; a target-wide failure stops this target
 * for the rest of the run (recorded by the caller), leaving its files pending.
 */
export class TargetCopier {
  readonly queue: PQueue;
  /**
   * putMany calls in flight: more than `concurrency`, since each is one job for the kind's own workers (a local
   * target's LocalIo threads) and the next one's directories are made while the workers write the last.
   */
  private readonly batches: PQueue;
  /** set when the target failed as a whole */
  down?: TargetError;
  /** symlinks that could not be recreated because a directory (with older copies) is in the way */
  private readonly linksInTheWay = new Set<string>();
  /** modes of source directories, by target-relative path (reset per batch) */
  private dirModes = new Map<string, number | undefined>();

  constructor(readonly target: Target, readonly concurrency: number, readonly ctx: CopyContext) {
    this.queue = new PQueue({ concurrency: Math.max(1, concurrency) });
    // an archive (tape) writes one member after the other into one tape file: its putMany calls wait in the one queue
    this.batches = hasArchive(target) ? this.queue : new PQueue({ concurrency: Math.max(4, 2 * concurrency) });
  }

  private fail(p: string, rec: Rec, err: TargetError): void {
    if (err.targetWide) {
      this.down ??= err;
      return;
    }
    markFailed(rec, this.target.name, err.errorClass, err.message, Date.now(), this.ctx.policy);
    this.ctx.store.set(p, rec);
    this.ctx.counts.failed++;
    this.ctx.log.error(`copy failed: ${p} -> ${this.target.name}: [${err.errorClass}] ${err.message}`, { path: p, target: this.target.name, class: err.errorClass });
  }

  /** A put failed: was it the source (gone, changed, unreadable) rather than the target? */
  private diagnose(p: string, rec: Rec, err: TargetError): TargetError {
    const target = this.target.name;
    let st: fs.Stats;
    try {
      st = fs.lstatSync(p);
    } catch {
      return new TargetError(`source vanished: ${p}`, { target, errorClass: 'vanished', cause: err });
    }
    if (observationChanged(rec, observationOf(st))) {
      return new TargetError(`source changed while copying: ${p}`, { target, errorClass: 'changed', cause: err });
    }
    try {
      fs.accessSync(p, fs.constants.R_OK);
    } catch (e) {
      return new TargetError(`cannot read source ${p}: ${messageOf(e)}`, { target, errorClass: 'EACCES', permanent: true, cause: err });
    }
    return err;
  }

  /** The source changed under the copy: record what is there now (looked at through the source root only); it settles again. */
  private unsettle(p: string, rec: Rec): void {
    const root = rootOf(this.ctx.roots, p);
    const st = root === undefined ? undefined : lstatUnder(root, p);
    if (st?.isFile()) observe(rec, observationOf(st), Date.now());
    unsettle(rec);
    this.ctx.store.set(p, rec);
  }

  /**
   * The mode a directory created on the target gets: its source directory's permission bits (a target
   * directory never grants more than its source did); `<host>` gets the mode of `/`.
   */
  private readonly dirMode = (relDir: string): number | undefined => {
    if (this.dirModes.has(relDir)) return this.dirModes.get(relDir);
    const host = this.ctx.host;
    let mode: number | undefined;
    if (relDir === host || relDir.startsWith(host + '/')) {
      try {
        const st = fs.lstatSync(relDir === host ? '/' : relDir.slice(host.length));
        if (st.isDirectory()) mode = st.mode & 0o777;
      } catch { /* gone: private */ }
    }
    this.dirModes.set(relDir, mode);
    return mode;
  };

  /** Put one file or symlink; true when it is on the target (not yet durable or verified). */
  private async put(p: string, rec: Rec): Promise<boolean> {
    const rel = targetPath(this.ctx.host, p);
    const opts: PutOptions = { signal: this.ctx.signal, dirMode: this.dirMode };
    try {
      if (rec.l !== undefined) {
        if (!hasLinks(this.target)) return true; // recorded in the store only
        // the target is wrapped (registry.ts): this call has its timeout and retries already
        if (!(await this.target.putLink(rel, rec.l, opts))) {
          this.linksInTheWay.add(p);
          this.ctx.log.info(`${this.target.name}: ${rel}: a directory with older copies is where the symlink would go: the link is recorded in the store only`, { path: p, target: this.target.name });
        }
        return true;
      }
      if (isSourceGone(rec)) { // the source is gone: the scrub found this copy bad; another target's copy serves
        await this.putFromPeer(p, rec, rel, opts);
        this.counted(rec);
        return true;
      }
      // The very file that settled (no symlink followed, same inode/size/mtime/ctime), opened before anything on
      // the target is touched: the copy reads only from it, and its bytes must hash to the settled hash before
      // they are published; a change after that means a new version is coming (checkUnchanged throws).
      const src = new SettledFile(p, identityOf(rec), rec.m, rec.h);
      try {
        src.open();
        await this.withVersion(p, rec, () => this.target.put(rel, src, opts));
        src.checkUnchanged();
        if (!this.settledBy(p, rec, src)) return false;
        this.counted(rec);
      } finally {
        src.close();
      }
      return true;
    } catch (err) {
      return this.putFailed(p, rec, err);
    }
  }

  /**
   * A put of `p` from `src` succeeded: true, after recording a new file (not hashed before: Engine.hashAndCopy)
   * settled with the hash of the bytes it published; false when the kind said no hash (hashSettled will hash it).
   */
  private settledBy(p: string, rec: Rec, src: SettledFile): boolean {
    if (rec.h !== undefined) return true;
    if (src.hashed === undefined || !this.ctx.settledByPut) return false;
    this.ctx.settledByPut(p, rec, src.hashed);
    return true;
  }

  /** A copy of `rec` is on the target: counted. */
  private counted(rec: Rec): void {
    this.ctx.counts.copied++;
    this.ctx.counts.bytesCopied += rec.z;
  }

  /** A put of `p` failed with `err`: say why (the source, rather than the target?) and record it; false. */
  private putFailed(p: string, rec: Rec, err: unknown): false {
    if (this.ctx.signal.aborted) return false;
    let e = toTargetError(err, this.target.name, opOrigin(this.target.name, 'put', targetPath(this.ctx.host, p)));
    if (isSourceGone(rec)) { this.fail(p, rec, e); return false; } // a repair from another target: no source to look at
    if (e.errorClass === 'missing' || e.errorClass === 'EACCES' || e.errorClass === 'other') e = this.diagnose(p, rec, e);
    // a new file not hashed yet (Engine.hashAndCopy) that is still there, unchanged: not recorded here; hashSettled
    // looks at it next (and records an unreadable file on every target), then it is copied as any settled file
    if (rec.h === undefined && e.errorClass !== 'changed' && e.errorClass !== 'vanished') {
      if (e.targetWide) this.down ??= e;
      return false;
    }
    if (e.errorClass === 'changed') this.unsettle(p, rec);
    this.fail(p, rec, e);
    return false;
  }

  /** Small regular files with nothing to keep aside, due on a kind that puts many at once: put through putMany. */
  private batchable(rec: Rec): boolean {
    return hasBatchPut(this.target) && rec.l === undefined && !isSourceGone(rec) && !previousCopyOn(rec, this.target.name) && rec.z <= SMALL_FILE;
  }

  /**
   * Put `items` (each batchable) with one putMany; the ones now on the target. Each source is the very file
   * that settled (SettledFile: opened by openSettled's rules, here or in the kind's worker), as put() reads it.
   */
  private async putBatch(items: [string, Rec][]): Promise<[string, Rec][]> {
    const open = items.map(([p, rec]) => ({ p, rec, src: new SettledFile(p, identityOf(rec), rec.m, rec.h) }));
    const done: [string, Rec][] = [];
    try {
      let results: (Error | undefined)[];
      try {
        results = await (this.target as Target & BatchPut).putMany(open.map((o) => ({ rel: targetPath(this.ctx.host, o.p), src: o.src })), { signal: this.ctx.signal, dirMode: this.dirMode });
      } catch (err) { // the call as a whole: each file failed with it (a target-wide class stops the target)
        for (const o of open) this.putFailed(o.p, o.rec, err);
        return done;
      }
      for (const [k, o] of open.entries()) {
        try {
          if (results[k]) throw results[k];
          o.src.checkUnchanged();
          if (!this.settledBy(o.p, o.rec, o.src)) continue;
          this.counted(o.rec);
          done.push([o.p, o.rec]);
        } catch (err) {
          this.putFailed(o.p, o.rec, err);
        }
      }
      return done;
    } finally {
      for (const o of open) o.src.close();
    }
  }

  /**
   * Repair the copy of a file whose source is gone from the first other target (config order) holding a
   * verified copy whose bytes hash to the store's hash on the way (peerSource): never from an unverified
   * copy, and nothing is published from a copy that turns out bad. Throws the last peer's error.
   */
  private async putFromPeer(p: string, rec: Rec, rel: string, opts: PutOptions): Promise<void> {
    const peers = (this.ctx.peers ?? []).filter((t) => t !== this.target && isVerifiedOn(rec, t.name) && hasRandomRead(t));
    let last: unknown = new TargetError(`${opOrigin(this.target.name, 'repair', rel)}: the source is gone and no other target holds a verified copy`, { target: this.target.name, errorClass: 'missing' });
    for (const peer of peers as (Target & RandomRead)[]) {
      try {
        const src = await peerSource(peer, rel, rec);
        await this.target.put(rel, src, opts);
        this.ctx.log.info(`${this.target.name}: repaired ${p} from ${peer.name} (the source is gone)`, { path: p, target: this.target.name, from: peer.name });
        return;
      } catch (err) {
        last = err;
        this.ctx.log.warn(`${this.target.name}: cannot repair ${p} from ${peer.name}: ${messageOf(err)}`, { path: p, target: this.target.name });
      }
    }
    throw last;
  }

  /**
   * Run `put`; when the live copy is a verified previous content, keep it aside as a version first (with
   * `versions` > 0, where the kind can), and prune the oldest versions once the new content is in place. A put
   * that fails takes its version back (the previous content is still live) and leaves the older versions alone.
   */
  private async withVersion(p: string, rec: Rec, put: () => Promise<void>): Promise<void> {
    const t = this.target;
    if (!previousCopyOn(rec, t.name)) return put();
    const versions = this.ctx.versions > 0 && hasVersions(t) ? t : undefined;
    const kept = versions && await keepPreviousVersion(versions, this.ctx.host, p);
    try {
      await put();
    } catch (err) {
      if (kept) await versions.removeVersion(kept).catch(() => undefined);
      throw err;
    }
    if (versions) await pruneVersions(versions, this.ctx.host, p, this.ctx.versions);
    if (kept) this.ctx.log.info(`${t.name}: kept the previous copy of ${p} as ${kept}`, { path: p, target: t.name });
    previousCopyGone(rec, t.name);
    this.ctx.store.set(p, rec);
  }

  /** Read the batch's copies back (the one verification step, verify.ts); a copy that matches is verified. */
  private async verify(copied: [string, Rec, number][]): Promise<void> {
    const host = this.ctx.host;
    const results = await verifyCopies(this.target, copied.map(([p, rec]) => ({
      rel: targetPath(host, p), hash: rec.h, link: rec.l, linkInStoreOnly: this.linksInTheWay.has(p),
    })), { signal: this.ctx.signal, concurrency: this.concurrency });
    if (this.ctx.signal.aborted) return;
    for (const [p, rec, copiedAt] of copied) {
      const rel = targetPath(host, p);
      if (!results.has(rel)) continue; // not read: the target failed first
      const err = results.get(rel);
      if (err) { this.fail(p, rec, err); continue; }
      markVerified(rec, this.target.name, copiedAt, Date.now());
      this.ctx.store.set(p, rec);
      this.ctx.counts.verified++;
    }
  }

  /**
   * Before a batch's puts: record in the store (durably) the target directories where they will make temp
   * files, so that after a kill -9 the next run removes them even if nothing is ever written there again.
   */
  private noteTempDirs(paths: string[]): string[] {
    if (!hasTempFiles(this.target)) return [];
    const m = this.ctx.store.meta.targets[this.target.name];
    const dirs = [...new Set(paths.map((p) => targetPath(this.ctx.host, p.slice(0, p.lastIndexOf('/')) || '')))];
    const known = new Set(m.tempDirs ?? []);
    if (dirs.every((d) => known.has(d))) return dirs;
    m.tempDirs = [...new Set([...known, ...dirs])];
    this.ctx.store.flushMeta(); // meta alone: the records keep their debounced flush
    return dirs;
  }

  /** The batch's puts are over: each temp file was renamed into place or removed. */
  private clearTempDirs(dirs: string[]): void {
    const m = this.ctx.store.meta.targets[this.target.name];
    if (!dirs.length || !m.tempDirs) return;
    const done = new Set(dirs);
    m.tempDirs = m.tempDirs.filter((d) => !done.has(d));
    if (!m.tempDirs.length) delete m.tempDirs;
    this.ctx.store.touchMeta();
  }

  /**
   * Copy, make durable and verify every path in `paths` (records from the store). A new file not hashed yet
   * (Engine.hashAndCopy) is read once by its put, which records it settled with the hash of what it published
   * (settledBy); it is then verified against that hash like any other. One not put (a source problem, the
   * target down) is left unhashed, for hashSettled.
   */
  async copyAll(paths: string[]): Promise<void> {
    for (let i = 0; i < paths.length && !this.down && !this.ctx.signal.aborted;) {
      const batch: [string, Rec][] = [];
      let bytes = 0;
      const [maxFiles, maxBytes] = this.ctx.batching ? [Infinity, this.ctx.batching.volumeSize] : [BATCH_FILES, BATCH_BYTES];
      for (; i < paths.length && batch.length < maxFiles && bytes < maxBytes; i++) {
        const rec = this.ctx.store.get(paths[i]);
        if (rec) { batch.push([paths[i], rec]); bytes += rec.z; }
      }
      const copied: [string, Rec, number][] = [];
      this.dirModes = new Map();
      const dirs = this.noteTempDirs(batch.map(([p]) => p));
      const small = batch.filter(([, rec]) => this.batchable(rec));
      const rest = small.length ? batch.filter(([, rec]) => !this.batchable(rec)) : batch;
      const live = () => !this.down && !this.ctx.signal.aborted;
      const tasks = rest.map(([p, rec]) => this.queue.add(async () => {
        if (live() && await this.put(p, rec)) copied.push([p, rec, Date.now()]);
      }));
      const per = this.ctx.putManyFiles ?? PUT_MANY;
      for (let k = 0; k < small.length; k += per) {
        const part = small.slice(k, k + per);
        tasks.push(this.batches.add(async () => {
          if (live()) for (const [p, rec] of await this.putBatch(part)) copied.push([p, rec, Date.now()]);
        }));
      }
      await Promise.all(tasks);
      if (!this.down && !this.ctx.signal.aborted) this.clearTempDirs(dirs); // else a temp may be left: swept next run
      if (this.down || this.ctx.signal.aborted || copied.length === 0) continue;
      try {
        await this.target.sync({ signal: this.ctx.signal });
      } catch (err) {
        if (!this.ctx.signal.aborted) this.down ??= toTargetError(err, this.target.name, opOrigin(this.target.name, 'sync'));
        continue;
      }
      await this.verify(copied);
    }
  }
}
