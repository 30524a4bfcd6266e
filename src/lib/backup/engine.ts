import type { Config } from '../config/schema.js';
import { type TargetError, messageOf, toTargetError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Store } from '../store/store.js';
import { emptyCounts, type Rec, type RunCounts } from '../store/model.js';
import { kindModule } from '../targets/registry.js';
import { type Target, hasArchive, hasBatchPut, hasTempFiles } from '../targets/target.js';
import { archiveDue, attachCatalogs } from './archive.js';
import { withDeadline } from '../queue/deadline.js';
import { TargetCopier } from './copier.js';
import { MarkerScan, allVerifiedOn, manifestHash, markerFor } from './markers.js';
import { SMALL_FILE, initHasher } from '../hash/xxh64.js';
import { bufferSource } from '../targets/source.js';
import { targetPath } from '../targets/layout.js';
import { VERSION } from '../version.js';
import { type RemovalResult, removalDue, removeLocal } from './deleteLocal.js';
import { hashSettled } from './hashing.js';
import { reconcile, reconcileWalked, recheck, type ReconcileResult } from './reconcile.js';
import type { Prewalk } from '../scan/prewalk.js';
import { shipStore } from './shipStore.js';
import { codeOn, isCurrent, isDoneOn, isDue, isRepairDue, settle } from '../store/records.js';

/**
 * The backup work of one process, in steps: `run` is one full pass of it (backup.ts runPass); `watch` keeps
 * one Engine for its life and schedules passes, event batches and retries on it, so the same code path serves
 * both. Holds the per-target copiers (a p-queue each, opened and checked once per pass) and the counts of the
 * current pass. Every step records failures in the store; none throws for a file or a target.
 */
export class Engine {
  copiers: TargetCopier[] = [];
  counts: RunCounts = emptyCounts();
  /** target name -> the target-wide failure that stopped it in this pass */
  targetsDown: Record<string, { class: string; message: string }> = {};
  readonly names: string[];
  /** copies due in the current copy step (for progress): files and bytes, counted per target */
  due = { files: 0, bytes: 0 };
  /** source roots found missing by the last scan: nothing under them is copied (their files are not there) */
  missingRoots: string[] = [];
  /** `run --flush`: tape targets write what is pending now, however small the tape file */
  flushArchives = false;

  constructor(readonly config: Config, readonly store: Store, readonly targets: Target[], readonly log: Logger,
    readonly signal: AbortSignal) {
    this.names = config.targets.map((t) => t.name);
    attachCatalogs(store, targets, config.host);
  }

  /** the source roots (real paths) */
  get roots(): string[] {
    return this.config.sources.map((s) => s.path);
  }

  /** Fresh counts (the pass's own are in its result and meta.lastRun). */
  newCounts(): void {
    this.counts = emptyCounts();
    this.due = { files: 0, bytes: 0 };
  }

  /** Start a new pass: fresh counts, heartbeat, meta up to date with the config. */
  begin(): void {
    this.newCounts();
    this.targetsDown = {};
    const meta = this.store.meta;
    meta.heartbeatAt = new Date().toISOString();
    meta.sources = this.config.sources.map((s) => s.path);
    meta.verify = { ...this.config.verify };
    if (this.config.markers.length) meta.markerConfig = this.config.markers;
    else delete meta.markerConfig;
    if (this.config.deleteLocalAfterMs === null) delete meta.deleteLocal;
    else meta.deleteLocal = { afterMs: this.config.deleteLocalAfterMs };
    for (const t of this.config.targets) {
      meta.targets[t.name] = { ...meta.targets[t.name], url: t.url };
      delete meta.targets[t.name].removedAt;
      const waitMs = kindModule(t).batching?.(t).maxWaitMs;
      if (waitMs === undefined) delete meta.targets[t.name].waitMs;
      else meta.targets[t.name].waitMs = waitMs;
    }
    for (const [name, m] of Object.entries(meta.targets)) {
      if (!this.names.includes(name)) m.removedAt ??= new Date().toISOString();
    }
    this.store.touchMeta();
  }

