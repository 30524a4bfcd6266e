import micromatch from 'micromatch';

const OPTS = { dot: true };

/** Include/exclude decision for paths relative to a source root (micromatch globs, dotfiles matched). */
export class PathFilter {
  private readonly inc?: (s: string) => boolean;
  private readonly exc?: (s: string) => boolean;

  constructor(include: string[], exclude: string[]) {
    if (include.length) this.inc = micromatch.matcher(include.length === 1 ? include[0] : `{${include.join(',')}}`, OPTS);
    if (exclude.length) this.exc = micromatch.matcher(exclude.length === 1 ? exclude[0] : `{${exclude.join(',')}}`, OPTS);
  }

  /** Should the file at `rel` be backed up? */
  file(rel: string): boolean {
    return !(this.exc?.(rel)) && (this.inc ? this.inc(rel) : true);
  }

  /** Should the directory at `rel` be descended into? (An exclude that matches it prunes all below it.) */
  dir(rel: string): boolean {
    return !(this.exc && (this.exc(rel) || this.exc(`${rel}/`)));
  }
}
