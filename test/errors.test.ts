import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ERROR_CLASSES, ERROR_POLICY, SourceError, TARGET_WIDE_CLASSES, TargetError, classifyErrno, missingError, opOrigin, toTargetError,
} from '../dist/lib/errors.js';

const errno = (code: string) => Object.assign(new Error(code), { code });

describe('error policy (errors.ts)', () => {
  it('has one entry per class; target-wide classes are the ones the policy scopes to the target', () => {
    assert.deepEqual(Object.keys(ERROR_POLICY).sort(), [...ERROR_CLASSES].sort());
    assert.deepEqual([...TARGET_WIDE_CLASSES].sort(), ['EIO', 'EROFS', 'not-mounted', 'timeout', 'unreachable']);
    assert.equal(new TargetError('x', { target: 't', errorClass: 'ENOSPC' }).targetWide, false, 'a full target stays per file');
    assert.equal(new TargetError('x', { target: 't', errorClass: 'EIO' }).targetWide, true);
  });

  it('classifies errno, a kind\'s protocol codes (by code, then by name) and timeouts; unknown is other', () => {
    assert.equal(classifyErrno(errno('EDQUOT')), 'quota');
    assert.equal(classifyErrno(errno('EPIPE')), 'unreachable');
    assert.equal(classifyErrno(errno('EWHATEVER')), 'other');
    assert.equal(classifyErrno(Object.assign(new Error('x'), { code: 2 }), { 2: 'missing' }), 'missing', 'SFTP status number');
    assert.equal(classifyErrno(Object.assign(new Error('x'), { name: 'QuotaExceeded' }), { QuotaExceeded: 'quota' }), 'quota', 'S3 error name');
    assert.equal(classifyErrno(Object.assign(new Error('x'), { name: 'TimeoutError' })), 'timeout');
    // the AWS SDK names a dropped connection (EPIPE: Ceph closing on a full quota mid-upload) a TimeoutError
    const dropped = Object.assign(new Error('write EPIPE'), { code: 'EPIPE', name: 'TimeoutError' });
    assert.equal(classifyErrno(dropped, { TimeoutError: 'timeout' }), 'unreachable', 'retried in place, not a timeout that already waited');
    assert.equal(classifyErrno(new SourceError('changed', 'changed')), 'changed', 'a source error keeps its class');
  });

  it('wraps with the [target] op path origin, permanent as the policy says; a TargetError passes unchanged', () => {
    const e = toTargetError(errno('EACCES'), 'nas', opOrigin('nas', 'put', 'h/x'));
    assert.equal(e.message, '[nas] put h/x: EACCES');
    assert.equal(e.errorClass, 'EACCES');
    assert.equal(e.permanent, true);
    assert.equal(toTargetError(errno('ECONNRESET'), 'nas', 'o').permanent, false);
    assert.equal(toTargetError(e, 'other', 'o'), e);
    const m = missingError('nas', 'hash', 'h/y');
    assert.deepEqual([m.message, m.errorClass], ['[nas] hash h/y: no such file', 'missing']);
    assert.equal(opOrigin('nas', 'check'), '[nas] check');
  });
});
