import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { age, cli, json, rmTree, tmpDir, writeConfig } from './helpers.js';

/**
 * The restore story on one target kind (`remote`: a target config without its name), run through the built CLI
 * with a local target beside it: restore --to and in place from that kind (bytes, mtime, mode), a replaced
 * content read back with --at from its version there, and a copy corrupted there by `corrupt(rel)` served by the
 * local target instead (with --from that kind only: exit 1, nothing written).
 */
export async function restoreScenario(remote: Record<string, unknown>, opts: { env?: NodeJS.ProcessEnv; corrupt: (rel: string) => Promise<void> | void }): Promise<void> {
  const { env } = opts;
  const dir = tmpDir();
  const src = path.join(dir, 'src');
  fs.mkdirSync(path.join(src, 'cam'), { recursive: true });
  const f = path.join(src, 'cam', 'img 1.fits');
  const g = path.join(src, 'small.log');
  const A = crypto.randomBytes(3 << 20);
  fs.writeFileSync(f, A);
  fs.chmodSync(f, 0o640);
  fs.writeFileSync(g, 'log\n');
  fs.chmodSync(g, 0o600);
  age(f, 7200); age(g, 3600);
  const [mtimeF, mtimeG] = [fs.statSync(f).mtimeMs, fs.statSync(g).mtimeMs];
  const cfg = writeConfig(dir, { host: 'h', sources: [src], versions: 1, targets: [{ name: 'r', ...remote }, { name: 'l', url: 'tl' }] });
  const run = await cli(['run', '--config', cfg], { env });
  assert.equal(run.code, 0, run.stderr);
  const restore = (...args: string[]) => cli(['restore', '--json', ...args, '--config', cfg], { env });
  const check = (file: string, bytes: Buffer | string, mtime: number, mode: number) => {
    assert.deepEqual(fs.readFileSync(file), Buffer.from(bytes));
    assert.equal(Math.round(fs.statSync(file).mtimeMs), Math.round(mtime), `mtime of ${file}`);
    assert.equal(fs.statSync(file).mode & 0o777, mode, `mode of ${file}`);
  };

  // --to DIR from this kind
  const out = path.join(dir, 'out');
  const r1 = await restore('--from', 'r', '--to', out, src);
  assert.equal(r1.code, 0, r1.stderr);
  assert.deepEqual(json(r1).map((x: { from: string }) => x.from), ['r', 'r']);
  check(path.join(out, f), A, mtimeF, 0o640);
  check(path.join(out, g), 'log\n', mtimeG, 0o600);
  // in place, the source gone
  fs.rmSync(path.join(src, 'cam'), { recursive: true });
  const r2 = await restore('--from', 'r', f);
  assert.equal(r2.code, 0, r2.stderr);
  check(f, A, mtimeF, 0o640);

  // new content: the old one is kept as a version there, and --at reads it back
  const t1 = Date.now();
  const B = crypto.randomBytes(1 << 20);
  fs.writeFileSync(f, B);
  age(f, 600);
  const run2 = await cli(['run', '--config', cfg], { env });
  assert.equal(run2.code, 0, run2.stderr);
  const r3 = await restore('--from', 'r', '--at', new Date(t1).toISOString(), '--to', path.join(dir, 'out3'), f);
  assert.equal(r3.code, 0, r3.stderr);
  assert.match(json(r3)[0].version, /^\d{8}T\d{6}Z$/);
  check(path.join(dir, 'out3', f), A, mtimeF, 0o640);
  const r4 = await restore('--from', 'r', '--to', path.join(dir, 'out4'), f);
  assert.equal(r4.code, 0, r4.stderr);
  assert.deepEqual(fs.readFileSync(path.join(dir, 'out4', f)), B);

  // a corrupt copy there: served by the local target, saying why not by this one; --from it: exit 1, nothing written
  await opts.corrupt(`h${f}`);
  const r5 = await restore('--to', path.join(dir, 'out5'), f);
  assert.equal(r5.code, 0, r5.stderr);
  const [res] = json(r5) as { from: string; errors: string[] }[];
  assert.equal(res.from, 'l');
  assert.match(res.errors[0], /^r: .*reads back as [0-9a-f]{16}, expected /);
  assert.deepEqual(fs.readFileSync(path.join(dir, 'out5', f)), B);
  const r6 = await restore('--from', 'r', '--to', path.join(dir, 'out6'), f);
  assert.equal(r6.code, 1);
  assert.deepEqual(fs.readdirSync(path.join(dir, 'out6', path.dirname(f))), [], 'nothing half-written');
  rmTree(dir);
}
