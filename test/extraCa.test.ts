import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { it } from 'node:test';
import { workerEnv, SUPERVISED_ENV } from '../dist/bin/supervisor.js';
import { EXTRA_CA_ENV } from '../dist/lib/extraCa.js';
import { S3Target } from '../dist/lib/targets/s3.js';
import { TargetError } from '../dist/lib/errors.js';
import { rmTree, tmpDir } from './helpers.js';

it('the supervised worker gets NODE_EXTRA_CA_CERTS as REPLICA_EXTRA_CA_CERTS (no bundle parsed at its start); the rest of the environment as it is', () => {
  const env = workerEnv({ PATH: '/bin', NODE_EXTRA_CA_CERTS: '/etc/ca.pem', UV_THREADPOOL_SIZE: '8' });
  assert.deepEqual(env, { PATH: '/bin', [EXTRA_CA_ENV]: '/etc/ca.pem', [SUPERVISED_ENV]: '1', UV_THREADPOOL_SIZE: '8' });
  assert.equal(workerEnv({ PATH: '/bin' }).NODE_EXTRA_CA_CERTS, undefined);
  assert.equal(workerEnv({ PATH: '/bin' })[EXTRA_CA_ENV], undefined);
  assert.equal(workerEnv({}).UV_THREADPOOL_SIZE, '64');
});

/** A CA and a certificate for 127.0.0.1 signed by it (openssl), in `dir`. */
function makeCa(dir: string): { ca: string; key: string; cert: string } {
  const f = (n: string) => path.join(dir, n);
  const ssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '2', '-subj', '/CN=replica test CA');
  ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('srv.key'), '-out', f('srv.csr'), '-subj', '/CN=127.0.0.1');
  fs.writeFileSync(f('ext'), 'subjectAltName=IP:127.0.0.1\n');
  ssl('x509', '-req', '-in', f('srv.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('srv.pem'), '-days', '2', '-extfile', f('ext'));
  return { ca: f('ca.pem'), key: f('srv.key'), cert: f('srv.pem') };
}

it('an S3 target trusts the CA bundle handed over as REPLICA_EXTRA_CA_CERTS, and only then', async () => {
  const dir = tmpDir();
  const { ca, key, cert } = makeCa(dir);
  // an https endpoint with a certificate only that CA signed: every object is missing (a HEAD answered 404)
  const server = https.createServer({ key: fs.readFileSync(key), cert: fs.readFileSync(cert) }, (req, res) => { res.statusCode = 404; res.end(); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const endpoint = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const target = () => new S3Target('s3', 's3://bucket/base', { endpoint, accessKeyId: 'k', secretAccessKey: 's', commandTimeoutMs: 10_000 });
  const before = process.env[EXTRA_CA_ENV];
  try {
    delete process.env[EXTRA_CA_ENV];
    await assert.rejects(target().stat('h/f'), (e: unknown) => e instanceof TargetError && /certificate/i.test(e.message), 'an unknown CA is refused');
    process.env[EXTRA_CA_ENV] = ca;
    assert.equal(await target().stat('h/f'), undefined, 'trusted: the 404 comes through as a missing object');
    process.env[EXTRA_CA_ENV] = path.join(dir, 'no-such-bundle.pem');
    await assert.rejects(target().stat('h/f'), (e: unknown) => e instanceof TargetError && /certificate/i.test(e.message), 'an unreadable bundle adds nothing');
  } finally {
    if (before === undefined) delete process.env[EXTRA_CA_ENV]; else process.env[EXTRA_CA_ENV] = before;
    server.close();
    rmTree(dir);
  }
});
