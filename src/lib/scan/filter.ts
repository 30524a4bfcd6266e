import micromatch from 'micromatch';

const OPTS = { dot: true };
/** Patterns compiled into one regular expression at most: bounded groups, never one giant pattern. */
const GROUP = 200;

/**
 * Normalize a user pattern: globs are relative to the source root, so a leading `./` or `/` means the same
 * as none (`/data/*.dat` is `data/*.dat`).
 */
export function normalizePattern(p: string): string {
  return p.replace(/^(?:\.\/|\/)+/, '');
}

/**
 * A list of micromatch globs with micromatch's list semantics: a path matches when it matches at least one
 * positive pattern and no negated (`!`) one; a list of negations only matches everything they do not.
 * Each pattern is compiled on its own (joining them into one `{a,b}` pattern changes what `**\/` matches:
 * `**\/*.dat` would no longer match a top-level `d.dat`), then the compiled expressions are combined in
 * groups of at most GROUP, so thousands of patterns cost a few regular expressions per path and no pattern
 * hits picomatch's input limit. Throws (from micromatch) for a pattern it cannot compile.
 */
export class PatternList {
  private readonly pos: RegExp[];
  private readonly neg: RegExp[];
  readonly empty: boolean;

  constructor(patterns: string[]) {
    const pos: RegExp[] = [];
    const neg: RegExp[] = [];
    for (const raw of patterns) {
      const negated = raw.startsWith('!') && !raw.startsWith('!(');
      (negated ? neg : pos).push(micromatch.makeRe(normalizePattern(negated ? raw.slice(1) : raw), OPTS));
    }
    this.pos = group(pos);
    this.neg = group(neg);
    this.empty = patterns.length === 0;
  }

  match(rel: string): boolean {
    if (this.empty) return false;
    if (this.neg.some((r) => r.test(rel))) return false;
    return this.pos.length === 0 || this.pos.some((r) => r.test(rel));
  }
}

function group(res: RegExp[]): RegExp[] {
  const out: RegExp[] = [];
  for (let i = 0; i < res.length; i += GROUP) {
    const part = res.slice(i, i + GROUP);
    out.push(part.length === 1 ? part[0] : new RegExp(part.map((r) => `(?:${r.source})`).join('|'), part[0].flags));
  }
  return out;
}

/** Include/exclude decision for paths relative to a source root (micromatch globs, dotfiles matched). */
export class PathFilter {
  private readonly inc: PatternList;
  private readonly exc: PatternList;

  constructor(include: string[], exclude: string[]) {
    this.inc = new PatternList(include);
    this.exc = new PatternList(exclude);
  }

  /** The filter of one source: its own include, its own exclude plus the config's global exclude. */
  static forSource(src: { include: string[]; exclude: string[] }, globalExclude: string[]): PathFilter {
    return new PathFilter(src.include, [...globalExclude, ...src.exclude]);
  }

  /** Should the file at `rel` be backed up? */
  file(rel: string): boolean {
    return !this.exc.match(rel) && (this.inc.empty || this.inc.match(rel));
  }

  /** Should the directory at `rel` be descended into? (An exclude that matches it prunes all below it.) */
  dir(rel: string): boolean {
    return !(this.exc.match(rel) || this.exc.match(`${rel}/`));
  }
}
