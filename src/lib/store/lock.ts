import fs from 'node:fs';
import path from 'node:path';
import { LockedError, StoreError, messageOf } from '../errors.js';

interface LockInfo { pid: number; start?: string; command: string; at: string }

/** Start time of a process (field 22 of /proc/PID/stat), to tell a live owner from a reused pid. */
function startTime(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** A zombie (state Z: dead, not yet reaped, e.g. an orphan under an init that does not reap) holds nothing. */
function isZombie(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
  } catch {
    return false;
  }
}

/** A lock whose owner cannot be proven live (no start time to compare) is taken over once it is this old. */
export const UNPROVEN_LOCK_MS = 60 * 60_000;

/**
 * Is the lock's owner alive? Its pid runs and has the recorded start time. A lock without a start time (or
 * whose pid's start cannot be read) cannot be proven: it counts as live only while younger than UNPROVEN_LOCK_MS.
 */
function alive(info: LockInfo, lockAgeMs: number): boolean {
  try {
    process.kill(info.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (isZombie(info.pid)) return false;
  const now = startTime(info.pid);
  if (info.start === undefined || now === undefined) return lockAgeMs < UNPROVEN_LOCK_MS;
  return now === info.start;
}

function readLock(file: string): LockInfo | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as LockInfo;
  } catch {
    return undefined; // unreadable or half-written by a killed process: treat as stale
  }
}

/** An exclusive lock on a store directory, held by this process until release(). */
export class StoreLock {
  /** what acquire() had to say (a lock taken over that could not be proven stale): the caller logs them */
  static readonly warnings: string[] = [];
  private constructor(readonly file: string) {}

  /**
   * Take the lock at `<dir>/lock` at once or throw LockedError naming the owner. A lock whose process is gone
   * (killed: pid absent, or reused by another process) is taken over. link(2) makes the take atomic.
   */
  static acquire(dir: string, command: string): StoreLock {
    const file = path.join(dir, 'lock');
    const tmp = `${file}.${process.pid}.tmp`;
    const info: LockInfo = { pid: process.pid, start: startTime(process.pid), command, at: new Date().toISOString() };
    try {
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      fs.writeFileSync(tmp, JSON.stringify(info), { mode: 0o600 });
    } catch (err) {
      fs.rmSync(tmp, { force: true });
      throw new StoreError(`store: cannot take the lock in ${dir}: ${messageOf(err)}`, { cause: err });
    }
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          fs.linkSync(tmp, file);
          return new StoreLock(file);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        }
        const owner = readLock(file);
        let ageMs = 0;
        try { ageMs = Date.now() - fs.statSync(file).mtimeMs; } catch { /* gone: loop */ }
        if (attempt >= 2 || (owner && alive(owner, ageMs))) {
          const who = owner ? `pid ${owner.pid}, replica ${owner.command}, since ${owner.at}` : 'another process';
          throw new LockedError(`store ${dir} is locked by ${who}`, owner?.pid ?? 0, owner?.command);
        }
        if (owner && (owner.start === undefined || startTime(owner.pid) === undefined)) {
          this.warnings.push(`store: taking over the lock of pid ${owner.pid} (replica ${owner.command} since ${owner.at}): it could not be proven live and is over ${UNPROVEN_LOCK_MS / 60_000} min old`);
        }
        // Stale: move it aside (only one of several racing processes can rename the same file), then retry.
        const aside = `${file}.stale.${process.pid}`;
        try {
          fs.renameSync(file, aside);
          fs.rmSync(aside, { force: true });
        } catch { /* someone else took it over first: loop and look again */ }
      }
    } finally {
      fs.rmSync(tmp, { force: true });
    }
  }

  /** Release the lock if this process still holds it. */
  release(): void {
    if (readLock(this.file)?.pid === process.pid) fs.rmSync(this.file, { force: true });
  }
}
