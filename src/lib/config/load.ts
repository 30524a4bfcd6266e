import path from 'node:path';
import fs from 'node:fs';
import os from 'node:os';
import type { Loader } from 'cosmiconfig';
import { ConfigError, messageOf } from '../errors.js';
import type { Config } from './schema.js';
import { validateConfig } from './validate.js';

/**
 * cosmiconfig, imported on first use: a command given `--config some.json` (cron's, the agent's) never needs
 * it, and importing it took ~15-20 ms of every start here.
 */
const cosmi = () => import('cosmiconfig');

/** Where discovery looks in each directory, in order (cosmiconfig's defaults lack replica.config.json). */
export const SEARCH_PLACES = [
  'package.json', 'replica.config.json', '.replicarc', '.replicarc.json', '.replicarc.yaml', '.replicarc.yml',
  'replica.config.js', 'replica.config.cjs', 'replica.config.mjs',
];

/**
 * Where a config is looked for when none is found from the cwd upward (the README's install puts it in
 * /etc/replica): /etc/replica/, then $XDG_CONFIG_HOME/replica/ (default ~/.config/replica/).
 */
export function fallbackDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  return ['/etc/replica', path.join(env.XDG_CONFIG_HOME || path.join(os.homedir(), '.config'), 'replica')];
}

/** Line and column (1-based) of a character offset. */
function lineCol(text: string, pos: number): string {
  const before = text.slice(0, pos).split('\n');
  return `${before.length}:${before[before.length - 1].length + 1}`;
}

/** JSON.parse with an error that says where: `line L, column C: <reason>`. */
const loadJson: Loader = (file, content) => {
  try {
    return content.trim() === '' ? null : JSON.parse(content);
  } catch (err) {
    const msg = (err as Error).message;
    let pos = /at position (\d+)/.exec(msg)?.[1];
    if (pos === undefined && /end of JSON input/.test(msg)) pos = String(content.length);
    const ctx = /Unexpected token '(.+?)', (?:\.\.\.)?"(.*?)"(?:\.\.\.)? is not valid JSON/s.exec(msg);
    if (pos === undefined && ctx) {
      const at = content.indexOf(ctx[2]);
      if (at >= 0) pos = String(at + ctx[2].indexOf(ctx[1]));
    }
    const reason = msg.replace(/ in JSON at position \d+.*$/s, '').replace(/, (?:\.\.\.)?".*" is not valid JSON$/s, '');
    throw new ConfigError([`${file}:${pos === undefined ? '' : `${lineCol(content, Number(pos))}: `}invalid JSON: ${reason}`]);
  }
};

/** Does `v` reach one object twice (a YAML alias: `*a` is the very object `&a` names)? */
function sharesObjects(v: unknown, seen = new Set<object>()): boolean {
  if (typeof v !== 'object' || v === null) return false;
  if (seen.has(v)) return true;
  seen.add(v);
  return Object.values(v).some((x) => sharesObjects(x, seen));
}

/** YAML, but no aliases: a few hundred bytes of nested aliases expand to gigabytes (a "billion laughs"). */
const loadYaml: Loader = async (file, content) => {
  const value = await (await cosmi()).defaultLoaders['.yaml'](file, content);
  if (sharesObjects(value)) throw new ConfigError([`${file}: YAML anchors and aliases (&name, *name) are not allowed in a replica config: write the values out`]);
  return value;
};

/**
 * A JS config is executed (as root, on most machines): refuse one that a user other than us could have
 * written (the file or its directory writable by someone else), since that user would run code as us.
 */
const loadJs: Loader = async (file, content) => {
  const uid = process.getuid?.() ?? 0;
  for (const p of [file, path.dirname(file)]) {
    const st = fs.statSync(p);
    const dirSticky = p !== file && (st.mode & 0o1000) !== 0;
    if ((st.uid !== uid && st.uid !== 0) || ((st.mode & 0o022) !== 0 && !dirSticky)) {
      throw new ConfigError([`${file}: refusing to execute a JS config that another user can write (${p === file ? 'the file' : 'its directory'} ${p}: owner uid ${st.uid}, mode ${(st.mode & 0o7777).toString(8)}); make it owned by ${uid === 0 ? 'root' : `uid ${uid}`} and not group/world-writable, or use replica.config.json`]);
    }
  }
  return (await cosmi()).defaultLoaders[path.extname(file) as '.js'](file, content);
};

