import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from '../config/schema.js';
import { loadConfig } from '../config/load.js';
import { messageOf } from '../errors.js';
import type { Logger } from '../log.js';
import { runPass } from '../backup/backup.js';
import { Engine } from '../backup/engine.js';
import { type Backend, type EarlyWatcher, type SourceWatcher, type WatchHandlers, backendFor, createWatcher } from '../scan/watch.js';
import { type LongTimer, setLongInterval } from '../queue/timers.js';
import { applyRequest } from '../backup/tapeRequests.js';
import { FileEvents } from './events.js';
import { Scrubber, scrubTickMs } from './scrubber.js';
import { processWatches } from '../scan/inotify.js';
import { POLL_MS, heartbeat, watchFailure, watchInfo } from './health.js';
import { isCurrent, isVerifiedOn } from '../store/records.js';
import type { Store } from '../store/store.js';
import type { Target } from '../targets/target.js';

export interface AgentDeps {
  store: Store;
  /** builds the targets of a config (again on reload) */
  makeTargets: (config: Config) => Target[];
  log: Logger;
  /** a parcel watch `watch` started before loading the store: the first start uses it */
  early?: EarlyWatcher;
}

/** Retries due and targets that were down are looked at this often. */
const RETRY_MS = 60_000;
/** The store snapshot is shipped at most this often after batches (and on every rescan). */
const SHIP_MS = 10_000;

/**
 * `replica watch`: a full pass at start, then chokidar events per file (settle timer per changed file,
 * hash, per-target queue, verify: the Engine `run` uses), full rescans every `rescan` and whenever the
 * watcher fails, retries, heartbeat, store shipped to targets. All work runs on one chain, so passes and
 * event batches never interleave on the store. stop() ends it cleanly; reload() re-reads the config.
 */
export class Agent {
  private engine!: Engine;
  private targets: Target[] = [];
  private watcher?: SourceWatcher & { backend: Backend };
  private readonly events: FileEvents;
  /** the scrub (scrubber.ts): reads copies again off the work chain; bad ones go to a retry round at once */
  private readonly scrubber: Scrubber;
  private intervals: LongTimer[] = [];
  private shipTimer?: NodeJS.Timeout;
  private lastShip = 0;
  private work: Promise<void> = Promise.resolve();
  private readonly abort = new AbortController();
  private stopping = false;
  private polling = false;
  /** outgrowChokidar() ran (parcel is tried once per agent) */
  private triedParcel = false;
  /** resolves when stop() has finished */
  readonly stopped: Promise<void>;
  private resolveStopped!: () => void;

  constructor(private config: Config, private readonly deps: AgentDeps) {
    this.stopped = new Promise((r) => (this.resolveStopped = r));
    this.events = new FileEvents({
      engine: () => this.engine, settleMs: () => this.config.settleMs, log: deps.log,
      enqueue: (what, fn) => this.enqueue(what, fn),
      copied: (batch) => { this.releaseDone(batch); this.scheduleShip(); },
    });
    this.scrubber = new Scrubber({
      store: deps.store, log: deps.log, config: () => this.config, targets: () => this.targets, signal: this.abort.signal,
      usable: (name) => !this.engine.copiers.find((c) => c.target.name === name)?.down,
      onBad: () => void this.enqueue('repairs', () => this.retries()),
    });
  }

  private get store(): Store { return this.deps.store; }
  private get log(): Logger { return this.deps.log; }

  /** Queue `fn` on the work chain; its failure is logged, never fatal to the agent. */
  private enqueue(what: string, fn: () => Promise<void>): Promise<void> {
    this.work = this.work.then(() => (this.stopping && what !== 'stop' ? undefined : fn())).catch((err) => {
      this.log.error(`watch: ${what} failed: ${messageOf(err)}`, { stack: (err as Error).stack });
    });
    return this.work;
  }

  /** Initial pass, then watch. Resolves once the watcher is ready. */
  async start(): Promise<void> {
    this.setup();
    // Watch first, then scan: a file created while the scan runs is reported by the watcher (buffered),
    // one created before the watcher was ready is found by the scan. The other order loses the gap.
    this.events.hold();
    await this.startWatching();
    await this.enqueue('initial pass', () => this.fullPass());
    if (this.stopping) return; // stopped while starting: start nothing more
    this.events.replay();
    this.intervals = [
      setLongInterval(() => this.heartbeat(), this.config.heartbeatMs),
      setLongInterval(() => this.rescan(), this.config.rescanMs),
      setLongInterval(() => void this.enqueue('retries', () => this.retries()), Math.min(RETRY_MS, this.config.rescanMs)),
      setLongInterval(() => void this.scrubber.tick(), scrubTickMs(this.config.verify.everyMs)),
    ];
    this.log.info(`watch: watching ${this.config.sources.length} source(s) with ${processWatches()} inotify watches; settle ${this.config.settleMs} ms, rescan every ${this.config.rescanMs} ms`);
  }

