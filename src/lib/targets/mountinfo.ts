import fs from 'node:fs';

/** Decode the octal escapes (\040 for space...) that /proc/self/mountinfo uses in paths. */
function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Is `dir` (an absolute real path) a mount point? Reads /proc/self/mountinfo; falls back to st_dev. */
export function isMountPoint(dir: string): boolean {
  try {
    const text = fs.readFileSync('/proc/self/mountinfo', 'utf8');
    return text.split('\n').some((line) => unescapeMount(line.split(' ')[4] ?? '') === dir);
  } catch {
    try {
      return fs.statSync(dir).dev !== fs.statSync(`${dir}/..`).dev;
    } catch {
      return false;
    }
  }
}
