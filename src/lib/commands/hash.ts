import { messageOf } from '../errors.js';
import { hashFile, initHasher } from '../hash/xxh64.js';

/**
 * `replica hash FILE...`: print `<xxh64>  <file>` exactly as `xxhsum -H1` does, with the agent's own
 * hashing code. Unreadable files are reported on stderr (plainly, as xxhsum does: no logger is loaded);
 * returns the number that failed.
 */
export async function hashCommand(files: string[], out: NodeJS.WritableStream, json = false, err: NodeJS.WritableStream = process.stderr): Promise<number> {
  await initHasher();
  let failed = 0;
  const results: { file: string; hash?: string; error?: string }[] = [];
  for (const file of files) {
    try {
      const { hash } = await hashFile(file);
      results.push({ file, hash });
      if (!json) out.write(`${hash}  ${file}\n`);
    } catch (e) {
      failed++;
      results.push({ file, error: messageOf(e) });
      err.write(`replica: cannot hash ${file}: ${messageOf(e)}\n`);
    }
  }
  if (json) out.write(`${JSON.stringify(results)}\n`);
  return failed;
}
