import { Command, Option } from 'commander';
import { VERSION } from '../lib/version.js';

/**
 * The one table of replica's commands and options. The commander program (`replica.ts`), `replica help`,
 * each command's `--help`, the shell completions (`replica completion bash|zsh|fish`), the man page and
 * docs/cli.md are all generated from it, so they cannot disagree.
 */

export interface OptSpec {
  /** commander flags: `-t, --target <name>` */
  flags: string;
  help: string;
  /** values for completion and checking */
  choices?: readonly string[];
  /** what completion offers for the value: files, directories */
  complete?: 'file' | 'dir';
}

export interface CmdSpec {
  name: string;
  /** commander argument syntax: `<path...>`, `[path...]` */
  args?: string;
  /** one line for the command list */
  summary: string;
  /** the full description (help, man page, docs) */
  details: string;
  options: OptSpec[];
  /** `command` and what it does */
  examples: [string, string][];
  /** what the exit codes mean for this command, where it differs from the table */
  exit?: string;
}

/** The date on the man pages (their content changes with the version, not the day they are built). */
export const MAN_DATE = '2026-11-30';

const TARGET: OptSpec = { flags: '--target <name>', help: 'only this target (a name from the config)' };
const MATCH = '<path|glob|name...>';

export const GLOBAL_OPTIONS: OptSpec[] = [
  { flags: '--config <file>', help: 'config file (else $REPLICA_CONFIG, else replica.config.json etc. from the cwd upward, /etc/replica, ~/.config/replica)', complete: 'file' },
  { flags: '--json', help: 'machine output on stdout (logs stay on stderr); errors as one JSON line' },
  { flags: '--log-level <level>', help: 'error, warn, info, verbose or debug (any case)', choices: ['error', 'warn', 'info', 'verbose', 'debug'] },
];

export const EXIT_CODES: [number, string][] = [
  [0, 'ok'],
  [1, 'done, but some files failed or problems were found'],
  [2, 'usage error (unknown command or option, a --target that is not configured)'],
  [74, 'store unusable and no good snapshot'],
  [75, 'another replica holds the store lock (cron overlap: exits at once, quietly)'],
  [78, 'config error (one line per problem, naming the key)'],
  [130, 'run interrupted by SIGINT/SIGTERM (the store was saved)'],
];

