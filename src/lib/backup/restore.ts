import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Readable } from 'node:stream';
import PQueue from 'p-queue';
import { TargetError, messageOf } from '../errors.js';
import { createHasher } from '../hash/xxh64.js';
import { DIR_FLAGS, at, utimeSeconds } from '../scan/sourceFs.js';
import type { Rec } from '../store/model.js';
import { type ContentAt, isVerifiedOn, isSettled, previousContents, previousCopyOn } from '../store/records.js';
import { checkRelPath, tempName, targetPath, versionStamp, versionTime } from '../targets/layout.js';
import { writeAll } from '../targets/localWrite.js';
import { type FetchItem, type LocalIo, localIo } from '../targets/localIo.js';
import { type Archive, type RandomRead, type Target, hasArchive, hasRandomRead, hasVersions } from '../targets/target.js';

const C = fs.constants;
const run = promisify(execFile);
/** fs.open as a promise of a plain descriptor (a FileHandle would close it when collected) */
const openFd = promisify(fs.open);
/** fs.rename as a promise: the callback API costs the main thread about half what fs.promises' does per call */
const rename = promisify(fs.rename);

/** One file to restore: its record, the content wanted (live or previous), where it goes. */
export interface RestoreJob { path: string; rec: Rec; content: ContentAt; dest: string }

export interface RestoreResult {
  path: string;
  /** where it was written */
  to: string;
  ok: boolean;
  /** the target that served the right bytes */
  from?: string;
  /** the version's stamp when a previous version served it */
  version?: string;
  /** the content's xxh64 (what the restored bytes hash to) */
  hash?: string;
  bytes?: number;
  /** why each target tried could not serve it, or why nothing was tried */
  errors: string[];
}

/**
 * Files restored per batch with --fsync: written to temps, one syncfs, then renamed into place (a batch's temps
 * and directories are held until then). Without it a file goes into place as soon as it is fetched: one batch.
 */
const BATCH_FILES = 4096;
const BATCH_BYTES = 1024 * 1024 * 1024;
/** Renames in flight when a durable batch is published (each a thread-pool call). */
const PUBLISH_AT_ONCE = 32;

/**
 * Restore `jobs` (sorted by path) from the first of `targets` (in order) whose copy hashes to the content
 * wanted: one corrupt copy never stops a restore another target can serve. Each file's bytes go to a temp file
 * beside its destination (created O_EXCL|O_NOFOLLOW in a directory opened without following symlinks below
 * its trusted root), hashed as they arrive; only a file whose hash matches gets its mtime and mode and is
 * renamed into place: a killed restore leaves temp files, never a half-written file at a restored name. With
 * `durable` (--fsync) the files of a batch are renamed only once the batch is on disk (syncfs), and the renames
 * are made durable at the end: the same holds across a power cut. `roots` are the trusted directories
 * (followed, made if missing): `--to DIR`, or the configured sources for an in-place restore. `onDone` hears
 * of each file as its result is final. Never throws for a file: its result says why.
 */
