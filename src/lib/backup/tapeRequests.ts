import fs from 'node:fs';
import path from 'node:path';
import { messageOf } from '../errors.js';
import type { Logger } from '../log.js';
import { writeFileAtomicSync } from '../store/atomicFile.js';
import { type Target, hasArchive } from '../targets/target.js';

/**
 * `replica tape open|close` while `replica watch` holds the store lock: the command cannot change the store the
 * agent owns, so it leaves a request in the store directory and signals the agent (SIGUSR2); the agent applies it
 * on its work chain (never in the middle of a tape file's batch) and answers in a second file. The agent also
 * looks for a request on its retry tick, so a lost signal costs at most a minute.
 */
export interface TapeRequest { target: string; action: 'open' | 'close'; label?: string; serial?: string; at: string }
export interface TapeAnswer extends TapeRequest { ok: boolean; error?: string }

/** `tape open T001`, `tape close`: an action as the log says it. */
export const describeAction = (action: string, label?: string): string => `tape ${action}${label === undefined ? '' : ` ${label}`}`;

const REQUEST = 'tape-request.json';
const ANSWER = 'tape-request.done.json';

/** Leave a request for the agent (replacing an unanswered one) and clear an old answer. */
export function leaveRequest(storeDir: string, req: TapeRequest): void {
  fs.rmSync(path.join(storeDir, ANSWER), { force: true });
  writeFileAtomicSync(path.join(storeDir, REQUEST), JSON.stringify(req));
}

/** The agent's answer to the request, once given (it is taken: read and removed). */
export function takeAnswer(storeDir: string): TapeAnswer | undefined {
  const file = path.join(storeDir, ANSWER);
  try {
    const a = JSON.parse(fs.readFileSync(file, 'utf8')) as TapeAnswer;
    fs.rmSync(file, { force: true });
    return a;
  } catch {
    return undefined;
  }
}

/** In the agent: apply a waiting request to its tape target, and answer it. True when there was one. */
export async function applyRequest(storeDir: string, targets: Target[], log: Logger): Promise<boolean> {
  const file = path.join(storeDir, REQUEST);
  let req: TapeRequest;
  try {
    req = JSON.parse(fs.readFileSync(file, 'utf8')) as TapeRequest;
  } catch {
    return false;
  }
  const answer: TapeAnswer = { ...req, ok: false };
  try {
    const t = targets.find((x) => x.name === req.target);
    if (!t || !hasArchive(t)) throw new Error(`no tape target ${JSON.stringify(req.target)} in the running config`);
    if (req.action === 'open') await t.openTape(String(req.label), req.serial);
    else t.closeTape(req.label);
    answer.ok = true;
    log.info(`${describeAction(req.action, req.label)} on ${req.target}: done (asked by replica tape)`, { target: req.target });
  } catch (err) {
    answer.error = messageOf(err);
    log.error(`${describeAction(req.action, req.label)} on ${req.target}: ${answer.error}`, { target: req.target });
  }
  writeFileAtomicSync(path.join(storeDir, ANSWER), JSON.stringify(answer));
  fs.rmSync(file, { force: true });
  return true;
}
