import { UsageError } from '../errors.js';
import type { Rec } from '../store/model.js';
import { clearRemoveFailure, codeOn, markIgnored, resetForRetry } from '../store/records.js';
import { type Context, openStoreLocked, targetNames } from './context.js';
import { matcher } from './whereIs.js';

/** What retry and ignore did: how many changed, and the arguments that matched nothing the store knows (said on stderr, exit 1). */
export interface Changed { n: number; unmatched: string[] }

/**
 * `replica retry [--target N] [PATH|GLOB|NAME...]`: failed copies (all of them, or those matching) get their
 * attempts back and are due at once; ignored ones become pending again; a source file deleteLocalAfter could
 * not remove is tried again. Takes the lock. Returns how many files changed (the next pass tries them).
 */
export async function retryCommand(ctx: Context, args: string[], opts: { target?: string } = {}): Promise<Changed> {
  const names = targetNames(ctx.config, opts.target);
  const r = await changeMatching(ctx, 'retry', args, (rec, now) => (names.filter((t) => resetForRetry(rec, t, now)).length + Number(clearRemoveFailure(rec)) ? 1 : 0));
  if (ctx.opts.json) ctx.out.write(`${JSON.stringify({ files: r.n })}\n`);
  else ctx.out.write(`${r.n} file(s) will be tried again by the next pass\n`);
  return r;
}

/**
 * `replica ignore PATH|GLOB|NAME... [--target N] [--reason TEXT]`: the matching files' copies (on N, or on
 * every target) are not owed any more: they do not count against exit 0, and `status` and the monitor list
 * them with when and why. A change of the file's content makes it pending again. Takes the lock. Returns how
 * many copies were ignored.
 */
export async function ignoreCommand(ctx: Context, args: string[], opts: { target?: string; reason?: string } = {}): Promise<Changed> {
  if (!args.length) throw new UsageError('replica ignore: give at least one PATH, GLOB or NAME');
  const names = targetNames(ctx.config, opts.target);
  const r = await changeMatching(ctx, 'ignore', args, (rec, now) => {
    const todo = names.filter((t) => codeOn(rec, t) !== 'v' && codeOn(rec, t) !== 'i');
    for (const t of todo) markIgnored(rec, t, opts.reason ?? '', now);
    return todo.length;
  });
  const n = r.n;
  if (ctx.opts.json) ctx.out.write(`${JSON.stringify({ copies: n })}\n`);
  else ctx.out.write(`${n} cop${n === 1 ? 'y' : 'ies'} ignored${opts.reason ? ` (${opts.reason})` : ''}\n`);
  return r;
}

/**
 * Under the store lock, run `change` on every record matching `args` (all when none) and save the store;
 * `change` returns how many things it changed (0: the record is left as it was). Returns the sum, and the
 * arguments that matched no record (a typo: said as where-is says it).
 */
async function changeMatching(ctx: Context, command: string, args: string[], change: (r: Rec, now: number) => number): Promise<Changed> {
  const tests = args.map(matcher);
  const hit = tests.map(() => false);
  const { store, lock } = await openStoreLocked(ctx, command);
  let n = 0;
  try {
    const now = Date.now();
    for (const [p, r] of store.entries()) {
      if (tests.length) {
        let any = false;
        tests.forEach((t, k) => { if (t(p)) any = hit[k] = true; });
        if (!any) continue;
      }
      const k = change(r, now);
      if (k) { store.set(p, r); n += k; }
    }
    await store.close();
  } finally {
    lock.release();
  }
  const unmatched = args.filter((_, k) => !hit[k]);
  for (const u of unmatched) ctx.log.warn(`${command}: nothing known matches ${u}`);
  return { n, unmatched };
}
