/**
 * Postgres text output → JSON text, per column type. Pure: type facts the server must tell
 * (enums, domains, array element types of user types) arrive as a `TypeCatalog`.
 *
 * The mapping (docs/connectors/postgres-cdc.md, "Types"):
 *  - bool → true/false; int2, int4, oid → numbers; float4/float8 → numbers, NaN and ±Infinity as strings;
 *  - int8 → a number when within ±(2^53−1), else a string with all its digits;
 *  - numeric → a number when the number prints back to the same text (no digit or scale lost),
 *    else a string ("1.50", "12345678901234567890.1", "NaN");
 *  - json, jsonb → the JSON itself (embedded as it is, never re-encoded);
 *  - timestamptz → "2024-05-01T10:00:00.123456Z" (UTC, microseconds kept); timestamp → the same
 *    without "Z"; ±infinity and BC dates as Postgres prints them;
 *  - bytea → base64 of the bytes; arrays → JSON arrays (nested for several dimensions);
 *  - enums, text types, uuid, date, time, interval, inet, money ... → strings as Postgres prints them.
 * The session must use DateStyle ISO, TimeZone UTC, extra_float_digits 3, bytea_output hex
 * (SESSION_SETTINGS below); both the replication and the snapshot connections set them.
 */

export const SESSION_SETTINGS: Record<string, string> = {
  DateStyle: 'ISO',
  TimeZone: 'UTC',
  extra_float_digits: '3',
  bytea_output: 'hex',
  IntervalStyle: 'iso_8601',
};

/** Postgres text → JSON text. */
export type ToJson = (text: string) => string;

/** What the server knows about a type that is not built in. */
export interface TypeFacts {
  oid: number;
  /** pg_type.typtype: b base, e enum, d domain, c composite, r range, m multirange, p pseudo. */
  type: string;
  /** pg_type.typcategory: 'A' for arrays. */
  category: string;
  /** Element type of an array type, else 0. */
  elem: number;
  /** Base type of a domain, else 0. */
  base: number;
  delim: string;
}

export type TypeCatalog = ReadonlyMap<number, TypeFacts>;

const MAX_SAFE = '9007199254740991';

export const str: ToJson = (t) => JSON.stringify(t);
const raw: ToJson = (t) => t;
const bool: ToJson = (t) => (t === 't' ? 'true' : 'false');

/** int8: a JSON number when exact, else a string. */
export const int8: ToJson = (t) => {
  const digits = t.charCodeAt(0) === 45 ? t.length - 1 : t.length;
  if (digits < 16) return t;
  if (digits > 16) return `"${t}"`;
  const abs = t.charCodeAt(0) === 45 ? t.slice(1) : t;
  return abs <= MAX_SAFE ? t : `"${t}"`;
};

/** numeric: a JSON number only when it prints back to exactly the same text. */
export const numeric: ToJson = (t) => {
  if (t.length <= 15 && t.indexOf('.') < 0 && t !== 'NaN' && !t.includes('inity')) return t === '-0' ? '"-0"' : t;
  const n = Number(t);
  return Number.isFinite(n) && String(n) === t ? t : `"${t}"`;
};

const float: ToJson = (t) => {
  // NaN, Infinity, -Infinity are not JSON numbers.
  const c = t.charCodeAt(t.length - 1);
  return c >= 48 && c <= 57 ? t : `"${t}"`;
};

/** "2024-05-01 10:00:00.123456+00" → "2024-05-01T10:00:00.123456Z". */
export const timestamptz: ToJson = (t) => {
  if (t.length >= 22 && t.endsWith('+00') && t.charCodeAt(10) === 32) {
    return `"${t.slice(0, 10)}T${t.slice(11, -3)}Z"`;
  }
  return JSON.stringify(t);
};

export const timestamp: ToJson = (t) => (t.length >= 19 && t.charCodeAt(10) === 32 && !t.endsWith(' BC') ? `"${t.slice(0, 10)}T${t.slice(11)}"` : JSON.stringify(t));

/** bytea in hex output ("\x0a0b") → base64. */
export const bytea: ToJson = (t) => `"${Buffer.from(t.slice(2), 'hex').toString('base64')}"`;

