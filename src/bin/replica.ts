#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { ConfigError, InterruptedError, LockedError, ReplicaError, StoreError, UsageError, messageOf } from '../lib/errors.js';
import type { GlobalOptions } from '../lib/commands/context.js';
import { VERSION } from '../lib/version.js';
import { LOG_LEVELS } from '../lib/config/schema.js';
import { SUPERVISED_ENV, dieWithSupervisor, exitWith, supervise, workerReady } from './supervisor.js';
// Command modules are imported when used: `replica hash` need not load the store, winston or cosmiconfig.

/** The exit-code table (printed by --help): the only place errors become exit codes. */
export const EXIT = { ok: 0, problems: 1, usage: 2, store: 74, locked: 75, config: 78, interrupted: 130 } as const;

const HELP = `replica ${VERSION}: back up every settled file to every target, verified

usage: replica <command> [options]

commands:
  run [--target N] [--dry-run] [--max-delete N] [-v]
                                   reconcile, hash, copy + verify everything due, save, exit (the cron job);
                                   off a terminal it prints nothing when all went well (-v: the summary);
                                   with deleteLocalAfter, removes at most N (deleteLocalMax) source files
                                   verified on every target that long; --dry-run lists them
  status                           per target: verified / pending / failed, oldest unverified, last run
  verify [--target N] [--budget SIZE | --all] [--no-update] [PATH|GLOB|NAME...]
                                   the scrub: read copies back, oldest verification first, within the budget
                                   per target (default verify.budget); bad ones are failed and repaired by
                                   the next run; --no-update: report only (works while the store is locked)
  retry [--target N] [PATH|GLOB|NAME...]
                                   failed copies get their attempts back (ignored ones are pending again)
  ignore PATH|GLOB|NAME... [--target N] [--reason TEXT]
                                   copies not owed any more (listed with the reason) until the file changes
  new-files [--since 24h|ISO] [--target N] [-0]
                                   files not yet verified on every target (scanned now)
  watch                            the agent: a run at start, then file events, rescans, heartbeat;
                                   SIGTERM/SIGINT stop cleanly (exit 0), SIGHUP reloads the config
  check                            config, targets (reachable, mounted, writable), inotify budget, store
  restore PATH|GLOB|NAME... [--from N] [--to DIR] [--at TIME] [--force] [--fsync]
                                   hash-checked from the first target whose copy is right (or only N), to
                                   DIR/<abs path>, or in place where the source is missing (or --force);
                                   --at: the content current at TIME (ISO time, or an age: 7d); --fsync:
                                   on disk before each batch is renamed into place (as rsync --fsync)
  where-is PATH|GLOB|NAME...      hash, size and, per target, state, location, verifiedAt and versions kept;
                                   a NAME (no /) matches that file name anywhere
  manifest [--target N]            "<xxh64>  <host>/<abs path>" of every copy verified on N (default: on
                                   every target), sorted: \`cd <target base> && xxhsum -c\` checks them
  adopt --target N [--host H] [--dry-run]
                                   enrol an existing per-host backup: copies under <base>/<H>/ (default H:
                                   this host) equal to the settled source are verified there without copying;
                                   different ones are copied by the next run; orphans are recorded as deleted
                                   at the source (where-is, restore find them)
  hash FILE...                     print "<xxh64>  <file>" exactly as \`xxhsum -H1\` does

options (before or after the command):
  --config FILE                    config file (else $REPLICA_CONFIG, else replica.config.json etc. from the cwd upward)
  --json                           machine output on stdout (logs stay on stderr)
  --log-level LEVEL                error, warn, info, verbose, debug
  -h, --help                       this help; --version prints the version

exit codes:
  0    ok
  1    done, but some files failed or problems were found
  2    usage error (unknown command or option)
  74   store unusable and no good snapshot
  75   another replica holds the store lock (cron overlap: exits at once, quietly)
  78   config error (one line per problem, naming the key)
  130  run interrupted by SIGINT/SIGTERM (the store was saved)
`;

