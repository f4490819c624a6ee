import { compileTransforms, type PipelineEvent, type TransformSpec } from '../../../core/pipeline/transforms/index.js';

export function event(value: unknown, extra: Partial<PipelineEvent> = {}): PipelineEvent {
  return { value, key: null, headers: {}, timestamp: Date.UTC(2024, 5, 15, 12, 0, 0), topic: 'in', ...extra };
}

/** Runs the transforms on one value; returns the single output event, or null when dropped. */
export function run(specs: TransformSpec[], value: unknown, extra: Partial<PipelineEvent> = {}): PipelineEvent | null {
  const out = compileTransforms(specs)(event(value, extra));
  if (out.length > 1) throw new Error('more than one event');
  return out[0] ?? null;
}

/** The value after the transforms (throws when the event was dropped). */
export function valueAfter(specs: TransformSpec[], value: unknown): unknown {
  const out = run(specs, value);
  if (out === null) throw new Error('dropped');
  return out.value;
}

/** Freezes a value deeply, so any attempt to mutate the input throws in strict mode. */
export function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null) {
    for (const k of Object.keys(v)) deepFreeze((v as Record<string, unknown>)[k]);
    Object.freeze(v);
  }
  return v;
}

/** Runs specs expecting a TransformConfigError; returns it. */
export function configError(specs: unknown[]): { code: string; index: number; path: string; message: string } {
  try {
    compileTransforms(specs as TransformSpec[]);
  } catch (err) {
    return err as { code: string; index: number; path: string; message: string };
  }
  throw new Error('expected a TransformConfigError');
}
