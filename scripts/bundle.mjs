// The CLI as a few ES module files (dist/bundle/): the entry (dist/bin/replica.js) loads main.js from here in
// the process that runs the command. Loading the ~90 modules of dist/lib one by one (resolve, read, compile,
// link each) cost ~60 ms of every command's start (no-op run: 0.83x with the bundle); node_modules stay
// separate (bundling them made the start slower: 12 MB to parse) and so do the modules imported on demand
// (the ssh and S3 kinds: chunks loaded when used). The LocalIo and walk workers are entries of their own,
// beside the chunk that starts each (new URL('./localIoWorker.js', import.meta.url)). Source maps chain to
// src/ (through tsc's), so stack traces and coverage name the TypeScript.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
await build({
  entryPoints: [path.join(root, 'dist/bin/main.js'), path.join(root, 'dist/lib/targets/localIoWorker.js'), path.join(root, 'dist/lib/scan/walkWorker.js')],
  outdir: path.join(root, 'dist/bundle'),
  entryNames: '[name]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  sourcemap: 'linked',
  logLevel: 'warning',
});
