import type { Store } from '../store/store.js';
import type { ArchiveBatching } from '../targets/kind.js';
import { type Target, hasArchive } from '../targets/target.js';
import { emptyCatalog } from '../targets/tapeCatalog.js';

/**
 * Give each tape target its catalog, kept in the store (`meta.tape.<name>`, in its own store file) and saved at
 * once whenever the target records a step (a tape file is recorded as being written before its first byte).
 */
export function attachCatalogs(store: Store, targets: Target[], host: string): void {
  for (const t of targets) {
    if (!hasArchive(t)) continue;
    const tape = (store.meta.tape ??= {});
    t.attachCatalog({ host, catalog: (tape[t.name] ??= emptyCatalog()), save: () => store.saveCatalog(t.name) });
  }
}


/**
 * The due paths (in the order they will be written) an archive target writes now: cut into tape files that
 * close once they reach `volumeSize`; the last, smaller one too when `flush` (`run --flush`), when some due file
 * has waited `maxWaitMs` since it settled, or when one is `retried` (its copy failed there: a confirm or a scrub
 * found it bad, or its tape file was cut short by the end of the tape): a file never waits twice.
 */
export function archiveDue(paths: string[], f: { sizeOf: (p: string) => number; settledAt: (p: string) => number; retried: (p: string) => boolean },
  b: ArchiveBatching, now: number, flush: boolean): string[] {
  if (flush || paths.some((p) => now - f.settledAt(p) >= b.maxWaitMs || f.retried(p))) return paths;
  let cut = 0;
  for (let i = 0, bytes = 0; i < paths.length; i++) {
    bytes += f.sizeOf(paths[i]);
    if (bytes >= b.volumeSize) { cut = i + 1; bytes = 0; }
  }
  return paths.slice(0, cut);
}
