/**
 * A log writer for rotation tests: appends numbered lines (`line-<n> ...`) continuously through a
 * file descriptor kept open, like an application does, and rotates the file the two ways
 * logrotate does. Everything is synchronous, so a rotation never interleaves with a write.
 */
import { closeSync, copyFileSync, ftruncateSync, openSync, renameSync, writeSync } from 'node:fs';

export class LineWriter {
  next = 0;
  rotations = 0;
  private fd: number;
  private timer: NodeJS.Timeout | null = null;
  private reopenTimer: NodeJS.Timeout | null = null;

  constructor(
    readonly path: string,
    private readonly padding = 40,
  ) {
    this.fd = openSync(path, 'a');
  }

  /** Writes `n` lines now. */
  write(n: number): void {
    let s = '';
    for (let i = 0; i < n; i++) s += `line-${this.next++} ${'x'.repeat(this.padding)}\n`;
    writeSync(this.fd, s);
  }

  /** Writes `perTick` lines every `tickMs` until stopped. */
  start(perTick = 20, tickMs = 2): void {
    this.timer = setInterval(() => this.write(perTick), tickMs);
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /**
   * rename+create: the file moves to `<path>.<n>`; the writer goes on writing into the renamed
   * file for `reopenAfterMs` (as an application does until it is told to reopen), then creates
   * a new file at `path`.
   */
  rotateRename(reopenAfterMs = 20): string | null {
    if (this.reopenTimer !== null) return null; // the last rotation is not finished
    const to = `${this.path}.${++this.rotations}`;
    renameSync(this.path, to);
    this.reopenTimer = setTimeout(() => {
      this.reopenTimer = null;
      closeSync(this.fd);
      this.fd = openSync(this.path, 'a');
    }, reopenAfterMs);
    return to;
  }

  /** copytruncate: the file is copied to `<path>.<n>`, then truncated in place (O_APPEND writes go on at 0). */
  rotateCopyTruncate(): string | null {
    if (this.reopenTimer !== null) return null; // a rename rotation is not finished
    const to = `${this.path}.${++this.rotations}`;
    copyFileSync(this.path, to);
    ftruncateSync(this.fd, 0);
    return to;
  }

  close(): void {
    this.stop();
    if (this.reopenTimer !== null) {
      clearTimeout(this.reopenTimer);
      this.reopenTimer = null;
      closeSync(this.fd);
      this.fd = openSync(this.path, 'a');
    }
    closeSync(this.fd);
  }
}