  private setup(): void {
    this.targets = this.deps.makeTargets(this.config);
    this.engine = new Engine(this.config, this.store, this.targets, this.log, this.abort.signal);
  }



  private rescanQueued = false;

  /** Queue a full pass unless one is already waiting (a burst of watcher errors asks for just one). */
  private rescan(): void {
    if (this.rescanQueued || this.stopping) return;
    this.rescanQueued = true;
    void this.enqueue('rescan', () => { this.rescanQueued = false; return this.fullPass(); });
  }

  /** The same full pass as `replica run` (without waiting for settle: timers do that here). */
  private async fullPass(): Promise<void> {
    const r = await runPass(this.engine, { command: 'watch', waitForSettle: false });
    for (const p of r.waiting) this.events.arm(p);
    this.releaseDone(this.watcher?.watchedFiles() ?? []);
    await this.outgrowChokidar();
    this.engine.newCounts(); // events count from here; the targets stay open from the pass
    this.lastShip = Date.now();
    this.log.info(`watch: pass done: ${r.counts.scanned} scanned, ${r.counts.verified} verified, ${r.counts.failed} failed, ${r.waiting.length} settling`, { counts: r.counts });
  }

  private handlers(): WatchHandlers {
    return {
      onChange: (p) => this.events.changed(p),
      onUnlink: (p) => this.events.unlinked(p),
      onError: (e) => this.watchFailed(e),
      isDone: (p) => this.isDone(p),
    };
  }

  /**
   * `watcher: "auto"` on a store that has grown to parcel's size (a new agent on a big tree starts with an
   * empty store, so with chokidar): watch with parcel from now on. parcel is subscribed before chokidar is
   * closed, so no change falls between them. Tried once: where parcel cannot load, chokidar stays.
   */
  private async outgrowChokidar(): Promise<void> {
    if (this.triedParcel || this.watcher?.backend !== 'chokidar' || backendFor(this.config, this.store.size) !== 'parcel') return;
    this.triedParcel = true;
    const next = await createWatcher(this.config, this.handlers(), 'parcel');
    if (next.backend !== 'parcel') { await next.close(); return; } // createWatcher said why
    const old = this.watcher;
    this.watcher = next;
    await old.close();
    this.log.info(`watch: ${this.store.size} files: watching with @parcel/watcher from now on (watcher "auto"), ${processWatches()} inotify watches`);
  }

  private async startWatching(): Promise<void> {
    const handlers = this.handlers();
    const early = this.deps.early;
    this.deps.early = undefined;
    // the early parcel watch when there is one (if it failed to start, createWatcher says why and uses chokidar)
    const attached = early && await early.attach(handlers).catch(() => undefined);
    this.watcher = attached ?? await createWatcher(this.config, handlers, early ? 'parcel' : backendFor(this.config, this.store.size));
    await this.watcher.ready;
    // an early watch caught changes from the moment it was subscribed (they were held until now)
    const readyMs = this.watcher.readyAtMs ?? Math.round(process.uptime() * 1000);
    const held = attached ? `, ${attached.held} events held while the store loaded` : '';
    this.log.info(`watch: watcher ready ${readyMs} ms after start, ${processWatches()} inotify watches (${this.watcher.backend})${held}`, { readyMs, backend: this.watcher.backend });
    this.heartbeat();
  }

  /** Files verified everywhere give up their own watch (their directory keeps one). */
  private releaseDone(paths: Iterable<string>): void {
    for (const p of [...paths]) if (this.isDone(p)) this.watcher?.release(p);
  }

  /** For the live status line of `watch` on a terminal: files known, settling, queued, what event batches did. */
  liveStatus(): string {
    const { settling, queued } = this.events.pending;
    const t = this.events.totals;
    const last = t.lastBatchAt === undefined ? '' : `; last batch ${new Date(t.lastBatchAt).toISOString().slice(11, 19)}Z`;
    const n = this.store.size;
    return `watching ${n} file${n === 1 ? '' : 's'}: ${settling} settling, ${queued} to copy; since start ${t.copied} copied, ${t.verified} verified, ${t.failed} failed${last}`;
  }

  /** Settled and verified on every target: needs no watch of its own. */
  private isDone(p: string): boolean {
    const r = this.store.get(p);
    return r !== undefined && isCurrent(r) && this.engine.names.every((t) => isVerifiedOn(r, t));
  }

