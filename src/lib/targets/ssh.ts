import { posix } from 'node:path';
import type { Readable } from 'node:stream';
import PQueue from 'p-queue';
import type { SFTPWrapper } from 'ssh2';
import { TargetError, messageOf, missingError } from '../errors.js';
import { hashStream } from '../hash/xxh64.js';
import { raceSignal } from '../queue/deadline.js';
import { RemoteDirs } from './sshDirs.js';
import { type SshOptions, SshSession, parseSshUrl, sshError } from './sshSession.js';
import { writeTemp } from './sshWrite.js';
import { STORE_DIR, checkRelPath, isReserved, tempName, versionsIn } from './layout.js';
import { type PutSource, SettledFile } from './source.js';
import { giveBack, packAhead } from './packAhead.js';
import { loadTar } from './tarLib.js';
import {
  type BatchPut, type CheckReport, type Links, type PutOptions, type RandomRead, type ReadBack, type ReadBackOptions, type RemoteHash, type Target,
  type TempFiles, type Versions, putEach, readBackEach,
} from './target.js';

export { knownHostKey, parseSshUrl, type SshOptions } from './sshSession.js';

/** putMany sends at least this many files through one remote `tar -x` (a command costs 20-500 ms to start). */
const TAR_MIN_FILES = 256;
/** remote `tar -x` commands at once on one connection (sshd's MaxSessions is 10; the SFTP channel takes one) */
const TAR_AT_ONCE = 4;
/** bytes read into a tar stream ahead of what the channel took */
const TAR_AHEAD = 8 << 20;
/** tar stream bytes per channel write */
const TAR_PACKET = 64 << 10;
/** per-file puts in flight in one putMany that does not use tar */
const PUTS_AT_ONCE = 8;
/**
 * The fixed remote command of a tar batch: member names are the temp files' paths relative to `/` (data in the
 * stream, never shell words); owner the login user's, mode the member's, as an SFTP put leaves them.
 */
const TAR_X = 'tar -x -p --no-same-owner -C / -f - 2>&1';
/** tar's answer when it is not a tar that takes those options (a later batch would fail the same way) */
const TAR_UNUSABLE = /not found|unrecognized|invalid option|unknown option|usage/i;

/**
 * TAR_X that also renames the batch into place, in the same remote command (a command took ~0.43 s to start on
 * the test server; 10k posix-rename requests ~0.4-0.6 s). Its stdin: the length of the names block (16 decimal
 * digits), the names block (temp path, final path, each ending in NUL: data, never shell words), then the tar
 * stream. perl reads the names with sysread (nothing of the tar read ahead) and runs the same tar (a list, no
 * shell) on the rest of stdin; its messages, and the shell's if perl is missing, go to stdout as TAR_X's do.
 * Only when tar exited 0 it prints RENAMED and renames each pair (rename(2)), printing each temp path it could
 * not rename and the error, NUL-separated. perl is part of every Debian and Ubuntu (perl-base); a server
 * without it gets TAR_X and posix-rename requests.
 */
const TAR_X_RENAME = `perl -e '$| = 1; sub rd { my $n = shift; my $b = ""; while (length($b) < $n) { my $r = sysread(STDIN, $b, $n - length($b), length($b)); die "short stdin\\n" unless $r } $b } my @p = split /\\0/, rd(rd(16) + 0), -1; pop @p; my $rc = system("tar", "-x", "-p", "--no-same-owner", "-C", "/", "-f", "-"); if ($rc == -1) { print "tar: not found\\n"; exit 127 } exit($rc & 127 ? 128 + ($rc & 127) : $rc >> 8) if $rc; print "\\0RENAMED\\0"; for (my $i = 0; $i + 1 < @p; $i += 2) { print "$p[$i]\\0$!\\0" unless rename $p[$i], $p[$i + 1] }' 2>&1`;
/** What TAR_X_RENAME prints once tar has exited 0, before the pairs it could not rename. */
const RENAMED = '\0RENAMED\0';
/** A tar batch of at least this many files goes through TAR_X_RENAME (fewer: TAR_X, then posix-rename requests). */
const RENAME_PASS_MIN = 256;

/**
 * A batch of at most this many files (and directories made) is made durable by fsync@openssh.com of each and of
 * their directories (a few pipelined requests) rather than the server's `sync` (a command: 20-500 ms to start,
 * and it flushes everything the server has pending, not only ours).
 */
