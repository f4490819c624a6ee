import { describe, expect, it } from 'vitest';
import { configError, run, valueAfter } from './helpers.js';

describe('parse json', () => {
  it('parses a string value into the value', () => {
    expect(valueAfter([{ type: 'parse', format: 'json' }], '{"a":1,"b":{"c":[true]}}')).toEqual({ a: 1, b: { c: [true] } });
    // A whole string value may parse to anything JSON.
    expect(valueAfter([{ type: 'parse', format: 'json' }], '[1,2]')).toEqual([1, 2]);
    expect(valueAfter([{ type: 'parse', format: 'json' }], '"s"')).toBe('s');
  });

  it('parses the message field of an object and merges the result into the root', () => {
    expect(valueAfter([{ type: 'parse', format: 'json' }], { message: '{"level":"warn","host":"b"}', host: 'a' })).toEqual({
      message: '{"level":"warn","host":"b"}',
      host: 'b',
      level: 'warn',
    });
  });

  it('reads field and writes target', () => {
    expect(valueAfter([{ type: 'parse', format: 'json', field: 'raw.body', target: 'body' }], { raw: { body: '{"x":1}' } })).toEqual({
      raw: { body: '{"x":1}' },
      body: { x: 1 },
    });
    expect(valueAfter([{ type: 'parse', format: 'json', field: 'n', target: 'n' }], { n: '42' })).toEqual({ n: 42 });
    // A string value with a target becomes { message } first.
    expect(valueAfter([{ type: 'parse', format: 'json', target: 'parsed' }], '{"x":1}')).toEqual({ message: '{"x":1}', parsed: { x: 1 } });
  });

  it('keeps the event with _parse_error by default', () => {
    expect(valueAfter([{ type: 'parse', format: 'json' }], { message: 'not json', a: 1 })).toMatchObject({
      message: 'not json',
      a: 1,
      _parse_error: expect.stringMatching(/^invalid JSON: /),
    });
    expect(valueAfter([{ type: 'parse', format: 'json' }], 'not json')).toEqual({ message: 'not json', _parse_error: expect.any(String) });
    expect(valueAfter([{ type: 'parse', format: 'json' }], { a: 1 })).toEqual({ a: 1, _parse_error: 'field message is missing' });
    expect(valueAfter([{ type: 'parse', format: 'json', field: 'body' }], { body: 5 })).toEqual({ body: 5, _parse_error: 'field body is not a string' });
    expect(valueAfter([{ type: 'parse', format: 'json' }], { message: '[1]' })).toEqual({
      message: '[1]',
      _parse_error: expect.stringContaining('not an object'),
    });
    expect(valueAfter([{ type: 'parse', format: 'json' }], null)).toEqual({ _parse_error: 'field message is missing' });
  });

  it('drops on error with on_error: drop', () => {
    expect(run([{ type: 'parse', format: 'json', on_error: 'drop' }], '{')).toBeNull();
    expect(run([{ type: 'parse', format: 'json', on_error: 'drop' }], { other: 1 })).toBeNull();
    expect(run([{ type: 'parse', format: 'json', on_error: 'drop' }], '{}')).not.toBeNull();
  });

  it('does not let parsed keys reach prototypes', () => {
    const v = valueAfter([{ type: 'parse', format: 'json' }], { message: '{"__proto__":{"polluted":1}}' }) as Record<string, unknown>;
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    expect(Object.keys(v)).toContain('__proto__');
    expect(Object.getPrototypeOf(v)).toBe(Object.prototype);
  });
});

describe('parse logfmt', () => {
  it('parses a raw line', () => {
    expect(valueAfter([{ type: 'parse', format: 'logfmt' }], 'level=info msg="user logged in" debug')).toEqual({
      level: 'info',
      msg: 'user logged in',
      debug: true,
    });
  });

  it('parses the message field into a target', () => {
    expect(valueAfter([{ type: 'parse', format: 'logfmt', target: 'f' }], { message: 'a=1 b=2' })).toEqual({ message: 'a=1 b=2', f: { a: '1', b: '2' } });
  });

  it('reports syntax errors', () => {
    expect(valueAfter([{ type: 'parse', format: 'logfmt' }], { message: 'a="open' })).toEqual({
      message: 'a="open',
      _parse_error: 'unterminated quoted value at offset 2',
    });
  });
});

describe('parse regex', () => {
  const pattern = '^(?<ip>\\S+) (?<method>[A-Z]+) (?<path>\\S+)(?: (?<status>\\d{3}))?$';

  it('puts the named groups into the value; unmatched optional groups are left out', () => {
    expect(valueAfter([{ type: 'parse', format: 'regex', pattern }], '10.0.0.1 GET /x 200')).toEqual({ ip: '10.0.0.1', method: 'GET', path: '/x', status: '200' });
    expect(valueAfter([{ type: 'parse', format: 'regex', pattern }], '10.0.0.1 GET /x')).toEqual({ ip: '10.0.0.1', method: 'GET', path: '/x' });
  });

  it('reports a non-match', () => {
    expect(valueAfter([{ type: 'parse', format: 'regex', pattern }], { message: 'garbage' })).toEqual({
      message: 'garbage',
      _parse_error: 'the pattern does not match',
    });
    expect(run([{ type: 'parse', format: 'regex', pattern, on_error: 'drop' }], 'garbage')).toBeNull();
  });

  it('can match repeatedly (no state kept between events)', () => {
    const specs = [{ type: 'parse' as const, format: 'regex' as const, pattern: '(?<n>\\d+)' }];
    for (let i = 0; i < 3; i++) expect(valueAfter(specs, `x${i}`)).toEqual({ n: String(i) });
  });

  it('rejects bad configurations', () => {
    expect(configError([{ type: 'parse', format: 'regex', pattern: '(?<a>' }])).toMatchObject({
      code: 'SLUICE_BAD_TRANSFORM',
      index: 0,
      path: '/0/pattern',
      message: expect.stringContaining('invalid regex'),
    });
    expect(configError([{ type: 'set', fields: { a: 1 } }, { type: 'parse', format: 'regex', pattern: '(\\d+)' }])).toMatchObject({
      index: 1,
      path: '/1/pattern',
      message: expect.stringContaining('no named groups'),
    });
    expect(configError([{ type: 'parse', format: 'regex' }])).toMatchObject({ path: '/0', message: expect.stringContaining('pattern') });
    expect(configError([{ type: 'parse', format: 'json', target: 'a..b' }])).toMatchObject({ path: '/0/target' });
  });
});
