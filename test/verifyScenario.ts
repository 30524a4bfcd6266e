import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { age, cli, json, rmTree, tmpDir, writeConfig } from './helpers.js';

/**
 * The scrub on one target kind (`remote`: a target config without its name) through the built CLI: a copy
 * corrupted there (`corrupt(rel)`) and one deleted there (`remove(rel)`) are found by `verify --all` (exit 1,
 * `mismatch` and `missing`, failed on that target only), the next run repairs both, and `verify --all` passes.
 */
export async function verifyScenario(remote: Record<string, unknown>, opts: { env?: NodeJS.ProcessEnv; corrupt: (rel: string) => Promise<void> | void; remove: (rel: string) => Promise<void> | void; read: (rel: string) => Promise<Buffer> | Buffer }): Promise<void> {
  const { env } = opts;
  const dir = tmpDir();
  const src = path.join(dir, 'src');
  fs.mkdirSync(src);
  const files = ['a.dat', 'b.dat', 'c big.dat'];
  for (const [i, f] of files.entries()) { fs.writeFileSync(path.join(src, f), crypto.randomBytes(i === 2 ? 3 << 20 : 40_000)); age(path.join(src, f)); }
  const cfg = writeConfig(dir, { host: 'h', sources: [src], targets: [{ name: 'r', ...remote }, { name: 'l', url: 'tl' }] });
  const run = () => cli(['run', '--config', cfg], { env });
  assert.equal((await run()).code, 0);
  const ok = await cli(['verify', '--json', '--all', '--config', cfg], { env });
  assert.equal(ok.code, 0, ok.stderr);
  assert.deepEqual(json(ok).targets.map((t: { target: string; good: number }) => [t.target, t.good]), [['r', 3], ['l', 3]]);
  await opts.corrupt(`h${path.join(src, 'c big.dat')}`);
  await opts.remove(`h${path.join(src, 'a.dat')}`);
  const bad = await cli(['verify', '--json', '--all', '--config', cfg], { env });
  assert.equal(bad.code, 1);
  const [r, l] = json(bad).targets as { bad: { path: string; class: string }[] }[];
  assert.deepEqual(r.bad.map((b) => [path.basename(b.path), b.class]), [['a.dat', 'missing'], ['c big.dat', 'mismatch']]);
  assert.deepEqual(l.bad, [], 'the other target is untouched');
  const rep = await run();
  assert.equal(rep.code, 0, rep.stderr);
  for (const f of files) assert.deepEqual(await opts.read(`h${path.join(src, f)}`), fs.readFileSync(path.join(src, f)), `${f} repaired`);
  assert.equal((await cli(['verify', '--all', '--config', cfg], { env })).code, 0);
  rmTree(dir);
}
