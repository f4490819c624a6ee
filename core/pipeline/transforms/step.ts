/**
 * What the compiler of one transform produces, and helpers that turn the pieces of a spec into
 * compiled objects, reporting a bad piece with its JSON Pointer inside the transform.
 */
import { compileTemplate } from '../template.js';
import type { Draft } from './draft.js';
import { SpecError } from './errors.js';
import { parseFieldPath, type FieldPath } from './field-path.js';
import type { PipelineEvent } from './types.js';

/** One compiled transform: edits the draft; false drops the event. */
export type Step = (draft: Draft) => boolean;

export interface CompileOptions {
  random: () => number;
}

export function fieldPathAt(text: string, pointer: string): FieldPath {
  try {
    return parseFieldPath(text);
  } catch (err) {
    throw new SpecError(pointer, (err as Error).message, { cause: err });
  }
}

export function regexAt(source: string, pointer: string, flags = ''): RegExp {
  if (typeof source !== 'string' || source.length === 0) throw new SpecError(pointer, 'the regex is empty');
  try {
    return new RegExp(source, flags);
  } catch (err) {
    throw new SpecError(pointer, `invalid regex: ${(err as Error).message}`, { cause: err });
  }
}

export function templateAt(text: string, pointer: string): (event: PipelineEvent) => string {
  try {
    return compileTemplate(text);
  } catch (err) {
    throw new SpecError(pointer, (err as Error).message, { cause: err });
  }
}

/** Escapes a key for a JSON Pointer segment (RFC 6901). */
export function pointerSegment(key: string | number): string {
  return String(key).replace(/~/g, '~0').replace(/\//g, '~1');
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
