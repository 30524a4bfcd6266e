import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { describe, it, before, after } from 'node:test';
import { CLI, age, cli, exited, json, makeTree, onTarget, rmTree, tmpDir, treeDigest, until, writeConfig } from '../helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Agent { child: ChildProcess; stderr: () => string }

function startAgent(cfg: string): Agent {
  const child = spawn(process.execPath, [CLI, 'watch', '--config', cfg], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  return { child, stderr: () => err };
}

const sameOn = (targetBase: string, host: string, src: string, rel: string) => {
  const t = onTarget(targetBase, host, src, rel);
  return fs.existsSync(t) && fs.readFileSync(t).equals(fs.readFileSync(path.join(src, rel)));
};

for (const backend of ['chokidar', 'parcel']) describe(`replica watch (${backend})`, () => {
  let dir: string; let src: string; let cfg: string; let agent: Agent;
  const ta = () => path.join(dir, 'ta');
  const tb = () => path.join(dir, 'tb');
  before(async () => {
    dir = tmpDir();
    src = path.join(dir, 'src');
    makeTree(src, 60);
    cfg = writeConfig(dir, { host: 'w', sources: [{ path: src, exclude: ['**/*.part'] }], targets: [{ name: 'a', url: 'ta' }, { name: 'b', url: 'tb' }], settle: '700ms', heartbeat: '1s', rescan: '1h', watcher: backend, log: { level: 'debug' } });
    agent = startAgent(cfg);
    await until(() => agent.stderr().includes('watch: watching'), 30_000);
  });
  after(async () => {
    if (agent.child.exitCode === null) { agent.child.kill('SIGKILL'); await exited(agent.child); }
    rmTree(dir);
  });

  it('the initial pass backs up what was there before the agent started', () => {
    assert.deepEqual(treeDigest(onTarget(ta(), 'w', src)), treeDigest(src));
    assert.deepEqual(treeDigest(onTarget(tb(), 'w', src)), treeDigest(src));
  });

  it('verified files get no inotify watch of their own: watches stay near the directory count', async () => {
    const dirs = fs.readdirSync(src, { recursive: true, withFileTypes: true }).filter((d) => d.isDirectory()).length + 1;
    // heartbeats record the count every second; the saved store lags a flush behind
    const s = await until(async () => {
      const st = json(await cli(['status', '--json', '--config', cfg]));
      return st.watch && st.watch.watches <= dirs * 1.1 + 1 ? st : undefined;
    }, 20_000, 300).catch(async () => json(await cli(['status', '--json', '--config', cfg])));
    assert.equal(s.watch.backend, backend);
    assert.equal(s.watch.mode, 'events');
    assert.ok(s.watch.watches <= dirs * 1.1 + 1, `${s.watch.watches} watches for ${dirs} directories`);
    assert.ok(s.watch.maxWatches > 0);
  });

  it('a file written while the agent runs is verified on both targets, complete, soon after its last write', async () => {
    fs.mkdirSync(path.join(src, 'night1', 'cam'), { recursive: true });
    const f = path.join('night1', 'cam', 'img 0001.fits');
    const t0 = Date.now();
    fs.writeFileSync(path.join(src, f), Buffer.alloc(300_000, 3));
    await until(() => sameOn(ta(), 'w', src, f) && sameOn(tb(), 'w', src, f), 30_000, 20);
    const latency = Date.now() - t0;
    process.stdout.write(`# latency last write -> verified on both targets: ${latency} ms (settle 700 ms)\n`);
  });

  it('a slow writer appending for several seconds is never copied partially, and is copied whole after', async () => {
    const f = 'slow.log';
    const fd = fs.openSync(path.join(src, f), 'a');
    for (let i = 0; i < 20; i++) {
      fs.writeSync(fd, `line ${i} ${'y'.repeat(200)}\n`);
      await sleep(200);
      assert.equal(fs.existsSync(onTarget(ta(), 'w', src, f)), false, `copied while still being written (after ${i + 1} appends)`);
    }
    fs.closeSync(fd);
    await until(() => sameOn(ta(), 'w', src, f) && sameOn(tb(), 'w', src, f), 30_000);
  });

  it('excluded files are ignored; a deleted file is recorded and stays on the targets', async () => {
    fs.writeFileSync(path.join(src, 'scratch.part'), 'partial download');
    fs.writeFileSync(path.join(src, 'keep.txt'), 'keep');
    await until(() => sameOn(tb(), 'w', src, 'keep.txt'), 30_000);
    assert.equal(fs.existsSync(onTarget(ta(), 'w', src, 'scratch.part')), false);
    fs.rmSync(path.join(src, 'keep.txt'));
    await sleep(300);
    assert.ok(fs.existsSync(onTarget(ta(), 'w', src, 'keep.txt')));
  });

  it('`replica run` while the agent holds the lock exits 75 at once', async () => {
    const r = await cli(['run', '--config', cfg]);
    assert.equal(r.code, 75);
  });

  it('churn: hundreds of creates, appends, renames and deletes end with every surviving file identical on both targets', async () => {
    const root = path.join(src, 'churn');
    fs.mkdirSync(root);
    let seed = 99;
    const rand = (n: number) => (seed = (seed * 48271) % 2147483647) % n;
    const live: string[] = [];
    for (let i = 0; i < 400; i++) {
      const op = rand(10);
      if (op < 4 || live.length < 5) {
        const sub = path.join(root, `d${rand(8)}`);
        fs.mkdirSync(sub, { recursive: true });
        const p = path.join(sub, `c${i}.dat`);
        fs.writeFileSync(p, Buffer.alloc(rand(20_000), i & 0xff));
        live.push(p);
      } else if (op < 6) {
        fs.appendFileSync(live[rand(live.length)], `append ${i}\n`);
      } else if (op < 8) {
        const k = rand(live.length);
        const to = path.join(root, `d${rand(8)}`, `r${i}.dat`);
        fs.mkdirSync(path.dirname(to), { recursive: true });
        fs.renameSync(live[k], to);
        live[k] = to;
      } else {
        fs.rmSync(live.splice(rand(live.length), 1)[0]);
      }
      if (i % 25 === 0) await sleep(30);
    }
    const rels = live.map((p) => path.relative(src, p));
    await until(() => rels.every((r) => sameOn(ta(), 'w', src, r) && sameOn(tb(), 'w', src, r)), 60_000, 200).catch((e) => {
      const missing = rels.filter((r) => !(sameOn(ta(), 'w', src, r) && sameOn(tb(), 'w', src, r)));
      const events = missing.slice(0, 3).map((r) => agent.stderr().split('\n').filter((l) => l.includes(r.split('/').pop()!)).map((l) => l.slice(0, 160)).join('\n'));
      throw new Error(`${e.message}: ${missing.length} of ${rels.length} missing, e.g. ${missing.slice(0, 3).join(', ')}\n${events.join('\n---\n')}`);
    });
  });

  it('SIGTERM: exits 0 with the store saved (nothing left pending that had settled)', async () => {
    agent.child.kill('SIGTERM');
    assert.equal(await exited(agent.child), 0);
    assert.match(agent.stderr(), /SIGTERM: stopping/);
    const s = json(await cli(['status', '--json', '--config', cfg]));
    assert.ok(s.watch.stoppedAt);
    for (const t of s.targets) assert.equal(t.failed.files, 0);
  });

  it('files created while the agent was stopped are picked up when it starts', async () => {
    fs.writeFileSync(path.join(src, 'while-down.dat'), 'written while the agent was down');
    age(path.join(src, 'while-down.dat'), 5);
    agent = startAgent(cfg);
    await until(() => sameOn(ta(), 'w', src, 'while-down.dat') && sameOn(tb(), 'w', src, 'while-down.dat'), 30_000);
  });

  it('SIGHUP: an invalid config is refused and the old one kept; a valid one (new target) is taken', async () => {
    const good = fs.readFileSync(cfg, 'utf8');
    fs.writeFileSync(cfg, '{"sources": 5}');
    agent.child.kill('SIGHUP');
    await until(() => /reload refused/.test(agent.stderr()), 20_000).catch((e) => {
      throw new Error(`${e.message}; exit ${agent.child.exitCode}; agent log:\n${agent.stderr().split('\n').slice(-6).join('\n')}`);
    });
    fs.writeFileSync(path.join(src, 'after-bad-hup.dat'), 'still watching');
    await until(() => sameOn(ta(), 'w', src, 'after-bad-hup.dat'), 30_000).catch((e) => {
      throw new Error(`${e.message}; agent log:\n${agent.stderr().split('\n').slice(-25).join('\n')}`);
    });
    const c = JSON.parse(good);
    c.targets.push({ name: 'c', url: 'tc' });
    fs.writeFileSync(cfg, JSON.stringify(c));
    agent.child.kill('SIGHUP');
    await until(() => /config reloaded/.test(agent.stderr()), 30_000);
    await until(() => sameOn(path.join(dir, 'tc'), 'w', src, 'after-bad-hup.dat'), 30_000).catch((e) => {
      throw new Error(`${e.message}\nagent log:\n${agent.stderr().split('\n').slice(-8).join('\n')}`);
    });
    agent.child.kill('SIGINT');
    assert.equal(await exited(agent.child), 0);
  });
});

describe('replica watch with `watcher` not set (auto)', () => {
  let dir: string;
  before(() => { dir = tmpDir(); });
  after(() => rmTree(dir));

  it('10,000 files: a new agent moves from chokidar to parcel after its first pass, and a restarted one subscribes parcel before loading the store (a file written the moment it says ready is backed up); a small store gets chokidar', async () => {
    const src = path.join(dir, 'big');
    for (let d = 0; d < 100; d++) {
      fs.mkdirSync(path.join(src, `d${d}`), { recursive: true });
      for (let i = 0; i < 100; i++) fs.writeFileSync(path.join(src, `d${d}`, `f${i}`), `${d}/${i}`);
    }
    const old = new Date(Date.now() - 3600_000);
    for (let d = 0; d < 100; d++) for (let i = 0; i < 100; i++) fs.utimesSync(path.join(src, `d${d}`, `f${i}`), old, old);
    const cfg = writeConfig(dir, { host: 'w', store: 'big.store', sources: [{ path: src }], targets: [{ name: 'a', url: 'ta' }], settle: '500ms', log: { level: 'info' } }, 'big.json');
    // a new agent on a big tree: its store is empty, so it starts with chokidar, and moves to parcel once
    // its first pass has the files in the store
    const first = startAgent(cfg);
    try {
      await until(() => first.stderr().includes('watch: watching'), 60_000);
      assert.match(first.stderr(), /inotify watches \(chokidar\)/);
      assert.match(first.stderr(), /watch: 10000 files: watching with @parcel\/watcher from now on/);
      fs.writeFileSync(path.join(src, 'd3', 'after-switch.dat'), 'seen by parcel');
      await until(() => sameOn(path.join(dir, 'ta'), 'w', src, 'd3/after-switch.dat'), 30_000);
    } finally {
      first.child.kill('SIGINT');
      assert.equal(await exited(first.child), 0);
    }
    assert.equal(JSON.parse(fs.readFileSync(path.join(dir, 'big.store', 'meta.json'), 'utf8')).files, 10_001);
    // restarted: parcel from the start, subscribed before the store loads
    const agent = startAgent(cfg);
    try {
      await until(() => agent.stderr().includes('watcher ready'), 30_000, 5);
      fs.writeFileSync(path.join(src, 'd7', 'new.dat'), 'written as the agent became ready');
      assert.match(agent.stderr(), /watcher ready \d+ ms after start, \d+ inotify watches \(parcel\), \d+ events held while the store loaded/);
      await until(() => sameOn(path.join(dir, 'ta'), 'w', src, 'd7/new.dat'), 30_000);
      const s = await until(async () => json(await cli(['status', '--json', '--config', cfg])).watch, 20_000, 300);
      assert.equal(s.backend, 'parcel');
      // a second agent on the same store starts its parcel watch before it finds the lock taken: it exits 75 at
      // once all the same, its watch closed
      const second = await cli(['watch', '--config', cfg], { timeoutMs: 20_000 });
      assert.equal(second.code, 75, second.stderr);
    } finally {
      agent.child.kill('SIGINT');
      assert.equal(await exited(agent.child), 0);
    }

    const small = path.join(dir, 'small');
    makeTree(small, 5);
    const cfg2 = writeConfig(dir, { host: 'w', store: 'small.store', sources: [{ path: small }], targets: [{ name: 'a', url: 'ta' }], settle: '500ms', log: { level: 'info' } }, 'small.json');
    const agent2 = startAgent(cfg2);
    try {
      await until(() => agent2.stderr().includes('watch: watching'), 30_000);
      assert.match(agent2.stderr(), /inotify watches \(chokidar\)/);
    } finally {
      agent2.child.kill('SIGINT');
      assert.equal(await exited(agent2.child), 0);
    }
  });
});