export async function restoreFiles(jobs: RestoreJob[], targets: Target[], host: string, roots: string[],
  opts: { concurrency?: number; onDone?: (r: RestoreResult) => void; local?: LocalReads; durable?: boolean } = {}): Promise<RestoreResult[]> {
  const dirs = new DestDirs(roots);
  // a few files are fetched in the main thread unless a worker is ready already (LocalIo.worth)
  const workers = opts.local?.size && localIo().worth(jobs.length, jobs.reduce((n, j) => n + j.rec.z, 0)) ? localIo() : undefined;
  const fast = workers && { workers, bases: opts.local!, publish: !opts.durable };
  const results: RestoreResult[] = [];
  // the per-file way (stage): 8 streams at a time from remote targets; with local workers, 512 (a symlink, a
  // version, a file whose quick fetch failed: each a job of its own); the quick path has its own window
  const queue = new PQueue({ concurrency: opts.concurrency ?? (fast ? 512 : 8) });
  const settle = (s: Staged): Staged | Promise<Staged> => {
    if (!opts.durable && isHeld(s)) return publish(s, dirs).then(() => { opts.onDone?.(s.res); return s; }); // into place at once
    if (!opts.durable || !isHeld(s)) opts.onDone?.(s.res);
    return s;
  };
  const slow = (j: RestoreJob, from?: From) => queue.add(async () => settle(await stage(j, targets, host, dirs, fast, from)));
  // --fsync: a batch on disk (one syncfs), then its files renamed into place (by the workers where there are
  // some, else PUBLISH_AT_ONCE at a time: one after the other, 4,096 took ~0.3 s), while the next batch is
  // fetched; never throws
  const makeDurable = async (held: (Staged & { dir: string; fd: number; temp: string })[]): Promise<void> => {
    try {
      await dirs.syncAll();
    } catch (err) { // nothing is published that is not on disk
      for (const s of held) await discard(s, dirs, `cannot flush the restored files to disk: ${messageOf(err)}`);
      held.forEach((s) => opts.onDone?.(s.res));
      return;
    }
    if (fast) await publishByWorkers(held, dirs, fast);
    else await new PQueue({ concurrency: PUBLISH_AT_ONCE }).addAll(held.map((s) => () => publish(s, dirs)));
    held.forEach((s) => opts.onDone?.(s.res));
  };
  /** the last batch being made durable: one at a time, so the temps and directories held stay bounded */
  let durable: Promise<void> = Promise.resolve();
  try {
    for (let i = 0; i < jobs.length;) {
      let batch = jobs;
      if (opts.durable) {
        batch = [];
        for (let bytes = 0; i < jobs.length && batch.length < BATCH_FILES && bytes < BATCH_BYTES; i++) {
          batch.push(jobs[i]);
          bytes += jobs[i].rec.z;
        }
      } else i = jobs.length;
      const staged = fast ? await quickThenSlow(batch, targets, host, dirs, fast, settle, slow) : await Promise.all(batch.map((j) => slow(j)));
      if (opts.durable) {
        await durable;
        durable = makeDurable(staged.filter(isHeld));
      }
      for (const s of staged) results.push(s.res); // a held file's result is final once its batch is durable (below)
    }
    await durable;
    // the renames, once for all batches: a crash before leaves whole files under their temp names, never a part
    if (opts.durable) await dirs.syncAll().catch(() => undefined);
  } finally {
    await durable.catch(() => undefined); // its renames use the directories closed here
    await dirs.close();
  }
  return results;
}

/** A file fetched into `temp` in `dir` (open as `fd`, held until published), or only its result. */
interface Staged { res: RestoreResult; dir?: string; fd?: number; temp?: string }
const isHeld = (s: Staged): s is Staged & { dir: string; fd: number; temp: string } => s.temp !== undefined;

/** Where a file's per-file way starts: at `index` in the targets, after what the ones before said. */
interface From { index: number; errors: string[] }

/** Why a target is passed over without a read: the kind cannot read one file, or holds no copy of that content. */
const notRandom = (t: Target) => `${t.name}: this kind cannot be read at random`;
const noCopy = (t: Target, live: boolean) => `${t.name}: ${live ? 'no verified copy there' : 'no version there'}`;

/** A restore's result before anything was tried. */
const resultOf = (job: RestoreJob): RestoreResult => ({ path: job.path, to: job.dest, ok: false, errors: [], ...(job.rec.l === undefined ? { hash: job.content.hash } : {}) });

/**
 * Where a job's live content comes from when the first target that can serve it (in order) is on this machine:
 * that target (its index), its base, and what the targets before it said. Undefined when the job goes the
 * per-file way (a symlink, a previous content, a tape or remote target first).
 */
interface Quick extends From { t: Target; local: { base: string; timeoutMs: number } }
function quickSource(job: RestoreJob, targets: Target[], fast: Fast): Quick | undefined {
  if (job.rec.l !== undefined || !job.content.live) return undefined;
  const errors: string[] = [];
  for (let index = 0; index < targets.length; index++) {
    const t = targets[index];
    if (hasArchive(t)) return undefined;
    if (!hasRandomRead(t)) { errors.push(notRandom(t)); continue; }
    if (!isVerifiedOn(job.rec, t.name)) { errors.push(noCopy(t, true)); continue; }
    const local = fast.bases.get(t.name);
    return local ? { index, t, local, errors } : undefined;
  }
  return undefined;
}

/** Files fetched per worker job on the quick path (one message, deadline and promise for all), and their bytes at most. */
const FETCH_FILES = 64;
const FETCH_BYTES = 16 << 20;
/**
 * Files of quick-path worker jobs in flight at most: the workers always have the next jobs queued while the main
 * thread plans more, and the directories held open stay bounded (one per file at worst) however many files.
 */
