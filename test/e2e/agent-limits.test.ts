import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync, spawn } from 'node:child_process';
import { it } from 'node:test';
import { CLI, cli, exited, json, makeTree, onTarget, rmTree, tmpDir, until, writeConfig } from '../helpers.js';

it('run shows progress on a TTY (stderr) and none without one', async () => {
  const dir = tmpDir();
  const src = path.join(dir, 'src');
  makeTree(src, 120);
  const cfg = writeConfig(dir, { host: 'p', sources: [src], targets: [{ name: 'a', url: 'ta' }], log: { level: 'warn' } });
  // `script` gives the command a pseudo-terminal, as a person at a shell has
  const tty = execFileSync('script', ['-qfec', `${process.execPath} ${CLI} run --config ${cfg}`, '/dev/null'], { encoding: 'utf8' });
  assert.match(tty, /\r\x1b\[Kscanned \d+ +hashed \d+ +copied \d+\/\d+ \(/);
  assert.match(tty, /copied 120\/120 .* verified 120/);
  fs.writeFileSync(path.join(src, 'more'), 'x');
  const plain = await cli(['run', '--config', cfg]);
  assert.doesNotMatch(plain.stderr + plain.stdout, /scanned \d+ +hashed/);
  rmTree(dir);
});

it('watch: hitting the inotify limit falls back to periodic scans, with the error in the log and in status', async () => {
  const max = fs.readFileSync('/proc/sys/fs/inotify/max_user_watches', 'utf8').trim();
  const dir = tmpDir();
  const src = path.join(dir, 'src');
  for (let i = 0; i < 300; i++) fs.mkdirSync(path.join(src, `d${i}`), { recursive: true });
  const cfg = writeConfig(dir, { host: 'i', sources: [src], targets: [{ name: 'a', url: 'ta' }], settle: '200ms', rescan: '2s', heartbeat: '1s' });
  const { userWatches } = await import('../../dist/lib/scan/inotify.js');
  const child = spawn(process.execPath, [CLI, 'watch', '--config', cfg], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  try {
    // leave fewer watches than the tree has directories
    fs.writeFileSync('/proc/sys/fs/inotify/max_user_watches', String(userWatches().watches + 100));
    await until(() => /inotify watch limit reached/.test(err), 30_000);
    fs.writeFileSync('/proc/sys/fs/inotify/max_user_watches', max);
    const s = await until(async () => { const st = json(await cli(['status', '--json', '--config', cfg])); return st.watch?.mode === 'polling' ? st : undefined; }, 20_000, 300);
    assert.match(s.watch.error.message, /max_user_watches/);
    assert.match((await cli(['status', '--config', cfg])).stdout, /POLLING \(watcher failed\)/);
    // no gap: a new file deep in the tree still arrives, by the periodic scan
    fs.writeFileSync(path.join(src, 'd299', 'late.dat'), 'found by a rescan');
    await until(() => fs.existsSync(onTarget(path.join(dir, 'ta'), 'i', src, 'd299/late.dat')), 30_000, 200);
  } finally {
    fs.writeFileSync('/proc/sys/fs/inotify/max_user_watches', max);
    child.kill('SIGTERM');
    await exited(child);
    rmTree(dir);
  }
});
