/**
 * The declarative transforms of a pipeline: parse, set, rename, remove, keep, filter, route,
 * timestamp, redact, sample. Nothing is evaluated as code; every transform is compiled once from
 * its config and run per event.
 */
export type { PipelineEvent, TransformFn } from './types.js';
export type {
  AndCondition,
  Condition,
  FieldCondition,
  FilterTransform,
  KeepTransform,
  NotCondition,
  OnError,
  OrCondition,
  ParseTransform,
  RedactTransform,
  RemoveTransform,
  RenameTransform,
  RouteTransform,
  SampleTransform,
  SetTransform,
  TimestampFormat,
  TimestampTransform,
  TransformSpec,
  TransformType,
} from './spec.js';
export { TransformConfigError, type TransformErrorCode } from './errors.js';
export { compileTransforms } from './compile.js';
export { transformSchema, transformVariants, TRANSFORM_SCHEMA_ID, type TransformVariant } from './schema.js';
export { PARSE_ERROR_FIELD } from './parse.js';
export { TIMESTAMP_ERROR_FIELD } from './timestamp.js';
export { formatLogfmt, parseLogfmt, LogfmtSyntaxError, type LogfmtRecord } from './logfmt.js';
export { FIELD_PATH_PATTERN } from './field-path.js';