  /** Record a target-wide failure on the target: shown by status, no attempts spent. */
  recordDown(name: string, err: TargetError): void {
    this.targetsDown[name] = { class: err.errorClass, message: err.message };
    const m = (this.store.meta.targets[name] ??= { url: this.config.targets.find((t) => t.name === name)?.url ?? '' });
    m.lastError = { class: err.errorClass, message: err.message, at: new Date().toISOString() };
    this.store.touchMeta();
    this.log.error(`target ${name} unusable: [${err.errorClass}] ${err.message}`, { target: name, class: err.errorClass });
  }

  /** Check every target (reachable, mounted, writable) and make a copier for each usable one. */
  async openTargets(): Promise<void> {
    this.copiers = [];
    for (const t of this.targets) {
      if (this.signal.aborted) return;
      try {
        await t.check({ signal: this.signal });
      } catch (err) {
        if (this.signal.aborted) return;
        const e = toTargetError(err, t.name, `[${t.name}] check`);
        // A full target still takes the per-file path, so every file records its own ENOSPC.
        if (e.targetWide || e.errorClass === 'unreachable') { this.recordDown(t.name, e); continue; }
        this.log.warn(`target ${t.name}: ${e.message}`);
      }
      await this.sweepTemps(t);
      const cfg = this.config.targets.find((c) => c.name === t.name)!;
      const kind = kindModule(cfg);
      this.copiers.push(new TargetCopier(t, Math.min(cfg.concurrency ?? kind.concurrency, kind.maxConnections), {
        host: this.config.host, store: this.store, log: this.log, policy: this.config.retry, counts: this.counts, roots: this.roots,
        signal: this.signal, copyTimeoutMs: cfg.timeouts.copyMs, versions: this.config.versions, peers: this.targets,
        batching: kind.batching?.(cfg), putManyFiles: kind.putManyFiles, settledByPut: this.settledByPut,
      }));
    }
  }

  /** Remove the temp files a killed run may have left in the directories it recorded. */
  private async sweepTemps(t: Target): Promise<void> {
    const m = this.store.meta.targets[t.name];
    if (!m?.tempDirs?.length || !hasTempFiles(t)) return;
    try {
      const n = await t.removeTemps(m.tempDirs);
      if (n) this.log.info(`target ${t.name}: removed ${n} temp file(s) left by an interrupted run`, { target: t.name });
      delete m.tempDirs;
      this.store.touchMeta();
    } catch (err) {
      this.log.warn(`target ${t.name}: could not remove temp files of an interrupted run: ${messageOf(err)}`, { target: t.name });
    }
  }

  /** The full reconcile scan of every source (walked already by `prewalk` where it could). */
  async scan(prewalk?: Prewalk): Promise<ReconcileResult> {
    const res = prewalk ? await reconcileWalked(this.config, this.store, this.counts, this.log, prewalk) : reconcile(this.config, this.store, this.counts, this.log);
    this.missingRoots = res.missingSources;
    return res;
  }

  /** Re-stat files seen changing; those now settled are hashed. Returns the ones still changing. */
  async settle(paths: string[]): Promise<string[]> {
    const { toHash, waiting } = recheck(paths, this.roots, this.store, this.config.settleMs);
    await this.hash(toHash);
    return waiting;
  }

  /** A new file's first copy (hashAndCopy) published content hashing to `hash`: it is settled with it, as hashSettled records it. */
  private readonly settledByPut = (p: string, rec: Rec, hash: string): void => {
    settle(rec, hash, Date.now(), this.names, this.config.versions);
    this.counts.hashed++;
    this.counts.settled++;
    this.store.set(p, rec);
  };

  /** Hash settled files; returns those whose content is now settled (due on every target). */
  hash(paths: string[]): Promise<string[]> {
    this.warm(paths.length);
    return this.hashHere(paths);
  }

  /** hashSettled on the main thread, with this engine's store, targets, policy and counts. */
  private hashHere(paths: string[]): Promise<string[]> {
    return hashSettled(paths, this.store, this.names, this.config.retry, this.counts, this.log, this.signal, this.config.versions);
  }

