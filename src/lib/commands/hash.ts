import fs from 'node:fs';
import { messageOf } from '../errors.js';
import { hashFile, hashStream, initHasher } from '../hash/xxh64.js';

/** One file's hash: `-` is stdin (named `stdin` in the output, as xxhsum names it). */
async function hashOne(file: string, stdin: NodeJS.ReadableStream): Promise<string> {
  return file === '-' ? (await hashStream(stdin as never)).hash : (await hashFile(file)).hash;
}

/**
 * `replica hash FILE...`: print `<xxh64>  <file>` exactly as `xxhsum -H1` does, with the agent's own
 * hashing code (`-`: stdin). Unreadable files are reported on stderr (plainly, as xxhsum does: no logger is
 * loaded); returns the number that failed.
 */
export async function hashCommand(files: string[], out: NodeJS.WritableStream, json = false, err: NodeJS.WritableStream = process.stderr,
  stdin: NodeJS.ReadableStream = process.stdin): Promise<number> {
  await initHasher();
  let failed = 0;
  const results: { file: string; hash?: string; error?: string }[] = [];
  for (const file of files) {
    const name = file === '-' ? 'stdin' : file;
    try {
      const hash = await hashOne(file, stdin);
      results.push({ file: name, hash });
      if (!json) out.write(`${hash}  ${name}\n`);
    } catch (e) {
      failed++;
      results.push({ file: name, error: messageOf(e) });
      err.write(`replica: cannot hash ${name}: ${messageOf(e)}\n`);
    }
  }
  if (json) out.write(`${JSON.stringify(results)}\n`);
  return failed;
}

/** A checksum line as xxhsum -H1 (and replica manifest) writes it; a leading `\` means the name is escaped. */
const LINE = /^(\\?)([0-9a-f]{16}) {2}(.*)$/;

/**
 * `replica hash -c LIST...`: check the files a list names (`<xxh64>  <name>` lines, as `xxhsum -H1` and
 * `replica manifest` write them; GNU escapes undone; `-`: the list on stdin), as `xxhsum -c` does: `name: OK`
 * or `name: FAILED`, unreadable files and the totals, all on stdout as xxhsum writes them. Returns the number of problems (a
 * list with no checksum line is one).
 */
export async function checkCommand(lists: string[], out: NodeJS.WritableStream, json = false, err: NodeJS.WritableStream = process.stderr,
  stdin: NodeJS.ReadableStream = process.stdin): Promise<number> {
  await initHasher();
  let bad = 0; let unreadable = 0; let problems = 0;
  const results: { file: string; ok: boolean; error?: string }[] = [];
  for (const list of lists.length ? lists : ['-']) {
    const src = list === '-' ? 'stdin' : list;
    let text: string;
    try {
      text = list === '-' ? await readAll(stdin) : fs.readFileSync(list, 'utf8');
    } catch (e) {
      err.write(`replica: cannot read ${src}: ${messageOf(e)}\n`);
      problems++;
      continue;
    }
    let found = 0;
    for (const [i, line] of text.split('\n').entries()) {
      const m = LINE.exec(line);
      if (!m) continue;
      found++;
      const name = m[1] ? m[3].replace(/\\(\\|n)/g, (_, c: string) => (c === 'n' ? '\n' : '\\')) : m[3];
      try {
        const ok = (await hashFile(name)).hash === m[2];
        if (!ok) bad++;
        results.push({ file: name, ok });
        if (!json) out.write(`${name}: ${ok ? 'OK' : 'FAILED'}\n`);
      } catch (e) {
        unreadable++;
        results.push({ file: name, ok: false, error: messageOf(e) });
        out.write(`${src}:${i + 1}: Could not open or read '${name}': ${strerror(e)}.\n`);
      }
    }
    if (!found) { err.write(`${src}: no properly formatted xxHash checksum lines found\n`); problems++; }
  }
  // on stdout, as xxhsum -c writes them (only a list without checksum lines is said on stderr)
  if (unreadable && !json) out.write(`${unreadable} listed file${unreadable === 1 ? '' : 's'} could not be read\n`);
  if (bad && !json) out.write(`${bad} computed checksum${bad === 1 ? '' : 's'} did NOT match\n`);
  if (json) out.write(`${JSON.stringify(results)}\n`);
  return bad + unreadable + problems;
}

/** The C library's words for an fs error ("No such file or directory"), as xxhsum prints them. */
function strerror(e: unknown): string {
  const m = /^[A-Z]+: ([^,]+)/.exec(messageOf(e));
  return m ? m[1][0].toUpperCase() + m[1].slice(1) : messageOf(e);
}

async function readAll(s: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}
