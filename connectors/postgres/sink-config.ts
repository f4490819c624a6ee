/**
 * Configuration of the `postgres` sink: its TypeScript shape, defaults and JSON Schema (the
 * schema validates pipelines.yaml; the docs page's table is checked against it).
 */
export type PostgresSinkMode = 'append' | 'upsert' | 'apply';
export type OnNewFields = 'add_columns' | 'ignore' | 'fail';

export interface PostgresSinkConfig {
  url: string;
  mode?: PostgresSinkMode;
  schema?: string;
  table: string;
  key_columns?: string[];
  create_table?: boolean;
  column_types?: Record<string, string>;
  on_new_fields?: OnNewFields;
  offsets_schema?: string;
  offsets_table?: string;
  connect_timeout_ms?: number;
  batch_max_rows?: number;
  batch_max_bytes?: number;
}

export const DEFAULTS = {
  mode: 'append' as PostgresSinkMode,
  schema: 'public',
  on_new_fields: 'fail' as OnNewFields,
  offsets_schema: 'public',
  offsets_table: 'sluice_offsets',
  connect_timeout_ms: 10_000,
};

/**
 * Default transaction limits by mode. append streams its rows into COPY, a backlog of several log
 * reads into one COPY statement (Sink.writeSpan), so its limits bound a transaction's length, not
 * memory: PostgreSQL loads the rows of a long COPY with less CPU each. upsert and apply hold each
 * transaction's rows as objects (one log read of 4 MiB at most), and larger transactions cost
 * them more per row and much memory.
 */
export function defaultBatchLimits(mode: PostgresSinkMode): { batch_max_rows: number; batch_max_bytes: number } {
  return mode === 'append' ? { batch_max_rows: 1_000_000, batch_max_bytes: 256 * 1024 * 1024 } : { batch_max_rows: 10_000, batch_max_bytes: 16 * 1024 * 1024 };
}

/** A SQL type name as written in `column_types`: a config value spliced into DDL, so kept to this shape. */
const TYPE_PATTERN = '^[A-Za-z_][A-Za-z0-9_ ]*(\\([0-9, ]+\\))?( ?\\[\\])*$';

const IDENT = { type: 'string', minLength: 1, maxLength: 63 };

export const postgresSinkSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['url', 'table'],
  properties: {
    url: { type: 'string', minLength: 1, description: 'postgres://user:password@host:port/database (use ${ENV_VAR} for secrets; never logged)' },
    mode: { enum: ['append', 'upsert', 'apply'], default: DEFAULTS.mode, description: 'append: COPY rows; upsert: by key_columns; apply: replay CDC events' },
    schema: { type: 'string', minLength: 1, default: DEFAULTS.schema, description: 'target schema; may be a template like "{{ source.schema }}"' },
    table: { type: 'string', minLength: 1, description: 'target table; may be a template like "{{ source.table }}", rendered per record' },
    key_columns: { type: 'array', items: IDENT, minItems: 1, uniqueItems: true, description: 'upsert: the conflict key (a unique index); apply: overrides the primary key; create_table: the primary key' },
    create_table: { type: 'boolean', default: false, description: 'create a missing table, column types from column_types or inferred from the first records' },
    column_types: {
      type: 'object',
      additionalProperties: { type: 'string', pattern: TYPE_PATTERN },
      description: 'SQL types for created or added columns, e.g. { amount: "numeric(12,2)", at: timestamptz }',
    },
    on_new_fields: { enum: ['add_columns', 'ignore', 'fail'], default: DEFAULTS.on_new_fields, description: 'a field without a column: add the column, leave the field out, or send the record to the DLQ' },
    offsets_schema: { ...IDENT, default: DEFAULTS.offsets_schema, description: 'schema of the offsets table' },
    offsets_table: { ...IDENT, default: DEFAULTS.offsets_table, description: 'table holding (pipeline, sink, topic, partition, next_offset, fence); created if missing' },
    connect_timeout_ms: { type: 'integer', minimum: 1, default: DEFAULTS.connect_timeout_ms },
    batch_max_rows: { type: 'integer', minimum: 1, description: 'records per transaction at most (default 1000000 in append mode, 10000 in upsert and apply)' },
    batch_max_bytes: { type: 'integer', minimum: 1, description: 'record bytes per transaction at most (default 268435456, 256 MiB, in append mode; 16777216 in upsert and apply)' },
  },
  allOf: [{ if: { properties: { mode: { const: 'upsert' } }, required: ['mode'] }, then: { required: ['key_columns'] } }],
};
