/**
 * JSON written as bytes into an arena: the streaming hot path copies a column's text straight
 * from the pgoutput message into the event's JSON, escaping only what JSON needs. No string and no
 * object per column; one view (subarray) per event. Types without a byte path go through their
 * string converter (pgoutput-values.ts) and are written as UTF-8.
 */
import { converterFor, type ToJson, type TypeCatalog } from './pgoutput-values.js';

const ARENA_BYTES = 1 << 20;
const HEX = '0123456789abcdef';
const HEX_DIGITS = Buffer.from('0123456789ABCDEF');

/** A growing byte buffer; views handed out stay valid (a full arena is left to them, not reused). */
export class ByteWriter {
  buf: Buffer = Buffer.allocUnsafe(ARENA_BYTES);
  pos = 0;

  /** Room for `n` more bytes; a new arena keeps the event begun at `from` contiguous. */
  ensure(n: number, from: number): number {
    if (this.pos + n <= this.buf.length) return from;
    const keep = this.pos - from;
    const next = Buffer.allocUnsafe(Math.max(ARENA_BYTES, (keep + n) * 2));
    this.buf.copy(next, 0, from, this.pos);
    this.buf = next;
    this.pos = keep;
    return 0;
  }

  /** ASCII text (the envelope's constant parts, LSNs, numbers). Caller ensured the room. */
  ascii(s: string): void {
    const b = this.buf;
    let p = this.pos;
    for (let i = 0; i < s.length; i++) b[p++] = s.charCodeAt(i);
    this.pos = p;
  }

  /** An LSN as Postgres prints it (`16/B374D848`). Caller ensured 17 bytes. */
  lsn(lsn: number): void {
    this.hex(Math.floor(lsn / 4294967296));
    this.buf[this.pos++] = 47;
    this.hex(lsn % 4294967296);
  }

  /** n < 2^32 in upper-case hex, no leading zeros. */
  private hex(n: number): void {
    let digits = 1;
    for (let t = n >>> 4; t !== 0; t >>>= 4) digits++;
    const b = this.buf;
    let v = n >>> 0;
    for (let i = this.pos + digits - 1; i >= this.pos; i--) {
      b[i] = HEX_DIGITS[v & 15]!;
      v >>>= 4;
    }
    this.pos += digits;
  }

  bytes(src: Uint8Array, start: number, end: number): void {
    const b = this.buf;
    let p = this.pos;
    if (end - start > 64) {
      b.set(src.subarray(start, end), p);
      p += end - start;
    } else {
      for (let i = start; i < end; i++) b[p++] = src[i]!;
    }
    this.pos = p;
  }

  /** Any text, as UTF-8 (room is ensured here: `from` as in ensure). */
  utf8(s: string, from: number): number {
    from = this.ensure(s.length * 3, from);
    this.pos += this.buf.write(s, this.pos, 'utf8');
    return from;
  }

  /** A JSON string of UTF-8 bytes: quotes, backslashes and control characters escaped. */
  quoted(src: Uint8Array, start: number, end: number): void {
    const b = this.buf;
    let p = this.pos;
    b[p++] = 34;
    for (let i = start; i < end; i++) {
      const c = src[i]!;
      if (c >= 0x20 && c !== 34 && c !== 92) {
        b[p++] = c;
      } else if (c === 34 || c === 92) {
        b[p++] = 92;
        b[p++] = c;
      } else if (c === 10) {
        b[p++] = 92;
        b[p++] = 110;
      } else if (c === 13) {
        b[p++] = 92;
        b[p++] = 114;
      } else if (c === 9) {
        b[p++] = 92;
        b[p++] = 116;
      } else {
        b[p++] = 92;
        b[p++] = 117;
        b[p++] = 48;
        b[p++] = 48;
        b[p++] = HEX.charCodeAt(c >> 4);
        b[p++] = HEX.charCodeAt(c & 15);
      }
    }
    b[p++] = 34;
    this.pos = p;
  }
}

/**
 * Writes one column value (the text bytes src[start..end)) as JSON. `from` is where the event
 * began (see ByteWriter.ensure); returns it, moved if the arena was replaced.
 */
export type ByteConv = (src: Buffer, start: number, end: number, w: ByteWriter, from: number) => number;

const copy: ByteConv = (src, s, e, w, from) => {
  from = w.ensure(e - s, from);
  w.bytes(src, s, e);
  return from;
};

const quote: ByteConv = (src, s, e, w, from) => {
  from = w.ensure((e - s) * 6 + 2, from);
  w.quoted(src, s, e);
  return from;
};

