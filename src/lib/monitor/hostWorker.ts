/**
 * Worker thread of the monitor (discover.ts readHosts): reads the stores it is given, strictly read-only, and
 * posts back each one's host report (or why it could not be read), in order.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { readStores } from './discover.js';
import type { Thresholds } from './model.js';

const { stores, t, now } = workerData as { stores: string[]; t: Thresholds; now: number };
parentPort!.postMessage(await readStores(stores, t, now));