const LOADERS = { '.json': loadJson, '.yaml': loadYaml, '.yml': loadYaml, noExt: loadYaml, '.js': loadJs, '.cjs': loadJs, '.mjs': loadJs };

/** Is this config file executed to load it (JS)? `replica check` says so. */
export const isExecutableConfig = (file: string): boolean => /\.(c|m)?js$/.test(file);

/**
 * An explicit JSON config (`--config x.json`, REPLICA_CONFIG), read and parsed as cosmiconfig would with our
 * loader, without importing it. Undefined where cosmiconfig must do it: package.json (its `replica` key), other
 * formats, and a config that uses cosmiconfig's `$import`.
 */
function plainJson(file: string): { config: unknown; filepath: string; isEmpty?: boolean } | undefined {
  if (path.extname(file) !== '.json' || path.basename(file) === 'package.json') return undefined;
  const content = fs.readFileSync(file, 'utf8');
  if (content.trim() === '') return { config: undefined, filepath: file, isEmpty: true };
  const config: unknown = loadJson(file, content);
  if (typeof config === 'object' && config !== null && '$import' in config) return undefined;
  return { config, filepath: file };
}

export interface LoadOptions {
  /** explicit config file (--config); wins over REPLICA_CONFIG and discovery */
  file?: string;
  /** environment to read REPLICA_CONFIG from */
  env?: NodeJS.ProcessEnv;
  /** where discovery starts (default: process.cwd()) */
  cwd?: string;
}

/**
 * Find, parse and validate the config: `--config`, else `REPLICA_CONFIG`, else cosmiconfig discovery
 * under module name `replica` from the cwd upward. Throws ConfigError naming the file or key that is wrong.
 */
export async function loadConfig(opts: LoadOptions = {}): Promise<Config> {
  const cwd = opts.cwd ?? process.cwd();
  const explicit = opts.file ?? (opts.env ?? process.env).REPLICA_CONFIG;
  const explorer = async (strategy: 'global' | 'none' = 'global') => (await cosmi()).cosmiconfig('replica', { searchStrategy: strategy, ...(strategy === 'global' ? { stopDir: path.parse(cwd).root } : {}), cache: false, searchPlaces: SEARCH_PLACES, loaders: LOADERS });
  const fallbacks = fallbackDirs(opts.env ?? process.env);
  let result;
  try {
    if (explicit) {
      const file = path.resolve(cwd, explicit);
      if (!fs.existsSync(file)) throw new ConfigError([`${file}: config file not found (from ${opts.file ? '--config' : 'REPLICA_CONFIG'})`]);
      result = plainJson(file) ?? await (await explorer()).load(file);
    } else {
      result = await (await explorer()).search(cwd);
      for (const dir of fallbacks) {
        if (result) break;
        result = await (await explorer('none')).search(dir);
      }
    }
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const e = err as { filepath?: string };
    const lines = messageOf(err).split('\n').filter((l) => l.trim() !== '');
    throw new ConfigError([`${e.filepath ?? explicit ?? cwd}: cannot parse config: ${lines.slice(lines.length > 1 ? 1 : 0).join(' ').slice(0, 300)}`], { cause: err });
  }
  if (!result) {
    throw new ConfigError([`no config found: looked for replica.config.json, .replicarc(.json|.yaml), replica.config.js or package.json#replica from ${cwd} upward, then in ${fallbacks.join(' and ')}; pass --config FILE or set REPLICA_CONFIG`]);
  }
  if (result.isEmpty) throw new ConfigError([`${result.filepath}: config file is empty`]);
  return validateConfig(result.config, result.filepath);
}
