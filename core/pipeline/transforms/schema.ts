/**
 * JSON Schema (draft-07) of one transform item. The config loader embeds `transformSchema` as
 * the `items` of a pipeline's `transforms`; it carries its own `$id` so its internal `$ref`s (the
 * recursive filter condition) resolve wherever it is embedded.
 *
 * Each variant is described once, with its properties checked against its TypeScript spec type
 * by `variant()` below (all keys, no extra keys, the same required set), and carries typed
 * examples that the tests validate against the schema and compile.
 */
import { FIELD_PATH_PATTERN } from './field-path.js';
import type {
  Condition,
  FieldCondition,
  FilterTransform,
  KeepTransform,
  ParseTransform,
  RedactTransform,
  RemoveTransform,
  RenameTransform,
  RouteTransform,
  SampleTransform,
  SetTransform,
  TimestampTransform,
  TransformSpec,
  TransformType,
} from './spec.js';

type JsonSchema = Record<string, unknown>;

export const TRANSFORM_SCHEMA_ID = 'https://sluice.dev/schemas/transform.schema.json';

type RequiredKeys<T> = { [K in keyof T]-?: object extends Pick<T, K> ? never : K }[keyof T];

/** Properties of an object schema, one per key of T, and exactly T's required keys. */
interface ObjectShape<T> {
  description: string;
  properties: { [K in keyof T]-?: JsonSchema };
  required: { [K in RequiredKeys<T>]: true };
}

function objectSchema<T>(shape: ObjectShape<T>, extra: JsonSchema = {}): JsonSchema {
  return {
    type: 'object',
    description: shape.description,
    additionalProperties: false,
    required: Object.keys(shape.required),
    properties: shape.properties,
    ...extra,
  };
}

export interface TransformVariant<T extends TransformSpec = TransformSpec> {
  type: T['type'];
  schema: JsonSchema;
  examples: readonly T[];
}

function variant<T extends TransformSpec>(
  type: T['type'],
  shape: Omit<ObjectShape<T>, 'properties' | 'required'> & {
    properties: { [K in Exclude<keyof T, 'type'>]-?: JsonSchema };
    required: { [K in Exclude<RequiredKeys<T>, 'type'>]: true };
  },
  examples: readonly T[],
  extra: JsonSchema = {},
): TransformVariant<T> {
  const schema = objectSchema<T>(
    {
      description: shape.description,
      properties: { type: { const: type }, ...shape.properties } as unknown as ObjectShape<T>['properties'],
      required: { type: true, ...shape.required } as unknown as ObjectShape<T>['required'],
    },
    { ...extra, examples },
  );
  return { type, schema, examples };
}

const fieldPath = (description: string): JsonSchema => ({ type: 'string', pattern: FIELD_PATH_PATTERN, description });
const fieldList = (description: string): JsonSchema => ({
  type: 'array',
  items: { type: 'string', pattern: FIELD_PATH_PATTERN },
  minItems: 1,
  uniqueItems: true,
  description,
});
const onError = (what: string): JsonSchema => ({
  enum: ['keep', 'drop'],
  default: 'keep',
  description: `keep: leave the event and add a \`${what}\` field with the error; drop: drop the event`,
});

const parse = variant<ParseTransform>(
  'parse',
  {
    description: 'Parse a text field as JSON, logfmt or a regex with named groups.',
    properties: {
      format: { enum: ['json', 'logfmt', 'regex'] },
      field: fieldPath('field holding the text (default: the value itself if it is a string, else `message`)'),
      pattern: { type: 'string', minLength: 1, description: 'regex with named groups (format: regex)' },
      target: fieldPath('where the result goes (default: merged into the root of the value)'),
      on_error: onError('_parse_error'),
    },
    required: { format: true },
  },
  [
    { type: 'parse', format: 'json' },
    { type: 'parse', format: 'logfmt', field: 'message', target: 'fields', on_error: 'drop' },
    { type: 'parse', format: 'regex', pattern: '^(?<ip>\\S+) (?<method>[A-Z]+) (?<path>\\S+) (?<status>\\d{3})$' },
  ],
  {
    if: { properties: { format: { const: 'regex' } } },
    then: { required: ['pattern'] },
    else: { not: { required: ['pattern'] } },
  },
);

