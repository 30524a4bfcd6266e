import micromatch from 'micromatch';
import type { MarkerConfig } from '../config/schema.js';
import { hashBytes } from '../hash/xxh64.js';
import type { MarkerState, Rec } from '../store/model.js';
import { isDeleted, isSettled, isVerifiedOn, verifiedAtOn } from '../store/records.js';
import { manifestLine, sortByPathBytes, targetPath } from '../targets/layout.js';

/**
 * Completeness markers (SupRsync's `<ts>_<archive>_<timecode>_finalized.yaml`, Hadoop's `_SUCCESS`, with a
 * manifest hash): a directory selected by a `markers` entry is complete when a newer sibling selected by the
 * same entry exists (names compared with numbers as numbers: timecode and date directories) or nothing under
 * it changed for `completeAfter`. Once complete and every settled file under it is verified on a target, the
 * marker JSON is written into the directory's copy there, last and atomically; a late file makes it stale
 * and it is written again once that file is verified. Everything here is computed from the store, so
 * `status` and the monitor (which read only stores) see the same directories as the pass that writes them.
 */

/** A directory a marker entry selects, with what the store knows under it. */
export interface MarkerDir {
  /** absolute path of the directory */
  dir: string;
  marker: MarkerConfig;
  /** the settled regular files under it, not deleted at the source (removed by deleteLocalAfter still count) */
  files: [string, Rec][];
  /** when it became complete (epoch ms); undefined while it is not */
  completeAt?: number;
}

interface Group { dir: string; marker: number; files: [string, Rec][]; firstSeen: number; lastChange: number; changing: boolean }

/** Collects, record by record, the directories the `markers` entries select (one pass over the store serves `status` too). */
export class MarkerScan {
  private readonly tests: ((rel: string) => boolean)[];
  private readonly groups = new Map<string, Group>();

  constructor(private readonly markers: MarkerConfig[]) {
    this.tests = markers.map((m) => micromatch.matcher(m.dirs, { dot: true }));
  }

  add(p: string, r: Rec): void {
    for (const [i, m] of this.markers.entries()) {
      if (!p.startsWith(m.source === '/' ? '/' : `${m.source}/`)) continue;
      const segs = p.slice(m.source.length + 1).split('/');
      for (let k = 1; k < segs.length; k++) {
        const rel = segs.slice(0, k).join('/');
        if (!this.tests[i](rel)) continue;
        const dir = `${m.source === '/' ? '' : m.source}/${rel}`;
        let g = this.groups.get(`${i}\0${dir}`);
        if (!g) this.groups.set(`${i}\0${dir}`, g = { dir, marker: i, files: [], firstSeen: Infinity, lastChange: 0, changing: false });
        g.firstSeen = Math.min(g.firstSeen, r.f);
        g.lastChange = Math.max(g.lastChange, r.f, r.s ?? 0, r.d ?? 0);
        if (!isSettled(r)) g.changing = true;
        else if (!isDeleted(r) && r.l === undefined && r.h !== undefined && segs.at(-1) !== m.name) g.files.push([p, r]);
      }
    }
  }

  /** The selected directories holding files, with when each became complete (if it has by `now`). */
  dirs(now: number): MarkerDir[] {
    const byParent = new Map<string, Group[]>();
    for (const g of this.groups.values()) {
      const key = `${g.marker}\0${g.dir.slice(0, g.dir.lastIndexOf('/'))}`;
      byParent.set(key, [...(byParent.get(key) ?? []), g]);
    }
    const out: MarkerDir[] = [];
    for (const sibs of byParent.values()) {
      sibs.sort((a, b) => a.dir.localeCompare(b.dir, 'en', { numeric: true }));
      // when a newer sibling first appeared: the earliest among those after each one
      let newerSince = Infinity;
      for (let j = sibs.length - 1; j >= 0; j--) {
        const g = sibs[j];
        const m = this.markers[g.marker];
        const quietAt = g.changing ? Infinity : g.lastChange + m.completeAfterMs;
        const at = Math.min(newerSince, quietAt);
        if (g.files.length) out.push({ dir: g.dir, marker: m, files: g.files, ...(at <= now ? { completeAt: at } : {}) });
        newerSince = Math.min(newerSince, g.firstSeen);
      }
    }
    return out.sort((a, b) => (a.dir < b.dir ? -1 : a.dir > b.dir ? 1 : 0));
  }
}

/**
 * The marker a complete directory gets on `target` (`manifestXxh64`: its manifestHash, the same on every
 * target): its JSON and what the store records of it.
 */
export function markerFor(host: string, d: MarkerDir, manifestXxh64: string, target: string, agentVersion: string, now: number): { json: string; state: MarkerState } {
  const bytes = d.files.reduce((n, [, r]) => n + r.z, 0);
  const verifiedAt = d.files.reduce((v, [, r]) => Math.max(v, verifiedAtOn(r, target) ?? 0), 0);
  const json = {
    host, dir: d.dir, files: d.files.length, bytes, manifestXxh64, completeAt: new Date(d.completeAt ?? now).toISOString(),
    verifiedAt: new Date(verifiedAt).toISOString(), agentVersion, writtenAt: new Date(now).toISOString(),
  };
  return { json: `${JSON.stringify(json, null, 2)}\n`, state: { files: d.files.length, bytes, manifestXxh64, writtenAt: json.writtenAt } };
}

/** xxh64 of the directory's manifest lines (as `replica manifest` prints them: sorted, one `\n` after each). */
export function manifestHash(host: string, d: MarkerDir): string {
  const rows = sortByPathBytes(d.files.map(([p, r]) => ({ rel: targetPath(host, p), h: r.h! })), (f) => f.rel);
  return hashBytes(Buffer.from(rows.map((f) => `${manifestLine(f.h, f.rel)}\n`).join('')));
}

/** Is every settled file under the directory verified on `target` (the marker may be written there)? */
export const allVerifiedOn = (d: MarkerDir, target: string): boolean => d.files.every(([, r]) => isVerifiedOn(r, target));

/**
 * The complete directories whose marker is missing or stale on one of `targets` (per `written`, the markers the
 * store records), with those targets: what `status` and the monitor list.
 */
export function unmarked(host: string, dirs: MarkerDir[], targets: string[], written: Record<string, Record<string, MarkerState>>): { dir: string; completeAt: string; targets: string[] }[] {
  const out: { dir: string; completeAt: string; targets: string[] }[] = [];
  for (const d of dirs) {
    if (d.completeAt === undefined) continue;
    const h = manifestHash(host, d);
    const missing = targets.filter((t) => written[d.dir]?.[t]?.manifestXxh64 !== h);
    if (missing.length) out.push({ dir: d.dir, completeAt: new Date(d.completeAt).toISOString(), targets: missing });
  }
  return out;
}
