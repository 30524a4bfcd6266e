import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { it } from 'node:test';
import { CLI, ROOT, rmTree, tmpDir } from './helpers.js';

it('systemd units pass `systemd-analyze verify` with nothing printed', () => {
  const dir = tmpDir();
  const units = fs.readdirSync(path.join(ROOT, 'systemd')).filter((f) => /\.(service|timer)$/.test(f));
  assert.deepEqual(units.sort(), ['replica-monitor-textfile.service', 'replica-monitor-textfile.timer', 'replica-monitor.service', 'replica-monitor.timer', 'replica-run.service', 'replica-run.timer', 'replica.service']);
  // the daily mail goes out whatever the status, UNKNOWN (a missing store) above all
  assert.match(fs.readFileSync(path.join(ROOT, 'systemd', 'replica-monitor.service'), 'utf8'), /^SuccessExitStatus=1 2 3$/m);
  for (const u of units) {
    // the units name the installed binary; point them at this build so ExecStart resolves here
    const text = fs.readFileSync(path.join(ROOT, 'systemd', u), 'utf8')
      .replaceAll('/usr/local/bin/replica-monitor', path.join(ROOT, 'dist/bin/replica-monitor.js')).replaceAll('/usr/local/bin/replica', CLI);
    fs.writeFileSync(path.join(dir, u), text);
  }
  let out: string;
  try {
    out = execFileSync('systemd-analyze', ['verify', '--man=no', ...units.map((u) => path.join(dir, u))], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stdout: string; stderr: string };
    out = e.stdout + e.stderr;
  }
  assert.equal(out.trim(), '');
  rmTree(dir);
});
