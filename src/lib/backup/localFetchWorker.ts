/**
 * Worker thread of LocalFetch (localFetch.ts): copies a file from a target directory on this machine into a
 * temp file with synchronous system calls (~3 us each here, against ~35 us for each asynchronous call through
 * libuv's thread pool), hashing as it goes, so a restore of many small files is not paced by the pool and a
 * big one runs at disk speed. A hung disk blocks this thread only: the main thread's deadline fails the job
 * and replaces the worker.
 */
import fs from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { hashBytes, initHasher, readAllAt, toHex } from '../hash/xxh64.js';
import type { FetchJob, FetchReply } from './localFetch.js';

const C = fs.constants;
const CHUNK = 4 << 20;
const SMALL = 1 << 20;
const api = initHasher();
let buf: Buffer | undefined;

/** Write all of `data` at `pos` (a short write on a filling disk loops until ENOSPC). */
function writeAllSync(fd: number, data: Buffer, pos: number): void {
  for (let off = 0; off < data.length;) off += fs.writeSync(fd, data, off, data.length - off, pos + off);
}

async function fetch(job: FetchJob): Promise<FetchReply> {
  const xx = await api;
  const src = fs.openSync(job.src, C.O_RDONLY | C.O_NOFOLLOW | C.O_NONBLOCK);
  const temp = `${job.dir}/${job.temp}`;
  let out: number | undefined;
  let done = false;
  try {
    const st = fs.fstatSync(src);
    if (!st.isFile()) return { id: job.id, error: `${job.src} is not a regular file`, code: 'EINVAL' };
    const create = () => {
      try {
        return fs.openSync(temp, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o600);
      } catch (err) {
        throw Object.assign(err as Error, { write: true });
      }
    };
    let got: string;
    let size: number;
    if (st.size <= SMALL) { // one read, one hash, and nothing written unless it is right
      const data = readAllAt(src, st.size);
      got = hashBytes(data);
      size = data.length;
      if (got === job.hash) { out = create(); writeAllSync(out, data, 0); }
    } else {
      out = create();
      const h = xx.create64();
      buf ??= Buffer.allocUnsafeSlow(CHUNK);
      size = 0;
      for (let n; (n = fs.readSync(src, buf, 0, CHUNK, size)) > 0; size += n) {
        const chunk = buf.subarray(0, n);
        h.update(chunk);
        writeAllSync(out, chunk, size);
      }
      got = toHex(h.digest());
    }
    if (got !== job.hash) return { id: job.id, mismatch: got };
    fs.fchmodSync(out!, st.mode & 0o777);
    fs.futimesSync(out!, Date.now() / 1000, (job.mtimeMs ?? st.mtimeMs) / 1000);
    fs.closeSync(out!);
    out = undefined;
    if (job.final !== undefined) fs.renameSync(temp, `${job.dir}/${job.final}`);
    done = true;
    return { id: job.id, bytes: size };
  } finally {
    fs.closeSync(src);
    if (out !== undefined) fs.closeSync(out);
    if (!done) fs.rmSync(temp, { force: true });
  }
}

parentPort!.on('message', async (job: FetchJob) => {
  let reply: FetchReply;
  try {
    reply = await fetch(job);
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { write?: true };
    reply = { id: job.id, error: e.message, code: e.code ?? 'EIO', ...(e.write ? { write: true as const } : {}) };
  }
  parentPort!.postMessage(reply);
});