  /** A step is about to copy `files` files: each kind starts what it will need meanwhile (kind.warm). */
  private warm(files: number): void {
    if (files) for (const t of this.config.targets) kindModule(t).warm?.(files);
  }

  /**
   * Hash the settled files `paths` and copy every due file (a pass's main step). New small files (never hashed)
   * are hashed by their first copy where a target of the pass puts many at once and hashes what it publishes
   * (the first such in config order: a local target's worker reads each file once, for its hash and its copy,
   * instead of once here and once there); so are new big files when that target is the only one up (else the
   * others would wait for its copy of a big file before starting theirs); the rest first, here (hashSettled).
   * Files the put could not take are hashed here after it, and whatever settled on the way is then copied to
   * the other targets.
   */
  async hashAndCopy(paths: string[], hashed?: () => void): Promise<void> {
    this.warm(paths.length);
    // a target that puts many at once (local: its worker threads), else a tape (it hashes each member it writes)
    const first = this.copiers.find((c) => !c.down && hasBatchPut(c.target) && !hasArchive(c.target)) ?? this.copiers.find((c) => !c.down && hasArchive(c.target));
    // a big file too when the first is the only target up: no other target waits for its copy (a tape hashes
    // the member it streams; a file that changed under the read is caught as a small one is: size, identity)
    const anySize = first !== undefined && this.copiers.every((c) => c === first || c.down);
    const fresh = new Set(first ? paths.filter((p) => {
      const r = this.store.get(p);
      return r !== undefined && r.h === undefined && r.l === undefined && (r.z <= SMALL_FILE || anySize) && !this.missingRoots.some((m) => p.startsWith(m + '/'));
    }) : []);
    await this.hashHere(paths.filter((p) => !fresh.has(p)));
    hashed?.();
    await this.copy(undefined, [...fresh], first);
    if (!fresh.size) return;
    // not put by the first (its target down or stopped, the put failed on the target's side): hashed here; a
    // file that changed or vanished under its put is recorded as failed there, and not hashed now (it settles again)
    const byPut: string[] = [];
    const left: string[] = [];
    for (const p of fresh) {
      const r = this.store.get(p);
      if (r?.h !== undefined) byPut.push(p);
      else if (r && codeOn(r, first!.target.name) !== 'f') left.push(p);
    }
    if (this.signal.aborted) return; // the rest waits for the next pass, not settled yet (as files still to be hashed do)
    const settled = await this.hashHere(left);
    // the first copies what it could not put now; a tape that was first wrote its tape file (the rest waits, as its batching says)
    await this.copy([...byPut, ...settled], [], undefined, { copier: first!, paths: hasArchive(first!.target) ? undefined : new Set(byPut) });
  }

  /**
   * Copy and verify: `paths` if given (those due), else every due record in the store; `fresh` (new files, not
   * hashed) to copier `first` as well (hashAndCopy: then no other archive target writes, so that a pass cuts one
   * tape file per tape); `except`: that copier leaves these paths alone (all of them, and its tape file, when
   * none are named).
   */
  async copy(paths?: string[], fresh: string[] = [], first?: TargetCopier, except?: { copier: TargetCopier; paths?: Set<string> }): Promise<void> {
    const archives = fresh.length === 0;
    const now = Date.now();
    const due = new Map<TargetCopier, string[]>(this.copiers.map((c) => [c, []]));
    const consider = (p: string, r: Rec | undefined) => {
      if (!r || this.missingRoots.some((m) => p.startsWith(m + '/'))) return;
      for (const c of this.copiers) {
        if (c.down || (!archives && hasArchive(c.target) && c !== first) || (c === except?.copier && (!except.paths || except.paths.has(p)))) continue;
        if (!(isDue(r, c.target.name, now, this.config.retry) || isRepairDue(r, c.target.name, now, this.config.retry))) continue;
        due.get(c)!.push(p);
        this.due.files++;
        this.due.bytes += r.z;
      }
    };
    if (paths) for (const p of paths) consider(p, this.store.get(p));
    else for (const [p, r] of this.store.entries()) consider(p, r);
    if (first && fresh.length) {
      this.due.files += fresh.length;
      for (const p of fresh) this.due.bytes += this.store.get(p)?.z ?? 0;
    }
    await Promise.all(this.copiers.map((c) => {
      c.ctx.counts = this.counts;
      if (c === except?.copier && !except.paths) return undefined;
      if (hasArchive(c.target)) return archives || c === first ? c.copyAll(this.archiveDue(c, now, c === first ? fresh : [])) : undefined;
      return c.copyAll((c === first ? [...due.get(c)!, ...fresh] : due.get(c)!).sort());
    }));
    for (const c of this.copiers) if (c.down && !this.targetsDown[c.target.name]) this.recordDown(c.target.name, c.down);
  }

