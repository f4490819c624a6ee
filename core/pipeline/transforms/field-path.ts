/**
 * Field paths: `host`, `source.table`, `items.0.id`. A segment of digits indexes an array (on an
 * object it is an ordinary key). `\.` and `\\` put a literal dot or backslash in a key, for keys
 * like `app.kubernetes.io/name` (`labels.app\.kubernetes\.io/name`).
 *
 * Paths are parsed once at compile time; reading only ever follows own properties, so a path such
 * as `__proto__.x` reads nothing and can never reach (or, in draft.ts, write to) a prototype.
 */

/** A parsed path: its segments, and for each the array index it denotes (or -1). */
export interface FieldPath {
  readonly text: string;
  readonly keys: readonly string[];
  readonly indexes: readonly number[];
}

/** The JSON Schema pattern of a field path (what parseFieldPath accepts). */
export const FIELD_PATH_PATTERN = '^(?:[^.\\\\]|\\\\[.\\\\])+(?:\\.(?:[^.\\\\]|\\\\[.\\\\])+)*$';

const INDEX = /^(?:0|[1-9][0-9]{0,8})$/;

/** Parses a path; throws an Error with a readable message when it is malformed. */
export function parseFieldPath(text: string): FieldPath {
  if (typeof text !== 'string' || text.length === 0) throw new Error('a field path cannot be empty');
  const keys: string[] = [];
  let current = '';
  let empty = true;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '\\') {
      const next = text[i + 1];
      if (next !== '.' && next !== '\\') {
        throw new Error(`invalid field path "${text}": "\\" must be followed by "." or "\\"`);
      }
      current += next;
      empty = false;
      i++;
    } else if (c === '.') {
      if (empty) throw new Error(`invalid field path "${text}": empty segment`);
      keys.push(current);
      current = '';
      empty = true;
    } else {
      current += c;
      empty = false;
    }
  }
  if (empty) throw new Error(`invalid field path "${text}": empty segment`);
  keys.push(current);
  return { text, keys, indexes: keys.map((k) => (INDEX.test(k) ? Number(k) : -1)) };
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** One step of a walk: an own property of an object, or an element of an array. */
export function child(container: unknown, key: string, index: number): unknown {
  if (typeof container !== 'object' || container === null) return undefined;
  if (Array.isArray(container)) return index >= 0 && index < container.length ? container[index] : undefined;
  return Object.hasOwn(container, key) ? (container as Record<string, unknown>)[key] : undefined;
}

/** The value at `path` inside `root`, or undefined when any step is missing. */
export function getPath(root: unknown, path: FieldPath): unknown {
  const { keys, indexes } = path;
  let cur = root;
  for (let i = 0; i < keys.length; i++) {
    cur = child(cur, keys[i]!, indexes[i]!);
    if (cur === undefined) return undefined;
  }
  return cur;
}

/** Sets an own enumerable property even when the key is `__proto__`. */
export function setOwn(obj: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') {
    Object.defineProperty(obj, key, { value, writable: true, enumerable: true, configurable: true });
  } else {
    obj[key] = value;
  }
}
