/**
 * The frame: many records of one partition packed into one JetStream message, because publishing
 * one message per record costs nats.js most of its CPU (~14 k msg/s measured here against ~1 M
 * records/s in frames). Pure, no I/O. Little-endian:
 *
 *   frame   = magic "SLF1" (4) | count u32 | maxTimestamp f64 | record * count
 *   record  = timestamp f64 | keyLength i32 (-1: null) | key | valueLength u32 | value
 *           | headerCount u16 | (nameLength u16 | name | valueLength u32 | value) * headerCount
 *
 * Offsets are not in the payload: the frame's base offset travels in the message headers
 * (`Sluice-Base`), set when the frame is published, so a frame re-sent after a lost ack with a
 * different base does not need encoding again.
 */
import { CorruptRecordError } from '../errors.js';
import type { LogRecord } from '../types.js';
import type { SpanBuilder } from '../value-spans.js';

export const FRAME_MAGIC = 0x31464c53; // "SLF1" read as little-endian u32
export const FRAME_HEADER_BYTES = 16;

/** A record ready to pack: strings already turned into bytes once. */
export interface FrameRecord {
  timestamp: number;
  key: Buffer | null;
  value: Uint8Array;
  headers: [Buffer, Buffer][] | null;
}

const EMPTY_HEADERS: Readonly<Record<string, string>> = Object.freeze({});

export function recordBytes(r: FrameRecord): number {
  let n = 8 + 4 + (r.key?.length ?? 0) + 4 + r.value.length + 2;
  if (r.headers !== null) for (const [k, v] of r.headers) n += 2 + k.length + 4 + v.length;
  return n;
}

/** Packs records[from..to) (sizes from recordBytes) into one frame. */
export function encodeFrame(records: readonly FrameRecord[], from: number, to: number, bytes: number): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + bytes);
  out.writeUInt32LE(FRAME_MAGIC, 0);
  out.writeUInt32LE(to - from, 4);
  let maxTs = 0;
  let at = FRAME_HEADER_BYTES;
  for (let i = from; i < to; i++) {
    const r = records[i]!;
    if (r.timestamp > maxTs) maxTs = r.timestamp;
    out.writeDoubleLE(r.timestamp, at);
    at += 8;
    if (r.key === null) {
      out.writeInt32LE(-1, at);
      at += 4;
    } else {
      out.writeInt32LE(r.key.length, at);
      at += 4;
      at += r.key.copy(out, at);
    }
    out.writeUInt32LE(r.value.length, at);
    at += 4;
    out.set(r.value, at);
    at += r.value.length;
    const headers = r.headers;
    out.writeUInt16LE(headers === null ? 0 : headers.length, at);
    at += 2;
    if (headers !== null) {
      for (const [k, v] of headers) {
        out.writeUInt16LE(k.length, at);
        at += 2;
        at += k.copy(out, at);
        out.writeUInt32LE(v.length, at);
        at += 4;
        at += v.copy(out, at);
      }
    }
  }
  out.writeDoubleLE(maxTs, 8);
  if (at !== out.length) throw new Error(`frame size mismatch: wrote ${at} of ${out.length} bytes`);
  return out;
}

export interface FrameSummary {
  count: number;
  maxTimestamp: number;
}

export function frameSummary(frame: Uint8Array, where: string): FrameSummary {
  const buf = asBuffer(frame);
  if (buf.length < FRAME_HEADER_BYTES || buf.readUInt32LE(0) !== FRAME_MAGIC) {
    throw new CorruptRecordError(where, 0, 'not a sluice frame (bad magic)');
  }
  return { count: buf.readUInt32LE(4), maxTimestamp: buf.readDoubleLE(8) };
}

/**
 * Unpacks the records of a frame whose first record has offset `base`, skipping those below
 * `fromOffset`. Values are views into `frame`.
 */
