import { SMALL_FILE } from '../hash/xxh64.js';
import { type LocalIo, localIo } from './localIo.js';
import { type PutSource, SettledFile } from './source.js';

/** packAhead lays out this many files at a time (or PACK_BATCH_BYTES), PACK_AHEAD batches ahead of the one asked for. */
const PACK_BATCH = 256;
const PACK_BATCH_BYTES = 8 << 20;
const PACK_AHEAD = 2;
/** A batch that takes this long is a hung source disk: its worker is replaced. */
const PACK_TIMEOUT_MS = 30 * 60_000;
const EMPTY = Buffer.alloc(0);
/** The tars packAhead handed out, until given back (giveBack). */
const TARS = new WeakSet<Buffer>();

/**
 * A chunk written and no longer held by the writer: when it is a tar packAhead handed out, its memory goes back
 * to the LocalIo workers for a later batch (LocalIo.recycle). Any other chunk is left alone.
 */
export function giveBack(chunk: Buffer): void {
  if (TARS.delete(chunk)) localIo().recycle(chunk);
}

/** A batch laid out by LocalIo.packMany: its tar, and the items it was asked for (their `name` and source), in order. */
export type Packed = Awaited<ReturnType<LocalIo['packMany']>> & { items: { name: string; src: SettledFile }[] };
/** One file of a batch: its mode and xxh64 (its member is in the batch's tar), or why it is not there. */
export type PackedRead = Packed['reads'][number];

/**
 * Small settled files laid out as tar members (named `name`) in the LocalIo workers (LocalIo.packMany: read,
 * proven and looked at again there, as a put reads them here; their headers by tar-stream's own encoders),
 * PACK_BATCH files at a time, PACK_AHEAD batches ahead. `write` gets each batch once, when get() is first asked
 * for one of its files, and every get() of that batch waits for it: the caller writes the tar there, in one
 * piece. A batch is a run of such files next to each other in `items` (undefined: an item the caller leaves
 * out), so a caller that writes the other items itself, in order, keeps the items' order in its tar. get() is
 * asked in the items' order, one at a time; undefined for a file the caller reads itself. Undefined for too
 * few files to wait for a worker (LocalIo.worth). Packing in the main thread took ~85 us per member (tar-stream's
 * pack and its streams) besides the reads.
 */
export function packAhead(target: string, items: ({ name: string; src: PutSource } | undefined)[], write: (packed: Packed) => Promise<void>):
  { get(src: PutSource): Promise<PackedRead> | undefined } | undefined {
  const mine = (s: PutSource | undefined): s is SettledFile => s instanceof SettledFile && !s.isOpen && s.size <= SMALL_FILE;
  const count = items.reduce((n, x) => n + (mine(x?.src) ? 1 : 0), 0);
  if (count < 2 || !localIo().worth(count)) return undefined;
  const batches: { name: string; src: SettledFile }[][] = [];
  const where = new Map<PutSource, [number, number]>();
  let bytes = Infinity;
  let run = false; // the last item was packed: a batch goes on only across a run of them
  for (const x of items) {
    if (!x || !mine(x.src)) { run = false; continue; }
    if (!run || bytes >= PACK_BATCH_BYTES || batches[batches.length - 1].length >= PACK_BATCH) { batches.push([]); bytes = 0; }
    run = true;
    const batch = batches[batches.length - 1];
    where.set(x.src, [batches.length - 1, batch.length]);
    batch.push({ name: x.name, src: x.src });
    bytes += x.src.size;
  }
  const jobs: (Promise<Packed> | undefined)[] = [];
  const written: Promise<void>[] = [];
  const start = (b: number) => {
    if (b >= batches.length || jobs[b]) return;
    const batch = batches[b];
    jobs[b] = localIo().packMany(target, batch.map(({ name, src }) => ({ label: src.path, size: src.size, hash: src.hash, path: src.path, identity: src.identity, name, mtimeMs: src.mtimeMs ?? Date.now() })), PACK_TIMEOUT_MS)
      .then((p) => { TARS.add(p.tar); return { ...p, items: batch }; });
    jobs[b]!.catch(() => undefined); // its items say it
  };
  return {
    get: (src) => {
      const at = where.get(src);
      if (!at) return undefined;
      const [b, k] = at;
      for (let j = b; j <= b + PACK_AHEAD; j++) start(j);
      return (async () => {
        let packed: Packed;
        try {
          packed = await jobs[b]!;
        } catch (err) {
          return { err: err as Error };
        }
        await (written[b] ??= write(packed).finally(() => { packed.tar = EMPTY; })); // its bytes go once written
        return packed.reads[k];
      })();
    },
  };
}
