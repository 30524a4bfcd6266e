// The CLI as a few ES module files (dist/bundle/): the entry (dist/bin/replica.js) loads main.js from here in
// the process that runs the command. Loading the ~90 modules of dist/lib one by one (resolve, read, compile,
// link each) cost ~60 ms of every command's start (no-op run: 0.83x with the bundle). The modules imported on
// demand (the ssh and S3 kinds) are chunks loaded when used. The LocalIo and walk worker threads start on
// CommonJS files of their own beside them (localIoWorker.cjs, walkWorker.cjs: see the end). Source maps chain to
// src/ (through tsc's), so stack traces and coverage name the TypeScript.
//
// The small packages every command loads (VENDORED) are each one file in dist/vendor/, built here from
// node_modules, and the bundle imports them by relative path: loading commander, cosmiconfig, micromatch,
// p-queue, lowdb and xxhash-wasm from node_modules took ~90 ms of every start (resolving each bare name through
// package.json "exports", then reading and compiling ~40 files); one file each takes ~45 ms. They get no source
// map, so coverage (c8 excludes dist/vendor) and stack traces do not mix their code with ours. winston, which
// log.ts loads with a command's first log line (at info, every `run` and `watch`), is one CommonJS file there,
// dist/vendor/winston.cjs: 44 ms to load and log a line against 68 ms from its ~100 files in node_modules. The
// other packages (the S3 SDK, ssh2, chokidar, tar-stream...) stay in node_modules: they are loaded only by the
// commands that use them, and bundling them all made the start slower (12 MB to parse).
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const VENDORED = ['commander', 'cosmiconfig', 'micromatch', 'p-queue', 'lowdb', 'xxhash-wasm'];
const vendorDir = path.join(root, 'dist/vendor');
/** An import of one of them, by its bare name */
const VENDORED_NAME = new RegExp(`^(${VENDORED.map((n) => n.replace(/[-/]/g, '\\$&')).join('|')})$`);
const common = { bundle: true, format: 'esm', platform: 'node', target: 'node20', logLevel: 'warning' };
/**
 * Our own CommonJS files (the worker process's, the worker threads'): import.meta.url is the file's own URL
 * (packageRoot.ts, tarLib.ts's createRequire), and workerEntry.ts names the threads' .cjs files (REPLICA_BUNDLE).
 * Minified, but for their names (which stack traces and error names keep; the source maps lead to src/):
 * worker.cjs is 0.68 MB instead of 1.1 MB, and only ASCII (a comment with an emoji from p-queue made all of it a
 * two-byte string), and a process reads and compiles it on every start: reading it as a string took 8.5 ms
 * instead of 17 ms (page faults), a no-op run 0.971x the wall time (30 pairs), a restore of 10k x 4 KiB 0.981x
 * (16 pairs). The ES module chunks of the unsupervised commands gained nothing from it (`replica hash` of
 * 1 GiB 1.02x, `status` 0.99x, 20 pairs each): left as they are.
 */
const ownCjs = {
  ...common,
  minifyWhitespace: true,
  minifySyntax: true,
  format: 'cjs',
  sourcemap: 'linked',
  define: { 'import.meta.url': '__importMetaUrl', REPLICA_BUNDLE: 'true' },
  banner: { js: "const __importMetaUrl = require('node:url').pathToFileURL(__filename).href;" },
};

for (const name of VENDORED) {
  // the same names as the package exports (a CommonJS package's names as Node's ESM loader sees them)
  const mod = await import(name);
  const names = Object.keys(mod).filter((k) => k !== 'default' && /^[A-Za-z_$][\w$]*$/.test(k));
  await build({
    ...common,
    stdin: { contents: `export { ${names.join(', ')} } from '${name}';\n${'default' in mod ? `export { default } from '${name}';\n` : ''}`, resolveDir: root, loader: 'js' },
    outfile: path.join(vendorDir, `${name}.js`),
    // cosmiconfig requires typescript only to load a .ts config: from node_modules then, as before
    external: ['typescript'],
    // CommonJS code inside an ES module: its require() of Node's modules (and of typescript) needs one, and
    // __filename and __dirname (cosmiconfig's import-fresh loads a CommonJS config that import() could not: without
    // them a config with a syntax error was reported as "__filename is not defined", not as its own error)
    banner: {
      js: ["import { createRequire as __vendorRequire } from 'node:module';", "import { fileURLToPath as __vendorPath } from 'node:url';",
        'const require = __vendorRequire(import.meta.url);', 'const __filename = __vendorPath(import.meta.url);',
        "const __dirname = __filename.slice(0, __filename.lastIndexOf('/'));"].join('\n'),
    },
  });
}

await build({ ...common, format: 'cjs', entryPoints: [path.join(root, 'node_modules/winston/lib/winston.js')], outfile: path.join(vendorDir, 'winston.cjs') });

await build({
  ...common,
  entryPoints: [path.join(root, 'dist/bin/main.js')],
  outdir: path.join(root, 'dist/bundle'),
  entryNames: '[name]',
  splitting: true,
  packages: 'external',
  sourcemap: 'linked',
  define: { REPLICA_BUNDLE: 'true' }, // workerEntry.ts: the worker threads start on the .cjs files below
  plugins: [{
    name: 'vendored',
    setup(b) {
      b.onResolve({ filter: VENDORED_NAME }, (args) => ({ path: `../vendor/${args.path}.js`, external: true }));
    },
  }],
});

// The supervised worker process's entry (worker.ts), one CommonJS file with the whole CLI: no ESM loader to set up,
// no chunks to link one by one. A `verify --all` of 200 files took 0.948x the wall time of the worker started on the
// chunks (20 pairs), a restore of 10k x 4 KiB 0.968x (14 pairs). The packages left in node_modules are import()ed
// as before where the code does (chokidar is an ES module only). Unsupervised commands (`replica hash`...) keep the
// chunks: they load only what they need, where the one file took ~20 ms more to start. `npm test` runs the worker
// on tsc's modules instead (REPLICA_UNBUNDLED, for its coverage figure); test/e2e/bundle.test.ts runs this file end
// to end.
await build({
  ...ownCjs,
  entryPoints: [path.join(root, 'dist/bin/worker.js')],
  outfile: path.join(root, 'dist/bundle/worker.cjs'),
  packages: 'external',
  supported: { 'dynamic-import': true },
  plugins: [{
    name: 'vendored',
    setup(b) {
      // the vendored packages' one-file builds (ES modules, bundled into this one)
      b.onResolve({ filter: VENDORED_NAME }, (args) => ({ path: path.join(vendorDir, `${args.path}.js`) }));
    },
  }],
});

// The worker threads' entries (LocalIo, the walk), each one CommonJS file with everything it imports (xxhash-wasm,
// micromatch...): a thread started on an ES module first sets up Node's ESM loader (two threads: ready ~25 ms
// later, ~40 ms more CPU; workerEntry.ts).
for (const entry of ['dist/lib/targets/localIoWorker.js', 'dist/lib/scan/walkWorker.js']) {
  await build({ ...ownCjs, entryPoints: [path.join(root, entry)], outfile: path.join(root, 'dist/bundle', `${path.basename(entry, '.js')}.cjs`) });
}
