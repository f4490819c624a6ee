/**
 * Parsers of textual times, compiled once: strict ISO 8601 / RFC 3339, and strftime-like
 * patterns. A parser returns ms since the epoch or throws an Error saying what is wrong.
 *
 * strftime directives: %Y (4-digit year) %y (2-digit: 69..99 → 19xx, else 20xx) %m %d %e
 * %H %I %p %M %S, %f (fraction of a second, 1..9 digits) %L (milliseconds, 3 digits),
 * %z (Z, ±HH, ±HHMM, ±HH:MM) %Z (UTC, GMT or Z only), %b %h %B (month names) %a %A (weekday
 * names, checked for shape only), %s (seconds since the epoch), %T = %H:%M:%S, %F = %Y-%m-%d,
 * %R = %H:%M, %D = %m/%d/%y, %n %t (whitespace), %%. Spaces in the pattern match one or more
 * spaces. Names match in any case. Without a year (syslog: `%b %e %H:%M:%S`) the year is the
 * one of the event's current timestamp, or the year before if that would put the time more
 * than a day after it.
 */
import { daysInMonth, utcFromFields, type TimeZone } from './time-zone.js';

export type TimeParser = (text: string, referenceMs: number) => number;

const MAX_MS = 8.64e15;

interface Fields {
  year: number | undefined;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  ms: number;
  /** ms east of UTC, when the text says. */
  offset: number | undefined;
  pm: boolean | undefined;
  epochS: number | undefined;
}

function newFields(): Fields {
  return { year: undefined, month: 1, day: 1, hour: 0, minute: 0, second: 0, ms: 0, offset: undefined, pm: undefined, epochS: undefined };
}

function checkRanges(f: Fields, year: number): void {
  if (f.month < 1 || f.month > 12) throw new Error(`month ${f.month} is out of range`);
  if (f.day < 1 || f.day > daysInMonth(year, f.month)) throw new Error(`day ${f.day} is out of range for ${year}-${f.month}`);
  if (f.hour > 23) throw new Error(`hour ${f.hour} is out of range`);
  if (f.minute > 59) throw new Error(`minute ${f.minute} is out of range`);
  if (f.second > 60) throw new Error(`second ${f.second} is out of range`);
}

function checked(ms: number): number {
  if (!Number.isFinite(ms) || Math.abs(ms) > MAX_MS) throw new Error('the time is out of range');
  return ms;
}

function resolve(f: Fields, zone: TimeZone, referenceMs: number): number {
  if (f.epochS !== undefined) return checked(f.epochS * 1000 + f.ms);
  const toUtc = (year: number): number => {
    checkRanges(f, year);
    const wall = utcFromFields(year, f.month - 1, f.day, f.hour, f.minute, f.second, f.ms);
    return f.offset !== undefined ? wall - f.offset : zone.toUtc(wall);
  };
  if (f.year !== undefined) return checked(toUtc(f.year));
  const refYear = new Date(referenceMs).getUTCFullYear();
  const t = toUtc(refYear);
  return checked(t > referenceMs + 86_400_000 ? toUtc(refYear - 1) : t);
}

/** Milliseconds of a fraction of a second written with 1..9 digits (truncated, not rounded). */
function fractionMs(digits: string): number {
  return Number((digits + '00').slice(0, 3));
}

function parseOffset(text: string): number {
  if (text === 'Z' || text === 'z') return 0;
  const sign = text[0] === '-' ? -1 : 1;
  const digits = text.slice(1).replace(':', '');
  const hours = Number(digits.slice(0, 2));
  const minutes = digits.length > 2 ? Number(digits.slice(2, 4)) : 0;
  if (hours > 23 || minutes > 59) throw new Error(`invalid offset "${text}"`);
  return sign * (hours * 60 + minutes) * 60_000;
}

/** The number written by the digits text[from..to), or -1 if any is not a digit. */
function digitsAt(text: string, from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to; i++) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

function isSpace(c: number): boolean {
  return c === 32 || c === 9 || c === 10 || c === 13;
}

/**
 * ISO 8601 / RFC 3339 in its extended form: `YYYY-MM-DD`, then optionally `[T ]HH:MM`, `:SS`,
 * `.fraction` (or `,`), and an offset `Z`, `±HH`, `±HHMM` or `±HH:MM`; surrounding spaces are
 * ignored. A scanner rather than a regex: this runs once per event and the regex with its
 * captures and Number() conversions cost about five times as much.
 */
