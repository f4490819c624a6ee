/**
 * Parsers and formatters for the quantities people type: sizes (`10GiB`, `512MiB`, `1GB`),
 * durations (`7d`, `12h`, `1h30m`, `250ms`) and whole numbers. Pure: no I/O, no globals.
 *
 * Sizes follow IEC/SI: `KiB`/`MiB`/`GiB`/`TiB` are powers of 1024, `KB`/`MB`/`GB`/`TB` powers of
 * 1000 (as in Vector and Redpanda); units are case-insensitive. Durations use lower-case units
 * only, so that `m` (minutes) is never read as months: `ms`, `s`, `m`, `h`, `d` (24 h), `w` (7 d).
 * A bare number is bytes for a size and milliseconds for a duration, matching the `_bytes` and
 * `_ms` suffixes of option and config names.
 *
 * Invalid text throws `InvalidArgumentError` (code SLUICE_INVALID_ARGUMENT).
 */
import { InvalidArgumentError } from '../log/errors.js';

const SIZE_UNITS: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

const DURATION_UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

const NUMBER = '(\\d+(?:\\.\\d+)?|\\.\\d+)';
const SIZE_RE = new RegExp(`^${NUMBER}\\s*([a-z]*)$`, 'i');
const DURATION_PART_RE = new RegExp(`${NUMBER}(ms|s|m|h|d|w)`, 'y');

/** Bytes from `1048576`, `512MiB`, `1.5 GiB`, `1GB`; fractions of a byte are rounded. */
export function parseBytes(text: string): number {
  const match = SIZE_RE.exec(text.trim());
  const factor = match ? SIZE_UNITS[(match[2] ?? '').toLowerCase() || 'b'] : undefined;
  if (!match || factor === undefined) {
    throw new InvalidArgumentError(
      `invalid size "${text}": expected bytes with an optional unit (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB), e.g. 512MiB`,
    );
  }
  return checkedInteger(Number(match[1]) * factor, text, 'size');
}

/**
 * Milliseconds from `250`, `250ms`, `30s`, `30m`, `12h`, `7d`, `2w`, or a sum like `1h30m`.
 * A bare number is milliseconds; fractions of a millisecond are rounded.
 */
export function parseDuration(text: string): number {
  const source = text.trim();
  if (/^\d+$/.test(source)) return checkedInteger(Number(source), text, 'duration');
  let total = 0;
  let index = 0;
  DURATION_PART_RE.lastIndex = 0;
  while (index < source.length) {
    DURATION_PART_RE.lastIndex = index;
    const part = DURATION_PART_RE.exec(source);
    if (!part) {
      throw new InvalidArgumentError(
        `invalid duration "${text}": expected a number with a unit (ms, s, m, h, d, w), e.g. 30m, 7d or 1h30m`,
      );
    }
    total += Number(part[1]) * DURATION_UNITS[part[2]!]!;
    index = DURATION_PART_RE.lastIndex;
  }
  if (source.length === 0) {
    throw new InvalidArgumentError(`invalid duration "${text}": it is empty`);
  }
  return checkedInteger(total, text, 'duration');
}

/** A whole number written in decimal digits only (no sign, no exponent, no unit), at least `min`. */
export function parseInteger(text: string, min = 0, what = 'number'): number {
  const source = text.trim();
  if (!/^\d+$/.test(source)) {
    throw new InvalidArgumentError(`invalid ${what} "${text}": expected a whole number`);
  }
  const value = Number(source);
  if (!Number.isSafeInteger(value)) throw new InvalidArgumentError(`invalid ${what} "${text}": too large`);
  if (value < min) throw new InvalidArgumentError(`invalid ${what} "${text}": must be at least ${min}`);
  return value;
}

function checkedInteger(value: number, text: string, what: string): number {
  const rounded = Math.round(value);
  if (!Number.isSafeInteger(rounded)) throw new InvalidArgumentError(`invalid ${what} "${text}": too large`);
  return rounded;
}

const BINARY_PREFIXES = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** `1536` → `1.5 KiB`; exact byte counts below 1 KiB. For people, not for parsing back exactly. */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < BINARY_PREFIXES.length - 1) {
    value /= 1024;
    unit++;
  }
  if (unit === 0) return `${bytes} B`;
  const digits = value >= 100 ? 0 : value >= 10 ? 1 : 2;
  return `${Number(value.toFixed(digits))} ${BINARY_PREFIXES[unit]}`;
}

/** `5400000` → `1h30m`, `604800000` → `7d`; exact, so `parseDuration(formatDuration(ms)) === ms`. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0ms';
  let rest = Math.round(Math.abs(ms));
  let out = ms < 0 ? '-' : '';
  for (const [unit, size] of Object.entries(DURATION_UNITS).reverse()) {
    // Days read better than weeks in retention settings (14d, not 2w).
    if (unit === 'w') continue;
    if (rest >= size) {
      out += `${Math.floor(rest / size)}${unit}`;
      rest %= size;
    }
  }
  return out;
}