const set = variant<SetTransform>(
  'set',
  {
    description: 'Set fields: strings are templates ({{ path }}), other values are set as they are.',
    properties: {
      fields: {
        type: 'object',
        minProperties: 1,
        propertyNames: { pattern: FIELD_PATH_PATTERN },
        description: 'path → template or JSON value, applied in order',
      },
    },
    required: { fields: true },
  },
  [
    { type: 'set', fields: { env: 'production' } },
    { type: 'set', fields: { 'service.name': 'api', 'service.host': '{{ host }}', replicas: 3, tags: ['a'] } },
  ],
);

const rename = variant<RenameTransform>(
  'rename',
  {
    description: 'Move fields: from path → to path (a missing field is skipped).',
    properties: {
      fields: {
        type: 'object',
        minProperties: 1,
        propertyNames: { pattern: FIELD_PATH_PATTERN },
        additionalProperties: { type: 'string', pattern: FIELD_PATH_PATTERN },
      },
    },
    required: { fields: true },
  },
  [{ type: 'rename', fields: { msg: 'message', 'req.ip': 'client.ip' } }],
);

const remove = variant<RemoveTransform>(
  'remove',
  {
    description: 'Remove fields.',
    properties: { fields: fieldList('paths to remove') },
    required: { fields: true },
  },
  [{ type: 'remove', fields: ['password', 'request.headers.cookie'] }],
);

const keep = variant<KeepTransform>(
  'keep',
  {
    description: 'Keep only these fields.',
    properties: { fields: fieldList('paths to keep') },
    required: { fields: true },
  },
  [{ type: 'keep', fields: ['timestamp', 'level', 'message', 'http.status'] }],
);

const numberOp = (op: string): JsonSchema => ({
  type: 'number',
  description: `the field is a number (or a numeric string) ${op} this`,
});

const fieldCondition = objectSchema<FieldCondition>(
  {
    description: 'A test of one field; with several operators, all must hold.',
    properties: {
      field: fieldPath('the field tested'),
      equals: { description: 'equal to this JSON value (no type coercion)' },
      in: { type: 'array', minItems: 1, description: 'equal to one of these JSON values' },
      matches: { type: 'string', minLength: 1, description: 'a string matching this regex' },
      exists: { type: 'boolean', description: 'the field is present (even if null) / absent' },
      gt: numberOp('>'),
      gte: numberOp('>='),
      lt: numberOp('<'),
      lte: numberOp('<='),
    },
    required: { field: true },
  },
  { minProperties: 2 },
);

const CONDITION_REF = { $ref: '#/definitions/condition' };

const conditionSchema: JsonSchema = {
  type: 'object',
  description: 'A filter condition: a field test, or and / or / not of conditions.',
  if: { type: 'object', required: ['field'] },
  then: fieldCondition,
  else: {
    if: { type: 'object', required: ['and'] },
    then: objectSchema<{ and: Condition[] }>({
      description: 'all of these hold',
      properties: { and: { type: 'array', minItems: 1, items: CONDITION_REF } },
      required: { and: true },
    }),
    else: {
      if: { type: 'object', required: ['or'] },
      then: objectSchema<{ or: Condition[] }>({
        description: 'at least one of these holds',
        properties: { or: { type: 'array', minItems: 1, items: CONDITION_REF } },
        required: { or: true },
      }),
      else: objectSchema<{ not: Condition }>({
        description: 'this does not hold',
        properties: { not: CONDITION_REF },
        required: { not: true },
      }),
    },
  },
};

const filter = variant<FilterTransform>(
  'filter',
  {
    description: 'Keep the events matching the condition, drop the others.',
    properties: { condition: CONDITION_REF },
    required: { condition: true },
  },
  [
    { type: 'filter', condition: { field: 'level', in: ['warn', 'error'] } },
    {
      type: 'filter',
      condition: {
        and: [
          { field: 'status', gte: 500, lt: 600 },
          { not: { field: 'path', matches: '^/health' } },
          { or: [{ field: 'env', equals: 'production' }, { field: 'canary', exists: true }] },
        ],
      },
    },
  ],
);