export const COMMANDS: CmdSpec[] = [
  {
    name: 'run', summary: 'one pass: reconcile, hash, copy + verify everything due, save, exit (the cron job)',
    details: 'Lock the store; scan the sources; hash settled files; copy, make durable and read back every due file on every target; wait up to `settle` for files seen changing; write completeness markers; with deleteLocalAfter, remove source files verified on every target that long (each after a live check); save; ship the store to every target. Off a terminal it prints nothing when all went well (cron mails only problems).',
    options: [TARGET, { flags: '--dry-run', help: 'list what would be copied (and removed by deleteLocalAfter); write nothing' },
      { flags: '--max-delete <n>', help: 'deleteLocalAfter: remove at most N source files in this pass (default: deleteLocalMax)' },
      { flags: '--flush', help: 'tape targets: write what is pending now as a tape file, however small (else they wait for volumeSize or maxWait)' },
      { flags: '-v, --verbose', help: 'print the summary even when all went well' }],
    examples: [['replica run', 'the cron job (every 5 minutes)'], ['replica run --dry-run', 'what a pass would copy and remove'], ['replica run --target usb -v', 'only the usb target, with the summary'],
      ['replica run --flush --target lto', 'archive what is pending to tape now']],
    exit: '0 every settled file is verified on every target; 1 a file or target failed, a source is missing, or the store could not be shipped; 130 interrupted (store saved)',
  },
  {
    name: 'watch', summary: 'the agent: a pass at start, then file events, rescans, retries, the scrub',
    details: 'Run by systemd (replica.service). A full pass at start, then file events (chokidar or @parcel/watcher) with a settle timer per file, full rescans every `rescan`, retries and down targets looked at every minute, the scrub within verify.budget a day, the heartbeat. SIGTERM/SIGINT: stop cleanly (exit 0); SIGHUP: reload the config.',
    options: [], examples: [['systemctl start replica', 'as a service'], ['replica watch --log-level verbose', 'in a terminal, chatty']],
  },
  {
    name: 'status', summary: 'per target: verified / pending / failed, scrub coverage, last run',
    details: 'Per target: files and bytes verified, pending, failed (by error class, with the latest message) and ignored; scrub coverage and the oldest verification; the oldest unverified file; target-wide errors; deleteLocalAfter and completeness markers when configured. Reads the store without the lock.',
    options: [], examples: [['replica status', 'for a person'], ['replica status --json | jq .targets', 'docs/schemas/status.schema.json']],
  },
  {
    name: 'verify', args: '[path|glob|name...]', summary: 'the scrub: read copies back, oldest verification first, within a budget',
    details: 'Read verified copies back and compare them with the store, oldest verification first, up to the budget per target (default verify.budget). Good copies get a new verifiedAt; bad ones become failed (mismatch, missing, or the target\'s class) and are repaired by the next run.',
    options: [TARGET, { flags: '--budget <size>', help: 'bytes to read per target (e.g. 50GiB)' }, { flags: '--all', help: 'read every copy' },
      { flags: '--no-update', help: 'report only: write nothing (works while another replica holds the lock)' }],
    examples: [['replica verify', 'the oldest copies, up to verify.budget per target'], ['replica verify --all --target nas', 'every copy on one target'], ['replica verify --no-update /data/2026', 'report only']],
    exit: '0 every copy read was good; 1 a copy was bad or a target could not be read',
  },
  {
    name: 'retry', args: '[path|glob|name...]', summary: 'failed copies get their attempts back; ignored ones are pending again',
    details: 'Failed copies (all, or those matching) get their attempts back and are due at once; ignored copies are pending again; a source file deleteLocalAfter could not remove is tried again. Prints how many files changed. A PATH, GLOB or NAME that matches nothing the store knows is said on stderr and makes the exit 1 (as where-is).',
    options: [TARGET], examples: [['replica retry', 'everything failed'], ['replica retry --target popeye', 'after the server is fixed']],
  },
  {
    name: 'ignore', args: MATCH, summary: 'copies not owed any more (listed with the reason) until the file changes',
    details: 'Copies not verified yet are set to ignored, recording when and why: they no longer count against exit 0 or the monitor, and status and the monitor list them. A new content of the file makes it pending again. A PATH, GLOB or NAME that matches nothing the store knows is said on stderr and makes the exit 1 (as where-is).',
    options: [TARGET, { flags: '--reason <text>', help: 'why (shown by status and the monitor)' }],
    examples: [['replica ignore /data/bad.fits --reason "sector lost at the source"', 'stop retrying one file']],
  },
  {
    name: 'new-files', summary: 'files not yet verified on every target (scanned now)',
    details: 'Scan the sources now and list files not verified on every target (or on --target) whose mtime is at or after --since.',
    options: [{ flags: '--since <time>', help: 'an age (24h, 7d) or an ISO time' }, TARGET, { flags: '-0, --nul', help: 'NUL-separated raw paths (for xargs -0)' }],
    examples: [['replica new-files --since 24h', 'what the last day left unprotected'], ['replica new-files -0 | xargs -0 ls -l', 'raw names']],
  },
  {
    name: 'check', summary: 'config, sources, targets (reachable, mounted, writable), inotify budget, store',
    details: 'Validate the config; check each source is readable and what its patterns keep; each target reachable, authenticated, mounted, writable, and its free space; fs.inotify.max_user_watches; the store loadable; scrub budget against the bytes stored.',
    options: [], examples: [['replica check', 'after editing the config'], ['replica check --json', 'per item: ok, message']],
    exit: '0 all good; 1 something is wrong; 78 the config is one run would refuse',
  },
  {
    name: 'restore', args: MATCH, summary: 'copy back from the first target whose copy hashes right (or a version)',
    details: 'Every file the store knows that matches is restored, hash-checked, from the first target (config order) whose copy hashes to the store hash, or only from --from: to DIR/<abs path> with --to, else in place where the source is missing (or over it with --force). Written via a temp name and a rename, with the recorded mtime and mode.',
    options: [{ flags: '--from <name>', help: 'only this target' }, { flags: '--to <dir>', help: 'restore under DIR (DIR/<abs path>)', complete: 'dir' },
      { flags: '--at <time>', help: 'the content current at TIME (ISO time, or an age: 7d), from the versions kept' },
      { flags: '--force', help: 'overwrite a source file that exists' }, { flags: '--fsync', help: 'on disk before each batch is renamed into place' }],
    examples: [['replica restore /data/2026-11-30', 'a directory, in place where missing'], ['replica restore img_0042.fits --to /tmp/r', 'a name, anywhere, to /tmp/r'], ['replica restore /data/log.txt --at 2026-11-29T12:00', 'as it was then']],
    exit: '0 every match restored; 1 a match could not be restored from any target; 2 nothing matches (or nothing existed at TIME)',
  },
  {
    name: 'where-is', args: MATCH, summary: 'hash, size and, per target, state, location, verifiedAt, versions',
    details: 'Every file the store knows that matches (a path: that file or everything under it; a glob; a bare NAME: that file name anywhere, as tapetown\'s where_is): hash, size, and per target its state, location (a path, ssh:// or s3:// URL), verifiedAt and the versions kept there. Sorted by path; each match is printed as soon as its versions are known (a glob over a million records is never held as one text). An argument that matches nothing is said on stderr, with --json too.',
    options: [], examples: [['replica where-is img_0042.fits', 'by name'], ['replica where-is --json "/data/**/*.fits"', 'docs/schemas/where-is.schema.json']],
    exit: '0 every argument matched; 1 one matched nothing',
  },
  {
    name: 'manifest', summary: '"<xxh64>  <host>/<abs path>" of every verified copy: checkable with xxhsum -c',
    details: 'Every copy verified on --target (default: verified on every target), sorted by path, as GNU *sum tools write them (a name with a backslash or newline escaped). `cd <target base> && xxhsum -c` checks them without replica.',
    options: [TARGET], examples: [['replica manifest --target backup > m.xxh64 && (cd /mnt/backup && xxhsum -c m.xxh64)', 'check a target without replica']],
  },
  {
    name: 'adopt', summary: 'enrol an existing per-host backup: equal copies are verified without copying',
    details: 'Scan and hash the sources, then walk <base>/<H>/ on the target: copies equal to the settled source are verified there without copying; different ones are copied by the next run (kept as a version); copies whose source is gone become deleted-at-source records (where-is and restore find them). Hashes are computed where the copies are.',
    options: [{ flags: '--target <name>', help: 'the target holding the existing backup (required)' }, { flags: '--host <name>', help: 'the host directory to walk (default: this host)' },
      { flags: '--dry-run', help: 'report only; record nothing' }],
    examples: [['replica adopt --target backup --dry-run', 'what would be adopted'], ['replica adopt --target backup --host exao1-old', 'the volume kept this machine under another name']],
    exit: '0 done; 1 a copy could not be hashed',
  },
  {
    name: 'tape', args: '<action> [label]', summary: 'tape list | status [LABEL] | open LABEL [--serial S] | close [LABEL]: the tapes of a tape target',
    details: 'The catalog of a tape:// target (kept in the store): `list` its tapes (state open, full or closed; bytes; tape files confirmed and unusable); `status [LABEL]` also every tape file; `open LABEL` makes the tape loaded in the drive the one written to (a new label is made ready: the emulator makes its directory, a drive gets the label as tape file 0); `close [LABEL]` ends writing to it. With no tape open the target is down (`not-mounted`, "no tape open"); a tape that fills is marked full and its files wait for the next one. `open` and `close` take the store lock; while `replica watch` holds it, the agent is asked to do it (a request in the store directory and SIGUSR2) and its answer is printed.',
    options: [{ flags: '--target <name>', help: 'the tape target (default: the only one)' }, { flags: '--serial <s>', help: 'open: the tape\'s serial or barcode, recorded' }],
    examples: [['replica tape open T001 --serial 000123L8', 'start writing to a new tape'], ['replica tape list', 'every tape, its state and bytes'], ['replica tape status T001 --json', 'its tape files and members'],
      ['replica tape close', 'stop writing to the open tape']],
    exit: '0 done; 1 the tape could not be opened or closed (a full or closed label, a tape that already holds data), or the agent did not answer; 2 no tape target, or a bad action; 75 (open, close) a `run` holds the lock',
  },
  {
    name: 'hash', args: '<file...>', summary: 'print "<xxh64>  <file>" exactly as xxhsum -H1 does; -c checks a list',
    details: 'Hash files (`-`: stdin) with the agent\'s own hashing code; the output is byte-identical to `xxhsum -H1`. With -c, each FILE is a list of `<xxh64>  <name>` lines (as xxhsum -H1 and replica manifest write them; `-`: stdin) and every name in it is checked, as `xxhsum -c` does.',
    options: [{ flags: '-c, --check', help: 'read checksum lists and check the files they name' }],
    examples: [['replica hash img.fits', 'compare with xxhsum -H1 img.fits'], ['tar -cf - data | replica hash -', 'a stream'],
      ['cd /mnt/backup && replica manifest --target backup | replica hash -c -', 'check a target without xxhsum']],
    exit: '0 every file hashed (or matched); 1 a file could not be read, or did not match',
  },
  {
    name: 'config', args: '<action>', summary: 'config show: the effective config and where it was found; config schema: its JSON Schema',
    details: '`replica config show` prints the effective config as JSON: every key with its default filled in, durations in ms, sizes in bytes, paths absolute, and `file`, the config file it was found in. `replica config schema` prints the JSON Schema (draft 2020-12) of the config file (docs/schemas/config.schema.json): point `"$schema"` at it and an editor completes and checks the config.',
    options: [], examples: [['replica config show', 'what replica will use, and from which file'], ['replica config schema > replica.schema.json', 'for an editor']],
    exit: '0 printed; 78 the config is invalid (show)',
  },
  {
    name: 'completion', args: '<shell>', summary: 'print the shell completion script (bash, zsh, fish)',
    details: 'Print a completion script for bash, zsh or fish, generated from the same table as the help.',
    options: [],
    examples: [['source <(replica completion bash)', 'bash, this shell'], ['replica completion fish > ~/.config/fish/completions/replica.fish', 'fish, for good']],
  },
];

