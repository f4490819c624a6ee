import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { formatBytes, formatDuration, parseBytes, parseDuration, parseInteger } from '../../core/util/units.js';
import { InvalidArgumentError } from '../../core/log/errors.js';

describe('parseBytes', () => {
  it.each([
    ['0', 0],
    ['1048576', 1048576],
    ['100B', 100],
    ['1KB', 1000],
    ['1kb', 1000],
    ['1GB', 1e9],
    ['2TB', 2e12],
    ['1KiB', 1024],
    ['512MiB', 512 * 2 ** 20],
    ['10GiB', 10 * 2 ** 30],
    ['10gib', 10 * 2 ** 30],
    ['1.5 GiB', 1.5 * 2 ** 30],
    [' 64 MiB ', 64 * 2 ** 20],
    ['1TiB', 2 ** 40],
    ['.5KiB', 512],
  ])('%s is %d bytes', (text, bytes) => {
    expect(parseBytes(text)).toBe(bytes);
  });

  it.each(['', 'GiB', '10XB', '-1', '1e3', '10 G', '1,5MiB', 'ten', '99999999999999TiB'])('rejects %j', (text) => {
    expect(() => parseBytes(text)).toThrow(InvalidArgumentError);
    expect(() => parseBytes(text)).toThrow(/invalid size/);
  });
});

describe('parseDuration', () => {
  it.each([
    ['0', 0],
    ['250', 250],
    ['250ms', 250],
    ['30s', 30_000],
    ['30m', 1_800_000],
    ['12h', 43_200_000],
    ['7d', 604_800_000],
    ['2w', 1_209_600_000],
    ['1h30m', 5_400_000],
    ['1d12h', 129_600_000],
    ['1.5h', 5_400_000],
    ['1m30s500ms', 90_500],
  ])('%s is %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['', 'h', '7days', '7D', '1M', '-5m', '5 m', '1h 30m', '10y', 'm10'])('rejects %j', (text) => {
    expect(() => parseDuration(text)).toThrow(InvalidArgumentError);
  });

  it('round-trips with formatDuration', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 45 }), (ms) => {
        expect(parseDuration(formatDuration(ms))).toBe(ms);
      }),
    );
  });
});

describe('formatDuration', () => {
  it.each([
    [0, '0ms'],
    [1500, '1s500ms'],
    [5_400_000, '1h30m'],
    [604_800_000, '7d'],
    [1_209_600_000, '14d'],
  ])('%d is %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });
});

describe('formatBytes', () => {
  it.each([
    [0, '0 B'],
    [1023, '1023 B'],
    [1024, '1 KiB'],
    [1536, '1.5 KiB'],
    [10 * 2 ** 30, '10 GiB'],
    [128 * 2 ** 20, '128 MiB'],
    [123.4 * 2 ** 20, '123 MiB'],
  ])('%d is %s', (bytes, text) => {
    expect(formatBytes(bytes)).toBe(text);
  });
});

describe('parseInteger', () => {
  it('accepts decimal digits at or above the minimum', () => {
    expect(parseInteger('0')).toBe(0);
    expect(parseInteger('42', 1)).toBe(42);
  });

  it.each([['-1'], ['1.5'], ['1e3'], ['0x10'], [''], ['12abc'], ['99999999999999999999']])('rejects %j', (text) => {
    expect(() => parseInteger(text)).toThrow(InvalidArgumentError);
  });

  it('rejects values below the minimum, naming it', () => {
    expect(() => parseInteger('0', 1, 'partitions')).toThrow('invalid partitions "0": must be at least 1');
  });
});
