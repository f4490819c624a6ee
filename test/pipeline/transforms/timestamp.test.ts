import { describe, expect, it } from 'vitest';
import type { TimestampTransform } from '../../../core/pipeline/transforms/index.js';
import { strftimeParser, isoParser } from '../../../core/pipeline/transforms/time-format.js';
import { resolveTimeZone } from '../../../core/pipeline/transforms/time-zone.js';
import { configError, event, run } from './helpers.js';
import { compileTransforms } from '../../../core/pipeline/transforms/index.js';

const REF = Date.UTC(2024, 5, 15, 12, 0, 0);

function ts(spec: Omit<TimestampTransform, 'type' | 'field'>, value: unknown, reference = REF): number | string | null {
  const out = run([{ type: 'timestamp', field: 't', ...spec }], { t: value }, { timestamp: reference });
  if (out === null) return null;
  const err = (out.value as Record<string, unknown>)['_timestamp_error'];
  return typeof err === 'string' ? err : out.timestamp;
}

describe('timestamp iso8601', () => {
  const iso = { format: 'iso8601' } as const;
  it('parses RFC 3339 and ISO 8601 extended forms', () => {
    expect(ts(iso, '2024-01-02T03:04:05Z')).toBe(Date.UTC(2024, 0, 2, 3, 4, 5));
    expect(ts(iso, '2024-01-02T03:04:05.678Z')).toBe(Date.UTC(2024, 0, 2, 3, 4, 5, 678));
    expect(ts(iso, '2024-01-02T03:04:05.678912345Z')).toBe(Date.UTC(2024, 0, 2, 3, 4, 5, 678));
    expect(ts(iso, '2024-01-02T03:04:05,5Z')).toBe(Date.UTC(2024, 0, 2, 3, 4, 5, 500));
    expect(ts(iso, '2024-01-02 03:04:05+02:00')).toBe(Date.UTC(2024, 0, 2, 1, 4, 5));
    expect(ts(iso, '2024-01-02T03:04:05-0130')).toBe(Date.UTC(2024, 0, 2, 4, 34, 5));
    expect(ts(iso, '2024-01-02T03:04:05+05')).toBe(Date.UTC(2024, 0, 1, 22, 4, 5));
    expect(ts(iso, '2024-01-02T03:04')).toBe(Date.UTC(2024, 0, 2, 3, 4));
    expect(ts(iso, '2024-01-02')).toBe(Date.UTC(2024, 0, 2));
    expect(ts(iso, ' 2024-01-02t03:04:05z ')).toBe(Date.UTC(2024, 0, 2, 3, 4, 5));
    expect(ts(iso, '0099-01-01T00:00:00Z')).toBe(new Date('0099-01-01T00:00:00Z').getTime());
  });

  it('uses the timezone for times without an offset', () => {
    expect(ts({ ...iso, timezone: 'Europe/Berlin' }, '2024-01-02T03:04:05')).toBe(Date.UTC(2024, 0, 2, 2, 4, 5));
    expect(ts({ ...iso, timezone: 'Europe/Berlin' }, '2024-07-02T03:04:05')).toBe(Date.UTC(2024, 6, 2, 1, 4, 5));
    expect(ts({ ...iso, timezone: 'Europe/Berlin' }, '2024-07-02T03:04:05Z')).toBe(Date.UTC(2024, 6, 2, 3, 4, 5));
    expect(ts({ ...iso, timezone: '-05:00' }, '2024-07-02T03:04:05')).toBe(Date.UTC(2024, 6, 2, 8, 4, 5));
    expect(ts({ ...iso, timezone: 'America/New_York' }, '2024-03-10T03:30:00')).toBe(Date.UTC(2024, 2, 10, 7, 30));
    expect(ts({ ...iso, timezone: 'America/New_York' }, '2024-03-10T01:30:00')).toBe(Date.UTC(2024, 2, 10, 6, 30));
    expect(ts({ ...iso, timezone: 'Asia/Kathmandu' }, '2024-03-10T12:00:00')).toBe(Date.UTC(2024, 2, 10, 6, 15));
  });

  it('rejects what is not ISO 8601, or not a real date', () => {
    for (const bad of ['2024-01-02T03:04:05.Z', '2024-01-02T03:04:05.1234567891Z', '2024-01-02T3:04:05Z', '2024-01-02T03:04:05Zjunk', '2024-01-02X03:04', '2024-01-02T03:04+1', 'yesterday', 'March 7 2020', '2024-13-01', '2024-02-30', '2023-02-29T00:00:00Z', '2024-01-01T24:00:00Z', '2024-01-01T10:60:00Z', '2024-1-1', '1704067200']) {
      expect(ts(iso, bad), bad).toEqual(expect.stringContaining('field t: '));
    }
    expect(ts(iso, '2024-02-29T00:00:00Z')).toBe(Date.UTC(2024, 1, 29));
    expect(ts(iso, 1704067200)).toBe('field t: expected a string, got number');
    expect(ts(iso, undefined)).toBe('field t is missing');
  });
});

