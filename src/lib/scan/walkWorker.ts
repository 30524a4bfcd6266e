/**
 * Worker thread of Prewalk (prewalk.ts): walks each source as reconcile would (walk.ts, the same filter) and
 * posts what it finds, in walk order, in batches.
 */
import fs from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { PathFilter } from './filter.js';
import { KIND_CODES, type WalkMessage, type WalkRequest, walk } from './walk.js';

/** Entries per message: a message costs ~40 us to post, whatever it carries. */
const BATCH = 4096;

const req = workerData as WalkRequest;
const post = (m: WalkMessage) => parentPort!.postMessage(m);
let posted = 0;
/** Wait while `ahead` batches are not taken yet (in steps of 100 ms: a terminate() is seen between them). */
function credit(): void {
  for (let taken; posted - (taken = Atomics.load(req.taken, 0)) >= req.ahead;) Atomics.wait(req.taken, 0, taken, 100);
}
for (const [src, s] of req.sources.entries()) {
  let paths: string[] = [];
  let nums: number[] = [];
  const flush = () => {
    if (paths.length) {
      credit();
      post({ src, paths, nums: Float64Array.from(nums) });
      posted++;
    }
    paths = [];
    nums = [];
  };
  const rootOk = fs.existsSync(s.path);
  if (rootOk) {
    walk(s.path, PathFilter.forSource(s, req.globalExclude), (e) => {
      paths.push(e.path);
      nums.push(KIND_CODES.indexOf(e.kind), e.size, e.mtimeMs, e.ino, e.ctimeMs, e.mode);
      if (paths.length >= BATCH) flush();
    }, (problem) => {
      flush(); // in order with the entries around it
      post({ src, problem });
    });
  }
  flush();
  post({ src, rootOk });
}
