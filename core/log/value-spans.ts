/**
 * Value spans (ValueSpans) as a reader builds them, shared by the backends' values-only reads.
 */
import type { ValueSpans } from './types.js';

/** Collects the value ranges of records read into one buffer (see ValueSpans). */
export class SpanBuilder {
  starts: Uint32Array;
  ends: Uint32Array;
  count = 0;
  bytes = 0;

  /**
   * `capacity`: the values expected, when known (a batch's or frame's record count); else sized for
   * records of about 128 bytes with their framing, so a 4 MiB read of log lines grows once at most.
   */
  constructor(
    readonly buf: Buffer,
    capacity = Math.max(256, buf.length >>> 7),
  ) {
    const n = Math.max(1, capacity);
    this.starts = new Uint32Array(n);
    this.ends = new Uint32Array(n);
  }

  push(start: number, end: number): void {
    if (this.count === this.starts.length) {
      const starts = new Uint32Array(this.count * 2);
      starts.set(this.starts);
      this.starts = starts;
      const ends = new Uint32Array(this.count * 2);
      ends.set(this.ends);
      this.ends = ends;
    }
    this.starts[this.count] = start;
    this.ends[this.count++] = end;
    this.bytes += end - start;
  }

  spans(): ValueSpans {
    return { buf: this.buf, starts: this.starts, ends: this.ends, count: this.count };
  }
}