const FSYNC_FILES_MAX = 16;

/** sync() hashes (`sync && xxhsum`) up to this many files published since the last sync, for the read-back. */
const SYNC_HASH_MAX = 20_000;
/** ...which may use those hashes this long after the sync (the copier reads back at once; a scrub reads again) */
const HASHED_AT_SYNC_MS = 60_000;

/** Copies larger than this are hashed on the server (xxhsum), smaller ones read back over SFTP. */
const REMOTE_HASH_MIN = 16 << 20;
/** hashMany() runs one remote xxhsum for at least this many files (one command costs ~100 ms). */
const HASH_MANY_MIN = 32;

/**
 * A directory on another machine over SSH (ssh2: SFTP for data, one connection reused across files).
 * put() writes `.replica-<n>.tmp` and renames it into place with posix-rename@openssh.com; putMany() sends
 * many small files through one remote `tar -x` of such temp files, then renames each (TAR_X_RENAME); sync()
 * fsyncs a few files and directories over SFTP, or runs `sync` on the server for a bigger batch; hash() runs
 * `xxhsum -H1` there, with the path on stdin (never in a shell string), or reads the copy back when the server
 * has no xxhsum. Strict host-key checking.
 */
export class SshTarget implements Target, BatchPut, RandomRead, Links, RemoteHash, TempFiles, Versions {
  private readonly remote: ReturnType<typeof parseSshUrl>;
  private readonly session: SshSession;
  private readonly dirs: RemoteDirs;
  /** remote tar batches running and waiting (TAR_AT_ONCE at a time) */
  private readonly tars = new PQueue({ concurrency: TAR_AT_ONCE });
  /** the server's tar cannot take a batch (missing, or not one that takes TAR_X's options): puts go one by one */
  private noTar = false;
  /** the server has no perl for TAR_X_RENAME: tar batches go through TAR_X and posix-rename requests */
  private noRenamePass = false;
  /** something was written since the last sync */
  private unsynced = false;
  /** nothing but files and directories was written since the last sync (else the next one is the server's `sync`) */
  private onlyFiles = true;
  /** the server does not take fsync@openssh.com (or a directory opened for it): `sync` only */
  private noFsync = false;
  /** every file published since the last sync (up to SYNC_HASH_MAX; else undefined): sync() fsyncs a few, hashes many */
  private sinceSync: string[] | undefined = [];
  /** one of them is big enough to be hashed on the server even alone (REMOTE_HASH_MIN) */
  private bigSinceSync = false;
  /**
   * Hashes of copies taken by the last sync's command right after the server's `sync` (by absolute path), for
   * the read-back that follows (hashMany): one remote command instead of two. Each answers one read, within
   * HASHED_AT_SYNC_MS of the sync (a scrub later must read the copy again); dropped by the next write of the
   * path and by the next sync.
   */
  private hashedAtSync = new Map<string, string>();
  private hashedAtSyncUntil = 0;
  /**
   * How the work went (tests and debugging): putMany calls sent through a remote tar, those whose tar failed
   * (put again file by file); syncs made by fsync requests, and by the server's `sync`; copies whose read-back
   * hash came from the sync's own `xxhsum`.
   */
  readonly stats = { tarSent: 0, tarFailed: 0, renamePasses: 0, fsyncs: 0, syncCommands: 0, hashedAtSync: 0 };

  constructor(readonly name: string, readonly url: string, readonly opts: SshOptions) {
    this.remote = parseSshUrl(url);
    // a dropped connection may come back to another server state: directories are checked again
    this.session = new SshSession(name, this.remote, opts, () => this.dirs.forget());
    this.dirs = new RemoteDirs(this.session, name, this.remote.path);
  }

  private fail(err: unknown, op: string, rel: string): TargetError {
    return sshError(this.name, err, op, rel);
  }

  /** Run an SFTP call; the connection is opened (or re-opened) as needed. */
  private sftp<T>(fn: (s: SFTPWrapper, cb: (err: Error | null | undefined, v?: T) => void) => void): Promise<T> {
    return this.session.sftp(fn);
  }

  /** A temp name beside `dest`: short and fixed in shape (layout.ts), unique per process and put. */
  private tempPath(dest: string): string {
    return posix.join(posix.dirname(dest), tempName());
  }

