import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import {
  AbortMultipartUploadCommand, CompleteMultipartUploadCommand, type CompletedPart, CopyObjectCommand, CreateMultipartUploadCommand,
  DeleteObjectCommand, GetObjectCommand, HeadBucketCommand, HeadObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command,
  PutObjectCommand, S3Client, UploadPartCommand,
} from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import fs from 'node:fs';
import https from 'node:https';
import tls from 'node:tls';
import { EXTRA_CA_ENV } from '../extraCa.js';
import { SourceError, TargetError, opOrigin, toTargetError } from '../errors.js';
import { hashStream } from '../hash/xxh64.js';
import { raceSignal } from '../queue/deadline.js';
import { type AwsError, s3Error } from './s3Errors.js';
import { byVersionAge, checkRelPath, isReserved, tempName, versionPrefix } from './layout.js';
import type { PutSource } from './source.js';
import { type CheckReport, type PutOptions, type RandomRead, type ReadBack, type ReadBackOptions, type Target, type Versions, readBackEach } from './target.js';

export interface S3Options {
  /** e.g. http://127.0.0.1:7480 (Ceph radosgw, MinIO); AWS when unset */
  endpoint?: string;
  region?: string;
  /** bucket in the path rather than the host name (default: true when an endpoint is given) */
  forcePathStyle?: boolean;
  /** credentials, when not from the usual AWS environment/profile chain */
  accessKeyId?: string;
  secretAccessKey?: string;
  /** connect and idle-socket timeout of every request */
  commandTimeoutMs: number;
  /** check() aborts incomplete multipart uploads older than this (default 24 h: a crashed agent's left-overs) */
  staleUploadMs?: number;
}

// The SDK warns on every start under Node < 22 about releases after January 2027; this one is pinned
// (package-lock.json) and supports Node 20. The warning would land in every cron mail.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

/** The largest object one CopyObject can copy. */
const COPY_MAX = 5 * 1024 ** 3;
/** Objects from this size on go up as a multipart upload (putMultipart), in parts planned by multipartPlan. */
const MULTIPART_MIN = 64 << 20;
const PART_SIZE = 16 << 20;
const PARTS_AT_ONCE = 4;
/** S3's limit on the parts of one upload. */
const MAX_PARTS = 10_000;
/** The most part buffers in memory at once, in bytes. */
const PART_MEMORY = 256 << 20;

/**
 * Parts for an object of `size` bytes: 16 MiB, 4 at a time, up to 160 GiB; beyond, parts grow (in whole MiB)
 * so the object fits in S3's 10,000 parts, as rclone's chunk size grows, and fewer go at once so that the
 * part buffers stay within 256 MiB (one at a time from 5 TiB, S3's largest object).
 */
export function multipartPlan(size: number): { partSize: number; atOnce: number } {
  const mib = 1 << 20;
  const partSize = Math.max(PART_SIZE, Math.ceil(size / MAX_PARTS / mib) * mib);
  return { partSize, atOnce: Math.max(1, Math.min(PARTS_AT_ONCE, Math.floor(PART_MEMORY / partSize))) };
}

/** Small files are read into memory and sent in one request (no stream set-up per object). */
const SMALL = 1 << 20;
/** Incomplete multipart uploads older than this are left-overs of a crashed agent: aborted by check(). */
const STALE_UPLOAD_MS = 24 * 3600_000;

/** Parse `s3://bucket/prefix` (prefix without leading or trailing slashes, may be empty). */
export function parseS3Url(url: string): { bucket: string; prefix: string } {
  const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(url);
  if (!m) throw new TargetError(`invalid S3 URL ${url}`, { target: url, errorClass: 'other', permanent: true });
  return { bucket: m[1], prefix: m[2].replace(/^\/+|\/+$/g, '') };
}



/**
 * The agent for https endpoints when the supervisor handed NODE_EXTRA_CA_CERTS over as EXTRA_CA_ENV (extraCa.ts):
 * Node's default roots plus that bundle, as Node itself would have trusted them; keep-alive and 50 sockets as
 * the SDK's own agent. Undefined (the SDK's agent) otherwise; a bundle that cannot be read is left out, as Node
 * leaves it out (the TLS error then names the certificate it could not verify).
 */
