/**
 * What an append transaction of the postgres sink writes: the records of a batch, or a values
 * batch (Sink.writeValues / a values span) — the records' JSON bytes without an object per record.
 * Append into a constant table needs nothing of a record but its value and its position.
 */
import type { SinkRecord, SinkValuesBatch, SpanBatch } from '../sdk.js';

export type AppendInput = SinkRecord[] | SinkValuesBatch;

/** A span batch as append input. */
export function inputOf(b: SpanBatch): AppendInput {
  return 'records' in b ? b.records : b;
}

export function rowsOf(input: AppendInput): number {
  return Array.isArray(input) ? input.length : input.nextOffset - input.firstOffset;
}

export function bytesOf(input: AppendInput): number {
  if (!Array.isArray(input)) return input.bytes;
  let n = 0;
  for (const r of input) n += r.raw.length;
  return n;
}

/** The offset of the first record, or undefined when there is none. */
export function firstOffsetOf(input: AppendInput): number | undefined {
  if (Array.isArray(input)) return input[0]?.offset;
  return input.nextOffset > input.firstOffset ? input.firstOffset : undefined;
}

/**
 * A record made from a value's bytes (the general path of a values batch, and errors naming the
 * record): its value, topic, partition and offset are the record's; it has no key or headers, and
 * timestamp 0 (the values path does not read them, and append into a constant table uses neither).
 */
export class ValueRecord implements SinkRecord {
  readonly key = null;
  readonly headers = {};
  readonly timestamp = 0;
  private parsed: unknown = undefined;
  constructor(
    readonly topic: string,
    readonly partition: number,
    readonly offset: number,
    readonly raw: Buffer,
  ) {}
  get value(): unknown {
    return (this.parsed ??= JSON.parse(this.raw.toString('utf8')));
  }
}

/** The input as records (values become ValueRecords). */
export function recordsOf(input: AppendInput): SinkRecord[] {
  if (Array.isArray(input)) return input;
  const out: SinkRecord[] = [];
  let offset = input.firstOffset;
  for (const sp of input.spans) {
    for (let i = 0; i < sp.count; i++) out.push(new ValueRecord(input.topic, input.partition, offset++, sp.buf.subarray(sp.starts[i]!, sp.ends[i]!)));
  }
  return out;
}

/** The input without its records below `offset` (written by an earlier transaction). */
export function below(input: AppendInput, offset: number): AppendInput {
  const first = firstOffsetOf(input);
  if (first === undefined || offset <= first) return input;
  if (Array.isArray(input)) return input.filter((r) => r.offset >= offset);
  let skip = Math.min(offset, input.nextOffset) - input.firstOffset;
  const spans = [];
  let bytes = input.bytes;
  for (const sp of input.spans) {
    if (skip >= sp.count) {
      for (let i = 0; i < sp.count; i++) bytes -= sp.ends[i]! - sp.starts[i]!;
      skip -= sp.count;
      continue;
    }
    for (let i = 0; i < skip; i++) bytes -= sp.ends[i]! - sp.starts[i]!;
    spans.push(skip === 0 ? sp : { buf: sp.buf, starts: sp.starts.subarray(skip), ends: sp.ends.subarray(skip), count: sp.count - skip });
    skip = 0;
  }
  return { ...input, firstOffset: Math.min(offset, input.nextOffset), spans, bytes };
}

/** The first record's value, parsed (undefined when there is none). */
export function firstValue(input: AppendInput): unknown {
  if (Array.isArray(input)) return input[0]?.value;
  const sp = input.spans.find((s) => s.count > 0);
  return sp === undefined ? undefined : (JSON.parse(sp.buf.toString('utf8', sp.starts[0]!, sp.ends[0]!)) as unknown);
}
