/**
 * compileTransforms: checks every spec against the schema, compiles each transform once
 * (regexes, templates, paths, time parsers) and chains them into one TransformFn.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { Draft } from './draft.js';
import { SpecError, TransformConfigError } from './errors.js';
import { compileKeep, compileRemove, compileRename, compileRoute, compileSet } from './fields.js';
import { compileFilter } from './filter.js';
import { compileParse } from './parse.js';
import { compileRedact } from './redact.js';
import { compileSample } from './sample.js';
import { transformSchema } from './schema.js';
import type { TransformSpec, TransformType } from './spec.js';
import type { CompileOptions, Step } from './step.js';
import { compileTimestamp } from './timestamp.js';
import type { PipelineEvent, TransformFn } from './types.js';

type Compilers = { [T in TransformType]: (spec: Extract<TransformSpec, { type: T }>, options: CompileOptions) => Step };

/** Every transform type and its compiler: the one list of built-in transforms. */
const COMPILERS: Compilers = {
  parse: compileParse,
  set: compileSet,
  rename: compileRename,
  remove: compileRemove,
  keep: compileKeep,
  filter: compileFilter,
  route: compileRoute,
  timestamp: compileTimestamp,
  redact: compileRedact,
  sample: (spec, options) => compileSample(spec, options.random),
};

let validator: ValidateFunction | undefined;

function validate(spec: unknown): ErrorObject | undefined {
  validator ??= new Ajv({ strict: true, strictRequired: false }).compile(transformSchema);
  return validator(spec) ? undefined : validator.errors?.[0];
}

/** Names the allowed values and the offending key, which ajv's own messages leave out. */
function describeSchemaError(e: ErrorObject): string {
  const params = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'additionalProperties':
      return `unknown key "${String(params['additionalProperty'])}"`;
    case 'enum':
      return `must be one of ${(params['allowedValues'] as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    case 'required':
      return `missing "${String(params['missingProperty'])}"`;
    default:
      return e.message ?? 'is invalid';
  }
}

function pointerOf(e: ErrorObject): string {
  if (e.keyword === 'additionalProperties') return `${e.instancePath}/${String((e.params as Record<string, unknown>)['additionalProperty'])}`;
  return e.instancePath;
}

function compileOne(spec: TransformSpec, index: number, options: CompileOptions): Step {
  const error = validate(spec);
  if (error !== undefined) throw new TransformConfigError(index, `/${index}${pointerOf(error)}`, describeSchemaError(error));
  try {
    const compile = COMPILERS[spec.type] as (spec: TransformSpec, options: CompileOptions) => Step;
    return compile(spec, options);
  } catch (err) {
    if (err instanceof SpecError) {
      throw new TransformConfigError(index, `/${index}${err.pointer}`, err.message, { cause: err.cause ?? err });
    }
    throw err;
  }
}

/**
 * Compiles a list of transforms into one function. Throws TransformConfigError for the first
 * transform that is invalid. `options.random` (default Math.random) drives `sample` without a key.
 */
export function compileTransforms(specs: readonly TransformSpec[], options?: { random?: () => number }): TransformFn {
  const resolved: CompileOptions = { random: options?.random ?? Math.random };
  const steps = specs.map((spec, i) => compileOne(spec, i, resolved));
  if (steps.length === 0) return (event) => [event];
  return (event: PipelineEvent): PipelineEvent[] => {
    const draft = new Draft({
      value: event.value,
      key: event.key,
      headers: event.headers,
      timestamp: event.timestamp,
      topic: event.topic,
    });
    for (let i = 0; i < steps.length; i++) if (!steps[i]!(draft)) return [];
    return [draft.event];
  };
}
