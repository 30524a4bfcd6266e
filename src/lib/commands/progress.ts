import type { Engine } from '../backup/engine.js';
import { formatBytes, formatDuration } from '../config/units.js';

/**
 * A one-line progress display on a TTY (stderr): files scanned, hashed, copied and verified, bytes copied of
 * those due, and an ETA from the copy rate so far. Redrawn every `everyMs`; stop() clears the line.
 */
export function showProgress(stream: NodeJS.WriteStream, everyMs = 250): { attach: (e: Engine) => void; stop: () => void } {
  let engine: Engine | undefined;
  const t0 = Date.now();
  let copyStart: number | undefined;
  const draw = () => {
    if (!engine) return;
    const c = engine.counts;
    if (c.bytesCopied > 0) copyStart ??= Date.now();
    const rate = copyStart ? c.bytesCopied / Math.max(1, Date.now() - copyStart) : 0; // bytes per ms
    const left = Math.max(0, engine.due.bytes - c.bytesCopied);
    const eta = rate > 0 ? ` ETA ${formatDuration(left / rate)}` : '';
    const line = `scanned ${c.scanned}  hashed ${c.hashed}  copied ${c.copied}/${engine.due.files} (${formatBytes(c.bytesCopied)} of ${formatBytes(engine.due.bytes)})  verified ${c.verified}  failed ${c.failed}  ${formatDuration(Date.now() - t0)}${eta}`;
    stream.write(`\r\x1b[K${line.slice(0, (stream.columns || 200) - 1)}`);
  };
  const timer = setInterval(draw, everyMs);
  timer.unref();
  return {
    attach: (e) => { engine = e; draw(); },
    stop: () => { clearInterval(timer); if (engine) { draw(); stream.write('\n'); } },
  };
}