describe('timestamp unix', () => {
  it('reads seconds and milliseconds, as numbers or strings', () => {
    expect(ts({ format: 'unix_s' }, 1704067200)).toBe(1704067200000);
    expect(ts({ format: 'unix_s' }, 1704067200.1234)).toBe(1704067200123);
    expect(ts({ format: 'unix_s' }, '1704067200')).toBe(1704067200000);
    expect(ts({ format: 'unix_ms' }, 1704067200123)).toBe(1704067200123);
    expect(ts({ format: 'unix_ms' }, '1704067200123')).toBe(1704067200123);
    expect(ts({ format: 'unix_ms' }, -1000)).toBe(-1000);
  });

  it('rejects other values', () => {
    for (const bad of ['abc', '', '1e3', true, null, { a: 1 }, 1e300]) {
      expect(ts({ format: 'unix_s' }, bad), JSON.stringify(bad)).toEqual(expect.stringContaining('field t: '));
    }
  });
});

describe('timestamp strftime', () => {
  it('parses common patterns', () => {
    expect(ts({ format: '%Y-%m-%d %H:%M:%S' }, '2024-01-02 03:04:05')).toBe(Date.UTC(2024, 0, 2, 3, 4, 5));
    expect(ts({ format: '%d/%b/%Y:%H:%M:%S %z' }, '10/Oct/2023:13:55:36 -0700')).toBe(Date.UTC(2023, 9, 10, 20, 55, 36));
    expect(ts({ format: '%Y-%m-%dT%H:%M:%S.%f%z' }, '2024-01-02T03:04:05.123456+00:00')).toBe(Date.UTC(2024, 0, 2, 3, 4, 5, 123));
    expect(ts({ format: '%F %T.%L' }, '2024-01-02 03:04:05.007')).toBe(Date.UTC(2024, 0, 2, 3, 4, 5, 7));
    expect(ts({ format: '%A, %d %B %Y %I:%M %p' }, 'Tuesday, 02 January 2024 12:30 AM')).toBe(Date.UTC(2024, 0, 2, 0, 30));
    expect(ts({ format: '%m/%d/%y %I:%M:%S %p' }, '01/02/24 01:30:00 pm')).toBe(Date.UTC(2024, 0, 2, 13, 30));
    expect(ts({ format: '%D %R' }, '12/31/99 23:59')).toBe(Date.UTC(1999, 11, 31, 23, 59));
    expect(ts({ format: '%s' }, '1704067200')).toBe(1704067200000);
    expect(ts({ format: '%Y%m%d %H%M%S %Z' }, '20240102 030405 UTC')).toBe(Date.UTC(2024, 0, 2, 3, 4, 5));
    expect(ts({ format: '100%% %Y-%m-%d' }, '100% 2024-01-02')).toBe(Date.UTC(2024, 0, 2));
  });

  it('infers the year for syslog times from the event timestamp', () => {
    expect(ts({ format: '%b %e %H:%M:%S' }, 'Jun  5 10:00:00')).toBe(Date.UTC(2024, 5, 5, 10));
    expect(ts({ format: '%b %e %H:%M:%S' }, 'Jun 15 12:30:00')).toBe(Date.UTC(2024, 5, 15, 12, 30));
    // A December line read in early January belongs to the year before.
    expect(ts({ format: '%b %d %H:%M:%S' }, 'Dec 31 23:59:59', Date.UTC(2025, 0, 1, 0, 0, 5))).toBe(Date.UTC(2024, 11, 31, 23, 59, 59));
    // Feb 29 only exists in leap years: fine for 2024.
    expect(ts({ format: '%b %d' }, 'Feb 29', Date.UTC(2024, 5, 1))).toBe(Date.UTC(2024, 1, 29));
  });

  it('uses the timezone without %z', () => {
    expect(ts({ format: '%Y-%m-%d %H:%M:%S', timezone: 'Europe/Berlin' }, '2024-07-01 12:00:00')).toBe(Date.UTC(2024, 6, 1, 10));
    expect(ts({ format: '%Y-%m-%d %H:%M:%S %z', timezone: 'Europe/Berlin' }, '2024-07-01 12:00:00 +0000')).toBe(Date.UTC(2024, 6, 1, 12));
  });

  it('reports text that does not match or is out of range', () => {
    expect(ts({ format: '%Y-%m-%d' }, '2024/01/02')).toBe('field t: "2024/01/02" does not match "%Y-%m-%d"');
    expect(ts({ format: '%Y-%m-%d' }, '2024-02-30')).toEqual(expect.stringContaining('day 30 is out of range'));
    expect(ts({ format: '%Y-%m-%d %H' }, '2024-02-03 25')).toEqual(expect.stringContaining('hour 25'));
    expect(ts({ format: '%Y-%m-%d %Z' }, '2024-02-03 CEST')).toEqual(expect.stringContaining('ambiguous'));
    expect(ts({ format: '%m/%d/%Y %I %p' }, '01/02/2024 13 PM')).toEqual(expect.stringContaining('hour 13'));
  });

  it('rejects bad patterns at compile time', () => {
    expect(configError([{ type: 'timestamp', field: 't', format: '%Y-%m-%d %Q' }])).toMatchObject({ path: '/0/format', message: expect.stringContaining('%Q') });
    expect(configError([{ type: 'timestamp', field: 't', format: '%H:%M' }])).toMatchObject({ message: expect.stringContaining('needs a month and a day') });
    expect(configError([{ type: 'timestamp', field: 't', format: '%Y-%m-%d %' }])).toMatchObject({ message: expect.stringContaining('lone %') });
    expect(configError([{ type: 'timestamp', field: 't', format: '%F %I:%M' }])).toMatchObject({ message: expect.stringContaining('%I and %p') });
    expect(configError([{ type: 'timestamp', field: 't', format: 'iso8601', timezone: 'Mars/Olympus' }])).toMatchObject({
      path: '/0/timezone',
      message: expect.stringContaining('unknown time zone'),
    });
  });
});

