/**
 * Set by scripts/bundle.mjs (esbuild `define`) in the CLI's bundle; absent in dist/lib, which the tests import.
 */
declare const REPLICA_BUNDLE: boolean | undefined;

/**
 * The entry of worker thread `name` beside the module at `base` (its import.meta.url). In the bundle each worker
 * thread is one CommonJS file (`<name>.cjs`): a thread started on an ES module first sets up Node's ESM loader,
 * and two threads were ready ~25 ms later and used ~40 ms more CPU than on CommonJS files (an empty module each);
 * a restore of 10k x 4 KiB took 0.955x the wall time with them (12 pairs). In dist/lib (tsc's output) it is the
 * ES module `<name>.js`.
 */
export function workerEntry(name: string, base: string): URL {
  return new URL(`./${name}${typeof REPLICA_BUNDLE === 'undefined' ? '.js' : '.cjs'}`, base);
}
