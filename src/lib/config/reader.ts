import os from 'node:os';
import path from 'node:path';
import { parseDuration, parseSize } from './units.js';
import { PatternList } from '../scan/filter.js';
import { MAX_TIMER_MS } from '../queue/timers.js';
import type { Timeouts } from './schema.js';

export type Raw = Record<string, unknown>;

/** Levenshtein distance, for "did you mean" hints. */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1].toLowerCase() === b[j - 1].toLowerCase() ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length];
}

/** ` (did you mean "x"?)` for the allowed key closest to `key`, when one is close. */
export function suggest(key: string, allowed: string[]): string {
  const best = allowed.map((k) => [k, distance(key, k)] as const).sort((x, y) => x[1] - y[1])[0];
  return best && best[1] <= Math.max(2, Math.floor(key.length / 3)) ? ` (did you mean "${best[0]}"?)` : '';
}

/** A value for an error message: never the whole of a big value (a YAML alias bomb expands to gigabytes). */
export function show(v: unknown, max = 60): string {
  let out = '';
  const seen = new Set<unknown>();
  const put = (s: string) => { out += s; return out.length <= max; };
  const walk = (x: unknown): boolean => {
    if (typeof x !== 'object' || x === null) return put(JSON.stringify(x) ?? String(x));
    if (seen.has(x)) return put('...');
    seen.add(x);
    const entries = Array.isArray(x) ? x.map((e) => [undefined, e] as const) : Object.entries(x);
    if (!put(Array.isArray(x) ? '[' : '{')) return false;
    for (const [i, [k, e]] of entries.entries()) {
      if (i > 0 && !put(',')) return false;
      if (k !== undefined && !put(`${JSON.stringify(k)}:`)) return false;
      if (!walk(e)) return false;
    }
    seen.delete(x);
    return put(Array.isArray(x) ? ']' : '}');
  };
  return walk(v) ? out : `${out.slice(0, max)}...`;
}

/** Collects problems while reading a raw config; every problem names its key path. */
export class Reader {
  readonly problems: string[] = [];
  constructor(readonly dir: string) {}

  fail(key: string, msg: string): undefined {
    this.problems.push(`${key}: ${msg}`);
    return undefined;
  }

  /** An object's keys are checked against the schema (validate.ts schemaProblems), not here. */
  object(v: unknown, key: string): Raw | undefined {
    if (v === undefined) return undefined;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return this.fail(key, `expected an object, got ${show(v)}`);
    return v as Raw;
  }

  duration(v: unknown, key: string, dflt: string | number): number {
    const ms = parseDuration(v ?? dflt);
    return ms ?? this.fail(key, `expected a duration like "500ms", "10s", "5m", "1h", "7d" or a number of seconds, got ${show(v)}`) ?? 0;
  }

  size(v: unknown, key: string, dflt: string | number): number {
    const n = parseSize(v ?? dflt);
    return n ?? this.fail(key, `expected a size like "512KiB", "20MiB", "10GiB" or a number of bytes, got ${show(v)}`) ?? 0;
  }

  int(v: unknown, key: string, dflt: number, min: number): number {
    const n = v ?? dflt;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < min) {
      return this.fail(key, `expected an integer >= ${min}, got ${show(v)}`) ?? dflt;
    }
    return n;
  }

  string(v: unknown, key: string): string | undefined {
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || v === '') return this.fail(key, `expected a non-empty string, got ${show(v)}`);
    return v;
  }

  globs(v: unknown, key: string): string[] {
    if (v === undefined) return [];
    if (!Array.isArray(v)) return this.fail(key, `expected an array of glob strings, got ${show(v)}`) ?? [];
    v.forEach((g, i) => {
      if (typeof g !== 'string' || g === '' || g === '!') return this.fail(`${key}[${i}]`, `expected a glob string, got ${show(g)}`);
      try {
        new PatternList([g]);
      } catch (err) {
        this.fail(`${key}[${i}]`, `not a usable glob (${err instanceof Error ? err.message.slice(0, 80) : 'invalid'}): ${show(g)}`);
      }
    });
    return v.filter((g): g is string => typeof g === 'string' && g !== '' && g !== '!');
  }

  /** Resolve a path from the config: `~/` is the home directory, relative is relative to the config file. */
  resolvePath(p: string): string {
    if (p === '~' || p.startsWith('~/')) return path.join(os.homedir(), p.slice(1));
    return path.resolve(this.dir, p);
  }

  timeouts(v: unknown, key: string, base: { copy: string | number; command: string | number }): Timeouts {
    const t = this.object(v, key) ?? {};
    const copyMs = this.duration(t.copy, `${key}.copy`, base.copy);
    const commandMs = this.duration(t.command, `${key}.command`, base.command);
    // a zero timeout would fail every call at once
    if (copyMs === 0 && t.copy !== undefined) this.fail(`${key}.copy`, 'must be greater than 0');
    if (commandMs === 0 && t.command !== undefined) this.fail(`${key}.command`, 'must be greater than 0');
    // one call's timeout is capped at Node's timer limit (~24.8 days): every library that takes a timeout
    // (child_process, ssh2, the AWS SDK) would otherwise overflow it and fire after 1 ms
    return { copyMs: Math.min(copyMs, MAX_TIMER_MS), commandMs: Math.min(commandMs, MAX_TIMER_MS) };
  }
}
