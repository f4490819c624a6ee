import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatLogfmt, LogfmtSyntaxError, parseLogfmt } from '../../../core/pipeline/transforms/logfmt.js';

describe('parseLogfmt', () => {
  const fixtures: [string, Record<string, string | true>][] = [
    ['', {}],
    ['   \t ', {}],
    ['a=1', { a: '1' }],
    ['level=info msg=started port=8080', { level: 'info', msg: 'started', port: '8080' }],
    ['  a=1   b=2  ', { a: '1', b: '2' }],
    ['a=1\tb=2', { a: '1', b: '2' }],
    ['msg="hello world" x=y', { msg: 'hello world', x: 'y' }],
    ['msg="say \\"hi\\""', { msg: 'say "hi"' }],
    ['path="C:\\\\dir"', { path: 'C:\\dir' }],
    ['m="a\\nb\\tc\\rd\\/e"', { m: 'a\nb\tc\rd/e' }],
    ['m="\\u00e9t\\u00E9"', { m: 'été' }],
    ['m="\\q"', { m: '\\q' }],
    ['m="\\u12"', { m: '\\u12' }],
    ['m=""', { m: '' }],
    ['m=', { m: '' }],
    ['m= n=1', { m: '', n: '1' }],
    ['debug', { debug: true }],
    ['debug verbose a=1', { debug: true, verbose: true, a: '1' }],
    ['a=1 a=2', { a: '2' }],
    ['url=/a?b=c&d=e', { url: '/a?b=c&d=e' }],
    ['q=a"b', { q: 'a"b' }],
    ['caller=main.go:42 ts=2024-01-01T00:00:00Z', { caller: 'main.go:42', ts: '2024-01-01T00:00:00Z' }],
    ['ключ=значение 名前="値 です"', { ключ: 'значение', 名前: '値 です' }],
    ['a.b.c=1', { 'a.b.c': '1' }],
  ];
  for (const [text, expected] of fixtures) {
    it(`parses ${JSON.stringify(text)}`, () => {
      expect(parseLogfmt(text)).toEqual(expected);
    });
  }

  it('keeps __proto__ as an ordinary key', () => {
    const r = parseLogfmt('__proto__=x constructor=y');
    expect(Object.keys(r)).toEqual(['__proto__', 'constructor']);
    expect(Object.getPrototypeOf(r)).toBe(Object.prototype);
    expect(r['__proto__']).toBe('x');
  });

  const errors: [string, number][] = [
    ['=1', 0],
    ['a=1 =2', 4],
    ['"a"=1', 0],
    ['a"b=1', 1],
    ['a="unterminated', 2],
    ['a="x\\"', 2],
    ['a="x"b', 5],
  ];
  for (const [text, position] of errors) {
    it(`rejects ${JSON.stringify(text)} at offset ${position}`, () => {
      let caught: unknown;
      try {
        parseLogfmt(text);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(LogfmtSyntaxError);
      expect((caught as LogfmtSyntaxError).position).toBe(position);
    });
  }
});

describe('formatLogfmt', () => {
  it('writes bare, quoted and flag values', () => {
    expect(formatLogfmt({ a: '1', msg: 'hello world', ok: true, e: '', q: 'say "hi"', eq: 'a=b' })).toBe(
      'a=1 msg="hello world" ok e="" q="say \\"hi\\"" eq="a=b"',
    );
    expect(formatLogfmt({ c: 'x\u0001y\n' })).toBe('c="x\\u0001y\\n"');
  });

  it('refuses keys logfmt cannot carry', () => {
    for (const key of ['', 'a b', 'a=b', 'a"b', 'a\nb']) expect(() => formatLogfmt({ [key]: '1' })).toThrow();
  });
});

describe('logfmt round trips', () => {
  const key = fc
    .string({ unit: 'grapheme', minLength: 1, maxLength: 12 })
    .filter((k) => !/[ \t\r\n="]/.test(k));
  const value = fc.oneof(
    fc.constant<true>(true),
    fc.string({ unit: 'grapheme', maxLength: 30 }),
    fc.string({ unit: 'binary', maxLength: 30 }),
    fc.stringMatching(/^[a-z0-9 ="\\\t\n]{0,20}$/),
  );
  const record = fc.dictionary(key, value, { maxKeys: 8 });

  it('parse(format(r)) equals r', () => {
    fc.assert(
      fc.property(record, (r) => {
        expect(parseLogfmt(formatLogfmt(r))).toEqual(r);
      }),
      { numRuns: 2000 },
    );
  });

  it('format(parse(text)) parses back to the same record for any text that parses', () => {
    const text = fc.stringMatching(/^[a-z =" \\tn]{0,40}$/);
    fc.assert(
      fc.property(text, (t) => {
        let r: Record<string, string | true>;
        try {
          r = parseLogfmt(t);
        } catch (err) {
          expect(err).toBeInstanceOf(LogfmtSyntaxError);
          return;
        }
        expect(parseLogfmt(formatLogfmt(r))).toEqual(r);
      }),
      { numRuns: 2000 },
    );
  });

  it('never throws anything but LogfmtSyntaxError', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 60 }), (t) => {
        try {
          parseLogfmt(t);
        } catch (err) {
          expect(err).toBeInstanceOf(LogfmtSyntaxError);
        }
      }),
    );
  });
});
