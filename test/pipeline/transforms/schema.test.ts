import { Ajv } from 'ajv';
import { describe, expect, it, vi } from 'vitest';
import {
  compileTransforms,
  transformSchema,
  transformVariants,
  type TransformSpec,
} from '../../../core/pipeline/transforms/index.js';
import { event } from './helpers.js';

const ajv = new Ajv({ strict: true, strictRequired: false, allErrors: true });
const validate = ajv.compile(transformSchema);

describe('transformSchema', () => {
  it('compiles without warnings under ajv defaults', () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    try {
      new Ajv().compile(transformSchema);
      expect(warn).not.toHaveBeenCalled();
      expect(log).not.toHaveBeenCalled();
    } finally {
      warn.mockRestore();
      log.mockRestore();
    }
  });

  it('has one variant per type, in the type enum', () => {
    const types = transformVariants.map((v) => v.type);
    expect(new Set(types).size).toBe(types.length);
    expect((transformSchema['properties'] as { type: { enum: string[] } }).type.enum).toEqual(types);
    expect(types.sort()).toEqual(['filter', 'keep', 'parse', 'redact', 'remove', 'rename', 'route', 'sample', 'set', 'timestamp']);
  });

  for (const v of transformVariants) {
    describe(v.type, () => {
      it('has examples', () => {
        expect(v.examples.length).toBeGreaterThan(0);
        expect(v.schema['examples']).toEqual(v.examples);
      });
      for (const example of v.examples as readonly TransformSpec[]) {
        it(`validates and compiles ${JSON.stringify(example)}`, () => {
          expect(validate(example), ajv.errorsText(validate.errors)).toBe(true);
          const fn = compileTransforms([example], { random: () => 0 });
          const out = fn(event({ message: 'level=info', level: 'info', time: '2024-01-01T00:00:00Z' }));
          expect(Array.isArray(out)).toBe(true);
        });
      }
      it('sets additionalProperties: false', () => {
        expect(v.schema['additionalProperties']).toBe(false);
      });
    });
  }

  const bad: [string, unknown][] = [
    ['no type', { format: 'json' }],
    ['unknown type', { type: 'eval', code: '1' }],
    ['unknown key', { type: 'parse', format: 'json', extra: 1 }],
    ['camelCase key', { type: 'parse', format: 'json', onError: 'drop' }],
    ['unknown parse format', { type: 'parse', format: 'xml' }],
    ['regex without pattern', { type: 'parse', format: 'regex' }],
    ['pattern without regex', { type: 'parse', format: 'json', pattern: '(?<a>.)' }],
    ['bad on_error', { type: 'parse', format: 'json', on_error: 'ignore' }],
    ['bad field path', { type: 'parse', format: 'json', field: 'a..b' }],
    ['set without fields', { type: 'set' }],
    ['set with no fields', { type: 'set', fields: {} }],
    ['set with a bad path', { type: 'set', fields: { '.a': 1 } }],
    ['rename to a non-string', { type: 'rename', fields: { a: 1 } }],
    ['remove with a string', { type: 'remove', fields: 'a' }],
    ['remove with nothing', { type: 'remove', fields: [] }],
    ['keep with duplicates', { type: 'keep', fields: ['a', 'a'] }],
    ['filter without condition', { type: 'filter' }],
    ['condition without operator', { type: 'filter', condition: { field: 'a' } }],
    ['condition with unknown operator', { type: 'filter', condition: { field: 'a', like: 'x' } }],
    ['gt with a string', { type: 'filter', condition: { field: 'a', gt: '5' } }],
    ['empty and', { type: 'filter', condition: { and: [] } }],
    ['and plus or', { type: 'filter', condition: { and: [{ field: 'a', exists: true }], or: [{ field: 'a', exists: true }] } }],
    ['nested bad condition', { type: 'filter', condition: { not: { or: [{ field: 'a', exists: 'yes' }] } } }],
    ['unknown condition', { type: 'filter', condition: { xor: [] } }],
    ['route without topic', { type: 'route' }],
    ['route with empty topic', { type: 'route', topic: '' }],
    ['timestamp unknown format', { type: 'timestamp', field: 't', format: 'rfc2822' }],
    ['timestamp without field', { type: 'timestamp', format: 'iso8601' }],
    ['timezone with unix_s', { type: 'timestamp', field: 't', format: 'unix_s', timezone: 'UTC' }],
    ['redact without patterns', { type: 'redact' }],
    ['redact with empty pattern', { type: 'redact', patterns: [''] }],
    ['redact replacement not a string', { type: 'redact', patterns: ['email'], replacement: 1 }],
    ['sample rate above 1', { type: 'sample', rate: 1.5 }],
    ['sample rate below 0', { type: 'sample', rate: -0.1 }],
    ['sample rate as string', { type: 'sample', rate: '0.5' }],
    ['not an object', 'parse'],
  ];
  for (const [name, spec] of bad) {
    it(`rejects: ${name}`, () => {
      expect(validate(spec)).toBe(false);
      // compileTransforms applies the same schema.
      expect(() => compileTransforms([spec as TransformSpec])).toThrow(expect.objectContaining({ code: 'SLUICE_BAD_TRANSFORM' }));
    });
  }

  it('validates deeply nested conditions', () => {
    const deep = { type: 'filter', condition: { not: { and: [{ or: [{ not: { field: 'a', equals: null } }] }] } } };
    expect(validate(deep), ajv.errorsText(validate.errors)).toBe(true);
  });

  it('works embedded in a larger schema, as the pipelines schema embeds it', () => {
    const pipelines = {
      $id: 'https://example.test/pipelines.json',
      type: 'object',
      additionalProperties: false,
      properties: { transforms: { type: 'array', items: transformSchema } },
      // The outer document's own "#/definitions/condition" is not the one the transforms use.
      definitions: { condition: { type: 'string' } },
    };
    const shared = new Ajv({ allErrors: true, strict: false });
    for (let i = 0; i < 2; i++) {
      // Twice in one Ajv instance: the embedded $id must not clash with itself.
      const v = shared.compile({ ...pipelines, $id: `https://example.test/pipelines-${i}.json` });
      expect(v({ transforms: [{ type: 'filter', condition: { and: [{ field: 'a', exists: true }] } }] }), JSON.stringify(v.errors)).toBe(true);
      expect(v({ transforms: [{ type: 'filter', condition: { and: [{ field: 'a' }] } }] })).toBe(false);
      expect(v({ transforms: [{ type: 'filter', condition: 'a string' }] })).toBe(false);
    }
  });
});
