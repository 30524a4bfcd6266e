// The supervised worker process: supervisor.ts starts it, for the commands that touch targets, on this module as
// bundled by scripts/bundle.mjs into one CommonJS file, dist/bundle/worker.cjs. A process started on an ES
// module first sets up Node's ESM loader, then loads the bundle's chunks one by one: a `verify --all` of 200
// files took 0.935x the wall time of the worker started on replica.js (20 pairs), ~20 ms of every supervised
// command. (An unsupervised command, such as `replica hash`, keeps the ES module bundle: it loads only the
// chunks it needs, where the one file took ~20 ms more to start.)
import { main } from './main.js';
import { runCli } from './supervisor.js';

runCli(main, process.argv.slice(2));
