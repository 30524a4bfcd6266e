import type { Engine } from '../backup/engine.js';
import { formatBytes, formatDuration } from '../config/units.js';

/**
 * A one-line display on a TTY (`stream`, stderr): `line()` redrawn every `everyMs` with the elapsed time;
 * stop() draws it a last time and ends the line.
 */
export function progressLine(stream: NodeJS.WriteStream, line: () => string | undefined, everyMs = 250): { stop: () => void } {
  const t0 = Date.now();
  let drawn = false;
  const draw = () => {
    const text = line();
    if (text === undefined) return;
    drawn = true;
    stream.write(`\r\x1b[K${`${text}  ${formatDuration(Date.now() - t0)}`.slice(0, (stream.columns || 200) - 1)}`);
  };
  const timer = setInterval(draw, everyMs);
  timer.unref();
  draw();
  return { stop: () => { clearInterval(timer); draw(); if (drawn) stream.write('\n'); } };
}

/**
 * The progress of a backup pass: files scanned, hashed, copied and verified, bytes copied of those due, and an
 * ETA from the copy rate so far.
 */
export function showProgress(stream: NodeJS.WriteStream, everyMs = 250): { attach: (e: Engine) => void; stop: () => void } {
  let engine: Engine | undefined;
  let copyStart: number | undefined;
  const { stop } = progressLine(stream, () => {
    if (!engine) return undefined;
    const c = engine.counts;
    if (c.bytesCopied > 0) copyStart ??= Date.now();
    const rate = copyStart ? c.bytesCopied / Math.max(1, Date.now() - copyStart) : 0; // bytes per ms
    const left = Math.max(0, engine.due.bytes - c.bytesCopied);
    const eta = rate > 0 ? ` ETA ${formatDuration(left / rate)}` : '';
    return `scanned ${c.scanned}  hashed ${c.hashed}  copied ${c.copied}/${engine.due.files} (${formatBytes(c.bytesCopied)} of ${formatBytes(engine.due.bytes)})  verified ${c.verified}  failed ${c.failed}${eta}`;
  }, everyMs);
  return { attach: (e) => { engine = e; }, stop };
}

/**
 * A status line kept at the bottom of a terminal (`watch`): redrawn every `everyMs`, and cleared before
 * anything else is written to the stream (log lines) and drawn again after it, so the two never mix.
 */
export function statusLine(stream: NodeJS.WriteStream, line: () => string, everyMs = 1000): { stop: () => void } {
  const write = stream.write.bind(stream) as (chunk: string | Uint8Array, ...rest: unknown[]) => boolean;
  let shown = false;
  const clear = () => { if (shown) { write('\r\x1b[K'); shown = false; } };
  const draw = () => { write(`\r\x1b[K${line().slice(0, (stream.columns || 200) - 1)}`); shown = true; };
  stream.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    clear();
    const ok = write(chunk, ...rest);
    draw();
    return ok;
  }) as typeof stream.write;
  const timer = setInterval(draw, everyMs);
  timer.unref();
  draw();
  return {
    stop: () => {
      clearInterval(timer);
      stream.write = write as typeof stream.write;
      clear();
    },
  };
}
