import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { matcher } from '../dist/lib/commands/whereIs.js';

describe('matcher (commands/whereIs.ts): the PATH|GLOB|NAME argument of where-is, restore, verify, retry, ignore', () => {
  it('a bare name matches that name in any directory, globs and dot files included', () => {
    const m = matcher('f1.dat');
    assert.equal(m('/data/a/f1.dat'), true);
    assert.equal(m('/f1.dat'), true);
    assert.equal(m('/data/f1.dat/inside'), false, 'the name of a directory above is not the file');
    assert.equal(m('/data/xf1.dat'), false);
    const g = matcher('*.fits');
    assert.equal(g('/d/.hidden.fits'), true, 'dot files match like any other (rsync, not the shell)');
    assert.equal(g('/d/e/img.fits'), true);
    assert.equal(g('/d/img.fits.gz'), false);
  });

  it('a glob with a slash is matched against the whole absolute path, relative to the cwd', () => {
    const m = matcher('/data/*/f?.dat');
    assert.equal(m('/data/a/f1.dat'), true);
    assert.equal(m('/data/a/b/f1.dat'), false, '* stays within one directory');
    assert.equal(matcher('/data/**/f1.dat')('/data/a/b/f1.dat'), true);
    const rel = matcher('sub/*.dat');
    assert.equal(rel(path.join(process.cwd(), 'sub', 'x.dat')), true);
    assert.equal(rel('/sub/x.dat'), process.cwd() === '/');
  });

  it('a plain path matches itself and everything under it, never a sibling that shares its prefix', () => {
    const m = matcher('/data/run1');
    assert.equal(m('/data/run1'), true);
    assert.equal(m('/data/run1/f.dat'), true);
    assert.equal(m('/data/run10/f.dat'), false);
    assert.equal(matcher('/')('/anything'), true);
  });
});
