/**
 * The on-disk batch format of the local log. Pure: no I/O, tested byte by byte.
 *
 * Batch (all integers little-endian):
 *
 *   0  baseOffset      int64   offset of the first record; written when the batch is placed
 *   8  length          uint32  bytes of the whole batch, header included
 *  12  crc             uint32  CRC-32 (zlib) of bytes [16, length): everything but offset, length, crc
 *  16  magic           uint8   1
 *  17  attributes      uint8   0 (reserved: compression)
 *  18  count           uint32  records in the batch; their offsets are baseOffset .. baseOffset+count-1
 *  22  firstTimestamp  int64   ms since the epoch of the first record
 *  30  maxTimestamp    int64   largest timestamp in the batch
 *  38  records
 *
 * Record:
 *   int32 timestampDelta (from firstTimestamp) · int32 keyLength (-1: null) · key (UTF-8)
 *   uint32 valueLength · value · uint16 headerCount · headers (uint16 keyLength, key, uint32 valueLength, value)
 *
 * Like Kafka's record batch, the CRC leaves out the base offset so a batch can be encoded by the
 * producer before its offset is known, and placed later without re-checksumming.
 */
import { crc32 } from 'node:zlib';
import { SlabPool } from '../../util/slab-pool.js';
import type { LogRecord, ProducerRecord, ValueRun } from '../types.js';
import type { SpanBuilder } from '../value-spans.js';

export const BATCH_HEADER_BYTES = 38;
const EMPTY_HEADERS: Record<string, string> = Object.freeze({}) as Record<string, string>;
export const MAGIC = 1;
const TWO_32 = 4294967296;
const MAX_DELTA = 0x7fffffff;
/** Batches are closed at about this size so reads stay in bounded memory. */
export const TARGET_BATCH_BYTES = 1024 * 1024;

export interface EncodedBatch {
  buf: Buffer;
  /** The pooled slab `buf` lies in, handed back to the pool once the batch is written. */
  slab?: Buffer;
  count: number;
  firstTimestamp: number;
  maxTimestamp: number;
}

export interface BatchHeader {
  baseOffset: number;
  length: number;
  crc: number;
  magic: number;
  count: number;
  firstTimestamp: number;
  maxTimestamp: number;
}

export function writeInt64(buf: Buffer, value: number, pos: number): void {
  buf.writeUInt32LE(value % TWO_32, pos);
  buf.writeUInt32LE(Math.floor(value / TWO_32), pos + 4);
}

export function readInt64(buf: Buffer, pos: number): number {
  return buf.readUInt32LE(pos) + buf.readUInt32LE(pos + 4) * TWO_32;
}

/**
 * Little-endian stores for the per-record fields: plain byte stores stay inlined in the encode
 * loop, where Buffer#writeInt32LE's argument checks cost more than copying a 1 KiB value.
 * Callers guarantee the range; negative int32 values come out as two's complement.
 */
function put32(buf: Buffer, v: number, pos: number): void {
  buf[pos] = v;
  buf[pos + 1] = v >>> 8;
  buf[pos + 2] = v >>> 16;
  buf[pos + 3] = v >>> 24;
}

function put16(buf: Buffer, v: number, pos: number): void {
  buf[pos] = v;
  buf[pos + 1] = v >>> 8;
}

/** Bytes a record takes inside a batch, and its value's byte length (measured once). */
export function recordSize(r: ProducerRecord): number {
  const run = r.run;
  if (run !== undefined) return (run.count === 0 ? 0 : run.ends[run.count - 1]! - run.start) + 14 * run.count;
  let size = 14; // tsDelta + keyLen + valueLen + headerCount
  if (r.key != null) size += Buffer.byteLength(r.key);
  size += typeof r.value === 'string' ? Buffer.byteLength(r.value) : r.value.byteLength;
  if (r.headers !== undefined) {
    for (const k in r.headers) size += 6 + Buffer.byteLength(k) + Buffer.byteLength(r.headers[k]!);
  }
  return size;
}

/** Slabs for batches of about TARGET_BATCH_BYTES; a batch's slab comes back once it is written. */
export class BatchBufferPool extends SlabPool {
  static readonly SLAB_BYTES = TARGET_BATCH_BYTES + BATCH_HEADER_BYTES;

  constructor(maxFree: number) {
    super(BatchBufferPool.SLAB_BYTES, maxFree);
  }

  /** Hands a batch's slab back; the batch's bytes must not be used after this. */
  release(batch: EncodedBatch): void {
    const slab = batch.slab;
    if (slab === undefined) return;
    batch.slab = undefined;
    this.give(slab);
  }
}

/**
 * Encodes records[indices[from..to)] (or records[from..to) when indices is null) into one batch.
 * `sizes` are the recordSize() of each record (same indexing as records), `timestamps` theirs.
 * With a pool, the batch's buffer comes from it and must be released once written.
 */
