import { setMaxListeners } from 'node:events';
import { MAX_TIMER_MS } from './timers.js';

/**
 * A caller's signal that many calls listen to at once (a pass's puts, each under its deadline: one listener
 * each while it runs, removed when it ends). Past 10 listeners Node prints "MaxListenersExceededWarning:
 * Possible EventTarget memory leak detected" on stderr (a first backup of 100k files did, into cron's mail):
 * not a leak here, so the signal takes any number.
 */
function shared(signal: AbortSignal): void {
  setMaxListeners(0, signal);
}

/**
 * `p`, with a handler from the start: for work asked ahead of the await that takes its result (a read ahead).
 * One that fails before then (EIO) is thrown where it is awaited, instead of being an unhandled rejection,
 * which ends the process (or the worker thread, with every job it holds).
 */
export function handled<T>(p: Promise<T>): Promise<T> {
  p.catch(() => undefined);
  return p;
}

/**
 * Settle `p` early when `signal` aborts, with the signal's reason (the underlying work is left to finish and
 * its result ignored): for work that cannot be cancelled, or a callee that may ignore its signal.
 */
export function raceSignal<T>(p: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) {
    p.catch(() => undefined);
    return Promise.reject(signal.reason);
  }
  shared(signal);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/**
 * Run `fn` with a signal that aborts when `parent` aborts or after `ms` (reason: `timeoutReason()`, by
 * default a TimeoutError), and settle as soon as that signal aborts, even if `fn` ignores it: a hung target
 * must fail by its timeout. Unlike AbortSignal.timeout, the timer keeps the process alive while `fn` runs
 * (the event loop must not drain under a hung call), and it is cleared as soon as the call settles.
 */
export async function withDeadline<T>(ms: number, parent: AbortSignal | undefined, fn: (signal: AbortSignal) => Promise<T>,
  timeoutReason: () => unknown = () => new DOMException(`timed out after ${ms} ms`, 'TimeoutError')): Promise<T> {
  const ac = new AbortController();
  // capped: a longer deadline would overflow Node's timer and fire at once; 24.8 days is "never" for one call
  const timer = setTimeout(() => ac.abort(timeoutReason()), Math.min(ms, MAX_TIMER_MS));
  const onAbort = () => ac.abort(parent!.reason);
  if (parent) shared(parent);
  parent?.addEventListener('abort', onAbort, { once: true });
  if (parent?.aborted) onAbort();
  try {
    return await raceSignal(ac.signal.aborted ? Promise.reject(ac.signal.reason) : fn(ac.signal), ac.signal);
  } finally {
    clearTimeout(timer);
    parent?.removeEventListener('abort', onAbort);
  }
}
