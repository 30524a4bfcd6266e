import path from 'node:path';
import micromatch from 'micromatch';
import { UsageError, messageOf } from '../errors.js';
import type { TargetConfig } from '../config/schema.js';
import { type FileRecord, toFileRecord, type TargetState } from '../store/model.js';
import { targetPath, versionStamp } from '../targets/layout.js';
import { hasVersions } from '../targets/target.js';
import { MemberIndex, locationOf } from '../targets/tapeCatalog.js';
import { type Context, createTargets, openStoreReadOnly, sortByPathBytes } from './context.js';

export interface WhereIs {
  path: string;
  hash: string;
  size: number;
  kind: 'file' | 'symlink';
  deletedAt?: string;
  /** deleteLocalAfter removed the source then (its copies are the file now) */
  removedLocallyAt?: string;
  /** previous contents the store remembers (restore --at reads them from the versions) */
  previousContents?: FileRecord['previousContents'];
  targets: Record<string, { state: TargetState['state']; location: string; verifiedAt?: string; versions?: string[]; versionsError?: string }>;
}

/** Where a target-relative path is, as a person would reach it: a local path, or the target's URL and the path. */
export const locationOn = (t: TargetConfig, rel: string): string => (t.path ? path.join(t.path, rel) : `${t.url.replace(/\/+$/, '')}/${rel}`);

/** A tape target's copy: `tape://<label>/<tape file number>/<member>` of its newest confirmed member with the hash. */
function tapeLocation(tapes: Map<string, MemberIndex>, t: TargetConfig, rel: string, hash: string): string {
  const found = tapes.get(t.name)?.find(rel, ['confirmed'], hash);
  return found ? locationOf(found.file, rel) : `${t.url} (not on a tape yet)`;
}

/** Does the record path `p` match `arg`: a bare name (no `/`) anywhere, a glob, or a path (relative to the cwd)? */
export function matcher(arg: string): (p: string) => boolean {
  // Each glob is compiled once here: micromatch.isMatch compiles its pattern again at every call, ~40 us, which
  // was 0.4 s of a `verify GLOB` over 10k records.
  if (!arg.includes('/')) {
    const name = micromatch.matcher(arg, { dot: true });
    return (p) => name(path.basename(p));
  }
  const abs = path.resolve(arg);
  if (micromatch.scan(arg).isGlob) return micromatch.matcher(abs, { dot: true });
  const under = abs === '/' ? '/' : `${abs}/`;
  return (p) => p === abs || p.startsWith(under);
}

/**
 * `replica where-is PATH|GLOB|NAME...`: for each file the store knows that matches, its hash and size, and per
 * target its state, where the copy is, when it was verified and the versions kept there (asked of the
 * target). Returns the matches; throws UsageError for no argument. Nothing is written.
 */
export async function whereIsCommand(ctx: Context, args: string[]): Promise<{ found: WhereIs[]; unmatched: string[] }> {
  if (!args.length) throw new UsageError('replica where-is: give at least one PATH, GLOB or NAME');
  const { config } = ctx;
  const store = await openStoreReadOnly(ctx);
  const tests = args.map((a) => ({ arg: a, test: matcher(a), hit: false }));
  const tapes = new Map(Object.entries(store.meta.tape ?? {}).map(([name, c]) => [name, new MemberIndex(() => c)]));
  let found: WhereIs[] = [];
  for (const [p, r] of store.entries()) {
    const hits = tests.filter((t) => t.test(p));
    if (!hits.length) continue;
    for (const h of hits) h.hit = true;
    const fr = toFileRecord(p, r);
    const rel = targetPath(config.host, p);
    found.push({
      path: p, hash: fr.hash, size: fr.size, kind: fr.kind, ...(fr.deletedAt ? { deletedAt: fr.deletedAt } : {}),
      ...(fr.removedLocallyAt ? { removedLocallyAt: fr.removedLocallyAt } : {}),
      ...(fr.previousContents ? { previousContents: fr.previousContents } : {}),
      targets: Object.fromEntries(config.targets.map((t) => [t.name, {
        state: fr.targets[t.name]?.state ?? 'pending', location: t.kind === 'tape' ? tapeLocation(tapes, t, rel, fr.hash) : locationOn(t, rel),
        ...(fr.targets[t.name]?.verifiedAt ? { verifiedAt: fr.targets[t.name].verifiedAt } : {}),
      }])),
    });
  }
  found = sortByPathBytes(found, (f) => f.path);
  if (found.length) await addVersions(ctx, found);
  const unmatched = tests.filter((t) => !t.hit).map((t) => t.arg);
  if (ctx.opts.json) ctx.out.write(`${JSON.stringify(found, null, 2)}\n`);
  else print(ctx, found, unmatched);
  return { found, unmatched };
}

/** Ask each target that keeps versions which it holds for each match (a target that cannot answer says why). */
async function addVersions(ctx: Context, found: WhereIs[]): Promise<void> {
  const targets = createTargets(ctx.config, ctx.log);
  try {
    for (const t of targets) {
      if (!hasVersions(t)) continue;
      for (const f of found) {
        const entry = f.targets[t.name];
        try {
          entry.versions = (await t.listVersions(targetPath(ctx.config.host, f.path))).map(versionStamp);
        } catch (err) {
          entry.versionsError = messageOf(err);
        }
      }
    }
  } finally {
    await Promise.allSettled(targets.map((t) => t.close()));
  }
}

function print(ctx: Context, found: WhereIs[], unmatched: string[]): void {
  const w = (l: string) => ctx.out.write(`${l}\n`);
  for (const f of found) {
    w(`${f.path}  ${f.kind === 'symlink' ? 'symlink' : `${f.hash || '(not hashed yet)'}  ${f.size} bytes`}${f.deletedAt ? `  deleted at source ${f.deletedAt}` : ''}${f.removedLocallyAt ? `  removed from the source by deleteLocalAfter ${f.removedLocallyAt}` : ''}`);
    for (const c of f.previousContents ?? []) w(`  previous content ${c.hash}  current ${c.since} .. ${c.until}`);
    for (const [name, t] of Object.entries(f.targets)) {
      const versions = t.versions?.length ? `  versions: ${t.versions.join(', ')}` : t.versionsError ? `  versions: unknown (${t.versionsError})` : '';
      w(`  ${name}  ${t.state}${t.verifiedAt ? ` ${t.verifiedAt}` : ''}  ${t.location}${versions}`);
    }
  }
  for (const u of unmatched) ctx.log.warn(`where-is: nothing known matches ${u}`);
}
