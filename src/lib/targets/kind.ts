import type { TargetConfig } from '../config/schema.js';
import type { Target } from './target.js';

/** How a kind-specific option is read from the config (all are optional). */
export type OptionType = 'string' | 'path' | 'boolean' | 'size' | 'duration' | 'http-url';

/** How an archive kind batches: tape files of about `volumeSize`; a smaller one once a file waited `maxWaitMs`. */
export interface ArchiveBatching { volumeSize: number; maxWaitMs: number }

/**
 * Everything replica needs to know about one target kind: its URL scheme, its options and how to check them,
 * its default concurrency, and how to make one. The registry is a plain list of these: config validation,
 * the CLI and the monitor loop over it, so a new kind is one module plus one line in the list.
 */
export interface TargetKindModule {
  /** the kind's name, as `kind` in status output */
  readonly kind: string;
  /** URL schemes this kind takes (`''`: a plain path with no scheme) */
  readonly schemes: readonly string[];
  /** the URL's shape, for error messages (`ssh://[user@]host[:port]/path`) */
  readonly urlForm: string;
  /** a URL of this kind that does not match is refused with `urlForm` */
  readonly urlPattern?: RegExp;
  /** kind-specific config keys */
  readonly options: Readonly<Record<string, OptionType>>;
  /** copies in flight when the config does not say */
  readonly concurrency: number;
  /** most copies worth running in parallel (a configured concurrency is capped by this) */
  readonly maxConnections: number;
  /** small files per putMany call (default 64: one LocalIo job); a kind whose batch costs a remote command takes more */
  readonly putManyFiles?: number;
  /** the target base as a path on this machine, for kinds that have one (nesting checks, the monitor) */
  localBase?(url: string): string;
  /**
   * An archive kind (tape): copies go out in batches of about `volumeSize` bytes, each one tape file; a smaller
   * batch once a file has waited `maxWaitMs` (backup/archive.ts)
   */
  batching?(cfg: TargetConfig): ArchiveBatching;
  /**
   * A command is about to copy `files` files to or from a target of this kind (a pass that hashes them first, a
   * restore that plans them first): start what that will need (the local kind's worker threads) meanwhile.
   */
  warm?(files: number): void;
  /** make the target (throws ConfigError where its options are incomplete) */
  create(cfg: TargetConfig, index: number): Target;
}