const bool: ByteConv = (src, s, _e, w, from) => {
  from = w.ensure(5, from);
  w.ascii(src[s] === 116 ? 'true' : 'false');
  return from;
};

/** int8: digits as they are unless beyond 2^53 − 1 (then a string). */
const int8 = (slow: ToJson): ByteConv => (src, s, e, w, from) => {
  const digits = src[s] === 45 ? e - s - 1 : e - s;
  if (digits < 16) return copy(src, s, e, w, from);
  return w.utf8(slow(src.toString('latin1', s, e)), from);
};

/**
 * True when the decimal text src[s..e) prints back the same from a double: at most 15 significant
 * digits (DBL_DIG), no superfluous zero (leading, or trailing after the point), and inside the
 * range where JavaScript prints plain decimals (no exponent).
 */
export function exactDecimal(src: Uint8Array, s: number, e: number): boolean {
  let i = s;
  if (src[i] === 45) i++;
  const intStart = i;
  while (i < e && src[i]! >= 48 && src[i]! <= 57) i++;
  const intLen = i - intStart;
  if (intLen === 0 || intLen > 15 || (intLen > 1 && src[intStart] === 48)) return false;
  if (i === e) return !(src[s] === 45 && intLen === 1 && src[intStart] === 48);
  if (src[i] !== 46) return false;
  i++;
  const fracStart = i;
  while (i < e && src[i]! >= 48 && src[i]! <= 57) i++;
  const fracLen = i - fracStart;
  if (i !== e || fracLen === 0 || src[e - 1] === 48) return false;
  if (intLen === 1 && src[intStart] === 48) {
    // 0.000ddd: significant digits start after the zeros; below 1e-6 JavaScript prints an exponent.
    let z = fracStart;
    while (z < e && src[z] === 48) z++;
    return z - fracStart < 6 && e - z <= 15;
  }
  return intLen + fracLen <= 15;
}

/** numeric: as it is when a double holds it exactly, else through the string converter. */
const numeric = (slow: ToJson): ByteConv => (src, s, e, w, from) => {
  if (exactDecimal(src, s, e)) return copy(src, s, e, w, from);
  // A trailing zero after the point (a scale like 12.50) never prints back from a double: a string.
  if (src[e - 1] === 48 && src.indexOf(46, s) > s && src.indexOf(46, s) < e) return quote(src, s, e, w, from);
  return w.utf8(slow(src.toString('latin1', s, e)), from);
};

const float = (slow: ToJson): ByteConv => (src, s, e, w, from) => {
  const last = src[e - 1]!;
  if (last >= 48 && last <= 57) return copy(src, s, e, w, from);
  return w.utf8(slow(src.toString('latin1', s, e)), from);
};

/** "2024-05-01 10:00:00.123456+00" → "2024-05-01T10:00:00.123456Z" */
const timestamptz = (slow: ToJson): ByteConv => (src, s, e, w, from) => {
  const n = e - s;
  if (n >= 22 && src[s + 10] === 32 && src[e - 3] === 43 && src[e - 2] === 48 && src[e - 1] === 48) {
    from = w.ensure(n + 2, from);
    const b = w.buf;
    let p = w.pos;
    b[p++] = 34;
    for (let i = s; i < s + 10; i++) b[p++] = src[i]!;
    b[p++] = 84;
    for (let i = s + 11; i < e - 3; i++) b[p++] = src[i]!;
    b[p++] = 90;
    b[p++] = 34;
    w.pos = p;
    return from;
  }
  return w.utf8(slow(src.toString('utf8', s, e)), from);
};

const generic = (slow: ToJson): ByteConv => (src, s, e, w, from) => w.utf8(slow(src.toString('utf8', s, e)), from);

/** Text types whose output needs only quoting: text, varchar, bpchar, name, uuid, date, time, char. */
const QUOTED = new Set([25, 1043, 1042, 19, 2950, 1082, 1083, 18]);

export function byteConverterFor(oid: number, catalog: TypeCatalog): ByteConv {
  const slow = converterFor(oid, catalog);
  if (QUOTED.has(oid)) return quote;
  const f = catalog.get(oid);
  // Enums print as their label: quoted text.
  if (f !== undefined && f.type === 'e') return quote;
  if (f !== undefined && f.type === 'd' && f.base !== 0) return byteConverterFor(f.base, catalog);
  switch (oid) {
    case 16:
      return bool;
    case 21:
    case 23:
    case 26:
    case 114:
    case 3802:
      return copy;
    case 20:
      return int8(slow);
    case 1700:
      return numeric(slow);
    case 700:
    case 701:
      return float(slow);
    case 1184:
      return timestamptz(slow);
    default:
      return generic(slow);
  }
}
