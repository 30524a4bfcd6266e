import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { it } from 'node:test';
import { workerEntry } from '../dist/lib/workerEntry.js';
import { rmTree, tmpDir } from './helpers.js';

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
