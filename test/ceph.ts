import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { rmTree, tmpDir } from './helpers.js';
import { freePort } from './sshd.js';

export interface Ceph {
  endpoint: string; dir: string; accessKeyId: string; secretAccessKey: string;
  /** a fresh bucket (CreateBucket: the first one in a new cluster takes ~6 s while rgw makes its pools) */
  bucket: (name?: string) => Promise<string>;
  /** radosgw-admin with the cluster's config */
  admin: (...args: string[]) => string;
  rgwPid: () => number;
  stop: () => void;
}

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'; // see src/lib/targets/s3.ts
const SCRIPT = path.resolve(import.meta.dirname, '..', 'scripts', 'ceph-cluster.sh');
let buckets = 0;

/**
 * A real single-node Ceph cluster with radosgw on 127.0.0.1, started by the tests through
 * scripts/ceph-cluster.sh. Fails loudly when Ceph is not installed: the S3 target is only tested for real.
 */
export async function startCeph(): Promise<Ceph> {
  const dir = tmpDir('replica-ceph-');
  const port = await freePort();
  const monPort = await freePort();
  try {
    execFileSync('bash', [SCRIPT, 'start', dir, String(port), String(monPort)], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 240_000 });
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    rmTree(dir);
    throw new Error(`could not start Ceph radosgw (apt: ceph-mon ceph-osd radosgw ceph-common): ${e.stderr?.toString() || e.message}`);
  }
  const endpoint = `http://127.0.0.1:${port}`;
  const creds = { accessKeyId: 'CIKEY', secretAccessKey: 'CISECRET' };
  const client = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: creds });
  const env = { ...process.env, CEPH_CONF: path.join(dir, 'ceph.conf') };
  return {
    endpoint, dir, ...creds,
    bucket: async (name = `b${process.pid}-${buckets++}`) => {
      await client.send(new CreateBucketCommand({ Bucket: name }));
      return name;
    },
    admin: (...args) => execFileSync('radosgw-admin', args, { env, timeout: 60_000 }).toString(),
    rgwPid: () => { // never 0 (an empty pid file): process.kill(0, ...) signals the whole process group
      const n = Number(fs.readFileSync(path.join(dir, 'run', 'client.rgw.a.pid'), 'utf8').trim());
      if (!Number.isInteger(n) || n <= 1) throw new Error(`radosgw pid file holds no pid (${n})`);
      return n;
    },
    stop: () => {
      client.destroy();
      try { execFileSync('bash', [SCRIPT, 'stop', dir], { timeout: 60_000 }); } finally { rmTree(dir); }
    },
  };
}
