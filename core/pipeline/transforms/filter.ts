/**
 * `filter`: keep the events whose value matches a condition, drop the others.
 *
 * Field tests compare without coercion (`equals: 200` does not match "200"), except the
 * ordering tests gt/gte/lt/lte, which also accept numeric strings because logfmt and regex
 * parsing only ever produce strings. `matches` is true only for strings. `exists` is true for
 * any present field, null included. Several operators on one field must all hold.
 */
import { SpecError } from './errors.js';
import { getPath, isPlainObject } from './field-path.js';
import { fieldPathAt, regexAt, type Step } from './step.js';
import type { Condition, FieldCondition, FilterTransform } from './spec.js';

type Predicate = (value: unknown) => boolean;

const FIELD_OPERATORS = ['equals', 'in', 'matches', 'exists', 'gt', 'gte', 'lt', 'lte'] as const;

/** Deep equality of JSON values; object key order does not matter. */
export function jsonEquals(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!jsonEquals(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) {
    if (!Object.hasOwn(b, k) || !jsonEquals((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) {
      return false;
    }
  }
  return true;
}

const DECIMAL = /^\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*$/;

/** A number, or a string holding a decimal one ("42", "-1.5", "2e3"); else NaN. */
function numeric(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && DECIMAL.test(v)) return Number(v);
  return NaN;
}

function numberOperand(cond: FieldCondition, op: 'gt' | 'gte' | 'lt' | 'lte', pointer: string): number {
  const n = cond[op];
  if (typeof n !== 'number' || !Number.isFinite(n)) throw new SpecError(`${pointer}/${op}`, `${op} needs a number`);
  return n;
}

function compileFieldCondition(cond: FieldCondition, pointer: string): Predicate {
  const path = fieldPathAt(cond.field, `${pointer}/field`);
  const tests: ((v: unknown) => boolean)[] = [];
  for (const key of Object.keys(cond)) {
    if (key !== 'field' && !(FIELD_OPERATORS as readonly string[]).includes(key)) {
      throw new SpecError(`${pointer}/${key}`, `unknown condition operator "${key}"`);
    }
  }
  if ('equals' in cond) {
    const expected = cond.equals;
    if (typeof expected === 'object' && expected !== null) tests.push((v) => jsonEquals(v, expected));
    else tests.push((v) => v === expected);
  }
  if (cond.in !== undefined) {
    if (!Array.isArray(cond.in) || cond.in.length === 0) throw new SpecError(`${pointer}/in`, 'in needs a non-empty list');
    const scalars = new Set(cond.in.filter((x) => typeof x !== 'object' || x === null));
    const objects = cond.in.filter((x) => typeof x === 'object' && x !== null);
    if (objects.length === 0) tests.push((v) => scalars.has(v));
    else tests.push((v) => scalars.has(v) || objects.some((o) => jsonEquals(v, o)));
  }
  if (cond.matches !== undefined) {
    const re = regexAt(cond.matches, `${pointer}/matches`);
    tests.push((v) => typeof v === 'string' && re.test(v));
  }
  if (cond.exists !== undefined) {
    if (typeof cond.exists !== 'boolean') throw new SpecError(`${pointer}/exists`, 'exists needs true or false');
    const want = cond.exists;
    tests.push((v) => (v !== undefined) === want);
  }
  if (cond.gt !== undefined) {
    const n = numberOperand(cond, 'gt', pointer);
    tests.push((v) => numeric(v) > n);
  }
  if (cond.gte !== undefined) {
    const n = numberOperand(cond, 'gte', pointer);
    tests.push((v) => numeric(v) >= n);
  }
  if (cond.lt !== undefined) {
    const n = numberOperand(cond, 'lt', pointer);
    tests.push((v) => numeric(v) < n);
  }
  if (cond.lte !== undefined) {
    const n = numberOperand(cond, 'lte', pointer);
    tests.push((v) => numeric(v) <= n);
  }
  if (tests.length === 0) {
    throw new SpecError(pointer, `a field condition needs an operator: ${FIELD_OPERATORS.join(', ')}`);
  }
  if (tests.length === 1) {
    const only = tests[0]!;
    return (root) => only(getPath(root, path));
  }
  return (root) => {
    const v = getPath(root, path);
    for (const t of tests) if (!t(v)) return false;
    return true;
  };
}

function compileList(list: unknown, pointer: string): Predicate[] {
  if (!Array.isArray(list) || list.length === 0) throw new SpecError(pointer, 'needs a non-empty list of conditions');
  return list.map((c, i) => compileCondition(c as Condition, `${pointer}/${i}`));
}

/** Compiles a condition; `pointer` locates it inside the transform for errors. */
export function compileCondition(cond: Condition, pointer: string): Predicate {
  if (!isPlainObject(cond)) throw new SpecError(pointer, 'a condition must be an object');
  if ('field' in cond) return compileFieldCondition(cond as FieldCondition, pointer);
  const keys = Object.keys(cond);
  if (keys.length !== 1) {
    throw new SpecError(pointer, `a condition is a field test or exactly one of and, or, not; got ${keys.join(', ') || 'nothing'}`);
  }
  if ('and' in cond) {
    const parts = compileList(cond.and, `${pointer}/and`);
    return (root) => parts.every((p) => p(root));
  }
  if ('or' in cond) {
    const parts = compileList(cond.or, `${pointer}/or`);
    return (root) => parts.some((p) => p(root));
  }
  if ('not' in cond) {
    const inner = compileCondition(cond.not, `${pointer}/not`);
    return (root) => !inner(root);
  }
  throw new SpecError(pointer, `unknown condition "${keys[0]}"`);
}

export function compileFilter(spec: FilterTransform): Step {
  const predicate = compileCondition(spec.condition, '/condition');
  return (draft) => predicate(draft.event.value);
}
