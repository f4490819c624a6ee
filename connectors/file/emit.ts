/**
 * Bytes read from a file → events in a batch, with the stream's offsets moved past exactly what
 * the batch holds. No I/O: the source reads, this frames, joins (multiline), decodes and formats.
 */
import { isUtf8 } from 'node:buffer';
import { EncodedRecord, type SlabPool, type SourceRecord, type ValueRun } from '../sdk.js';
import { frameLines, partialLineEnd } from './framing.js';
import { formatLine, type FileFormat } from './format.js';
import type { Tail } from './tail.js';
import { TextJsonEncoder } from './text-json.js';

/** Counters of the source's problems and events (docs/connectors/file-source.md, "Counters"). */
export interface FileSourceStats {
  /** Events emitted. */
  events: number;
  /** Lines (or multiline events) cut at max_line_bytes. */
  truncated_lines: number;
  /** Lines with invalid UTF-8, replaced by U+FFFD. */
  invalid_utf8_lines: number;
  /** json/logfmt lines that did not parse (kept raw with parse_error, or sent to the DLQ). */
  parse_errors: number;
  /** Partial last lines emitted without their newline (timeout, rotation, truncation). */
  partial_lines_flushed: number;
  /** Files found shorter than the offset read (copytruncate or truncation), read again from 0. */
  file_truncations: number;
  /** Copies of a file (same first bytes, other inode) continued where the original stopped. */
  copies_continued: number;
  /** Copies of a file still being read, not read a second time. */
  duplicates_ignored: number;
  /** Rotated or deleted files read to their end and released. */
  rotated_files_drained: number;
  files_closed_inactive: number;
  /** Files that could not be opened (permissions); tried again when they change. */
  unreadable_files: number;
  /** Files that vanished (deleted or rotated out of reach while closed) possibly with unread bytes. */
  files_lost: number;
  /** Files that could not be opened for another reason than permissions (logged once per file and change). */
  open_errors: number;
  /** Reads that failed (I/O errors): the file is closed and tried again when it changes. */
  read_errors: number;
  /** Directories under the globs that could not be listed (logged once per directory and error). */
  list_errors: number;
  /** Bytes read from files. */
  bytes_read: number;
}

export function emptyStats(): FileSourceStats {
  return {
    events: 0,
    truncated_lines: 0,
    invalid_utf8_lines: 0,
    parse_errors: 0,
    partial_lines_flushed: 0,
    file_truncations: 0,
    copies_continued: 0,
    duplicates_ignored: 0,
    rotated_files_drained: 0,
    files_closed_inactive: 0,
    unreadable_files: 0,
    files_lost: 0,
    open_errors: 0,
    read_errors: 0,
    list_errors: 0,
    bytes_read: 0,
  };
}

/** A run of text events of one file (SourceRecord.run), growing while lines come in. */
class TextRun implements SourceRecord {
  readonly value = undefined;
  readonly run: ValueRun;

  constructor(
    buf: Uint8Array,
    start: number,
    readonly timestamp: number,
    readonly templateView: Record<string, unknown>,
  ) {
    this.run = { buf, start, ends: new Uint32Array(256), count: 0 };
  }

  add(end: number): void {
    const run = this.run;
    if (run.count === run.ends.length) {
      const grown = new Uint32Array(run.ends.length * 4);
      grown.set(run.ends);
      run.ends = grown;
    }
    run.ends[run.count++] = end;
  }

  /** Where the next value must start to belong to this run. */
  get next(): number {
    const run = this.run;
    return run.count === 0 ? run.start : run.ends[run.count - 1]!;
  }
}

export class Batch {
  private readonly list: SourceRecord[] = [];
  /** Events in the batch (a run counts as its values). */
  count = 0;
  bytes = 0;
  /** Ingest time of every event in the batch. */
  readonly iso: string;
  /** For `format: text`: events encoded as JSON straight from the bytes (made on first use). */
  private encoder: TextJsonEncoder | null = null;
  /** The run text events are added to (when the runtime takes runs), or null. */
  private run: TextRun | null = null;

  constructor(
    private readonly maxLines: number,
    private readonly maxBytes: number,
    readonly now: number,
    /** Text events go in runs (SourceRecord.run) instead of a record each. */
    private readonly runs = false,
    /** Where the text encoder's chunks come from (default: fresh ones). */
    private readonly chunks?: SlabPool,
  ) {
    this.iso = new Date(now).toISOString();
  }

  /** The batch's records, in order. */
  get records(): SourceRecord[] {
    this.run = null;
    return this.list;
  }

  /** Appends a record (after the text events before it). */
  push(r: SourceRecord, bytes: number): void {
    this.run = null;
    this.list.push(r);
    this.count++;
    this.bytes += bytes;
  }

  /** A `format: text` event of a valid UTF-8 line, encoded from its bytes. */
  pushText(host: string, file: string, buf: Buffer, start: number, end: number): void {
    const enc = (this.encoder ??= new TextJsonEncoder(host, this.iso, this.chunks));
    this.count++;
    this.bytes += end - start;
    if (!this.runs) {
      this.list.push(new EncodedRecord(enc.encode(file, buf, start, end), this.now, enc.view));
      return;
    }
    const first = enc.write(file, buf, start, end);
    let run = this.run;
    // Same chunk, same file, right after the last value: the same run.
    if (run === null || run.run.buf !== enc.current || run.templateView !== enc.view || run.next !== first) {
      run = this.run = new TextRun(enc.current, first, this.now, enc.view);
      this.list.push(run);
    }
    run.add(enc.end);
  }

