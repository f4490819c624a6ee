/**
 * Multiline aggregation, pure: lines join (with "\n") into one event.
 *
 * - `start`: a line matching the pattern begins a new event; other lines continue the current one
 *   (Java stack traces: `^\d{4}-\d{2}-\d{2}` or `^\S`).
 * - `continuation`: a line matching the pattern continues the current event; other lines begin a
 *   new one (`^\s` for indented continuations).
 *
 * An event is complete only when the line after it arrives, or when the caller flushes it (its
 * timeout, the file's release). Each event records the byte offset where it ends in its file, so
 * a position can point exactly after it.
 */
export interface MultilineRule {
  mode: 'start' | 'continuation';
  pattern: RegExp;
}

export interface MultilineEvent {
  text: string;
  /** Byte offset after the event's last line. */
  end: number;
  /** Whether the bytes after `end` up to the next LF still belong to the (cut) last line. */
  endSkip: boolean;
  /** Some of the event's text was cut at `maxBytes`. */
  truncated: boolean;
}

export class MultilineAggregator {
  private parts: string[] = [];
  private bytes = 0;
  private truncated = false;
  private end = 0;
  private endSkip = false;
  /** When the last line was added (ms). */
  lastAt = 0;

  constructor(
    private readonly rule: MultilineRule,
    private readonly maxBytes: number,
  ) {}

  get pending(): boolean {
    return this.parts.length > 0;
  }

  /**
   * Adds a line of `lineBytes` bytes ending at byte offset `end`; returns the event it completed,
   * if the line begins a new one.
   */
  push(line: string, lineBytes: number, truncated: boolean, end: number, endSkip: boolean, now: number): MultilineEvent | null {
    const matches = this.rule.pattern.test(line);
    const begins = this.rule.mode === 'start' ? matches : !matches;
    let done: MultilineEvent | null = null;
    if (begins || this.parts.length === 0) {
      done = this.flush();
      this.parts.push(line);
      this.bytes = lineBytes;
      this.truncated = truncated;
    } else if (this.bytes + 1 + lineBytes <= this.maxBytes) {
      this.parts.push(line);
      this.bytes += 1 + lineBytes;
      this.truncated ||= truncated;
    } else {
      // Past the event's size limit: the line is consumed but not kept.
      this.truncated = true;
    }
    this.end = end;
    this.endSkip = endSkip;
    this.lastAt = now;
    return done;
  }

  /** The pending event, if any, now complete. */
  flush(): MultilineEvent | null {
    if (this.parts.length === 0) return null;
    const event: MultilineEvent = {
      text: this.parts.length === 1 ? this.parts[0]! : this.parts.join('\n'),
      end: this.end,
      endSkip: this.endSkip,
      truncated: this.truncated,
    };
    this.parts = [];
    this.bytes = 0;
    this.truncated = false;
    return event;
  }
}