function extraCaAgent(): https.Agent | undefined {
  const file = process.env[EXTRA_CA_ENV];
  if (!file) return undefined;
  let extra: string;
  try {
    extra = fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  return new https.Agent({ keepAlive: true, maxSockets: 50, ca: [...tls.rootCertificates, extra] });
}

/**
 * A bucket (and key prefix) on an S3 service: AWS, Ceph radosgw, MinIO. Keys are `<prefix>/<host>/<abs path>`
 * (the store's vocabulary). A PUT is atomic (readers see the old object or the new one), and durable once the service
 * answers, so sync() has nothing to do. Each object carries its xxh64, mtime and mode in user metadata
 * (`x-amz-meta-xxh64`, `-mtime`, `-mode`); verification reads the object back and hashes the bytes.
 * Symlinks are recorded in the store only (S3 has no symlinks). The client sends no flexible checksums
 * (`WHEN_REQUIRED`): with them a streamed PUT fails on Ceph or is stored with its aws-chunked framing.
 */
export class S3Target implements Target, RandomRead, Versions {
  readonly bucket: string;
  readonly prefix: string;
  readonly client: S3Client;

  constructor(readonly name: string, readonly url: string, readonly opts: S3Options) {
    ({ bucket: this.bucket, prefix: this.prefix } = parseS3Url(url));
    this.client = new S3Client({
      endpoint: opts.endpoint,
      region: opts.region ?? process.env.AWS_REGION ?? 'us-east-1',
      forcePathStyle: opts.forcePathStyle ?? opts.endpoint !== undefined,
      credentials: opts.accessKeyId && opts.secretAccessKey ? { accessKeyId: opts.accessKeyId, secretAccessKey: opts.secretAccessKey } : undefined,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      // retries are replica's (the retry wrapper, then the store's backoff): one attempt per call here
      maxAttempts: 1,
      // throwOnRequestTimeout: without it requestTimeout only logs, and a stopped server hangs a request forever
      requestHandler: new NodeHttpHandler({ connectionTimeout: opts.commandTimeoutMs, requestTimeout: opts.commandTimeoutMs, throwOnRequestTimeout: true, httpsAgent: extraCaAgent() }),
    });
  }

  private key(rel: string): string {
    checkRelPath(this.name, rel);
    return this.prefix ? `${this.prefix}/${rel}` : rel;
  }

  private fail(err: unknown, op: string, rel: string): TargetError {
    return s3Error(this.name, this.bucket, err, op, rel);
  }

  async put(rel: string, src: PutSource, opts: PutOptions = {}): Promise<void> {
    const Key = this.key(rel);
    const Metadata: Record<string, string> = { mode: src.mode.toString(8) };
    if (src.hash) Metadata.xxh64 = src.hash;
    if (src.mtimeMs !== undefined) Metadata.mtime = (src.mtimeMs / 1000).toFixed(3);
    let sourceError: unknown;
    try {
      opts.signal?.throwIfAborted();
      // small objects go from memory, after their bytes were hashed against the settled hash; bigger ones
      // stream, and the source errors before its last chunk if the bytes are not the settled ones, so the
      // PUT never completes (or the multipart upload is aborted instead of completed)
      let body: Readable | Buffer;
      if (src.size <= SMALL) body = src.readAll();
      else {
        body = src.stream();
        // the SDK reports a failed body as its own error: keep the source's (class `changed`) to say why
        body.on('error', (e) => { sourceError ??= e; });
      }
      if (src.size < MULTIPART_MIN) {
        await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key, Body: body, ContentLength: src.size, Metadata }), { abortSignal: opts.signal });
      } else {
        await this.putMultipart(Key, body as Readable, src.size, Metadata, opts.signal);
      }
      opts.signal?.throwIfAborted();
    } catch (err) {
      if (sourceError instanceof SourceError) throw toTargetError(sourceError, this.name, opOrigin(this.name, 'put', rel));
      throw this.fail(opts.signal?.aborted ? opts.signal.reason ?? err : err, 'put', rel);
    }
  }

  /**
   * A multipart upload of `body`, completed only after its last chunk arrived (the source's proof that the
   * bytes are the settled ones, PutSource) and every part was stored. On any error, and when `signal` aborts
   * it (a deadline, the agent stopping), the upload is aborted on the service, so its parts do not stay stored
   * (and billed) until check() finds them a day later: lib-storage's Upload, used before, left them behind when
   * aborted (test/targets/s3.test.ts). The parts (multipartPlan) go up from buffers reused part after part.
   */
  private async putMultipart(Key: string, body: Readable, size: number, Metadata: Record<string, string>, signal: AbortSignal | undefined): Promise<void> {
    const Bucket = this.bucket;
    const { partSize, atOnce } = multipartPlan(size);
    // not under `signal`: a create cut short could leave an upload whose id never arrived; an abort meanwhile
    // fails the first part, and the upload is aborted below
    const { UploadId } = await this.client.send(new CreateMultipartUploadCommand({ Bucket, Key, Metadata }));
    const parts: CompletedPart[] = [];
    const free: Buffer[] = [];
    const sending = new Set<Promise<void>>();
    let buffers = 0;
    let failed: { err: unknown } | undefined;
    const send = (buf: Buffer, length: number, PartNumber: number) => {
      const p: Promise<void> = this.client.send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber, Body: buf.subarray(0, length), ContentLength: length }), { abortSignal: signal })
        .then((r) => { parts.push({ PartNumber, ETag: r.ETag }); free.push(buf); }, (err) => { failed ??= { err }; })
        .finally(() => sending.delete(p));
      sending.add(p);
    };
    try {
      let buf: Buffer | undefined;
      let filled = 0;
      let partNumber = 0;
      // each chunk awaited under `signal` too: a source read hung on a failing disk must not keep the upload
      // from being aborted
      const chunks = (body as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
      for (let next = await raceSignal(chunks.next(), signal); !next.done; next = await raceSignal(chunks.next(), signal)) {
        const chunk = next.value;
        for (let off = 0; off < chunk.length;) {
          if (!buf) {
            // a free buffer, a new one while fewer than `atOnce` exist, or wait for a part to be stored
            while (!failed && free.length === 0 && buffers >= atOnce) await Promise.race(sending);
            if (failed) throw failed.err;
            buf = free.pop() ?? (buffers++, Buffer.allocUnsafe(partSize));
            filled = 0;
          }
          const n = chunk.copy(buf, filled, off);
          filled += n;
          off += n;
          if (filled === partSize) { send(buf, filled, ++partNumber); buf = undefined; }
        }
      }
      if (buf && filled > 0) send(buf, filled, ++partNumber);
      while (sending.size > 0) await Promise.race(sending);
      if (failed) throw failed.err;
      parts.sort((a, b) => a.PartNumber! - b.PartNumber!);
      await this.client.send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts: parts } }), { abortSignal: signal });
    } catch (err) {
      // the source's reads ahead finish before put returns and its owner closes the descriptor, unless the put
      // was aborted (a read hung on a failing disk would hold it forever)
      body.destroy();
      if (!signal?.aborted) await finished(body).catch(() => undefined);
      await Promise.allSettled([...sending]);
      // not under `signal`: an aborted put must still abort its upload
      await this.client.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId })).catch(() => undefined);
      throw err;
    }
  }

  /** A successful PUT is durable on the service: nothing to flush. */
  async sync(): Promise<void> {}

  async hash(rel: string, opts: { signal?: AbortSignal } = {}): Promise<string> {
    return (await hashStream(await this.get(rel, opts), opts.signal)).hash;
  }

  readBack(rels: string[], opts?: ReadBackOptions): Promise<ReadBack> {
    return readBackEach(this, rels, opts);
  }

  async stat(rel: string): Promise<{ size: number; mtimeMs?: number; mode?: number; hash?: string } | undefined> {
    try {
      const h = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.key(rel) }));
      const mtime = Number(h.Metadata?.mtime);
      const mode = parseInt(h.Metadata?.mode ?? '', 8);
      return { size: h.ContentLength ?? 0, mtimeMs: Number.isFinite(mtime) ? mtime * 1000 : h.LastModified?.getTime(), ...(Number.isFinite(mode) ? { mode: mode & 0o777 } : {}),
        ...(/^[0-9a-f]{16}$/.test(h.Metadata?.xxh64 ?? '') ? { hash: h.Metadata!.xxh64 } : {}) };
    } catch (err) {
      const e = this.fail(err, 'stat', rel);
      if (e.errorClass === 'missing') return undefined;
      throw e;
    }
  }

  async *list(prefix: string): AsyncIterable<string> {
    const base = this.prefix ? `${this.prefix}/` : '';
    for await (const k of this.keysUnder(prefix === '' ? base : `${this.key(prefix.replace(/\/+$/, ''))}/`)) {
      const rel = k.slice(base.length);
      if (!isReserved(rel)) yield rel;
    }
  }

  async get(rel: string, opts: { signal?: AbortSignal } = {}): Promise<Readable> {
    try {
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.key(rel) }), { abortSignal: opts.signal });
      return r.Body as Readable;
    } catch (err) {
      throw this.fail(err, 'get', rel);
    }
  }

  /**
   * Reachable and authenticated (HeadBucket: a missing bucket is an error, never created), writable (a probe
   * object written and deleted); abort multipart uploads under the prefix that a crashed run left behind.
   */
  async check(): Promise<CheckReport> {
    let reached = false;
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
      reached = true;
      const probe = this.prefix ? `${this.prefix}/${tempName()}` : tempName();
      await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: probe, Body: Buffer.alloc(0), ContentLength: 0 }));
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: probe }));
      await this.abortStaleUploads();
      return { reachable: true, authenticated: true, writable: true, detail: `bucket ${this.bucket}${this.prefix ? `, prefix ${this.prefix}/` : ''}; free space not reported by S3` };
    } catch (err) {
      const status = (err as AwsError).$metadata?.httpStatusCode;
      // HeadBucket has no body: its 404/403 come without an error code
      if (!reached && status === 404) throw this.fail({ name: 'NoSuchBucket' }, 'check', this.url);
      if (!reached && status === 403) throw new TargetError(`[${this.name}] check ${this.url}: access to bucket ${this.bucket} denied (403): check the credentials and the bucket policy`, { target: this.name, errorClass: 'unreachable', permanent: true, stage: 'auth', cause: err });
      throw this.fail(err, 'check', this.url); // no stage: check's caller tells it from the class
    }
  }

  private async abortStaleUploads(): Promise<void> {
    const r = await this.client.send(new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: this.prefix ? `${this.prefix}/` : undefined }));
    for (const u of r.Uploads ?? []) {
      if (u.Initiated && Date.now() - u.Initiated.getTime() > (this.opts.staleUploadMs ?? STALE_UPLOAD_MS)) {
        await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: u.Key, UploadId: u.UploadId })).catch(() => undefined);
      }
    }
  }

  /** A server-side copy: the bytes never pass through replica (the put of the new content replaces the live key). */
  async keepAside(rel: string, versionRel: string): Promise<boolean> {
    try {
      const st = await this.stat(rel);
      if (!st) return false;
      if (st.size > COPY_MAX) {
        throw new TargetError(`${opOrigin(this.name, 'keepAside', rel)}: objects over 5 GiB need a multipart copy, which this version cannot make: set versions: 0 for this target or keep such files elsewhere`, { target: this.name, errorClass: 'other', permanent: true });
      }
      const source = `${this.bucket}/${encodeURIComponent(this.key(rel)).replace(/%2F/g, '/')}`;
      await this.client.send(new CopyObjectCommand({ Bucket: this.bucket, Key: this.key(versionRel), CopySource: source, MetadataDirective: 'COPY' }));
      return true;
    } catch (err) {
      throw this.fail(err, 'keepAside', rel);
    }
  }

  async listVersions(rel: string): Promise<string[]> {
    const pre = versionPrefix(rel);
    const out: string[] = [];
    for await (const k of this.keysUnder(this.key(pre))) {
      const v = this.prefix ? k.slice(this.prefix.length + 1) : k;
      if (!v.slice(pre.length).includes('/')) out.push(v);
    }
    return out.sort(byVersionAge);
  }

  async removeVersion(versionRel: string): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.key(versionRel) }));
    } catch (err) {
      throw this.fail(err, 'removeVersion', versionRel);
    }
  }

  /** Every key starting with `keyPrefix`. */
  private async *keysUnder(keyPrefix: string): AsyncIterable<string> {
    let token: string | undefined;
    do {
      let page;
      try {
        page = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: keyPrefix, ContinuationToken: token }));
      } catch (err) {
        throw this.fail(err, 'list', keyPrefix);
      }
      for (const o of page.Contents ?? []) yield o.Key!;
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}
