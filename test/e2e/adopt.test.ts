import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { age, cli, json, onTarget, rmTree, tmpDir, treeDigest, writeConfig } from '../helpers.js';

type Adopt = { listed: number; adopted: { files: number; bytes: number }; alreadyVerified: number; differing: string[]; orphaned: string[]; notSettled: string[]; notBackedUp: string[]; occupied: string[]; unreadable: unknown[]; fromMetadata: number; dryRun: boolean };

/** A source tree and a local target pre-filled by `rsync -a` into the per-host layout, as an existing backup volume is. */
function prefilled(host: string) {
  const dir = tmpDir();
  const src = path.join(dir, 'src');
  const files: string[] = [];
  for (let i = 0; i < 12; i++) {
    const p = path.join(src, `2026-11-${String(10 + (i % 3))}`, `cam${i}.fits`);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, crypto.randomBytes(40_000 + i));
    age(p);
    files.push(p);
  }
  const base = path.join(dir, 'backup');
  const hostDir = path.join(base, host, path.dirname(src));
  fs.mkdirSync(hostDir, { recursive: true });
  execFileSync('rsync', ['-a', src, hostDir + '/']);
  return { dir, src, files, base };
}

describe('replica adopt: enrol an existing per-host backup (MagAO-X)', () => {
  it('a local target pre-filled by rsync -a: equal copies verified with 0 bytes copied, a modified one copied by the next run (the old copy kept as a version), orphans recorded and restorable', async () => {
    const { dir, src, files, base } = prefilled('h');
    const copyOf = (p: string) => onTarget(base, 'h', src, path.relative(src, p));
    fs.appendFileSync(copyOf(files[3]), 'stale backup'); // the backup holds an older content of this one
    const orphan = path.join(src, '2026-10-01', 'old.fits'); // gone from the instrument, only in the backup
    fs.mkdirSync(path.dirname(copyOf(orphan)), { recursive: true });
    const orphanBytes = crypto.randomBytes(5000);
    fs.writeFileSync(copyOf(orphan), orphanBytes);
    const changing = path.join(src, 'now.log'); // still being written: not settled
    fs.writeFileSync(changing, 'x');
    fs.writeFileSync(onTarget(base, 'h', src, 'now.log'), 'x');
    const cfg = writeConfig(dir, { host: 'h', sources: [src], settle: '1h', targets: [{ name: 'vol', url: 'backup' }] });

    const dry = json<Adopt>(await cli(['adopt', '--json', '--dry-run', '--target', 'vol', '--config', cfg]));
    assert.equal(dry.adopted.files, 11);
    assert.equal(json(await cli(['status', '--json', '--config', cfg])).targets[0].verified.files, 0, 'a dry run records nothing');

    const r = await cli(['adopt', '--json', '--target', 'vol', '--config', cfg]);
    assert.equal(r.code, 0, r.stderr);
    const a = json<Adopt>(r);
    assert.deepEqual([a.listed, a.adopted.files, a.differing, a.orphaned, a.notSettled, a.unreadable.length, a.fromMetadata],
      [14, 11, [files[3]], [orphan], [changing], 0, 0]);
    const st = json(await cli(['status', '--json', '--config', cfg]));
    assert.deepEqual([st.targets[0].verified.files, st.targets[0].pending.files], [12, 2], '11 adopted + the orphan verified; the differing one and the one still changing pending');
    fs.rmSync(changing); // (else the run would wait up to `settle` for it)
    const run = json(await cli(['run', '--json', '--config', cfg]));
    assert.deepEqual([run.counts.copied, run.counts.bytesCopied], [1, fs.statSync(files[3]).size], 'only the modified file is copied');
    assert.deepEqual(fs.readFileSync(copyOf(files[3])), fs.readFileSync(files[3]));
    const versions = fs.readdirSync(path.join(base, 'h', '.replica-versions', path.dirname(files[3]).slice(1)));
    assert.equal(versions.length, 1, 'the backup\'s old copy is kept as a version (versions: 1)');
    const w = json(await cli(['where-is', '--json', 'old.fits', '--config', cfg]));
    assert.ok(w[0].deletedAt);
    assert.equal(w[0].targets.vol.state, 'verified');
    const out = path.join(dir, 'out');
    assert.equal((await cli(['restore', orphan, '--to', out, '--config', cfg])).code, 0);
    assert.deepEqual(fs.readFileSync(path.join(out, orphan)), orphanBytes);
    const again = json<Adopt>(await cli(['adopt', '--json', '--target', 'vol', '--config', cfg]));
    assert.deepEqual([again.adopted.files, again.alreadyVerified, again.orphaned.length], [0, 13, 0], 'a second adopt finds everything verified');
    rmTree(dir);
  });

  it('--host: a backup kept under another host name is linked into this host\'s layout (no byte copied), and the next run has nothing to copy', async () => {
    const { dir, src, files, base } = prefilled('exao1-old');
    const cfg = writeConfig(dir, { host: 'exao1', sources: [src], targets: [{ name: 'vol', url: 'backup' }] });
    const a = json<Adopt>(await cli(['adopt', '--json', '--target', 'vol', '--host', 'exao1-old', '--config', cfg]));
    assert.equal(a.adopted.files, 12);
    const ino = (p: string) => fs.statSync(p).ino;
    for (const f of files) assert.equal(ino(onTarget(base, 'exao1', src, path.relative(src, f))), ino(onTarget(base, 'exao1-old', src, path.relative(src, f))), 'a hard link');
    const run = json(await cli(['run', '--json', '--config', cfg]));
    assert.equal(run.counts.copied, 0);
    assert.deepEqual(treeDigest(onTarget(base, 'exao1', src)), treeDigest(src));
    assert.equal((await cli(['verify', '--all', '--config', cfg])).code, 0);
    const bad = await cli(['adopt', '--target', 'vol', '--host', '../etc', '--config', cfg]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--host: expected a plain host name/);
    const none = await cli(['adopt', '--config', cfg]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /give --target N/);
    rmTree(dir);
  });
});
