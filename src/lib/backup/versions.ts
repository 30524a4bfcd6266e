import { byVersionAge, targetPath, versionPath } from '../targets/layout.js';
import type { Versions } from '../targets/target.js';

/**
 * Before a verified copy of `p` on `target` is replaced by new content: keep it aside as
 * `<host>/.replica-versions/<abs path>@<now as UTC stamp>` (`-1`, `-2`... when that second is taken). The live
 * copy stays until the new content replaces it. Returns the version's path, or undefined when nothing was there
 * to keep (the copy was removed by hand). Throws TargetError: the copy must then not be replaced.
 */
export async function keepPreviousVersion(target: Versions, host: string, p: string, now = new Date()): Promise<string | undefined> {
  const rel = targetPath(host, p);
  const versions = await target.listVersions(rel);
  let name = versionPath(host, p, now);
  for (let clash = 1; versions.includes(name); clash++) name = versionPath(host, p, now, clash);
  return (await target.keepAside(rel, name)) ? name : undefined;
}

/** Delete all but the `keep` newest versions of `p` (after its new content is in place). Returns how many went. */
export async function pruneVersions(target: Versions, host: string, p: string, keep: number): Promise<number> {
  const versions = (await target.listVersions(targetPath(host, p))).sort(byVersionAge);
  const old = versions.slice(0, Math.max(0, versions.length - keep));
  for (const v of old) await target.removeVersion(v);
  return old.length;
}
