import fs from 'node:fs';
import { parseDuration } from '../config/units.js';
import { UsageError } from '../errors.js';
import { PathFilter } from '../scan/filter.js';
import { walk } from '../scan/walk.js';
import { observationChanged } from '../scan/settle.js';
import { isCurrent, stateNameOn } from '../store/records.js';
import { type Context, buffered, jsonArray, openStoreReadOnly, targetNames } from './context.js';

export interface NewFilesOptions { since?: string; target?: string; nul?: boolean }

export interface NewFile {
  path: string; size: number; mtime: string; targets: Record<string, string>;
  /** the name is not valid UTF-8 (never backed up): `path` shows its bytes escaped (\xNN), `pathBytes` is base64 */
  unsupportedName?: true; pathBytes?: string;
}

/** A path's bytes with each byte that is not part of valid UTF-8 written as \xNN (and `\` as `\\`). */
export function escapeBytes(raw: Buffer): string {
  let out = '';
  let i = 0;
  const dec = new TextDecoder('utf-8', { fatal: true });
  while (i < raw.length) {
    let ok = false;
    for (let n = 4; n >= 1 && !ok; n--) {
      if (i + n > raw.length) continue;
      try { const ch = dec.decode(raw.subarray(i, i + n)); if ([...ch].length === 1) { out += ch === '\\' ? '\\\\' : ch; i += n; ok = true; } } catch { /* not a character */ }
    }
    if (!ok) { out += `\\x${raw[i].toString(16).padStart(2, '0')}`; i++; }
  }
  return out;
}

/** Parse `--since`: a duration back from now ("24h") or a date/time (ISO 8601). Epoch ms. */
export function parseSince(v: string, now = Date.now()): number {
  const d = parseDuration(v);
  if (d !== undefined) return now - d;
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new UsageError(`--since: expected a duration like "24h" or a date like 2026-11-24T08:00:00Z, got ${JSON.stringify(v)}`);
  return t;
}

/**
 * `replica new-files`: scan the sources now (so nothing written before the query is missed) and list the
 * files not verified on every target (or on `target`) whose mtime is at or after `since`. A verified record
 * whose file changed since counts as not verified.
 */
export async function newFilesCommand(ctx: Context, opts: NewFilesOptions): Promise<NewFile[]> {
  const { config } = ctx;
  const since = opts.since === undefined ? -Infinity : parseSince(opts.since);
  const names = targetNames(config, opts.target);
  const store = await openStoreReadOnly(ctx);
  const found: NewFile[] = [];
  const raw = new Map<NewFile, Buffer>();
  for (const src of config.sources) {
    walk(src.path, PathFilter.forSource(src, config.exclude), (e) => {
      if (e.kind === 'special' || e.mtimeMs < since) return;
      const rec = store.get(e.path);
      const current = rec && isCurrent(rec)
        && (e.kind === 'symlink' ? rec.l !== undefined : !observationChanged(rec, e));
      const states = Object.fromEntries(names.map((n) => [n, current ? stateNameOn(rec, n) : 'pending']));
      if (Object.values(states).some((s) => s !== 'verified')) {
        found.push({ path: e.path, size: e.size, mtime: new Date(e.mtimeMs).toISOString(), targets: states });
      }
    }, (p) => {
      ctx.log.warn(`scan: ${p.path}: ${p.message}`);
      // a name replica cannot back up is listed (it is certainly not verified anywhere)
      if (p.kind !== 'unsupported-name' || !p.raw) return;
      let st: import('node:fs').Stats;
      try { st = fs.lstatSync(p.raw); } catch { return; }
      if (st.isDirectory() || st.mtimeMs < since) return;
      const f: NewFile = { path: escapeBytes(p.raw), size: st.size, mtime: new Date(st.mtimeMs).toISOString(), targets: Object.fromEntries(names.map((n) => [n, 'failed'])), unsupportedName: true, pathBytes: p.raw.toString('base64') };
      raw.set(f, p.raw);
      found.push(f);
    });
  }
  found.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  if (ctx.opts.json) {
    const json = jsonArray(ctx.out);
    for (const f of found) json.add(f);
    json.end();
  } else if (opts.nul) {
    for (const f of found) ctx.out.write(Buffer.concat([raw.get(f) ?? Buffer.from(f.path), Buffer.from([0])]));
  } else {
    const out = buffered(ctx.out);
    for (const f of found) out.write(`${f.path}\n`);
    out.flush();
  }
  return found;
}