const WINDOW_FILES = 1024;

/**
 * The jobs of a batch, each as its Staged result (in order): those whose live copy a local target serves
 * (quickSource) in worker jobs of up to FETCH_FILES (in path order, so mostly one directory each, written by one
 * worker), posted as they are planned and at most WINDOW_FILES in flight; a job whose quick fetch failed, and
 * every other job, the per-file way (`slow`, from the target after the one that failed). `settle` publishes
 * and reports a staged file.
 */
async function quickThenSlow(batch: RestoreJob[], targets: Target[], host: string, dirs: DestDirs, fast: Fast,
  settle: (s: Staged) => Staged | Promise<Staged>, slow: (j: RestoreJob, from?: From) => Promise<Staged>): Promise<Staged[]> {
  const out: Staged[] = new Array<Staged>(batch.length);
  const pending: Promise<unknown>[] = [];
  // its failure is the batch's (Promise.all below), not an unhandled rejection while the rest is planned
  const keep = (p: Promise<unknown>) => { p.catch(() => undefined); pending.push(p); };
  const put = (k: number) => (s: Staged) => { out[k] = s; };
  let inFlight = 0;
  let wake: (() => void) | undefined;
  let chunk: { job: RestoreJob; q: Quick; k: number }[] = [];
  let bytes = 0;
  const flush = async () => {
    if (!chunk.length) return;
    const mine = chunk;
    chunk = [];
    bytes = 0;
    while (inFlight >= WINDOW_FILES) await new Promise<void>((resolve) => { wake = resolve; });
    inFlight += mine.length;
    const fetched = fetchChunk(mine, host, dirs, fast);
    const release = () => {
      inFlight -= mine.length;
      wake?.();
      wake = undefined;
    };
    fetched.then(release, release); // whatever it ends with, the planning goes on (a failure is the batch's, below)
    keep(fetched.then((r) => {
      const more: Promise<unknown>[] = [];
      mine.forEach(({ job, k }, i) => {
        const x = r[i];
        const s = 'retry' in x ? slow(job, x.retry) : settle(x);
        if (s instanceof Promise) more.push(s.then(put(k)));
        else out[k] = s;
      });
      return Promise.all(more);
    }));
    // let the directories open and the job go out while the next ones are planned
    if (inFlight <= mine.length * 2) await new Promise((resolve) => setImmediate(resolve));
  };
  for (let k = 0; k < batch.length; k++) {
    const job = batch[k];
    const q = quickSource(job, targets, fast);
    if (!q) { keep(slow(job).then(put(k))); continue; }
    if (chunk.length >= FETCH_FILES || bytes + job.rec.z > FETCH_BYTES || (chunk.length && chunk[0].q.t !== q.t)) await flush();
    chunk.push({ job, q, k });
    bytes += job.rec.z;
  }
  await flush();
  await Promise.all(pending);
  return out;
}

/**
 * Fetch `chunk` (jobs whose live copy is on a local target: Quick) in one worker job: each into a temp beside its
 * destination, hash-checked, renamed into place at once unless the restore is durable (then held). A file that
 * could not be fetched there gives `retry`: the per-file way goes on from the next target, with what was said.
 */
