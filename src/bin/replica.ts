#!/usr/bin/env node
// The entry: as little as possible is loaded before it is decided where the command runs, since a supervised
// command pays for two Node processes (the supervisor here, the worker that loads the CLI, main.ts).
import { fileURLToPath } from 'node:url';
import { SUPERVISED_ENV, runCli, supervise } from './supervisor.js';

/** Commands that touch targets (which may hang in the kernel) run in a supervised worker (supervisor.ts). */
const TARGET_COMMANDS = new Set(['run', 'watch', 'check', 'where-is', 'restore', 'verify', 'adopt', 'tape']);

const argv = process.argv.slice(2);
const helpOnly = argv[0] === 'help' || argv.includes('--help') || argv.includes('-h');
/** `npm test` (for its coverage figure): the CLI from tsc's modules, one per source file, which c8 maps exactly */
const unbundled = process.env.REPLICA_UNBUNDLED === '1';
if (process.env[SUPERVISED_ENV] !== '1' && !helpOnly && argv.some((a) => TARGET_COMMANDS.has(a))) {
  // the worker runs the whole CLI from one CommonJS file (worker.ts, bundled by scripts/bundle.mjs); unbundled,
  // it is this file again, on tsc's modules (below)
  supervise(fileURLToPath(unbundled ? import.meta.url : new URL('../bundle/worker.cjs', import.meta.url)), argv);
} else {
  // the CLI (main.ts) as bundled by scripts/bundle.mjs: one file and a few chunks instead of ~90 modules to load;
  // unbundled, from tsc's modules (through the bundle c8 counted lines of code that never ran: architecture.md)
  const bundle = unbundled ? './main.js' : '../bundle/main.js';
  const { main } = await import(bundle) as typeof import('./main.js');
  runCli(main, argv);
}