export function decodeFrame(frame: Uint8Array, base: number, fromOffset: number, where: string, out: LogRecord[]): number {
  const buf = asBuffer(frame);
  const { count } = frameSummary(buf, where);
  let at = FRAME_HEADER_BYTES;
  let valueBytes = 0;
  const need = (n: number): void => {
    if (at + n > buf.length) throw new CorruptRecordError(where, at, `frame truncated (needs ${n} more bytes)`);
  };
  for (let i = 0; i < count; i++) {
    need(12);
    const timestamp = buf.readDoubleLE(at);
    const keyLength = buf.readInt32LE(at + 8);
    at += 12;
    let key: string | null = null;
    if (keyLength >= 0) {
      need(keyLength);
      key = buf.toString('utf8', at, at + keyLength);
      at += keyLength;
    }
    need(4);
    const valueLength = buf.readUInt32LE(at);
    at += 4;
    need(valueLength + 2);
    const value = buf.subarray(at, at + valueLength);
    at += valueLength;
    const headerCount = buf.readUInt16LE(at);
    at += 2;
    let headers: Readonly<Record<string, string>> = EMPTY_HEADERS;
    if (headerCount > 0) {
      const h: Record<string, string> = {};
      for (let j = 0; j < headerCount; j++) {
        need(2);
        const kl = buf.readUInt16LE(at);
        at += 2;
        need(kl + 4);
        const name = buf.toString('utf8', at, at + kl);
        at += kl;
        const vl = buf.readUInt32LE(at);
        at += 4;
        need(vl);
        const value = buf.toString('utf8', at, at + vl);
        // A header named __proto__ is data, not the object's prototype.
        if (name === '__proto__') Object.defineProperty(h, name, { value, enumerable: true, writable: true, configurable: true });
        else h[name] = value;
        at += vl;
      }
      headers = h;
    }
    const offset = base + i;
    if (offset >= fromOffset) {
      out.push({ offset, timestamp, key, value, headers });
      valueBytes += valueLength;
    }
  }
  if (at !== buf.length) throw new CorruptRecordError(where, at, `${buf.length - at} bytes after the last record`);
  return valueBytes;
}

/**
 * decodeFrame for a reader that wants the values only: adds the value ranges of the records from
 * `fromOffset` on to `out` (whose buffer is this frame's, as `frameBuffer` gives it) and returns
 * their bytes. The frame's structure is checked as decodeFrame checks it.
 */
export function decodeFrameValues(frame: Uint8Array, base: number, fromOffset: number, where: string, out: SpanBuilder): number {
  const buf = out.buf;
  if (buf.buffer !== frame.buffer || buf.byteOffset !== frame.byteOffset) throw new Error('decodeFrameValues: out is not built on this frame');
  const { count } = frameSummary(buf, where);
  let at = FRAME_HEADER_BYTES;
  const before = out.bytes;
  const need = (n: number): void => {
    if (at + n > buf.length) throw new CorruptRecordError(where, at, `frame truncated (needs ${n} more bytes)`);
  };
  for (let i = 0; i < count; i++) {
    need(12);
    const keyLength = buf.readInt32LE(at + 8);
    at += 12;
    if (keyLength > 0) {
      need(keyLength);
      at += keyLength;
    }
    need(4);
    const valueLength = buf.readUInt32LE(at);
    at += 4;
    need(valueLength + 2);
    const start = at;
    at += valueLength;
    const headerCount = buf.readUInt16LE(at);
    at += 2;
    for (let j = 0; j < headerCount; j++) {
      need(2);
      at += 2 + buf.readUInt16LE(at);
      need(4);
      at += 4;
      need(buf.readUInt32LE(at - 4));
      at += buf.readUInt32LE(at - 4);
    }
    if (base + i >= fromOffset) out.push(start, start + valueLength);
  }
  if (at !== buf.length) throw new CorruptRecordError(where, at, `${buf.length - at} bytes after the last record`);
  return out.bytes - before;
}

/** A frame's bytes as a Buffer (a view, no copy): what a SpanBuilder for decodeFrameValues takes. */
export function frameBuffer(data: Uint8Array): Buffer {
  return asBuffer(data);
}

function asBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}
