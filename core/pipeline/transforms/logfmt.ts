/**
 * logfmt, as written by Go's go-logfmt and Heroku: `key=value` pairs separated by spaces.
 *
 * - A bare value runs to the next space or tab (lenient: it may contain `=` and `"`, which real
 *   logs do, e.g. `url=/a?b=c`).
 * - A quoted value is `"..."` with the escapes `\" \\ \n \r \t \/ \b \f \uXXXX`; an unknown escape
 *   keeps the backslash and the character.
 * - A key without `=` is a flag and parses as `true`; `key=` is the empty string.
 * - Keys are runs of characters other than space, tab, `=` and `"`; a later duplicate wins.
 *
 * Pure and I/O-free. `formatLogfmt` is the inverse for what `parseLogfmt` returns:
 * parseLogfmt(formatLogfmt(r)) deep-equals r for every record with valid keys.
 */

export type LogfmtRecord = Record<string, string | true>;

export class LogfmtSyntaxError extends Error {
  constructor(
    message: string,
    /** 0-based offset in the input. */
    readonly position: number,
  ) {
    super(`${message} at offset ${position}`);
    this.name = new.target.name;
  }
}

const SPACE = 0x20;
const TAB = 0x09;
const EQUALS = 0x3d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

function isSeparator(c: number): boolean {
  return c === SPACE || c === TAB || c === 0x0a || c === 0x0d;
}

function put(out: LogfmtRecord, key: string, value: string | true): void {
  if (key === '__proto__') {
    Object.defineProperty(out, key, { value, writable: true, enumerable: true, configurable: true });
  } else {
    out[key] = value;
  }
}

export function parseLogfmt(text: string): LogfmtRecord {
  const out: LogfmtRecord = {};
  const n = text.length;
  let i = 0;
  for (;;) {
    while (i < n && isSeparator(text.charCodeAt(i))) i++;
    if (i >= n) return out;
    const keyStart = i;
    for (; i < n; i++) {
      const c = text.charCodeAt(i);
      if (isSeparator(c) || c === EQUALS || c === QUOTE) break;
    }
    if (i === keyStart) {
      const c = text.charCodeAt(i);
      throw new LogfmtSyntaxError(c === EQUALS ? 'missing key before "="' : 'unexpected \'"\' where a key was expected', i);
    }
    const key = text.slice(keyStart, i);
    if (i >= n || isSeparator(text.charCodeAt(i))) {
      put(out, key, true);
      continue;
    }
    if (text.charCodeAt(i) === QUOTE) throw new LogfmtSyntaxError('unexpected \'"\' in a key', i);
    i++; // '='
    if (i < n && text.charCodeAt(i) === QUOTE) {
      const [value, end] = readQuoted(text, i);
      put(out, key, value);
      i = end;
      if (i < n && !isSeparator(text.charCodeAt(i))) {
        throw new LogfmtSyntaxError('expected a space after a quoted value', i);
      }
    } else {
      const valueStart = i;
      while (i < n && !isSeparator(text.charCodeAt(i))) i++;
      put(out, key, text.slice(valueStart, i));
    }
  }
}

/** Reads a quoted value starting at the opening quote; returns it and the offset after the closing quote. */
function readQuoted(text: string, open: number): [string, number] {
  const n = text.length;
  let i = open + 1;
  let chunkStart = i;
  let value = '';
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) return [value + text.slice(chunkStart, i), i + 1];
    if (c !== BACKSLASH) {
      i++;
      continue;
    }
    value += text.slice(chunkStart, i);
    if (i + 1 >= n) break;
    const e = text[i + 1]!;
    switch (e) {
      case '"':
      case '\\':
      case '/':
        value += e;
        i += 2;
        break;
      case 'n':
        value += '\n';
        i += 2;
        break;
      case 'r':
        value += '\r';
        i += 2;
        break;
      case 't':
        value += '\t';
        i += 2;
        break;
      case 'b':
        value += '\b';
        i += 2;
        break;
      case 'f':
        value += '\f';
        i += 2;
        break;
      case 'u': {
        const hex = text.slice(i + 2, i + 6);
        if (/^[0-9a-fA-F]{4}$/.test(hex)) {
          value += String.fromCharCode(parseInt(hex, 16));
          i += 6;
        } else {
          value += '\\u';
          i += 2;
        }
        break;
      }
      default:
        value += '\\' + e;
        i += 2;
    }
    chunkStart = i;
  }
  throw new LogfmtSyntaxError('unterminated quoted value', open);
}

/** A valid key: non-empty, no space, tab, CR, LF, `=` or `"`. */
export function isLogfmtKey(key: string): boolean {
  return key.length > 0 && !/[ \t\r\n="]/.test(key);
}

// Bare values must not need quoting to parse back: no separator, no quote, no backslash (it
// would look like an escape to other parsers), no `=` (strict parsers reject it) and no control
// characters; and not empty (`k=` reads back as "", but `k=""` says so plainly).
const NEEDS_QUOTES = /[\s"\\=\x00-\x1f\x7f]|^$/;

function quote(value: string): string {
  let out = '"';
  for (let i = 0; i < value.length; i++) {
    const ch = value[i]!;
    const c = value.charCodeAt(i);
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (c < 0x20 || c === 0x7f) out += '\\u' + c.toString(16).padStart(4, '0');
    else out += ch;
  }
  return out + '"';
}

/** Writes a record as one logfmt line; throws on an invalid key. */
export function formatLogfmt(record: Readonly<LogfmtRecord>): string {
  const pairs: string[] = [];
  for (const key of Object.keys(record)) {
    if (!isLogfmtKey(key)) throw new Error(`invalid logfmt key ${JSON.stringify(key)}`);
    const value = record[key]!;
    if (value === true) pairs.push(key);
    else pairs.push(`${key}=${NEEDS_QUOTES.test(value) ? quote(value) : value}`);
  }
  return pairs.join(' ');
}
