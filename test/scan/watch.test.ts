import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, it } from 'node:test';
import { validateConfig } from '../../dist/lib/config/validate.js';
import { AUTO_PARCEL_FILES, EarlyWatcher, backendFor, createWatcher, type WatchHandlers } from '../../dist/lib/scan/watch.js';
import { Store, storeFileCount } from '../../dist/lib/store/store.js';
import { silentLogger } from '../../dist/lib/log.js';
import { rmTree, tmpDir, until } from '../helpers.js';

const dir = tmpDir();
after(() => rmTree(dir));

const config = (src: string, watcher?: string) => validateConfig({ host: 'h', store: path.join(dir, 'store'), sources: [{ path: src, exclude: ['**/*.tmp'] }], targets: [{ name: 't', url: path.join(dir, 't') }], ...(watcher ? { watcher } : {}) }, path.join(dir, 'c.json'));

/** Handlers that keep what they are told, in order. */
function keeper(): WatchHandlers & { seen: string[] } {
  const seen: string[] = [];
  return { seen, onChange: (p) => seen.push(`change ${p}`), onUnlink: (p) => seen.push(`unlink ${p}`), onError: (e) => seen.push(`error ${e.message}`), isDone: () => false };
}

it('watcher "auto" (the default) takes parcel from AUTO_PARCEL_FILES files on, chokidar below; a named backend is kept whatever the size', () => {
  const src = path.join(dir, 'src0');
  assert.equal(config(src).watcher, 'auto');
  assert.equal(backendFor(config(src), 0), 'chokidar');
  assert.equal(backendFor(config(src), AUTO_PARCEL_FILES - 1), 'chokidar');
  assert.equal(backendFor(config(src), AUTO_PARCEL_FILES), 'parcel');
  assert.equal(backendFor(config(src, 'chokidar'), 10 * AUTO_PARCEL_FILES), 'chokidar');
  assert.equal(backendFor(config(src, 'parcel'), 0), 'parcel');
});

it('storeFileCount reads the record count of the last save from meta.json, without the shards; 0 when there is none', async () => {
  const storeDir = path.join(dir, 'countstore');
  assert.equal(storeFileCount(storeDir), 0);
  const store = await Store.open(storeDir, { host: 'h', agentVersion: 't', snapshots: 0, log: silentLogger() });
  for (let i = 0; i < 5; i++) store.set(`/data/f${i}`, { z: i, m: 1, f: 1, t: {} });
  await store.close();
  assert.equal(storeFileCount(storeDir), 5);
  assert.equal(JSON.parse(fs.readFileSync(path.join(storeDir, 'meta.json'), 'utf8')).files, 5);
  fs.writeFileSync(path.join(storeDir, 'meta.json'), '{"files": "many"}');
  assert.equal(storeFileCount(storeDir), 0);
});

// first of the parcel tests: parcel's module is not loaded yet
it('EarlyWatcher.start resolves with the subscription asked for: a main thread busy right after (a store load) does not delay it', async () => {
  const src = path.join(dir, 'busy');
  fs.mkdirSync(src);
  const early = await EarlyWatcher.start(config(src, 'parcel'));
  // what `watch` does next: a synchronous load. Had the subscription waited for a later turn of the event loop
  // (its module still loading), it would start only after this, and the file below, written before it, would
  // never be reported.
  const end = Date.now() + 400;
  while (Date.now() < end) { /* the load */ }
  fs.writeFileSync(path.join(src, 'during-load.dat'), 'x');
  const k = keeper();
  const watcher = await early.attach(k);
  try {
    await until(() => k.seen.includes(`change ${path.join(src, 'during-load.dat')}`), 10_000, 20);
  } finally {
    await watcher.close();
  }
});