/** Built-in scalar types by OID. */
const SCALARS = new Map<number, ToJson>([
  [16, bool],
  [17, bytea],
  [20, int8],
  [21, raw],
  [23, raw],
  [26, raw],
  [28, raw], // xid
  [114, raw], // json
  [3802, raw], // jsonb
  [700, float],
  [701, float],
  [1700, numeric],
  [1114, timestamp],
  [1184, timestamptz],
]);

/** Built-in array types → element types (the rest are found in the catalog). */
const ARRAYS = new Map<number, number>([
  [1000, 16], [1001, 17], [1002, 18], [1003, 19], [1005, 21], [1007, 23], [1009, 25], [1014, 1042],
  [1015, 1043], [1016, 20], [1021, 700], [1022, 701], [1028, 26], [1115, 1114], [1182, 1082],
  [1183, 1083], [1185, 1184], [1187, 1186], [1231, 1700], [199, 114], [3807, 3802], [2951, 2950],
  [1041, 869], [651, 650], [1270, 1266], [1040, 829], [1561, 1560], [1563, 1562], [1013, 30],
]);

/** The OIDs a converter needs facts about (so the caller can look them up first). */
export function needsFacts(oid: number, catalog: TypeCatalog): number[] {
  if (SCALARS.has(oid) || ARRAYS.has(oid) || oid < 10000) {
    const elem = ARRAYS.get(oid);
    return elem !== undefined && !SCALARS.has(elem) && elem >= 10000 && !catalog.has(elem) ? [elem] : [];
  }
  const f = catalog.get(oid);
  if (f === undefined) return [oid];
  if (f.type === 'd' && f.base !== 0) return needsFacts(f.base, catalog);
  if (f.category === 'A' && f.elem !== 0) return needsFacts(f.elem, catalog);
  return [];
}

/** The converter for a column of type `oid`; anything unknown is a string. */
export function converterFor(oid: number, catalog: TypeCatalog, depth = 0): ToJson {
  const scalar = SCALARS.get(oid);
  if (scalar !== undefined) return scalar;
  const elem = ARRAYS.get(oid);
  if (elem !== undefined) return arrayConverter(converterFor(elem, catalog, depth + 1), elem === 1020 ? ';' : ',');
  const f = catalog.get(oid);
  if (f !== undefined && depth < 8) {
    if (f.type === 'd' && f.base !== 0) return converterFor(f.base, catalog, depth + 1);
    if (f.category === 'A' && f.elem !== 0) return arrayConverter(converterFor(f.elem, catalog, depth + 1), f.delim || ',');
  }
  return str;
}

/**
 * A Postgres array literal → JSON array. Handles quoting, backslash escapes, NULL, nested
 * dimensions and the optional `[1:3]=` dimension prefix.
 */
export function arrayConverter(element: ToJson, delim = ','): ToJson {
  const d = delim.charCodeAt(0);
  return (text) => {
    let pos = 0;
    if (text.charCodeAt(0) === 91 /* [ */) {
      const eq = text.indexOf('=');
      pos = eq + 1;
    }
    let out = '';
    const parseLevel = (): void => {
      // at '{'
      pos++;
      out += '[';
      let first = true;
      if (text.charCodeAt(pos) === 125 /* } */) {
        pos++;
        out += ']';
        return;
      }
      for (;;) {
        if (!first) out += ',';
        first = false;
        const c = text.charCodeAt(pos);
        if (c === 123 /* { */) {
          parseLevel();
        } else if (c === 34 /* " */) {
          pos++;
          let s = '';
          for (;;) {
            const ch = text.charCodeAt(pos);
            if (Number.isNaN(ch)) throw new Error(`malformed array literal: ${text}`);
            if (ch === 92 /* \ */) {
              s += text[pos + 1];
              pos += 2;
            } else if (ch === 34) {
              pos++;
              break;
            } else {
              s += text[pos++];
            }
          }
          out += element(s);
        } else {
          const start = pos;
          while (pos < text.length && text.charCodeAt(pos) !== d && text.charCodeAt(pos) !== 125) pos++;
          const s = text.slice(start, pos).trim();
          out += s === 'NULL' ? 'null' : element(s);
        }
        const next = text.charCodeAt(pos);
        if (next === d) {
          pos++;
          continue;
        }
        if (next === 125) {
          pos++;
          out += ']';
          return;
        }
        throw new Error(`malformed array literal: ${text}`);
      }
    };
    if (text.charCodeAt(pos) !== 123) throw new Error(`malformed array literal: ${text}`);
    parseLevel();
    return out;
  };
}
