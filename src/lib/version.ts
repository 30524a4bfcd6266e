import fs from 'node:fs';
import path from 'node:path';
import { PACKAGE_ROOT } from './packageRoot.js';

/** The package version (from package.json, which ships with the build). */
export const VERSION: string = (JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
