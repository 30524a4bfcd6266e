import { TargetError } from '../errors.js';
import { exists } from '../scan/sourceFs.js';
import { isCurrent, isDeleted, isSettled, isVerifiedOn, markVerified } from '../store/records.js';
import type { Store } from '../store/store.js';
import { targetPath } from '../targets/layout.js';
import { type RandomRead, type Target, hasRandomRead, hasVersions } from '../targets/target.js';

/**
 * `replica adopt`: enrol an existing per-host backup (MagAO-X's inventory populated "in reverse"). Walk
 * `<base>/<from host>/` on one target and match each copy there with the store (after a scan and hash of the
 * sources): a copy whose bytes hash to the settled source hash is marked verified there without copying; a
 * different one stays pending (the next pass replaces it, keeping it as a version when `versions > 0`); a copy
 * whose source no longer exists becomes a deleted-at-source record, verified there, so `where-is` and `restore`
 * find it. Hashes come from where the copies are where the kind can: worker threads on a local disk, one
 * `xxhsum` per batch on an ssh server, the stored `xxh64` metadata on S3; only the rest is read back.
 */

export interface AdoptResult {
  target: string;
  /** the directory walked: `<host>/` on the target */
  from: string;
  dryRun: boolean;
  /** copies found under it */
  listed: number;
  /** equal to the settled source: verified there now (no byte copied) */
  adopted: { files: number; bytes: number };
  /** verified there already (an earlier adopt or run) */
  alreadyVerified: number;
  /** different from the settled source: pending (the next pass copies the source over them, keeping them as a version) */
  differing: string[];
  /** no source file any more: recorded as deleted at the source, verified there */
  orphaned: string[];
  /** the source file is still changing (not settled): left for the next pass */
  notSettled: string[];
  /** the source exists but is not backed up (excluded, outside every source, a symlink): left alone */
  notBackedUp: string[];
  /** `--host` other than this host: the copy is already at this host's path too (left for the next pass to check) */
  occupied: string[];
  /** copies that could not be hashed */
  unreadable: { path: string; message: string }[];
  /** hashes taken from the xxh64 the target stored beside the copy (S3 metadata written by replica): no read at all */
  fromMetadata: number;
}

export interface AdoptEnv {
  store: Store;
  target: Target;
  /** this machine's host name (where its copies go) and the one whose directory is walked */
  host: string;
  fromHost: string;
  dryRun: boolean;
  /** file names replica writes itself on targets (completeness markers): never adopted */
  skipNames?: string[];
  signal?: AbortSignal;
  /** called as copies are listed and hashed (progress) */
  onProgress?: (r: AdoptResult, hashed: number) => void;
}

const BATCH = 256;