  private abs(rel: string): string {
    checkRelPath(this.name, rel);
    return posix.join(this.remote.path, rel);
  }

  /** Remove stale temp files (of killed runs; never this session's own) in these directories. */
  async removeTemps(relDirs: string[]): Promise<number> {
    try {
      return await this.dirs.sweep(relDirs.map((rel) => this.abs(rel)));
    } catch (err) {
      throw this.fail(err, 'removeTemps', relDirs.join(' '));
    }
  }

  async put(rel: string, src: PutSource, opts: PutOptions = {}): Promise<void> {
    const dest = this.abs(rel);
    const tmp = this.tempPath(dest);
    try {
      opts.signal?.throwIfAborted();
      await this.dirs.prepare(posix.dirname(dest), opts.dirMode);
      const { dead } = await this.session.connect();
      const work = (async () => {
        await writeTemp(this.session, tmp, src);
        opts.signal?.throwIfAborted();
        await this.sftp<void>((s, cb) => s.ext_openssh_rename(tmp, dest, cb));
        this.published(dest, src.size);
      })();
      await raceSignal(Promise.race([work, dead]), opts.signal);
    } catch (err) {
      await this.sftp<void>((s, cb) => s.unlink(tmp, cb)).catch(() => undefined);
      const e = this.fail(err, 'put', rel);
      if (e.errorClass === 'other') {
        // OpenSSH reports a full disk as a bare "Failure": ask the filesystem whether that is what it was
        const free = await this.session.freeBytes(posix.dirname(dest));
        if (free !== undefined && free < Math.max(src.size, 1)) throw new TargetError(`${e.message} (no space left on the server)`, { target: this.name, errorClass: 'ENOSPC', cause: err });
      }
      throw e;
    }
  }

  /**
   * Many small files: at least TAR_MIN_FILES go through one remote `tar -x` as temp files beside their final
   * names, each renamed into place once tar has exited 0, by the same command (TAR_X_RENAME) or, on a server
   * without perl, by a posix-rename request (TAR_X): one command instead of five requests and three round trips
   * per file (the server's sftp-server, not the network, was the limit).
   * Each source is read and proven (readAll) before its member goes out. A tar that fails publishes nothing:
   * its temp files are removed and each file is put on its own, so every file gets its own answer (ENOSPC,
   * EACCES). Fewer files, or a server without a usable tar: put() each, PUTS_AT_ONCE at a time.
   */
  async putMany(items: { rel: string; src: PutSource }[], opts: PutOptions = {}): Promise<(Error | undefined)[]> {
    opts.signal?.throwIfAborted();
    if (this.noTar || items.length < (this.opts.tarMinFiles ?? TAR_MIN_FILES)) return this.putEach(items, opts);
    return this.putTar(items, opts);
  }

  /** put() each item, PUTS_AT_ONCE at a time (putEach's answers). */
  private putEach(items: { rel: string; src: PutSource }[], opts: PutOptions): Promise<(Error | undefined)[]> {
    return putEach((rel, src, o) => this.put(rel, src, o), items, opts, PUTS_AT_ONCE);
  }

