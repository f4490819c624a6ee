/**
 * Source records that stand for runs of pre-encoded values (SourceRecord.run): counted, and
 * spelled out one record a value where the runtime needs them one by one.
 */
import type { SourceRecord } from '../../connectors/sdk.js';

/** The value of a producer record that carries a run (ProducerRecord.run): ignored by the log. */
export const NO_VALUE = new Uint8Array(0);

/** A record whose value's JSON text is already made; `value` is parsed from it only if asked. */
export class EncodedRecord implements SourceRecord {
  constructor(
    readonly encoded: Uint8Array,
    readonly timestamp: number | undefined,
    /** Shared by many records (SourceRecord.templateView), e.g. a file's `{ timestamp, host, file }`. */
    readonly templateView: Record<string, unknown> | undefined,
  ) {}

  get value(): unknown {
    return JSON.parse(Buffer.from(this.encoded.buffer, this.encoded.byteOffset, this.encoded.byteLength).toString('utf8'));
  }
}

/** The records a batch stands for, a run counting as its values. */
export function countRecords(records: readonly SourceRecord[]): number {
  let n = 0;
  for (const r of records) n += r.run === undefined ? 1 : r.run.count;
  return n;
}

/** A run record as one record a value. */
export function spellOut(r: SourceRecord): SourceRecord[] {
  const run = r.run!;
  const out: SourceRecord[] = [];
  let s = run.start;
  for (let k = 0; k < run.count; k++) {
    const e = run.ends[k]!;
    out.push(new EncodedRecord(run.buf.subarray(s, e), r.timestamp, r.templateView));
    s = e;
  }
  return out;
}
