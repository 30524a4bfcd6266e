/**
 * Run `fn` with a signal that aborts when `parent` aborts or after `ms` (reason: a TimeoutError).
 * Unlike AbortSignal.timeout, the timer keeps the process alive while `fn` runs (a hung target must fail by
 * its timeout, not let the event loop drain), and it is cleared as soon as `fn` settles.
 */
export async function withDeadline<T>(ms: number, parent: AbortSignal | undefined, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(new DOMException(`timed out after ${ms} ms`, 'TimeoutError')), ms);
  const onAbort = () => ac.abort(parent!.reason);
  parent?.addEventListener('abort', onAbort, { once: true });
  if (parent?.aborted) onAbort();
  try {
    return await fn(ac.signal);
  } finally {
    clearTimeout(timer);
    parent?.removeEventListener('abort', onAbort);
  }
}