  private async putTar(items: { rel: string; src: PutSource }[], opts: PutOptions): Promise<(Error | undefined)[]> {
    const out: (Error | undefined)[] = items.map(() => undefined);
    const dests: (string | undefined)[] = items.map(({ rel }, i) => {
      try { return this.abs(rel); } catch (err) { out[i] = this.fail(err, 'put', rel); return undefined; }
    });
    // the directories first, all at once; an item whose directory failed has that error
    const dirErrors = new Map<string, unknown>();
    await Promise.all([...new Set(dests.filter((d) => d !== undefined).map((d) => posix.dirname(d)))]
      .map((d) => this.dirs.prepare(d, opts.dirMode).catch((err: unknown) => { dirErrors.set(d, err); })));
    dests.forEach((d, i) => { if (d !== undefined && dirErrors.has(posix.dirname(d))) out[i] = this.fail(dirErrors.get(posix.dirname(d)), 'put', items[i].rel); });
    const tar = await loadTar();
    const sent: { i: number; tmp: string; dest: string }[] = [];
    /** the channel was seen closed (the command exited early), and files were left unsent because of it */
    let cut = false;
    let unsent = false;
    // every temp name up front: the rename pass reads the pairs before the tar (a pair whose member is not sent,
    // its source having failed, has no temp file: its rename fails, and is not looked at)
    const tmps = dests.map((d, i) => (d === undefined || out[i] ? undefined : this.tempPath(d)));
    const pass = !this.noRenamePass && items.length >= (this.opts.renamePassMinFiles ?? RENAME_PASS_MIN);
    const names = pass ? Buffer.from(tmps.map((tmp, i) => (tmp === undefined ? '' : `${tmp}\0${dests[i]}\0`)).join('')) : undefined;
    let answer: [number, string];
    try {
      answer = await this.tars.add(() => this.session.exec(pass ? TAR_X_RENAME : TAR_X, async (write) => {
        if (names && !(await write(Buffer.from(String(names.length).padStart(16, '0'))) && await write(names))) return void (unsent = true);
        const pack = tar.pack();
        let [pushed, taken] = [0, 0];
        let wake: (() => void) | undefined;
        // tar-stream hands out headers, data and padding as separate chunks: sent in ~TAR_PACKET pieces (one SSH
        // packet per 512-byte header cost the server more than the extraction)
        const pump = (async () => {
          let parts: Buffer[] = [];
          let size = 0;
          const flush = async () => {
            // a batch's tar from packAhead goes back to the workers once the channel is done with it (copied
            // into one piece here, or sent whole)
            const one = parts.length === 1 ? parts[0] : undefined;
            const data = one ?? Buffer.concat(parts, size);
            if (!one) for (const part of parts) giveBack(part);
            if (!await write(data, one && (() => giveBack(one)))) cut = true;
            taken += size;
            [parts, size] = [[], 0];
            wake?.();
          };
          for await (const chunk of pack as AsyncIterable<Buffer>) {
            parts.push(chunk);
            size += chunk.length;
            if (size >= TAR_PACKET) await flush();
          }
          if (size) await flush();
        })();
        // small settled files are laid out as tar members in the LocalIo workers, a batch at a time (packAhead);
        // the others are read and packed here. `last`: the pack has taken its last entry (a batch goes after it)
        let last: Promise<void> | undefined;
        const ahead = packAhead(this.name, items.map(({ src }, i) => (tmps[i] === undefined ? undefined : { name: tmps[i]!.slice(1), src })), async (packed) => {
          await last;
          pack.push(packed.tar);
          pushed += packed.tar.length;
        });
        for (const [i, { rel, src }] of items.entries()) {
          const dest = dests[i];
          if (out[i] || dest === undefined) continue;
          opts.signal?.throwIfAborted();
          if (cut) { // the command has exited: no source more is read for it
            unsent = true;
            break;
          }
          const tmp = tmps[i]!;
          const got = ahead?.get(src);
          if (got) {
            const r = await got;
            if ('err' in r) { out[i] = this.fail(r.err, 'put', rel); continue; }
            if (src instanceof SettledFile && src.hash === undefined) src.hashed = r.hash; // a new file: hashed by its read
          } else {
            let data: Buffer;
            try {
              data = src.readAll(); // proven: hashed against the settled hash before its member goes out
            } catch (err) {
              out[i] = this.fail(err, 'put', rel);
              continue;
            }
            last = new Promise<void>((resolve) => { pack.entry({ name: tmp.slice(1), size: data.length, mode: src.mode, mtime: new Date(src.mtimeMs ?? Date.now()), type: 'file' }, data, () => resolve()); });
            pushed += data.length + 1024;
          }
          sent.push({ i, tmp, dest });
          while (pushed - taken > TAR_AHEAD) await new Promise<void>((r) => { wake = r; });
        }
        pack.finalize();
        await pump;
      }, opts.signal));
    } catch (err) {
      throw this.fail(err, 'put', `${items.length} files`); // the call as a whole: any temp file left is swept by the next run
    }
    const unlink = (tmp: string) => this.sftp<void>((s, cb) => s.unlink(tmp, cb)).catch(() => undefined);
    // no perl there: nothing was extracted, so the batch goes again through TAR_X (the sources read before the
    // channel was seen closed are read again: once per target, as noRenamePass stays set)
    if (pass && answer[0] === 127 && /perl/.test(answer[1])) {
      this.noRenamePass = true;
      return this.putTar(items, opts);
    }
    this.stats.tarSent++;
    if (answer[0] !== 0 || unsent) {
      this.stats.tarFailed++;
      // nothing published: the batch's temp files go, and each file is put on its own for its own answer (those
      // never sent too: a file not written is never said to be)
      await Promise.all(sent.map(({ tmp }) => unlink(tmp)));
      if (answer[0] === 127 || TAR_UNUSABLE.test(answer[1])) this.noTar = true;
      const left = items.map((_, i) => i).filter((i) => out[i] === undefined && dests[i] !== undefined);
      const again = await this.putEach(left.map((i) => items[i]), opts);
      left.forEach((i, k) => { out[i] = again[k]; });
      return out;
    }
    // renamed by the pass: every temp path it did not name after RENAMED (no pass, or no RENAMED: none)
    const at = pass ? answer[1].indexOf(RENAMED) : -1;
    const failed = at < 0 ? undefined : new Set(answer[1].slice(at + RENAMED.length).split('\0').filter((_, k) => k % 2 === 0));
    if (failed) this.stats.renamePasses++;
    await Promise.all(sent.map(async ({ i, tmp, dest }) => {
      try {
        // not renamed by the pass: a posix-rename request, whose failure says why in the target's terms
        if (!failed || failed.has(tmp)) await this.sftp<void>((s, cb) => s.ext_openssh_rename(tmp, dest, cb));
        this.published(dest, items[i].src.size);
      } catch (err) {
        out[i] = this.fail(err, 'put', items[i].rel);
        await unlink(tmp);
      }
    }));
    return out;
  }

