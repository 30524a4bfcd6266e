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
      ...(colorAllowed() ? [winston.format.colorize()] : []),
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

/** Colours on a terminal unless NO_COLOR is set to anything but the empty string (https://no-color.org). */
export function colorAllowed(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.NO_COLOR === undefined || env.NO_COLOR === '';
}
