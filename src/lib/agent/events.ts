import { formatBytes } from '../config/units.js';
import type { Logger } from '../log.js';
import type { Engine } from '../backup/engine.js';
import { entryOf, observeEntry } from '../backup/reconcile.js';
import { settlesAt } from '../scan/settle.js';
import { type LongTimer, setLongTimeout } from '../queue/timers.js';
import { markDeleted } from '../store/records.js';

export interface EventsDeps {
  engine: () => Engine;
  settleMs: () => number;
  log: Logger;
  /** queue work on the agent's one chain (passes and batches never interleave on the store) */
  enqueue: (what: string, fn: () => Promise<void>) => Promise<void>;
  /** a batch was copied: release watches of finished files, ship the store soon */
  copied: (paths: string[]) => void;
}

/**
 * The agent's per-file work between full passes: each watcher event records an observation and (re)arms
 * that file's settle timer; a file that settled is hashed and joins the next copy batch; events that arrive
 * during a full pass are held and replayed after it (the pass may not have seen them).
 */
export class FileEvents {
  private readonly timers = new Map<string, LongTimer>();
  private readonly ready = new Set<string>();
  /** events held while a full pass runs */
  private held?: [kind: 'change' | 'unlink', path: string][];
  stopping = false;
  /** since the agent started: copies made, verified, failed by event batches, and when the last batch ended */
  readonly totals = { copied: 0, verified: 0, failed: 0, lastBatchAt: undefined as number | undefined };

  constructor(private readonly deps: EventsDeps) {}

  /** Files waiting for their settle timer, and files settled and waiting to be copied. */
  get pending(): { settling: number; queued: number } {
    return { settling: this.timers.size, queued: this.ready.size };
  }

  /** Hold events from now until replay() (a full pass starts). */
  hold(): void {
    this.held ??= [];
  }

  /** Handle the events held during a full pass. */
  replay(): void {
    const events = this.held ?? [];
    this.held = undefined;
    for (const [kind, p] of events) {
      if (kind === 'change') this.changed(p);
      else this.unlinked(p);
    }
  }

  /** A watcher event: record the observation now, and (re)arm the file's settle timer. */
  changed(p: string): void {
    this.deps.log.debug(`watch: event ${p}`);
    if (this.stopping) return;
    if (this.held) { this.held.push(['change', p]); return; }
    const engine = this.deps.engine();
    const e = entryOf(p, engine.roots);
    if (!e) return;
    const next = observeEntry(engine.store, e, Date.now(), this.deps.settleMs(), engine.names, engine.counts);
    // Settled already ('hash': an event replayed after a long pass, for a file whose mtime is past settle)
    // still has to be hashed before it can be copied: the settle step does that (at once for it). Marking
    // it ready here skipped the hash, and nothing looked at it again until the next rescan.
    if (next === 'hash' || next === 'wait') this.arm(p);
    else if (e.kind === 'symlink') this.markReady(p);
  }

  /** A watcher event: the file is gone (a deletion at the source; its copies stay). */
  unlinked(p: string): void {
    if (this.held) { this.held.push(['unlink', p]); return; }
    this.timers.get(p)?.clear();
    this.timers.delete(p);
    const store = this.deps.engine().store;
    const r = store.get(p);
    if (r && markDeleted(r, Date.now())) store.set(p, r);
  }

  /** Look at `p` again when it can have settled (the settle step hashes it, or it waits again). */
  arm(p: string): void {
    this.timers.get(p)?.clear();
    const rec = this.deps.engine().store.get(p);
    if (!rec) return;
    const wait = Math.max(10, settlesAt(rec, this.deps.settleMs()) - Date.now() + 5);
    this.deps.log.debug(`watch: settle check of ${p} in ${wait} ms`);
    this.timers.set(p, setLongTimeout(() => {
      this.timers.delete(p);
      void this.deps.enqueue('settle', async () => {
        const still = await this.deps.engine().settle([p]);
        this.deps.log.debug(`watch: ${p} ${still.length ? 'still changing' : 'settled'}`);
        for (const s of still) this.arm(s);
        this.markReady(p);
      });
    }, wait));
  }

  /** Stop every settle timer (reload, stop). */
  clearTimers(): void {
    for (const t of this.timers.values()) t.clear();
    this.timers.clear();
  }

  private markReady(p: string): void {
    this.ready.add(p);
    void this.deps.enqueue('copy', () => this.pump());
  }

  /** Copy and verify everything ready, as one batch per target. */
  private async pump(): Promise<void> {
    if (!this.ready.size) return;
    const batch = [...this.ready];
    this.ready.clear();
    const engine = this.deps.engine();
    const before = { ...engine.counts };
    await engine.copy(batch);
    const c = engine.counts;
    this.totals.copied += c.copied - before.copied;
    this.totals.verified += c.verified - before.verified;
    this.totals.failed += c.failed - before.failed;
    this.totals.lastBatchAt = Date.now();
    // one line per batch (not per file): what a person watching the agent, or the journal, wants to see
    const made = c.copied - before.copied;
    this.deps.log.info(`watch: ${batch.length} settled file${batch.length === 1 ? '' : 's'}: ${made} ${made === 1 ? 'copy' : 'copies'} made (${formatBytes(c.bytesCopied - before.bytesCopied)}), `
      + `${c.verified - before.verified} verified, ${c.failed - before.failed} failed`, { files: batch.length, copied: c.copied - before.copied, verified: c.verified - before.verified, failed: c.failed - before.failed });
    this.deps.copied(batch);
  }
}