export function isoParser(zone: TimeZone): TimeParser {
  return (text, referenceMs) => {
    let start = 0;
    let end = text.length;
    while (start < end && isSpace(text.charCodeAt(start))) start++;
    while (end > start && isSpace(text.charCodeAt(end - 1))) end--;
    const bad = (): Error => new Error(`"${clip(text)}" is not an ISO 8601 time`);
    if (end - start < 10 || text.charCodeAt(start + 4) !== 45 || text.charCodeAt(start + 7) !== 45) throw bad();
    const year = digitsAt(text, start, start + 4);
    const month = digitsAt(text, start + 5, start + 7);
    const day = digitsAt(text, start + 8, start + 10);
    if (year < 0 || month < 0 || day < 0) throw bad();
    let hour = 0;
    let minute = 0;
    let second = 0;
    let ms = 0;
    let offset: number | undefined;
    let i = start + 10;
    const t = text.charCodeAt(i);
    if (i < end && (t === 84 || t === 116 || t === 32)) {
      // [Tt ]HH:MM
      if (end - i < 6 || text.charCodeAt(i + 3) !== 58) throw bad();
      hour = digitsAt(text, i + 1, i + 3);
      minute = digitsAt(text, i + 4, i + 6);
      if (hour < 0 || minute < 0) throw bad();
      i += 6;
      if (i < end && text.charCodeAt(i) === 58) {
        second = digitsAt(text, i + 1, i + 3);
        if (i + 3 > end || second < 0) throw bad();
        i += 3;
        const sep = text.charCodeAt(i);
        if (i < end && (sep === 46 || sep === 44)) {
          const from = i + 1;
          let to = from;
          while (to < end && to - from < 9) {
            const d = text.charCodeAt(to) - 48;
            if (d < 0 || d > 9) break;
            to++;
          }
          if (to === from) throw bad();
          // Milliseconds: the first three digits, padded (".5" is 500 ms); more are truncated.
          const take = Math.min(to - from, 3);
          ms = digitsAt(text, from, from + take) * (take === 1 ? 100 : take === 2 ? 10 : 1);
          i = to;
        }
      }
    }
    while (i < end && isSpace(text.charCodeAt(i))) i++;
    if (i < end) {
      const z = text.charCodeAt(i);
      if ((z === 90 || z === 122) && i + 1 === end) {
        offset = 0;
      } else if (z === 43 || z === 45) {
        const rest = text.slice(i, end);
        if (!/^[+-]\d{2}(?::?\d{2})?$/.test(rest)) throw bad();
        offset = parseOffset(rest);
      } else {
        throw bad();
      }
    }
    const f = newFields();
    f.year = year;
    f.month = month;
    f.day = day;
    f.hour = hour;
    f.minute = minute;
    f.second = second;
    f.ms = ms;
    f.offset = offset;
    return resolve(f, zone, referenceMs);
  };
}

const MONTHS = ['january', 'february', 'march', 'april', 'may', 'june', 'july', 'august', 'september', 'october', 'november', 'december'];
const WEEKDAYS = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'];

type Setter = (f: Fields, text: string) => void;

interface Directive {
  source: string;
  /** Present when the directive captures a group. */
  set?: Setter;
  /** What the directive provides, to check the pattern names a whole time. */
  provides?: 'year' | 'month' | 'day' | 'epoch';
}

const num =
  (key: 'month' | 'day' | 'hour' | 'minute' | 'second'): Setter =>
  (f, t) => {
    f[key] = Number(t);
  };

