import type { TargetKindModule } from './kind.js';

/**
 * `tape:///dev/nst0`: LTO tape through a non-rewinding drive. Its options are validated now so a config that
 * names one is checked; this build cannot write to tape yet (no factory: `run` refuses it with exit 78).
 */
export const tapeKind: TargetKindModule = {
  kind: 'tape', schemes: ['tape'], urlForm: 'tape:///dev/DEVICE', urlPattern: /^tape:\/\/\/./,
  options: { blockSize: 'size', capacity: 'size', volumeSize: 'size', maxWait: 'duration' },
  concurrency: 1, maxConnections: 1,
};
