import PQueue from 'p-queue';
import { TargetError, opOrigin, toTargetError } from '../errors.js';
import { type Target, hasLinks } from '../targets/target.js';

/** One stored copy to check: a file against its settled hash, or a symlink against its link text. */
export interface CopyToVerify {
  /** target-relative path */
  rel: string;
  /** the settled hash (files) */
  hash?: string;
  /** the link text (symlinks) */
  link?: string;
  /** the symlink could not be recreated (a directory is in the way): it is recorded in the store only */
  linkInStoreOnly?: boolean;
}

/**
 * Read a batch of copies back from the target and compare each with what the store says it must hold: the
 * one verification step, used right after copying (and by `replica verify` and the scrub). Resolves, per
 * rel, `undefined` when the copy is right, or the TargetError saying why not (`mismatch`, `missing`, or the
 * target's own class: a target-wide one means the target failed as a whole). A rel missing from the result
 * was not read (the target failed first, or the run was aborted). Never throws for a file.
 */
export async function verifyCopies(target: Target, copies: CopyToVerify[], opts: { signal?: AbortSignal; concurrency?: number } = {}): Promise<Map<string, TargetError | undefined>> {
  const out = new Map<string, TargetError | undefined>();
  const files = copies.filter((c) => c.link === undefined);
  const links = copies.filter((c) => c.link !== undefined);
  if (files.length) {
    let read: Map<string, string | TargetError>;
    try {
      read = await target.readBack(files.map((c) => c.rel), { signal: opts.signal, concurrency: opts.concurrency });
    } catch (err) {
      const e = toTargetError(err, target.name, opOrigin(target.name, 'verify', `${files.length} files`));
      for (const c of files) out.set(c.rel, e);
      read = new Map();
    }
    for (const c of files) {
      const h = read.get(c.rel);
      if (h === undefined) continue;
      out.set(c.rel, h instanceof TargetError ? h : h === c.hash ? undefined
        : new TargetError(`${opOrigin(target.name, 'read-back of', c.rel)} hashes to ${h}, expected ${c.hash}`, { target: target.name, errorClass: 'mismatch' }));
    }
  }
  const queue = new PQueue({ concurrency: Math.max(1, opts.concurrency ?? 2) });
  await Promise.all(links.map((c) => queue.add(async () => {
    if (opts.signal?.aborted) return;
    try {
      const text = hasLinks(target) && !c.linkInStoreOnly ? await target.readLink(c.rel) : c.link;
      out.set(c.rel, text === c.link ? undefined
        : new TargetError(`${opOrigin(target.name, 'symlink', c.rel)} reads back as ${JSON.stringify(text)}, expected ${JSON.stringify(c.link)}`, { target: target.name, errorClass: text === undefined ? 'missing' : 'mismatch' }));
    } catch (err) {
      out.set(c.rel, toTargetError(err, target.name, opOrigin(target.name, 'verify', c.rel)));
    }
  })));
  return out;
}
