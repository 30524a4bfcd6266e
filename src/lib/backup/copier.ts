import fs from 'node:fs';
import PQueue from 'p-queue';
import { TargetError, messageOf, toTargetError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Store } from '../store/store.js';
import type { Rec, RunCounts } from '../store/model.js';
import { observationChanged, observe } from '../scan/settle.js';
import type { Target } from '../targets/target.js';
import { markFailed, markVerified, type RetryPolicy } from './states.js';

export interface CopyContext {
  host: string;
  store: Store;
  log: Logger;
  policy: RetryPolicy;
  /** bound on shipping the store (each target call has its own timeout from the wrappers) */
  copyTimeoutMs: number;
  counts: RunCounts;
  /** aborts the whole run (SIGINT/SIGTERM): in-flight copies are abandoned cleanly */
  signal: AbortSignal;
}

/** Where a source file lives on every target: `<host>/<abs path>` (SPEC 3). */
export const targetPath = (host: string, p: string): string => `${host}${p}`;

/** Files and bytes per durability batch: one sync (syncfs) and then read-back for each batch. */
const BATCH_FILES = 1000;
const BATCH_BYTES = 1 << 30;

/**
 * Copies due files to one target through its own p-queue, in batches: put every file of the batch
 * (atomic), make the batch durable with one sync(), then read each copy back and compare with the settled
 * hash; only then `verified`. Per-file failures spend an attempt; a target-wide failure stops this target
 * for the rest of the run (recorded by the caller), leaving its files pending.
 */
export class TargetCopier {
  readonly queue: PQueue;
  /** set when the target failed as a whole */
  down?: TargetError;

  constructor(readonly target: Target, concurrency: number, readonly ctx: CopyContext) {
    this.queue = new PQueue({ concurrency: Math.max(1, concurrency) });
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
    if (observationChanged(rec, { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino })) {
      return new TargetError(`source changed while copying: ${p}`, { target, errorClass: 'changed', cause: err });
    }
    try {
      fs.accessSync(p, fs.constants.R_OK);
    } catch (e) {
      return new TargetError(`cannot read source ${p}: ${messageOf(e)}`, { target, errorClass: 'EACCES', permanent: true, cause: err });
    }
    return err;
  }

  /** Put one file or symlink; true when it is on the target (not yet durable or verified). */
  private async put(p: string, rec: Rec): Promise<boolean> {
    const rel = targetPath(this.ctx.host, p);
    try {
      if (rec.l !== undefined) {
        if (!this.target.capabilities.symlinks) return true;
        await this.target.putLink(rel, rec.l);
        return true;
      }
      // The source path is given, so the target copies its mode itself; mtime comes from the settled record.
      // the target is wrapped (registry.ts): this call has its timeout and retries already
      await this.target.put(rel, p, { size: rec.z, mtimeMs: rec.m, hash: rec.h, signal: this.ctx.signal });
      // Re-stat after copying: if the source changed meanwhile, this copy does not count.
      const after = fs.lstatSync(p);
      if (observationChanged(rec, { size: after.size, mtimeMs: after.mtimeMs, ino: after.ino })) {
        const e = new TargetError(`source changed while copying: ${p}`, { target: this.target.name, errorClass: 'changed' });
        this.fail(p, rec, e);
        observe(rec, { size: after.size, mtimeMs: after.mtimeMs, ino: after.ino }, Date.now());
        delete rec.s;
        this.ctx.store.set(p, rec);
        return false;
      }
      this.ctx.counts.copied++;
      this.ctx.counts.bytesCopied += rec.z;
      return true;
    } catch (err) {
      if (this.ctx.signal.aborted) return false;
      let e = toTargetError(err, this.target.name, `[${this.target.name}] put ${rel}`);
      if (e.errorClass === 'missing' || e.errorClass === 'EACCES' || e.errorClass === 'other') e = this.diagnose(p, rec, e);
      this.fail(p, rec, e);
      return false;
    }
  }

  /** Read the copy back and compare with the settled hash (or the link text). */
  private async verify(p: string, rec: Rec, copiedAt: number, known?: string): Promise<void> {
    const rel = targetPath(this.ctx.host, p);
    try {
      if (rec.l !== undefined) {
        const text = this.target.capabilities.symlinks ? await this.target.readLink(rel) : rec.l;
        if (text !== rec.l) throw new TargetError(`[${this.target.name}] symlink ${rel} reads back as ${JSON.stringify(text)}, expected ${JSON.stringify(rec.l)}`, { target: this.target.name, errorClass: text === undefined ? 'missing' : 'mismatch' });
      } else {
        const h = known ?? await this.target.hash(rel, { signal: this.ctx.signal });
        if (h !== rec.h) throw new TargetError(`[${this.target.name}] read-back of ${rel} hashes to ${h}, expected ${rec.h}`, { target: this.target.name, errorClass: 'mismatch' });
      }
      markVerified(rec, this.target.name, copiedAt, Date.now());
      this.ctx.store.set(p, rec);
      this.ctx.counts.verified++;
    } catch (err) {
      if (!this.ctx.signal.aborted) this.fail(p, rec, toTargetError(err, this.target.name, `[${this.target.name}] verify ${rel}`));
    }
  }

  /** Read back a whole batch at once where the target can (hashMany); what it leaves out is hashed per file. */
  private async hashMany(rels: string[]): Promise<Map<string, string>> {
    if (!this.target.hashMany || rels.length === 0) return new Map();
    try {
      return await this.target.hashMany(rels, { signal: this.ctx.signal });
    } catch (err) {
      this.ctx.log.debug(`${this.target.name}: batch read-back failed, verifying file by file: ${messageOf(err)}`);
      return new Map();
    }
  }

  /** Copy, make durable and verify every path in `paths` (records from the store). */
  async copyAll(paths: string[]): Promise<void> {
    for (let i = 0; i < paths.length && !this.down && !this.ctx.signal.aborted;) {
      const batch: [string, Rec][] = [];
      let bytes = 0;
      for (; i < paths.length && batch.length < BATCH_FILES && bytes < BATCH_BYTES; i++) {
        const rec = this.ctx.store.get(paths[i]);
        if (rec) { batch.push([paths[i], rec]); bytes += rec.z; }
      }
      const copied: [string, Rec, number][] = [];
      await Promise.all(batch.map(([p, rec]) => this.queue.add(async () => {
        if (this.down || this.ctx.signal.aborted) return;
        if (await this.put(p, rec)) copied.push([p, rec, Date.now()]);
      })));
      if (this.down || this.ctx.signal.aborted || copied.length === 0) continue;
      try {
        await this.target.sync({ signal: this.ctx.signal });
      } catch (err) {
        if (!this.ctx.signal.aborted) this.down ??= toTargetError(err, this.target.name, `[${this.target.name}] sync`);
        continue;
      }
      const known = await this.hashMany(copied.filter(([, rec]) => rec.l === undefined).map(([p]) => targetPath(this.ctx.host, p)));
      await Promise.all(copied.map(([p, rec, at]) => this.queue.add(async () => { if (!this.down) await this.verify(p, rec, at, known.get(targetPath(this.ctx.host, p))); })));
    }
  }
}