  /**
   * What an archive target (tape) writes now: every copy due there (whatever `copy` was asked for: a tape file
   * gathers them), cut into tape files of `volumeSize`; the last, smaller one only with --flush or once a file
   * waited `maxWait` (archive.ts).
   */
  private archiveDue(c: TargetCopier, now: number, fresh: string[] = []): string[] {
    const name = c.target.name;
    const all: string[] = [...fresh]; // new files hashed by their member's write (hashAndCopy)
    const isFresh = new Set(fresh);
    for (const [p, r] of this.store.entries()) {
      if (this.missingRoots.some((m) => p.startsWith(m + '/'))) continue;
      if (isDue(r, name, now, this.config.retry) || isRepairDue(r, name, now, this.config.retry)) all.push(p);
    }
    const rec = (p: string) => this.store.get(p)!;
    const cutShort = new Set((this.store.meta.tape?.[name]?.files ?? []).filter((f) => f.state === 'unusable').flatMap((f) => f.members.map((m) => m[0])));
    return archiveDue(all.sort(), {
      sizeOf: (p) => rec(p).z, settledAt: (p) => rec(p).s ?? (isFresh.has(p) ? now : rec(p).f), // a new file settles now
      retried: (p) => codeOn(rec(p), name) === 'f' || cutShort.has(targetPath(this.config.host, p)),
    }, c.ctx.batching!, now, this.flushArchives);
  }

  /** Settled source files (not deleted) not verified (or ignored) on a target usable now. */
  unverified(): number {
    const names = this.copiers.filter((c) => !c.down && !hasArchive(c.target)).map((c) => c.target.name);
    // a tape target owes only what it tried: the rest waits for its tape file (volumeSize, maxWait, --flush)
    const archives = this.copiers.filter((c) => !c.down && hasArchive(c.target)).map((c) => c.target.name);
    let n = 0;
    for (const [, r] of this.store.entries()) {
      if (isCurrent(r) && (names.some((t) => !isDoneOn(r, t)) || archives.some((t) => codeOn(r, t) === 'f'))) n++;
    }
    return n;
  }