  /** A file was renamed into place at `dest`: durable at the next sync (by its own fsync while few and nothing else changed). */
  private published(dest: string, size: number): void {
    this.unsynced = true;
    if (size > REMOTE_HASH_MIN) this.bigSinceSync = true;
    this.hashedAtSync.delete(dest);
    if ((this.sinceSync?.length ?? Infinity) >= SYNC_HASH_MAX) this.sinceSync = undefined;
    else this.sinceSync?.push(dest);
  }

  /** Something other than a file was written (a link, a version): the next sync is the server's `sync`. */
  private changedMore(): void {
    this.unsynced = true;
    this.onlyFiles = false;
    this.hashedAtSync.clear();
  }

  async sync(opts: { signal?: AbortSignal } = {}): Promise<void> {
    this.dirs.forget(); // the next batch checks its directories again
    if (!this.unsynced) return;
    const made = [...this.dirs.made];
    const since = this.sinceSync;
    const files = this.onlyFiles && !this.noFsync && since !== undefined && made.length + since.length <= FSYNC_FILES_MAX ? since : undefined;
    const toHash = since !== undefined && (since.length >= HASH_MANY_MIN || this.bigSinceSync) ? since : [];
    this.unsynced = false;
    this.bigSinceSync = false;
    this.onlyFiles = true;
    this.sinceSync = [];
    this.hashedAtSync = new Map();
    this.dirs.made.clear();
    try {
      if (files && await this.fsyncEach([...files, ...made], opts.signal)) { this.stats.fsyncs++; return; }
      this.stats.syncCommands++;
      // a batch worth a remote xxhsum: `sync && xxhsum` of its files in one command (the read-back asks next)
      const hashes = toHash.length ? await this.session.xxhsum(toHash, opts.signal, 'sync') : undefined;
      if (hashes) {
        toHash.forEach((f, i) => this.hashedAtSync.set(f, hashes[i]));
        this.hashedAtSyncUntil = Date.now() + HASHED_AT_SYNC_MS;
        return;
      }
      const [code] = await this.session.exec('sync', '', opts.signal);
      if (code !== 0) throw new Error(`sync exited ${code}`);
    } catch (err) {
      this.unsynced = true;
      this.onlyFiles = false;
      throw this.fail(err, 'sync', '.');
    }
  }

