/** Error classes recorded in the store (docs/store-format.md). */
export const ERROR_CLASSES = [
  'ENOSPC', 'EACCES', 'EROFS', 'EIO', 'not-mounted', 'unreachable', 'timeout', 'quota',
  'mismatch', 'missing', 'vanished', 'changed', 'source-missing', 'other',
] as const;
export type ErrorClass = (typeof ERROR_CLASSES)[number];

type Policy = { scope: 'file' | 'target'; retryOp: boolean; permanent: boolean };
const FILE: Policy = { scope: 'file', retryOp: false, permanent: false };
const TARGET: Policy = { scope: 'target', retryOp: false, permanent: false };
/**
 * THE error policy: for each class, whether it describes one file or the whole target (a target-wide failure
 * stops that target for the pass and spends no attempt; a full target stays per file, so every file records
 * its own ENOSPC), whether one operation is retried in place (a dropped connection, EIO) before it fails, and
 * whether retrying can ever help (`permanent`: shown as needing an operator).
 */
export const ERROR_POLICY: Readonly<Record<ErrorClass, Policy>> = {
  ENOSPC: FILE, quota: FILE, mismatch: FILE, missing: FILE, vanished: FILE, changed: FILE, 'source-missing': FILE,
  EACCES: { ...FILE, permanent: true },
  other: { ...FILE, retryOp: true },
  'not-mounted': TARGET, timeout: TARGET, // a timed-out call already waited its whole timeout
  EIO: { ...TARGET, retryOp: true }, unreachable: { ...TARGET, retryOp: true },
  EROFS: { ...TARGET, permanent: true },
};

/** Classes that describe a whole target rather than one file: no attempt is spent. */
export const TARGET_WIDE_CLASSES: ReadonlySet<ErrorClass> = new Set(ERROR_CLASSES.filter((c) => ERROR_POLICY[c].scope === 'target'));

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
  /** the command holding it (`watch`, `run`, ...), when the lock says */
  readonly command?: string;
  constructor(message: string, pid: number, command?: string) {
    super('LOCKED', message);
    this.pid = pid;
    this.command = command;
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

/** A failure of one target operation, classified for the store and the retry policy. */
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
  /** true when the failure is of the whole target (ERROR_POLICY), not of one file */
  get targetWide(): boolean {
    return TARGET_WIDE_CLASSES.has(this.errorClass);
  }
}

const ERRNO_CLASS: Readonly<Record<string, ErrorClass>> = {
  ENOSPC: 'ENOSPC', EDQUOT: 'quota', EACCES: 'EACCES', EPERM: 'EACCES', EROFS: 'EROFS', EIO: 'EIO',
  ENOENT: 'missing', ENOTDIR: 'missing', ETIMEDOUT: 'timeout', ABORT_ERR: 'timeout', ECONNREFUSED: 'unreachable',
  EHOSTUNREACH: 'unreachable', ENETUNREACH: 'unreachable', ECONNRESET: 'unreachable', ENOTCONN: 'unreachable',
  ENOTFOUND: 'unreachable', EAI_AGAIN: 'unreachable', EPIPE: 'unreachable',
};

/** A target kind's own error codes (SFTP status numbers, S3 error names) and their classes. */
export type ProtocolCodes = Readonly<Record<string, ErrorClass>>;

/**
 * Map any error to an error class: the one place errno and a kind's protocol codes meet the store's vocabulary.
 * Looked up by the error's `code` among the protocol codes, then as an errno, then by its `name`. Unknown: `other`.
 */
export function classifyErrno(err: unknown, codes?: ProtocolCodes): ErrorClass {
  if (err instanceof TargetError || err instanceof SourceError) return err.errorClass;
  const e = err as { code?: string | number; name?: string } | undefined;
  const byCode = codes && e?.code !== undefined && codes[String(e.code)];
  if (byCode) return byCode;
  // an errno says what happened, whatever a library names the error (the AWS SDK calls EPIPE and ECONNRESET,
  // a dropped connection retried in place, a TimeoutError, which is not retried)
  const errno = typeof e?.code === 'string' ? ERRNO_CLASS[e.code] : undefined;
  if (errno) return errno;
  const byName = codes && e?.name !== undefined && codes[e.name];
  if (byName) return byName;
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return 'timeout';
  return 'other';
}

/** The origin every target error message starts with: `[name] op path`. */
export const opOrigin = (target: string, op: string, rel?: string): string => `[${target}] ${op}${rel ? ` ${rel}` : ''}`;

/** The copy is not on the target (class `missing`). */
export const missingError = (target: string, op: string, rel: string): TargetError =>
  new TargetError(`${opOrigin(target, op, rel)}: no such file`, { target, errorClass: 'missing' });

/**
 * Wrap any error as a TargetError of `target`, classified (with the kind's protocol `codes`), `permanent` as the
 * policy says; the message starts with `origin` (opOrigin). A TargetError passes unchanged.
 */
export function toTargetError(err: unknown, target: string, origin: string, codes?: ProtocolCodes): TargetError {
  if (err instanceof TargetError) return err;
  const errorClass = classifyErrno(err, codes);
  const msg = err instanceof Error ? err.message : String(err);
  return new TargetError(`${origin}: ${msg}`, { target, errorClass, permanent: ERROR_POLICY[errorClass].permanent, cause: err });
}

/** A short human message for any thrown value. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
