import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { CONFIG_SCHEMA, DEFAULTS, TARGET_COMMON_KEYS, TARGET_KEYS } from '../dist/lib/config/schema.js';
import { KINDS } from '../dist/lib/targets/registry.js';
import { validateConfig } from '../dist/lib/config/validate.js';
import { ROOT, cli, json, rmTree, tmpDir, writeConfig } from './helpers.js';

const ajv = new Ajv2020({ allErrors: true, strict: false });
(addFormats as unknown as (a: Ajv2020) => void)(ajv);
const validate = ajv.compile(CONFIG_SCHEMA as object);

/** A config with every key the schema has, each set (as a user would write it). */
const everything = (dir: string) => ({
  $schema: './docs/schemas/config.schema.json', host: 'h', store: './st', sources: ['src', { path: 'src2', include: ['**/*.fits'], exclude: ['tmp/**'] }],
  exclude: ['**/.DS_Store'], settle: '10s', watcher: 'parcel', heartbeat: '1m', rescan: 90, snapshots: 3, concurrency: 2,
  retry: { maxAttempts: 5, backoff: '10s', maxBackoff: '1h' }, timeouts: { copy: '30m', command: '30s' }, versions: 2,
  deleteLocalAfter: '7d', deleteLocalMax: 10, markers: [{ source: 'src', dirs: '*', completeAfter: '1d', name: 'DONE' }],
  verify: { every: '30d', budget: '20GiB' }, log: { level: 'INFO' }, monitor: { stale: '1h', warnAge: '1h', critAge: '24h' },
  targets: [
    { name: 'disk', url: path.join(dir, 'd'), mount: path.join(dir, 'mnt'), concurrency: 4, bwlimit: '20MiB', timeouts: { copy: '1h' } },
    { name: 'popeye', url: 'ssh://u@popeye:22/ceph', identity: '~/.ssh/id', knownHosts: '~/.ssh/known_hosts', hostKeyCheck: true },
    { name: 'ceph', url: 's3://bucket/p', endpoint: 'http://127.0.0.1:7480', region: 'us-east-1', forcePathStyle: true, accessKeyEnv: 'K', secretKeyEnv: 'S' },
    { name: 'lto', url: 'tape:///dev/nst0', blockSize: '512KiB', capacity: '12TB', volumeSize: '10GiB', maxWait: '1d' },
  ],
});

describe('the config JSON Schema (docs/schemas/config.schema.json) is the source of the keys, and agrees with the validator', () => {
  it('a config using every key validates against the schema and is accepted by replica; the example config too', () => {
    const dir = tmpDir();
    for (const d of ['src', 'src2']) fs.mkdirSync(path.join(dir, d));
    const cfg = everything(dir);
    assert.ok(validate(cfg), JSON.stringify(validate.errors));
    const c = validateConfig(cfg, path.join(dir, 'replica.config.json'));
    assert.deepEqual([c.watcher, c.rescanMs, c.deleteLocalMax, c.targets[3].options.maxWait], ['parcel', 90_000, 10, 86_400_000]);
    const example = JSON.parse(fs.readFileSync(path.join(ROOT, 'replica.config.json'), 'utf8'));
    assert.equal(example.$schema, './docs/schemas/config.schema.json');
    assert.ok(validate(example), JSON.stringify(validate.errors));
    rmTree(dir);
  });

  it('what replica rejects, the schema rejects too: unknown keys, wrong types, bad durations and sizes, names', () => {
    const base = { sources: ['s'], targets: [{ name: 'a', url: 'x' }] };
    for (const bad of [{ ...base, setle: '10s' }, { ...base, settle: '10 parsecs' }, { ...base, settle: '10' }, { ...base, verify: { budget: 'lots' } },
      { ...base, concurrency: 0 }, { ...base, targets: [{ name: 'a b', url: 'x' }] }, { ...base, targets: [{ name: 'a', url: 'x', concurency: 2 }] },
      { ...base, log: { level: 'loud' } }, { ...base, watcher: 'inotifywait' }, { targets: base.targets }, { ...base, markers: [{ source: 's', completAfter: '1d' }] }]) {
      assert.equal(validate(bad), false, JSON.stringify(bad));
      assert.throws(() => validateConfig(bad, '/tmp/replica.config.json'), JSON.stringify(bad));
    }
  });

  it('its target keys are exactly the common keys and every kind\'s options; its defaults are DEFAULTS', () => {
    assert.deepEqual(new Set(TARGET_KEYS), new Set([...TARGET_COMMON_KEYS, ...KINDS.flatMap((k) => Object.keys(k.options))]));
    const p = CONFIG_SCHEMA.properties as Record<string, { default?: unknown; properties?: Record<string, { default?: unknown }>; items?: { properties?: Record<string, { default?: unknown }> } }>;
    const d = DEFAULTS as unknown as Record<string, unknown>;
    for (const k of ['settle', 'watcher', 'heartbeat', 'rescan', 'snapshots', 'concurrency', 'versions', 'deleteLocalAfter', 'deleteLocalMax']) assert.deepEqual(p[k].default, d[k], k);
    for (const group of ['retry', 'verify', 'log', 'monitor'] as const) {
      for (const [k, v] of Object.entries(p[group].properties!)) assert.deepEqual(v.default, (d[group] as Record<string, unknown>)[k], `${group}.${k}`);
    }
    for (const [k, v] of Object.entries(p.markers.items!.properties!)) if (v.default !== undefined) assert.deepEqual(v.default, (DEFAULTS.marker as Record<string, unknown>)[k], `markers[].${k}`);
    const t = (CONFIG_SCHEMA.$defs.timeouts as { properties: Record<string, { default: unknown }> }).properties;
    assert.deepEqual([t.copy.default, t.command.default], [DEFAULTS.timeouts.copy, DEFAULTS.timeouts.command]);
  });

  it('replica config schema prints it; replica config show prints the effective config and where it was found', async () => {
    const dir = tmpDir();
    fs.mkdirSync(path.join(dir, 'src'));
    const cfg = writeConfig(dir, { sources: ['src'], targets: [{ name: 'a', url: 'ta' }], settle: '3s' });
    const s = await cli(['config', 'schema']);
    assert.equal(s.code, 0);
    assert.deepEqual(JSON.parse(s.stdout), CONFIG_SCHEMA);
    const show = json(await cli(['config', 'show', '--config', cfg]));
    assert.deepEqual([show.file, show.settleMs, show.verify.budgetBytes, show.targets[0].path], [cfg, 3000, 20 * 1024 ** 3, path.join(dir, 'ta')]);
    assert.equal((await cli(['config', 'bogus', '--config', cfg])).code, 2);
    rmTree(dir);
  });
});
