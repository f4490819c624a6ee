import { describe, expect, it } from 'vitest';
import { compileTransforms } from '../../../core/pipeline/transforms/index.js';
import { configError, event, run, valueAfter } from './helpers.js';

describe('set', () => {
  it('sets literal strings, templates and JSON values, creating nested objects', () => {
    expect(
      valueAfter(
        [{ type: 'set', fields: { env: 'production', 'service.host': 'h-{{ host }}', 'service.port': 8080, ok: true, nothing: null, tags: ['a', { b: 1 }] } }],
        { host: 'web-1' },
      ),
    ).toEqual({ host: 'web-1', env: 'production', service: { host: 'h-web-1', port: 8080 }, ok: true, nothing: null, tags: ['a', { b: 1 }] });
  });

  it('applies fields in order, so later templates see earlier fields', () => {
    expect(valueAfter([{ type: 'set', fields: { a: 'x', b: '{{ a }}!' } }], {})).toEqual({ a: 'x', b: 'x!' });
  });

  it('overwrites, and replaces a scalar on the way with an object', () => {
    expect(valueAfter([{ type: 'set', fields: { a: 2, 'b.c': 1 } }], { a: 1, b: 'text' })).toEqual({ a: 2, b: { c: 1 } });
    expect(valueAfter([{ type: 'set', fields: { 'b.c': 1 } }], { b: [1, 2] })).toEqual({ b: { c: 1 } });
  });

  it('writes into arrays by index, padding with nulls', () => {
    expect(valueAfter([{ type: 'set', fields: { 'items.1.id': 9 } }], { items: [{ id: 1 }, { id: 2 }] })).toEqual({ items: [{ id: 1 }, { id: 9 }] });
    expect(valueAfter([{ type: 'set', fields: { 'items.3': 'd' } }], { items: ['a'] })).toEqual({ items: ['a', null, null, 'd'] });
  });

  it('turns a value that is not an object into one', () => {
    expect(valueAfter([{ type: 'set', fields: { env: 'p' } }], 'raw line')).toEqual({ message: 'raw line', env: 'p' });
    expect(valueAfter([{ type: 'set', fields: { env: 'p' } }], null)).toEqual({ env: 'p' });
    expect(valueAfter([{ type: 'set', fields: { env: 'p' } }], [1])).toEqual({ message: [1], env: 'p' });
  });

  it('gives every event its own copy of object values', () => {
    const fn = compileTransforms([{ type: 'set', fields: { labels: { a: 1 } } }, { type: 'set', fields: { 'labels.b': '{{ n }}' } }]);
    const [one] = fn(event({ n: 1 }));
    const [two] = fn(event({ n: 2 }));
    expect(one!.value).toEqual({ n: 1, labels: { a: 1, b: '1' } });
    expect(two!.value).toEqual({ n: 2, labels: { a: 1, b: '2' } });
    expect((one!.value as { labels: unknown }).labels).not.toBe((two!.value as { labels: unknown }).labels);
  });

  it('cannot write to prototypes', () => {
    valueAfter([{ type: 'set', fields: { '__proto__.polluted': 1, 'constructor.prototype.polluted': 1 } }], {});
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    const fields = JSON.parse('{"__proto__":"x"}') as Record<string, unknown>;
    const v = valueAfter([{ type: 'set', fields }], {}) as Record<string, unknown>;
    expect(Object.getOwnPropertyDescriptor(v, '__proto__')?.value).toBe('x');
  });

  it('rejects bad templates and paths', () => {
    expect(configError([{ type: 'set', fields: { a: '{{ b' } }])).toMatchObject({ path: '/0/fields/a', message: expect.stringContaining('not closed') });
    expect(configError([{ type: 'set', fields: { 'a/b': '{{ b..c }}' } }])).toMatchObject({ path: '/0/fields/a~1b' });
  });
});

describe('rename', () => {
  it('moves fields, nested too; missing ones are skipped', () => {
    expect(valueAfter([{ type: 'rename', fields: { msg: 'message', 'req.ip': 'client.ip', nope: 'x' } }], { msg: 'hi', req: { ip: '1.2.3.4', m: 'GET' } })).toEqual({
      message: 'hi',
      req: { m: 'GET' },
      client: { ip: '1.2.3.4' },
    });
  });

  it('overwrites the destination and keeps null values', () => {
    expect(valueAfter([{ type: 'rename', fields: { a: 'b' } }], { a: null, b: 1 })).toEqual({ b: null });
  });

  it('renames array elements out (splicing) and into objects', () => {
    expect(valueAfter([{ type: 'rename', fields: { 'xs.0': 'first' } }], { xs: ['a', 'b'] })).toEqual({ xs: ['b'], first: 'a' });
  });
});

describe('remove', () => {
  it('removes fields and array elements; missing ones are fine', () => {
    expect(valueAfter([{ type: 'remove', fields: ['password', 'req.headers.cookie', 'xs.1', 'missing.deep'] }], {
      password: 's',
      req: { headers: { cookie: 'c', host: 'h' } },
      xs: [1, 2, 3],
    })).toEqual({ req: { headers: { host: 'h' } }, xs: [1, 3] });
  });

  it('leaves values that are not objects alone', () => {
    expect(valueAfter([{ type: 'remove', fields: ['a'] }], 'line')).toBe('line');
  });

  it('returns the same value object when nothing was removed', () => {
    const value = { a: 1 };
    expect(valueAfter([{ type: 'remove', fields: ['b', 'a.c'] }], value)).toBe(value);
  });
});

describe('keep', () => {
  it('keeps only the listed paths', () => {
    expect(
      valueAfter([{ type: 'keep', fields: ['level', 'http.status', 'items.0', 'missing'] }], {
        level: 'info',
        secret: 'x',
        http: { status: 200, body: 'big' },
        items: ['a', 'b'],
      }),
    ).toEqual({ level: 'info', http: { status: 200 }, items: { '0': 'a' } });
  });

  it('keeps overlapping paths', () => {
    expect(valueAfter([{ type: 'keep', fields: ['a', 'a.b'] }], { a: { b: 1, c: 2 }, d: 3 })).toEqual({ a: { b: 1, c: 2 } });
  });

  it('sees a raw line as { message }', () => {
    expect(valueAfter([{ type: 'keep', fields: ['message'] }], 'line')).toEqual({ message: 'line' });
    expect(valueAfter([{ type: 'keep', fields: ['a'] }], 'line')).toEqual({});
  });
});

describe('route', () => {
  it('sets the topic from a template', () => {
    expect(run([{ type: 'route', topic: 'logs.{{ level }}' }], { level: 'error' })?.topic).toBe('logs.error');
    expect(run([{ type: 'route', topic: 'audit' }], {})?.topic).toBe('audit');
    expect(run([{ type: 'route', topic: '{{ _topic }}.copy' }], {}, { topic: 'orig' })?.topic).toBe('orig.copy');
  });

  it('keeps the topic when the template renders empty', () => {
    expect(run([{ type: 'route', topic: '{{ level }}' }], {}, { topic: 'orig' })?.topic).toBe('orig');
  });

  it('does not touch the value', () => {
    const value = { level: 'x' };
    expect(run([{ type: 'route', topic: 'a' }], value)?.value).toBe(value);
  });

  it('rejects a bad template', () => {
    expect(configError([{ type: 'route', topic: 'logs.{{ level' }])).toMatchObject({ path: '/0/topic', code: 'SLUICE_BAD_TRANSFORM' });
  });
});
