import type { Config } from '../config/schema.js';
import { messageOf } from '../errors.js';
import type { Logger } from '../log.js';
import { scrubSlice, scrubTarget } from '../backup/scrub.js';
import { verifiedAtOn } from '../store/records.js';
import type { Store } from '../store/store.js';
import type { Target } from '../targets/target.js';

const DAY_MS = 86_400_000;

/**
 * How often the agent's scrub looks for copies to read again: a twentieth of `verify.every`, between 1 s and
 * 15 min (a 30-day `every` reads a slice every 15 minutes).
 */
export const scrubTickMs = (everyMs: number): number => Math.min(15 * 60_000, Math.max(1000, Math.round(everyMs / 20)));

/**
 * The scrub in `replica watch`: every tick, on each target, the copies whose last verification is older than
 * half of `verify.every` are read back, oldest first, within the tick's share of `verify.budget` (a day's
 * budget spread over the day), so each copy is read again within `every` when the budget allows. It runs off
 * the agent's work chain with one read at a time: a new file's first copy never waits for it. Bad copies are
 * failed and repaired by the agent's next retry round, like those `replica verify` finds.
 */
export class Scrubber {
  private current?: Promise<void>;
  private readonly stopped = new AbortController();
  private readonly signal: AbortSignal;

  constructor(private readonly deps: { store: Store; log: Logger; config: () => Config; targets: () => Target[]; usable: (name: string) => boolean; signal: AbortSignal; onBad: () => void }) {
    this.signal = AbortSignal.any([deps.signal, this.stopped.signal]);
  }

  /** One tick: skipped while the previous one is still reading. */
  tick(now = Date.now()): Promise<void> {
    if (this.current || this.signal.aborted) return this.current ?? Promise.resolve();
    this.current = this.run(now).finally(() => { this.current = undefined; });
    return this.current;
  }

  /**
   * Stop: no new tick, the one reading is aborted (its reads end at once, nothing more is recorded), and waited
   * for up to `graceMs`: the store must not change after the agent has saved it and released its lock.
   */
  async stop(graceMs = 5000): Promise<void> {
    this.stopped.abort(new Error('stopping'));
    if (this.current) await Promise.race([this.current, new Promise<void>((r) => setTimeout(r, graceMs).unref())]);
  }

  private async run(now: number): Promise<void> {
    try {
      const { verify, host } = this.deps.config();
      const budget = Math.max(1, Math.floor(verify.budgetBytes * scrubTickMs(verify.everyMs) / DAY_MS));
      const stale = now - verify.everyMs / 2;
      for (const t of this.deps.targets()) {
        if (this.signal.aborted) return;
        if (!this.deps.usable(t.name)) continue;
        const slice = scrubSlice(this.deps.store, t.name, budget, (_p, r) => (verifiedAtOn(r, t.name) ?? 0) < stale);
        if (!slice.length) continue;
        const r = await scrubTarget(this.deps.store, t, host, slice, { update: true, signal: this.signal, concurrency: 1 });
        for (const b of r.bad) this.deps.log.error(`scrub: ${b.path} on ${t.name}: [${b.class}] ${b.message}`, { path: b.path, target: t.name, class: b.class });
        if (r.error) this.deps.log.warn(`scrub: target ${t.name} could not be read: [${r.error.class}] ${r.error.message}`, { target: t.name });
        this.deps.log.debug(`scrub: ${t.name}: ${r.read} copies read (${r.bytes} bytes), ${r.bad.length} bad`);
        if (r.bad.length) this.deps.onBad();
      }
    } catch (err) {
      if (!this.signal.aborted) this.deps.log.warn(`scrub failed: ${messageOf(err)}`);
    }
  }
}
