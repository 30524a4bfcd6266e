import type { Readable } from 'node:stream';
import type { PutSource } from './source.js';

/** What a target can do; the queue and verifier adapt to it. */
export interface TargetCapabilities {
  /** copies in flight when the config does not say (SPEC default 2; more where latency dominates) */
  concurrency: number;
  /** most copies worth running in parallel (a configured concurrency is capped by this) */
  maxConnections: number;
  /** put() is atomic (temp + rename) on this target */
  atomicRename: boolean;
  /** hash() runs where the bytes are (no transfer back) */
  remoteHash: boolean;
  /** putLink()/readLink() recreate symlinks; otherwise symlinks are only recorded in the store */
  symlinks: boolean;
}

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

/**
 * A place that holds copies (DESIGN.md). Paths are relative to the target base (`<host>/<abs path>`).
 * Every method throws TargetError with a SPEC error class; `permanent` says whether retrying can help.
 */
export interface Target {
  readonly name: string;
  readonly capabilities: TargetCapabilities;
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
  /** Hash of the stored bytes, read back from the target itself (never from a cache of ours). */
  hash(relPath: string, opts?: { signal?: AbortSignal }): Promise<string>;
  /**
   * Optional: hashes of many stored copies in one go, where that is much cheaper than one hash() each (one
   * remote command instead of a read-back per file). May leave out any path (the caller then calls hash()
   * for it); a hash it returns is read from the target, as hash() would.
   */
  hashMany?(relPaths: string[], opts?: { signal?: AbortSignal }): Promise<Map<string, string>>;
  /** Size (and mtime where known) of what is stored, or undefined when nothing is there. */
  stat(relPath: string): Promise<{ size: number; mtimeMs?: number } | undefined>;
  /** Every stored path under `prefix` (relative paths, files only; temp files excluded). */
  list(prefix: string): AsyncIterable<string>;
  /** The stored bytes. */
  get(relPath: string): Promise<Readable>;
  /**
   * Create (or replace) a symlink with link text `linkText` (capabilities.symlinks only). Resolves false, and
   * creates nothing, when a directory is in the way (the source's former directory: its copies stay).
   */
  putLink(relPath: string, linkText: string, opts?: PutOptions): Promise<boolean>;
  /** The link text of a stored symlink, or undefined if none is there (capabilities.symlinks only). */
  readLink(relPath: string): Promise<string | undefined>;
  /**
   * Reachable, authenticated, mounted, writable: used by `replica check` and before copying. Throws
   * TargetError if not, with `stage` saying which step failed.
   */
  check(opts?: { signal?: AbortSignal }): Promise<CheckReport>;
  /**
   * Optional: remove the stale temp files (of a killed run; never this process's own) in these directories.
   * Targets without temp files (S3) do not offer it.
   */
  removeTemps?(relDirs: string[]): Promise<number>;
  /** Release connections. */
  close(): Promise<void>;
}

/** Temp names on targets: short and fixed in shape, so a 255-byte file name still works (SPEC 3a). */
export const TEMP_PREFIX = '.replica-';
export const TEMP_SUFFIX = '.tmp';
export const isTempName = (name: string): boolean => name.startsWith(TEMP_PREFIX) && name.endsWith(TEMP_SUFFIX);