it('EarlyWatcher: changes made before attach() are held and handed over in order (excludes applied), then events flow straight through', async () => {
  // Now and then parcel (2.6.0) makes a subscription that misses events. CI, 2026-12-02: no event in 30 s for
  // files written after subscribe() resolved, once in ~40 runs of this file; CI, 2026-12-03 (the whole suite
  // running): one of the two files reported, the other not within 10 s. Neither came back alone: 150
  // subscribe/write/unsubscribe rounds of this test, 15 runs of it, and 60 rounds of parcel by itself while two
  // processes kept both cores busy. What this test is about is the holding and the handing over, so a
  // subscription that has not reported both files in 10 s is replaced by a new one on a new directory (at most 3
  // in all, said on stderr): a file that the relay drops every time still fails it. A subscription that could
  // not be made fails it at once.
  for (let attempt = 1; ; attempt++) {
    const src = path.join(dir, `early${attempt}`);
    fs.mkdirSync(path.join(src, 'night'), { recursive: true });
    const early = new EarlyWatcher(config(src, 'parcel'));
    let attached: Awaited<ReturnType<EarlyWatcher['attach']>> | undefined;
    try {
      const failed = await early.subscribed();
      if (failed) throw failed;
      fs.writeFileSync(path.join(src, 'night', 'a.dat'), 'a');
      fs.writeFileSync(path.join(src, 'night', 'skip.tmp'), 'excluded');
      fs.writeFileSync(path.join(src, 'b.dat'), 'b');
      // parcel has reported both files to the early watcher (the excluded one is never held)
      try {
        await until(() => early.heldEvents >= 2, 10_000, 20);
      } catch (err) {
        if (attempt === 3) throw err;
        process.stderr.write(`EarlyWatcher test: parcel reported ${early.heldEvents} of the 2 files in 10 s (attempt ${attempt}); a new subscription\n`);
        continue;
      }
      const k = keeper();
      attached = await early.attach(k);
      const watcher = attached;
      assert.equal(watcher.backend, 'parcel');
      assert.equal(early.heldEvents, 0);
      assert.ok(typeof watcher.readyAtMs === 'number' && watcher.readyAtMs > 0);
      // every held event handed over, synchronously within attach(); a file may be reported twice (created, then
      // written in a later batch)
      assert.equal(k.seen.length, watcher.held);
      assert.deepEqual([...new Set(k.seen)].sort(), [`change ${path.join(src, 'b.dat')}`, `change ${path.join(src, 'night', 'a.dat')}`]);
      const held = k.seen.length;
      fs.rmSync(path.join(src, 'b.dat'));
      await until(() => k.seen.slice(held).includes(`unlink ${path.join(src, 'b.dat')}`), 30_000, 20);
      await early.close(); // attached: close() leaves it to its owner
      fs.writeFileSync(path.join(src, 'c.dat'), 'c');
      await until(() => k.seen.includes(`change ${path.join(src, 'c.dat')}`), 30_000, 20);
      return;
    } finally {
      // closed whatever failed above: a subscription left open keeps this test file's process alive
      await (attached ? attached.close() : early.close());
    }
  }
});

it('EarlyWatcher never attached is closed by close()', async () => {
  const src = path.join(dir, 'unused');
  fs.mkdirSync(src);
  const early = new EarlyWatcher(config(src, 'parcel'));
  await early.close();
});

it('parcel: a source that is not there (an unmounted disk) is watched from its parent until it appears, then subscribed and walked; the others are watched meanwhile', async () => {
  const here = path.join(dir, 'here');
  const later = path.join(dir, 'later-mnt', 'data');
  fs.mkdirSync(here);
  fs.mkdirSync(path.dirname(later));
  const cfg = validateConfig({ host: 'h', store: path.join(dir, 'store2'), sources: [{ path: here }, { path: later }], targets: [{ name: 't', url: path.join(dir, 't') }], watcher: 'parcel' }, path.join(dir, 'c.json'));
  const k = keeper();
  const w = await createWatcher(cfg, k, 'parcel');
  try {
    assert.equal(w.backend, 'parcel'); // not the fallback to chokidar: parcel itself cannot subscribe a missing directory
    fs.writeFileSync(path.join(here, 'a.dat'), 'a');
    await until(() => k.seen.includes(`change ${path.join(here, 'a.dat')}`), 10_000, 20);
    // the source appears with a file already in it (made before its subscription): walked, so reported
    fs.mkdirSync(path.join(dir, 'later-mnt', 'tmp-data', 'night'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'later-mnt', 'tmp-data', 'night', 'early.dat'), 'e');
    fs.renameSync(path.join(dir, 'later-mnt', 'tmp-data'), later);
    await until(() => k.seen.includes(`change ${path.join(later, 'night', 'early.dat')}`), 10_000, 20);
    // and watched from then on
    await new Promise((r) => setTimeout(r, 200)); // its subscription is made once the walk reported
    fs.writeFileSync(path.join(later, 'night', 'next.dat'), 'n');
    await until(() => k.seen.includes(`change ${path.join(later, 'night', 'next.dat')}`), 10_000, 20);
    assert.ok(!k.seen.some((s) => s.startsWith('error')), k.seen.join('\n'));
  } finally {
    await w.close();
  }
});
