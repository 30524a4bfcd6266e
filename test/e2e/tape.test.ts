import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync, spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { CLI, ROOT, age, alive, cli, children, exited, json, makeTree, onTarget, rmTree, tmpDir, treeDigest, until, writeConfig } from '../helpers.js';

function validator(name: string) {
  const ajv = new Ajv2020({ allErrors: true, strict: false });
  (addFormats as unknown as (a: Ajv2020) => void)(ajv);
  return ajv.compile(JSON.parse(fs.readFileSync(path.join(ROOT, 'docs/schemas', name), 'utf8')));
}

type TapeList = { target: string; open: string | null; problem?: string; tapes: { label: string; state: string; bytes: number; tapeFiles: number; confirmedFiles: number; unusableFiles: number; members: number }[] };
type Status = { targets: { name: string; verified: { files: number }; pending: { files: number } }[] };

/** A source tree, a local target and an emulated tape beside it; `tape` options on the tape target. */
function setup(tape: Record<string, unknown> = {}, files?: Record<string, Buffer>, top: Record<string, unknown> = {}) {
  const dir = tmpDir();
  const src = path.join(dir, 'src');
  const emu = path.join(dir, 'emu');
  fs.mkdirSync(emu);
  if (files) {
    for (const [rel, data] of Object.entries(files)) {
      const p = path.join(src, rel);
      fs.mkdirSync(path.dirname(p), { recursive: true });
      fs.writeFileSync(p, data);
      age(p);
    }
  }
  const cfg = writeConfig(dir, {
    host: 'obs', sources: [src], retry: { backoff: '0s', maxBackoff: '0s' }, ...top,
    targets: [{ name: 'disk', url: 'disk' }, { name: 'lto', url: `tape://${emu}`, capacity: '100MiB', blockSize: '10KiB', ...tape }],
  });
  const run = (...args: string[]) => cli([...args, '--config', cfg]);
  return { dir, src, emu, cfg, run };
}

