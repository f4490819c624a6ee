import { describe, expect, it } from 'vitest';
import { fingerprintOf, verifies } from '../../../connectors/file/fingerprint.js';
import { formatLine } from '../../../connectors/file/format.js';
import { parsePosition } from '../../../connectors/file/position.js';
import { FilePositionError } from '../../../connectors/file/errors.js';

describe('fingerprints', () => {
  it('covers what a short file has, and a longer one of the same file still verifies', () => {
    const short = fingerprintOf(Buffer.from('hello\n'));
    expect(short.bytes).toBe(6);
    expect(verifies(Buffer.from('hello\nworld\n'), short)).toBe(true);
    expect(verifies(Buffer.from('hellO\nworld\n'), short)).toBe(false);
    // A file now shorter than the fingerprint is not the same file.
    expect(verifies(Buffer.from('hel'), short)).toBe(false);
    expect(fingerprintOf(Buffer.from('hello\nworld\n'), 6)).toEqual(short);
  });

  it('of an empty file verifies anything', () => {
    expect(verifies(Buffer.from('x'), fingerprintOf(Buffer.alloc(0)))).toBe(true);
  });
});

describe('formatLine', () => {
  const meta = ['/l/a.log', 'h1', '2024-01-01T00:00:00.000Z'] as const;

  it('text: the line in message, with file, host and ingest time', () => {
    expect(formatLine('text', 'hi there', ...meta)).toEqual({
      value: { timestamp: '2024-01-01T00:00:00.000Z', host: 'h1', file: '/l/a.log', message: 'hi there' },
      parseError: false,
    });
  });

  it('json: the object, metadata only where the line has none', () => {
    expect(formatLine('json', '{"level":"warn","host":"app-7","n":1}', ...meta).value).toEqual({
      level: 'warn',
      host: 'app-7',
      n: 1,
      timestamp: '2024-01-01T00:00:00.000Z',
      file: '/l/a.log',
    });
  });

  it('json: invalid or not an object keeps the raw line with parse_error', () => {
    const bad = formatLine('json', '{"a":', ...meta);
    expect(bad.parseError).toBe(true);
    expect(bad.value).toMatchObject({ message: '{"a":', file: '/l/a.log', host: 'h1' });
    expect(String(bad.value.parse_error)).toMatch(/invalid JSON/);
    expect(formatLine('json', '[1,2]', ...meta).value).toMatchObject({ message: '[1,2]', parse_error: 'not a JSON object' });
  });

  it('logfmt: pairs, and the raw line with parse_error when it does not parse', () => {
    expect(formatLine('logfmt', 'level=info msg="a b" ok', ...meta).value).toEqual({
      level: 'info',
      msg: 'a b',
      ok: true,
      timestamp: '2024-01-01T00:00:00.000Z',
      host: 'h1',
      file: '/l/a.log',
    });
    const bad = formatLine('logfmt', 'msg="unterminated', ...meta);
    expect(bad.parseError).toBe(true);
    expect(bad.value).toMatchObject({ message: 'msg="unterminated' });
    expect(String(bad.value.parse_error)).toMatch(/invalid logfmt/);
  });
});

describe('parsePosition', () => {
  it('reads entries and their identity', () => {
    expect(
      parsePosition({ version: 1, files: { '2049:77:0123456789abcdef': { path: '/l/a', offset: 10, fp_bytes: 256, skip: true } } }),
    ).toEqual([{ dev: '2049', ino: '77', fp: { hash: '0123456789abcdef', bytes: 256 }, path: '/l/a', offset: 10, skip: true, gone: false }]);
    expect(parsePosition(undefined)).toEqual([]);
  });

  it('rejects what it did not write', () => {
    expect(() => parsePosition({ next_id: 3 })).toThrow(FilePositionError);
    expect(() => parsePosition({ version: 1, files: { nope: { path: '/a', offset: 1, fp_bytes: 1 } } })).toThrow(/invalid entry/);
    expect(() => parsePosition({ version: 1, files: { '1:2:0123456789abcdef': { path: '/a', offset: -1, fp_bytes: 1 } } })).toThrow(/invalid entry/);
  });
});
