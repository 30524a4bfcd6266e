import { ConfigError, type TargetError } from '../errors.js';
import type { TargetConfig, TargetKind } from '../config/schema.js';
import { LocalTarget } from './local.js';
import { S3Target } from './s3.js';
import { SshTarget } from './ssh.js';
import type { Target } from './target.js';
import { DEFAULT_OP_RETRY, wrapTarget } from './wrappers.js';

/** Builds a target from its config. */
export type TargetFactory = (cfg: TargetConfig, index: number) => Target;

const opt = (cfg: TargetConfig, k: string): string | undefined => cfg.options[k] as string | undefined;

const factories = new Map<TargetKind, TargetFactory>([
  ['local', (cfg) => new LocalTarget(cfg.name, cfg.path!, { mount: cfg.mount, commandTimeoutMs: cfg.timeouts.commandMs })],
  ['ssh', (cfg) => new SshTarget(cfg.name, cfg.url, {
    identity: opt(cfg, 'identity'), knownHosts: opt(cfg, 'knownHosts'),
    hostKeyCheck: cfg.options.hostKeyCheck as boolean | undefined, commandTimeoutMs: cfg.timeouts.commandMs,
  })],
  ['s3', (cfg, i) => {
    // named variables must be set: silently falling back to other credentials would hide the mistake
    const env = (k: string): string | undefined => {
      const name = opt(cfg, k);
      if (name === undefined) return undefined;
      if (!process.env[name]) throw new ConfigError([`targets[${i}].${k}: environment variable ${name} is not set (set it in the environment of replica, e.g. the systemd unit's EnvironmentFile)`]);
      return process.env[name];
    };
    return new S3Target(cfg.name, cfg.url, {
      endpoint: opt(cfg, 'endpoint'), region: opt(cfg, 'region'), forcePathStyle: cfg.options.forcePathStyle as boolean | undefined,
      accessKeyId: env('accessKeyEnv'), secretAccessKey: env('secretKeyEnv'), commandTimeoutMs: cfg.timeouts.commandMs,
    });
  }],
]);

/**
 * Create the target a config entry describes, wrapped in its bandwidth limit, timeouts and retries
 * (wrappers.ts). Throws ConfigError for a kind this build cannot write to.
 */
export function createTarget(cfg: TargetConfig, index: number, onRetry?: (err: TargetError, waitMs: number) => void): Target {
  const f = factories.get(cfg.kind);
  if (!f) throw new ConfigError([`targets[${index}].url: ${cfg.kind}:// targets are not supported by this version of replica yet (${cfg.url})`]);
  return wrapTarget(f(cfg, index), {
    copyMs: cfg.timeouts.copyMs, commandMs: cfg.timeouts.commandMs, bwlimit: cfg.bwlimit,
    retry: { ...DEFAULT_OP_RETRY, onRetry: onRetry && ((_op, _rel, err, _n, wait) => onRetry(err, wait)) },
  });
}
