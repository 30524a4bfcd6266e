import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, it } from 'node:test';
import { reconcile, reconcileWalked } from '../../dist/lib/backup/reconcile.js';
import { validateConfig } from '../../dist/lib/config/validate.js';
import type { Logger } from '../../dist/lib/log.js';
import { Prewalk } from '../../dist/lib/scan/prewalk.js';
import { emptyCounts } from '../../dist/lib/store/model.js';
import { Store } from '../../dist/lib/store/store.js';
import { age, rmTree, tmpDir } from '../helpers.js';

const dir = tmpDir();
after(() => rmTree(dir));

/** A Logger that keeps what it is told. */
function keeper(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const say = (level: string) => (m: string) => { lines.push(`${level}: ${m}`); };
  return { level: 'debug', lines, error: say('error'), warn: say('warn'), info: say('info'), verbose: say('verbose'), debug: say('debug'), isInfoEnabled: () => true };
}

/** Records as JSON, each pass's `now` written as "now <pass>" (the walk in a worker began at another moment). */
const records = (store: Store, nows: number[]) => JSON.stringify([...store.entries()].sort(([a], [b]) => (a < b ? -1 : 1)), (_k, v) => (nows.includes(v) ? `now ${nows.indexOf(v)}` : v));

it('reconcileWalked (the walk in a worker, taken as it arrives) gives what reconcile gives: entries, problems, deletions, a missing source; a failed worker is made up for by a walk here', async () => {
  const a = path.join(dir, 'a');
  const b = path.join(dir, 'b');
  const f = (p: string, data = p) => { fs.mkdirSync(path.dirname(p), { recursive: true }); fs.writeFileSync(p, data); age(p); };
  for (let i = 0; i < 9000; i++) f(path.join(a, `d${i % 30}`, `f${i}.dat`), `file ${i}`); // more than two batches of 4096
  f(path.join(a, 'skip.tmp'));
  f(path.join(a, 'cache', 'x'));
  fs.symlinkSync('/etc/passwd', path.join(a, 'link'));
  execFileSync('mkfifo', [path.join(a, 'fifo')]);
  // a name that is not valid UTF-8: a problem with its raw bytes, between entries
  fs.writeFileSync(Buffer.concat([Buffer.from(`${a}/d3/bad-`), Buffer.from([0xff, 0xfe]), Buffer.from('.dat')]), 'x');
  f(path.join(b, 'one'));
  // a source whose first event is a problem: a walk broken off after it must not say it twice
  const c = path.join(dir, 'c');
  fs.mkdirSync(c);
  fs.writeFileSync(Buffer.concat([Buffer.from(`${c}/only-`), Buffer.from([0xc3, 0x28])]), 'x');
  const config = validateConfig({ host: 'h', sources: [c, { path: a, exclude: ['*.tmp', 'cache'] }, b], targets: [{ name: 't', url: path.join(dir, 't') }], settle: '1s' }, path.join(dir, 'c.json'));

  /** A walk that breaks off after its first batch, as a worker that died then would (what was taken is not taken again) */
  class BrokenOff extends Prewalk {
    override async *events(i: number) {
      for await (const ev of super.events(i)) { yield ev; break; }
      this.stop();
    }
  }
  const stores = await Promise.all(['here', 'worker', 'failed', 'broken off'].map((n) => Store.open(path.join(dir, `store-${n}`), { host: 'h', agentVersion: 't', snapshots: 1, log: keeper() })));
  const nows: number[][] = stores.map(() => []);
  const pass = async () => {
    const out = [];
    for (const [k, store] of stores.entries()) {
      const counts = emptyCounts();
      const log = keeper();
      let now: number;
      let res;
      if (k === 0) res = reconcile(config, store, counts, log, (now = Date.now()));
      else {
        const pw = k === 3 ? new BrokenOff(config) : new Prewalk(config);
        now = pw.startedAt;
        if (k === 2) pw.stop(); // the worker ends before (or while) it walks
        res = await reconcileWalked(config, store, counts, log, pw);
      }
      assert.equal(log.lines.some((l) => l.startsWith('warn: scan: the walk worker failed')), k >= 2, `store ${k}: walked here only when the worker failed`);
      nows[k].push(now);
      out.push({ res: JSON.stringify(res), counts: JSON.stringify(counts), errors: log.lines.filter((l) => l.startsWith('error')), records: records(store, nows[k]) });
    }
    return out;
  };

  const first = await pass();
  const got = JSON.parse(first[0].res);
  assert.equal(got.toHash.length, 9000 + 1, 'every file, nothing excluded, the link is settled at once, the fifo skipped');
  assert.equal(got.problems.length, 2, 'each name that is not UTF-8, once');
  assert.equal(Buffer.from(got.problems[1].raw.data).includes(0xff), true, 'the raw name bytes');
  assert.deepEqual(first[1], first[0]);
  assert.deepEqual(first[2], first[0]);
  assert.deepEqual(first[3], first[0]);

  // deletions, a change, a new file, and a source gone while the store knows files under it
  fs.rmSync(path.join(a, 'd0', 'f0.dat'));
  fs.rmSync(path.join(a, 'd1'), { recursive: true });
  f(path.join(a, 'd2', 'f2.dat'), 'changed and longer');
  f(path.join(a, 'new'));
  fs.rmSync(b, { recursive: true });
  const second = await pass();
  const res = JSON.parse(second[0].res);
  assert.deepEqual(res.missingSources, [b]);
  assert.equal(JSON.parse(second[0].counts).deleted, 1 + 300);
  assert.ok(res.toHash.includes(path.join(a, 'new')));
  assert.deepEqual(second[1], second[0]);
  assert.deepEqual(second[2], second[0]);
  assert.deepEqual(second[3], second[0]);
  await Promise.all(stores.map((s) => s.close()));
});

it('the worker posts at most `ahead` batches more than the main thread has taken (memory while a big store loads), and the walk is whole all the same', async () => {
  const src = path.join(dir, 'ahead');
  for (let i = 0; i < 8500; i++) { // three batches of at most 4096
    if (i % 500 === 0) fs.mkdirSync(path.join(src, `d${i / 500}`), { recursive: true });
    fs.writeFileSync(path.join(src, `d${Math.floor(i / 500)}`, `f${i}`), '');
  }
  const config = validateConfig({ host: 'h', sources: [src], targets: [{ name: 't', url: path.join(dir, 't2') }] }, path.join(dir, 'c2.json'));
  const free = new Prewalk(config);
  const held = new Prewalk(config, 1);
  await new Promise((r) => setTimeout(r, 1500)); // long enough for the whole walk, nothing taken
  assert.equal(free.waiting, 3, 'unbounded: every batch arrived');
  assert.equal(held.waiting, 1, 'one ahead: the worker waits for the main thread');
  const store = await Store.open(path.join(dir, 'store-ahead'), { host: 'h', agentVersion: 't', snapshots: 1, log: keeper() });
  const counts = emptyCounts();
  const res = await reconcileWalked(config, store, counts, keeper(), held);
  assert.equal(counts.scanned, 8500);
  assert.equal(res.toHash.length + res.waiting.length, 8500);
  free.stop();
  await store.close();
});
