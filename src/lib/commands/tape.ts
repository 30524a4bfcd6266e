import { formatBytes } from '../config/units.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { type TapeAnswer, type TapeRequest, describeAction, leaveRequest, takeAnswer } from '../backup/tapeRequests.js';
import type { TargetConfig } from '../config/schema.js';
import { LockedError, TargetError, UsageError } from '../errors.js';
import { tapeOptions } from '../targets/tape.js';
import { type TapeCatalog, emptyCatalog, fileName, tapeProblem, tapeSummary } from '../targets/tapeCatalog.js';
import { type Archive, hasArchive } from '../targets/target.js';
import { type Context, createTargets, openStoreLocked, openStoreReadOnly } from './context.js';

export type TapeAction = 'list' | 'status' | 'open' | 'close';
const ACTIONS: readonly string[] = ['list', 'status', 'open', 'close'];

/** The tape target a `tape` command acts on: --target, else the only one configured. */
function tapeTarget(ctx: Context, only?: string): string {
  const tapes = ctx.config.targets.filter((t) => t.kind === 'tape').map((t) => t.name);
  if (only !== undefined) {
    if (!tapes.includes(only)) throw new UsageError(`--target: ${JSON.stringify(only)} is not a tape target (tape targets: ${tapes.join(', ') || 'none'})`);
    return only;
  }
  if (tapes.length === 1) return tapes[0];
  throw new UsageError(tapes.length ? `several tape targets (${tapes.join(', ')}): say which with --target` : 'no tape:// target in the config');
}

/**
 * `replica tape list|status [LABEL]|open LABEL [--serial S]|close [LABEL]` (SPEC 11): the tapes of a tape target
 * and their tape files, from the catalog in the store (list and status read it without the lock); `open` makes
 * the loaded tape the one written to (a new label is made ready on the drive), `close` ends writing to it.
 * Returns what it printed as JSON.
 */
export async function tapeCommand(ctx: Context, args: string[], opts: { target?: string; serial?: string } = {}): Promise<unknown> {
  const [action, label, ...rest] = args;
  if (!ACTIONS.includes(action)) throw new UsageError(`tape: expected list, status, open or close, got ${JSON.stringify(action)}`);
  if (rest.length || (action === 'list' && label !== undefined)) throw new UsageError(`tape ${action}: too many arguments`);
  if (action === 'open' && label === undefined) throw new UsageError('tape open: which tape? replica tape open LABEL');
  const name = tapeTarget(ctx, opts.target);
  const cfg = ctx.config.targets.find((t) => t.name === name)!;
  if (action === 'list' || action === 'status') {
    const store = await openStoreReadOnly(ctx);
    const c = store.meta.tape?.[name] ?? emptyCatalog();
    const out = action === 'list' ? listing(name, c, tapeOptions(cfg).capacity) : detail(name, c, tapeOptions(cfg).capacity, label);
    print(ctx, out);
    return out;
  }
  let locked: Awaited<ReturnType<typeof openStoreLocked>>;
  try {
    locked = await openStoreLocked(ctx, `tape ${action}`);
  } catch (err) {
    if (!(err instanceof LockedError && err.command === 'watch')) throw err;
    return askAgent(ctx, err.pid, { target: name, action: action as TapeRequest['action'], ...(label === undefined ? {} : { label }), ...(opts.serial ? { serial: opts.serial } : {}), at: new Date().toISOString() }, cfg);
  }
  const { store, lock } = locked;
  const [target] = createTargets(ctx.config, ctx.log, name, store);
  try {
    const t = target as typeof target & Archive;
    if (!hasArchive(t)) throw new UsageError(`target ${name} is not a tape target`);
    if (action === 'open') await t.openTape(label!, opts.serial);
    else t.closeTape(label);
    await store.close();
  } finally {
    await target.close();
    lock.release();
  }
  const out = listing(name, store.meta.tape![name], tapeOptions(cfg).capacity);
  ctx.log.info(`${describeAction(action, label)}: ${tapeProblem(store.meta.tape![name]) ?? `tape ${out.open} open`}`, { target: name });
  print(ctx, out);
  return out;
}

