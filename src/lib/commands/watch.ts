import { Agent } from '../agent/agent.js';
import { type Context, checkMissingSources, createTargets, openStoreLocked } from './context.js';

/**
 * `replica watch`: take the store lock, start the agent, and run until SIGTERM/SIGINT (then stop cleanly:
 * in-flight copies get `graceMs`, the store is saved) while SIGHUP reloads the config. Resolves when stopped.
 */
export async function watchCommand(ctx: Context, opts: { graceMs?: number } = {}): Promise<void> {
  const { config, log } = ctx;
  const { store, lock } = await openStoreLocked(ctx, 'watch');
  try {
    checkMissingSources(config, store);
    const agent = new Agent(config, { store, log, makeTargets: (c) => createTargets(c, log) });
    const grace = opts.graceMs ?? Math.min(config.timeouts.copyMs, 30_000);
    const stop = (sig: string) => { log.info(`watch: ${sig}: stopping`); void agent.stop(grace); };
    const hup = () => { log.info('watch: SIGHUP: reloading the config'); void agent.reload(config.file); };
    process.on('SIGTERM', stop).on('SIGINT', stop).on('SIGHUP', hup);
    try {
      await agent.start();
      await agent.stopped;
    } finally {
      process.off('SIGTERM', stop).off('SIGINT', stop).off('SIGHUP', hup);
    }
  } finally {
    lock.release();
  }
}
