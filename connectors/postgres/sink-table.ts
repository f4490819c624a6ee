/**
 * What the `postgres` sink knows of a target table: its columns with their types and its primary
 * key, read from the catalog by name (names are bound as parameters, never spliced into SQL);
 * and the DDL it runs when `create_table` or `on_new_fields: add_columns` asks for it.
 */
import type pg from 'pg';
import { columnKind, inferType, qualified, quoteIdent, type ColumnType } from './sink-sql.js';

export interface TableInfo {
  schema: string;
  table: string;
  /** `"schema"."table"`. */
  sql: string;
  columns: Map<string, ColumnType>;
  primaryKey: string[];
}

const COLUMNS_SQL = `
SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS sql_type, t.typname, t.typcategory,
       coalesce(a.attnum = ANY (i.indkey), false) AS pk
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
  JOIN pg_type t ON t.oid = a.atttypid
  LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
 WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')
 ORDER BY a.attnum`;

/** The table's columns and primary key, or null when there is no such table. */
export async function loadTable(client: pg.Client, schema: string, table: string): Promise<TableInfo | null> {
  const res = await client.query<{ name: string; sql_type: string; typname: string; typcategory: string; pk: boolean }>(COLUMNS_SQL, [schema, table]);
  if (res.rows.length === 0) return null;
  const columns = new Map<string, ColumnType>();
  const primaryKey: string[] = [];
  for (const r of res.rows) {
    columns.set(r.name, { sqlType: r.sql_type, kind: columnKind(r.typname, r.typcategory) });
    if (r.pk) primaryKey.push(r.name);
  }
  return { schema, table, sql: qualified(schema, table), columns, primaryKey };
}

/** Column name → SQL type for the fields of these rows: explicit types first, else from the first non-null value. */
export function columnTypesFor(rows: readonly Record<string, unknown>[], explicit: Readonly<Record<string, string>>, only?: ReadonlySet<string>): Map<string, string> {
  const types = new Map<string, string>();
  for (const row of rows) {
    for (const k of Object.keys(row)) {
      if (types.has(k) || (only !== undefined && !only.has(k))) continue;
      const v = row[k];
      if (explicit[k] !== undefined) types.set(k, explicit[k]);
      else if (v !== null && v !== undefined && !isUnchangedMarker(v)) types.set(k, inferType(v));
    }
  }
  return types;
}

function isUnchangedMarker(v: unknown): boolean {
  return typeof v === 'object' && v !== null && (v as Record<string, unknown>).__sluice_unchanged_toast === true;
}

export async function createTable(client: pg.Client, schema: string, table: string, types: Map<string, string>, primaryKey: readonly string[]): Promise<void> {
  const cols = [...types].map(([name, type]) => `${quoteIdent(name)} ${type}${primaryKey.includes(name) ? ' NOT NULL' : ''}`);
  for (const k of primaryKey) if (!types.has(k)) cols.push(`${quoteIdent(k)} text NOT NULL`);
  if (primaryKey.length > 0) cols.push(`PRIMARY KEY (${primaryKey.map(quoteIdent).join(', ')})`);
  await ignoreRace(client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`));
  await ignoreRace(client.query(`CREATE TABLE IF NOT EXISTS ${qualified(schema, table)} (${cols.join(', ')})`));
}

export async function addColumns(client: pg.Client, info: TableInfo, types: Map<string, string>): Promise<void> {
  if (types.size === 0) return;
  const adds = [...types].map(([name, type]) => `ADD COLUMN IF NOT EXISTS ${quoteIdent(name)} ${type}`);
  await ignoreRace(client.query(`ALTER TABLE ${info.sql} ${adds.join(', ')}`));
}

/**
 * Two workers creating the same table or schema at once: the loser sees a unique violation on the
 * catalog (23505) or "already exists" (42P07, 42P06, 42701) — the object is there, which is what
 * was wanted.
 */
async function ignoreRace(q: Promise<unknown>): Promise<void> {
  try {
    await q;
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === '23505' || code === '42P07' || code === '42P06' || code === '42701') return;
    throw err;
  }
}
