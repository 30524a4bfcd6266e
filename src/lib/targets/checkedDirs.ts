/**
 * The directories a target has checked (made, no symlink between the base and them) since the last batch, and
 * those whose stale temp files this process removed. Each kind's directory code extends this: one preparation
 * per directory at a time, shared by concurrent puts (a second put into the same new directory waits for it,
 * or the first-use sweep could delete that put's temp file).
 */
export abstract class CheckedDirs {
  private checked = new Map<string, Promise<void>>();
  private readonly swept = new Set<string>();

  /** Check every directory again from the next put on (a batch is over: someone may swap one meanwhile). */
  forget(): void {
    this.checked = new Map();
  }

  /**
   * Run `make` for `dir` unless it ran since forget(); then, on its first use in this process, `sweep` it (not
   * when `make` resolved true: it created the directory, so no temp file of an earlier run can be there). A
   * failed sweep fails the preparation, or with `sweepMayFail` is tried again on the next use.
   */
  protected once(dir: string, make: () => Promise<boolean | void>, sweep: () => Promise<unknown>, sweepMayFail = false): Promise<void> {
    let p = this.checked.get(dir);
    if (!p) {
      p = (async () => {
        if ((await make()) === true) this.swept.add(dir);
        if (!this.swept.has(dir)) {
          try {
            await sweep();
            this.swept.add(dir);
          } catch (err) {
            if (!sweepMayFail) throw err;
          }
        }
      })();
      this.checked.set(dir, p);
      p.catch(() => this.checked.delete(dir));
    }
    return p;
  }
}
