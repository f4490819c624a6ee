/**
 * Checks every backend applies to a record of an append, in one place so the backends refuse the
 * same input with the same errors (test/contract).
 */
import { BadPartitionError, InvalidArgumentError } from './errors.js';
import { partitionForKey, type StickyPartitioner } from './partitioner.js';
import type { ProducerRecord } from './types.js';

/** Record `i`'s shape: an object, a string or bytes value, a string or null key, string headers. */
export function checkRecord(r: ProducerRecord, i: number): void {
  if (r === null || typeof r !== 'object') throw new InvalidArgumentError(`record ${i} is not an object`);
  const v = r.value;
  if (typeof v !== 'string' && !(v instanceof Uint8Array)) throw new InvalidArgumentError(`record ${i}: value must be a string or bytes`);
  if (r.key != null && typeof r.key !== 'string') throw new InvalidArgumentError(`record ${i}: key must be a string or null`);
  if (r.headers !== undefined) checkHeaders(r.headers, i);
}

/** Checks a run record (ProducerRecord.run); returns the length of its longest value. */
export function checkRun(r: ProducerRecord, i: number): number {
  const run = r.run!;
  if (r.key != null || (r.headers !== undefined && Object.keys(r.headers).length > 0)) {
    throw new InvalidArgumentError(`record ${i}: a run of values has no key and no headers`);
  }
  const { buf, ends, count, start } = run;
  if (!(buf instanceof Uint8Array) || !(ends instanceof Uint32Array) || !Number.isInteger(count) || count < 0 || count > ends.length) {
    throw new InvalidArgumentError(`record ${i}: a run needs buf (bytes), ends (Uint32Array) and count <= ends.length`);
  }
  if (!Number.isInteger(start) || start < 0) throw new InvalidArgumentError(`record ${i}: run start ${start} is not a byte position`);
  let max = 0;
  let s = start;
  for (let k = 0; k < count; k++) {
    const e = ends[k]!;
    if (e < s || e > buf.length) throw new InvalidArgumentError(`record ${i}: value ${k} of its run ends at ${e}, outside ${s}..${buf.length}`);
    if (e - s > max) max = e - s;
    s = e;
  }
  return max;
}

/** The records a list stands for with runs spelled out, one record a value (for per-record code). */
export function expandRuns(records: readonly ProducerRecord[]): readonly ProducerRecord[] {
  if (!records.some((r) => r !== null && typeof r === 'object' && r.run !== undefined)) return records;
  const out: ProducerRecord[] = [];
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!;
    const run = r === null || typeof r !== 'object' ? undefined : r.run;
    if (run === undefined) {
      out.push(r);
      continue;
    }
    checkRun(r, i);
    let s = run.start;
    for (let k = 0; k < run.count; k++) {
      const e = run.ends[k]!;
      const one: ProducerRecord = { value: run.buf.subarray(s, e) };
      if (r.timestamp !== undefined) one.timestamp = r.timestamp;
      if (r.partition !== undefined) one.partition = r.partition;
      out.push(one);
      s = e;
    }
  }
  return out;
}

export function checkHeaders(h: Record<string, string>, i: number): void {
  if (h === null || typeof h !== 'object') throw new InvalidArgumentError(`record ${i}: headers must be an object of strings`);
  let n = 0;
  for (const k in h) {
    if (typeof h[k] !== 'string') throw new InvalidArgumentError(`record ${i}: header "${k}" must be a string`);
    if (Buffer.byteLength(k) > 0xffff) throw new InvalidArgumentError(`record ${i}: a header name is longer than 65535 bytes`);
    if (++n > 0xffff) throw new InvalidArgumentError(`record ${i}: more than 65535 headers`);
  }
}

/** The record's timestamp: its own, else the append's time; a non-negative safe integer. */
export function recordTimestamp(r: ProducerRecord, i: number, now: number): number {
  const ts = r.timestamp ?? now;
  if (!Number.isSafeInteger(ts) || ts < 0) throw new InvalidArgumentError(`record ${i}: timestamp ${ts} is not a non-negative integer`);
  return ts;
}

/**
 * Picks the record's partition: explicit, else by key, else the call's sticky partition (`sticky`
 * holds it across the records of one call: -1 until the first keyless record takes one).
 */
export function choosePartition(
  r: ProducerRecord,
  topic: string,
  count: number,
  sticky: { partition: number; partitioner: StickyPartitioner },
): number {
  if (r.partition != null) {
    const p = r.partition;
    if (!Number.isInteger(p) || p < 0 || p >= count) throw new BadPartitionError(topic, p, count);
    return p;
  }
  if (r.key != null) return partitionForKey(r.key, count);
  if (sticky.partition < 0) sticky.partition = sticky.partitioner.take(topic, count);
  return sticky.partition;
}

export function checkAcks(acks: unknown): void {
  if (acks !== 'none' && acks !== 'written' && acks !== 'durable') {
    throw new InvalidArgumentError(`acks must be none, written or durable, not ${String(acks)}`);
  }
}

/** The checkpoint's position as JSON, refused now rather than when it is stored. */
export function checkpointJson(checkpoint: { source: string; position: unknown }): string {
  if (typeof checkpoint.source !== 'string') throw new InvalidArgumentError('checkpoint.source must be a string');
  let json: string | undefined;
  try {
    json = JSON.stringify(checkpoint.position);
  } catch (err) {
    throw new InvalidArgumentError(`checkpoint position cannot be stored as JSON: ${(err as Error).message}`);
  }
  if (json === undefined) throw new InvalidArgumentError('checkpoint position cannot be stored as JSON (it is undefined or a function)');
  return json;
}
