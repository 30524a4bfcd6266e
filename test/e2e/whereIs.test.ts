import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { ROOT, age, cli, json, rmTree, tmpDir, writeConfig } from '../helpers.js';

describe('replica where-is', () => {
  it('by path, glob and bare name: hash, size, per target state, location, verifiedAt and the versions kept; JSON validates; no match exits 1', async () => {
    const dir = tmpDir();
    const src = path.join(dir, 'src');
    fs.mkdirSync(path.join(src, '00123', 'cam'), { recursive: true });
    const img = path.join(src, '00123', 'cam', 'img 1.fits');
    const log = path.join(src, 'run.log');
    fs.writeFileSync(img, 'first');
    fs.writeFileSync(log, 'log');
    age(img); age(log);
    // more files than where-is asks versions for at once (32), to see them come back in order
    const many = Array.from({ length: 45 }, (_, i) => path.join(src, 'many', `m${String(i).padStart(2, '0')}`));
    fs.mkdirSync(path.join(src, 'many'));
    for (const f of many) { fs.writeFileSync(f, f); age(f); }
    const cfg = writeConfig(dir, { host: 'h', sources: [src], targets: [{ name: 'a', url: 'ta' }, { name: 'b', url: 'tb' }] });
    assert.equal((await cli(['run', '--config', cfg])).code, 0);
    fs.writeFileSync(img, 'second');
    age(img, 1800);
    assert.equal((await cli(['run', '--config', cfg])).code, 0);

    const byName = json(await cli(['where-is', '--json', 'img 1.fits', '--config', cfg])) as { path: string; targets: Record<string, { state: string; location: string; versions?: string[] }> }[];
    assert.deepEqual(byName.map((f) => f.path), [img], 'a bare name matches anywhere');
    assert.equal(byName[0].targets.a.state, 'verified');
    assert.equal(byName[0].targets.a.location, path.join(dir, 'ta', 'h', img));
    assert.equal(fs.readFileSync(byName[0].targets.b.location, 'utf8'), 'second', 'the location is the copy');
    assert.equal(byName[0].targets.a.versions?.length, 1, 'the previous content is kept (versions: 1)');
    assert.match(byName[0].targets.a.versions![0], /^\d{8}T\d{6}Z$/);
    const ajv = new Ajv2020({ allErrors: true, strict: false });
    (addFormats as unknown as (a: Ajv2020) => void)(ajv);
    const valid = ajv.compile(JSON.parse(fs.readFileSync(path.join(ROOT, 'docs/schemas/where-is.schema.json'), 'utf8')));
    assert.ok(valid(byName), JSON.stringify(valid.errors));

    const byGlob = json(await cli(['where-is', '--json', `${src}/**/*.fits`, '--config', cfg])) as { path: string }[];
    assert.deepEqual(byGlob.map((f) => f.path), [img]);
    const dirOut = await cli(['where-is', '--json', src, '--config', cfg]);
    const byDir = json(dirOut) as { path: string; targets: Record<string, { versions?: string[] }> }[];
    assert.deepEqual(byDir.filter((f) => f.targets.a.versions?.length).map((f) => f.path), [img], 'each match gets its own versions');
    assert.deepEqual(byDir.map((f) => f.path), [img, ...many, log], 'a directory: everything under it, sorted');
    // written a match at a time, the text is still what JSON.stringify(all, null, 2) gives
    assert.equal(dirOut.stdout, `${JSON.stringify(byDir, null, 2)}\n`);
    const byRoot = json(await cli(['where-is', '--json', '/', '--config', cfg])) as { path: string }[];
    assert.deepEqual(byRoot.map((f) => f.path), [img, ...many, log], '/ is the directory above everything');
    const manyOut = json(await cli(['where-is', '--json', path.join(src, 'many'), '--config', cfg])) as { path: string; targets: Record<string, { versions?: string[] }> }[];
    assert.deepEqual(manyOut.map((f) => f.path), many, 'in path order, each with its own answer');
    assert.ok(manyOut.every((f) => Array.isArray(f.targets.a.versions) && Array.isArray(f.targets.b.versions)));
    const text = await cli(['where-is', log, '--config', cfg]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, new RegExp(`^${log.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}  [0-9a-f]{16}  3 bytes\\n  a  verified `));
    const none = await cli(['where-is', 'nothing-like-this', '--config', cfg]);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /nothing known matches nothing-like-this/);
    const noneJson = await cli(['where-is', '--json', 'nothing-like-this', '--config', cfg]);
    assert.equal(noneJson.code, 1);
    assert.equal(noneJson.stdout, '[]\n', 'no match: an empty array');
    assert.match(noneJson.stderr, /nothing known matches nothing-like-this/, 'said on stderr in JSON mode too');
    assert.equal((await cli(['where-is', '--config', cfg])).code, 2, 'no argument is a usage error');
    rmTree(dir);
  });
});
