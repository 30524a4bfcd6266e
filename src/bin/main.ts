/** The replica CLI (replica.ts, the entry, imports it where the command runs: in the worker when supervised). */
import { CommanderError } from 'commander';
import { ConfigError, InterruptedError, LockedError, ReplicaError, StoreError, UsageError, messageOf } from '../lib/errors.js';
import type { GlobalOptions } from '../lib/commands/context.js';
import { buildProgram, completionScript } from './cli.js';
import { LOG_LEVELS } from '../lib/config/schema.js';
import { workerReady } from './supervisor.js';
// Command modules are imported when used: `replica hash` need not load the store, winston or cosmiconfig.

/** The exit-code table (printed by --help): the only place errors become exit codes. */
export const EXIT = { ok: 0, problems: 1, usage: 2, store: 74, locked: 75, config: 78, interrupted: 130 } as const;

/** A count option's value (a whole number >= 0), or undefined when not given. */
function count(v: unknown, flag: string): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !/^\d+$/.test(v)) throw new UsageError(`${flag}: expected a whole number (0 or more), got ${JSON.stringify(v)}`);
  return Number(v);
}

/** commander's "error: unknown option '--x'\n(Did you mean --y?)" as one line. */
const oneLine = (message: string): string => message.replace(/^error: /, '').replace(/\n\(Did you mean (.*)\?\)/, ' (did you mean $1?)').replace(/\s*\n\s*/g, ' ').trim();

/** Run the CLI; resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const json = argv.includes('--json');
  let code: number = EXIT.ok;
  const program = buildProgram(async (command, args, o) => { code = await runNamed(command, args, o); });
  if (!argv.length) {
    process.stderr.write(program.helpInformation());
    return EXIT.usage;
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.ok : report(new UsageError(oneLine(err.message)), json);
    return report(err, json);
  }
}

/** The options of every command as commander names them (cli.ts: `--dry-run` is `dryRun`, `--no-update` sets `update` false). */
interface CommandOptions {
  config?: string; json?: boolean; logLevel?: string; target?: string; dryRun?: boolean; verbose?: boolean; maxDelete?: string;
  since?: string; nul?: boolean; from?: string; to?: string; at?: string; force?: boolean; fsync?: boolean; budget?: string;
  all?: boolean; update?: boolean; reason?: string; host?: string; check?: boolean; flush?: boolean; serial?: string;
}

