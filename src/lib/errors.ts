/** Error classes recorded in the store (SPEC 4). */
export const ERROR_CLASSES = [
  'ENOSPC', 'EACCES', 'EROFS', 'EIO', 'not-mounted', 'unreachable', 'timeout', 'quota',
  'mismatch', 'missing', 'vanished', 'changed', 'source-missing', 'other',
] as const;
export type ErrorClass = (typeof ERROR_CLASSES)[number];

/** Classes that describe a whole target rather than one file (SPEC 8): no attempt is spent. */
export const TARGET_WIDE_CLASSES: ReadonlySet<ErrorClass> = new Set<ErrorClass>([
  'not-mounted', 'unreachable', 'timeout', 'EROFS', 'EIO',
]);

/** Base of every error replica throws on purpose; `code` is stable for programs. */
export class ReplicaError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** The configuration is invalid; `problems` holds one line per problem, each naming the key path. */
export class ConfigError extends ReplicaError {
  readonly problems: string[];
  constructor(problems: string[], options?: { cause?: unknown }) {
    super('CONFIG', problems.map((p) => `config: ${p}`).join('\n'), options);
    this.problems = problems;
  }
}

/** Bad command line (unknown command, option or argument). */
export class UsageError extends ReplicaError {
  constructor(message: string) {
    super('USAGE', message);
  }
}

/** The store cannot be read or written and no good snapshot exists. */
export class StoreError extends ReplicaError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('STORE', message, options);
  }
}

/** Another live process holds the store lock. */
export class LockedError extends ReplicaError {
  readonly pid: number;
  constructor(message: string, pid: number) {
    super('LOCKED', message);
    this.pid = pid;
  }
}

/** The run was interrupted by a signal; the store was saved. */
export class InterruptedError extends ReplicaError {
  constructor(signal: string) {
    super('INTERRUPTED', `interrupted by ${signal}`);
  }
}

/**
 * A source file is not the file that settled (it changed, vanished, became a symlink, or its bytes no longer
 * hash to the settled hash): nothing read from it may be published. `errorClass` is `changed`, `vanished`
 * or the errno's class (EACCES).
 */
export class SourceError extends ReplicaError {
  readonly errorClass: ErrorClass;
  constructor(message: string, errorClass: ErrorClass, options?: { cause?: unknown }) {
    super(`SOURCE_${errorClass}`, message, options);
    this.errorClass = errorClass;
  }
}

export interface TargetErrorOptions {
  target: string;
  errorClass: ErrorClass;
  /** true when retrying the same operation cannot help (e.g. permission denied, mismatch) */
  permanent?: boolean;
  /** for check(): the step that failed, where the thrower knows it */
  stage?: 'reach' | 'auth' | 'write';
  cause?: unknown;
}

/** A failure of one target operation, classified for the store (SPEC 4) and the retry policy. */
export class TargetError extends ReplicaError {
  readonly target: string;
  readonly errorClass: ErrorClass;
  readonly permanent: boolean;
  /** for check(): the step that failed (reach the target, authenticate, write to it) */
  stage?: 'reach' | 'auth' | 'write';
  constructor(message: string, opts: TargetErrorOptions) {
    super(`TARGET_${opts.errorClass}`, message, { cause: opts.cause });
    this.target = opts.target;
    this.errorClass = opts.errorClass;
    this.stage = opts.stage;
    this.permanent = opts.permanent ?? false;
  }
  /** true when the failure is of the whole target (SPEC 8), not of one file */
  get targetWide(): boolean {
    return TARGET_WIDE_CLASSES.has(this.errorClass);
  }
}

const ERRNO_CLASS: Record<string, ErrorClass> = {
  ENOSPC: 'ENOSPC', EDQUOT: 'quota', EACCES: 'EACCES', EPERM: 'EACCES', EROFS: 'EROFS', EIO: 'EIO',
  ENOENT: 'missing', ENOTDIR: 'missing', ETIMEDOUT: 'timeout', ABORT_ERR: 'timeout', ECONNREFUSED: 'unreachable',
  EHOSTUNREACH: 'unreachable', ENETUNREACH: 'unreachable', ECONNRESET: 'unreachable', ENOTCONN: 'unreachable',
};

/** Map a Node/system error to a SPEC error class: the one place errno meets the store's vocabulary. */
export function classifyErrno(err: unknown): ErrorClass {
  if (err instanceof TargetError || err instanceof SourceError) return err.errorClass;
  const e = err as { code?: string; name?: string } | undefined;
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return 'timeout';
  return (e?.code && ERRNO_CLASS[e.code]) || 'other';
}

/** Wrap any error as a TargetError of `target`, keeping its class; the message starts with its origin. */
export function toTargetError(err: unknown, target: string, origin: string): TargetError {
  if (err instanceof TargetError) return err;
  const errorClass = classifyErrno(err);
  const msg = err instanceof Error ? err.message : String(err);
  const permanent = errorClass === 'EACCES' || errorClass === 'EROFS';
  return new TargetError(`${origin}: ${msg}`, { target, errorClass, permanent, cause: err });
}

/** A short human message for any thrown value. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