async function fetchChunk(chunk: { job: RestoreJob; q: Quick }[], host: string, dirs: DestDirs, fast: Fast): Promise<(Staged | { retry: From })[]> {
  const out = new Array<Staged | { retry: From }>(chunk.length);
  const items: FetchItem[] = [];
  const at: number[] = []; // the chunk entry of each item
  const { t, local } = chunk[0].q;
  // the chunk is in path order: the files of a directory follow each other, and take it once for all of them
  const dirOf = chunk.map(({ job }) => path.dirname(job.dest));
  const users = new Map<string, number>();
  for (const dir of dirOf) users.set(dir, (users.get(dir) ?? 0) + 1);
  const fdOf = new Map<string, number | Error>();
  await Promise.all([...users].map(([dir, n]) => dirs.acquire(dir, n).then((fd) => { fdOf.set(dir, fd); }, (err: unknown) => { fdOf.set(dir, err as Error); })));
  const base = local.base.endsWith('/') ? local.base : `${local.base}/`;
  for (let i = 0; i < chunk.length; i++) {
    const { job, q } = chunk[i];
    const dir = dirOf[i];
    const fd = fdOf.get(dir)!;
    if (fd instanceof Error) { out[i] = { res: { ...resultOf(job), errors: [...q.errors, `cannot write ${dir}: ${messageOf(fd)}`] } }; continue; }
    const rel = targetPath(host, job.path);
    try {
      checkRelPath(t.name, rel); // never a path that leaves the target base (so the base and it need no path.join)
    } catch (err) {
      dirs.release(dir);
      out[i] = { retry: { index: q.index + 1, errors: [...q.errors, `${t.name}: ${messageOf(err)}`] } };
      continue;
    }
    const mtimeMs = isSettled(job.rec) ? job.rec.m : undefined;
    items.push({ src: base + rel, dir: `/proc/self/fd/${fd}`, temp: tempName(), final: fast.publish ? path.basename(job.dest) : undefined, hash: job.content.hash, mtimeMs });
    at.push(i);
  }
  const got = items.length ? await fast.workers.fetchMany(t.name, items, local.timeoutMs).catch((err: Error) => items.map(() => ({ err }))) : [];
  for (let n = 0; n < got.length; n++) {
    const r = got[n];
    const i = at[n];
    const { job, q } = chunk[i];
    const dir = dirOf[i];
    if ('err' in r) {
      dirs.release(dir);
      out[i] = { retry: { index: q.index + 1, errors: [...q.errors, `${t.name}: ${messageOf(r.err)}`] } };
      continue;
    }
    // a live content on the quick path: never a symlink, so it has a hash (the keys in resultOf's order)
    const res: RestoreResult = { path: job.path, to: job.dest, ok: true, errors: q.errors, hash: job.content.hash, from: t.name, bytes: r.bytes };
    if (items[n].final !== undefined) { // renamed into place by the worker
      dirs.release(dir);
      out[i] = { res };
    } else out[i] = { res, dir, fd: fdOf.get(dir) as number, temp: items[n].temp };
  }
  return out;
}

/**
 * Fetch one file into a temp beside its destination (hash-checked), or record why it could not be: from the
 * targets in order, or from `from.index` on, after what the ones before said (`from.errors`).
 */
async function stage(job: RestoreJob, targets: Target[], host: string, dirs: DestDirs, fast?: Fast, from?: From): Promise<Staged> {
  const { rec, content } = job;
  const res: RestoreResult = { ...resultOf(job), errors: [...(from?.errors ?? [])] };
  const dir = path.dirname(job.dest);
  let dirFd: number;
  try {
    dirFd = await dirs.acquire(dir);
  } catch (err) {
    res.errors.push(`cannot write ${dir}: ${messageOf(err)}`);
    return { res };
  }
  let keep = false;
  try {
    if (rec.l !== undefined) {
      const temp = tempName();
      await fs.promises.symlink(rec.l, at(dirFd, temp));
      keep = true;
      return { res: { ...res, ok: true, from: 'store' }, dir, fd: dirFd, temp };
    }
    const rel = targetPath(host, job.path);
    const mtimeMs = content.live ? (isSettled(rec) ? rec.m : undefined) : content.mtimeMs;
    for (const t of targets.slice(from?.index ?? 0)) {
      if (hasArchive(t)) { // tape: the newest confirmed member with that content, whatever version it is
        if (!t.locate(rel, content.hash)) { res.errors.push(`${t.name}: no confirmed tape file holds that content`); continue; }
        try {
          const { temp, bytes } = await fetchArchived(t, rel, content.hash, dirFd, mtimeMs);
          keep = true;
          return { res: { ...res, ok: true, from: t.name, bytes }, dir, fd: dirFd, temp };
        } catch (err) {
          res.errors.push(`${t.name}: ${messageOf(err)}`);
          continue;
        }
      }
      if (!hasRandomRead(t)) { res.errors.push(notRandom(t)); continue; }
      const found = await candidates(t, rel, rec, content).catch((err: unknown) => { res.errors.push(`${t.name}: ${messageOf(err)}`); return []; });
      if (!found.length) { res.errors.push(noCopy(t, content.live)); continue; }
      const local = fast?.bases.get(t.name);
      const final = local && fast!.publish ? path.basename(job.dest) : undefined;
      const wrong: string[] = []; // versions holding other contents
      for (const c of found) {
        try {
          const { temp, bytes } = local
            ? await fetchLocal(fast!.workers, t.name, local, c, content.hash, dirFd, mtimeMs, final)
            : await fetchInto(t, c, content.hash, dirFd, mtimeMs);
          const ok = { ...res, ok: true, from: t.name, bytes, ...(c.version ? { version: c.version } : {}) };
          if (final !== undefined) return { res: ok }; // renamed into place by the worker
          keep = true;
          return { res: ok, dir, fd: dirFd, temp };
        } catch (err) {
          if (!content.live && err instanceof TargetError && err.errorClass === 'mismatch') wrong.push(c.version ?? 'the live copy');
          else res.errors.push(`${t.name}: ${messageOf(err)}`);
        }
      }
      if (wrong.length) res.errors.push(`${t.name}: no version there holds that content (read ${wrong.join(', ')}: other contents; older versions are pruned beyond \`versions\`)`);
    }
    return { res };
  } catch (err) {
    res.errors.push(`cannot write ${dir}: ${messageOf(err)}`);
    return { res };
  } finally {
    if (!keep) dirs.release(dir);
  }
}

