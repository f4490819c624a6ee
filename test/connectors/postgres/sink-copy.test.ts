/**
 * The byte-level JSON → COPY encoder gives the same row as the general path (JSON.parse, then
 * valueText + copyField), or declines; property-based over flat objects with awkward strings.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { copyPlan, jsonRowToCopy } from '../../../connectors/postgres/sink-copy.js';
import { copyField, valueText, type ColumnType } from '../../../connectors/postgres/sink-sql.js';

const TEXT: ColumnType = { sqlType: 'text', kind: 'other' };
const JSONB: ColumnType = { sqlType: 'jsonb', kind: 'json' };

function general(value: Record<string, unknown>, columns: string[], types: ColumnType[]): string {
  return `${columns.map((c, i) => copyField(valueText(value[c], types[i]))).join('\t')}\n`;
}

function fast(json: string, columns: string[], types: ColumnType[]): string | null {
  const src = Buffer.from(json);
  const out = Buffer.alloc(src.length + 1);
  const end = jsonRowToCopy(src, copyPlan(columns, types), out, 0);
  return end < 0 ? null : out.subarray(0, end).toString('utf8');
}

describe('jsonRowToCopy', () => {
  it('encodes like the general path, or declines', () => {
    const scalar = fc.oneof(
      fc.string({ unit: 'binary' }),
      fc.string({ unit: fc.constantFrom('\\', '"', '/', '\n', '\r', '\t', '\b', '\f', '\u0001', 'a', 'é', '\u2028', '😀', 'N', '.') }),
      fc.integer(),
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      fc.boolean(),
      fc.constant(null),
      fc.constant({ nested: [1, 'x'] }),
    );
    const names = fc.uniqueArray(fc.string({ minLength: 1, unit: fc.constantFrom('a', 'b', '"', ' ', 'é', '\\', ':') }), { minLength: 1, maxLength: 5 });
    fc.assert(
      fc.property(names, fc.array(scalar, { minLength: 5, maxLength: 5 }), fc.boolean(), (cols, values, jsonFirst) => {
        const value: Record<string, unknown> = {};
        cols.forEach((c, i) => (value[c] = values[i]));
        const types = cols.map((_c, i) => (jsonFirst && i === 0 ? JSONB : TEXT));
        const got = fast(JSON.stringify(value), cols, types);
        if (got !== null) expect(got).toBe(general(value, cols, types));
      }),
      { numRuns: 3000 },
    );
  });

  it('takes the usual record and declines other key orders, nesting, \\u escapes and whitespace', () => {
    const cols = ['id', 'msg', 'ok', 'n'];
    const types = [TEXT, TEXT, TEXT, TEXT];
    expect(fast('{"id":12,"msg":"a\\tb \\"q\\" \\\\ \\/","ok":true,"n":null}', cols, types)).toBe('12\ta\\tb "q" \\\\ /\ttrue\t\\N\n');
    expect(fast('{"msg":"x","id":1,"ok":true,"n":null}', cols, types)).toBeNull();
    expect(fast('{"id":1,"msg":{"a":1},"ok":true,"n":null}', cols, types)).toBeNull();
    expect(fast('{"id":1,"msg":"\\u00e9","ok":true,"n":null}', cols, types)).toBeNull();
    expect(fast('{"id": 1,"msg":"x","ok":true,"n":null}', cols, types)).toBeNull();
    expect(fast('{"id":1,"msg":"x","ok":true,"n":null,"extra":1}', cols, types)).toBeNull();
    expect(fast('{"id":1,"msg":"x","ok":true}', cols, types)).toBeNull();
  });
});
