// The supervised worker process as it ships: supervisor.ts starts it, for the commands that touch targets, on this
// module as bundled by scripts/bundle.mjs into one CommonJS file, dist/bundle/worker.cjs. A process started on an
// ES module first sets up Node's ESM loader, then links the bundle's chunks one by one (docs/performance.md, "The
// floors under every row"). Unsupervised commands (`replica hash`...) keep the ES module chunks (replica.ts).
import { main } from './main.js';
import { runCli } from './supervisor.js';

runCli(main, process.argv.slice(2));
