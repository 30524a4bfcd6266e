import type { Readable } from 'node:stream';
import { TargetError, messageOf } from '../errors.js';
import type { PutSource } from './source.js';
import type { CatalogHost } from './tapeCatalog.js';

export interface PutOptions {
  signal?: AbortSignal;
  /**
   * Mode for a directory the put has to create, by its target-relative path (the source directory's own
   * mode, so a copy never grants more than its source did); undefined: 0700.
   */
  dirMode?: (relDir: string) => number | undefined;
}

/** What check() established about a target (`replica check` prints it per target). */
export interface CheckReport {
  reachable: boolean;
  /** we proved who we are (ssh key, S3 credentials) and the server proved who it is (host key) */
  authenticated: boolean;
  writable: boolean;
  /** bytes free to us, where the target can tell */
  freeBytes?: number;
  /** one line of extra facts (mount point, bucket, ...) */
  detail?: string;
}

/** Per-file result of a read-back: the hash of what is stored, or why it could not be read. */
export type ReadBack = Map<string, string | TargetError>;

/**
 * A place that holds copies: the core every kind has. Paths are relative to the target base
 * (`<host>/<abs path>`, layout.ts). Every method throws TargetError with an error class; `permanent` says
 * whether retrying can help. What a kind can do beyond this it offers as capabilities (below), or not at all.
 */
export interface Target {
  readonly name: string;
  /**
   * Write `src` to `relPath` atomically: readers see all of it or none, and nothing is published unless every
   * byte of `src` was read (a source that fails its hash check errors before its end: see PutSource). The
   * copy gets `src.mode` (never setuid/setgid/sticky) and `src.mtimeMs` where the target keeps them. No
   * component below the target base is followed if it is a symlink: a link where a directory must be is
   * replaced by a directory (a `<host>` or `.replica` link at the top refuses the write).
   */
  put(relPath: string, src: PutSource, opts?: PutOptions): Promise<void>;
  /**
   * Make every put() so far durable (on stable storage). Cheaper once per batch than per file (syncfs).
   * A target whose put() is already durable resolves at once.
   */
  sync(opts?: { signal?: AbortSignal }): Promise<void>;
  /**
   * Read back what is stored at each path and hash it, from the target itself (never from a cache of ours):
   * each path maps to its hash or its own error (`missing` when nothing is there). After a target-wide
   * failure the paths not read yet are left out. Throws only when the batch as a whole could not be read.
   */
  readBack(relPaths: string[], opts?: ReadBackOptions): Promise<ReadBack>;
  /**
   * Reachable, authenticated, mounted, writable: used by `replica check` and before copying. Throws
   * TargetError if not, with `stage` saying which step failed.
   */
  check(opts?: { signal?: AbortSignal }): Promise<CheckReport>;
  /** Release connections. */
  close(): Promise<void>;
}

export interface ReadBackOptions {
  signal?: AbortSignal;
  /** reads in flight at once (default 2) */
  concurrency?: number;
  /** hash where the copies are even for a batch too small to be worth a remote command (adopt: the bytes must not move) */
  always?: boolean;
}

/** Capability: read any stored file at random (every kind but tape). */
export interface RandomRead {
  /** Hash of the stored bytes, read back from the target itself. */
  hash(relPath: string, opts?: { signal?: AbortSignal }): Promise<string>;
  /**
   * Size (and mtime and permission bits where the kind keeps them) of what is stored, or undefined when nothing
   * is there; `hash`: the xxh64 the kind stored beside the copy when it was written (S3 metadata), never a read
   * of the bytes (adopt trusts it, as README "Enrolling an existing backup" says; verification never does).
   */
  stat(relPath: string): Promise<{ size: number; mtimeMs?: number; mode?: number; hash?: string } | undefined>;
  /** Every stored user file under `prefix` (relative paths; replica's own files, layout.isReserved, excluded). */
  list(prefix: string): AsyncIterable<string>;
  /** The stored bytes. */
  get(relPath: string): Promise<Readable>;
}

/** Capability: symlinks are recreated as symlinks (elsewhere they are recorded in the store only). */
export interface Links {
  /**
   * Create (or replace) a symlink with link text `linkText`. Resolves false, and creates nothing, when a
   * directory is in the way (the source's former directory: its copies stay).
   */
  putLink(relPath: string, linkText: string, opts?: PutOptions): Promise<boolean>;
  /** The link text of a stored symlink, or undefined if none is there. */
  readLink(relPath: string): Promise<string | undefined>;
}

/**
 * Capability: put many small files in one call (a local target: one job in a worker thread instead of six
 * thread-pool round trips per file). Each item is put exactly as put() would (atomic, proven before published).
 */
export interface BatchPut {
  /**
   * Put each item; resolves to one entry per item: undefined when it is on the target, else its error (as put()
   * would throw it). Throws only when the call as a whole failed (a timeout, an aborted signal): then any item
   * may or may not be there, each as a whole or not at all.
   */
  putMany(items: { rel: string; src: PutSource }[], opts?: PutOptions): Promise<(Error | undefined)[]>;
}

/**
 * putMany for a kind that has no faster way: each item through `put`, in order (`atOnce` at a time: default
 * one), its error its answer; after a target-wide failure (the disk full, the tape full, the target gone) the
 * rest get that error without being tried.
 */
