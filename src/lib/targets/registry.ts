import type { TargetError } from '../errors.js';
import type { TargetConfig } from '../config/schema.js';
import type { TargetKindModule } from './kind.js';
import { localKind } from './local.js';
import { s3Kind } from './s3Kind.js';
import { sshKind } from './sshKind.js';
import { tapeKind } from './tape.js';
import type { Target } from './target.js';
import { DEFAULT_OP_RETRY, wrapTarget } from './wrappers.js';

/** Every target kind this build knows, in the order error messages list them. */
export const KINDS: readonly TargetKindModule[] = [localKind, sshKind, s3Kind, tapeKind];

/** The kind a target URL names (`''` scheme: a plain path), or undefined for an unknown scheme. */
export function kindOf(url: string): TargetKindModule | undefined {
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(url)?.[1]?.toLowerCase();
  // `foo:bar` with no slash is a mistyped URL, not a relative path
  if (scheme === undefined && /^[A-Za-z][A-Za-z0-9+.-]*:/.test(url) && !url.includes('/')) return undefined;
  return KINDS.find((k) => k.schemes.includes(scheme ?? ''));
}

/** The module of a configured target. */
export function kindModule(cfg: TargetConfig): TargetKindModule {
  return KINDS.find((k) => k.kind === cfg.kind)!;
}

/**
 * Create the target a config entry describes, wrapped in its bandwidth limit, timeouts and retries
 * (wrappers.ts). Throws ConfigError where the kind finds its options incomplete (a tape emulator without `capacity`).
 */
export function createTarget(cfg: TargetConfig, index: number, onRetry?: (err: TargetError, waitMs: number) => void): Target {
  return wrapTarget(kindModule(cfg).create(cfg, index), {
    copyMs: cfg.timeouts.copyMs, commandMs: cfg.timeouts.commandMs, bwlimit: cfg.bwlimit,
    retry: { ...DEFAULT_OP_RETRY, onRetry: onRetry && ((_op, _rel, err, _n, wait) => onRetry(err, wait)) },
  });
}