  /**
   * fsync@openssh.com of each file (or directory made) and then of each of their parent directories (opened
   * read-only, as fsync needs no more), all requests at once; false when that failed (then the server's
   * `sync`; never asked again when the server does not offer the extension).
   */
  private async fsyncEach(files: string[], signal?: AbortSignal): Promise<boolean> {
    const one = async (p: string) => {
      const handle = await this.sftp<Buffer>((s, cb) => s.open(p, 'r', cb));
      try {
        await this.sftp<void>((s, cb) => s.ext_openssh_fsync(handle, cb));
      } finally {
        await this.sftp<void>((s, cb) => s.close(handle, cb)).catch(() => undefined);
      }
    };
    try {
      await raceSignal(Promise.all(files.map(one)), signal);
      await raceSignal(Promise.all([...new Set(files.map((f) => posix.dirname(f)))].filter((d) => !files.includes(d)).map(one)), signal);
      return true;
    } catch (err) {
      signal?.throwIfAborted();
      if (/not support/i.test(messageOf(err)) || (err as { code?: number }).code === 8) this.noFsync = true; // SSH_FX_OP_UNSUPPORTED
      return false;
    }
  }

  async hash(rel: string, opts: { signal?: AbortSignal } = {}): Promise<string> {
    const file = this.abs(rel);
    const atSync = this.takeHashedAtSync(file); // hashed right after the sync that made it durable, not written since
    if (atSync !== undefined) return atSync;
    try {
      // A remote command costs ~100 ms (sshd starts a session and a shell); reading a small copy back over
      // the open SFTP channel costs far less. Remote xxhsum only where moving the bytes would cost more.
      const st = await this.stat(rel);
      if (!st) throw missingError(this.name, 'hash', rel);
      const remote = st.size > REMOTE_HASH_MIN ? (await this.xxhsum([rel], opts.signal)).get(rel) : undefined;
      return remote ?? (await hashStream(await this.session.readStream(file), opts.signal)).hash;
    } catch (err) {
      throw this.fail(err, 'hash', rel);
    }
  }

  /** The hash the last sync's command took of `file`, once, while it is fresh (hashedAtSync). */
  private takeHashedAtSync(file: string): string | undefined {
    const h = Date.now() <= this.hashedAtSyncUntil ? this.hashedAtSync.get(file) : undefined;
    this.hashedAtSync.delete(file);
    if (h !== undefined) this.stats.hashedAtSync++;
    return h;
  }

  /** Hash many copies with one remote `xxhsum` (SshSession.xxhsum); empty for few files or an untrusted answer. */
  async hashMany(rels: string[], opts: { signal?: AbortSignal; always?: boolean } = {}): Promise<Map<string, string>> {
    if (!rels.length || (rels.length < HASH_MANY_MIN && !opts.always)) return new Map();
    // hashed on the server right after the sync that made them durable, and not written since
    const atSync = rels.map((r) => this.takeHashedAtSync(this.abs(r)));
    if (atSync.every((h) => h !== undefined)) return new Map(rels.map((r, i) => [r, atSync[i]!]));
    try {
      return await this.xxhsum(rels, opts.signal);
    } catch (err) {
      throw this.fail(err, 'hash', `${rels.length} files`);
    }
  }

  /** `xxhsum -H1` on the server for `rels` (see hashMany); empty unless every file was hashed and matched. */
  private async xxhsum(rels: string[], signal?: AbortSignal): Promise<Map<string, string>> {
    const hashes = await this.session.xxhsum(rels.map((r) => this.abs(r)), signal);
    return new Map(hashes ? rels.map((r, i) => [r, hashes[i]]) : []);
  }

  readBack(rels: string[], opts?: ReadBackOptions): Promise<ReadBack> {
    return readBackEach(this, rels, opts);
  }

  async stat(rel: string): Promise<{ size: number; mtimeMs: number; mode: number } | undefined> {
    try {
      const st = await this.sftp<{ size: number; mtime: number; mode: number }>((s, cb) => s.lstat(this.abs(rel), cb));
      return { size: st.size, mtimeMs: st.mtime * 1000, mode: st.mode & 0o777 };
    } catch (err) {
      const e = this.fail(err, 'stat', rel);
      if (e.errorClass === 'missing') return undefined;
      throw e;
    }
  }