/** Rename a staged temp over its destination name (replacing, never following, what is there). */
async function publish(s: Staged & { dir: string; fd: number; temp: string }, dirs: DestDirs): Promise<void> {
  try {
    await rename(at(s.fd, s.temp), at(s.fd, path.basename(s.res.to)));
    dirs.release(s.dir);
  } catch (err) {
    await discard(s, dirs, `cannot write ${s.res.to}: ${messageOf(err)}`);
  }
}

/** Staged files renamed into place per worker job (in path order: mostly one directory each). */
const RENAME_FILES = 256;

/**
 * Rename staged temps over their destination names in the LocalIo workers, RENAME_FILES per job (as publish()
 * does, with rename(2) there): a file that could not be renamed is discarded, saying why; a job that failed
 * as a whole (its deadline) fails each of its files.
 */
async function publishByWorkers(held: (Staged & { dir: string; fd: number; temp: string })[], dirs: DestDirs, fast: Fast): Promise<void> {
  const timeoutMs = Math.max(...[...fast.bases.values()].map((b) => b.timeoutMs));
  const parts: (typeof held)[] = [];
  for (let k = 0; k < held.length; k += RENAME_FILES) parts.push(held.slice(k, k + RENAME_FILES));
  await Promise.all(parts.map(async (part) => {
    let errs: (Error | undefined)[];
    try {
      errs = await fast.workers.renameMany('restore', part.map((s) => ({ dir: `/proc/self/fd/${s.fd}`, temp: s.temp, final: path.basename(s.res.to) })), timeoutMs);
    } catch (err) {
      // past its deadline (a hung disk): each of its files is said not restored (some may be in place: never the
      // other way), and nothing more is asked of that disk (a temp file may be left, as by a killed restore)
      for (const s of part) giveUp(s, dirs, `cannot write ${s.res.to}: ${messageOf(err)}`);
      return;
    }
    for (const [k, s] of part.entries()) {
      const err = errs[k];
      if (err) await discard(s, dirs, `cannot write ${s.res.to}: ${messageOf(err)}`);
      else dirs.release(s.dir);
    }
  }));
}

/** Remove a staged temp that will not be published, saying why. */
async function discard(s: Staged & { dir: string; fd: number; temp: string }, dirs: DestDirs, why: string): Promise<void> {
  await fs.promises.rm(at(s.fd, s.temp), { force: true }).catch(() => undefined);
  giveUp(s, dirs, why);
}

/** A staged file that will not be published, its temp left where it is (its disk hung): said why, its directory let go. */
function giveUp(s: Staged & { dir: string }, dirs: DestDirs, why: string): void {
  dirs.release(s.dir);
  s.res.ok = false;
  s.res.errors.push(why);
}

/** A copy on one target that may hold the content wanted. */
interface Candidate { rel: string; version?: string }

/**
 * Where `t` may hold `content` of `rel`: the live copy when the live content is wanted and verified there;
 * for a previous content, the versions kept there (first those set aside when it was replaced, then the
 * rest, newest first) and the live copy while it still holds the previous content. Each is hash-checked.
 */
