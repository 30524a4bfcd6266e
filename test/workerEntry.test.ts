import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { it } from 'node:test';
import { workerEntry } from '../dist/lib/workerEntry.js';
import { children, cliSpawn, exited, makeTree, rmTree, tmpDir, treeDigest, until, writeConfig } from './helpers.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bundle = path.join(root, 'dist/bundle');

it('outside the bundle (dist/lib, what the tests import) a worker thread starts on the ES module beside its starter', () => {
  const entry = workerEntry('localIoWorker', `file://${root}/dist/lib/targets/localIo.js`);
  assert.equal(fileURLToPath(entry), path.join(root, 'dist/lib/targets/localIoWorker.js'));
  assert.ok(fs.existsSync(entry));
});

it('the built CLI starts its worker threads on CommonJS files beside its chunks, and the LocalIo one works from there (xxh64 as xxhsum gives it; a copy it cannot read: null)', async () => {
  const chunks = fs.readdirSync(bundle).filter((f) => f.endsWith('.js')).map((f) => fs.readFileSync(path.join(bundle, f), 'utf8')).join('\n');
  for (const name of ['localIoWorker', 'walkWorker']) {
    const text = fs.readFileSync(path.join(bundle, `${name}.cjs`), 'utf8');
    assert.match(text, /require\("node:/, `${name}.cjs is CommonJS`);
    assert.doesNotMatch(text, /^import /m, `${name}.cjs has no import statement`);
    assert.ok(!fs.existsSync(path.join(bundle, `${name}.js`)), `no ES module ${name}.js in the bundle`);
    assert.match(chunks, new RegExp(`workerEntry\\("${name}"`), `the bundle starts ${name} through workerEntry`);
  }
  assert.match(chunks, /function workerEntry\([^)]*\) \{\s*return [^\n]*"\.cjs"/, 'workerEntry in the bundle names the .cjs files');
  const dir = tmpDir();
  const w = new Worker(path.join(bundle, 'localIoWorker.cjs'));
  try {
    const file = path.join(dir, 'a b');
    fs.writeFileSync(file, 'some bytes\n');
    const replies: unknown[] = [];
    const next = () => new Promise<unknown>((resolve) => w.once('message', resolve));
    assert.deepEqual(await next(), [], 'its first message: ready');
    w.postMessage([{ op: 'hash', id: 7, files: [file, path.join(dir, 'missing')] }]);
    replies.push(...(await next()) as unknown[]);
    const want = execFileSync('xxhsum', ['-H1', file], { encoding: 'utf8' }).split(' ')[0];
    assert.deepEqual(replies, [{ id: 7, hashes: [want, null] }]);
  } finally {
    await w.terminate();
    rmTree(dir);
  }
});

it('a supervised command\'s worker process runs on the CommonJS file of the whole CLI (worker.cjs) as shipped, and on tsc\'s modules under npm test (REPLICA_UNBUNDLED=1)', async () => {
  const text = fs.readFileSync(path.join(bundle, 'worker.cjs'), 'utf8');
  assert.match(text, /require\("node:/, 'worker.cjs is CommonJS');
  assert.doesNotMatch(text, /^import /m, 'worker.cjs has no import statement');
  const dir = tmpDir();
  try {
    makeTree(path.join(dir, 'src'), 3);
    const config = writeConfig(dir, { host: 'h', store: path.join(dir, 'store'), sources: [{ path: path.join(dir, 'src') }], targets: [{ name: 't', url: path.join(dir, 't') }] });
    const copies = path.join(dir, 't', 'h', dir, 'src');
    const want = treeDigest(path.join(dir, 'src'));
    for (const [unbundled, entry] of [['', path.join(bundle, 'worker.cjs')], ['1', path.join(root, 'dist/bin/replica.js')]]) {
      const agent = cliSpawn(['watch', '--config', config], { env: { REPLICA_UNBUNDLED: unbundled } });
      try {
        const worker = await until(() => children(agent.pid!)[0]);
        const argv = fs.readFileSync(`/proc/${worker}/cmdline`, 'utf8').split('\0');
        assert.equal(argv[1], entry);
        assert.deepEqual(argv.slice(2, 5), ['watch', '--config', config]);
        // it works: the tree gets to the target (through the LocalIo threads)
        await until(() => fs.existsSync(copies) && treeDigest(copies).size === want.size, 30_000);
        assert.deepEqual(treeDigest(copies), want);
      } finally {
        agent.kill('SIGTERM');
        assert.equal(await exited(agent), 0);
      }
      fs.rmSync(path.join(dir, 't'), { recursive: true });
      fs.rmSync(path.join(dir, 'store'), { recursive: true });
    }
  } finally {
    rmTree(dir);
  }
});
