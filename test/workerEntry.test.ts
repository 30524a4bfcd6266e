import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { it } from 'node:test';
import { workerEntry } from '../dist/lib/workerEntry.js';
import { children, cliSpawn, exited, makeTree, rmTree, tmpDir, treeDigest, until, writeConfig } from './helpers.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

it('outside the bundle (dist/lib, what the tests import) a worker thread starts on the ES module beside its starter', () => {
  const base = new URL('../dist/lib/targets/localIo.js', `file://${root}/x/`).href;
  const entry = workerEntry('localIoWorker', base);
  assert.equal(fileURLToPath(entry), path.join(root, 'dist/lib/targets/localIoWorker.js'));
  assert.ok(fs.existsSync(entry));
});

it('the built CLI: a supervised command\'s worker process runs on the CommonJS bundle worker.cjs, and its worker threads\' .cjs entries are built beside it', async () => {
  for (const f of ['worker.cjs', 'localIoWorker.cjs', 'walkWorker.cjs']) {
    const text = fs.readFileSync(path.join(root, 'dist/bundle', f), 'utf8');
    assert.match(text, /require\("node:/, `${f} is CommonJS`);
    assert.doesNotMatch(text, /^import /m, `${f} has no import statement`);
  }
  const dir = tmpDir();
  try {
    makeTree(path.join(dir, 'src'), 3);
    const config = writeConfig(dir, { host: 'h', store: path.join(dir, 'store'), sources: [{ path: path.join(dir, 'src') }], targets: [{ name: 't', url: path.join(dir, 't') }] });
    const agent = cliSpawn(['watch', '--config', config]);
    try {
      const worker = await until(() => children(agent.pid!)[0]);
      const argv = fs.readFileSync(`/proc/${worker}/cmdline`, 'utf8').split('\0');
      assert.equal(argv[1], path.join(root, 'dist/bundle/worker.cjs'));
      assert.deepEqual(argv.slice(2, 5), ['watch', '--config', config]);
      // it works: the tree gets to the target (through the LocalIo threads, started on localIoWorker.cjs)
      const copies = path.join(dir, 't', 'h', dir, 'src');
      const want = treeDigest(path.join(dir, 'src'));
      await until(() => fs.existsSync(copies) && treeDigest(copies).size === want.size, 30_000);
      assert.deepEqual(treeDigest(copies), want);
    } finally {
      agent.kill('SIGTERM');
      assert.equal(await exited(agent), 0);
    }
  } finally {
    rmTree(dir);
  }
});