const longName = (o: OptSpec) => /--([a-z0-9-]+)/.exec(o.flags)![1];
const shortName = (o: OptSpec) => /^-([a-zA-Z0-9]),/.exec(o.flags)?.[1];
const takesValue = (o: OptSpec) => o.flags.includes('<');

/** The exit-code table as help text. */
export const exitTable = (indent = '  '): string => EXIT_CODES.map(([c, m]) => `${indent}${String(c).padEnd(5)}${m}`).join('\n');

/** Examples and exit codes after a command's help. */
function helpAfter(c: CmdSpec): string {
  const ex = c.examples.map(([cmd, what]) => `  $ ${cmd}\n      ${what}`).join('\n');
  return `\nExamples:\n${ex}\n\nExit codes:${c.exit ? `\n  ${c.exit}` : ''}\n${exitTable()}\n`;
}

/** Add the global options to a command (they may come before or after the command name). */
function addGlobals(cmd: Command): void {
  for (const o of GLOBAL_OPTIONS) cmd.addOption(new Option(o.flags, o.help));
}

/**
 * The commander program, with `onCommand(name, args, options)` as every command's action. Parse errors and
 * `--help`/`--version` throw CommanderError (exitOverride): the caller maps them to exit codes.
 */
export function buildProgram(onCommand: (name: string, args: string[], opts: Record<string, unknown>) => Promise<void>): Command {
  const program = new Command('replica')
    .description('back up every settled file to every target, verified')
    .version(VERSION, '-V, --version', 'print the version')
    .helpOption('-h, --help', 'this help')
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({ outputError: () => undefined }) // the caller says it, in one line (inherited by every command)
    .addHelpText('after', `\nExit codes:\n${exitTable()}\n\nEvery command takes --config FILE, --json and --log-level LEVEL. \`replica help COMMAND\` (or \`replica COMMAND --help\`) for its options and examples.\n`);
  addGlobals(program);
  for (const c of COMMANDS) {
    const cmd = program.command(c.name).summary(c.summary).description(`${c.summary}\n\n${c.details}`).exitOverride().showSuggestionAfterError(true)
      .helpOption('-h, --help', 'this help');
    if (c.args) cmd.arguments(c.args);
    for (const o of c.options) cmd.addOption(new Option(o.flags, o.help));
    addGlobals(cmd);
    cmd.addHelpText('after', helpAfter(c));
    cmd.action(async (...a: unknown[]) => {
      const command = a.at(-1) as Command;
      // commander passes each declared argument (a variadic one as an array), then the options, then the command
      const args = (a.slice(0, -2) as (string | string[] | undefined)[]).flat().filter((x): x is string => x !== undefined);
      await onCommand(c.name, args, command.optsWithGlobals());
    });
  }
  return program;
}