const OPTIONS = {
  config: { type: 'string' }, json: { type: 'boolean' }, 'log-level': { type: 'string' },
  help: { type: 'boolean', short: 'h' }, version: { type: 'boolean' },
  target: { type: 'string' }, 'dry-run': { type: 'boolean' }, verbose: { type: 'boolean', short: 'v' }, since: { type: 'string' }, nul: { type: 'boolean', short: '0' },
  from: { type: 'string' }, to: { type: 'string' }, at: { type: 'string' }, force: { type: 'boolean' }, fsync: { type: 'boolean' }, host: { type: 'string' },
  'max-delete': { type: 'string' }, budget: { type: 'string' }, all: { type: 'boolean' }, 'no-update': { type: 'boolean' }, reason: { type: 'string' },
} as const;
const GLOBAL = ['config', 'json', 'log-level', 'help', 'version'];
const COMMAND_OPTIONS: Record<string, string[]> = {
  run: ['target', 'dry-run', 'verbose', 'max-delete'], watch: [], status: [], 'new-files': ['since', 'target', 'nul'], check: [], hash: [], manifest: ['target'], 'where-is': [], restore: ['from', 'to', 'at', 'force', 'fsync'],
  verify: ['target', 'budget', 'all', 'no-update'], adopt: ['target', 'host', 'dry-run'], retry: ['target'], ignore: ['target', 'reason'],
};

type Values = { [K in keyof typeof OPTIONS]?: (typeof OPTIONS)[K]['type'] extends 'string' ? string : boolean };

function parse(argv: string[]): { command?: string; args: string[]; values: Values } {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(messageOf(err));
  }
  const [command, ...args] = parsed.positionals;
  const values = { ...parsed.values } as { -readonly [K in keyof Values]: Values[K] };
  if (values['log-level'] !== undefined) {
    const level = values['log-level'].toLowerCase();
    if (!(LOG_LEVELS as readonly string[]).includes(level)) throw new UsageError(`--log-level: expected one of ${LOG_LEVELS.join(', ')} (any case), got ${JSON.stringify(values['log-level'])}`);
    values['log-level'] = level;
  }
  if (command !== undefined) {
    const allowed = COMMAND_OPTIONS[command];
    if (!allowed) throw new UsageError(`unknown command ${JSON.stringify(command)}; commands: ${Object.keys(COMMAND_OPTIONS).join(', ')}`);
    for (const k of Object.keys(values)) {
      if (!GLOBAL.includes(k) && !allowed.includes(k)) throw new UsageError(`option --${k} does not apply to \`replica ${command}\``);
    }
    if (!['hash', 'where-is', 'restore', 'verify', 'retry', 'ignore'].includes(command) && args.length) throw new UsageError(`unexpected argument ${JSON.stringify(args[0])} for \`replica ${command}\``);
    if (command === 'hash' && !args.length) throw new UsageError('replica hash: give at least one FILE');
  }
  return { command, args, values };
}

/** A count option's value (a whole number >= 0), or undefined when not given. */
function count(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new UsageError(`${flag}: expected a whole number (0 or more), got ${JSON.stringify(v)}`);
  return Number(v);
}

