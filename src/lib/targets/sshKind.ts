import type { TargetConfig } from '../config/schema.js';
import type { TargetKindModule } from './kind.js';
import { lazyTarget } from './lazy.js';
import { warmLocalIo } from './localIo.js';
import type { SshOptions } from './sshSession.js';

/** What an ssh target offers (ssh.ts; its tests check this list against the class): every capability. */
export const SSH_METHODS = ['put', 'putMany', 'sync', 'readBack', 'check', 'close', 'hash', 'stat', 'list', 'get', 'putLink', 'readLink', 'hashMany', 'removeTemps', 'keepAside', 'listVersions', 'removeVersion'] as const;

/** `ssh://[user@]host[:port]/path`: a directory on a server, over SFTP (remote `xxhsum` and `sync` where present). */
export const sshKind: TargetKindModule = {
  kind: 'ssh', schemes: ['ssh'], urlForm: 'ssh://[user@]host[:port]/path', urlPattern: /^ssh:\/\/(?:[^@/]+@)?[^@/:]+(?::\d+)?\/./,
  options: { identity: 'path', knownHosts: 'path', hostKeyCheck: 'boolean' },
  concurrency: 8, maxConnections: 16,
  // a batch of small files is one remote tar (ssh.ts putMany): a few big batches rather than many small ones
  putManyFiles: 10_000,
  // its small files are read and laid out as tar members in the LocalIo workers (packAhead): started meanwhile
  warm: warmLocalIo,
  create: (cfg: TargetConfig) => {
    const opts: SshOptions = {
      identity: cfg.options.identity as string | undefined, knownHosts: cfg.options.knownHosts as string | undefined,
      hostKeyCheck: cfg.options.hostKeyCheck as boolean | undefined, commandTimeoutMs: cfg.timeouts.commandMs,
    };
    return lazyTarget(cfg.name, async () => new (await import('./ssh.js')).SshTarget(cfg.name, cfg.url, opts), SSH_METHODS);
  },
};
