/**
 * JSON → COPY text, byte to byte, for the append hot path: a record's stored JSON (compact, as
 * the runtime writes it) becomes one COPY row without JSON.parse and without building strings.
 *
 * It handles the common case only — a flat object whose keys are exactly the COPY's columns in
 * the same order, with strings, numbers, booleans and nulls as values — and says "no" (-1) for
 * anything else (a nested value, a \u escape, another key order, whitespace, a string for a
 * json/bytea column), so the caller encodes that record the general way. Both ways give the same
 * row: test/connectors/postgres/sink-copy.test.ts checks it.
 *
 * Why the bytes can mostly be copied: JSON strings cannot hold raw control characters, and COPY's
 * text format reads the escapes \\ \n \r \t the way JSON writes them. Only \", \/, \b and \f need
 * rewriting (to ", / and the raw byte), and \u must be decoded, which this leaves to the general path.
 */
import type { ColumnType } from './sink-sql.js';

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const OPEN = 0x7b;
const CLOSE = 0x7d;
const TAB = 0x09;
const NL = 0x0a;

/** Per column: its `"name":` bytes and which JSON value kinds may be copied into it. */
export interface CopyPlan {
  keys: Buffer[];
  /** Strings copy as their text: not into json (needs quoting) or bytea (may need base64 decoding). */
  strings: boolean[];
}

export function copyPlan(columns: readonly string[], types: readonly ColumnType[]): CopyPlan {
  return {
    keys: columns.map((c) => Buffer.from(`${JSON.stringify(c)}:`)),
    strings: types.map((t) => t.kind === 'other' || t.kind === 'bool'),
  };
}

/**
 * Writes the COPY row (with its newline) for the JSON object in `src[start..end)` (all of `src`
 * by default) at `out[at..]`; returns the new end, or -1 when this record needs the general path.
 * `out` must have room for end - start + 1 bytes (the row is never longer than the JSON plus a
 * newline). Bytes of `src` past `end` may be looked at, never taken.
 */
export function jsonRowToCopy(src: Buffer, plan: CopyPlan, out: Buffer, at: number, start = 0, end = src.length): number {
  if (end - start < 2 || src[start] !== OPEN) return -1;
  let p = start + 1;
  let o = at;
  const { keys, strings } = plan;
  for (let i = 0; i < keys.length; i++) {
    if (i > 0) {
      if (src[p] !== COMMA) return -1;
      p++;
      out[o++] = TAB;
    }
    const key = keys[i]!;
    const klen = key.length;
    if (p + klen > end) return -1;
    for (let k = 0; k < klen; k++) if (src[p + k] !== key[k]) return -1;
    p += klen;
    const c = src[p];
    if (c === QUOTE) {
      if (!strings[i]) return -1;
      p++;
      for (;;) {
        if (p >= end) return -1;
        const b = src[p]!;
        if (b === QUOTE) break;
        if (b === BACKSLASH) {
          const e = src[p + 1];
          if (e === QUOTE || e === 0x2f) {
            out[o++] = e;
          } else if (e === BACKSLASH || e === 0x6e || e === 0x72 || e === 0x74) {
            // \\ \n \r \t mean the same in COPY text.
            out[o++] = BACKSLASH;
            out[o++] = e;
          } else if (e === 0x62 || e === 0x66) {
            // \b and \f: the raw byte, as the general path writes it.
            out[o++] = e === 0x62 ? 0x08 : 0x0c;
          } else {
            return -1;
          }
          p += 2;
          continue;
        }
        out[o++] = b;
        p++;
      }
      p++;
    } else if (c === 0x6e) {
      // null
      if (src[p + 1] !== 0x75 || src[p + 2] !== 0x6c || src[p + 3] !== 0x6c) return -1;
      out[o++] = BACKSLASH;
      out[o++] = 0x4e;
      p += 4;
    } else if (c === 0x74 || c === 0x66 || c === 0x2d || (c !== undefined && c >= 0x30 && c <= 0x39)) {
      // true, false or a number: the JSON text is the value's text.
      while (p < end) {
        const b = src[p]!;
        if (b === COMMA || b === CLOSE) break;
        if (b === QUOTE || b === OPEN || b === 0x5b || b === BACKSLASH || b <= 0x20) return -1;
        out[o++] = b;
        p++;
      }
    } else {
      return -1;
    }
  }
  if (p !== end - 1 || src[p] !== CLOSE) return -1;
  out[o++] = NL;
  return o;
}