export function encodeBatch(
  records: readonly ProducerRecord[],
  order: ArrayLike<number> | null,
  from: number,
  to: number,
  sizes: ArrayLike<number>,
  timestamps: ArrayLike<number>,
  pool?: BatchBufferPool,
): EncodedBatch {
  let total = BATCH_HEADER_BYTES;
  for (let i = from; i < to; i++) total += sizes[order === null ? i : order[i]!]!;
  const { buf, slab } = pool === undefined ? { buf: Buffer.allocUnsafe(total), slab: undefined } : pool.take(total);
  const first = timestamps[order === null ? from : order[from]!]!;
  let maxTs = first;
  let pos = BATCH_HEADER_BYTES;
  let count = 0;
  for (let i = from; i < to; i++) {
    const idx = order === null ? i : order[i]!;
    const r = records[idx]!;
    const ts = timestamps[idx]!;
    if (ts > maxTs) maxTs = ts;
    if (r.run !== undefined) {
      pos = writeRunRecords(buf, pos, r.run, ts - first);
      count += r.run.count;
      continue;
    }
    count++;
    put32(buf, ts - first, pos);
    pos += 4;
    if (r.key == null) {
      put32(buf, -1, pos);
      pos += 4;
    } else {
      const n = buf.write(r.key, pos + 4);
      put32(buf, n, pos);
      pos += 4 + n;
    }
    const v = r.value;
    if (typeof v === 'string') {
      const n = buf.write(v, pos + 4);
      put32(buf, n, pos);
      pos += 4 + n;
    } else {
      put32(buf, v.byteLength, pos);
      buf.set(v, pos + 4);
      pos += 4 + v.byteLength;
    }
    const h = r.headers;
    if (h === undefined) {
      buf[pos] = 0;
      buf[pos + 1] = 0;
      pos += 2;
    } else {
      const countPos = pos;
      pos += 2;
      let n = 0;
      for (const k in h) {
        const kl = buf.write(k, pos + 2);
        put16(buf, kl, pos);
        pos += 2 + kl;
        const vl = buf.write(h[k]!, pos + 4);
        put32(buf, vl, pos);
        pos += 4 + vl;
        n++;
      }
      put16(buf, n, countPos);
    }
  }
  writeInt64(buf, 0, 0);
  buf.writeUInt32LE(total, 8);
  buf.writeUInt8(MAGIC, 16);
  buf.writeUInt8(0, 17);
  buf.writeUInt32LE(count, 18);
  writeInt64(buf, first, 22);
  writeInt64(buf, maxTs, 30);
  buf.writeUInt32LE(crc32(buf.subarray(16, total)), 12);
  return { buf, slab, count, firstTimestamp: first, maxTimestamp: maxTs };
}

/**
 * Writes a run's values as records (no key, no headers, one timestamp delta); returns the end.
 * The values are copied as one block to where the first one goes, then each is moved up over the
 * framing of the ones before it, the last first (copyWithin: no object per value).
 */
function writeRunRecords(buf: Buffer, at: number, run: ValueRun, delta: number): number {
  const { count, ends } = run;
  if (count === 0) return at;
  const first = run.start;
  const base = at + 12;
  buf.set(run.buf.subarray(first, ends[count - 1]!), base);
  for (let k = count - 1; k >= 0; k--) {
    const s = k === 0 ? first : ends[k - 1]!;
    const len = ends[k]! - s;
    const from = base + (s - first);
    // 12 bytes of record header before each value, and 2 of header count after each one before.
    const to = from + 14 * k;
    if (to !== from) buf.copyWithin(to, from, from + len);
    put32(buf, delta, to - 12);
    put32(buf, -1, to - 8);
    put32(buf, len, to - 4);
    buf[to + len] = 0;
    buf[to + len + 1] = 0;
  }
  return at + 14 * count + (ends[count - 1]! - first);
}

/** True when a record's timestamp can share a batch that starts at `first`. */
export function fitsDelta(first: number, ts: number): boolean {
  const d = ts - first;
  return d <= MAX_DELTA && d >= -MAX_DELTA;
}

export function setBaseOffset(buf: Buffer, baseOffset: number): void {
  writeInt64(buf, baseOffset, 0);
}

/** Reads a batch header at `pos`; the caller checks there are BATCH_HEADER_BYTES. */
export function readHeader(buf: Buffer, pos: number): BatchHeader {
  return {
    baseOffset: readInt64(buf, pos),
    length: buf.readUInt32LE(pos + 8),
    crc: buf.readUInt32LE(pos + 12),
    magic: buf.readUInt8(pos + 16),
    count: buf.readUInt32LE(pos + 18),
    firstTimestamp: readInt64(buf, pos + 22),
    maxTimestamp: readInt64(buf, pos + 30),
  };
}

