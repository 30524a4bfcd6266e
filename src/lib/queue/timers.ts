/** Node's timers hold at most 2^31-1 ms (~24.8 days); a longer delay fires after 1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A timer that can be cleared. */
export interface LongTimer { clear(): void }

/**
 * setTimeout for any delay: a delay longer than Node allows is waited in chained steps, never cut short
 * (`rescan: "30d"` must not fire at once). `unref` as for setTimeout.
 */
export function setLongTimeout(fn: () => void, ms: number, opts: { unref?: boolean } = {}): LongTimer {
  let timer: NodeJS.Timeout;
  const due = Date.now() + ms;
  const step = () => {
    const left = due - Date.now();
    if (left > MAX_TIMER_MS) timer = setTimeout(step, MAX_TIMER_MS);
    else timer = setTimeout(fn, Math.max(0, left));
    if (opts.unref) timer.unref();
  };
  if (ms > MAX_TIMER_MS) step();
  else {
    timer = setTimeout(fn, Math.max(0, ms));
    if (opts.unref) timer.unref();
  }
  return { clear: () => clearTimeout(timer) };
}

/** setInterval for any period (chained setLongTimeout); each run is scheduled after the previous one fired. */
export function setLongInterval(fn: () => void, ms: number): LongTimer {
  let current: LongTimer;
  let cleared = false;
  const tick = () => {
    if (cleared) return;
    current = setLongTimeout(tick, ms);
    fn();
  };
  current = setLongTimeout(tick, ms);
  return { clear: () => { cleared = true; current.clear(); } };
}
