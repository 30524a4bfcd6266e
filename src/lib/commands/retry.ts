import { UsageError } from '../errors.js';
import type { Rec } from '../store/model.js';
import { clearRemoveFailure, codeOn, markIgnored, resetForRetry } from '../store/records.js';
import { type Context, openStoreLocked, targetNames } from './context.js';
import { matcher } from './whereIs.js';

/**
 * `replica retry [--target N] [PATH|GLOB|NAME...]`: failed copies (all of them, or those matching) get their
 * attempts back and are due at once; ignored ones become pending again; a source file deleteLocalAfter could
 * not remove is tried again. Takes the lock. Returns how many
 * copies changed (the next pass tries them).
 */
export async function retryCommand(ctx: Context, args: string[], opts: { target?: string } = {}): Promise<number> {
  const names = targetNames(ctx.config, opts.target);
  const n = await changeMatching(ctx, 'retry', args, (r, now) => (names.filter((t) => resetForRetry(r, t, now)).length + Number(clearRemoveFailure(r)) ? 1 : 0));
  if (ctx.opts.json) ctx.out.write(`${JSON.stringify({ files: n })}\n`);
  else ctx.out.write(`${n} file(s) will be tried again by the next pass\n`);
  return n;
}

/**
 * `replica ignore PATH|GLOB|NAME... [--target N] [--reason TEXT]`: the matching files' copies (on N, or on
 * every target) are not owed any more: they do not count against exit 0, and `status` and the monitor list
 * them with when and why. A change of the file's content makes it pending again. Takes the lock. Returns how
 * many copies were ignored.
 */
export async function ignoreCommand(ctx: Context, args: string[], opts: { target?: string; reason?: string } = {}): Promise<number> {
  if (!args.length) throw new UsageError('replica ignore: give at least one PATH, GLOB or NAME');
  const names = targetNames(ctx.config, opts.target);
  const n = await changeMatching(ctx, 'ignore', args, (r, now) => {
    const todo = names.filter((t) => codeOn(r, t) !== 'v' && codeOn(r, t) !== 'i');
    for (const t of todo) markIgnored(r, t, opts.reason ?? '', now);
    return todo.length;
  });
  if (ctx.opts.json) ctx.out.write(`${JSON.stringify({ copies: n })}\n`);
  else ctx.out.write(`${n} cop${n === 1 ? 'y' : 'ies'} ignored${opts.reason ? ` (${opts.reason})` : ''}\n`);
  return n;
}

/**
 * Under the store lock, run `change` on every record matching `args` (all when none) and save the store;
 * `change` returns how many things it changed (0: the record is left as it was). Returns the sum.
 */
async function changeMatching(ctx: Context, command: string, args: string[], change: (r: Rec, now: number) => number): Promise<number> {
  const tests = args.map(matcher);
  const { store, lock } = await openStoreLocked(ctx, command);
  let n = 0;
  try {
    const now = Date.now();
    for (const [p, r] of store.entries()) {
      if (tests.length && !tests.some((t) => t(p))) continue;
      const k = change(r, now);
      if (k) { store.set(p, r); n += k; }
    }
    await store.close();
  } finally {
    lock.release();
  }
  return n;
}
