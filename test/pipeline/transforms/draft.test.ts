import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Draft } from '../../../core/pipeline/transforms/draft.js';
import { FIELD_PATH_PATTERN, getPath, parseFieldPath } from '../../../core/pipeline/transforms/field-path.js';
import { deepFreeze, event } from './helpers.js';

describe('parseFieldPath', () => {
  it('splits on dots, notes array indexes and honours escapes', () => {
    expect(parseFieldPath('a.b.0.c')).toMatchObject({ keys: ['a', 'b', '0', 'c'], indexes: [-1, -1, 0, -1] });
    expect(parseFieldPath('labels.app\\.kubernetes\\.io/name').keys).toEqual(['labels', 'app.kubernetes.io/name']);
    expect(parseFieldPath('a\\\\b').keys).toEqual(['a\\b']);
    expect(parseFieldPath('x.01').indexes).toEqual([-1, -1]);
    expect(parseFieldPath('x.10').indexes).toEqual([-1, 10]);
  });

  it('rejects empty segments and stray backslashes', () => {
    for (const bad of ['', '.', 'a.', '.a', 'a..b', 'a\\b', 'a\\']) expect(() => parseFieldPath(bad), bad).toThrow();
  });

  it('reads own properties only', () => {
    expect(getPath({ a: [{ b: 1 }] }, parseFieldPath('a.0.b'))).toBe(1);
    expect(getPath({ a: { '0': 'x' } }, parseFieldPath('a.0'))).toBe('x');
    expect(getPath({}, parseFieldPath('hasOwnProperty'))).toBeUndefined();
    expect(getPath('str', parseFieldPath('length'))).toBeUndefined();
  });
});

type Op = { kind: 'set'; path: string; value: unknown } | { kind: 'delete'; path: string };

const segment = fc.constantFrom('a', 'b', 'c', '0', '1', '3');
const pathArb = fc.array(segment, { minLength: 1, maxLength: 3 }).map((s) => s.join('.'));
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), path: pathArb, value: fc.jsonValue({ maxDepth: 2 }) }),
  fc.record({ kind: fc.constant('delete' as const), path: pathArb }),
);
const valueArb = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.dictionary(segment, fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.array(fc.jsonValue({ maxDepth: 1 }), { maxLength: 4 })), { maxKeys: 4, noNullPrototype: true }),
);

function apply(draft: Draft, ops: readonly Op[]): unknown {
  for (const op of ops) {
    if (op.kind === 'set') draft.set(parseFieldPath(op.path), structuredClone(op.value));
    else draft.delete(parseFieldPath(op.path));
  }
  return draft.event.value;
}

/** Every object of a value, so a Draft can be told it owns them all (edits in place, copies nothing). */
function adoptAll(draft: Draft, v: unknown): void {
  if (typeof v === 'object' && v !== null) {
    draft.adopt(v);
    for (const x of Object.values(v)) adoptAll(draft, x);
  }
}

describe('Draft', () => {
  it('copy-on-write gives the same result as editing a private deep copy in place', () => {
    fc.assert(
      fc.property(valueArb, fc.array(opArb, { maxLength: 8 }), (value, ops) => {
        const frozen = deepFreeze(structuredClone(value));
        const cow = apply(new Draft(event(frozen)), ops);

        const copy = structuredClone(value);
        const inPlace = new Draft(event(copy));
        adoptAll(inPlace, copy);
        const expected = apply(inPlace, ops);

        expect(cow).toEqual(expected);
        expect(frozen).toEqual(value);
      }),
      { numRuns: 1000 },
    );
  });

  it('copies an object once per run, then edits it in place', () => {
    const inner = { x: 1 };
    const value = { inner, other: { y: 1 } };
    const draft = new Draft(event(value));
    draft.set(parseFieldPath('inner.a'), 1);
    const firstCopy = (draft.event.value as typeof value).inner;
    draft.set(parseFieldPath('inner.b'), 2);
    expect((draft.event.value as typeof value).inner).toBe(firstCopy);
    expect(firstCopy).toEqual({ x: 1, a: 1, b: 2 });
    expect(inner).toEqual({ x: 1 });
    // Untouched branches are shared.
    expect((draft.event.value as typeof value).other).toBe(value.other);
  });

  it('deleting something missing copies nothing', () => {
    const value = { a: { b: 1 } };
    const draft = new Draft(event(value));
    expect(draft.delete(parseFieldPath('a.c'))).toBe(false);
    expect(draft.delete(parseFieldPath('a.b.c'))).toBe(false);
    expect(draft.event.value).toBe(value);
  });
});

describe('FIELD_PATH_PATTERN', () => {
  it('accepts exactly what parseFieldPath accepts', () => {
    const re = new RegExp(FIELD_PATH_PATTERN, 'u');
    fc.assert(
      fc.property(fc.stringMatching(/^[a-z.\\]{0,8}$/), (text) => {
        let parses = true;
        try {
          parseFieldPath(text);
        } catch {
          parses = false;
        }
        expect(re.test(text)).toBe(parses);
      }),
      { numRuns: 2000 },
    );
  });
});
