/**
 * The configuration types of the transforms, one per `type`. schema.ts builds the JSON Schema
 * from descriptions checked against these types at compile time (same property names, same
 * required set), and every variant's examples are typed as its spec here and validated by the
 * schema in the tests, so the two cannot drift apart.
 */

export type OnError = 'keep' | 'drop';

export interface ParseTransform {
  type: 'parse';
  format: 'json' | 'logfmt' | 'regex';
  /** Field holding the text; default: the value itself when it is a string, else `message`. */
  field?: string;
  /** Regex with named groups (required for `format: regex`, not allowed otherwise). */
  pattern?: string;
  /** Where the result goes; default: merged into the value's root. */
  target?: string;
  /** keep (default): leave the event and add `_parse_error`; drop: drop it. */
  on_error?: OnError;
}

export interface SetTransform {
  type: 'set';
  /** path → template (strings) or JSON value (anything else), applied in order. */
  fields: Record<string, unknown>;
}

export interface RenameTransform {
  type: 'rename';
  /** from path → to path. */
  fields: Record<string, string>;
}

export interface RemoveTransform {
  type: 'remove';
  fields: string[];
}

export interface KeepTransform {
  type: 'keep';
  fields: string[];
}

export interface FieldCondition {
  field: string;
  equals?: unknown;
  in?: unknown[];
  matches?: string;
  exists?: boolean;
  gt?: number;
  gte?: number;
  lt?: number;
  lte?: number;
}
export interface AndCondition {
  and: Condition[];
}
export interface OrCondition {
  or: Condition[];
}
export interface NotCondition {
  not: Condition;
}
export type Condition = FieldCondition | AndCondition | OrCondition | NotCondition;

export interface FilterTransform {
  type: 'filter';
  /** Events that match are kept, the others dropped. */
  condition: Condition;
}

export interface RouteTransform {
  type: 'route';
  /** Template of the target topic, e.g. `logs.{{ level }}`. */
  topic: string;
}

export type TimestampFormat = 'iso8601' | 'unix_s' | 'unix_ms' | (string & {});

export interface TimestampTransform {
  type: 'timestamp';
  field: string;
  /** iso8601 | unix_s | unix_ms | a strftime-like pattern such as `%Y-%m-%d %H:%M:%S`. */
  format: TimestampFormat;
  /** For times without an offset: `UTC` (default), an IANA zone, or a fixed offset like `+02:00`. */
  timezone?: string;
  /** keep (default): leave the timestamp and add `_timestamp_error`; drop: drop the event. */
  on_error?: OnError;
}

export interface RedactTransform {
  type: 'redact';
  /** Default: every string in the value, recursively. */
  fields?: string[];
  /** `email`, `bearer_token`, `credit_card`, or a regex. */
  patterns: string[];
  replacement?: string;
}

export interface SampleTransform {
  type: 'sample';
  /** Fraction of events kept, 0..1. */
  rate: number;
  /** Sample by a hash of this field's value: all events with the same value are kept or dropped together. */
  key_field?: string;
}

export type TransformSpec =
  | ParseTransform
  | SetTransform
  | RenameTransform
  | RemoveTransform
  | KeepTransform
  | FilterTransform
  | RouteTransform
  | TimestampTransform
  | RedactTransform
  | SampleTransform;

export type TransformType = TransformSpec['type'];
