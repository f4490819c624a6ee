import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { luhnValid } from '../../../core/pipeline/transforms/redact.js';
import { compileTransforms } from '../../../core/pipeline/transforms/index.js';
import { configError, event, valueAfter } from './helpers.js';

const R = '[REDACTED]';

describe('redact', () => {
  it('redacts emails', () => {
    expect(valueAfter([{ type: 'redact', patterns: ['email'] }], { m: 'mail jane.doe+x@mail.example.co.uk now' })).toEqual({ m: `mail ${R} now` });
    expect(valueAfter([{ type: 'redact', patterns: ['email'] }], { m: 'a@b and c@d.io' })).toEqual({ m: `a@b and ${R}` });
  });

  it('redacts bearer tokens and keeps the scheme', () => {
    expect(valueAfter([{ type: 'redact', patterns: ['bearer_token'] }], { h: 'Authorization: Bearer eyJhbGciOi.eyJzdWIi.Sfl_KxwRJ-SM= next' })).toEqual({
      h: `Authorization: Bearer ${R} next`,
    });
    expect(valueAfter([{ type: 'redact', patterns: ['bearer_token'] }], { h: 'bearer abc123' })).toEqual({ h: `bearer ${R}` });
    expect(valueAfter([{ type: 'redact', patterns: ['bearer_token'] }], { h: 'the bearer of news' })).toEqual({ h: `the bearer ${R} news` });
  });

  it('redacts credit card numbers that pass Luhn and start like a card', () => {
    const cc = (text: string): unknown => (valueAfter([{ type: 'redact', patterns: ['credit_card'] }], { m: text }) as { m: unknown }).m;
    expect(cc('card 4111111111111111 ok')).toBe(`card ${R} ok`);
    expect(cc('card 4111 1111 1111 1111.')).toBe(`card ${R}.`);
    expect(cc('amex 3782-822463-10005')).toBe(`amex ${R}`);
    expect(cc('mc 5555555555554444, visa 4012888888881881')).toBe(`mc ${R}, visa ${R}`);
    // Luhn fails.
    expect(cc('order 4111111111111112')).toBe('order 4111111111111112');
    // Passes Luhn but is a millisecond timestamp, not a card prefix.
    expect(luhnValid('1704067200002')).toBe(true);
    expect(cc('ts=1704067200002')).toBe('ts=1704067200002');
    // Too short, and part of a longer run of digits.
    expect(cc('411111111111')).toBe('411111111111');
    expect(cc('94111111111111111119')).toBe('94111111111111111119');
  });

  it('walks every string by default, arrays and a string value included', () => {
    const value = { a: 'x@y.com', n: 5, nested: { list: ['ok', 'Bearer t0k'], deeper: { s: 'z@w.org' } }, keep: true };
    expect(valueAfter([{ type: 'redact', patterns: ['email', 'bearer_token'] }], value)).toEqual({
      a: R,
      n: 5,
      nested: { list: ['ok', `Bearer ${R}`], deeper: { s: R } },
      keep: true,
    });
    expect(valueAfter([{ type: 'redact', patterns: ['email'] }], 'raw x@y.com')).toBe(`raw ${R}`);
  });

  it('limits itself to the listed fields, recursively within them', () => {
    expect(valueAfter([{ type: 'redact', fields: ['user', 'missing'], patterns: ['email'] }], { user: { email: 'x@y.com' }, other: 'x@y.com' })).toEqual({
      user: { email: R },
      other: 'x@y.com',
    });
  });

  it('uses custom regexes and a literal replacement', () => {
    expect(valueAfter([{ type: 'redact', patterns: ['ssn=\\d{3}-\\d{2}-\\d{4}', 'secret'], replacement: '$& ***' }], { m: 'ssn=123-45-6789 secret secret' })).toEqual({
      m: '$& *** $& *** $& ***',
    });
  });

  it('copies nothing when nothing matches', () => {
    const value = { a: 'clean', b: { c: ['clean'] } };
    expect(valueAfter([{ type: 'redact', patterns: ['email', 'credit_card'] }], value)).toBe(value);
  });

  it('does not modify the input', () => {
    const value = { a: 'x@y.com', b: { c: 'x@y.com' }, d: { e: 'clean' } };
    const [out] = compileTransforms([{ type: 'redact', patterns: ['email'] }])(event(value));
    expect(value).toEqual({ a: 'x@y.com', b: { c: 'x@y.com' }, d: { e: 'clean' } });
    // Untouched subtrees are shared, not copied.
    expect((out!.value as typeof value).d).toBe(value.d);
  });

  it('rejects bad regexes and regexes matching nothing', () => {
    expect(configError([{ type: 'redact', patterns: ['email', '(unclosed'] }])).toMatchObject({ path: '/0/patterns/1', code: 'SLUICE_BAD_TRANSFORM' });
    expect(configError([{ type: 'redact', patterns: ['a*'] }])).toMatchObject({ path: '/0/patterns/0', message: expect.stringContaining('empty string') });
  });
});

/** Appends the Luhn check digit. */
function withCheckDigit(body: string): string {
  for (let d = 0; d <= 9; d++) if (luhnValid(body + d)) return body + d;
  throw new Error('unreachable');
}

describe('redact credit_card (property)', () => {
  const card = fc
    .tuple(fc.constantFrom('4', '51', '55', '37', '6011', '2221'), fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 12, maxLength: 14 }))
    .map(([prefix, digits]) => withCheckDigit((prefix + digits.join('')).slice(0, 15)));
  const grouped = fc.tuple(card, fc.constantFrom('', ' ', '-')).map(([n, sep]) => n.replace(/(\d{4})(?=\d)/g, `$1${sep}`));
  const around = fc.stringMatching(/^[a-z :=,]{0,12}$/);
  const redact = compileTransforms([{ type: 'redact', patterns: ['credit_card'] }]);

  it('redacts every Luhn-valid card number, however it is grouped and wherever it is', () => {
    fc.assert(
      fc.property(around, grouped, around, (before, number, after) => {
        const text = `${before}${before === '' ? '' : ' '}${number}${after === '' ? '' : ' '}${after}`;
        const [out] = redact(event({ m: text }));
        expect((out!.value as { m: string }).m).not.toContain(number);
        expect((out!.value as { m: string }).m).toContain(R);
      }),
      { numRuns: 500 },
    );
  });
});

describe('luhnValid', () => {
  it('checks the Luhn digit', () => {
    expect(luhnValid('79927398713')).toBe(true);
    expect(luhnValid('79927398710')).toBe(false);
    expect(luhnValid('0')).toBe(true);
  });
});