export async function adopt(env: AdoptEnv): Promise<AdoptResult> {
  const { store, target: t, host, fromHost } = env;
  if (!hasRandomRead(t)) throw new TargetError(`target ${t.name} cannot list its copies: adopt needs a kind with random access`, { target: t.name, errorClass: 'other', permanent: true });
  const relink = fromHost !== host;
  if (relink && !hasVersions(t)) throw new TargetError(`target ${t.name} cannot link or copy server-side: adopt --host other than this host needs a kind that can`, { target: t.name, errorClass: 'other', permanent: true });
  const res: AdoptResult = {
    target: t.name, from: `${fromHost}/`, dryRun: env.dryRun, listed: 0, adopted: { files: 0, bytes: 0 }, alreadyVerified: 0,
    differing: [], orphaned: [], notSettled: [], notBackedUp: [], occupied: [], unreadable: [], fromMetadata: 0,
  };
  let hashed = 0;
  let batch: string[] = [];
  const flush = async () => {
    const todo = batch;
    batch = [];
    const sized = await statAll(t, todo);
    const hashes = new Map<string, string>();
    for (const [rel, st] of sized) if (st.hash) { hashes.set(rel, st.hash); res.fromMetadata++; }
    // hashed where the copies are when the kind can (local worker threads, one xxhsum on the ssh server), else read back
    const rest = todo.filter((rel) => sized.has(rel) && !hashes.has(rel));
    if (rest.length) {
      for (const [rel, h] of await t.readBack(rest, { signal: env.signal, always: true })) {
        if (typeof h === 'string') hashes.set(rel, h);
        else res.unreadable.push({ path: pathOf(rel), message: h.message });
      }
    }
    for (const rel of todo) {
      const st = sized.get(rel);
      if (!st) { res.unreadable.push({ path: pathOf(rel), message: 'gone while adopting' }); continue; }
      const h = hashes.get(rel);
      if (h === undefined) continue;
      hashed++;
      await apply(rel, h, st);
    }
    env.onProgress?.(res, hashed);
  };
  const pathOf = (rel: string) => rel.slice(fromHost.length);

  /** Record what the copy at `rel` (hash `h`) is to the store. */
  const apply = async (rel: string, h: string, st: { size: number; mtimeMs?: number }) => {
    const p = pathOf(rel);
    let r = store.get(p);
    if (r && isCurrent(r)) {
      if (h !== r.h) {
        res.differing.push(p);
        if (!env.dryRun && !relink) { // the copy there is kept as a version before the source's content replaces it
          r.p = [...new Set([...(r.p ?? []), t.name])];
          store.set(p, r);
        }
        return;
      }
      if (!(await placed(rel, p))) return;
      res.adopted.files++;
      res.adopted.bytes += r.z;
      if (!env.dryRun) { markVerified(r, t.name, Date.now(), Date.now()); store.set(p, r); }
      return;
    }
    if (r && isDeleted(r) && r.h !== undefined && r.h !== h) { res.differing.push(p); return; } // another content than the store remembers
    if (!(await placed(rel, p))) return;
    res.orphaned.push(p);
    if (env.dryRun) return;
    const now = Date.now();
    r ??= { z: st.size, m: st.mtimeMs ?? now, f: now, s: now, h, d: now, t: {} };
    markVerified(r, t.name, now, now);
    store.set(p, r);
  };

  /** With `--host` another host, make the copy appear at this host's path too (hard link, server-side copy). */
  const placed = async (rel: string, p: string): Promise<boolean> => {
    if (!relink) return true;
    const mine = targetPath(host, p);
    if (await (t as Target & RandomRead).stat(mine)) { res.occupied.push(p); return false; }
    if (!env.dryRun && hasVersions(t)) await t.keepAside(rel, mine);
    return true;
  };

  for await (const rel of t.list(fromHost)) {
    if (env.signal?.aborted) break;
    if (env.skipNames?.includes(rel.slice(rel.lastIndexOf('/') + 1))) continue;
    res.listed++;
    const p = pathOf(rel);
    const r = store.get(p);
    if (r && isSettled(r) && isVerifiedOn(r, t.name)) { res.alreadyVerified++; continue; }
    if (r && !isSettled(r)) { res.notSettled.push(p); continue; }
    if (r?.l !== undefined || (!r && exists(p))) { res.notBackedUp.push(p); continue; }
    batch.push(rel);
    if (batch.length >= BATCH) await flush();
  }
  if (batch.length) await flush();
  env.onProgress?.(res, hashed);
  for (const k of ['differing', 'orphaned', 'notSettled', 'notBackedUp', 'occupied'] as const) res[k].sort();
  return res;
}

/** stat each copy (size, and the hash S3 keeps); those gone are left out. */
async function statAll(t: Target & RandomRead, rels: string[]): Promise<Map<string, { size: number; mtimeMs?: number; hash?: string }>> {
  const out = new Map<string, { size: number; mtimeMs?: number; hash?: string }>();
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < rels.length; i = next++) {
      const st = await t.stat(rels[i]);
      if (st) out.set(rels[i], st);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  return out;
}
