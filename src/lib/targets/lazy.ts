import { CONTRACT_METHODS, type Target } from './target.js';

/**
 * A target whose implementation module is imported on its first call: the S3 SDK and ssh2 take ~0.3 s to
 * import, which every command paid even when it never reached those targets (`status`, the monitor, a
 * restore from a local target). The stand-in has exactly the methods `methods` lists, so the capability
 * checks (`hasRandomRead`...) see what the kind offers; the kind's tests check that list against its class.
 * `close()` before any call closes nothing.
 */
export function lazyTarget(name: string, load: () => Promise<Target>, methods: readonly string[]): Target {
  let loaded: Promise<Target> | undefined;
  const impl = () => (loaded ??= load());
  const call = async (m: string, args: unknown[]) => ((await impl()) as unknown as Record<string, (...a: unknown[]) => unknown>)[m](...args);
  const t: Record<string, unknown> = { name };
  for (const m of methods) {
    if (m === 'close') t.close = async () => { if (loaded) await (await loaded).close(); };
    else if (m === 'list') t.list = async function* (...args: unknown[]) { yield* (await call('list', args)) as AsyncIterable<string>; };
    else t[m] = (...args: unknown[]) => call(m, args);
  }
  return t as unknown as Target;
}

/** The contract methods (target.ts CONTRACT_METHODS) an object offers: what a kind's `methods` list must equal. */
export function contractMethodsOf(o: object): string[] {
  return CONTRACT_METHODS.filter((m) => typeof (o as Record<string, unknown>)[m] === 'function').sort();
}
