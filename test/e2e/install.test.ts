import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { completionScript } from '../../dist/bin/cli.js';
import { VERSION } from '../../dist/lib/version.js';
import { ROOT, rmTree, tmpDir } from '../helpers.js';

describe('the package as a user installs it', () => {
  it('npm pack, npm install -g into a temporary prefix: replica --version, man replica, man replica-monitor, completions, the example config', () => {
    const dir = tmpDir();
    const prefix = path.join(dir, 'prefix');
    try {
      // dist/ is built already (npm test builds first): pack it as it is
      execFileSync('npm', ['pack', '--ignore-scripts', '--pack-destination', dir], { cwd: ROOT, stdio: 'ignore' });
      const tgz = fs.readdirSync(dir).find((f) => f.endsWith('.tgz'))!;
      const install = spawnSync('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--ignore-scripts', '--no-audit', '--no-fund', path.join(dir, tgz)], { encoding: 'utf8', timeout: 600_000 });
      assert.equal(install.status, 0, install.stderr);
      const bin = path.join(prefix, 'bin');
      // REPLICA_UNBUNDLED empty: the installed package runs as it ships (the supervised worker on dist/bundle/worker.cjs)
      const run = (cmd: string, args: string[]) => spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, REPLICA_UNBUNDLED: '', PATH: `${bin}:${process.env.PATH}`, MANPATH: path.join(prefix, 'share/man'), MANWIDTH: '100' } });
      assert.equal(run('replica', ['--version']).stdout, `${VERSION}\n`);
      assert.equal(run('replica-monitor', ['--version']).stdout, `${VERSION}\n`);
      const man = run('man', ['replica']);
      assert.equal(man.status, 0, man.stderr);
      assert.match(man.stdout, /^NAME\n {7}replica - back up every settled file/m);
      assert.match(run('man', ['replica-monitor']).stdout, /^NAME\n {7}replica-monitor/m);
      assert.equal(run('replica', ['completion', 'bash']).stdout, completionScript('bash'));
      const pkg = path.join(prefix, 'lib/node_modules/replica');
      for (const f of ['completions/replica.bash', 'completions/_replica', 'completions/replica.fish', 'replica.config.json', 'systemd/replica.service', 'docs/cli.md', 'docs/config.md']) assert.ok(fs.existsSync(path.join(pkg, f)), f);
      assert.equal(fs.readFileSync(path.join(pkg, 'completions/replica.fish'), 'utf8'), completionScript('fish'));
      // the example config works from the installed package, as the README's first command does from a clone
      const example = run('replica', ['run', '-v', '--config', path.join(pkg, 'replica.config.json')]);
      assert.equal(example.status, 0, example.stderr);
      assert.match(example.stdout, /^ok: \d+ scanned/m);
    } finally {
      rmTree(dir);
    }
  });
});
