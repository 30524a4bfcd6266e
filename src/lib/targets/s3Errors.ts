import { ERROR_POLICY, type ErrorClass, type ProtocolCodes, TargetError, classifyErrno, opOrigin } from '../errors.js';

/** S3 error names and HTTP statuses with a class of their own (a quota is a 403 too: the name decides first). */
const S3_CODES: ProtocolCodes = { QuotaExceeded: 'quota', NoSuchKey: 'missing', NotFound: 'missing', AccessDenied: 'EACCES', TimeoutError: 'timeout', RequestTimeout: 'timeout' };
const HTTP_STATUS: Readonly<Record<number, ErrorClass>> = { 404: 'missing', 403: 'EACCES' };

export interface AwsError { name?: string; code?: string; message?: string; Code?: string; $metadata?: { httpStatusCode?: number } }

/** Classify an S3 (SDK) error of `target`'s operation into the store's vocabulary, with a message that says what to do. */
export function s3Error(target: string, bucket: string, err: unknown, op: string, rel: string): TargetError {
  if (err instanceof TargetError) return err;
  const e = err as AwsError;
  const code = e.name ?? e.Code ?? e.code ?? '';
  const status = e.$metadata?.httpStatusCode;
  let cls: ErrorClass = classifyErrno(err, S3_CODES);
  if (cls === 'other' && status !== undefined) cls = HTTP_STATUS[status] ?? cls;
  let permanent = ERROR_POLICY[cls].permanent;
  let stage: 'auth' | undefined;
  let msg = e.message || code || String(err);
  if (code === 'NoSuchBucket') { cls = 'unreachable'; permanent = true; msg = `bucket ${bucket} does not exist (replica never creates it: create it, or fix the URL)`; }
  else if (code === 'InvalidAccessKeyId' || code === 'SignatureDoesNotMatch') { cls = 'unreachable'; permanent = true; stage = 'auth'; msg = `authentication failed (${code}): check the credentials (accessKeyEnv/secretKeyEnv or the AWS environment)`; }
  else if (code === 'CredentialsProviderError') { cls = 'unreachable'; permanent = true; stage = 'auth'; msg = `no credentials: ${msg}`; }
  return new TargetError(`${opOrigin(target, op, rel)}: ${msg}`, { target, errorClass: cls, permanent, stage, cause: err });
}
