import winston from 'winston';

export type Logger = winston.Logger;

/**
 * The process logger: always on stderr (stdout carries only command output); JSON lines when stderr is not
 * a TTY (journald, cron mail), readable text with colours on a TTY.
 */
export function createLogger(level: string, opts: { tty?: boolean } = {}): Logger {
  const tty = opts.tty ?? process.stderr.isTTY === true;
  // on a terminal the message says it all (its fields are for the JSON lines); colours unless NO_COLOR is set
  const format = tty
    ? winston.format.combine(
      ...(colorEnabled(true) ? [winston.format.colorize()] : []),
      winston.format.printf(({ level: l, message }) => `${l}: ${String(message)}`))
    : winston.format.combine(winston.format.timestamp(), winston.format.json());
  return winston.createLogger({
    level,
    format,
    transports: [new winston.transports.Console({ stderrLevels: ['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly'] })],
  });
}

/** A logger that drops everything (library callers and tests that do not care). */
export function silentLogger(): Logger {
  return winston.createLogger({ silent: true, transports: [new winston.transports.Console()] });
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
