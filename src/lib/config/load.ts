import path from 'node:path';
import fs from 'node:fs';
import { cosmiconfig } from 'cosmiconfig';
import { ConfigError, messageOf } from '../errors.js';
import type { Config } from './schema.js';
import { validateConfig } from './validate.js';

/** Where discovery looks in each directory, in order (SPEC 2; cosmiconfig's defaults lack replica.config.json). */
export const SEARCH_PLACES = [
  'package.json', 'replica.config.json', '.replicarc', '.replicarc.json', '.replicarc.yaml', '.replicarc.yml',
  'replica.config.js', 'replica.config.cjs', 'replica.config.mjs',
];

export interface LoadOptions {
  /** explicit config file (--config); wins over REPLICA_CONFIG and discovery */
  file?: string;
  /** environment to read REPLICA_CONFIG from */
  env?: NodeJS.ProcessEnv;
  /** where discovery starts (default: process.cwd()) */
  cwd?: string;
}

/**
 * Find, parse and validate the config (SPEC 2): `--config`, else `REPLICA_CONFIG`, else cosmiconfig discovery
 * under module name `replica` from the cwd upward. Throws ConfigError naming the file or key that is wrong.
 */
export async function loadConfig(opts: LoadOptions = {}): Promise<Config> {
  const cwd = opts.cwd ?? process.cwd();
  const explicit = opts.file ?? (opts.env ?? process.env).REPLICA_CONFIG;
  const explorer = cosmiconfig('replica', { searchStrategy: 'global', stopDir: path.parse(cwd).root, cache: false, searchPlaces: SEARCH_PLACES });
  let result;
  try {
    if (explicit) {
      const file = path.resolve(cwd, explicit);
      if (!fs.existsSync(file)) throw new ConfigError([`${file}: config file not found (from ${opts.file ? '--config' : 'REPLICA_CONFIG'})`]);
      result = await explorer.load(file);
    } else {
      result = await explorer.search(cwd);
    }
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const e = err as { filepath?: string };
    throw new ConfigError([`${e.filepath ?? explicit ?? cwd}: cannot parse config: ${messageOf(err).split('\n')[0]}`], { cause: err });
  }
  if (!result) {
    throw new ConfigError([`no config found: looked for replica.config.json, .replicarc(.json|.yaml), replica.config.js or package.json#replica from ${cwd} upward; pass --config FILE or set REPLICA_CONFIG`]);
  }
  if (result.isEmpty) throw new ConfigError([`${result.filepath}: config file is empty`]);
  return validateConfig(result.config, result.filepath);
}
