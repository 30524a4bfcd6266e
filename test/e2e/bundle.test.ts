// The CLI as it ships: dist/bundle (scripts/bundle.mjs). `npm test` runs every other CLI test on tsc's modules
// (REPLICA_UNBUNDLED=1, for a coverage figure c8 maps exactly: docs/architecture.md, "The build"), so this one
// runs the bundle end to end: the chunks, the worker threads' CommonJS files, the vendored packages, and
// tar-stream found from dist/bundle by the tape archive.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { it } from 'node:test';
import { children, cli, cliSpawn, exited, makeTree, rmTree, tmpDir, treeDigest, until, writeConfig } from '../helpers.js';

const shipped = { REPLICA_UNBUNDLED: '' };

it('the shipped bundle: run to a disk and a tape, verify --all, where-is, manifest (xxhsum -c passes), restore --to, hash, and watch copying a new file', async () => {
  const dir = tmpDir();
  try {
    const src = path.join(dir, 'src');
    const emu = path.join(dir, 'emu');
    fs.mkdirSync(emu);
    const files = makeTree(src, 40, { maxBytes: 40 << 10, seed: 5 });
    const cfg = writeConfig(dir, { host: 'obs', sources: [src], targets: [{ name: 'disk', url: path.join(dir, 'disk') }, { name: 'lto', url: `tape://${emu}`, capacity: '100MiB' }], settle: '700ms' });
    const run = async (...args: string[]) => {
      const r = await cli([...args, '--config', cfg], { env: shipped });
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      return r;
    };
    await run('tape', 'open', 'T001');
    await run('run', '--flush');
    const copies = path.join(dir, 'disk', 'obs', src);
    assert.deepEqual(treeDigest(copies), treeDigest(src));
    const out = path.join(dir, 'tar');
    fs.mkdirSync(out);
    execFileSync('tar', ['-xf', path.join(emu, 'T001', 'file00001.tar'), '-C', out]);
    assert.deepEqual(treeDigest(path.join(out, 'obs', src)), treeDigest(src), 'the tape file, as GNU tar reads it');
    assert.match((await run('verify', '--all')).stdout, /target disk: 40 copies read .* 40 good, 0 bad[\s\S]*target lto: .* 0 bad/);
    assert.match((await run('where-is', files[5])).stdout, /disk +verified[\s\S]*lto +verified .*tape:\/\/T001\/1\//);
    const manifest = (await run('manifest', '--target', 'disk')).stdout;
    assert.equal(manifest.trim().split('\n').length, 40);
    fs.writeFileSync(path.join(dir, 'm.xxh64'), manifest);
    execFileSync('xxhsum', ['-c', '--quiet', path.join(dir, 'm.xxh64')], { cwd: path.join(dir, 'disk') });
    await run('restore', '--to', path.join(dir, 'back'), src);
    assert.deepEqual(treeDigest(path.join(dir, 'back', src)), treeDigest(src));
    const hash = await cli(['hash', files[7]], { env: shipped });
    assert.equal(hash.stdout, execFileSync('xxhsum', ['-H1', files[7]], { encoding: 'utf8' }));

    const agent = cliSpawn(['watch', '--config', cfg], { env: shipped });
    try {
      await until(() => children(agent.pid!).length > 0);
      const late = path.join(src, 'late.dat');
      fs.writeFileSync(late, 'written while the agent watches\n');
      await until(() => fs.existsSync(path.join(copies, 'late.dat')), 60_000);
      assert.equal(fs.readFileSync(path.join(copies, 'late.dat'), 'utf8'), 'written while the agent watches\n');
    } finally {
      agent.kill('SIGTERM');
      assert.equal(await exited(agent), 0);
    }
  } finally {
    rmTree(dir);
  }
});
