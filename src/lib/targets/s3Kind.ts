import { ConfigError } from '../errors.js';
import type { TargetConfig } from '../config/schema.js';
import type { TargetKindModule } from './kind.js';
import { lazyTarget } from './lazy.js';
import type { S3Options } from './s3.js';

/** What an S3 target offers (s3.ts; its tests check this list against the class): core, random read, versions. */
export const S3_METHODS = ['put', 'sync', 'readBack', 'check', 'close', 'hash', 'stat', 'list', 'get', 'keepAside', 'listVersions', 'removeVersion'] as const;

/** `s3://bucket/prefix`: objects in a bucket replica never creates (credentials from named variables or the AWS chain). */
export const s3Kind: TargetKindModule = {
  kind: 's3', schemes: ['s3'], urlForm: 's3://bucket/prefix with a valid bucket name', urlPattern: /^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/.*)?$/,
  options: { endpoint: 'http-url', region: 'string', forcePathStyle: 'boolean', accessKeyEnv: 'string', secretKeyEnv: 'string' },
  concurrency: 32, maxConnections: 64,
  create: (cfg: TargetConfig, i: number) => {
    const opt = (k: string): string | undefined => cfg.options[k] as string | undefined;
    // named variables must be set: silently falling back to other credentials would hide the mistake
    const env = (k: string): string | undefined => {
      const name = opt(k);
      if (name === undefined) return undefined;
      if (!process.env[name]) throw new ConfigError([`targets[${i}].${k}: environment variable ${name} is not set (set it in the environment of replica, e.g. the systemd unit's EnvironmentFile)`]);
      return process.env[name];
    };
    const opts: S3Options = {
      endpoint: opt('endpoint'), region: opt('region'), forcePathStyle: cfg.options.forcePathStyle as boolean | undefined,
      accessKeyId: env('accessKeyEnv'), secretAccessKey: env('secretKeyEnv'), commandTimeoutMs: cfg.timeouts.commandMs,
    };
    return lazyTarget(cfg.name, async () => new (await import('./s3.js')).S3Target(cfg.name, cfg.url, opts), S3_METHODS);
  },
};
