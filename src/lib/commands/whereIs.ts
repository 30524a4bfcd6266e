import path from 'node:path';
import micromatch from 'micromatch';
import { UsageError, messageOf } from '../errors.js';
import type { TargetConfig } from '../config/schema.js';
import { type FileRecord, type Rec, toFileRecord, type TargetState } from '../store/model.js';
import { targetPath, versionStamp } from '../targets/layout.js';
import { hasVersions } from '../targets/target.js';
import { MemberIndex, locationOf } from '../targets/tapeCatalog.js';
import { type Context, buffered, createTargets, jsonArray, openStoreReadOnly, sortByPathBytes } from './context.js';

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

/** where-is asks the targets for the versions of this many matches at once. */
const VERSIONS_AHEAD = 32;

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
 * target). Nothing is written. Each match is described and printed in turn (text, or one element of the JSON
 * array), so a glob that matches a million records holds their records, not a million descriptions and one
 * string of all of them (V8's longest string is 537M characters). Returns how many matched and the arguments that
 * matched nothing; throws UsageError for no argument.
 */
export async function whereIsCommand(ctx: Context, args: string[]): Promise<{ count: number; unmatched: string[] }> {
  if (!args.length) throw new UsageError('replica where-is: give at least one PATH, GLOB or NAME');
  const { config } = ctx;
  const store = await openStoreReadOnly(ctx);
  const tests = args.map((a) => ({ arg: a, test: matcher(a), hit: false }));
  const tapes = new Map(Object.entries(store.meta.tape ?? {}).map(([name, c]) => [name, new MemberIndex(() => c)]));
  let matched: [string, Rec][] = [];
  for (const e of store.entries()) {
    let hit = false;
    for (const t of tests) if (t.test(e[0])) { t.hit = true; hit = true; }
    if (hit) matched.push(e);
  }
  matched = sortByPathBytes(matched, (e) => e[0]);
  const unmatched = tests.filter((t) => !t.hit).map((t) => t.arg);
  const describe = (p: string, r: Rec): WhereIs => {
    const fr = toFileRecord(p, r);
    const rel = targetPath(config.host, p);
    return {
      path: p, hash: fr.hash, size: fr.size, kind: fr.kind, ...(fr.deletedAt ? { deletedAt: fr.deletedAt } : {}),
      ...(fr.removedLocallyAt ? { removedLocallyAt: fr.removedLocallyAt } : {}),
      ...(fr.previousContents ? { previousContents: fr.previousContents } : {}),
      targets: Object.fromEntries(config.targets.map((t) => [t.name, {
        state: fr.targets[t.name]?.state ?? 'pending', location: t.kind === 'tape' ? tapeLocation(tapes, t, rel, fr.hash) : locationOn(t, rel),
        ...(fr.targets[t.name]?.verifiedAt ? { verifiedAt: fr.targets[t.name].verifiedAt } : {}),
      }])),
    };
  };
  const out = buffered(ctx.out);
  const json = ctx.opts.json ? jsonArray(ctx.out) : undefined;
  // the targets that keep versions are asked which they hold, per match
  const targets = matched.length ? createTargets(config, ctx.log) : [];
  try {
    const versioned = targets.filter(hasVersions);
    // the versions of VERSIONS_AHEAD matches are asked for at once (a listing is a round trip or more on ssh
    // and S3), and the matches are printed in order as their answers come
    const ask = async (i: number): Promise<WhereIs> => {
      const w = describe(...matched[i]);
      await Promise.all(versioned.map(async (t) => {
        const entry = w.targets[t.name];
        try {
          entry.versions = (await t.listVersions(targetPath(config.host, w.path))).map(versionStamp);
        } catch (err) {
          entry.versionsError = messageOf(err);
        }
      }));
      return w;
    };
    const asked: (Promise<WhereIs> | undefined)[] = [];
    for (let i = 0; i < matched.length; i++) {
      while (asked.length < Math.min(i + VERSIONS_AHEAD, matched.length)) {
        const next = ask(asked.length);
        next.catch(() => undefined); // its error is thrown where it is awaited, never left unhandled by an early exit
        asked.push(next);
      }
      const w = await asked[i]!;
      asked[i] = undefined;
      if (json) json.add(w);
      else print(out, w);
    }
    json?.end();
    out.flush();
  } finally {
    await Promise.allSettled(targets.map((t) => t.close()));
  }
  for (const u of unmatched) ctx.log.warn(`where-is: nothing known matches ${u}`);
  return { count: matched.length, unmatched };
}

function print(out: { write(s: string): void }, f: WhereIs): void {
  const w = (l: string) => out.write(`${l}\n`);
  w(`${f.path}  ${f.kind === 'symlink' ? 'symlink' : `${f.hash || '(not hashed yet)'}  ${f.size} bytes`}${f.deletedAt ? `  deleted at source ${f.deletedAt}` : ''}${f.removedLocallyAt ? `  removed from the source by deleteLocalAfter ${f.removedLocallyAt}` : ''}`);
  for (const c of f.previousContents ?? []) w(`  previous content ${c.hash}  current ${c.since} .. ${c.until}`);
  for (const [name, t] of Object.entries(f.targets)) {
    const versions = t.versions?.length ? `  versions: ${t.versions.join(', ')}` : t.versionsError ? `  versions: unknown (${t.versionsError})` : '';
    w(`  ${name}  ${t.state}${t.verifiedAt ? ` ${t.verifiedAt}` : ''}  ${t.location}${versions}`);
  }
}