  /** The watcher failed (inotify limit, overflow): say so everywhere and rescan instead of trusting events. */
  private watchFailed(err: Error): void {
    const { limit, message } = watchFailure(err, this.config.rescanMs);
    if (this.stopping || (limit && this.polling)) return; // said once; the rescans are running already
    this.log.error(`watch: ${message}`);
    this.store.meta.watch = { ...this.watchInfo(), mode: limit ? 'polling' : this.store.meta.watch?.mode ?? 'events', error: { message, at: new Date().toISOString() } };
    this.store.touchMeta();
    if (limit && !this.polling) {
      this.polling = true;
      this.intervals.push(setLongInterval(() => this.rescan(), Math.min(POLL_MS, this.config.rescanMs)));
    }
    this.rescan();
  }

  /** `replica tape open|close` left a request (tapeRequests.ts): apply it on the work chain, then copy what is due. */
  tapeRequest(): Promise<void> {
    return this.enqueue('tape request', () => this.retries());
  }

  private async retries(): Promise<void> {
    await applyRequest(this.config.store, this.targets, this.log);
    if (this.engine.copiers.length < this.targets.length || this.engine.copiers.some((c) => c.down)) {
      this.engine.begin();
      await this.engine.openTargets();
    }
    await this.engine.copy();
    this.scheduleShip();
  }

  private scheduleShip(): void {
    if (this.shipTimer || this.stopping) return;
    const wait = Math.max(0, this.lastShip + SHIP_MS - Date.now());
    this.shipTimer = setTimeout(() => {
      this.shipTimer = undefined;
      void this.enqueue('ship', async () => {
        this.lastShip = Date.now();
        await this.engine.saveAndShip();
      });
    }, wait);
  }

  private watchInfo() {
    return watchInfo(this.store, this.watcher?.backend ?? this.config.watcher, this.polling);
  }

  private heartbeat(): void {
    heartbeat(this.store, this.watchInfo(), this.log);
  }

  /**
   * Re-read the config (SIGHUP). An invalid config is logged and the old one kept; a valid one replaces the
   * watcher, the targets and the timers, then a full pass runs. The store and host cannot change this way.
   */
  async reload(file: string): Promise<boolean> {
    let next: Config;
    try {
      next = await loadConfig({ file });
    } catch (err) {
      this.log.error(`watch: reload refused, keeping the running config: ${messageOf(err)}`);
      return false;
    }
    if (next.store !== this.config.store || next.host !== this.config.host) {
      this.log.error('watch: reload refused: `store` and `host` cannot change while running; restart the agent');
      return false;
    }
    await this.enqueue('reload', async () => {
      await this.quiesce();
      await Promise.allSettled(this.targets.map((t) => t.close()));
      this.config = next;
      this.setup();
      this.events.hold();
      await this.startWatching();
      await this.fullPass();
      this.events.replay();
    });
    this.log.info(`watch: config reloaded from ${next.file}`);
    return true;
  }

  private async quiesce(): Promise<void> {
    this.events.clearTimers();
    this.log.debug('watch: closing the watcher');
    await this.watcher?.close();
    this.watcher = undefined;
  }

  /**
   * Stop (SIGTERM/SIGINT): no new work; in-flight copies may finish for `graceMs`, then they are abandoned
   * (their temp files removed, nothing under a final name); the store is saved. Resolves when done.
   */
  async stop(graceMs: number): Promise<void> {
    if (this.stopping) return this.stopped;
    this.stopping = true;
    this.events.stopping = true;
    for (const i of this.intervals) i.clear();
    clearTimeout(this.shipTimer);
    await this.scrubber.stop();
    await this.quiesce();
    this.log.debug('watch: watcher closed; waiting for work in flight');
    const graceOver = new AbortController();
    const finished = await Promise.race([
      this.work.then(() => true),
      sleep(graceMs, false, { signal: graceOver.signal }).catch(() => false),
    ]);
    graceOver.abort(); // the grace timer must not keep the process alive once the work is done
    if (!finished) {
      this.log.warn(`watch: in-flight copies did not finish within ${graceMs} ms: abandoning them`);
      this.abort.abort(new Error('stopping'));
      await this.work;
    }
    this.store.meta.heartbeatAt = new Date().toISOString();
    if (this.store.meta.watch) this.store.meta.watch.stoppedAt = new Date().toISOString();
    this.store.touchMeta();
    await this.store.close();
    await Promise.allSettled(this.targets.map((t) => t.close()));
    this.log.debug('watch: stopped: store saved, targets closed');
    this.resolveStopped();
  }
}
