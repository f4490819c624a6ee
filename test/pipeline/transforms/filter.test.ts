import { describe, expect, it } from 'vitest';
import type { Condition } from '../../../core/pipeline/transforms/index.js';
import { configError, run } from './helpers.js';

const keeps = (condition: Condition, value: unknown): boolean => run([{ type: 'filter', condition }], value) !== null;

describe('filter', () => {
  it('equals compares JSON values without coercion', () => {
    expect(keeps({ field: 'level', equals: 'error' }, { level: 'error' })).toBe(true);
    expect(keeps({ field: 'level', equals: 'error' }, { level: 'warn' })).toBe(false);
    expect(keeps({ field: 'status', equals: 200 }, { status: 200 })).toBe(true);
    expect(keeps({ field: 'status', equals: 200 }, { status: '200' })).toBe(false);
    expect(keeps({ field: 'x', equals: null }, { x: null })).toBe(true);
    expect(keeps({ field: 'x', equals: null }, {})).toBe(false);
    expect(keeps({ field: 'o', equals: { a: [1, 2], b: 'c' } }, { o: { b: 'c', a: [1, 2] } })).toBe(true);
    expect(keeps({ field: 'o', equals: { a: [1, 2] } }, { o: { a: [2, 1] } })).toBe(false);
    expect(keeps({ field: 'o', equals: { a: 1 } }, { o: { a: 1, b: 2 } })).toBe(false);
    expect(keeps({ field: 'o', equals: [] }, { o: {} })).toBe(false);
  });

  it('in matches any listed value', () => {
    const cond: Condition = { field: 'level', in: ['warn', 'error', 5, null, { k: 1 }] };
    expect(keeps(cond, { level: 'warn' })).toBe(true);
    expect(keeps(cond, { level: 5 })).toBe(true);
    expect(keeps(cond, { level: null })).toBe(true);
    expect(keeps(cond, { level: { k: 1 } })).toBe(true);
    expect(keeps(cond, { level: 'info' })).toBe(false);
    expect(keeps(cond, { level: '5' })).toBe(false);
    expect(keeps(cond, {})).toBe(false);
  });

  it('matches tests strings only', () => {
    expect(keeps({ field: 'path', matches: '^/api/' }, { path: '/api/x' })).toBe(true);
    expect(keeps({ field: 'path', matches: '^/api/' }, { path: '/web' })).toBe(false);
    expect(keeps({ field: 'n', matches: '1' }, { n: 1 })).toBe(false);
    // Repeated use is stateless.
    for (let i = 0; i < 3; i++) expect(keeps({ field: 'p', matches: 'a' }, { p: 'a' })).toBe(true);
  });

  it('exists sees null as present', () => {
    expect(keeps({ field: 'a.b', exists: true }, { a: { b: null } })).toBe(true);
    expect(keeps({ field: 'a.b', exists: true }, { a: {} })).toBe(false);
    expect(keeps({ field: 'a.b', exists: false }, { a: 'x' })).toBe(true);
    expect(keeps({ field: 'toString', exists: true }, {})).toBe(false);
  });

  it('gt/gte/lt/lte compare numbers and numeric strings', () => {
    expect(keeps({ field: 's', gt: 499 }, { s: 500 })).toBe(true);
    expect(keeps({ field: 's', gt: 500 }, { s: 500 })).toBe(false);
    expect(keeps({ field: 's', gte: 500 }, { s: '500' })).toBe(true);
    expect(keeps({ field: 's', lt: 1 }, { s: '0.5' })).toBe(true);
    expect(keeps({ field: 's', lte: -1 }, { s: '-1e0' })).toBe(true);
    for (const s of ['', ' ', 'abc', '0x10', null, true, [], {}]) {
      expect(keeps({ field: 's', gte: 0 }, { s }), JSON.stringify(s)).toBe(false);
      expect(keeps({ field: 's', lt: 1e9 }, { s }), JSON.stringify(s)).toBe(false);
    }
    expect(keeps({ field: 's', gte: 0 }, {})).toBe(false);
  });

  it('several operators on one field must all hold (a range)', () => {
    const range: Condition = { field: 'status', gte: 500, lt: 600 };
    expect(keeps(range, { status: 503 })).toBe(true);
    expect(keeps(range, { status: 600 })).toBe(false);
    expect(keeps(range, { status: 404 })).toBe(false);
  });

  it('combines with and / or / not', () => {
    const cond: Condition = {
      and: [
        { field: 'status', gte: 500 },
        { not: { field: 'path', matches: '^/health' } },
        { or: [{ field: 'env', equals: 'prod' }, { field: 'canary', exists: true }] },
      ],
    };
    expect(keeps(cond, { status: 500, path: '/api', env: 'prod' })).toBe(true);
    expect(keeps(cond, { status: 500, path: '/api', canary: 1 })).toBe(true);
    expect(keeps(cond, { status: 500, path: '/health', env: 'prod' })).toBe(false);
    expect(keeps(cond, { status: 500, path: '/api', env: 'dev' })).toBe(false);
    expect(keeps(cond, { status: 200, path: '/api', env: 'prod' })).toBe(false);
  });

  it('works on raw values through array indexes and reads nothing from strings', () => {
    expect(keeps({ field: '0', equals: 'a' }, ['a'])).toBe(true);
    expect(keeps({ field: 'message', exists: true }, 'raw line')).toBe(false);
  });

  it('rejects bad conditions with a path to them', () => {
    expect(configError([{ type: 'filter', condition: { or: [{ field: 'a', exists: true }, { field: 'b', matches: '[' }] } }])).toMatchObject({
      code: 'SLUICE_BAD_TRANSFORM',
      path: '/0/condition/or/1/matches',
    });
    expect(configError([{ type: 'filter', condition: { field: 'a..b', exists: true } }]).path).toBe('/0/condition/field');
    expect(configError([{ type: 'filter', condition: { not: { field: 'a' } } }]).path).toMatch(/^\/0\/condition\/not/);
  });
});