async function candidates(t: Target, rel: string, rec: Rec, content: ContentAt): Promise<Candidate[]> {
  if (content.live) return isVerifiedOn(rec, t.name) ? [{ rel }] : [];
  const out: Candidate[] = [];
  if (hasVersions(t)) {
    const versions = await t.listVersions(rel);
    const after = (v: string) => (versionTime(v) ?? 0) >= Math.floor((content.until ?? 0) / 1000) * 1000;
    out.push(...versions.filter(after).map((v) => ({ rel: v, version: versionStamp(v) })));
    out.push(...versions.filter((v) => !after(v)).reverse().map((v) => ({ rel: v, version: versionStamp(v) })));
  }
  const last = previousContents(rec).at(-1);
  if (previousCopyOn(rec, t.name) && last?.hash === content.hash) out.push({ rel });
  return out;
}

/** Targets whose copies are files on this machine: name -> base directory and the deadline of one read. */
export type LocalReads = Map<string, { base: string; timeoutMs: number }>;

/** The worker threads reading local targets, their bases, and whether they rename into place at once. */
interface Fast { workers: LocalIo; bases: LocalReads; publish: boolean }

/** Fetch a copy on a local target through the LocalIo workers (synchronous I/O off the main thread). */
async function fetchLocal(workers: LocalIo, target: string, local: { base: string; timeoutMs: number }, c: Candidate, hash: string,
  dirFd: number, mtimeMs: number | undefined, final: string | undefined): Promise<{ temp: string; bytes: number }> {
  checkRelPath(target, c.rel); // never a path that leaves the target base
  const temp = tempName();
  const r = await workers.fetch(target, { src: path.join(local.base, c.rel), dir: `/proc/self/fd/${dirFd}`, temp, final, hash, mtimeMs }, local.timeoutMs);
  return { temp, bytes: r.bytes };
}

/**
 * Copy `c` from `t` into a new temp file in the directory `dirFd`, check it hashes to `hash`, and give it the
 * copy's mode and `mtimeMs` (the recorded one; else the copy's). Returns the temp's name; removes it on error.
 */
async function fetchInto(t: Target & RandomRead, c: Candidate, hash: string, dirFd: number, mtimeMs: number | undefined): Promise<{ temp: string; bytes: number }> {
  const st = await t.stat(c.rel);
  if (!st) throw new TargetError(`[${t.name}] ${c.rel} is missing`, { target: t.name, errorClass: 'missing' });
  return writeChecked(t.name, c.rel, await t.get(c.rel), hash, dirFd, st.mode ?? 0o600, mtimeMs ?? st.mtimeMs);
}

/** Extract the member of `rel` with content `hash` from a tape target (positioned to its tape file) into a new temp. */
async function fetchArchived(t: Target & Archive, rel: string, hash: string, dirFd: number, mtimeMs: number | undefined): Promise<{ temp: string; bytes: number }> {
  const { data, mode } = await t.extract(rel, hash);
  return writeChecked(t.name, rel, data, hash, dirFd, mode, mtimeMs);
}

/** Write `data` into a new temp file in `dirFd`, checking it hashes to `hash`; mode and mtime set. Removes it on error. */
async function writeChecked(target: string, rel: string, data: Readable, hash: string, dirFd: number, mode: number, mtimeMs: number | undefined): Promise<{ temp: string; bytes: number }> {
  const temp = tempName();
  const fh = await fs.promises.open(at(dirFd, temp), C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o600);
  let ok = false;
  let pos = 0;
  try {
    const hasher = await createHasher();
    for await (const chunk of data as AsyncIterable<Buffer>) {
      hasher.update(chunk);
      await writeAll(fh, chunk, pos);
      pos += chunk.length;
    }
    const got = hasher.digest();
    if (got !== hash) throw new TargetError(`[${target}] ${rel} reads back as ${got}, expected ${hash}`, { target, errorClass: 'mismatch' });
    await fh.chmod(mode & 0o777);
    // seconds as a number keep the sub-millisecond part of the recorded mtime
    await fh.utimes(Date.now() / 1000, utimeSeconds(mtimeMs ?? Date.now()));
    ok = true;
  } finally {
    await fh.close();
    if (!ok) await fs.promises.rm(at(dirFd, temp), { force: true }).catch(() => undefined);
  }
  return { temp, bytes: pos };
}