describe('timestamp on_error', () => {
  it('keep leaves the timestamp and records the error; drop drops', () => {
    const out = run([{ type: 'timestamp', field: 'time', format: 'iso8601' }], { time: 'bad' }, { timestamp: 5 });
    expect(out?.timestamp).toBe(5);
    expect(out?.value).toEqual({ time: 'bad', _timestamp_error: 'field time: "bad" is not an ISO 8601 time' });
    expect(run([{ type: 'timestamp', field: 'time', format: 'iso8601', on_error: 'drop' }], { time: 'bad' })).toBeNull();
    expect(run([{ type: 'timestamp', field: 'time', format: 'iso8601', on_error: 'drop' }], {})).toBeNull();
  });

  it('sets only the timestamp on success', () => {
    const value = { time: '2024-01-01T00:00:00Z' };
    const fn = compileTransforms([{ type: 'timestamp', field: 'time', format: 'iso8601' }]);
    const [out] = fn(event(value));
    expect(out!.value).toBe(value);
    expect(out!.timestamp).toBe(Date.UTC(2024, 0, 1));
  });
});

describe('time zones', () => {
  it('agree with Intl across a year of hours', () => {
    const zone = resolveTimeZone('Australia/Lord_Howe');
    const parse = isoParser(zone);
    const fmt = new Intl.DateTimeFormat('sv-SE', { timeZone: 'Australia/Lord_Howe', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
    for (let t = Date.UTC(2024, 0, 1); t < Date.UTC(2025, 0, 1); t += 3_600_000 + 7 * 60_000) {
      const wall = fmt.format(t).replace(' ', 'T');
      const back = parse(wall, t);
      // In the half hour repeated when clocks go back either answer names the same wall time.
      expect(fmt.format(back).replace(' ', 'T'), wall).toBe(wall);
    }
  });

  it('parse fixed offsets and refuse nonsense', () => {
    expect(resolveTimeZone('+05:30').toUtc(0)).toBe(-5.5 * 3_600_000);
    expect(resolveTimeZone('UTC-0800').toUtc(0)).toBe(8 * 3_600_000);
    expect(() => resolveTimeZone('+25:00')).toThrow();
    expect(() => resolveTimeZone('Nowhere/City')).toThrow(/unknown time zone/);
  });

  it('strftimeParser is usable on its own', () => {
    const parse = strftimeParser('%d.%m.%Y', resolveTimeZone('UTC'));
    expect(parse('02.01.2024', 0)).toBe(Date.UTC(2024, 0, 2));
    expect(() => parse('2.1.24', 0)).toThrow(/does not match/);
  });
});