export async function putEach(put: (rel: string, src: PutSource, opts: PutOptions) => Promise<void>, items: { rel: string; src: PutSource }[], opts: PutOptions = {}, atOnce = 1): Promise<(Error | undefined)[]> {
  const out: (Error | undefined)[] = items.map(() => undefined);
  let next = 0;
  let wide: TargetError | undefined;
  const worker = async () => {
    for (let i = next++; i < items.length; i = next++) {
      opts.signal?.throwIfAborted(); // stopped: the call as a whole
      if (wide) { out[i] = wide; continue; }
      try {
        await put(items[i].rel, items[i].src, opts);
      } catch (err) {
        out[i] = err as Error;
        if (err instanceof TargetError && err.targetWide) wide = err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(atOnce, items.length) }, worker));
  return out;
}

/** Capability: hash many stored copies where they are (one remote command instead of a read-back each). */
export interface RemoteHash {
  /**
   * May leave out any path (it is then read back per file); a hash it returns is of the stored bytes. A kind
   * may skip a batch too small to be worth a remote command, unless `always` (adopt: the bytes must not move).
   */
  hashMany(relPaths: string[], opts?: { signal?: AbortSignal; always?: boolean }): Promise<Map<string, string>>;
}

/**
 * Capability: keep previous versions of a copy (layout.versionPath names them). The copy is kept aside under
 * its version name while it stays live: a hard link on local and ssh targets, a server-side copy on S3 (the
 * bytes never pass through replica); the put of the new content then replaces the live name atomically, so a
 * failed put (a torn source, a full disk) leaves the good copy live, never a hole.
 */
export interface Versions {
  /** Make `versionRel` hold the copy at `rel`, which stays; resolves false (and does nothing) when nothing is at `rel`. */
  keepAside(rel: string, versionRel: string): Promise<boolean>;
  /** The versions kept of the copy at `rel` (target-relative paths), oldest first. */
  listVersions(rel: string): Promise<string[]>;
  /** Delete one version (a path listVersions returned). */
  removeVersion(versionRel: string): Promise<void>;
}

/** Capability: put() makes temp files, which a killed run can leave behind. */
export interface TempFiles {
  /** Remove the stale temp files (of a killed run; never this process's own) in these directories. */
  removeTemps(relDirs: string[]): Promise<number>;
}

/**
 * Capability of the tape kind: an archive with a catalog (SPEC 11). The engine and the commands attach the
 * catalog kept in the store before any other call.
 */
export interface Archive {
  attachCatalog(host: CatalogHost): void;
  /** Make `label` the open tape (the tape loaded in the drive; a new one is made ready). */
  openTape(label: string, serial?: string): Promise<void>;
  /** Close `label` (default: the open tape): nothing more is written to it. */
  closeTape(label?: string): void;
  /** The bytes of the newest confirmed member of `rel` with content `hash`, read from its tape file. */
  extract(rel: string, hash: string): Promise<{ data: Readable; mode: number }>;
  /** `tape://<label>/<file number>/<member>` of that member, or undefined. */
  locate(rel: string, hash: string): string | undefined;
}

/** Every method of the target contract: the core and each capability's (lazy.ts stands in for exactly these). */
export const CONTRACT_METHODS = ['put', 'putMany', 'sync', 'readBack', 'check', 'close', 'hash', 'stat', 'list', 'get', 'putLink', 'readLink', 'hashMany',
  'removeTemps', 'keepAside', 'listVersions', 'removeVersion'] as const;

const offers = (t: object, method: string): boolean => typeof (t as Record<string, unknown>)[method] === 'function';
export const hasRandomRead = <T extends Target>(t: T): t is T & RandomRead => offers(t, 'hash') && offers(t, 'list');
export const hasLinks = <T extends Target>(t: T): t is T & Links => offers(t, 'putLink');
export const hasBatchPut = <T extends Target>(t: T): t is T & BatchPut => offers(t, 'putMany');
export const hasRemoteHash = <T extends Target>(t: T): t is T & RemoteHash => offers(t, 'hashMany');
export const hasVersions = <T extends Target>(t: T): t is T & Versions => offers(t, 'keepAside');
export const hasArchive = <T extends Target>(t: T): t is T & Archive => offers(t, 'extract');
export const hasTempFiles = <T extends Target>(t: T): t is T & TempFiles => offers(t, 'removeTemps');

/**
 * readBack() for a kind with random read: the batch through `hashMany` first where offered (what it leaves out,
 * or all if it fails, is hashed per file), then `hash` per file, `concurrency` at a time. Stops starting new
 * reads after a target-wide failure.
 */
export async function readBackEach(t: RandomRead & Partial<RemoteHash>, rels: string[], opts: ReadBackOptions = {}): Promise<ReadBack> {
  const out: ReadBack = new Map();
  if (t.hashMany && rels.length) {
    try {
      for (const [rel, h] of await t.hashMany(rels, { signal: opts.signal, always: opts.always })) out.set(rel, h);
    } catch { /* read back file by file below */ }
  }
  const rest = rels.filter((r) => !out.has(r));
  let down = false;
  const worker = async () => {
    for (let rel = rest.shift(); rel !== undefined && !down && !opts.signal?.aborted; rel = rest.shift()) {
      try {
        out.set(rel, await t.hash(rel, { signal: opts.signal }));
      } catch (err) {
        const e = err instanceof TargetError ? err : new TargetError(messageOf(err), { target: '', errorClass: 'other', cause: err });
        out.set(rel, e);
        if (e.targetWide) down = true;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, opts.concurrency ?? 2) }, worker));
  return out;
}
