import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The directory of replica's package.json (which ships with the build, with docs/), found upward from this
 * module: it runs from dist/lib/ (the modules) or dist/bundle/ (the CLI's bundle, scripts/bundle.mjs).
 */
export const PACKAGE_ROOT = ((): string => {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (let d = here; ; d = path.dirname(d)) {
    if (fs.existsSync(path.join(d, 'package.json'))) return d;
    if (path.dirname(d) === d) throw new Error(`replica: no package.json above ${here}: reinstall replica`);
  }
})();
