import type tar from 'tar-stream';

let tarLib: Promise<typeof tar> | undefined;

/** tar-stream, imported on first use (every command loads the kinds; only tape targets and ssh batches need it). */
export const loadTar = (): Promise<typeof tar> => (tarLib ??= import('tar-stream').then((m) => (m as { default?: typeof tar }).default ?? (m as typeof tar)));
