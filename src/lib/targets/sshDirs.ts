import { posix } from 'node:path';
import { TargetError } from '../errors.js';
import { CheckedDirs } from './checkedDirs.js';
import { STORE_DIR, sweepTemps } from './layout.js';
import type { SshSession } from './sshSession.js';

/**
 * The directories of one ssh target on its server (CheckedDirs): made with no symlink between the base and
 * them; forgotten at each sync() and when the connection drops.
 */
export class RemoteDirs extends CheckedDirs {
  /** directories made or replaced since the last sync (SshTarget.sync fsyncs them and their parents) */
  readonly made = new Set<string>();

  constructor(private readonly session: SshSession, private readonly target: string, private readonly basePath: string) {
    super();
  }

  /**
   * Make `dir` a real directory with no symlink between the base and it (a link where a directory must be is
   * replaced; a link at `<host>` or `.replica/<host>` refuses the write), creating what is missing with the
   * mode `dirMode` gives (else 0700); on its first use remove stale temp files there.
   */
  prepare(dir: string, dirMode?: (relDir: string) => number | undefined): Promise<void> {
    return this.once(dir, async () => {
      const base = this.basePath.replace(/\/+$/, '') || '/';
      if (dir === base || !dir.startsWith(base === '/' ? '/' : base + '/')) {
        await this.mkdirs(dir); // the base itself (and above it) is the admin's: made as it is
      } else {
        const parent = posix.dirname(dir);
        await this.prepare(parent, dirMode);
        await this.ensureDir(dir, parent === base || posix.relative(base, parent) === STORE_DIR, dirMode?.(posix.relative(base, dir)));
      }
    }, () => this.sweep([dir]), true); // a sweep that fails is tried again; the put will say what is wrong
  }

  /** mkdir -p of the base: components that exist are left as they are. */
  async mkdirs(dir: string): Promise<void> {
    const parts = dir.split('/').filter(Boolean);
    // the first mkdir that failed for a reason other than "exists" (OpenSSH: code 4), e.g. permission
    let mkdirErr: unknown;
    for (let i = 1; i <= parts.length; i++) {
      const d = `/${parts.slice(0, i).join('/')}`;
      try { await this.session.sftp<void>((s, cb) => s.mkdir(d, cb)); this.made.add(d); } catch (err) { if ((err as { code?: number }).code !== 4) mkdirErr ??= err; }
    }
    try {
      await this.session.sftp((s, cb) => s.stat(dir, cb));
    } catch (err) {
      // the directory is not there: say why it could not be made (permission denied), not "no such file"
      throw (err as { code?: number }).code === 2 && mkdirErr !== undefined ? mkdirErr : err;
    }
  }

  /** One component below the base: a directory stays, a missing one is made, a symlink is replaced (or refused at the top). */
  private async ensureDir(dir: string, top: boolean, mode: number | undefined): Promise<void> {
    const sftp = this.session.sftp.bind(this.session);
    for (let attempt = 0; ; attempt++) {
      let st: { isDirectory(): boolean; isSymbolicLink(): boolean } | undefined;
      try {
        st = await sftp((s, cb) => s.lstat(dir, cb));
      } catch (err) {
        if ((err as { code?: number }).code !== 2) throw err;
      }
      if (st?.isDirectory()) return;
      if (st?.isSymbolicLink()) {
        if (top) throw new TargetError(`[${this.target}] ${dir} is a symlink on the server: refusing to write through it (make it a real directory)`, { target: this.target, errorClass: 'EACCES', permanent: true });
        await sftp<void>((s, cb) => s.unlink(dir, cb)); // a link we recreated from a source that is now a directory
        this.made.add(dir);
      } else if (st) {
        throw new TargetError(`[${this.target}] ${dir} exists on the server and is not a directory`, { target: this.target, errorClass: 'other', permanent: true });
      }
      try {
        await sftp<void>((s, cb) => s.mkdir(dir, { mode: mode ?? 0o700 }, cb));
        this.made.add(dir);
        if (mode !== undefined) await sftp<void>((s, cb) => s.chmod(dir, mode, cb)); // the server's umask cuts mkdir's mode
        return;
      } catch (err) {
        if ((err as { code?: number }).code !== 4 || attempt > 2) throw err;
      }
    }
  }

  /** Remove stale temp files (of killed runs; never this process's own) in these absolute directories. */
  sweep(dirs: string[]): Promise<number> {
    return sweepTemps(dirs, async (dir) => {
      try {
        return (await this.session.sftp<{ filename: string }[]>((s, cb) => s.readdir(dir, cb))).map((f) => f.filename);
      } catch (err) {
        if ((err as { code?: number }).code === 2) return undefined;
        throw err;
      }
    }, (dir, name) => this.session.sftp<void>((s, cb) => s.unlink(posix.join(dir, name), cb)).catch(() => undefined));
  }
}
