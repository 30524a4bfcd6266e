import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it, before, after } from 'node:test';
import { cli, rmTree, tmpDir, writeConfig } from './helpers.js';
import { loadConfig } from '../dist/lib/config/load.js';
import { ConfigError } from '../dist/lib/errors.js';
import { formatBytes, formatDuration, parseDuration, parseSize } from '../dist/lib/config/units.js';

describe('config: every malformed case exits 78 with one line per problem naming the key', () => {
  let dir: string;
  let good: Record<string, unknown>;
  before(() => {
    dir = tmpDir();
    fs.mkdirSync(path.join(dir, 'src'));
    good = { sources: ['src'], targets: [{ name: 'a', url: 'ta' }] };
  });
  after(() => rmTree(dir));

  const cases: [string, (g: any) => unknown, RegExp][] = [
    ['unknown top-level key with a hint', (g) => ({ ...g, setle: '10s' }), /^config: setle: unknown key \(did you mean "settle"\?\)/m],
    ['unknown target key', (g) => ({ ...g, targets: [{ name: 'a', url: 'ta', concurency: 2 }] }), /targets\[0\]\.concurency: unknown key \(did you mean "concurrency"\?\)/],
    ['unknown source key', (g) => ({ ...g, sources: [{ path: 'src', exlude: ['x'] }] }), /sources\[0\]\.exlude: unknown key \(did you mean "exclude"\?\)/],
    ['bad target scheme', (g) => ({ ...g, targets: [{ name: 'a', url: 'ftp://x' }] }), /targets\[0\]\.url: expected ssh:\/\/, s3:\/\/, tape:\/\/ or a local path, got "ftp:\/\/x"/],
    ['missing sources', (g) => ({ targets: g.targets }), /^config: sources: required/m],
    ['empty targets', (g) => ({ ...g, targets: [] }), /^config: targets: expected a non-empty array/m],
    ['bad duration', (g) => ({ ...g, settle: '10 parsecs' }), /^config: settle: expected a duration/m],
    ['bad size', (g) => ({ ...g, verify: { budget: 'lots' } }), /^config: verify\.budget: expected a size/m],
    ['negative concurrency', (g) => ({ ...g, concurrency: -1 }), /^config: concurrency: expected an integer >= 1/m],
    ['non-integer retry.maxAttempts', (g) => ({ ...g, retry: { maxAttempts: 2.5 } }), /retry\.maxAttempts: expected an integer >= 1/],
    ['duplicate target names', (g) => ({ ...g, targets: [{ name: 'a', url: 'x' }, { name: 'a', url: 'y' }] }), /targets\[1\]\.name: duplicate target name/],
    ['bad target name', (g) => ({ ...g, targets: [{ name: 'a b', url: 'x' }] }), /targets\[0\]\.name: may contain only/],
    ['host with a slash', (g) => ({ ...g, host: 'a/b' }), /^config: host: must be a plain name/m],
    ['host is ..', (g) => ({ ...g, host: '..' }), /^config: host: must be a plain name/m],
    ['kind-specific key on the wrong kind', (g) => ({ ...g, targets: [{ name: 'a', url: 'ta', identity: '~/.ssh/id' }] }), /targets\[0\]\.identity: only valid for ssh targets, this one is local/],
    ['bad ssh url', (g) => ({ ...g, targets: [{ name: 'a', url: 'ssh://host' }] }), /targets\[0\]\.url: expected ssh:\/\/\[user@\]host\[:port\]\/path/],
    ['bad s3 bucket', (g) => ({ ...g, targets: [{ name: 'a', url: 's3://B_ad/x' }] }), /targets\[0\]\.url: expected s3:\/\/bucket\/prefix/],
    ['bad log level', (g) => ({ ...g, log: { level: 'loud' } }), /^config: log\.level: expected one of error, warn, info, verbose, debug/m],
    ['bad watcher', (g) => ({ ...g, watcher: 'inotifywait' }), /^config: watcher: expected "auto", "chokidar" or "parcel"/m],
    ['source does not exist', (g) => ({ ...g, sources: ['nope'] }), /^config: sources\[0\]\.path: directory does not exist: .*nope/m],
    ['source is a file', (g) => ({ ...g, sources: ['replica.config.json'] }), /sources\[0\]\.path: not a directory/],
    ['target inside a source', (g) => ({ ...g, targets: [{ name: 'a', url: 'src/backup' }] }), /targets\[0\]\.url: .*\/src\/backup is inside sources\[0\] .*: the backup would back itself up; exclude it in that source's "exclude" \(e\.g\. "backup\/\*\*"\)/],
    ['overlapping sources', (g) => ({ ...g, sources: ['src', 'src/sub'] }), /sources\[1\]\.path: overlaps sources\[0\]/],
    ['top level is an array', () => [1, 2], /expected a JSON object at the top level/],
    ['maxBackoff shorter than backoff', (g) => ({ ...g, retry: { backoff: '1h', maxBackoff: '1m' } }), /retry\.maxBackoff: must not be shorter than retry\.backoff/],
    ['bad bwlimit and glob type', (g) => ({ ...g, exclude: [3], targets: [{ name: 'a', url: 'ta', bwlimit: 'fast' }] }), /^config: targets\[0\]\.bwlimit: expected a size.*\nconfig: exclude\[0\]: expected a glob string, got 3$/m],
    ['timeouts not an object', (g) => ({ ...g, timeouts: '30s' }), /^config: timeouts: expected an object/m],
    ['unknown keys at every level come from the schema (with hints), and what only the schema checks', (g) => ({ ...g, $schema: 5, verify: { evry: '30d' }, timeouts: { cpy: '1m' }, monitor: { warnage: '1h' } }),
      /^config: \$schema: expected a string, got 5\nconfig: timeouts\.cpy: unknown key \(did you mean "copy"\?\)\nconfig: verify\.evry: unknown key \(did you mean "every"\?\)\nconfig: monitor\.warnage: unknown key \(did you mean "warnAge"\?\)$/m],
    ['negative deleteLocalMax', (g) => ({ ...g, deleteLocalMax: -1 }), /^config: deleteLocalMax: expected an integer >= 0/m],
    ['markers not an array', (g) => ({ ...g, markers: { source: 'src' } }), /^config: markers: expected an array/m],
    ['marker outside every source, bad name, dirs climbing out, unknown key', (g) => ({ ...g, markers: [{ source: '/etc', name: 'a/b', dirs: '../*', completAfter: '1d' }] }),
      /^config: markers\[0\]\.completAfter: unknown key \(did you mean "completeAfter"\?\)\nconfig: markers\[0\]\.source: \/etc is not a configured source nor inside one.*\nconfig: markers\[0\]\.dirs: expected a glob relative.*\nconfig: markers\[0\]\.name: expected a plain file name, got "a\/b"$/m],
  ];
  for (const [name, make, expect] of cases) {
    it(name, async () => {
      fs.mkdirSync(path.join(dir, 'src', 'sub'), { recursive: true });
      const cfg = writeConfig(dir, make(good) as Record<string, unknown>);
      const r = await cli(['run', '--config', cfg], { cwd: dir });
      assert.equal(r.code, 78, r.stderr);
      assert.match(r.stderr, expect);
      assert.equal(r.stdout, '');
    });
  }

  it('a config that is not valid JSON names the file', async () => {
    fs.writeFileSync(path.join(dir, 'broken.json'), '{ "sources": [');
    const r = await cli(['status', '--config', path.join(dir, 'broken.json')]);
    assert.equal(r.code, 78);
    assert.match(r.stderr, /^config: .*broken\.json:1:15: invalid JSON: Unexpected end of JSON input$/m);
  });

  it('a JS config with a syntax error names the file and what is wrong (the bundled cosmiconfig loads it as node_modules\' did)', async () => {
    const js = path.join(dir, 'replica.config.cjs');
    fs.writeFileSync(js, "module.exports = { host: 'h', ");
    fs.chmodSync(js, 0o644);
    const r = await cli(['status', '--config', js]);
    assert.equal(r.code, 78);
    assert.match(r.stderr, /^config: .*replica\.config\.cjs: cannot parse config: Unexpected end of input$/m);
    assert.doesNotMatch(r.stderr, /__filename|__dirname/);
  });

  it('an empty config file, a missing --config file, and no config at all', async () => {
    fs.writeFileSync(path.join(dir, 'empty.json'), '');
    assert.match((await cli(['status', '--config', path.join(dir, 'empty.json')])).stderr, /config file is empty/);
    const missing = await cli(['status', '--config', path.join(dir, 'nope.json')]);
    assert.equal(missing.code, 78);
    assert.match(missing.stderr, /config file not found \(from --config\)/);
    const none = tmpDir();
    const r = await cli(['status'], { cwd: none });
    assert.equal(r.code, 78);
    assert.match(r.stderr, /no config found/);
    rmTree(none);
  });
});

describe('config discovery and resolution', () => {
  it('found from a subdirectory upward; REPLICA_CONFIG and --config override; relative paths are relative to the file', async () => {
    const dir = tmpDir();
    fs.mkdirSync(path.join(dir, 'data'));
    fs.mkdirSync(path.join(dir, 'deep', 'er'), { recursive: true });
    writeConfig(dir, { host: 'up', sources: ['data'], targets: [{ name: 'a', url: 'ta' }] });
    const c = await loadConfig({ cwd: path.join(dir, 'deep', 'er'), env: {} });
    assert.equal(c.host, 'up');
    assert.equal(c.sources[0].path, fs.realpathSync(path.join(dir, 'data')));
    assert.equal(c.targets[0].path, path.join(dir, 'ta'));
    assert.equal(c.store, path.join(dir, '.replica'));
    const other = writeConfig(path.join(dir, 'deep'), { host: 'env', sources: ['../data'], targets: [{ name: 'a', url: '/abs/t' }] }, 'x.json');
    assert.equal((await loadConfig({ cwd: dir, env: { REPLICA_CONFIG: other } })).host, 'env');
    assert.equal((await loadConfig({ cwd: dir, file: other, env: { REPLICA_CONFIG: '/nope' } })).host, 'env');
    fs.writeFileSync(path.join(dir, 'deep', '.replicarc.yaml'), 'host: yaml\nsources: [../data]\ntargets:\n  - {name: a, url: ../t}\n');
    assert.equal((await loadConfig({ cwd: path.join(dir, 'deep'), env: {} })).host, 'yaml');
    rmTree(dir);
  });

  it('an explicit config named package.json is read from its `replica` key, and a JSON config with $import is merged (both through cosmiconfig, not the JSON fast path)', async () => {
    const dir = tmpDir();
    fs.mkdirSync(path.join(dir, 'data'));
    fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'x', replica: { host: 'pkg', sources: ['data'], targets: [{ name: 'a', url: 'ta' }] } }));
    assert.equal((await loadConfig({ cwd: '/', file: path.join(dir, 'package.json'), env: {} })).host, 'pkg');
    fs.writeFileSync(path.join(dir, 'base.json'), JSON.stringify({ host: 'base', sources: ['data'] }));
    fs.writeFileSync(path.join(dir, 'site.json'), JSON.stringify({ $import: 'base.json', targets: [{ name: 'a', url: 'ta' }] }));
    const c = await loadConfig({ cwd: '/', file: path.join(dir, 'site.json'), env: {} });
    assert.equal(c.host, 'base');
    assert.equal(c.sources[0].path, fs.realpathSync(path.join(dir, 'data')));
    assert.equal(c.targets[0].path, path.join(dir, 'ta'));
    // a JSON config that is a directory, or unreadable: the same one-line error as before
    fs.mkdirSync(path.join(dir, 'd.json'));
    await assert.rejects(loadConfig({ cwd: '/', file: path.join(dir, 'd.json'), env: {} }), (e: unknown) => e instanceof ConfigError && /d\.json: cannot parse config: .*EISDIR/.test(e.message));
    rmTree(dir);
  });

  it('defaults fill every key; durations and sizes parse', async () => {
    const dir = tmpDir();
    fs.mkdirSync(path.join(dir, 'data'));
    writeConfig(dir, { sources: [{ path: 'data' }], targets: [{ name: 'a', url: 'file:///tmp/x', timeouts: { copy: 60 } }], timeouts: { command: '5s' } });
    const c = await loadConfig({ cwd: dir, env: {} });
    assert.equal(c.settleMs, 10_000);
    assert.equal(c.retry.maxAttempts, 10);
    assert.equal(c.verify.budgetBytes, 20 * 1024 ** 3);
    assert.equal(c.targets[0].path, '/tmp/x');
    assert.deepEqual(c.targets[0].timeouts, { copyMs: 60_000, commandMs: 5_000 });
    assert.equal(c.deleteLocalAfterMs, null);
    assert.equal(c.deleteLocalMax, 1000);
    assert.deepEqual(c.markers, []);
    writeConfig(dir, { sources: ['data'], targets: [{ name: 'a', url: 'ta' }], markers: [{ source: 'data' }, { source: 'data', dirs: '*/*', completeAfter: '2h', name: 'DONE' }] });
    const m = await loadConfig({ cwd: dir, env: {} });
    assert.deepEqual(m.markers, [
      { source: fs.realpathSync(path.join(dir, 'data')), dirs: '*', completeAfterMs: 86_400_000, name: '.replica-complete.json' },
      { source: fs.realpathSync(path.join(dir, 'data')), dirs: '*/*', completeAfterMs: 7_200_000, name: 'DONE' },
    ]);
    assert.ok(c.host.length > 0 && !c.host.includes('.'));
    await assert.rejects(loadConfig({ cwd: dir, env: {}, file: 'nope.json' }), ConfigError);
    rmTree(dir);
  });

  it('units', () => {
    assert.equal(parseDuration('500ms'), 500);
    assert.equal(parseDuration('7d'), 7 * 86_400_000);
    assert.equal(parseDuration(1.5), 1500);
    assert.equal(parseDuration('1y'), undefined);
    assert.equal(parseDuration(-1), undefined);
    assert.equal(parseSize('512KiB'), 512 * 1024);
    assert.equal(parseSize('20MB'), 20e6);
    assert.equal(parseSize(4096), 4096);
    assert.equal(parseSize('1.5GiB'), 1.5 * 1024 ** 3);
    assert.equal(parseSize({}), undefined);
    assert.equal(formatBytes(1536), '1.5 KiB');
    assert.equal(formatBytes(12), '12 B');
    assert.equal(formatDuration(45_000), '45s');
    assert.equal(formatDuration(3_720_000), '1h2m');
    assert.equal(formatDuration(90_061_000), '1d1h');
    assert.equal(formatDuration(600_000), '10m');
  });
});
