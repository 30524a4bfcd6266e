import { ConfigError } from '../errors.js';
import type { TargetConfig, TargetKind } from '../config/schema.js';
import { LocalTarget } from './local.js';
import { SshTarget } from './ssh.js';
import type { Target } from './target.js';

/** Builds a target from its config. */
export type TargetFactory = (cfg: TargetConfig) => Target;

const factories = new Map<TargetKind, TargetFactory>([
  ['local', (cfg) => new LocalTarget(cfg.name, cfg.path!, { mount: cfg.mount, commandTimeoutMs: cfg.timeouts.commandMs })],
  ['ssh', (cfg) => new SshTarget(cfg.name, cfg.url, {
    identity: cfg.options.identity as string | undefined, knownHosts: cfg.options.knownHosts as string | undefined,
    hostKeyCheck: cfg.options.hostKeyCheck as boolean | undefined, commandTimeoutMs: cfg.timeouts.commandMs,
  })],
]);

/** Register (or replace) the factory for a kind of target URL. */
export function registerTarget(kind: TargetKind, factory: TargetFactory): void {
  factories.set(kind, factory);
}

/** Create the target a config entry describes. Throws ConfigError for a kind this build cannot write to. */
export function createTarget(cfg: TargetConfig, index: number): Target {
  const f = factories.get(cfg.kind);
  if (!f) throw new ConfigError([`targets[${index}].url: ${cfg.kind}:// targets are not supported by this version of replica yet (${cfg.url})`]);
  return f(cfg);
}