/** Run the CLI; resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  let json = false;
  try {
    const { command, args, values } = parse(argv);
    json = values.json ?? false;
    if (values.version) { process.stdout.write(`${VERSION}\n`); return EXIT.ok; }
    if (values.help || !command) {
      (command || values.help ? process.stdout : process.stderr).write(HELP);
      return values.help ? EXIT.ok : EXIT.usage;
    }
    const g: GlobalOptions = { config: values.config, json, logLevel: values['log-level'] };
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
      if (command === 'watch') process.on('SIGHUP', () => hup.dispatchEvent(new Event('hup')));
    }
    workerReady();
    if (command === 'hash') {
      const { hashCommand } = await import('../lib/commands/hash.js');
      return (await hashCommand(args, process.stdout, json)) ? EXIT.problems : EXIT.ok;
    }
    const { createContext } = await import('../lib/commands/context.js');
    const ctx = await createContext(g, command);
    log = ctx.log;
    switch (command) {
      case 'run': {
        const { runCommand } = await import('../lib/commands/run.js');
        if (stop.signal.aborted) log.warn(`${String(stop.signal.reason)}: stopping before any work`);
        const r = await runCommand(ctx, { target: values.target, dryRun: values['dry-run'], maxDelete: count(values['max-delete'], '--max-delete'), signal: stop.signal, verbose: values.verbose });
        return r.ok ? EXIT.ok : EXIT.problems;
      }
      case 'watch': {
        await (await import('../lib/commands/watch.js')).watchCommand(ctx, { signal: stop.signal, hup });
        // The agent has saved the store and released the lock. chokidar can leave an fs.watch handle open
        // after watch-limit (ENOSPC) errors, which would keep the process alive: exit explicitly.
        return EXIT.ok;
      }
      case 'status': await (await import('../lib/commands/status.js')).statusCommand(ctx); return EXIT.ok;
      case 'new-files': {
        const { newFilesCommand } = await import('../lib/commands/newFiles.js');
        await newFilesCommand(ctx, { since: values.since, target: values.target, nul: values.nul });
        return EXIT.ok;
      }
      case 'where-is': {
        const r = await (await import('../lib/commands/whereIs.js')).whereIsCommand(ctx, args);
        return r.unmatched.length ? EXIT.problems : EXIT.ok;
      }
      case 'restore': {
        const r = await (await import('../lib/commands/restore.js')).restoreCommand(ctx, args, { from: values.from, to: values.to, at: values.at, force: values.force, fsync: values.fsync });
        return r.every((x) => x.ok) ? EXIT.ok : EXIT.problems;
      }
      case 'verify': {
        const r = await (await import('../lib/commands/verify.js')).verifyCommand(ctx, args, { target: values.target, budget: values.budget, all: values.all, noUpdate: values['no-update'] });
        return r.every((x) => !x.bad.length && !x.error) ? EXIT.ok : EXIT.problems;
      }
      case 'adopt': {
        const r = await (await import('../lib/commands/adopt.js')).adoptCommand(ctx, { target: values.target, host: values.host, dryRun: values['dry-run'] });
        return r.unreadable.length ? EXIT.problems : EXIT.ok;
      }
      case 'retry': await (await import('../lib/commands/retry.js')).retryCommand(ctx, args, { target: values.target }); return EXIT.ok;
      case 'ignore': await (await import('../lib/commands/retry.js')).ignoreCommand(ctx, args, { target: values.target, reason: values.reason }); return EXIT.ok;
      case 'manifest': await (await import('../lib/commands/manifest.js')).manifestCommand(ctx, { target: values.target }); return EXIT.ok;
      case 'check': {
        const items = await (await import('../lib/commands/check.js')).checkCommand(ctx);
        // agrees with `run`: a config that run refuses (78) is a config error here too
        return items.some((i) => i.configError) ? EXIT.config : items.every((i) => i.ok) ? EXIT.ok : EXIT.problems;
      }
    }
    /* c8 ignore next */
    throw new UsageError(`unknown command ${command}`);
  } catch (err) {
    return report(err);
  }
}

function report(err: unknown): number {
  const say = (msg: string) => process.stderr.write(`${msg}\n`);
  if (err instanceof LockedError) {
    // cron overlap: quietly; a person at a terminal is told who holds it
    if (process.stderr.isTTY) say(`replica: ${err.message}`);
    return EXIT.locked;
  }
  if (err instanceof ConfigError) { say(err.message); return EXIT.config; }
  if (err instanceof UsageError) { say(`replica: ${err.message}\nrun \`replica --help\` for usage`); return EXIT.usage; }
  if (err instanceof StoreError) { say(`replica: ${err.message}`); return EXIT.store; }
  if (err instanceof InterruptedError) { say(`replica: ${err.message}; the store was saved`); return EXIT.interrupted; }
  if (err instanceof ReplicaError) { say(`replica: ${err.message}`); return EXIT.problems; }
  say(`replica: unexpected error: ${err instanceof Error ? err.stack : String(err)}`);
  return EXIT.problems;
}

/** Commands that touch targets (which may hang in the kernel) run in a supervised worker (supervisor.ts). */
const TARGET_COMMANDS = new Set(['run', 'watch', 'check', 'where-is', 'restore', 'verify', 'adopt']);

const argv = process.argv.slice(2);
if (process.env[SUPERVISED_ENV] !== '1' && argv.some((a) => TARGET_COMMANDS.has(a))) {
  supervise(fileURLToPath(import.meta.url), argv);
} else {
  // Explicit exit: a stuck thread-pool call must not keep the process alive (the supervisor kills it if
  // even exiting hangs), and chokidar can leave an fs.watch handle open after watch-limit errors.
  dieWithSupervisor();
  void main(argv).then(exitWith);
}
