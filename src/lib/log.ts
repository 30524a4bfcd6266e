import { createRequire } from 'node:module';
import type winston from 'winston';

/** What replica logs through: winston's level methods, each a message and its fields (JSON lines). */
export interface Logger {
  readonly level: string;
  error(message: string, meta?: object): void;
  warn(message: string, meta?: object): void;
  info(message: string, meta?: object): void;
  verbose(message: string, meta?: object): void;
  debug(message: string, meta?: object): void;
  isInfoEnabled(): boolean;
}

/**
 * winston, from the one-file build in dist/vendor (scripts/bundle.mjs: ~24 ms sooner than its ~100 files in
 * node_modules); from node_modules where the build did not make it.
 */
function loadWinston(): typeof winston {
  const require = createRequire(import.meta.url);
  try {
    return require('../vendor/winston.cjs') as typeof winston;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw err;
    return require('winston') as typeof winston;
  }
}

/** npm's levels, as winston numbers them (lower: more severe). */
const LEVELS: Record<string, number> = { error: 0, warn: 1, info: 2, http: 3, verbose: 4, debug: 5, silly: 6 };

/**
 * A Logger that loads winston with its first message at or above the level: winston and its ~100 files cost
 * ~60 ms of a command's start, and a command at level `warn` that has nothing to say never needs them.
 */
class LazyLogger implements Logger {
  private w?: winston.Logger;
  /** the most verbose level written (-1: none) */
  private readonly max: number;
  /** `make`: the winston logger, given winston; undefined: a silent logger (drops everything) */
  constructor(readonly level: string, private readonly make?: (w: typeof winston) => winston.Logger) {
    this.max = make ? LEVELS[level] ?? LEVELS.info : -1;
  }

  private log(level: string, message: string, meta?: object): void {
    if (LEVELS[level] > this.max) return;
    this.w ??= this.make!(loadWinston());
    this.w.log(level, message, meta);
  }

  error(message: string, meta?: object): void { this.log('error', message, meta); }
  warn(message: string, meta?: object): void { this.log('warn', message, meta); }
  info(message: string, meta?: object): void { this.log('info', message, meta); }
  verbose(message: string, meta?: object): void { this.log('verbose', message, meta); }
  debug(message: string, meta?: object): void { this.log('debug', message, meta); }
  isInfoEnabled(): boolean { return LEVELS.info <= this.max; }
}

/**
 * The process logger: always on stderr (stdout carries only command output); JSON lines when stderr is not
 * a TTY (journald, cron mail), readable text with colours on a TTY.
 */
export function createLogger(level: string, opts: { tty?: boolean } = {}): Logger {
  const tty = opts.tty ?? process.stderr.isTTY === true;
  return new LazyLogger(level, (w) => w.createLogger({
    level,
    // on a terminal the message says it all (its fields are for the JSON lines); colours unless NO_COLOR is set
    format: tty
      ? w.format.combine(
        ...(colorEnabled(true) ? [w.format.colorize()] : []),
        w.format.printf(({ level: l, message }) => `${l}: ${String(message)}`))
      : w.format.combine(w.format.timestamp(), w.format.json()),
    transports: [new w.transports.Console({ stderrLevels: Object.keys(LEVELS) })],
  }));
}

/** A logger that drops everything (library callers and tests that do not care). */
export function silentLogger(): Logger {
  return new LazyLogger('error');
}

/**
 * Colours or not: FORCE_COLOR (set, and not "", "0" or "false") turns them on even in a pipe; else NO_COLOR (set and
 * not empty: https://no-color.org) turns them off; else a terminal has them.
 */
export function colorEnabled(isTTY: boolean, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.FORCE_COLOR !== undefined && !['', '0', 'false'].includes(env.FORCE_COLOR)) return true;
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  return isTTY;
}
