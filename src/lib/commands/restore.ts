import fs from 'node:fs';
import path from 'node:path';
import micromatch from 'micromatch';
import { UsageError } from '../errors.js';
import { formatBytes, parseDuration } from '../config/units.js';
import { type RestoreJob, type RestoreResult, restoreFiles } from '../backup/restore.js';
import { contentAt } from '../store/records.js';
import { kindModule } from '../targets/registry.js';
import { exists } from '../scan/sourceFs.js';
import { type Context, buffered, createTargets, jsonArray, openStoreReadOnly, sortByPathBytes, targetNames } from './context.js';
import { progressLine } from './progress.js';
import { matcher } from './whereIs.js';

export interface RestoreOptions { from?: string; to?: string; at?: string; force?: boolean; fsync?: boolean }

/**
 * `--at TIME`: an ISO 8601 time (`2026-11-29T12:00:00Z`; without a zone it is local time, as `date -d` reads
 * it), or an age (`36h`, `7d`: that long ago). Epoch ms.
 */
export function parseAt(v: string, now = Date.now()): number {
  const age = /ms$/.test(v.trim()) ? undefined : parseDuration(v); // an age in milliseconds is not a time anyone means
  if (age !== undefined) return now - age;
  const t = /^\d{4}-\d\d-\d\d/.test(v.trim()) ? Date.parse(v.trim()) : NaN;
  if (Number.isNaN(t)) throw new UsageError(`--at: cannot read ${JSON.stringify(v)} as a time: give an ISO time (2026-11-29T12:00:00Z, or local 2026-11-29 12:00) or an age (36h, 7d)`);
  return t;
}

/**
 * `replica restore PATH|GLOB|NAME... [--from N] [--to DIR] [--at TIME] [--force]`: every file the store knows
 * that matches (and has a hashed content) is restored, hash-checked, from the first target in config order (or
 * only N) whose copy hashes right. With `--at`, the content current at TIME (a kept version when it has been
 * replaced since); files first seen after TIME are left out. With `--to DIR` a file goes to DIR/<abs path>;
 * without it, in place, but only where the source is missing or with `--force` (else it is not restored,
 * saying so). Like rsync and restic, the restored files are left to the kernel to write out; with `--fsync`
 * each batch is on disk before it is renamed into place. Progress on a TTY. Returns the results.
 */
export async function restoreCommand(ctx: Context, args: string[], opts: RestoreOptions = {}): Promise<RestoreResult[]> {
  if (!args.length) throw new UsageError('replica restore: give at least one PATH, GLOB or NAME');
  const { config } = ctx;
  const atTime = opts.at === undefined ? undefined : parseAt(opts.at);
  targetNames(config, opts.from, '--from');
  const to = opts.to === undefined ? undefined : path.resolve(opts.to);
  // the local kind's worker threads (~0.1 s to start) start while the store loads when a glob or a directory is
  // asked for (restore of 10k x 4 KiB: 0.98x, 12 pairs), else once the matches are known to be worth them (a
  // single file took 0.47 s instead of 0.40 s with them started)
  const warm = (files: number) => { for (const t of config.targets) if (!opts.from || t.name === opts.from) kindModule(t).warm?.(files); };
  const isDir = (a: string) => { try { return fs.statSync(path.resolve(a)).isDirectory(); } catch { return false; } }; // a hint only
  const early = args.some((a) => a.includes('/') && (micromatch.scan(a).isGlob || isDir(a)));
  if (early) warm(Infinity);
  const store = await openStoreReadOnly(ctx);
  const tests = args.map(matcher);
  const matches = sortByPathBytes([...store.entries()].filter(([p, r]) => r.h !== undefined && tests.some((t) => t(p))), ([p]) => p);
  if (!matches.length) throw new UsageError(`replica restore: nothing the store knows matches ${args.join(' ')}`);
  if (!early) warm(matches.length);

  const results: RestoreResult[] = [];
  const jobs: RestoreJob[] = [];
  let notYet = 0;
  for (const [p, rec] of matches) {
    // p is absolute and normal (a store key), `to` resolved: joined by hand (path.join: ~16 ms for 10k files)
    const dest = to === undefined ? p : to === '/' ? p : `${to}${p}`;
    const content = atTime === undefined ? contentAt(rec, Infinity) : contentAt(rec, atTime);
    if (!content) {
      if (atTime !== undefined && atTime < rec.f) { notYet++; continue; }
      results.push({ path: p, to: dest, ok: false, errors: [`the content current at ${new Date(atTime ?? 0).toISOString()} is older than the history the store keeps (2 x versions)`] });
      continue;
    }
    if (to === undefined && !opts.force && exists(p)) {
      results.push({ path: p, to: dest, ok: false, errors: ['the source exists: restore it elsewhere with --to DIR, or over it with --force'] });
      continue;
    }
    jobs.push({ path: p, rec, content, dest });
  }
  if (notYet) ctx.log.info(`${notYet} matching file(s) were first seen after ${new Date(atTime!).toISOString()}: not restored`);
  if (!jobs.length && !results.length) throw new UsageError(`replica restore: nothing that matches ${args.join(' ')} existed at ${new Date(atTime!).toISOString()}`);

  const targets = createTargets(config, ctx.log, opts.from, store);
  const infoOn = ctx.log.isInfoEnabled(); // a line per file costs ~7 us even when the level drops it
  const total = { files: jobs.length, bytes: jobs.reduce((n, j) => n + j.rec.z, 0) };
  const done = { files: 0, bytes: 0, failed: 0 };
  const progress = process.stderr.isTTY && !ctx.opts.json && total.files > 1
    ? progressLine(process.stderr, () => `restored ${done.files}/${total.files} (${formatBytes(done.bytes)} of ${formatBytes(total.bytes)})  failed ${done.failed}`)
    : undefined;
  try {
    const roots = to === undefined ? config.sources.map((s) => s.path) : [to];
    // targets whose copies are files here: small ones are read by worker threads with synchronous I/O
    const local = new Map(config.targets.filter((t) => t.path !== undefined).map((t) => [t.name, { base: t.path!, timeoutMs: t.timeouts.copyMs }]));
    results.push(...await restoreFiles(jobs, targets, config.host, roots, {
      local, durable: opts.fsync,
      onDone: (r) => {
        if (r.ok) { done.files++; done.bytes += r.bytes ?? 0; } else done.failed++;
        if (!r.ok) ctx.log.error(`could not restore ${r.path}: ${r.errors.join('; ')}`, { path: r.path });
        else if (infoOn) ctx.log.info(`restored ${r.path} -> ${r.to} from ${r.from}${r.version ? ` (version ${r.version})` : ''}`, { path: r.path, target: r.from });
      },
    }));
  } finally {
    progress?.stop();
    await Promise.allSettled(targets.map((t) => t.close()));
  }
  const order = new Map(matches.map(([p], i) => [p, i]));
  results.sort((a, b) => order.get(a.path)! - order.get(b.path)!);
  // in ~64 KiB writes (a write per line of 10k lines cost ~80 ms), never one string: a restore of millions of files
  if (ctx.opts.json) {
    const json = jsonArray(ctx.out);
    for (const r of results) json.add(r);
    json.end();
  } else {
    const out = buffered(ctx.out);
    for (const r of results) out.write(r.ok ? `restored ${r.path} -> ${r.to} (from ${r.from}${r.version ? `, version ${r.version}` : ''})\n` : `NOT restored ${r.path}: ${r.errors.join('; ')}\n`);
    out.flush();
  }
  return results;
}