/** Why a batch at `pos` (fully inside `buf`) is invalid, or null when it is valid. */
export function checkBatch(buf: Buffer, pos: number, h: BatchHeader): string | null {
  if (h.magic !== MAGIC) return `unknown batch magic ${h.magic}`;
  if (h.length < BATCH_HEADER_BYTES) return `batch length ${h.length} is shorter than its header`;
  if (pos + h.length > buf.length) return 'batch runs past the end of the data';
  const crc = crc32(buf.subarray(pos + 16, pos + h.length));
  if (crc !== h.crc) return `checksum mismatch (stored ${h.crc}, computed ${crc})`;
  return null;
}

/**
 * Decodes the records of a checked batch with offsets in [fromOffset, endOffset) and appends them
 * to `out`. Values are views into `buf`. Throws a plain Error when the batch's inner structure
 * is inconsistent (the caller wraps it with file and position).
 */
export function decodeRecords(
  buf: Buffer,
  pos: number,
  h: BatchHeader,
  fromOffset: number,
  endOffset: number,
  out: LogRecord[],
): void {
  const end = pos + h.length;
  let p = pos + BATCH_HEADER_BYTES;
  let offset = h.baseOffset;
  const last = Math.min(h.baseOffset + h.count, endOffset);
  while (offset < last) {
    if (p + 14 > end) throw new Error('record runs past the end of its batch');
    const ts = h.firstTimestamp + buf.readInt32LE(p);
    const kl = buf.readInt32LE(p + 4);
    p += 8;
    let key: string | null = null;
    if (kl >= 0) {
      key = buf.toString('utf8', p, p + kl);
      p += kl;
    }
    const vl = buf.readUInt32LE(p);
    p += 4;
    const vStart = p;
    p += vl;
    const hc = buf.readUInt16LE(p);
    p += 2;
    const headers: Record<string, string> = hc === 0 ? EMPTY_HEADERS : {};
    for (let i = 0; i < hc; i++) {
      const hkl = buf.readUInt16LE(p);
      const hk = buf.toString('utf8', p + 2, p + 2 + hkl);
      p += 2 + hkl;
      const hvl = buf.readUInt32LE(p);
      const hv = buf.toString('utf8', p + 4, p + 4 + hvl);
      if (hk === '__proto__') Object.defineProperty(headers, hk, { value: hv, enumerable: true, writable: true, configurable: true });
      else headers[hk] = hv;
      p += 4 + hvl;
    }
    if (p > end) throw new Error('record runs past the end of its batch');
    if (offset >= fromOffset) {
      out.push({ offset, timestamp: ts, key, value: buf.subarray(vStart, vStart + vl), headers });
    }
    offset++;
  }
}

/**
 * decodeRecords for a reader that wants the values only: adds the value ranges of the records with
 * offsets in [fromOffset, endOffset) to `out` (whose buffer is `buf`) and returns how many it
 * added. The batch's structure is checked as decodeRecords checks it.
 */
export function decodeValues(buf: Buffer, pos: number, h: BatchHeader, fromOffset: number, endOffset: number, out: SpanBuilder): number {
  const end = pos + h.length;
  let p = pos + BATCH_HEADER_BYTES;
  let offset = h.baseOffset;
  const last = Math.min(h.baseOffset + h.count, endOffset);
  const before = out.count;
  while (offset < last) {
    if (p + 14 > end) throw new Error('record runs past the end of its batch');
    const kl = buf.readInt32LE(p + 4);
    p += 8;
    if (kl > 0) p += kl;
    if (p + 6 > end) throw new Error('record runs past the end of its batch');
    const vl = buf.readUInt32LE(p);
    const vStart = p + 4;
    p = vStart + vl;
    if (p + 2 > end) throw new Error('record runs past the end of its batch');
    const hc = buf.readUInt16LE(p);
    p += 2;
    for (let i = 0; i < hc; i++) {
      if (p + 2 > end) throw new Error('record runs past the end of its batch');
      p += 2 + buf.readUInt16LE(p);
      if (p + 4 > end) throw new Error('record runs past the end of its batch');
      p += 4 + buf.readUInt32LE(p);
    }
    if (p > end) throw new Error('record runs past the end of its batch');
    if (offset >= fromOffset) out.push(vStart, vStart + vl);
    offset++;
  }
  return out.count - before;
}

/**
 * Offset of the first record in a checked batch whose timestamp is >= `timestamp`, or null.
 */
export function findTimestamp(buf: Buffer, pos: number, h: BatchHeader, timestamp: number): number | null {
  if (h.maxTimestamp < timestamp) return null;
  const out: LogRecord[] = [];
  decodeRecords(buf, pos, h, h.baseOffset, h.baseOffset + h.count, out);
  for (const r of out) if (r.timestamp >= timestamp) return r.offset;
  return null;
}
