import fs from 'node:fs';
import path from 'node:path';
import { TargetError, messageOf } from '../errors.js';
import { createHasher } from '../hash/xxh64.js';
import type { Rec } from '../store/model.js';
import { isVerifiedOn } from '../store/records.js';
import { tempName, targetPath } from '../targets/layout.js';
import { writeAll } from '../targets/localWrite.js';
import { type RandomRead, type Target, hasRandomRead } from '../targets/target.js';

const C = fs.constants;

export interface RestoreResult {
  path: string;
  /** where it was written */
  to: string;
  ok: boolean;
  /** the target that served the right bytes */
  from?: string;
  /** why each target tried could not serve it, or why nothing was tried */
  errors: string[];
}

/**
 * Restore source file `p` (record `rec`) to `dest` from the first of `targets` (in order) whose copy hashes
 * to the store's hash: one corrupt copy never stops a restore another target can serve. The bytes go to a
 * temp file beside `dest` (created O_EXCL|O_NOFOLLOW), hashed as they are written; only when the hash matches
 * is it fsynced, given the recorded mtime and the copy's mode, and renamed over `dest`. A symlink record is
 * recreated with its link text. Never leaves a half-written file; never throws for a target.
 */
export async function restoreFile(p: string, rec: Rec, dest: string, targets: Target[], host: string): Promise<RestoreResult> {
  const res: RestoreResult = { path: p, to: dest, ok: false, errors: [] };
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  if (rec.l !== undefined) {
    const tmp = path.join(path.dirname(dest), tempName());
    fs.symlinkSync(rec.l, tmp);
    fs.renameSync(tmp, dest);
    return { ...res, ok: true, from: 'store' };
  }
  const rel = targetPath(host, p);
  for (const t of targets) {
    if (!isVerifiedOn(rec, t.name)) { res.errors.push(`${t.name}: no verified copy there`); continue; }
    if (!hasRandomRead(t)) { res.errors.push(`${t.name}: this kind cannot be read at random`); continue; }
    try {
      await fetchInto(t, rel, rec, dest);
      return { ...res, ok: true, from: t.name };
    } catch (err) {
      res.errors.push(`${t.name}: ${messageOf(err)}`);
    }
  }
  return res;
}

/** Copy `rel` from `t` to a temp beside `dest`, check its hash, then publish it with the recorded mtime. */
async function fetchInto(t: Target & RandomRead, rel: string, rec: Rec, dest: string): Promise<void> {
  const tmp = path.join(path.dirname(dest), tempName());
  const fh = await fs.promises.open(tmp, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o600);
  let published = false;
  try {
    const st = await t.stat(rel);
    const hasher = await createHasher();
    let pos = 0;
    for await (const chunk of (await t.get(rel)) as AsyncIterable<Buffer>) {
      hasher.update(chunk);
      await writeAll(fh, chunk, pos);
      pos += chunk.length;
    }
    const hash = hasher.digest();
    if (hash !== rec.h) throw new TargetError(`[${t.name}] ${rel} reads back as ${hash}, expected ${rec.h}`, { target: t.name, errorClass: 'mismatch' });
    await fh.chmod(st?.mode ?? 0o600);
    await fh.utimes(Date.now() / 1000, rec.m / 1000); // seconds as a number keep the sub-millisecond part
    await fh.sync();
    await fh.close();
    await fs.promises.rename(tmp, dest);
    published = true;
  } finally {
    if (!published) {
      await fh.close().catch(() => undefined);
      await fs.promises.rm(tmp, { force: true });
    }
  }
}