const route = variant<RouteTransform>(
  'route',
  {
    description: 'Send the event to another topic (a template).',
    properties: { topic: { type: 'string', minLength: 1, description: 'topic template, e.g. logs.{{ level }}' } },
    required: { topic: true },
  },
  [{ type: 'route', topic: 'logs.{{ level }}' }],
);

const timestamp = variant<TimestampTransform>(
  'timestamp',
  {
    description: "Set the event's timestamp from a field.",
    properties: {
      field: fieldPath('the field holding the time'),
      format: {
        anyOf: [
          { enum: ['iso8601', 'unix_s', 'unix_ms'] },
          { type: 'string', pattern: '%', description: 'strftime-like pattern, e.g. %Y-%m-%d %H:%M:%S' },
        ],
      },
      timezone: {
        type: 'string',
        minLength: 1,
        default: 'UTC',
        description: 'zone of times without an offset: UTC, an IANA name (Europe/Berlin) or +HH:MM',
      },
      on_error: onError('_timestamp_error'),
    },
    required: { field: true, format: true },
  },
  [
    { type: 'timestamp', field: 'time', format: 'iso8601' },
    { type: 'timestamp', field: 'ts', format: 'unix_ms', on_error: 'drop' },
    { type: 'timestamp', field: 'date', format: '%d/%b/%Y:%H:%M:%S %z' },
    { type: 'timestamp', field: 'when', format: '%Y-%m-%d %H:%M:%S', timezone: 'Europe/Berlin' },
  ],
  {
    if: { properties: { format: { enum: ['unix_s', 'unix_ms'] } } },
    then: { not: { required: ['timezone'] } },
  },
);

const redact = variant<RedactTransform>(
  'redact',
  {
    description: 'Replace sensitive text in string fields.',
    properties: {
      fields: fieldList('fields to redact, recursively (default: every string in the value)'),
      patterns: {
        type: 'array',
        minItems: 1,
        items: {
          type: 'string',
          minLength: 1,
          description: 'email | bearer_token | credit_card (Luhn-checked) | a regex',
        },
      },
      replacement: { type: 'string', default: '[REDACTED]' },
    },
    required: { patterns: true },
  },
  [
    { type: 'redact', patterns: ['email', 'bearer_token', 'credit_card'] },
    { type: 'redact', fields: ['message'], patterns: ['\\bssn=\\d{3}-\\d{2}-\\d{4}'], replacement: '***' },
  ],
);

const sample = variant<SampleTransform>(
  'sample',
  {
    description: 'Keep a fraction of the events.',
    properties: {
      rate: { type: 'number', minimum: 0, maximum: 1, description: 'fraction kept, 0..1' },
      key_field: fieldPath('sample by a hash of this field: equal values are kept or dropped together'),
    },
    required: { rate: true },
  },
  [
    { type: 'sample', rate: 0.1 },
    { type: 'sample', rate: 0.5, key_field: 'trace_id' },
  ],
);

/** Every transform type with its schema and examples (for docs and tests), in a stable order. */
export const transformVariants = [
  parse,
  set,
  rename,
  remove,
  keep,
  filter,
  route,
  timestamp,
  redact,
  sample,
] as const satisfies readonly TransformVariant[];

// Every type of the TransformSpec union has a variant, and no variant is unknown to it.
type Missing = Exclude<TransformType, (typeof transformVariants)[number]['type']>;
const everyTypeHasAVariant: [Missing] extends [never] ? true : Missing = true;
void everyTypeHasAVariant;

/** The JSON Schema of one item of a pipeline's `transforms`. */
export const transformSchema: Record<string, unknown> = {
  $id: TRANSFORM_SCHEMA_ID,
  title: 'transform',
  type: 'object',
  required: ['type'],
  properties: { type: { enum: transformVariants.map((v) => v.type) } },
  allOf: transformVariants.map((v) => ({
    if: { properties: { type: { const: v.type } } },
    then: v.schema,
  })),
  definitions: { condition: conditionSchema },
};