  async *list(prefix: string): AsyncIterable<string> {
    const root = prefix === '' ? this.remote.path : this.abs(prefix.replace(/\/+$/, ''));
    const out: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      let entries: { filename: string; attrs: { mode: number } }[];
      try { entries = await this.sftp((s, cb) => s.readdir(dir, cb)); } catch { return; }
      for (const e of entries) {
        const p = posix.join(dir, e.filename);
        if ((e.attrs.mode & 0o170000) === 0o040000) { if (e.filename !== STORE_DIR || dir !== this.remote.path) await walk(p); } else {
          const rel = posix.relative(this.remote.path, p);
          if (!isReserved(rel)) out.push(rel);
        }
      }
    };
    await walk(root);
    yield* out.sort();
  }

  async get(rel: string): Promise<Readable> {
    if (!(await this.stat(rel))) throw missingError(this.name, 'get', rel);
    return this.session.readStream(this.abs(rel));
  }

  async putLink(rel: string, linkText: string, opts: PutOptions = {}): Promise<boolean> {
    const dest = this.abs(rel);
    const tmp = this.tempPath(dest);
    try {
      await this.dirs.prepare(posix.dirname(dest), opts.dirMode);
      const there = await this.sftp<{ isDirectory(): boolean }>((s, cb) => s.lstat(dest, cb)).catch(() => undefined);
      if (there?.isDirectory()) return false; // the source's former directory, with its copies: left alone
      await this.sftp<void>((s, cb) => s.symlink(linkText, tmp, cb));
      await this.sftp<void>((s, cb) => s.ext_openssh_rename(tmp, dest, cb));
      this.changedMore();
      return true;
    } catch (err) {
      await this.sftp<void>((s, cb) => s.unlink(tmp, cb)).catch(() => undefined);
      throw this.fail(err, 'putLink', rel);
    }
  }

  async readLink(rel: string): Promise<string | undefined> {
    try {
      return await this.sftp<string>((s, cb) => s.readlink(this.abs(rel), cb));
    } catch (err) {
      if (this.fail(err, 'readLink', rel).errorClass === 'missing' || (err as { code?: number }).code === 4) return undefined;
      throw this.fail(err, 'readLink', rel);
    }
  }

  /** Connect (host key, then our key), write and remove a probe file in the base, and ask for free space. */
  async check(): Promise<CheckReport> {
    const probe = tempName();
    try {
      await this.session.connect();
    } catch (err) {
      const e = this.fail(err, 'connect', `${this.remote.host}:${this.remote.port}`);
      e.stage ??= (err as { level?: string }).level === 'client-authentication' ? 'auth' : 'reach';
      throw e;
    }
    try {
      await this.dirs.mkdirs(this.remote.path);
      await this.sftp<void>((s, cb) => s.writeFile(posix.join(this.remote.path, probe), '', cb));
      await this.sftp<void>((s, cb) => s.unlink(posix.join(this.remote.path, probe), cb));
    } catch (err) {
      const e = this.fail(err, 'check', this.remote.path);
      throw new TargetError(e.message, { target: this.name, errorClass: e.errorClass === 'missing' || e.errorClass === 'other' ? 'unreachable' : e.errorClass, permanent: e.permanent, stage: 'write', cause: err });
    }
    return { reachable: true, authenticated: true, writable: true, freeBytes: await this.session.freeBytes(this.remote.path) };
  }


  async keepAside(rel: string, versionRel: string): Promise<boolean> {
    const from = this.abs(rel);
    const to = this.abs(versionRel);
    try {
      const st = await this.sftp<{ isFile(): boolean }>((s, cb) => s.lstat(from, cb)).catch((e: { code?: number }) => { if (e.code === 2) return undefined; throw e; });
      if (!st?.isFile()) return false;
      await this.dirs.prepare(posix.dirname(to)); // private: a version directory is not a source directory
      await this.sftp<void>((s, cb) => s.ext_openssh_hardlink(from, to, cb)); // hardlink@openssh.com
      this.changedMore();
      return true;
    } catch (err) {
      throw this.fail(err, 'keepAside', rel);
    }
  }

  async listVersions(rel: string): Promise<string[]> {
    try {
      return await versionsIn(rel, (dir) => this.sftp<{ filename: string }[]>((s, cb) => s.readdir(this.abs(dir), cb))
        .then((l) => l.map((f) => f.filename), (e: { code?: number }) => { if (e.code === 2) return undefined; throw e; }));
    } catch (err) {
      throw this.fail(err, 'listVersions', rel);
    }
  }

  async removeVersion(versionRel: string): Promise<void> {
    try {
      await this.sftp<void>((s, cb) => s.unlink(this.abs(versionRel), cb));
    } catch (err) {
      if ((err as { code?: number }).code !== 2) throw this.fail(err, 'removeVersion', versionRel);
    }
  }

  close(): Promise<void> {
    return this.session.close();
  }
}
