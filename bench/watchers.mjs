// Watchers side by side on one tree (default: the bench's 100k files in 1k dirs): time to ready, RSS,
// inotify watches; and for `replica watch`, latency from a file's last write to verified on a local target
// (taken from the store: verifiedAt - mtime of the file). usage: node bench/watchers.mjs TREE WORKDIR
import fs from 'node:fs';
import path from 'node:path';
import { spawn, execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const [tree, W] = process.argv.slice(2);
const dirs = fs.readdirSync(tree, { withFileTypes: true }).filter((d) => d.isDirectory()).length + 1;
const files = fs.readdirSync(tree, { recursive: true }).length - dirs + 1;
const rssMB = (pid) => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;
// `replica watch` is two processes: the supervisor (src/bin/supervisor.ts) and the agent, its child
const childPid = (pid) => Number(fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/)[0]);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const rows = [];
// every row is the median of STARTS starts (one start is noisy here: 0.9-1.3 s for the same agent)
const STARTS = Number(process.env.BENCH_WATCH_STARTS ?? 3);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
/** The row of `runs` (objects of numbers): each number the median over the runs, readyMs listed too. */
const medianRow = (who, runs) => {
  const r = { who, starts: runs.map((x) => x.readyMs) };
  for (const k of new Set(runs.flatMap((x) => Object.keys(x)))) r[k] = median(runs.map((x) => x[k]).filter((v) => v !== undefined));
  return r;
};

// plain chokidar and @parcel/watcher, each in a child process that reports when ready
const probe = (lib) => `
  const t0 = performance.now();
  const { processWatches } = await import(${JSON.stringify(path.join(ROOT, 'dist/lib/scan/inotify.js'))});
  ${lib === 'chokidar'
    ? `const { watch } = await import('chokidar'); const w = watch(${JSON.stringify(tree)}, { ignoreInitial: true, followSymlinks: false }); await new Promise((r) => w.once('ready', r));`
    : `const pw = (await import('@parcel/watcher')).default; await pw.subscribe(${JSON.stringify(tree)}, () => {});`}
  console.log(JSON.stringify({ readyMs: process.uptime() * 1000, rssMB: process.memoryUsage().rss / 1048576, watches: processWatches() }));
  process.exit(0);`;
for (const lib of ['chokidar', 'parcel']) {
  const runs = Array.from({ length: STARTS }, () => JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', probe(lib)], { cwd: ROOT, encoding: 'utf8', maxBuffer: 1 << 20 })));
  rows.push(medianRow(lib === 'chokidar' ? 'chokidar 5 (plain)' : '@parcel/watcher', runs));
}

// replica watch on the same tree, already backed up (the steady state of a restart): the default backend
// (`watcher` not set: auto), then each one named
for (const backend of ['auto', 'chokidar', 'parcel']) {
const cfg = path.join(W, 'watchbench.json');
const store = path.join(W, 'watchbench.store');
fs.writeFileSync(cfg, JSON.stringify({ host: 'bench', store, sources: [{ path: tree, exclude: ['.complete', 'probe-*'] }], targets: [{ name: 't', url: path.join(W, 'watchbench.dst') }], settle: '1s', log: { level: 'info' } }));
if (!fs.existsSync(path.join(store, 'meta.json'))) execFileSync(process.execPath, [path.join(ROOT, 'dist/bin/replica.js'), 'run', '--config', cfg], { stdio: 'ignore' });
fs.writeFileSync(cfg, JSON.stringify({ host: 'bench', store, sources: [{ path: tree, exclude: ['.complete'] }], targets: [{ name: 't', url: path.join(W, 'watchbench.dst') }], settle: '1s', ...(backend === 'auto' ? {} : { watcher: backend }), log: { level: 'info' } }));
// run as systemd/replica.service runs it (same NODE_OPTIONS)
const unitEnv = /Environment=NODE_OPTIONS=(.*)/.exec(fs.readFileSync(path.join(ROOT, 'systemd/replica.service'), 'utf8'))?.[1] ?? '';
let used;
const runs = [];
for (let start = 0; start < STARTS; start++) {
const child = spawn(process.execPath, [path.join(ROOT, 'dist/bin/replica.js'), 'watch', '--config', cfg], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, NODE_OPTIONS: unitEnv } });
let log = '';
child.stderr.on('data', (d) => (log += d));
while (!/watch: watching/.test(log)) await sleep(20);
used = /inotify watches \((\w+)\)/.exec(log)?.[1];
const r = { readyMs: Number(/"readyMs":(\d+)/.exec(log)[1]), rssMB: rssMB(childPid(child.pid)), supervisorMB: rssMB(child.pid), watches: Number(/(\d+) inotify watches/.exec(log.split('watcher ready')[1])[1]) };
// latency (the last start only): write a file, wait for its record to say verified, read verifiedAt - mtime
// from the store
if (start === STARTS - 1) {
const { Store } = await import(path.join(ROOT, 'dist/lib/store/store.js'));
const { silentLogger } = await import(path.join(ROOT, 'dist/lib/log.js'));
const { decodeState } = await import(path.join(ROOT, 'dist/lib/store/model.js'));
const lat = [];
for (let i = 0; i < 5; i++) {
  const p = path.join(tree, `d${i * 97}`, `probe-${Date.now()}-${i}.dat`);
  fs.writeFileSync(p, Buffer.alloc(65536, i));
  const dst = path.join(W, 'watchbench.dst', 'bench', p);
  while (!fs.existsSync(dst)) await sleep(10);
  await sleep(2500); // the store is flushed about a second after a change
  const s = await Store.open(store, { host: 'bench', agentVersion: 'bench', snapshots: 1, log: silentLogger(), readOnly: true });
  const rec = s.get(p);
  const st = decodeState(rec?.t.t);
  if (st.s === 'v') lat.push(st.v - rec.m);
  fs.rmSync(p);
}
r.latencyMs = lat.sort((a, b) => a - b)[Math.floor(lat.length / 2)];
}
child.kill('SIGTERM');
await new Promise((res) => child.once('exit', res));
runs.push(r);
}
rows.push(medianRow(`replica watch (${backend === 'auto' ? `default: auto, used ${used}` : backend})`, runs));
}
console.log(`| watcher on ${files} files in ${dirs} dirs (median of ${STARTS} starts) | ready | RSS | inotify watches | last write -> verified |`);
console.log('|---|---|---|---|---|');
for (const x of rows) console.log(`| ${x.who} | ${(x.readyMs / 1000).toFixed(2)} s (${x.starts.map((v) => (v / 1000).toFixed(2)).join(', ')}) | ${x.rssMB.toFixed(0)} MB${x.supervisorMB === undefined ? '' : ` (+ ${x.supervisorMB.toFixed(0)} MB supervisor)`} | ${x.watches} (${(x.watches / dirs).toFixed(2)} x dirs) | ${x.latencyMs === undefined ? '' : `${Math.round(x.latencyMs)} ms (settle 1000 ms)`} |`);
console.log(`goals: ready <= 1 s, RSS <= 150 MB, watches <= 1.1 x dirs, latency <= settle + 500 ms`);
