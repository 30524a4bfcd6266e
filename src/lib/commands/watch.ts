import { Agent } from '../agent/agent.js';
import { type Context, checkMissingSources, createTargets, openStoreLocked } from './context.js';
import { statusLine } from './progress.js';
import type { StoreLock } from '../store/lock.js';

/**
 * `replica watch`: take the store lock, start the agent, and run until SIGTERM/SIGINT (then stop cleanly:
 * in-flight copies get `graceMs`, the store is saved) while SIGHUP reloads the config and SIGUSR2 applies a
 * `replica tape open|close` request. Resolves when stopped.
 */
export async function watchCommand(ctx: Context, opts: { graceMs?: number; signal?: AbortSignal; hup?: EventTarget } = {}): Promise<void> {
  const { config, log, early } = ctx; // early: parcel's crawl already under way (createContext)
  let lock: StoreLock | undefined;
  try {
    if (opts.signal?.aborted) { log.info(`watch: ${String(opts.signal.reason)}: stopped before starting`); return; }
    const opened = await openStoreLocked(ctx, 'watch');
    lock = opened.lock;
    const { store } = opened;
    checkMissingSources(config, store);
    const agent = new Agent(config, { store, log, early, makeTargets: (c) => createTargets(c, log) });
    const grace = opts.graceMs ?? Math.min(config.timeouts.copyMs, 30_000);
    const stop = () => { log.info(`watch: ${String(opts.signal?.reason)}: stopping`); void agent.stop(grace); };
    const hup = () => { log.info('watch: SIGHUP: reloading the config'); void agent.reload(config.file); };
    const tape = () => void agent.tapeRequest(); // SIGUSR2 from `replica tape open|close`
    opts.signal?.addEventListener('abort', stop, { once: true });
    opts.hup?.addEventListener('hup', hup);
    opts.hup?.addEventListener('tape', tape);
    // a person at a terminal sees what the agent is doing; journald and pipes get the log lines only
    const live = process.stderr.isTTY && !ctx.opts.json ? statusLine(process.stderr, () => agent.liveStatus()) : undefined;
    try {
      if (opts.signal?.aborted) stop();
      else await agent.start();
      await agent.stopped;
    } finally {
      live?.stop();
      opts.signal?.removeEventListener('abort', stop);
      opts.hup?.removeEventListener('hup', hup);
      opts.hup?.removeEventListener('tape', tape);
    }
  } finally {
    await early?.close(); // on every way out; nothing once the agent has it (attached)
    lock?.release();
  }
}
