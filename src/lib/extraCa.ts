/**
 * NODE_EXTRA_CA_CERTS as a supervised worker gets it (bin/supervisor.ts workerEnv): Node would parse the
 * bundle at every start, ~40 ms for Debian's ca-certificates.crt, though only an S3 target talks TLS; that
 * one adds the bundle to its own agent (targets/s3.ts).
 */
export const EXTRA_CA_ENV = 'REPLICA_EXTRA_CA_CERTS';