  /**
   * Completeness markers: for each complete directory (markers.ts), on each target usable in this pass where
   * every settled file under it is verified, write the marker into the directory's copy (atomically: the put
   * of every kind is) unless the one written there already says the same; then make them durable. Returns
   * what was written. A failure is logged and the marker is tried again by the next pass.
   */
  async writeMarkers(): Promise<{ dir: string; target: string }[]> {
    if (!this.config.markers.length || this.signal.aborted) return [];
    await initHasher();
    const scan = new MarkerScan(this.config.markers);
    for (const [p, r] of this.store.entries()) scan.add(p, r);
    const now = Date.now();
    const written = (this.store.meta.markers ??= {});
    const out: { dir: string; target: string }[] = [];
    for (const d of scan.dirs(now)) {
      if (d.completeAt === undefined || this.signal.aborted) continue;
      const markerPath = `${d.dir}/${d.marker.name}`;
      if (this.store.get(markerPath)) {
        this.log.warn(`marker ${markerPath} not written: a source file has that name (its copy would be replaced); rename the marker (markers[].name)`);
        continue;
      }
      const manifest = manifestHash(this.config.host, d);
      for (const c of this.copiers) {
        if (c.down || hasArchive(c.target) || !allVerifiedOn(d, c.target.name) || written[d.dir]?.[c.target.name]?.manifestXxh64 === manifest) continue;
        const m = markerFor(this.config.host, d, manifest, c.target.name, VERSION, now);
        try {
          await c.target.put(targetPath(this.config.host, markerPath), bufferSource(Buffer.from(m.json), { mode: 0o644, mtimeMs: now }), { signal: this.signal });
          (written[d.dir] ??= {})[c.target.name] = m.state;
          this.store.touchMeta();
          out.push({ dir: d.dir, target: c.target.name });
          this.log.info(`marker written: ${markerPath} on ${c.target.name} (${m.state.files} files, manifest ${m.state.manifestXxh64})`, { path: markerPath, target: c.target.name });
        } catch (err) {
          this.log.error(`marker ${markerPath} on ${c.target.name} not written: ${messageOf(err)} (the next pass tries again)`, { path: markerPath, target: c.target.name });
        }
      }
    }
    for (const c of this.copiers) {
      if (!out.some((w) => w.target === c.target.name)) continue;
      try {
        await c.target.sync({ signal: this.signal });
      } catch (err) {
        this.log.error(`markers on ${c.target.name} may not be durable: ${messageOf(err)}`, { target: c.target.name });
      }
    }
    return out;
  }

  /**
   * deleteLocalAfter: remove the source files due (at most `max`), each after its live check; none at all while
   * a configured target is down or was left out of this pass (`--target`). Undefined when none is due.
   */
  async removeLocal(max: number): Promise<(RemovalResult & { blocked?: string }) | undefined> {
    const afterMs = this.config.deleteLocalAfterMs;
    if (afterMs === null || this.signal.aborted) return undefined;
    const due = removalDue(this.store, this.names, afterMs, max);
    if (!due.length) return undefined;
    const open = this.names.map((n) => this.copiers.find((c) => c.target.name === n && !c.down));
    const down = this.names.filter((_, i) => !open[i]);
    if (down.length) {
      const blocked = `${due.length} source files due for removal, none removed: target ${down.map((n) => `${n} (${this.targetsDown[n] ? `[${this.targetsDown[n].class}] ${this.targetsDown[n].message}` : 'not in this pass'})`).join(', ')}`;
      this.log.warn(`deleteLocalAfter: ${blocked}`);
      return { removed: [], bytes: 0, kept: [], failed: [], blocked };
    }
    return removeLocal({
      store: this.store, targets: open.map((c) => c!.target), host: this.config.host, roots: this.roots, log: this.log, signal: this.signal, counts: this.counts,
    }, due);
  }

  /** Targets that worked through this pass get their lastError cleared and lastOkAt set. */
  markTargetsOk(): void {
    for (const c of this.copiers) {
      if (c.down) continue;
      const m = this.store.meta.targets[c.target.name];
      delete m.lastError;
      m.lastOkAt = new Date().toISOString();
    }
    this.store.touchMeta();
  }

  /** Snapshot the store and copy it to every usable target; returns the targets it could not be shipped to. */
  async saveAndShip(): Promise<string[]> {
    await this.store.flush(); // a store that cannot be saved is a StoreError (exit 74)
    const failed: string[] = [];
    // With snapshots off (or failing), ship the live files: each is replaced only by rename, so each is read whole.
    let snap = this.store.dir;
    let fromSnapshot = false;
    try {
      const s = await this.store.snapshot();
      if (s) { snap = s; fromSnapshot = true; }
    } catch (err) {
      failed.push('snapshot');
      this.log.error(messageOf(err));
    }
    for (const c of this.copiers) {
      if (c.down || hasArchive(c.target)) continue; // never a tape file per run: the other targets carry the store
      try {
        await withDeadline(c.ctx.copyTimeoutMs, this.signal, (sig) => shipStore(c.target, snap, this.config.host, sig, fromSnapshot));
      } catch (err) {
        failed.push(c.target.name);
        this.log.error(`store copy to ${c.target.name} failed: ${messageOf(err)}`, { target: c.target.name });
      }
    }
    return failed;
  }
}