/** One command, its options parsed: the work, and its exit code. */
async function runNamed(command: string, args: string[], o: Record<string, unknown>): Promise<number> {
  const v = o as CommandOptions;
  let logLevel = v.logLevel;
  if (logLevel !== undefined) {
    logLevel = logLevel.toLowerCase();
    if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) throw new UsageError(`--log-level: expected one of ${LOG_LEVELS.join(', ')} (any case), got ${JSON.stringify(v.logLevel)}`);
  }
  const json = v.json ?? false;
  const g: GlobalOptions = { config: v.config, json, logLevel };
  if (command === 'completion') {
    const script = completionScript(args[0]);
    if (script === undefined) throw new UsageError(`completion: expected bash, zsh or fish, got ${JSON.stringify(args[0])}`);
    process.stdout.write(script);
    return EXIT.ok;
  }
  if (command === 'config' && args[0] === 'schema') {
    const { CONFIG_SCHEMA_FILE } = await import('../lib/config/schema.js');
    const fs = await import('node:fs');
    process.stdout.write(fs.readFileSync(CONFIG_SCHEMA_FILE, 'utf8'));
    return EXIT.ok;
  }
  if (command === 'config' && args[0] !== 'show') throw new UsageError(`config: expected show or schema, got ${JSON.stringify(args[0])}`);
  // Signal handlers before any work (config, lock, store): a SIGTERM that arrives early must still end
  // `run` cleanly (130, store saved) and `watch` with 0, never kill the process mid-write.
  const stop = new AbortController();
  const hup = new EventTarget();
  let log: { warn(m: string): unknown } | undefined;
  if (command === 'run' || command === 'watch') {
    const onStop = (sig: NodeJS.Signals) => {
      if (command === 'run') log?.warn(`${sig}: stopping; in-flight copies are abandoned, the store is saved`);
      stop.abort(sig);
    };
    process.on('SIGINT', onStop).on('SIGTERM', onStop);
    if (command === 'watch') {
      process.on('SIGHUP', () => hup.dispatchEvent(new Event('hup')));
      process.on('SIGUSR2', () => hup.dispatchEvent(new Event('tape'))); // `replica tape open|close` left a request
    }
  }
  workerReady();
  if (command === 'hash') {
    const { hashCommand, checkCommand } = await import('../lib/commands/hash.js');
    return (await (v.check ? checkCommand : hashCommand)(args, process.stdout, json)) ? EXIT.problems : EXIT.ok;
  }
  const { createContext } = await import('../lib/commands/context.js');
  const ctx = await createContext(g, command);
  log = ctx.log;
  switch (command) {
    case 'run': {
      const { runCommand } = await import('../lib/commands/run.js');
      if (stop.signal.aborted) log.warn(`${String(stop.signal.reason)}: stopping before any work`);
      const r = await runCommand(ctx, { target: v.target, dryRun: v.dryRun, maxDelete: count(v.maxDelete, '--max-delete'), flush: v.flush, signal: stop.signal, verbose: v.verbose });
      return r.ok ? EXIT.ok : EXIT.problems;
    }
    case 'watch': {
      await (await import('../lib/commands/watch.js')).watchCommand(ctx, { signal: stop.signal, hup });
      // The agent has saved the store and released the lock. chokidar can leave an fs.watch handle open
      // after watch-limit (ENOSPC) errors, which would keep the process alive: exit explicitly.
      return EXIT.ok;
    }
    case 'config': process.stdout.write(`${JSON.stringify(ctx.config, null, 2)}\n`); return EXIT.ok;
    case 'status': await (await import('../lib/commands/status.js')).statusCommand(ctx); return EXIT.ok;
    case 'new-files': {
      const { newFilesCommand } = await import('../lib/commands/newFiles.js');
      await newFilesCommand(ctx, { since: v.since, target: v.target, nul: v.nul });
      return EXIT.ok;
    }
    case 'where-is': {
      const r = await (await import('../lib/commands/whereIs.js')).whereIsCommand(ctx, args);
      return r.unmatched.length ? EXIT.problems : EXIT.ok;
    }
    case 'restore': {
      const r = await (await import('../lib/commands/restore.js')).restoreCommand(ctx, args, { from: v.from, to: v.to, at: v.at, force: v.force, fsync: v.fsync });
      return r.every((x) => x.ok) ? EXIT.ok : EXIT.problems;
    }
    case 'verify': {
      const r = await (await import('../lib/commands/verify.js')).verifyCommand(ctx, args, { target: v.target, budget: v.budget, all: v.all, noUpdate: v.update === false });
      return r.every((x) => !x.bad.length && !x.error) ? EXIT.ok : EXIT.problems;
    }
    case 'adopt': {
      const r = await (await import('../lib/commands/adopt.js')).adoptCommand(ctx, { target: v.target, host: v.host, dryRun: v.dryRun });
      return r.unreadable.length ? EXIT.problems : EXIT.ok;
    }
    case 'retry': return (await (await import('../lib/commands/retry.js')).retryCommand(ctx, args, { target: v.target })).unmatched.length ? EXIT.problems : EXIT.ok;
    case 'ignore': return (await (await import('../lib/commands/retry.js')).ignoreCommand(ctx, args, { target: v.target, reason: v.reason })).unmatched.length ? EXIT.problems : EXIT.ok;
    case 'tape': await (await import('../lib/commands/tape.js')).tapeCommand(ctx, args, { target: v.target, serial: v.serial }); return EXIT.ok;
    case 'manifest': await (await import('../lib/commands/manifest.js')).manifestCommand(ctx, { target: v.target }); return EXIT.ok;
    case 'check': {
      const items = await (await import('../lib/commands/check.js')).checkCommand(ctx);
      // agrees with `run`: a config that run refuses (78) is a config error here too
      return items.some((i) => i.configError) ? EXIT.config : items.every((i) => i.ok) ? EXIT.ok : EXIT.problems;
    }
  }
  /* c8 ignore next */
  throw new UsageError(`unknown command ${command}`);
}

/**
 * An error as its exit code, said on stderr in one line (a config error: one line per problem); with `--json`
 * also as one JSON line on stdout: {"error": {"exitCode", "class", "message"}}.
 */
function report(err: unknown, json = false): number {
  const code = exitCodeOf(err);
  if (json) process.stdout.write(`${JSON.stringify({ error: { exitCode: code, class: err instanceof Error ? err.name : 'Error', message: messageOf(err) } })}\n`);
  const say = (msg: string) => process.stderr.write(`${msg}\n`);
  if (err instanceof LockedError) {
    // cron overlap: quietly; a person at a terminal is told who holds it
    if (process.stderr.isTTY) say(`replica: ${err.message}`);
    return EXIT.locked;
  }
  if (err instanceof ConfigError) { say(err.message); return EXIT.config; }
  if (err instanceof UsageError) { say(`replica: ${err.message}\nrun \`replica --help\` (or \`replica help COMMAND\`) for usage`); return EXIT.usage; }
  if (err instanceof StoreError) { say(`replica: ${err.message}`); return EXIT.store; }
  if (err instanceof InterruptedError) { say(`replica: ${err.message}; the store was saved`); return EXIT.interrupted; }
  if (err instanceof ReplicaError) { say(`replica: ${err.message}`); return EXIT.problems; }
  say(`replica: unexpected error: ${err instanceof Error ? err.stack : String(err)}`);
  return EXIT.problems;
}

function exitCodeOf(err: unknown): number {
  if (err instanceof LockedError) return EXIT.locked;
  if (err instanceof ConfigError) return EXIT.config;
  if (err instanceof UsageError) return EXIT.usage;
  if (err instanceof StoreError) return EXIT.store;
  if (err instanceof InterruptedError) return EXIT.interrupted;
  return EXIT.problems;
}
