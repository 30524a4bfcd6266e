import fs from 'node:fs';
import path from 'node:path';
import { StoreError, messageOf } from '../errors.js';
import { STORE_DIR_MODE, STORE_FILE_MODE, fsyncDir, makeDurable } from './atomicFile.js';

/** The store's shard directory and its snapshot directory, inside the store. */
export const FILES_DIR = 'files';
export const SNAP_DIR = 'snapshots';

/** Newest first: the snapshot directories of the store in `dir` that exist. */
export function snapshotDirs(dir: string): string[] {
  try {
    return fs.readdirSync(path.join(dir, SNAP_DIR)).filter((d) => !d.startsWith('.')).sort().reverse()
      .map((d) => path.join(dir, SNAP_DIR, d));
  } catch {
    return [];
  }
}

/**
 * Keep the current generation of the store in `dir` (its files `rels`) as a snapshot in
 * `snapshots/<UTC stamp>/`, and rotate to the newest `keep`. Snapshots never share an inode with the live
 * files (damage to a live file in place must not reach them): a file unchanged since the newest snapshot is
 * hard-linked from that snapshot, a changed one is copied, with an mtime in whole seconds later than its previous
 * snapshot copy's (so a shipped copy with the same size and second is the same file). `manifest.json` records
 * each live file's size and mtime at copy time. Returns the snapshot's directory; throws StoreError, leaving no half snapshot behind.
 */
export function takeSnapshot(dir: string, rels: string[], keep: number): string {
  const root = path.join(dir, SNAP_DIR);
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\.(\d+)Z$/, '$1Z');
  const tmp = path.join(root, `.tmp-${process.pid}-${stamp}`);
  const prev = snapshotDirs(dir)[0];
  let prevManifest: Record<string, [number, number]> = {};
  try { prevManifest = JSON.parse(fs.readFileSync(path.join(prev, 'manifest.json'), 'utf8')) as typeof prevManifest; } catch { /* none: copy all */ }
  try {
    return snapshotInto(dir, rels, keep, { tmp, root, stamp, prev, prevManifest });
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true }); // a full disk leaves no half snapshot behind
    throw new StoreError(`store: cannot snapshot ${dir}: ${messageOf(err)}`, { cause: err });
  }
}

function snapshotInto(dir: string, rels: string[], keep: number,
  { tmp, root, stamp, prev, prevManifest }: { tmp: string; root: string; stamp: string; prev?: string; prevManifest: Record<string, [number, number]> }): string {
  const manifest: Record<string, [number, number]> = {};
  const copied: string[] = [];
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(path.join(tmp, FILES_DIR), { recursive: true, mode: STORE_DIR_MODE });
  for (const rel of rels) {
    const live = path.join(dir, rel);
    const st = fs.statSync(live, { throwIfNoEntry: false });
    if (!st) continue;
    manifest[rel] = [st.size, st.mtimeMs];
    const old = prevManifest[rel];
    if (prev && old && old[0] === st.size && old[1] === st.mtimeMs) fs.linkSync(path.join(prev, rel), path.join(tmp, rel));
    else {
      fs.copyFileSync(live, path.join(tmp, rel));
      // whole seconds, and later than this file's previous snapshot copy by at least one: a target that keeps
      // mtimes in seconds (ssh) still tells every changed shard from the one shipped before (shipStore)
      const before = prev ? fs.statSync(path.join(prev, rel), { throwIfNoEntry: false }) : undefined;
      const m = Math.max(Math.floor(Date.now() / 1000), before ? Math.floor(before.mtimeMs / 1000) + 1 : 0);
      fs.utimesSync(path.join(tmp, rel), m, m);
      copied.push(path.join(tmp, rel));
    }
  }
  fs.writeFileSync(path.join(tmp, 'manifest.json'), JSON.stringify(manifest), { mode: STORE_FILE_MODE });
  makeDurable([...copied, path.join(tmp, 'manifest.json')]);
  fsyncDir(path.join(tmp, FILES_DIR));
  fsyncDir(tmp);
  let final = path.join(root, stamp);
  for (let n = 1; fs.existsSync(final); n++) final = path.join(root, `${stamp}-${n}`);
  fs.renameSync(tmp, final);
  fsyncDir(root);
  for (const old of snapshotDirs(dir).slice(keep)) fs.rmSync(old, { recursive: true, force: true });
  for (const d of fs.readdirSync(root)) if (d.startsWith('.tmp-')) fs.rmSync(path.join(root, d), { recursive: true, force: true });
  return final;
}