/** How long `tape open|close` waits for the running agent to answer (its retry tick looks at least every minute). */
const AGENT_ANSWER_MS = 90_000;

/** The agent holds the store: leave it the request, signal it, wait for its answer, then print the catalog it saved. */
async function askAgent(ctx: Context, pid: number, req: TapeRequest, cfg: TargetConfig): Promise<unknown> {
  const dir = ctx.config.store;
  leaveRequest(dir, req);
  try { process.kill(pid, 'SIGUSR2'); } catch { /* gone or not ours: its retry tick (or the next agent) takes it */ }
  ctx.log.info(`tape ${req.action}: replica watch (pid ${pid}) holds the store; asked it to do it`);
  const end = Date.now() + AGENT_ANSWER_MS;
  let answer: TapeAnswer | undefined;
  while (!(answer = takeAnswer(dir)) && Date.now() < end) await sleep(100);
  if (!answer) throw new TargetError(`tape ${req.action}: replica watch (pid ${pid}) did not answer within ${AGENT_ANSWER_MS / 1000} s; the request stays and is applied when it next looks`, { target: req.target, errorClass: 'timeout' });
  if (!answer.ok) throw new TargetError(`tape ${req.action}: ${answer.error}`, { target: req.target, errorClass: 'other' });
  const store = await openStoreReadOnly(ctx);
  const out = listing(req.target, store.meta.tape?.[req.target] ?? emptyCatalog(), tapeOptions(cfg).capacity);
  print(ctx, out);
  return out;
}

interface Listing { target: string; open: string | null; problem?: string; capacity?: number; tapes: ReturnType<typeof tapeSummary> }

function listing(target: string, c: TapeCatalog, capacity?: number): Listing {
  const problem = tapeProblem(c);
  return { target, open: c.tapes.find((t) => t.state === 'open')?.label ?? null, ...(problem ? { problem } : {}), ...(capacity ? { capacity } : {}), tapes: tapeSummary(c) };
}

function detail(target: string, c: TapeCatalog, capacity: number | undefined, label?: string): Listing & { files: TapeCatalog['files'] } {
  const files = c.files.filter((f) => label === undefined || f.label === label);
  if (label !== undefined && !c.tapes.some((t) => t.label === label)) throw new UsageError(`tape status: no tape ${JSON.stringify(label)} in the catalog of ${target} (tapes: ${c.tapes.map((t) => t.label).join(', ') || 'none'})`);
  const l = listing(target, c, capacity);
  return { ...l, tapes: l.tapes.filter((t) => label === undefined || t.label === label), files };
}

const plural = (n: number, what: string): string => `${n} ${what}${n === 1 ? '' : 's'}`;

function print(ctx: Context, out: Listing & { files?: TapeCatalog['files'] }): void {
  if (ctx.opts.json) { ctx.out.write(`${JSON.stringify(out)}\n`); return; }
  const w = (s: string) => ctx.out.write(`${s}\n`);
  w(`${out.target}: ${out.problem ?? `tape ${out.open} open`}`);
  for (const t of out.tapes) {
    w(`  ${t.label.padEnd(10)} ${t.state.padEnd(6)} ${formatBytes(t.bytes).padStart(10)}${out.capacity ? ` of ${formatBytes(out.capacity)}` : ''}  ${plural(t.tapeFiles, 'tape file')} (${t.confirmedFiles} confirmed, ${t.unusableFiles} unusable), ${plural(t.members, 'member')}${t.serial ? `, serial ${t.serial}` : ''}, opened ${t.openedAt}${t.fullAt ? `, full ${t.fullAt}` : ''}${t.closedAt ? `, closed ${t.closedAt}` : ''}`);
  }
  for (const f of out.files ?? []) {
    w(`  ${f.label}/${fileName(f.number)}  ${f.state.padEnd(9)} ${formatBytes(f.bytes).padStart(10)}  ${plural(f.members.length, 'member')}${f.confirmedAt ? `, confirmed ${f.confirmedAt}` : ''}${f.reason ? `: ${f.reason}` : ''}`);
  }
}
