import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { it } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { ROOT, age, cli, json, makeTree, mountTmpfs, rmTree, tmpDir, writeConfig } from '../helpers.js';

function validator(name: string) {
  const ajv = new Ajv2020({ allErrors: true, strict: false });
  (addFormats as unknown as (a: Ajv2020) => void)(ajv);
  return ajv.compile(JSON.parse(fs.readFileSync(path.join(ROOT, 'docs/schemas', name), 'utf8')));
}

it('status --json and new-files --json validate against docs/schemas, failures and target errors included', async () => {
  const dir = tmpDir();
  const src = path.join(dir, 'src');
  makeTree(src, 10);
  for (let i = 0; i < 4; i++) { fs.writeFileSync(path.join(src, `big${i}`), Buffer.alloc(400 << 10, i)); age(path.join(src, `big${i}`)); }
  const full = path.join(dir, 'full');
  mountTmpfs(full, '1m');
  const cfg = writeConfig(dir, { host: 'j', sources: [src], targets: [{ name: 'full', url: full }, { name: 'gone', url: path.join(dir, 'm', 'x'), mount: path.join(dir, 'm') }, { name: 'ok', url: 'ok' }],
    markers: [{ source: src, dirs: '*' }], deleteLocalAfter: '1d' });
  assert.equal((await cli(['run', '--config', cfg])).code, 1);
  fs.writeFileSync(path.join(src, 'later'), 'x');
  const status = json(await cli(['status', '--json', '--config', cfg]));
  assert.ok(status.targets[0].failed.byClass.ENOSPC, 'the ENOSPC case is exercised');
  assert.ok(status.targets[1].lastError, 'the target-error case is exercised');
  assert.ok(status.markers.unmarked.length > 0 && status.localRemoval, 'the markers and deleteLocalAfter parts are exercised');
  const vs = validator('status.schema.json');
  assert.ok(vs(status), JSON.stringify(vs.errors));
  const nf = json(await cli(['new-files', '--json', '--config', cfg]));
  assert.ok(nf.length > 0);
  const vn = validator('new-files.schema.json');
  assert.ok(vn(nf), JSON.stringify(vn.errors));
  assert.equal(vn([{ path: 1 }]), false, 'the schema rejects a malformed entry');
  rmTree(dir);
});
