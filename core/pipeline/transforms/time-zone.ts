/**
 * Time zones for times written without an offset: UTC, a fixed offset (`+02:00`, `-0530`), or an
 * IANA name (`Europe/Berlin`) resolved with Intl, which Node ships with full ICU data.
 */

export interface TimeZone {
  readonly name: string;
  /** The UTC time of a wall-clock time, given as the ms it would be if the wall clock were UTC. */
  toUtc(wallMs: number): number;
}

const UTC: TimeZone = { name: 'UTC', toUtc: (wall) => wall };
const FIXED = /^(?:UTC|GMT)?([+-])(\d{2}):?(\d{2})$/;

/** Throws an Error naming the zone when it is unknown. */
export function resolveTimeZone(name: string): TimeZone {
  if (name === 'UTC' || name === 'Z' || name === 'GMT') return UTC;
  const fixed = FIXED.exec(name);
  if (fixed !== null) {
    const hours = Number(fixed[2]);
    const minutes = Number(fixed[3]);
    if (hours > 23 || minutes > 59) throw new Error(`invalid offset "${name}"`);
    const offset = (fixed[1] === '-' ? -1 : 1) * (hours * 60 + minutes) * 60_000;
    return { name, toUtc: (wall) => wall - offset };
  }
  let format: Intl.DateTimeFormat;
  try {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone: name,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
  } catch {
    throw new Error(`unknown time zone "${name}" (use UTC, an IANA name like Europe/Berlin, or an offset like +02:00)`);
  }
  return ianaZone(name, format);
}

/** Offsets change on whole quarter hours in every zone in use; one formatToParts per quarter hour seen. */
const BUCKET_MS = 15 * 60_000;
const CACHE_LIMIT = 4096;

function ianaZone(name: string, format: Intl.DateTimeFormat): TimeZone {
  const cache = new Map<number, number>();
  const offsetAt = (utcMs: number): number => {
    const bucket = Math.floor(utcMs / BUCKET_MS);
    let offset = cache.get(bucket);
    if (offset === undefined) {
      const at = bucket * BUCKET_MS;
      const f: Record<string, number> = {};
      for (const p of format.formatToParts(at)) if (p.type !== 'literal') f[p.type] = Number(p.value);
      offset = utcFromFields(f['year']!, f['month']! - 1, f['day']!, f['hour']!, f['minute']!, f['second']!, 0) - at;
      if (cache.size >= CACHE_LIMIT) cache.clear();
      cache.set(bucket, offset);
    }
    return offset;
  };
  return {
    name,
    toUtc(wall) {
      // The offset at the wall time read as UTC is right except near a change; one more look fixes that.
      const first = offsetAt(wall);
      const t = wall - first;
      const second = offsetAt(t);
      return second === first ? t : wall - second;
    },
  };
}

/** Date.UTC without its mapping of years 0..99 to 1900..1999. */
export function utcFromFields(year: number, month0: number, day: number, hour: number, minute: number, second: number, ms: number): number {
  const t = Date.UTC(year, month0, day, hour, minute, second, ms);
  if (year >= 0 && year < 100) {
    const d = new Date(t);
    d.setUTCFullYear(year);
    return d.getTime();
  }
  return t;
}

export function daysInMonth(year: number, month1: number): number {
  if (month1 === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return month1 === 4 || month1 === 6 || month1 === 9 || month1 === 11 ? 30 : 31;
}