/** `replica completion bash|zsh|fish`: the script, from the table. */
export function completionScript(shell: string): string | undefined {
  const names = COMMANDS.map((c) => c.name).concat('help');
  const opts = (c?: CmdSpec) => [...(c?.options ?? []), ...GLOBAL_OPTIONS, { flags: '-h, --help', help: 'help' }];
  if (shell === 'bash') {
    const cases = COMMANDS.map((c) => `    ${c.name}) opts="${opts(c).map((o) => `--${longName(o)}`).join(' ')}" ;;`).join('\n');
    const values = [...COMMANDS.flatMap((c) => c.options), ...GLOBAL_OPTIONS].filter(takesValue);
    const valueCases = [...new Map(values.map((o) => [longName(o), o])).values()]
      .map((o) => `    --${longName(o)}) ${o.choices ? `COMPREPLY=($(compgen -W "${o.choices.join(' ')}" -- "$cur"))` : o.complete === 'dir' ? 'COMPREPLY=($(compgen -d -- "$cur"))' : 'COMPREPLY=($(compgen -f -- "$cur"))'}; return ;;`).join('\n');
    return `# bash completion for replica ${VERSION} (replica completion bash)
_replica() {
  local cur prev cmd opts i
  cur="\${COMP_WORDS[COMP_CWORD]}"
  prev="\${COMP_WORDS[COMP_CWORD-1]}"
  case "$prev" in
${valueCases}
  esac
  cmd=""
  for ((i = 1; i < COMP_CWORD; i++)); do
    case "\${COMP_WORDS[i]}" in -*) ;; *) cmd="\${COMP_WORDS[i]}"; break ;; esac
  done
  if [[ -z "$cmd" ]]; then
    if [[ "$cur" == -* ]]; then COMPREPLY=($(compgen -W "${opts().map((o) => `--${longName(o)}`).join(' ')} --version" -- "$cur"))
    else COMPREPLY=($(compgen -W "${names.join(' ')}" -- "$cur")); fi
    return
  fi
  case "$cmd" in
${cases}
    help) COMPREPLY=($(compgen -W "${COMMANDS.map((c) => c.name).join(' ')}" -- "$cur")); return ;;
    completion) COMPREPLY=($(compgen -W "bash zsh fish" -- "$cur")); return ;;
    *) opts="" ;;
  esac
  if [[ "$cur" == -* ]]; then COMPREPLY=($(compgen -W "$opts" -- "$cur")); else COMPREPLY=($(compgen -f -- "$cur")); fi
}
complete -F _replica replica
`;
  }
  const q = (s: string) => s.replace(/'/g, "'\\''");
  if (shell === 'fish') {
    const lines = [`# fish completion for replica ${VERSION} (replica completion fish)`, 'complete -c replica -f'];
    for (const c of COMMANDS) lines.push(`complete -c replica -n '__fish_use_subcommand' -a ${c.name} -d '${q(c.summary)}'`);
    lines.push(`complete -c replica -n '__fish_use_subcommand' -a help -d 'help for a command'`);
    lines.push(`complete -c replica -n '__fish_seen_subcommand_from help' -a '${COMMANDS.map((c) => c.name).join(' ')}'`);
    lines.push(`complete -c replica -n '__fish_seen_subcommand_from completion' -a 'bash zsh fish'`);
    const flag = (o: OptSpec, cond: string) => {
      const s = shortName(o);
      const value = !takesValue(o) ? '' : o.choices ? ` -x -a '${o.choices.join(' ')}'` : o.complete ? ' -r -F' : ' -x';
      return `complete -c replica${cond} -l ${longName(o)}${s ? ` -s ${s}` : ''}${value} -d '${q(o.help)}'`;
    };
    for (const o of GLOBAL_OPTIONS) lines.push(flag(o, ''));
    for (const c of COMMANDS) for (const o of c.options) lines.push(flag(o, ` -n '__fish_seen_subcommand_from ${c.name}'`));
    for (const c of COMMANDS.filter((x) => x.args && x.name !== 'completion')) lines.push(`complete -c replica -n '__fish_seen_subcommand_from ${c.name}' -F`);
    return `${lines.join('\n')}\n`;
  }
  if (shell === 'zsh') {
    const spec = (o: OptSpec) => {
      const s = shortName(o);
      const value = takesValue(o) ? `:${longName(o)}:${o.choices ? `(${o.choices.join(' ')})` : o.complete === 'dir' ? '_directories' : '_files'}` : '';
      const body = `[${o.help.replace(/[[\]:']/g, ' ')}]${value}`;
      return s ? `'(-${s} --${longName(o)})'{-${s},--${longName(o)}}'${body}'` : `'--${longName(o)}${body}'`;
    };
    const cases = COMMANDS.map((c) => `    ${c.name}) _arguments ${[...c.options, ...GLOBAL_OPTIONS].map(spec).join(' ')}${c.args ? " '*:file:_files'" : ''} ;;`).join('\n');
    return `#compdef replica
# zsh completion for replica ${VERSION} (replica completion zsh)
_replica() {
  local -a commands
  commands=(
${COMMANDS.map((c) => `    '${c.name}:${q(c.summary).replace(/:/g, '\\:')}'`).join('\n')}
    'help:help for a command'
  )
  if (( CURRENT == 2 )); then
    _describe 'command' commands
    return
  fi
  local cmd=$words[2]
  shift words; (( CURRENT-- ))
  case $cmd in
${cases}
    help) _describe 'command' commands ;;
  esac
}
compdef _replica replica
`;
  }
  return undefined;
}

const roff = (s: string) => s.replace(/\\/g, '\\e').replace(/^([.'])/gm, '\\&$1').replace(/-/g, '\\-');

/** The man page `replica(1)`, from the table. */
export function manPage(date: string): string {
  const out = [`.TH REPLICA 1 "${date}" "replica ${VERSION}" "User Commands"`, '.SH NAME', 'replica \\- back up every settled file to every target, verified',
    '.SH SYNOPSIS', '.B replica', '\\fICOMMAND\\fR [\\fIOPTIONS\\fR]', '.SH DESCRIPTION',
    roff('replica copies every file an instrument computer writes, once it is settled (closed and unchanged), to every configured target (local disks, ssh servers, S3 buckets), reads each copy back to prove it byte-identical, re-reads the copies on a schedule (the scrub), and gets them back (restore). Its state is a store of one record per file. The full documentation is the README and docs/ of the package.'),
    '.SH GLOBAL OPTIONS'];
  for (const o of GLOBAL_OPTIONS) out.push('.TP', `.B ${roff(o.flags)}`, roff(o.help));
  out.push('.TP', '.B \\-h, \\-\\-help', 'help (for a command: its options, examples and exit codes)', '.TP', '.B \\-V, \\-\\-version', 'print the version');
  out.push('.SH COMMANDS');
  for (const c of COMMANDS) {
    out.push(`.SS replica ${c.name}${c.args ? ` ${roff(c.args)}` : ''}`, roff(c.details));
    for (const o of c.options) out.push('.TP', `.B ${roff(o.flags)}`, roff(o.help));
    if (c.exit) out.push('.PP', `Exit: ${roff(c.exit)}.`);
    for (const [cmd, what] of c.examples) out.push('.PP', '.nf', roff(`$ ${cmd}`), '.fi', '.RS', roff(what), '.RE');
  }
  out.push('.SH EXIT STATUS');
  for (const [code, m] of EXIT_CODES) out.push('.TP', `.B ${code}`, roff(m));
  out.push('.SH FILES', '.TP', '.I /etc/replica/replica.config.json', 'the config of an installed agent', '.SH SEE ALSO', '.BR replica\\-monitor (1),', '.BR xxhsum (1)');
  return `${out.join('\n')}\n`;
}

/** docs/cli.md, from the table (a test checks the committed file is what this generates). */
export function cliMarkdown(): string {
  const out = ['# replica command reference', '', '<!-- generated from src/bin/cli.ts by `npm run docs`: edit the table there, not this file -->', '',
    'Every command takes these options, before or after the command name:', '', '| option | meaning |', '|---|---|'];
  for (const o of GLOBAL_OPTIONS) out.push(`| \`${o.flags}\` | ${o.help} |`);
  out.push('| `-h, --help` | help; for a command: its options, examples and exit codes (also `replica help COMMAND`) |', '| `-V, --version` | print the version |', '');
  out.push('## Exit codes', '', '| code | meaning |', '|---|---|', ...EXIT_CODES.map(([c, m]) => `| ${c} | ${m} |`), '');
  for (const c of COMMANDS) {
    out.push(`## replica ${c.name}${c.args ? ` ${c.args}` : ''}`, '', `${c.summary}.`, '', c.details, '');
    if (c.options.length) out.push('| option | meaning |', '|---|---|', ...c.options.map((o) => `| \`${o.flags}\` | ${o.help} |`), '');
    out.push('Examples:', '', '```bash', ...c.examples.map(([cmd, what]) => `${cmd}   # ${what}`), '```', '');
    if (c.exit) out.push(`Exit codes: ${c.exit}.`, '');
  }
  return `${out.join('\n').trimEnd()}\n`;
}

/** replica-monitor's options: its --help and its man page. */
export const MONITOR_OPTIONS: OptSpec[] = [
  { flags: '--config <file>', help: 'a replica config: its store and the .replica/ of each local target are read when no STORE is given', complete: 'file' },
  { flags: '--format <format>', help: 'text (default), json, html or prometheus (node_exporter textfile)', choices: ['text', 'json', 'html', 'prometheus'] },
  { flags: '--json', help: 'the same as --format json' },
  { flags: '--out <file>', help: 'write the report to FILE (atomically: write then rename) instead of stdout', complete: 'file' },
  { flags: '--stale <duration>', help: 'a heartbeat older than this is CRITICAL (default 1h, or the config\'s monitor.stale)' },
  { flags: '--warn-age <duration>', help: 'a file unverified for longer is WARNING (default 1h)' },
  { flags: '--crit-age <duration>', help: 'a file unverified for longer is CRITICAL (default 24h)' },
  { flags: '--email <address>', help: 'also mail the report (HTML with a text part) to ADDRESS; needs --smtp' },
  { flags: '--smtp <url>', help: 'the SMTP server: smtp://host:25 or smtps://user:pass@host:465' },
  { flags: '--log-level <level>', help: 'accepted for symmetry with replica (the monitor logs nothing)' },
  { flags: '-h, --help', help: 'this help' },
  { flags: '--version', help: 'print the version' },
];

export const MONITOR_EXIT: [number, string][] = [[0, 'OK'], [1, 'WARNING'], [2, 'CRITICAL'], [3, 'UNKNOWN (a store path missing or unreadable, bad usage)']];

/** `replica-monitor --help`. */
export function monitorHelp(): string {
  const w = Math.max(...MONITOR_OPTIONS.map((o) => o.flags.length));
  return `replica-monitor ${VERSION}: is everything backed up, on every machine?

usage: replica-monitor [STORE...] [options]

STORE is a store directory, or a directory of them (e.g. /mnt/backup/.replica). Default: the configured
store plus .replica/* on every local target. Stores are only read, never written.

options:
${MONITOR_OPTIONS.map((o) => `  ${o.flags.padEnd(w)}  ${o.help}`).join('\n')}

exit codes (monitoring-plugin convention):
${MONITOR_EXIT.map(([c, m]) => `  ${c}  ${m}`).join('\n')}
`;
}

/** The man page `replica-monitor(1)`. */
export function monitorManPage(date: string): string {
  const out = [`.TH REPLICA-MONITOR 1 "${date}" "replica ${VERSION}" "User Commands"`, '.SH NAME', 'replica\\-monitor \\- is everything backed up, on every machine?',
    '.SH SYNOPSIS', '.B replica\\-monitor', '[\\fISTORE\\fR...] [\\fIOPTIONS\\fR]', '.SH DESCRIPTION',
    roff('Reads the stores of many machines (each host\'s own store, or the copies every replica ships to its targets under .replica/<host>/) and reports, per host and target, what is verified, pending and failing, the oldest unverified file, scrub coverage, and the problems, as text, JSON, a self-contained HTML page or Prometheus metrics. Stores are only read, never written. STORE is a store directory or a directory of them; without one, the configured store and the .replica/ of every local target are read.'),
    '.SH OPTIONS'];
  for (const o of MONITOR_OPTIONS) out.push('.TP', `.B ${roff(o.flags)}`, roff(o.help));
  out.push('.SH EXIT STATUS');
  for (const [c, m] of MONITOR_EXIT) out.push('.TP', `.B ${c}`, roff(m));
  out.push('.SH EXAMPLES', '.nf', roff('replica-monitor /mnt/backup/.replica'), roff('replica-monitor --format html --out /var/www/backup.html /mnt/backup/.replica'),
    roff('replica-monitor --format prometheus --out /var/lib/node_exporter/replica.prom /mnt/backup/.replica'), '.fi', '.SH SEE ALSO', '.BR replica (1)');
  return `${out.join('\n')}\n`;
}

interface SchemaDoc { type?: string | string[]; default?: unknown; description?: string; properties?: Record<string, SchemaDoc>; items?: SchemaDoc; anyOf?: SchemaDoc[]; $ref?: string; enum?: unknown[]; required?: string[]; minimum?: number }

/** docs/config.md, from the config's JSON Schema: every key with its type, default and meaning. */
export function configMarkdown(schema: SchemaDoc & { $defs: Record<string, SchemaDoc> }, example: string): string {
  const defs = schema.$defs;
  const resolve = (n: SchemaDoc): SchemaDoc => (n.$ref ? { ...defs[n.$ref.replace('#/$defs/', '')], ...n, $ref: undefined } : n);
  const typeOf = (n0: SchemaDoc): string => {
    const n = resolve(n0);
    if (n0.$ref) return n0.$ref.replace('#/$defs/', '');
    if (n.enum) return n.enum.map((e) => JSON.stringify(e)).join(' \\| ');
    if (n.anyOf) return n.anyOf.map(typeOf).join(' or ');
    if (n.type === 'integer' && n.minimum !== undefined) return `integer >= ${n.minimum}`;
    return String(n.type ?? 'object');
  };
  const rows: string[] = [];
  const walk = (props: Record<string, SchemaDoc>, prefix: string, required: string[] = []) => {
    for (const [k, n0] of Object.entries(props)) {
      const n = resolve(n0);
      const key = `${prefix}${k}`;
      const dflt = n0.default ?? n.default;
      rows.push(`| \`${key}\` | ${typeOf(n0)} | ${required.includes(k) ? 'required' : dflt === undefined ? '' : `\`${JSON.stringify(dflt)}\``} | ${(n0.description ?? n.description ?? '').replace(/\|/g, '\\|')} |`);
      if (n.properties && k !== 'timeouts') walk(n.properties, `${key}.`, n.required);
      const item = n.items && resolve(n.items);
      const obj = item?.anyOf?.find((x) => x.properties) ?? item;
      if (obj?.properties) walk(obj.properties, `${key}[].`, obj.required);
    }
  };
  walk(schema.properties!, '', schema.required);
  const t = defs.timeouts.properties!;
  const timeouts = Object.entries(t).map(([k, n]) => `| \`timeouts.${k}\` (also per target) | duration | \`${JSON.stringify(n.default)}\` | ${n.description ?? ''} |`);
  return ['# replica configuration reference', '', '<!-- generated from docs/schemas/config.schema.json by `npm run docs`: edit the schema, not this file -->', '',
    'The config is found by `--config FILE`, `$REPLICA_CONFIG`, then `replica.config.json` (or `.replicarc`, `.replicarc.json|yaml|yml`,',
    '`replica.config.js|cjs|mjs`, `package.json#replica`) from the current directory upward, then `/etc/replica/`, then',
    '`~/.config/replica/`. Relative paths are relative to the config file. `replica config show` prints the effective config;',
    '`replica check` checks it and every target. Its JSON Schema is [schemas/config.schema.json](schemas/config.schema.json).', '',
    `Durations: ${schema.$defs.duration.description!.replace(/^a duration: /, '')}. Sizes: ${schema.$defs.size.description!.replace(/^a size: /, '')}.`, '',
    '| key | type | default | meaning |', '|---|---|---|---|', ...rows, ...timeouts, '',
    'Per-kind target keys: `identity`, `knownHosts`, `hostKeyCheck` only on `ssh://` targets; `endpoint`, `region`, `forcePathStyle`,',
    '`accessKeyEnv`, `secretKeyEnv` only on `s3://` targets; `blockSize`, `capacity`, `volumeSize`, `maxWait` only on `tape://` targets',
    '(a key on the wrong kind is a config error). Any config error exits 78 with one line per problem naming its key path.', '',
    '## Example', '', 'The example config of the package (it backs up `example/data` to two local targets):', '', '```json', example.trimEnd(), '```', ''].join('\n');
}