const DIRECTIVES: Record<string, Directive | string> = {
  Y: { source: '(\\d{4})', set: (f, t) => (f.year = Number(t)), provides: 'year' },
  y: {
    source: '(\\d{2})',
    set: (f, t) => {
      const y = Number(t);
      f.year = y >= 69 ? 1900 + y : 2000 + y;
    },
    provides: 'year',
  },
  m: { source: '(\\d{1,2})', set: num('month'), provides: 'month' },
  d: { source: '(\\d{1,2})', set: num('day'), provides: 'day' },
  e: { source: ' ?(\\d{1,2})', set: num('day'), provides: 'day' },
  H: { source: '(\\d{1,2})', set: num('hour') },
  I: { source: '(\\d{1,2})', set: num('hour') },
  p: { source: '([AaPp][Mm])', set: (f, t) => (f.pm = t.toLowerCase() === 'pm') },
  M: { source: '(\\d{1,2})', set: num('minute') },
  S: { source: '(\\d{1,2})', set: num('second') },
  f: { source: '(\\d{1,9})', set: (f, t) => (f.ms = fractionMs(t)) },
  L: { source: '(\\d{3})', set: (f, t) => (f.ms = Number(t)) },
  z: { source: '(Z|z|[+-]\\d{2}(?::?\\d{2})?)', set: (f, t) => (f.offset = parseOffset(t)) },
  Z: {
    source: '([A-Za-z]{1,5})',
    set: (f, t) => {
      const u = t.toUpperCase();
      if (u !== 'UTC' && u !== 'GMT' && u !== 'Z') throw new Error(`zone name "${t}" is ambiguous; only UTC, GMT and Z are understood`);
      f.offset = 0;
    },
  },
  b: { source: `(${MONTHS.map((m) => m.slice(0, 3)).join('|')})`, set: (f, t) => (f.month = monthOf(t)), provides: 'month' },
  h: 'b',
  B: { source: `(${MONTHS.join('|')})`, set: (f, t) => (f.month = monthOf(t)), provides: 'month' },
  a: { source: `(?:${WEEKDAYS.map((d) => d.slice(0, 3)).join('|')})` },
  A: { source: `(?:${WEEKDAYS.join('|')})` },
  s: { source: '(-?\\d{1,15})', set: (f, t) => (f.epochS = Number(t)), provides: 'epoch' },
  T: '%H:%M:%S',
  F: '%Y-%m-%d',
  R: '%H:%M',
  D: '%m/%d/%y',
  n: { source: '\\s+' },
  t: { source: '\\s+' },
  '%': { source: '%' },
};

function monthOf(name: string): number {
  const lower = name.toLowerCase();
  return MONTHS.findIndex((m) => m.startsWith(lower.slice(0, 3))) + 1;
}

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Compiles a strftime-like pattern; throws an Error for an unknown directive or an incomplete date. */
export function strftimeParser(pattern: string, zone: TimeZone): TimeParser {
  const setters: Setter[] = [];
  const provided = new Set<string>();
  let usesPm = false;
  let usesHour12 = false;
  const compile = (p: string): string => {
    let source = '';
    for (let i = 0; i < p.length; i++) {
      const c = p[i]!;
      if (c === '%') {
        const name = p[i + 1];
        if (name === undefined) throw new Error(`pattern "${pattern}" ends with a lone %`);
        i++;
        const d = DIRECTIVES[name];
        if (d === undefined) throw new Error(`unknown directive %${name} in "${pattern}"`);
        if (typeof d === 'string') {
          source += compile(d.startsWith('%') ? d : `%${d}`);
          continue;
        }
        if (name === 'p') usesPm = true;
        if (name === 'I') usesHour12 = true;
        if (d.provides !== undefined) provided.add(d.provides);
        if (d.set !== undefined) setters.push(d.set);
        source += d.source;
      } else if (c === ' ') {
        while (p[i + 1] === ' ') i++;
        source += '\\s+';
      } else {
        source += escapeRegex(c);
      }
    }
    return source;
  };
  const source = compile(pattern);
  if (!provided.has('epoch') && !(provided.has('month') && provided.has('day'))) {
    throw new Error(`pattern "${pattern}" needs a month and a day (%m or %b, and %d) or %s`);
  }
  if (usesPm !== usesHour12) throw new Error(`pattern "${pattern}": %I and %p go together`);
  const re = new RegExp(`^${source}$`, 'i');
  return (text, referenceMs) => {
    const m = re.exec(text.trim());
    if (m === null) throw new Error(`"${clip(text)}" does not match "${pattern}"`);
    const f = newFields();
    for (let i = 0; i < setters.length; i++) setters[i]!(f, m[i + 1]!);
    if (f.pm !== undefined) {
      if (f.hour < 1 || f.hour > 12) throw new Error(`hour ${f.hour} is out of range for %I`);
      f.hour = (f.hour % 12) + (f.pm ? 12 : 0);
    }
    return resolve(f, zone, referenceMs);
  };
}

const UNIX = /^\s*-?\d+(?:\.\d+)?\s*$/;

/** Seconds (unit 1000) or milliseconds (unit 1) since the epoch, as a number or a decimal string. */
export function unixParser(unit: 1000 | 1): (value: unknown) => number {
  return (value) => {
    let n: number;
    if (typeof value === 'number') n = value;
    else if (typeof value === 'string' && UNIX.test(value)) n = Number(value);
    else throw new Error(`${typeof value === 'string' ? `"${clip(value)}"` : typeof value} is not a number of ${unit === 1 ? 'milliseconds' : 'seconds'}`);
    return checked(Math.round(n * unit));
  };
}

function clip(text: string): string {
  return text.length > 64 ? `${text.slice(0, 64)}…` : text;
}