/**
 * The destination directories of a restore, each opened once (shared by the files restored into it, closed
 * when the last lets go). A trusted root (`--to DIR`, or a configured source) is made if missing and followed;
 * below it every directory is opened O_NOFOLLOW from its parent's descriptor (made if missing): a symlink
 * planted where a directory should be is refused, never followed, even if swapped in while we work.
 */
class DestDirs {
  private readonly open = new Map<string, { fd: Promise<number>; users: number }>();
  /** open directories no file uses now, oldest first: kept for the next file or subdirectory (IDLE_DIRS at most) */
  private readonly idle = new Set<string>();
  private readonly used = new Set<string>();

  constructor(private readonly roots: string[]) {}

  /** The directory `dir` open, for `users` files (each lets go by release()). */
  acquire(dir: string, users = 1): Promise<number> {
    let e = this.open.get(dir);
    if (!e) {
      const made = { fd: this.openDir(dir), users: 0 };
      made.fd.catch(() => { if (this.open.get(dir) === made) this.open.delete(dir); });
      this.open.set(dir, (e = made));
    }
    this.idle.delete(dir);
    e.users += users;
    return e.fd;
  }

  release(dir: string): void {
    const e = this.open.get(dir);
    if (!e || --e.users > 0) return;
    this.idle.add(dir);
    for (const old of this.idle) {
      if (this.idle.size <= IDLE_DIRS) break;
      this.idle.delete(old);
      const o = this.open.get(old)!;
      this.open.delete(old);
      o.fd.then((fd) => fs.close(fd, () => undefined), () => undefined);
    }
  }

  /** syncfs(2) of every root written to (one flush for a batch instead of one fsync per file). */
  async syncAll(): Promise<void> {
    for (const r of this.used) await run('sync', ['-f', r]);
  }

  /** Close what is still open. */
  async close(): Promise<void> {
    for (const [, e] of this.open) await e.fd.then((fd) => fs.closeSync(fd), () => undefined);
    this.open.clear();
    this.idle.clear();
  }

  /** A trusted root made if missing and followed; below it, a directory opened from its parent's descriptor (acquired, so siblings share it). */
  private async openDir(dir: string): Promise<number> {
    const root = this.roots.filter((r) => dir === r || dir.startsWith(r === '/' ? '/' : `${r}/`)).sort((a, b) => b.length - a.length)[0];
    if (root === undefined) throw new Error(`${dir} is not under ${this.roots.join(' or ')}: restore it with --to DIR`);
    if (dir === root) {
      await fs.promises.mkdir(root, { recursive: true });
      const fd = await openFd(root, C.O_RDONLY | C.O_DIRECTORY);
      this.used.add(root);
      return fd;
    }
    // a store key is an absolute normal path; one with a "." or ".." in it (a store edited by hand, or by someone
    // else) must never lead a restore out of its root (`--to DIR` is joined to it as it is)
    const name = path.basename(dir);
    if (name === '.' || name === '..') throw new Error(`${dir} has a "." or ".." in it: refused`);
    const parent = path.dirname(dir);
    const parentFd = await this.acquire(parent);
    try {
      return await openChild(parentFd, path.basename(dir), dir);
    } finally {
      this.release(parent);
    }
  }
}

/**
 * Directories a restore keeps open while no file uses them: the files come sorted by path, so a directory's
 * siblings and subdirectories follow it soon, and each is opened from it instead of walking down from the root
 * again (10k files in 100 directories 4 levels below the root: ~500 opens fewer).
 */
const IDLE_DIRS = 64;

/** Open (making it if missing) the directory `name` inside `parentFd`, never through a symlink. */
async function openChild(parentFd: number, name: string, shown: string): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await openFd(at(parentFd, name), DIR_FLAGS);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ELOOP' || code === 'ENOTDIR') { // O_DIRECTORY|O_NOFOLLOW on a symlink says ENOTDIR
        const link = await fs.promises.lstat(at(parentFd, name)).then((st) => st.isSymbolicLink(), () => code === 'ELOOP');
        throw new Error(link ? `${shown} is a symlink: not followed (restore elsewhere with --to DIR)` : `${shown} exists and is not a directory`);
      }
      if (code !== 'ENOENT' || attempt > 2) throw err;
    }
    await fs.promises.mkdir(at(parentFd, name)).catch((err: NodeJS.ErrnoException) => { if (err.code !== 'EEXIST') throw err; });
  }
}
