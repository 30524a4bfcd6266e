import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { describe, it } from 'node:test';
import { age, cli, json, onTarget, rmTree, tmpDir, writeConfig } from '../helpers.js';

describe('replica restore', () => {
  it('in place (source gone) and --to DIR: byte-identical, with the recorded mtime and the mode; a corrupt copy on one target is served by the next; --from that target fails with nothing written', async () => {
    const dir = tmpDir();
    const src = path.join(dir, 'src');
    fs.mkdirSync(path.join(src, 'cam'), { recursive: true });
    const big = path.join(src, 'cam', 'img 1.fits');
    const small = path.join(src, 'run.log');
    const bigData = crypto.randomBytes(3 << 20);
    fs.writeFileSync(big, bigData, { mode: 0o640 });
    fs.chmodSync(big, 0o640);
    fs.writeFileSync(small, 'log line\n');
    age(big, 7200); age(small, 3600);
    const mtime = fs.statSync(big).mtimeMs;
    const cfg = writeConfig(dir, { host: 'h', sources: [src], targets: [{ name: 'a', url: 'ta' }, { name: 'b', url: 'tb' }] });
    assert.equal((await cli(['run', '--config', cfg])).code, 0);

    // in place: only where the source is missing, unless --force
    const skipped = await cli(['restore', big, '--config', cfg]);
    assert.equal(skipped.code, 1);
    assert.match(skipped.stdout, /NOT restored .*the source exists/);
    fs.rmSync(path.join(src, 'cam'), { recursive: true });
    const r1 = await cli(['restore', '--json', 'img 1.fits', '--config', cfg]);
    assert.equal(r1.code, 0, r1.stderr);
    assert.deepEqual(json(r1).map((x: { from: string }) => x.from), ['a']);
    assert.deepEqual(fs.readFileSync(big), bigData);
    assert.equal(Math.round(fs.statSync(big).mtimeMs), Math.round(mtime));
    assert.equal(fs.statSync(big).mode & 0o777, 0o640);

    // a flipped byte on target a: the restore still gives the right bytes, from b, and says so
    const onA = onTarget(path.join(dir, 'ta'), 'h', src, 'cam/img 1.fits');
    const bad = fs.readFileSync(onA);
    bad[12345] ^= 0xff;
    fs.writeFileSync(onA, bad);
    const out = path.join(dir, 'out');
    const r2 = await cli(['restore', '--json', '--to', out, src, '--config', cfg]);
    assert.equal(r2.code, 0, r2.stderr);
    const res = json(r2) as { path: string; from: string; errors: string[] }[];
    assert.deepEqual(res.map((x) => [x.path, x.from]), [[big, 'b'], [small, 'a']]);
    assert.match(res[0].errors[0], /^a: .*reads back as [0-9a-f]{16}, expected /);
    assert.deepEqual(fs.readFileSync(path.join(out, big)), bigData);
    assert.equal(fs.readFileSync(path.join(out, small), 'utf8'), 'log line\n');

    // --from the corrupt target only: exit 1, nothing written, no temp file left
    const out2 = path.join(dir, 'out2');
    const r3 = await cli(['restore', '--from', 'a', '--to', out2, big, '--config', cfg]);
    assert.equal(r3.code, 1);
    assert.match(r3.stdout, /NOT restored/);
    assert.deepEqual(fs.readdirSync(path.join(out2, path.dirname(big))), [], 'nothing half-written');
    assert.equal((await cli(['restore', 'no-such-name', '--config', cfg])).code, 2);
    assert.equal((await cli(['restore', '--from', 'zz', big, '--config', cfg])).code, 2);
    rmTree(dir);
  });
});
