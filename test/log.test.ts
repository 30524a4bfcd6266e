import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { colorEnabled } from '../dist/lib/log.js';

const LOG = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../dist/lib/log.js');

/** Run `body` in a fresh Node with createLogger/silentLogger imported and `loaded()` saying whether winston is (the build's one-file winston, dist/vendor); its stdout and stderr. */
function fresh(body: string): { out: string; err: string } {
  const code = `import { createRequire } from 'node:module';
const { createLogger, silentLogger } = await import(${JSON.stringify(LOG)});
const loaded = () => Object.keys(createRequire(${JSON.stringify(LOG)}).cache).some((f) => f.endsWith('/dist/vendor/winston.cjs'));
${body}`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  assert.equal(r.status, 0, r.stderr);
  return { out: r.stdout, err: r.stderr };
}

it('the logger loads winston with its first message at or above its level; below it, and a silent logger, never', () => {
  const r = fresh(`const log = createLogger('warn', { tty: false });
log.info('below the level', { a: 1 }); log.verbose('below'); log.debug('below');
console.log('after info', loaded(), log.isInfoEnabled());
const quiet = silentLogger(); quiet.error('dropped'); console.log('after silent', loaded(), quiet.isInfoEnabled());
log.warn('a warning', { path: '/data/x' }); console.log('after warn', loaded());`);
  assert.deepEqual(r.out.trim().split('\n'), ['after info false false', 'after silent false false', 'after warn true']);
  const lines = r.err.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(lines.length, 1, r.err);
  assert.equal(lines[0].level, 'warn');
  assert.equal(lines[0].message, 'a warning');
  assert.equal(lines[0].path, '/data/x');
  assert.match(String(lines[0].timestamp), /^\d{4}-\d\d-\d\dT/);
});

it('the logger on a terminal: "level: message", no fields; every level up to its own', () => {
  const r = fresh(`const log = createLogger('debug', { tty: true });
log.error('e'); log.warn('w'); log.info('i', { f: 1 }); log.verbose('v'); log.debug('d'); console.log(log.isInfoEnabled());`);
  assert.equal(r.out.trim(), 'true');
  assert.deepEqual(r.err.trim().split('\n'), ['error: e', 'warn: w', 'info: i', 'verbose: v', 'debug: d']);
});

it('colours: FORCE_COLOR on, else NO_COLOR off, else a terminal', () => {
  assert.equal(colorEnabled(false, { FORCE_COLOR: '1' }), true);
  assert.equal(colorEnabled(true, { FORCE_COLOR: '0' }), true);
  assert.equal(colorEnabled(true, { NO_COLOR: '1' }), false);
  assert.equal(colorEnabled(true, { NO_COLOR: '' }), true);
  assert.equal(colorEnabled(false, {}), false);
});
