import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { age, cli, rmTree, tmpDir, writeConfig } from './helpers.js';

/**
 * deleteLocalAfter on one target kind (`remote`: a target config without its name), with a local target beside
 * it, through the built CLI: the live check asks that kind whether each copy is there (ssh: stat on the server,
 * S3: HEAD), so a copy removed there by `remove(rel)` keeps its source until it is copied again; every source is
 * removed in the end and restored from that kind byte-identical.
 */
export async function deleteLocalScenario(remote: Record<string, unknown>, opts: { env?: NodeJS.ProcessEnv; remove: (rel: string) => Promise<void> | void }): Promise<void> {
  const { env } = opts;
  const dir = tmpDir();
  const src = path.join(dir, 'src');
  fs.mkdirSync(path.join(src, '17001'), { recursive: true });
  const files = new Map([['17001/a.g3', crypto.randomBytes(70_000)], ['17001/b.g3', crypto.randomBytes(5_000)]].map(([n, d]) => [path.join(src, n as string), d as Buffer]));
  for (const [f, d] of files) { fs.writeFileSync(f, d); age(f); }
  const [a, b] = [...files.keys()];
  const cfg = writeConfig(dir, { host: 'h', sources: [src], deleteLocalAfter: '0s', targets: [{ name: 'r', ...remote }, { name: 'l', url: 'tl' }] });
  try {
    const first = await cli(['run', '--max-delete', '0', '--config', cfg], { env });
    assert.equal(first.code, 0, first.stderr);
    await opts.remove(`h${b}`);
    const r = await cli(['run', '-v', '--config', cfg], { env });
    assert.equal(r.code, 1, 'the copy found missing is a problem of this pass');
    assert.match(r.stderr, new RegExp(`not removed: ${b}: target r: the copy there is missing: it is copied again`));
    assert.deepEqual([fs.existsSync(a), fs.existsSync(b)], [false, true]);
    assert.equal((await cli(['run', '--config', cfg], { env })).code, 0, 'copied again');
    assert.equal((await cli(['run', '--config', cfg], { env })).code, 0, 'then removed');
    assert.equal(fs.existsSync(b), false);
    const back = await cli(['restore', '--from', 'r', src, '--config', cfg], { env });
    assert.equal(back.code, 0, back.stderr);
    for (const [f, d] of files) assert.deepEqual(fs.readFileSync(f), d);
  } finally {
    rmTree(dir);
  }
}