  /** The pool slabs the batch's encoded events live in: free again once the batch is durable. */
  get slabs(): Buffer[] {
    return this.encoder?.slabs ?? [];
  }

  get full(): boolean {
    return this.count >= this.maxLines || this.bytes >= this.maxBytes;
  }
}

export interface EmitterOptions {
  format: FileFormat;
  onParseError: 'keep' | 'dlq';
  maxLineBytes: number;
  host: string;
}

export class Emitter {
  constructor(
    private readonly o: EmitterOptions,
    private readonly stats: FileSourceStats,
  ) {}

  /**
   * Frames the tail's carry into the batch. `fill`: until the batch is full. `lines`: every
   * complete line, batch limits aside (the bytes are about to become unreadable). `final`: that,
   * and the partial last line and a pending multiline event too — the file has nothing more to
   * give (timeout, rotation, truncation). Returns whether the committed offset moved.
   */
  consume(t: Tail, batch: Batch, mode: 'fill' | 'lines' | 'final'): boolean {
    const final = mode === 'final';
    const all = mode !== 'fill';
    const before = t.offset;
    const beforeSkip = t.skip;
    const buf = t.carry;
    if (buf !== null && buf.length > 0) {
      const base = t.scanPos;
      // One validity check for every complete line; lines are checked one by one only if it fails.
      const lastLf = buf.lastIndexOf(0x0a);
      const validUpTo = lastLf >= 0 && isUtf8(buf.subarray(0, lastLf + 1)) ? lastLf : -1;
      const r = frameLines(buf, 0, t.scanSkip, this.o.maxLineBytes, (s, e, next, truncated, skipAfter) => {
        this.line(t, batch, buf, s, e, base + next, truncated, skipAfter, e <= validUpTo);
        return all || !batch.full;
      });
      t.scanPos = base + r.pos;
      t.scanSkip = r.skipping;
      let rest: Buffer | null = r.pos < buf.length ? buf.subarray(r.pos) : null;
      t.carryHasLines = r.stopped && rest !== null;
      if (rest !== null && final && !r.stopped) {
        // The partial last line: it ends here.
        this.stats.partial_lines_flushed++;
        this.line(t, batch, rest, 0, partialLineEnd(rest, 0), t.scanPos + rest.length, false, false, false);
        t.scanPos += rest.length;
        rest = null;
      } else if (rest !== null && !t.carryHasLines && rest.length * 4 < buf.length) {
        // A partial line waiting for its end: copy it so the big read buffer can go.
        rest = Buffer.from(rest);
      }
      t.keepCarry(rest);
    }
    if (final) this.flushEvent(t, batch);
    if (t.agg === null || !t.agg.pending) {
      t.offset = t.scanPos;
      t.skip = t.scanSkip;
    }
    return t.offset !== before || t.skip !== beforeSkip;
  }

  /** Emits the pending multiline event, if any (its timeout passed, or the file ends here). */
  flushEvent(t: Tail, batch: Batch): boolean {
    const ev = t.agg?.flush() ?? null;
    if (ev === null) return false;
    if (ev.truncated) this.stats.truncated_lines++;
    this.emit(t, batch, ev.text, ev.text.length);
    t.offset = t.scanPos;
    t.skip = t.scanSkip;
    return true;
  }

  private line(t: Tail, batch: Batch, buf: Buffer, s: number, e: number, end: number, truncated: boolean, skipAfter: boolean, valid: boolean): void {
    const utf8 = valid || isUtf8(buf.subarray(s, e));
    if (!utf8) this.stats.invalid_utf8_lines++;
    if (t.agg !== null) {
      const ev = t.agg.push(buf.toString('utf8', s, e), e - s, truncated, end, skipAfter, batch.now);
      if (ev !== null) {
        if (ev.truncated) this.stats.truncated_lines++;
        this.emit(t, batch, ev.text, ev.text.length);
        t.offset = ev.end;
        t.skip = ev.endSkip;
      }
      return;
    }
    if (truncated) this.stats.truncated_lines++;
    if (e === s) return; // empty lines carry nothing
    if (this.o.format === 'text' && utf8) {
      this.stats.events++;
      batch.pushText(this.o.host, t.path, buf, s, e);
      return;
    }
    this.emit(t, batch, buf.toString('utf8', s, e), e - s);
  }

  private emit(t: Tail, batch: Batch, text: string, bytes: number): void {
    if (text.length === 0) return;
    const { value, parseError, error } = formatLine(this.o.format, text, t.path, this.o.host, batch.iso);
    this.stats.events++;
    if (parseError) {
      this.stats.parse_errors++;
      if (this.o.onParseError === 'dlq') {
        delete value.parse_error;
        batch.push({ value, timestamp: batch.now, deadLetter: { error: error ?? 'does not parse' } }, bytes);
        return;
      }
    }
    batch.push({ value, timestamp: batch.now }, bytes);
  }
}