describe('tape targets (the emulator): archive, confirm, tapes', () => {
  it('no tape open: the tape target is down, the disk gets everything; open T001 and run --flush: every file verified on both; GNU tar -xf gives <host>/<abs path> byte-identical, odd names included; the manifest member passes xxhsum -c', async () => {
    const { dir, src, emu, run } = setup();
    makeTree(src, 60, { maxBytes: 40 << 10, seed: 3 });
    const first = await run('run');
    assert.equal(first.code, 1);
    assert.match(first.stderr, /target down: lto: \[not-mounted\] .*no tape open \(replica tape open LABEL\)/);
    const open = await run('tape', 'open', 'T001', '--serial', '000123L8');
    assert.equal(open.code, 0, open.stderr);
    const check = await run('check');
    assert.match(check.stdout, /ok +target lto: tape:\/\/.*: reachable, authenticated, writable, 100\.0 MiB free \(tape T001, 0 tape files\)/, 'check reads the open tape from the catalog in the store');
    // default volumeSize (10GiB) and maxWait (1d): a plain run archives nothing yet, and that is not a failure
    const waiting = await run('run');
    assert.equal(waiting.code, 0, waiting.stderr);
    assert.match((await run('status')).stdout, /tape: T001 open; .*; 60 pending wait for their tape file \(volumeSize or maxWait; `replica run --flush` writes them now\)/);
    assert.equal(fs.readdirSync(path.join(emu, 'T001')).length, 0);
    const r = await run('run', '--flush');
    assert.equal(r.code, 0, r.stderr);
    const st = json<Status>(await run('status', '--json'));
    for (const t of st.targets) assert.equal(t.verified.files, 60, t.name);
    assert.deepEqual(fs.readdirSync(path.join(emu, 'T001')), ['file00001.tar']);
    const out = path.join(dir, 'untar');
    fs.mkdirSync(out);
    execFileSync('tar', ['-xf', path.join(emu, 'T001', 'file00001.tar')], { cwd: out });
    const fromTape = treeDigest(onTarget(out, 'obs', src));
    assert.deepEqual(fromTape, treeDigest(src), 'every member byte-identical, under <host>/<abs path>');
    const manifest = path.join(out, 'obs', '.replica', 'manifest-1.xxh64');
    const plain = fs.readFileSync(manifest, 'utf8').split('\n').filter((l) => l && !l.startsWith('\\'));
    fs.writeFileSync(path.join(out, 'plain.xxh64'), plain.map((l) => `${l}\n`).join(''));
    assert.equal(plain.length, 58, 'all but the two names xxhsum escapes (newline, backslash)');
    execFileSync('xxhsum', ['-c', 'plain.xxh64'], { cwd: out });
    const list = json<TapeList>(await run('tape', 'list', '--json'));
    assert.equal(list.open, 'T001');
    assert.deepEqual(list.tapes.map((t) => [t.label, t.state, t.tapeFiles, t.confirmedFiles, t.members]), [['T001', 'open', 1, 1, 60]]);
    assert.equal(list.tapes[0].bytes, fs.statSync(path.join(emu, 'T001', 'file00001.tar')).size);
    rmTree(dir);
  });

  it('where-is prints tape://<label>/<file number>/<member>; restore --from the tape is byte-identical with mode and mtime; the store is never shipped to tape', async () => {
    const data = crypto.randomBytes(200_000);
    const { dir, src, emu, run } = setup({}, { 'night/img_0042.fits': data });
    fs.chmodSync(path.join(src, 'night/img_0042.fits'), 0o640);
    await run('tape', 'open', 'T001');
    assert.equal((await run('run', '--flush')).code, 0);
    const rel = `obs${src}/night/img_0042.fits`;
    const w = json<{ targets: Record<string, { location: string; state: string }> }[]>(await run('where-is', 'img_0042.fits', '--json'));
    assert.equal(w[0].targets.lto.location, `tape://T001/1/${rel}`);
    const vw = validator('where-is.schema.json');
    assert.ok(vw(w), JSON.stringify(vw.errors));
    assert.equal(w[0].targets.lto.state, 'verified');
    fs.rmSync(path.join(src, 'night/img_0042.fits'));
    const to = path.join(dir, 'restored');
    const r = await run('restore', 'img_0042.fits', '--from', 'lto', '--to', to);
    assert.equal(r.code, 0, r.stderr);
    const got = path.join(to, src, 'night/img_0042.fits');
    assert.deepEqual(fs.readFileSync(got), data);
    assert.equal(fs.statSync(got).mode & 0o777, 0o640);
    assert.ok(Math.abs(fs.statSync(got).mtimeMs - (Date.now() - 3600_000)) < 60_000, 'the recorded mtime');
    assert.ok(fs.existsSync(path.join(dir, 'disk', '.replica', 'obs', 'meta.json')), 'the store is shipped to the disk');
    const tarMembers = execFileSync('tar', ['-tf', path.join(emu, 'T001', 'file00001.tar')], { encoding: 'utf8' }).split('\n').filter(Boolean);
    assert.deepEqual(tarMembers, [rel, 'obs/.replica/manifest-1.xxh64'], 'only the file and its manifest: no store on tape');
    rmTree(dir);
  });

  it('tape full: capacity 5MiB, 7 x 1MiB: some on T001, status and tape list say full; open T002 and run: all verified', async () => {
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 7; i++) files[`f${i}.bin`] = crypto.randomBytes(1 << 20);
    const { dir, emu, run } = setup({ capacity: '5MiB', volumeSize: '1MiB' }, files);
    await run('tape', 'open', 'T001');
    const r = await run('run');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /tape T001 full: open a new one/);
    const st = await run('status');
    assert.match(st.stdout, /tape: tape T001 full: open a new one/);
    const sj = json<Status & { targets: { tape?: { open: string | null; problem?: string } }[] }>(await run('status', '--json'));
    const vs = validator('status.schema.json');
    assert.ok(vs(sj), JSON.stringify(vs.errors));
    assert.deepEqual(sj.targets[1].tape && [sj.targets[1].tape.open, /T001 full/.test(sj.targets[1].tape.problem ?? '')], [null, true]);
    const onT001 = json<Status>(await run('status', '--json')).targets.find((t) => t.name === 'lto')!.verified.files;
    assert.ok(onT001 >= 3 && onT001 < 7, `some on T001: ${onT001}`);
    let list = json<TapeList>(await run('tape', 'list', '--json'));
    assert.equal(list.open, null);
    assert.match(list.problem!, /T001 full/);
    assert.equal(list.tapes[0].state, 'full');
    assert.equal(list.tapes[0].unusableFiles, 1);
    const sizes = fs.readdirSync(path.join(emu, 'T001')).reduce((n, f) => n + fs.statSync(path.join(emu, 'T001', f)).size, 0);
    assert.equal(sizes, 5 << 20, 'written to the end of the tape');
    assert.equal((await run('tape', 'open', 'T002')).code, 0);
    const r2 = await run('run');
    assert.equal(r2.code, 0, r2.stderr);
    const lto = json<Status>(await run('status', '--json')).targets.find((t) => t.name === 'lto')!;
    assert.equal(lto.verified.files, 7);
    list = json<TapeList>(await run('tape', 'list', '--json'));
    assert.deepEqual(list.tapes.map((t) => [t.label, t.state]), [['T001', 'full'], ['T002', 'open']]);
    assert.equal(list.tapes.reduce((n, t) => n + t.members, 0), 7);
    assert.ok(list.tapes.every((t) => t.bytes > 0));
    rmTree(dir);
  });

  it('a byte flipped inside a member: verify --target exits 1 with mismatch for that file only; the next run archives it again into a new tape file', async () => {
    const files = { 'a.dat': crypto.randomBytes(100_000), 'b.dat': crypto.randomBytes(100_000) };
    const { dir, src, emu, run } = setup({}, files);
    await run('tape', 'open', 'T001');
    assert.equal((await run('run', '--flush')).code, 0);
    const tarFile = path.join(emu, 'T001', 'file00001.tar');
    const buf = fs.readFileSync(tarFile);
    buf[buf.indexOf(files['b.dat'].subarray(0, 256)) + 50_000] ^= 0x40;
    fs.writeFileSync(tarFile, buf);
    const v = await run('verify', '--target', 'lto', '--all');
    assert.equal(v.code, 1);
    assert.match(v.stdout, /mismatch {2}.*b\.dat/);
    assert.doesNotMatch(v.stdout, /a\.dat/);
    const r = await run('run');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(fs.readdirSync(path.join(emu, 'T001')), ['file00001.tar', 'file00002.tar']);
    const members = execFileSync('tar', ['-tf', path.join(emu, 'T001', 'file00002.tar')], { encoding: 'utf8' });
    assert.ok(members.includes(`obs${src}/b.dat`) && !members.includes('a.dat'), members);
    assert.equal((await run('verify', '--target', 'lto', '--all')).code, 0);
    const w = json<{ targets: Record<string, { location: string }> }[]>(await run('where-is', 'b.dat', '--json'));
    assert.equal(w[0].targets.lto.location, `tape://T001/2/obs${src}/b.dat`);
    rmTree(dir);
  });

  it('kill -9 during an archive: the next run records the partial tape file as unusable and archives its files again; nothing is verified that was not read back', async () => {
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 6; i++) files[`big${i}.bin`] = crypto.randomBytes(2 << 20);
    const { dir, emu, cfg, run } = setup({ bwlimit: '2MiB' }, files);
    await run('tape', 'open', 'T001');
    const child = spawn(process.execPath, [CLI, 'run', '--flush', '--config', cfg], { stdio: 'ignore' });
    const first = path.join(emu, 'T001', 'file00001.tar');
    await until(() => fs.existsSync(first) && fs.statSync(first).size > 0, 30_000, 20);
    const worker = children(child.pid!); // replica's worker (not a `sync` it may have started, which ends on its own)
    child.kill('SIGKILL');
    await exited(child);
    await until(() => worker.every((p) => !alive(p)), 5000, 10);
    const mid = json<Status>(await run('status', '--json')).targets.find((t) => t.name === 'lto')!;
    assert.equal(mid.verified.files, 0, 'nothing verified on tape before its confirm');
    const r = await run('run', '--flush');
    assert.equal(r.code, 0, r.stderr);
    const detail = json<{ files: { number: number; state: string; reason?: string }[] }>(await run('tape', 'status', 'T001', '--json'));
    assert.equal(detail.files[0].state, 'unusable');
    assert.match(detail.files[0].reason!, /interrupted/);
    assert.ok(detail.files.slice(1).every((f) => f.state === 'confirmed'));
    assert.equal(json<Status>(await run('status', '--json')).targets.find((t) => t.name === 'lto')!.verified.files, 6);
    rmTree(dir);
  });

  it('tape commands: bad action, no tape target, a label that would leave the emulator, reopening a full or closed tape; close', async () => {
    const { dir, run } = setup();
    assert.equal((await run('tape', 'spin')).code, 2);
    assert.equal((await run('tape', 'open')).code, 2);
    const bad = await run('tape', 'open', '../etc');
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /tape label/);
    assert.equal((await run('tape', 'open', 'T001')).code, 0);
    assert.equal((await run('tape', 'close')).code, 0);
    const list = json<TapeList>(await run('tape', 'list', '--json'));
    assert.deepEqual(list.tapes.map((t) => t.state), ['closed']);
    assert.match((await run('tape', 'open', 'T001')).stderr, /T001 is closed: a tape is written once/);
    const noTape = writeConfig(dir, { sources: [path.join(dir, 'src')], targets: [{ name: 'disk', url: 'disk' }] }, 'plain.json');
    fs.mkdirSync(path.join(dir, 'src'), { recursive: true });
    const none = await cli(['tape', 'list', '--config', noTape]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /no tape:\/\/ target in the config/);
    const noCap = writeConfig(dir, { sources: [path.join(dir, 'src')], targets: [{ name: 'lto', url: `tape://${dir}/emu` }] }, 'nocap.json');
    const nc = await cli(['run', '--config', noCap]);
    assert.equal(nc.code, 78);
    assert.match(nc.stderr, /targets\[0\]\.capacity: required for the tape emulator/);
    rmTree(dir);
  });

  it('with replica watch holding the store, tape open and tape close are done by the agent (asked through the store and SIGUSR2); it then archives', async () => {
    const { dir, cfg, run } = setup({ maxWait: '1s' }, { 'a.dat': crypto.randomBytes(5000), 'b.dat': crypto.randomBytes(7000) });
    const agent = spawn(process.execPath, [CLI, 'watch', '--config', cfg], { stdio: 'ignore' });
    try {
      const lto = async () => json<Status>(await run('status', '--json')).targets.find((t) => t.name === 'lto');
      await until(async () => (await run('status', '--json')).code === 0 && (await lto())?.pending.files === 2, 30_000, 200);
      const open = await run('tape', 'open', 'T001', '--json');
      assert.equal(open.code, 0, open.stderr);
      assert.equal(json<TapeList>(open).open, 'T001');
      await until(async () => (await lto())!.verified.files === 2, 60_000, 250);
      const again = await run('tape', 'open', 'T001');
      assert.equal(again.code, 0, 'opening the open tape again is a no-op');
      const close = await run('tape', 'close', '--json');
      assert.equal(close.code, 0, close.stderr);
      assert.deepEqual(json<TapeList>(close).tapes.map((t) => t.state), ['closed']);
      const reopen = await run('tape', 'open', 'T001');
      assert.equal(reopen.code, 1);
      assert.match(reopen.stderr, /T001 is closed: a tape is written once/);
    } finally {
      agent.kill('SIGTERM');
      await exited(agent);
    }
    rmTree(dir);
  });

  it('deleteLocalAfter with a tape target: a source is removed only once its member is confirmed on tape (the live check trusts the catalog, not a random read)', async () => {
    const { dir, src, run } = setup({}, { 'old.dat': crypto.randomBytes(3000) }, { deleteLocalAfter: '0s' });
    await run('tape', 'open', 'T001');
    const before = await run('run', '--json');
    assert.equal(before.code, 0, before.stderr);
    assert.ok(fs.existsSync(path.join(src, 'old.dat')), 'not on tape yet (waiting for its tape file): kept');
    const r = await run('run', '--flush', '--json');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(json<{ removedLocally?: { removed: string[] } }>(r).removedLocally?.removed, [path.join(src, 'old.dat')]);
    assert.equal(fs.existsSync(path.join(src, 'old.dat')), false, 'removed in the pass that confirmed it on tape');
    rmTree(dir);
  });
  it('a file restored in place (same bytes, its mtime to the microsecond, a new inode) is not copied again: its copies stay verified on disk and tape; a chmod of the file is copied', async () => {
    const { dir, src, emu, run } = setup({}, { 'run/a.fits': crypto.randomBytes(3000), 'run/b.fits': crypto.randomBytes(5000) });
    const a = path.join(src, 'run', 'a.fits');
    // an mtime whose seconds as a double fall just below the exact microsecond (utimes of ms / 1000 set it 1 us early)
    fs.utimesSync(a, 1, 1790000000.123463);
    const mtime = fs.statSync(a).mtimeMs;
    assert.equal((await run('tape', 'open', 'T001')).code, 0);
    assert.equal((await run('run', '--flush')).code, 0);
    const before = json<{ targets: Record<string, { verifiedAt: string }> }[]>(await run('where-is', a, '--json'))[0];
    fs.rmSync(a);
    const r = await run('restore', a);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(fs.statSync(a).mtimeMs, mtime, 'the recorded mtime, to the microsecond');
    const again = json<{ counts: { hashed: number; copied: number } }>(await run('run', '--flush', '--json'));
    assert.deepEqual([again.counts.hashed, again.counts.copied], [1, 0], 'hashed again (a new inode), copied nowhere');
    const after = json<{ targets: Record<string, { state: string; verifiedAt: string }> }[]>(await run('where-is', a, '--json'))[0];
    assert.deepEqual(Object.values(after.targets).map((t) => t.state), ['verified', 'verified']);
    assert.deepEqual([after.targets.disk.verifiedAt, after.targets.lto.verifiedAt], [before.targets.disk.verifiedAt, before.targets.lto.verifiedAt], 'the same copies');
    assert.deepEqual(fs.readdirSync(path.join(emu, 'T001')).filter((f) => f.endsWith('.tar')), ['file00001.tar'], 'no new tape file');
    // the same file chmod'ed (its inode, a new ctime): copied again, so the copies follow
    fs.chmodSync(a, 0o600);
    const chmoded = json<{ counts: { copied: number } }>(await run('run', '--flush', '--json'));
    assert.equal(chmoded.counts.copied, 2);
    assert.equal(fs.statSync(onTarget(path.join(dir, 'disk'), 'obs', src, 'run/a.fits')).mode & 0o777, 0o600);
    rmTree(dir);
  });
});
