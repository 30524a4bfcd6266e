import winston from 'winston';

export type Logger = winston.Logger;

/**
 * The process logger: always on stderr (stdout carries only command output); JSON lines when stderr is not
 * a TTY (journald, cron mail), readable text with colours on a TTY.
 */
export function createLogger(level: string, opts: { tty?: boolean } = {}): Logger {
  const tty = opts.tty ?? process.stderr.isTTY === true;
  const format = tty
    ? winston.format.combine(
      winston.format.colorize(),
      winston.format.printf(({ level: l, message, ...rest }) => {
        const extra = Object.keys(rest).length ? ` ${JSON.stringify(rest)}` : '';
        return `${l}: ${String(message)}${extra}`;
      }))
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
