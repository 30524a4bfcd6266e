import crypto from 'node:crypto';
import { TargetError } from '../errors.js';

/**
 * Where things live on every target, whatever its kind (paths relative to the target's base):
 * - a source file `/abs/path` of host `h`: `h/abs/path`;
 * - the host's shipped store: `.replica/h/`;
 * - previous versions of a file: `h/.replica-versions/abs/path@<UTC stamp>`;
 * - temp files: `.replica-<random>.tmp` beside the final name, short so a 255-byte file name still fits.
 * Names starting `.replica` at these places are reserved: never listed as user files.
 */

/** The copy of source file `p` (absolute) of `host`. */
export const targetPath = (host: string, p: string): string => `${host}${p}`;

/** The directory holding the shipped store of every host. */
export const STORE_DIR = '.replica';

/** The shipped store of `host`. */
export const storePath = (host: string): string => `${STORE_DIR}/${host}`;

/** The per-host directory of previous versions. */
export const VERSIONS_DIR = '.replica-versions';

/**
 * Where a previous version of source file `p` (absolute) of `host` goes, replaced at `at`:
 * `<host>/.replica-versions/<abs path>@<yyyymmddThhmmssZ>`; `clash` n > 0 (a second version in the same second)
 * appends `-n`.
 */
export function versionPath(host: string, p: string, at: Date, clash = 0): string {
  const stamp = at.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `${versionPrefix(targetPath(host, p))}${stamp}${clash > 0 ? `-${clash}` : ''}`;
}

/** The version paths of `rel` (`<host>/<abs path>`) start with this: `<host>/.replica-versions/<abs path>@`. */
export function versionPrefix(rel: string): string {
  const slash = rel.indexOf('/');
  return `${rel.slice(0, slash)}/${VERSIONS_DIR}${rel.slice(slash)}@`;
}

/**
 * The versions of `rel` in a listing of their directory: `listDir(dir)` gives the names in `dir` (a target-
 * relative directory), or undefined when it does not exist. Oldest first.
 */
export async function versionsIn(rel: string, listDir: (dir: string) => Promise<string[] | undefined>): Promise<string[]> {
  const pre = versionPrefix(rel);
  const slash = pre.lastIndexOf('/');
  const [dir, base] = [pre.slice(0, slash), pre.slice(slash + 1)];
  return ((await listDir(dir)) ?? []).filter((n) => n.startsWith(base)).map((n) => `${dir}/${n}`).sort(byVersionAge);
}

/** A version's stamp as people read it: `yyyymmddThhmmssZ`, `-N` on a clash (what follows the last `@`). */
export const versionStamp = (v: string): string => v.slice(v.lastIndexOf('@') + 1);

/** When a version was set aside (its stamp, to the second; epoch ms), or undefined for a name without a stamp. */
export function versionTime(v: string): number | undefined {
  const m = /@(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z(?:-\d+)?$/.exec(v);
  return m ? Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]) : undefined;
}

/** Version paths sort by their UTC stamp (then the clash counter): oldest first. */
export const byVersionAge = (a: string, b: string): number => {
  const key = (v: string) => { const m = /@(\d{8}T\d{6}Z)(?:-(\d+))?$/.exec(v); return m ? `${m[1]}:${(m[2] ?? '0').padStart(6, '0')}` : v; };
  return key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0;
};

/** Is `rel` (a target-relative file path) replica's own rather than a copy of a user file? */
export function isReserved(rel: string): boolean {
  const parts = rel.split('/');
  return parts[0] === STORE_DIR || parts[1] === VERSIONS_DIR || isTempName(parts[parts.length - 1]);
}

export const TEMP_PREFIX = '.replica-';
export const TEMP_SUFFIX = '.tmp';

/** A temp file of any replica process (live or killed). */
export const isTempName = (name: string): boolean => name.startsWith(TEMP_PREFIX) && name.endsWith(TEMP_SUFFIX);

// Unique per process (random prefix) and per put (counter): cheaper than fresh random bytes for every file.
const TEMP_BASE = crypto.randomBytes(4).toString('hex');
let tempCounter = 0;

/** A fresh temp file name for this process. */
export const tempName = (): string => `${TEMP_PREFIX}${TEMP_BASE}${(tempCounter++).toString(16).padStart(4, '0')}${TEMP_SUFFIX}`;

/** A temp file of this very process (in flight now): a sweep must never remove it. */
export const isOwnTemp = (name: string): boolean => name.startsWith(TEMP_PREFIX + TEMP_BASE);

/** The names in a directory listing that a sweep removes: temp files of other (killed) runs. */
export const staleTemps = (names: Iterable<string>): string[] => [...names].filter((n) => isTempName(n) && !isOwnTemp(n));

/**
 * Sweep the stale temps of each directory in `relDirs`: `listDir` gives a directory's names (undefined when it
 * is gone), `remove` deletes one entry. Returns how many were removed. The one sweep every kind with temp
 * files uses.
 */
export async function sweepTemps(relDirs: string[], listDir: (relDir: string) => Promise<string[] | undefined>,
  remove: (relDir: string, name: string) => Promise<void>): Promise<number> {
  let n = 0;
  for (const d of relDirs) {
    for (const name of staleTemps((await listDir(d)) ?? [])) {
      await remove(d, name);
      n++;
    }
  }
  return n;
}

/**
 * Reject paths that could leave the target base (absolute, `..`, `.`, empty components, NUL). One regular
 * expression, not a split into components: it runs several times per file (~2 us each split, 10k files).
 */
export function checkRelPath(target: string, rel: string): void {
  if (rel.charCodeAt(0) === 0x2f || BAD_COMPONENT.test(rel) || rel.includes('\0')) {
    throw new TargetError(`[${target}] invalid target path ${JSON.stringify(rel)}`, { target, errorClass: 'other', permanent: true });
  }
}

/** An empty, `.` or `..` component: between the start or a `/` and the end or a `/` (so the empty path too). */
const BAD_COMPONENT = /(?:^|\/)\.{0,2}(?:\/|$)/;

/**
 * Sort by the bytes of each item's path (as `sort` in the C locale orders them). UTF-8 orders as the code
 * points do, and so does JavaScript's string comparison (UTF-16 code units) until a path holds a code unit of
 * U+D800 or above (a surrogate sorts before U+E000-U+FFFF in UTF-16, after them in UTF-8): only then is each
 * path compared as a Buffer (10k paths: ~30 ms, against ~5 ms as strings).
 */
export function sortByPathBytes<T>(items: T[], pathOf: (x: T) => string): T[] {
  const keyed = items.map((x) => ({ x, p: pathOf(x) }));
  if (!keyed.some((e) => NOT_BY_UNITS.test(e.p))) return keyed.sort((a, b) => (a.p < b.p ? -1 : a.p > b.p ? 1 : 0)).map((e) => e.x);
  return keyed.map((e) => ({ x: e.x, key: Buffer.from(e.p) })).sort((a, b) => Buffer.compare(a.key, b.key)).map((e) => e.x);
}
/** A code unit from which UTF-16 and UTF-8 order differently (surrogates, and what they must sort after). */
const NOT_BY_UNITS = /[\uD800-\uFFFF]/;

/** One manifest line as GNU coreutils' `*sum` tools write it: a name with `\` or a newline is escaped, the line starts with `\`. */
export function manifestLine(hash: string, name: string): string {
  if (!/[\\\n]/.test(name)) return `${hash}  ${name}`;
  return `\\${hash}  ${name.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`;
}
