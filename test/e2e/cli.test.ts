import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { COMMANDS, GLOBAL_OPTIONS, MAN_DATE, cliMarkdown, completionScript, configMarkdown, manPage, monitorManPage } from '../../dist/bin/cli.js';
import { CLI, ROOT, cli, json, rmTree, tmpDir, until } from '../helpers.js';

describe('the CLI: help, errors, completion, man pages, docs/cli.md (all from one table: src/bin/cli.ts)', () => {
  it('every command has its own --help (options, examples, exit codes), the same as `replica help CMD`', async () => {
    for (const c of COMMANDS) {
      const h = await cli([c.name, '--help']);
      assert.equal(h.code, 0, c.name);
      assert.match(h.stdout, new RegExp(`^Usage: replica ${c.name} `), c.name);
      for (const o of [...c.options, ...GLOBAL_OPTIONS]) assert.ok(h.stdout.includes(o.flags), `${c.name} --help lists ${o.flags}`);
      assert.match(h.stdout, /\nExamples:\n {2}\$ \S/);
      assert.match(h.stdout, /\nExit codes:\n(.*\n)* {2}78 {3}config error/);
      assert.equal((await cli(['help', c.name])).stdout, h.stdout, `replica help ${c.name}`);
    }
    const top = await cli(['help']);
    assert.equal(top.code, 0);
    for (const c of COMMANDS) assert.match(top.stdout, new RegExp(`^ {2}${c.name} `, 'm'));
    assert.match((await cli(['-V'])).stdout, /^\d+\.\d+\.\d+\n$/);
  });

  it('mistakes: one line naming the problem with a "did you mean", exit 2; with --json also one JSON line on stdout', async () => {
    const cmd = await cli(['stauts']);
    assert.equal(cmd.code, 2);
    assert.match(cmd.stderr, /^replica: unknown command 'stauts' \(did you mean status\?\)\nrun `replica --help`/);
    const opt = await cli(['verify', '--budgte', '1G']);
    assert.equal(opt.code, 2);
    assert.match(opt.stderr, /^replica: unknown option '--budgte' \(did you mean --budget\?\)\n/);
    const j = await cli(['status', 'extra', '--json']);
    assert.equal(j.code, 2);
    assert.deepEqual(json(j), { error: { exitCode: 2, class: 'UsageError', message: "too many arguments for 'status'. Expected 0 arguments but got 1." } });
    assert.equal((await cli(['run', '--max-delete', 'many'])).code, 2);
    assert.equal((await cli(['status', '--log-level', 'LOUD'])).code, 2);
    assert.equal((await cli(['completion', 'tcsh'])).code, 2);
  });

  it('`--` ends the options: a file named like an option is hashed', async () => {
    const dir = tmpDir();
    fs.writeFileSync(path.join(dir, '--json'), 'x');
    const r = spawnSync(process.execPath, [CLI, 'hash', '--', '--json'], { cwd: dir, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, execFileSync('xxhsum', ['-H1', '--', '--json'], { cwd: dir, encoding: 'utf8' }));
    rmTree(dir);
  });

  it('hash: files past a read buffer (4 MiB) and small ones as xxhsum -H1 hashes them; the same under node --frozen-intrinsics (hashing copies then)', () => {
    const dir = tmpDir();
    const names = ['empty', 'small', 'big'];
    fs.writeFileSync(path.join(dir, 'empty'), '');
    fs.writeFileSync(path.join(dir, 'small'), crypto.randomBytes(5000));
    fs.writeFileSync(path.join(dir, 'big'), crypto.randomBytes((9 << 20) + 3));
    const want = execFileSync('xxhsum', ['-H1', ...names], { cwd: dir, encoding: 'utf8' });
    for (const flags of [[], ['--frozen-intrinsics']]) {
      const r = spawnSync(process.execPath, [...flags, CLI, 'hash', ...names], { cwd: dir, encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, want, `node ${flags.join(' ')}`);
    }
    rmTree(dir);
  });

  it('hash under an address-space limit (ulimit -v) that leaves room for one WebAssembly memory but not two: hashes right (copying, as xxhash-wasm does)', () => {
    const dir = tmpDir();
    const f = path.join(dir, 'data');
    fs.writeFileSync(f, crypto.randomBytes((5 << 20) + 1));
    const want = execFileSync('xxhsum', ['-H1', f], { encoding: 'utf8' });
    const hash = (limitKb: number, flags: string[]) => spawnSync('bash', ['-c', `ulimit -v ${limitKb} && exec "$@"`, 'sh', process.execPath, ...flags, CLI, 'hash', f], { encoding: 'utf8' });
    // the lowest limit (to 1 GiB) at which one instance fits: --frozen-intrinsics makes xxhash-wasm's alone
    let [lo, hi] = [1, 128];
    assert.equal(hash(hi << 20, ['--frozen-intrinsics']).stdout, want, 'hashes with 128 GiB of address space');
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (hash(mid << 20, ['--frozen-intrinsics']).status === 0) hi = mid;
      else lo = mid;
    }
    const r = hash((hi + 1) << 20, []);
    assert.equal(r.status, 0, `at ${hi + 1} GiB: ${r.stderr}`);
    assert.equal(r.stdout, want);
    rmTree(dir);
  });

  it('hash - reads stdin and hash -c checks a list as xxhsum -c does (escaped names too), exit 1 on any mismatch or unreadable file', async () => {
    const dir = tmpDir();
    const sh = (cmd: string) => spawnSync('bash', ['-c', cmd], { cwd: dir, encoding: 'utf8' });
    fs.writeFileSync(path.join(dir, 'a'), 'alpha');
    fs.writeFileSync(path.join(dir, 'b\\odd'), 'beta');
    assert.equal(sh(`printf data | ${process.execPath} ${CLI} hash -`).stdout, sh('printf data | xxhsum -H1 -').stdout);
    sh("xxhsum -H1 a 'b\\odd' > list");
    const ours = sh(`${process.execPath} ${CLI} hash -c list`);
    const theirs = sh('xxhsum -c list');
    assert.equal(ours.status, 0, ours.stderr);
    assert.equal(ours.stdout, theirs.stdout, 'OK lines as xxhsum prints them');
    fs.writeFileSync(path.join(dir, 'a'), 'ALPHA');
    sh('echo "0123456789abcdef  gone" >> list');
    const bad = sh(`${process.execPath} ${CLI} hash -c - < list`);
    assert.equal(bad.status, 1);
    assert.equal(bad.stdout, sh('xxhsum -c - < list').stdout, 'byte for byte what xxhsum -c prints');
    assert.match(bad.stdout, /^stdin:3: Could not open or read 'gone': No such file or directory\.\n1 listed file could not be read\n1 computed checksum did NOT match\n$/m);
    assert.equal(sh(`echo junk | ${process.execPath} ${CLI} hash -c -`).status, 1);
    rmTree(dir);
  });

  it('NO_COLOR and FORCE_COLOR: the monitor on a terminal has colours, none with NO_COLOR set; in a pipe none, unless FORCE_COLOR', () => {
    const dir = tmpDir();
    const mon = path.join(ROOT, 'dist/bin/replica-monitor.js');
    const tty = (env: string) => execFileSync('script', ['-qfec', `${env} ${process.execPath} ${mon} ${dir}/nostore; true`, '/dev/null'], { encoding: 'utf8' });
    fs.mkdirSync(path.join(dir, 'nostore'));
    assert.match(tty(''), /\x1b\[35mUNKNOWN/);
    assert.doesNotMatch(tty('NO_COLOR=1'), /\x1b\[/);
    const pipe = (env: NodeJS.ProcessEnv) => spawnSync(process.execPath, [mon, `${dir}/nostore`], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '', FORCE_COLOR: '', CI: '', ...env } }).stdout;
    assert.doesNotMatch(pipe({}), /\x1b\[/);
    assert.match(pipe({ FORCE_COLOR: '1' }), /\x1b\[35mUNKNOWN/);
    rmTree(dir);
  });

  it('watch on a terminal: a live status line at the bottom, cleared around each log line; a line per settled batch', async () => {
    const dir = tmpDir();
    fs.mkdirSync(path.join(dir, 'src'));
    fs.writeFileSync(path.join(dir, 'replica.config.json'), JSON.stringify({ host: 'h', sources: ['src'], targets: [{ name: 'a', url: 'ta' }], settle: '500ms' }));
    const child = spawn('script', ['-qfec', `timeout -s TERM 6 ${process.execPath} ${CLI} watch`, '/dev/null'], { cwd: dir });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    await until(() => out.includes('watching 0 files'));
    fs.writeFileSync(path.join(dir, 'src', 'one'), 'x');
    await until(() => out.includes('since start 1 copied, 1 verified'));
    await new Promise((r) => child.on('exit', r));
    assert.match(out, /\r\x1b\[K(\x1b\[\d+m)?info(\x1b\[\d+m)?: watch: 1 settled file: 1 copy made \(1 B\), 1 verified, 0 failed\r?\n/, 'a log line starts on a cleared line');
    assert.match(out, /watching 1 file: 0 settling, 0 to copy; since start 1 copied, 1 verified, 0 failed; last batch \d\d:\d\d:\d\dZ/);
    rmTree(dir);
  });

  it('completion: bash completes commands, options and option values; fish too; the zsh script loads', async () => {
    const dir = tmpDir();
    for (const sh of ['bash', 'zsh', 'fish']) fs.writeFileSync(path.join(dir, sh), (await cli(['completion', sh])).stdout);
    const bash = (words: string[]) => execFileSync('bash', ['-c', `source ${dir}/bash; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _replica; printf '%s\\n' "\${COMPREPLY[@]}"`], { encoding: 'utf8' }).trim().split('\n');
    assert.deepEqual(bash(['replica', 're']), ['retry', 'restore']);
    assert.deepEqual(bash(['replica', 'restore', '--f']), ['--from', '--force', '--fsync']);
    assert.deepEqual(bash(['replica', 'status', '--log-level', 'v']), ['verbose']);
    assert.deepEqual(bash(['replica', 'help', 'ad']), ['adopt']);
    const fish = (line: string) => execFileSync('fish', ['-c', `source ${dir}/fish; complete -C '${line}'`], { encoding: 'utf8' }).trim().split('\n').map((l) => l.split('\t')[0]);
    assert.deepEqual(fish('replica wh'), ['where-is']);
    assert.deepEqual(fish('replica verify --b'), ['--budget']);
    assert.deepEqual(fish('replica status --log-level '), ['debug', 'error', 'info', 'verbose', 'warn']);
    execFileSync('zsh', ['-n', `${dir}/zsh`]);
    const z = execFileSync('zsh', ['-c', `autoload -U compinit && compinit -u -D && source ${dir}/zsh && whence -w _replica`], { encoding: 'utf8' });
    assert.match(z, /_replica: function/);
    rmTree(dir);
  });

  it('docs/cli.md and the man pages are what the table generates (`npm run docs`), and the man pages render', () => {
    assert.equal(fs.readFileSync(path.join(ROOT, 'docs/cli.md'), 'utf8'), cliMarkdown(), 'docs/cli.md is stale: npm run docs');
    assert.equal(fs.readFileSync(path.join(ROOT, 'man/replica.1'), 'utf8'), manPage(MAN_DATE), 'man/replica.1 is stale: npm run docs');
    assert.equal(fs.readFileSync(path.join(ROOT, 'man/replica-monitor.1'), 'utf8'), monitorManPage(MAN_DATE));
    for (const [shell, file] of [['bash', 'replica.bash'], ['zsh', '_replica'], ['fish', 'replica.fish']]) {
      assert.equal(fs.readFileSync(path.join(ROOT, 'completions', file), 'utf8'), completionScript(shell), `completions/${file} is stale: npm run docs`);
    }
    const schema = JSON.parse(fs.readFileSync(path.join(ROOT, 'docs/schemas/config.schema.json'), 'utf8'));
    const configMd = configMarkdown(schema, fs.readFileSync(path.join(ROOT, 'replica.config.json'), 'utf8'));
    assert.equal(fs.readFileSync(path.join(ROOT, 'docs/config.md'), 'utf8'), configMd, 'docs/config.md is stale: npm run docs');
    for (const k of ['settle', 'deleteLocalMax', 'markers[].completeAfter', 'targets[].maxWait', 'verify.budget', 'timeouts.copy']) assert.ok(configMd.includes(`| \`${k}\``), `docs/config.md has ${k}`);
    for (const c of COMMANDS) assert.ok(cliMarkdown().includes(`## replica ${c.name}`));
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
    assert.deepEqual(pkg.man, ['./man/replica.1', './man/replica-monitor.1'], 'installed by the package');
    const packed = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8' }))[0].files.map((f: { path: string }) => f.path);
    for (const f of ['man/replica.1', 'man/replica-monitor.1', 'docs/cli.md', 'docs/schemas/config.schema.json', 'replica.config.json', 'README.md']) assert.ok(packed.includes(f), `the package holds ${f}`);
    assert.ok(packed.some((f: string) => f.startsWith('example/data/')), 'and the example tree the example config backs up');
    for (const page of ['replica.1', 'replica-monitor.1']) {
      const r = spawnSync('man', ['-l', '--warnings=w', path.join(ROOT, 'man', page)], { encoding: 'utf8', env: { ...process.env, MANWIDTH: '100', MAN_KEEP_FORMATTING: '' } });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stderr, '', `${page} renders without warnings`);
      assert.match(r.stdout, /^NAME\n {7}replica/m);
    }
    assert.match(execFileSync('man', ['-l', path.join(ROOT, 'man/replica.1')], { encoding: 'utf8', env: { ...process.env, MANWIDTH: '200' } }), /replica restore <path\|glob\|name\.\.\.>/);
  });
});
