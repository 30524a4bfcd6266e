import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { manifestLine } from '../../dist/lib/commands/manifest.js';
import { age, cli, json, rmTree, tmpDir, writeConfig } from '../helpers.js';

describe('replica manifest', () => {
  it('lists every verified copy as "<xxh64>  <host>/<abs path>", sorted, and `xxhsum -c` in the target base passes (spaces, quotes, unicode)', async () => {
    const dir = tmpDir();
    const src = path.join(dir, 'src');
    const names = ['plain.fits', 'with space.dat', "it's \"quoted\".log", 'ünïcødé 日本.txt', 'sub dir/z.bin'];
    for (const [i, n] of names.entries()) {
      fs.mkdirSync(path.dirname(path.join(src, n)), { recursive: true });
      fs.writeFileSync(path.join(src, n), `content ${i}`.repeat(i + 1));
      age(path.join(src, n));
    }
    fs.symlinkSync('plain.fits', path.join(src, 'link'));
    const cfg = writeConfig(dir, { host: 'h', sources: [src], targets: [{ name: 'a', url: 'ta' }, { name: 'b', url: 'tb' }] });
    assert.equal((await cli(['run', '--config', cfg])).code, 0);
    const r = await cli(['manifest', '--target', 'a', '--config', cfg]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.equal(lines.length, names.length, 'symlinks have no bytes: not listed');
    const paths = lines.map((l) => l.slice(18));
    assert.deepEqual(paths, [...paths].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y))));
    for (const p of paths) assert.ok(p.startsWith(`h${src}/`), p);
    fs.writeFileSync(path.join(dir, 'm.xxh64'), r.stdout);
    const out = execFileSync('xxhsum', ['-c', path.join(dir, 'm.xxh64')], { cwd: path.join(dir, 'ta') }).toString();
    assert.equal((out.match(/: OK$/gm) ?? []).length, names.length, out);
    // every target: the same list; one target not verified for a file: that file is left out of the default
    assert.equal((await cli(['manifest', '--config', cfg])).stdout, r.stdout);
    const rows = json(await cli(['manifest', '--json', '--config', cfg])) as { hash: string; path: string }[];
    assert.deepEqual(rows.map((x) => x.path), paths);
    assert.equal((await cli(['manifest', '--target', 'nope', '--config', cfg])).code, 2);
    rmTree(dir);
  });

  it('escapes names with a backslash or a newline the GNU way', () => {
    assert.equal(manifestLine('0123456789abcdef', 'h/a b'), '0123456789abcdef  h/a b');
    assert.equal(manifestLine('0123456789abcdef', 'h/a\\b'), '\\0123456789abcdef  h/a\\\\b');
    assert.equal(manifestLine('0123456789abcdef', 'h/a\nb'), '\\0123456789abcdef  h/a\\nb');
  });
});
