/**
 * Field edits: `set`, `rename`, `remove`, `keep`, and `route` (which sets the event's topic).
 * All of them write through the Draft, so the input event is never modified.
 */
import { SpecError } from './errors.js';
import { getPath, isPlainObject, setOwn, type FieldPath } from './field-path.js';
import { fieldPathAt, pointerSegment, templateAt, type Step } from './step.js';
import type { KeepTransform, RemoveTransform, RenameTransform, RouteTransform, SetTransform } from './spec.js';
import type { PipelineEvent } from './types.js';

type Producer = (event: PipelineEvent) => unknown;

/** A deep copy of a JSON value from the config, so no two events share (and later edit) it. */
function cloneJson(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(cloneJson);
  if (isPlainObject(v)) {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v)) setOwn(out, k, cloneJson(v[k]));
    return out;
  }
  return v;
}

function producer(value: unknown, pointer: string): Producer {
  if (typeof value === 'string') return templateAt(value, pointer);
  if (typeof value === 'object' && value !== null) {
    const frozen = cloneJson(value);
    return () => cloneJson(frozen);
  }
  return () => value;
}

function entries<T>(fields: Record<string, T> | undefined, what: string): [string, T][] {
  if (!isPlainObject(fields) || Object.keys(fields).length === 0) {
    throw new SpecError('/fields', `${what} needs at least one field`);
  }
  return Object.entries(fields) as [string, T][];
}

function pathList(fields: readonly string[] | undefined, what: string): FieldPath[] {
  if (!Array.isArray(fields) || fields.length === 0) throw new SpecError('/fields', `${what} needs at least one field`);
  return fields.map((f, i) => fieldPathAt(f, `/fields/${i}`));
}

export function compileSet(spec: SetTransform): Step {
  const ops = entries(spec.fields, 'set').map(([path, value]) => {
    const pointer = `/fields/${pointerSegment(path)}`;
    return { path: fieldPathAt(path, pointer), produce: producer(value, pointer) };
  });
  return (draft) => {
    for (const op of ops) {
      const v = op.produce(draft.event);
      if (typeof v === 'object' && v !== null) draft.adopt(v);
      draft.set(op.path, v);
    }
    return true;
  };
}

export function compileRename(spec: RenameTransform): Step {
  const ops = entries(spec.fields, 'rename').map(([from, to]) => {
    const pointer = `/fields/${pointerSegment(from)}`;
    if (typeof to !== 'string') throw new SpecError(pointer, 'the new name must be a string');
    return { from: fieldPathAt(from, pointer), to: fieldPathAt(to, pointer) };
  });
  return (draft) => {
    for (const op of ops) {
      const v = getPath(draft.event.value, op.from);
      if (v === undefined) continue;
      draft.delete(op.from);
      draft.set(op.to, v);
    }
    return true;
  };
}

export function compileRemove(spec: RemoveTransform): Step {
  const paths = pathList(spec.fields, 'remove');
  return (draft) => {
    for (const p of paths) draft.delete(p);
    return true;
  };
}

/**
 * Builds a new root holding only the listed paths. A value that is not an object is seen as
 * `{ message: value }` (as everywhere values are written), so `keep: [message]` keeps a raw line.
 */
export function compileKeep(spec: KeepTransform): Step {
  const paths = pathList(spec.fields, 'keep');
  return (draft) => {
    const v0 = draft.event.value;
    const source = isPlainObject(v0) ? v0 : v0 === null || v0 === undefined ? {} : { message: v0 };
    const kept = draft.adopt({});
    for (const p of paths) {
      const v = getPath(source, p);
      if (v !== undefined) draft.setIn(kept, p, v);
    }
    draft.replaceRoot(kept);
    return true;
  };
}

/** Sets the topic; an empty result keeps the current topic rather than naming no topic at all. */
export function compileRoute(spec: RouteTransform): Step {
  if (typeof spec.topic !== 'string' || spec.topic.length === 0) throw new SpecError('/topic', 'the topic is empty');
  const topic = templateAt(spec.topic, '/topic');
  return (draft) => {
    const t = topic(draft.event);
    if (t !== '') draft.event.topic = t;
    return true;
  };
}
