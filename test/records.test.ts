import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeState, type Rec } from '../dist/lib/store/model.js';
import {
  backoffMs, codeOn, failureOn, isCurrent, isDeleted, isDoneOn, isDue, isSettled, isVerifiedOn, markDeleted, markFailed,
  contentAt, contentChanging, localRemovalDueAt, markPresent, markReverified, markVerified, owedSince, previousContents, settle, stateNameOn, unsettle, verifiedAtOn,
} from '../dist/lib/store/records.js';

const fresh = (): Rec => ({ z: 1, m: 1, o: 1, f: 7, t: {} });

describe('record lifecycle (store/records)', () => {
  it('verifiedAtOn and markReverified read verifiedAt and copiedAt in place as the full decode gives them, for every shape a state string takes', () => {
    const states = [undefined, 'p', 'v', 'v 150', 'v 150 160', 'v - 160', 'v 150 -', 'v 150 160 2', 'v 150 160 - - 170 mismatch read back wrong',
      'f - - 2 1795503430190 1795499830190 ENOSPC no space left on device', 'i - - - - 100 ignored the reason', 'v 1795499830190 1795499830412'];
    for (const x of states) {
      const r: Rec = { z: 1, m: 1, f: 1, t: x === undefined ? {} : { a: x } };
      const want = x?.[0] === 'v' ? decodeState(x).v ?? 0 : undefined;
      assert.equal(verifiedAtOn(r, 'a'), want, String(x));
      if (x?.[0] === 'v') { // re-verified: copiedAt kept as the full decode reads it, verifiedAt now
        markReverified(r, 'a', 999);
        assert.deepEqual(decodeState(r.t.a), { s: 'v', ...(decodeState(x).c === undefined ? {} : { c: decodeState(x).c }), v: 999 }, String(x));
      }
    }
  });

  it('a file settles with its hash, owing a copy to every target; a change unsettles it; a deletion keeps its copies', () => {
    const r = fresh();
    assert.equal(isSettled(r), false);
    assert.equal(isCurrent(r), false, 'an unsettled file is owed nothing yet');
    assert.equal(owedSince(r), 7, 'first seen until settled');
    settle(r, 'abcd', 100, ['a', 'b']);
    assert.equal(isSettled(r), true);
    assert.equal(r.o, undefined, 'a settled record drops its observation time');
    assert.equal(owedSince(r), 100);
    assert.deepEqual([codeOn(r, 'a'), codeOn(r, 'b'), codeOn(r, 'later')], ['p', 'p', 'p'], 'a target added later starts pending');
    markVerified(r, 'a', 150, 160);
    assert.equal(isVerifiedOn(r, 'a'), true);
    assert.equal(verifiedAtOn(r, 'a'), 160);
    assert.equal(verifiedAtOn(r, 'b'), undefined);
    assert.equal(stateNameOn(r, 'a'), 'verified');
    assert.equal(isDoneOn(r, 'b'), false);
    r.t.b = 'i';
    assert.equal(isDoneOn(r, 'b'), true, 'ignored is done');
    assert.equal(markDeleted(r, 200), true);
    assert.equal(markDeleted(r, 300), false, 'deleted once: the first time stays');
    assert.equal(isDeleted(r) && !isCurrent(r), true);
    assert.equal(isVerifiedOn(r, 'a'), true, 'a deletion at the source never touches its copies');
    markPresent(r);
    assert.equal(isCurrent(r), true);
    unsettle(r);
    assert.equal(isCurrent(r), false);
    settle(r, 'ef01', 400, ['a', 'b']);
    assert.equal(isVerifiedOn(r, 'a'), false, 'new content: every target copies again');
  });

  it('previous contents are remembered with when each was current (2 x versions of them); contentAt answers for a time', () => {
    const r = fresh(); // first seen at 7
    settle(r, 'A', 100, ['a']);
    assert.equal(contentAt(r, 6), undefined, 'before first seen');
    assert.deepEqual(contentAt(r, 50), { hash: 'A', live: true, since: 7 });
    settle(r, 'A', 150, ['a']);
    assert.equal(r.e, undefined, 'the same content again is no new content');
    settle(r, 'B', 200, ['a']);
    settle(r, 'C', 300, ['a']);
    assert.deepEqual(contentAt(r, 7), { hash: 'A', live: false, since: 7, until: 200 });
    assert.deepEqual(contentAt(r, 299), { hash: 'B', live: false, since: 200, until: 300 });
    assert.deepEqual(contentAt(r, 300), { hash: 'C', live: true, since: 300 });
    assert.equal(contentAt(r, Infinity)?.hash, 'C');
    r.m = 333; // C's mtime
    contentChanging(r); // seen changing: C's mtime is kept until the new content settles
    r.m = 350;
    contentChanging(r);
    settle(r, 'D', 400, ['a'], 1); // versions: 1 remembers 2
    assert.equal(contentAt(r, 350)?.mtimeMs, 333, 'a previous content keeps its own mtime');
    assert.equal(r.q, undefined);
    assert.deepEqual(previousContents(r).map((c) => c.hash), ['B', 'C']);
    assert.equal(contentAt(r, 100), undefined, 'older than the history kept');
    assert.equal(contentAt({ ...fresh(), h: undefined }, 100), undefined, 'never hashed');
  });

  it('the settled content again with its mtime in a file created since (a restore in place) keeps every target state; the same file chmod-ed, another mtime, or no birth time known is copied again; deleteLocalAfter counts from the settle', () => {
    const observe = (r: Rec, m: number) => { contentChanging(r); r.m = m; unsettle(r); };
    const r: Rec = { z: 1, m: 1000.123456, o: 1, f: 7, t: {} };
    settle(r, 'A', 100, ['a', 'b']);
    markVerified(r, 'a', 150, 160);
    r.t.b = 'i';
    observe(r, 1000.1234561); // restored: its mtime as utimes sets it (to the microsecond)
    assert.equal(r.k, 100, 'when the settled content settled is kept until the new content settles');
    settle(r, 'A', 500, ['a', 'b'], 1, 400); // a file born at 400, after the content settled at 100
    assert.deepEqual([stateNameOn(r, 'a'), verifiedAtOn(r, 'a'), stateNameOn(r, 'b')], ['verified', 160, 'ignored'], 'the copies are still this content');
    assert.deepEqual([r.s, r.q, r.k, r.e], [500, undefined, undefined, undefined]);
    assert.equal(localRemovalDueAt(r, ['a'], 1000), 1500, 'removed deleteLocalAfter after it settled back, not at once');
    observe(r, 1000.1234561); // chmod: the same file, born before the content settled
    settle(r, 'A', 600, ['a', 'b'], 1, 400);
    assert.equal(stateNameOn(r, 'a'), 'pending', 'the same file: copied again (its mode)');
    markVerified(r, 'a', 700, 710);
    observe(r, 2000); // another mtime, in a new file
    settle(r, 'A', 800, ['a', 'b'], 1, 750);
    assert.equal(stateNameOn(r, 'a'), 'pending', 'another mtime: copied again');
    markVerified(r, 'a', 900, 910);
    assert.equal(localRemovalDueAt(r, ['a'], 1000), 1900, 'from the copy when it came after the settle');
    observe(r, 2000);
    settle(r, 'A', 1000, ['a'], 1, 0); // a file system without birth times
    assert.equal(stateNameOn(r, 'a'), 'pending', 'no birth time: copied again');
    markVerified(r, 'a', 1100, 1110);
    observe(r, 2000);
    settle(r, 'A', 1200, ['a']);
    assert.equal(stateNameOn(r, 'a'), 'pending', 'no birth time given: copied again');
  });

  it('backoff doubles up to the cap; after maxAttempts nothing is due until retry', () => {
    const p = { maxAttempts: 3, backoffMs: 1000, maxBackoffMs: 3000 };
    assert.deepEqual([1, 2, 3, 4].map((a) => backoffMs(p, a)), [1000, 2000, 3000, 3000]);
    const r = { z: 1, m: 1, o: 1, f: 1, s: 1, h: 'x', t: {} } as Rec;
    assert.equal(isDue(r, 'a', 0, p), true);
    markFailed(r, 'a', 'ENOSPC', 'full', 100, p);
    assert.equal(isDue(r, 'a', 500, p), false);
    assert.equal(isDue(r, 'a', 1100, p), true);
    markFailed(r, 'a', 'ENOSPC', 'full', 2000, p);
    markFailed(r, 'a', 'ENOSPC', 'full', 9000, p);
    assert.equal(decodeState(r.t.a).a, 3);
    assert.equal(decodeState(r.t.a).n, undefined);
    assert.equal(isDue(r, 'a', 1e12, p), false);
    assert.equal(isDue({ ...r, d: 5, t: {} }, 'a', 0, p), false, 'deleted sources are not copied');
  });

  it('a failure keeps class, message and time, and says whether another attempt is scheduled', () => {
    const p = { maxAttempts: 2, backoffMs: 10, maxBackoffMs: 10 };
    const r = fresh();
    settle(r, 'h', 1, ['a']);
    markFailed(r, 'a', 'EACCES', 'denied', 50, p);
    assert.deepEqual(failureOn(r, 'a'), { class: 'EACCES', message: 'denied', at: 50, attempts: 1, retrying: true });
    markFailed(r, 'a', 'EACCES', 'denied again', 70, p);
    assert.deepEqual(failureOn(r, 'a'), { class: 'EACCES', message: 'denied again', at: 70, attempts: 2, retrying: false });
  });
});
