/**
 * SQL text for the `postgres` sink: identifier quoting, the COPY text encoding of JSON values
 * per column type, array literals, and column types inferred from JSON values. No I/O.
 *
 * Every identifier that reaches SQL — schema, table and column names, whether from the config or
 * from a record's field names — goes through `quoteIdent`, so a name holding quotes, spaces or
 * semicolons is a name, never SQL.
 */

/** `"name"`, with embedded double quotes doubled (what `pg`'s escapeIdentifier does). */
export function quoteIdent(name: string): string {
  if (name.includes('\u0000')) throw new Error('an identifier cannot contain a NUL character');
  return `"${name.replaceAll('"', '""')}"`;
}

export function qualified(schema: string, table: string): string {
  return `${quoteIdent(schema)}.${quoteIdent(table)}`;
}

/** What the encoder needs to know of a column's type. */
export interface ColumnType {
  /** format_type() of the column, e.g. `bigint`, `numeric(12,2)`, `text[]`: used in casts. */
  sqlType: string;
  kind: 'json' | 'bytea' | 'array' | 'bool' | 'other';
}

export function columnKind(typname: string, category: string): ColumnType['kind'] {
  if (typname === 'json' || typname === 'jsonb') return 'json';
  if (typname === 'bytea') return 'bytea';
  if (category === 'A') return 'array';
  if (typname === 'bool') return 'bool';
  return 'other';
}

/**
 * A bytea value arrives as Postgres's hex text (`\x0a0b`) or as base64; both are accepted, the
 * hex form as it is.
 */
function byteaText(v: string): string {
  if (v.startsWith('\\x')) return v;
  return `\\x${Buffer.from(v, 'base64').toString('hex')}`;
}

function arrayElement(e: unknown): string {
  if (e === null || e === undefined) return 'NULL';
  if (Array.isArray(e)) return arrayLiteral(e);
  const text = typeof e === 'object' ? JSON.stringify(e) : String(e);
  return `"${text.replace(/["\\]/g, '\\$&')}"`;
}

/** A JSON array as a Postgres array literal: `{"a","b",NULL}`; nested arrays stay nested. */
export function arrayLiteral(a: readonly unknown[]): string {
  let out = '{';
  for (let i = 0; i < a.length; i++) {
    if (i > 0) out += ',';
    out += arrayElement(a[i]);
  }
  return `${out}}`;
}

/**
 * The text Postgres parses into a column of this type, or null for SQL NULL.
 * A JSON value in a json/jsonb column is stored as that JSON value (a string stays a JSON
 * string); numbers and strings go as their text, so int8 and numeric written as strings keep
 * every digit; arrays go to array columns as array literals, elsewhere as JSON text.
 */
export function valueText(v: unknown, col: ColumnType | undefined): string | null {
  if (v === null || v === undefined) return null;
  const kind = col?.kind ?? 'other';
  if (kind === 'json') return JSON.stringify(v);
  switch (typeof v) {
    case 'string':
      return kind === 'bytea' ? byteaText(v) : v;
    case 'number':
    case 'bigint':
      return String(v);
    case 'boolean':
      return v ? 'true' : 'false';
    case 'object':
      if (Array.isArray(v) && kind === 'array') return arrayLiteral(v);
      return JSON.stringify(v);
    default:
      return null;
  }
}

const COPY_SPECIAL = /[\\\n\r\t]/;

/** One field of COPY's text format: `\N` for NULL, backslash escapes for \ and control characters. */
export function copyField(text: string | null): string {
  if (text === null) return '\\N';
  if (!COPY_SPECIAL.test(text)) return text;
  return text.replace(/[\\\n\r\t]/g, (c) => (c === '\\' ? '\\\\' : c === '\n' ? '\\n' : c === '\r' ? '\\r' : '\\t'));
}

/**
 * A column type for a JSON value (create_table, on_new_fields: add_columns): integers bigint
 * (numeric past int8), other numbers double precision, booleans boolean, strings text, objects
 * and arrays jsonb. The `after` image of a CDC event carries no types, so the same rule applies;
 * `types` in the config name a column's type explicitly.
 */
export function inferType(v: unknown): string {
  switch (typeof v) {
    case 'number':
      return Number.isInteger(v) ? 'bigint' : 'double precision';
    case 'bigint':
      return 'numeric';
    case 'boolean':
      return 'boolean';
    case 'object':
      return 'jsonb';
    default:
      return 'text';
  }
}
