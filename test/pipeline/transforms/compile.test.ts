import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  compileTransforms,
  TransformConfigError,
  transformVariants,
  type TransformSpec,
} from '../../../core/pipeline/transforms/index.js';
import { configError, deepFreeze, event } from './helpers.js';

function isJson(v: unknown): boolean {
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return true;
  if (typeof v === 'number') return Number.isFinite(v);
  if (Array.isArray(v)) return v.every(isJson);
  if (typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) return Object.values(v).every(isJson);
  return false;
}

describe('compileTransforms', () => {
  it('passes events through an empty chain', () => {
    const e = event({ a: 1 });
    expect(compileTransforms([])(e)).toEqual([e]);
  });

  it('runs transforms in order and returns a new event object', () => {
    const fn = compileTransforms([
      { type: 'parse', format: 'logfmt' },
      { type: 'filter', condition: { field: 'level', in: ['warn', 'error'] } },
      { type: 'set', fields: { env: 'prod', summary: '{{ level }}: {{ msg }}' } },
      { type: 'rename', fields: { msg: 'message' } },
      { type: 'timestamp', field: 'ts', format: 'iso8601' },
      { type: 'remove', fields: ['ts'] },
      { type: 'route', topic: 'logs.{{ level }}' },
      { type: 'redact', patterns: ['email'] },
    ]);
    const input = event('level=error msg="mail x@y.io failed" ts=2024-01-01T00:00:00Z', { key: 'k', headers: { h: '1' } });
    const out = fn(input);
    expect(out).toEqual([
      {
        value: { level: 'error', message: 'mail [REDACTED] failed', env: 'prod', summary: 'error: mail [REDACTED] failed' },
        key: 'k',
        headers: { h: '1' },
        timestamp: Date.UTC(2024, 0, 1),
        topic: 'logs.error',
      },
    ]);
    expect(out[0]).not.toBe(input);
    expect(input.topic).toBe('in');
    expect(fn(event('level=info msg=x'))).toEqual([]);
  });

  it('stops at the first transform that drops', () => {
    let calls = 0;
    const fn = compileTransforms([{ type: 'sample', rate: 0 }, { type: 'sample', rate: 0.5 }], {
      random: () => {
        calls++;
        return 0;
      },
    });
    expect(fn(event({}))).toEqual([]);
    expect(calls).toBe(0);
  });

  it('reports the first bad transform with its index and a JSON Pointer', () => {
    const err = configError([
      { type: 'set', fields: { a: 1 } },
      { type: 'filter', condition: { and: [{ field: 'x', exists: true }, { field: 'y', matches: '(' }] } },
    ]);
    expect(err).toBeInstanceOf(TransformConfigError);
    expect(err).toMatchObject({
      name: 'TransformConfigError',
      code: 'SLUICE_BAD_TRANSFORM',
      retriable: false,
      index: 1,
      path: '/1/condition/and/1/matches',
    });
    expect(err.message).toMatch(/^transforms\/1\/condition\/and\/1\/matches: invalid regex/);
    expect((err as unknown as Error).cause).toBeInstanceOf(SyntaxError);
  });

  it('reports schema errors: unknown type, unknown key, wrong value', () => {
    expect(configError([{ type: 'eval', code: 'process.exit()' }])).toMatchObject({ path: '/0/type', message: expect.stringContaining('must be one of "parse"') });
    expect(configError([{ type: 'remove', fields: ['a'], field: 'b' }])).toMatchObject({ path: '/0/field', message: 'transforms/0/field: unknown key "field"' });
    expect(configError([{ type: 'sample', rate: 2 }])).toMatchObject({ path: '/0/rate' });
    expect(configError([null])).toMatchObject({ path: '/0' });
  });

  it('never mutates its input, whatever the transforms do', () => {
    const specs: TransformSpec[] = [
      { type: 'parse', format: 'json', field: 'body', target: 'parsed' },
      { type: 'set', fields: { 'a.b.c': 1, 'list.0.x': '{{ a.b.c }}', 'deep.x': 1 } },
      { type: 'rename', fields: { 'nested.inner.v': 'moved', 'list.1': 'second' } },
      { type: 'remove', fields: ['nested.other', 'list.0.y'] },
      { type: 'redact', patterns: ['email'] },
      { type: 'timestamp', field: 'time', format: 'unix_s' },
      { type: 'keep', fields: ['a', 'moved', 'parsed', 'list', 'second', 'deep'] },
    ];
    const fn = compileTransforms(specs);
    const input = deepFreeze(
      event({
        body: '{"k":[1]}',
        nested: { inner: { v: 'x@y.com' }, other: 1 },
        list: [{ y: 1 }, 'two'],
        deep: { x: 0, keep: { me: 'z@z.zz' } },
        time: 'bad',
      }),
    );
    const snapshot = structuredClone(input);
    const [out] = fn(input);
    expect(input).toEqual(snapshot);
    expect(out!.value).toEqual({
      a: { b: { c: 1 } },
      moved: '[REDACTED]',
      parsed: { k: [1] },
      list: [{ x: '1' }],
      second: 'two',
      deep: { x: 1, keep: { me: '[REDACTED]' } },
    });
  });

  const json = fc.jsonValue({ maxDepth: 4 });
  const valueArb = fc.oneof(
    json,
    fc.dictionary(fc.constantFrom('message', 'level', 'a', 'time', 'trace_id', 'b', '__proto__'), json, { maxKeys: 6, noNullPrototype: true }),
    fc.string(),
  );
  const allExamples = transformVariants.flatMap((v) => v.examples as readonly TransformSpec[]);

  it('runs every example on arbitrary values without throwing or mutating them', () => {
    const chains = allExamples.map((spec) => compileTransforms([spec], { random: () => 0.3 }));
    const everything = compileTransforms(allExamples.filter((s) => s.type !== 'filter' && s.type !== 'sample'));
    fc.assert(
      fc.property(valueArb, (value) => {
        const input = deepFreeze(event(value));
        const before = structuredClone(input);
        for (const fn of [...chains, everything]) {
          const out = fn(input);
          expect(out.length).toBeLessThanOrEqual(1);
          // The output is plain JSON.
          if (out[0] !== undefined) expect(isJson(out[0].value)).toBe(true);
        }
        expect(input).toEqual(before);
      }),
      { numRuns: 300 },
    );
  });

  it('is deterministic for a given input', () => {
    const fn = compileTransforms(allExamples.filter((s) => s.type !== 'filter'), { random: () => 0 });
    fc.assert(
      fc.property(valueArb, (value) => {
        expect(fn(event(value))).toEqual(fn(event(structuredClone(value))));
      }),
      { numRuns: 200 },
    );
  });
});
