import { Readable } from 'node:stream';
import { missingError, opOrigin, toTargetError } from '../errors.js';
import { hashBytes } from '../hash/xxh64.js';
import { byVersionAge, checkRelPath, isReserved, versionPrefix } from './layout.js';
import type { PutSource } from './source.js';
import { type CheckReport, type Links, type PutOptions, type RandomRead, type ReadBack, type ReadBackOptions, type RemoteHash, type Target, type Versions, putEach, readBackEach } from './target.js';

/** A fault to inject: return an error to throw for this operation and path, or undefined to proceed. */
export type Injector = (op: 'put' | 'hash' | 'sync' | 'check' | 'get' | 'putLink' | 'stat', relPath: string) => Error | undefined;

/**
 * Copies held in this process's memory: for tests of the queue, retry and verify logic without a disk.
 * Passes the same conformance suite as real targets. `inject` makes any operation fail on demand;
 * `corrupt()` changes stored bytes behind the agent's back (for verify tests).
 */
export class MemoryTarget implements Target, RandomRead, Links, RemoteHash, Versions {
  readonly files = new Map<string, { data: Buffer; mtimeMs?: number; mode?: number }>();
  readonly links = new Map<string, string>();
  inject?: Injector;
  syncs = 0;

  constructor(readonly name: string) {}

  private fault(op: Parameters<Injector>[0], rel: string): void {
    const e = this.inject?.(op, rel);
    if (e) throw toTargetError(e, this.name, `[${this.name}] ${op} ${rel}`);
  }


  async put(rel: string, src: PutSource, opts: PutOptions = {}): Promise<void> {
    checkRelPath(this.name, rel);
    this.fault('put', rel);
    const chunks: Buffer[] = [];
    try {
      for await (const c of src.stream()) {
        opts.signal?.throwIfAborted();
        chunks.push(Buffer.from(c as Buffer));
      }
    } catch (err) {
      throw toTargetError(err, this.name, opOrigin(this.name, 'put', rel));
    }
    // Atomic: the new bytes replace the old only once all of them arrived.
    this.links.delete(rel);
    this.files.set(rel, { data: Buffer.concat(chunks), mtimeMs: src.mtimeMs, mode: src.mode });
  }

  /** Batch put, as a local target offers it: each item through put() (putEach). */
  putMany(items: { rel: string; src: PutSource }[], opts: PutOptions = {}): Promise<(Error | undefined)[]> {
    return putEach((rel, src, o) => this.put(rel, src, o), items, opts);
  }

  async sync(): Promise<void> {
    this.fault('sync', '.');
    this.syncs++;
  }

  async hash(rel: string): Promise<string> {
    this.fault('hash', rel);
    const f = this.files.get(rel);
    if (!f) throw missingError(this.name, 'hash', rel);
    return hashBytes(f.data);
  }

  /** Batch hashing, as a remote target offers it: missing paths, and paths with an injected fault, left out. */
  async hashMany(rels: string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (const rel of rels) {
      if (this.inject?.('hash', rel)) continue;
      const f = this.files.get(rel);
      if (f) out.set(rel, hashBytes(f.data));
    }
    return out;
  }

  readBack(rels: string[], opts?: ReadBackOptions): Promise<ReadBack> {
    return readBackEach(this, rels, opts);
  }

  async stat(rel: string): Promise<{ size: number; mtimeMs?: number; mode?: number } | undefined> {
    this.fault('stat', rel);
    const f = this.files.get(rel);
    return f && { size: f.data.length, mtimeMs: f.mtimeMs, mode: f.mode };
  }

  async *list(prefix: string): AsyncIterable<string> {
    const p = prefix === '' ? '' : `${prefix.replace(/\/+$/, '')}/`;
    for (const k of [...this.files.keys(), ...this.links.keys()].sort()) if (k.startsWith(p) && !isReserved(k)) yield k;
  }

  async get(rel: string): Promise<Readable> {
    this.fault('get', rel);
    const f = this.files.get(rel);
    if (!f) throw missingError(this.name, 'get', rel);
    return Readable.from([f.data]);
  }

  async putLink(rel: string, linkText: string): Promise<boolean> {
    checkRelPath(this.name, rel);
    this.fault('putLink', rel);
    // a "directory" is in the way when copies live below this path
    if ([...this.files.keys()].some((k) => k.startsWith(rel + '/'))) return false;
    this.files.delete(rel);
    this.links.set(rel, linkText);
    return true;
  }

  async readLink(rel: string): Promise<string | undefined> {
    return this.links.get(rel);
  }

  async check(): Promise<CheckReport> {
    this.fault('check', '.');
    return { reachable: true, authenticated: true, writable: true };
  }

  /** Flip one byte of a stored copy (tests of verify and mismatch handling). */
  corrupt(rel: string): void {
    const f = this.files.get(rel);
    if (!f || f.data.length === 0) throw new Error(`nothing to corrupt at ${rel}`);
    f.data[0] ^= 0xff;
  }

  async keepAside(rel: string, versionRel: string): Promise<boolean> {
    checkRelPath(this.name, rel);
    checkRelPath(this.name, versionRel);
    const f = this.files.get(rel);
    if (!f) return false;
    this.files.set(versionRel, { ...f, data: Buffer.from(f.data) });
    return true;
  }

  async listVersions(rel: string): Promise<string[]> {
    const pre = versionPrefix(rel);
    return [...this.files.keys()].filter((k) => k.startsWith(pre) && !k.slice(pre.length).includes('/')).sort(byVersionAge);
  }

  async removeVersion(versionRel: string): Promise<void> {
    this.files.delete(versionRel);
  }

  async close(): Promise<void> {}
}
