import { createRequire } from 'node:module';

/** The package version (from package.json, which ships with the build). */
export const VERSION: string = (createRequire(import.meta.url)('../../package.json') as { version: string }).version;
