/**
 * The catalog of a tape target (SPEC 11), kept in the store (`files/tape-<target>.json`, loaded as
 * `meta.tape.<target>`: snapshotted and shipped with it): the tapes, the tape files written to them, and each
 * tape file's members with their hash, size, mode and offset. Plain data and pure functions; the tape target (tape.ts) and the `tape` command change it, the store
 * saves it.
 */

export type TapeState = 'open' | 'full' | 'closed';
/** writing: bytes are going to tape; written: finished, not read back yet; confirmed: read back, every member hashed right */
export type TapeFileState = 'writing' | 'written' | 'confirmed' | 'unusable';

export interface TapeInfo {
  label: string;
  serial?: string;
  state: TapeState;
  /** bytes of tape files on it (partial ones included: they use the tape) */
  bytes: number;
  openedAt: string;
  closedAt?: string;
  fullAt?: string;
}

/** A member: [target-relative path, xxh64, size, permission bits, offset of its data in the tape file (set by the confirm)]. */
export type Member = [string, string, number, number, number?];

export interface TapeFile {
  label: string;
  /** 1, 2, ...: `file00001.tar` in the emulator; the file's position on a drive (0 is the label) */
  number: number;
  state: TapeFileState;
  bytes: number;
  startedAt: string;
  writtenAt?: string;
  confirmedAt?: string;
  /** why it is unusable */
  reason?: string;
  members: Member[];
}

export interface TapeCatalog {
  tapes: TapeInfo[];
  files: TapeFile[];
}

/** Where the catalog lives and how it is made durable (the store's meta; `save` writes it at once). */
export interface CatalogHost {
  host: string;
  catalog: TapeCatalog;
  save(): void;
}

export const emptyCatalog = (): TapeCatalog => ({ tapes: [], files: [] });

/** The tape open for writing (at most one), or undefined. */
export const activeTape = (c: TapeCatalog): TapeInfo | undefined => c.tapes.find((t) => t.state === 'open');

export const fileName = (n: number): string => `file${String(n).padStart(5, '0')}.tar`;

/** The tape file location of a member, as where-is prints it: `tape://<label>/<file number>/<member>`. */
export const locationOf = (f: TapeFile, rel: string): string => `tape://${f.label}/${f.number}/${rel}`;

/** Where each path's members are in a catalog ([tape file, member index], catalog order), built on first use. */
export class MemberIndex {
  private map?: Map<string, [TapeFile, number][]>;
  constructor(private readonly catalog: () => TapeCatalog) {}

  /** The catalog gained or lost tape files: build again on the next find. */
  reset(): void {
    this.map = undefined;
  }

  /** Member `i` was appended to tape file `f`. */
  added(f: TapeFile, i: number): void {
    const at = this.map?.get(f.members[i][0]);
    if (at) at.push([f, i]); else this.map?.set(f.members[i][0], [[f, i]]);
  }

  /** The newest member of `rel` in a tape file in one of `states` (with content `hash` when given). */
  find(rel: string, states: readonly TapeFileState[], hash?: string): { file: TapeFile; i: number } | undefined {
    if (!this.map) {
      this.map = new Map();
      for (const f of this.catalog().files) for (let i = 0; i < f.members.length; i++) this.added(f, i);
    }
    const at = this.map.get(rel) ?? [];
    for (let k = at.length - 1; k >= 0; k--) {
      const [file, i] = at[k];
      if (states.includes(file.state) && (hash === undefined || file.members[i][1] === hash)) return { file, i };
    }
    return undefined;
  }
}

/** A label a tape directory and a URL can carry: letters, digits, `-`, `_`, `.` (not first), 1-64 chars. */
export function labelProblem(label: string): string | undefined {
  return /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$/.test(label) ? undefined : `tape label ${JSON.stringify(label)}: use 1-64 letters, digits, '-', '_' or '.' (not first)`;
}

/** Per tape: its state, bytes, tape files (confirmed / all) and members confirmed (`tape list`, status, the monitor). */
export function tapeSummary(c: TapeCatalog): (TapeInfo & { tapeFiles: number; confirmedFiles: number; unusableFiles: number; members: number })[] {
  return c.tapes.map((t) => {
    const fs = c.files.filter((f) => f.label === t.label);
    const ok = fs.filter((f) => f.state === 'confirmed');
    return { ...t, tapeFiles: fs.length, confirmedFiles: ok.length, unusableFiles: fs.filter((f) => f.state === 'unusable').length, members: ok.reduce((n, f) => n + f.members.length, 0) };
  });
}

/** What `status` and the monitor say about a tape target that cannot take writes, or undefined when one is open. */
export function tapeProblem(c: TapeCatalog | undefined): string | undefined {
  if (c && activeTape(c)) return undefined;
  const full = c?.tapes.filter((t) => t.state === 'full').at(-1);
  return full ? `tape ${full.label} full: open a new one (replica tape open LABEL)` : 'no tape open (replica tape open LABEL)';
}
