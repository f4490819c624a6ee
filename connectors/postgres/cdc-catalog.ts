/**
 * What the CDC source asks and changes on the server through an ordinary connection: checks
 * (wal_level, REPLICATION, replica identity), the publication, slot facts, type facts and primary
 * keys, and dropping the slot and publication. Identifiers and literals are always quoted with
 * pg's escapeIdentifier / escapeLiteral or passed as parameters.
 */
import pg from 'pg';
import { SESSION_SETTINGS, type TypeFacts } from './pgoutput-values.js';
import type { RelationMessage } from './pgoutput.js';
import {
  CdcConnectionError,
  NoReplicaIdentityError,
  ReplicationPrivilegeError,
  UnknownTableError,
  WalLevelError,
} from './cdc-errors.js';

/** `-c name=value` options of the startup packet: every connection decodes values the same way. */
export function sessionOptions(): string {
  return Object.entries(SESSION_SETTINGS)
    .map(([k, v]) => `-c ${k}=${v.replace(/([\\ ])/g, '\\$1')}`)
    .join(' ');
}

/** Every value as Postgres's text, untouched: pgoutput-values.ts converts it like a streamed one. */
const TEXT_TYPES = { getTypeParser: () => (v: string) => v } as unknown as pg.CustomTypesConfig;

/** A plain (non-replication) client whose values stay text. */
export async function connectQueryClient(url: string, onError: (err: Error) => void): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, options: sessionOptions(), types: TEXT_TYPES, connectionTimeoutMillis: 10_000 });
  client.on('error', onError);
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => undefined);
    throw connectionError(err, url);
  }
  return client;
}

/** A connection failure as a typed, retriable error (the URL's password never appears). */
export function connectionError(err: unknown, url: string): Error {
  if (typeof (err as { code?: unknown })?.code === 'string' && /^[0-9A-Z]{5}$/.test((err as { code: string }).code)) {
    const e = err as pg.DatabaseError;
    if (e.code === '42501' || /must be superuser or replication role/.test(e.message)) return new ReplicationPrivilegeError(userOf(url), { cause: err });
    if (e.code === '3D000' || e.code === '28P01' || e.code === '28000') {
      return Object.assign(new CdcConnectionError(`cannot connect to ${redact(url)}: ${e.message}`, { cause: err }), { retriable: false });
    }
  }
  return new CdcConnectionError(`cannot connect to ${redact(url)}: ${(err as Error)?.message ?? String(err)}`, { cause: err });
}

export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return '(connection url)';
  }
}

function userOf(url: string): string {
  try {
    return decodeURIComponent(new URL(url).username) || process.env.PGUSER || 'unknown';
  } catch {
    return 'unknown';
  }
}

export interface TableRef {
  schema: string;
  table: string;
}

const qualified = (client: pg.Client, t: TableRef): string => `${client.escapeIdentifier(t.schema)}.${client.escapeIdentifier(t.table)}`;
export const tableLabel = (t: TableRef): string => `${t.schema}.${t.table}`;

/** wal_level = logical and a role allowed to replicate, or a typed error. */
export async function checkServer(client: pg.Client): Promise<void> {
  const wal = (await client.query<{ wal_level: string }>('SHOW wal_level')).rows[0]!.wal_level;
  if (wal !== 'logical') throw new WalLevelError(wal);
  const role = (
    await client.query<{ name: string; ok: boolean }>(
      'SELECT current_user AS name, (rolreplication OR rolsuper) AS ok FROM pg_roles WHERE rolname = current_user',
    )
  ).rows[0];
  // Text types: booleans come back as 't' / 'f'.
  if (role !== undefined && String(role.ok) !== 't' && role.ok !== true) throw new ReplicationPrivilegeError(role.name);
}

/** The listed tables must exist. */
export async function checkTablesExist(client: pg.Client, tables: readonly TableRef[]): Promise<void> {
  const missing: string[] = [];
  for (const t of tables) {
    const r = await client.query('SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ($3, $4)', [t.schema, t.table, 'r', 'p']);
    if (r.rowCount === 0) missing.push(tableLabel(t));
  }
  if (missing.length > 0) throw new UnknownTableError(missing);
}

/**
 * Creates the publication when missing (for the listed tables, or FOR ALL TABLES); an existing
 * publication gets the listed tables it lacks added. Returns whether it was created.
 */
export async function ensurePublication(client: pg.Client, name: string, tables: readonly TableRef[] | null): Promise<boolean> {
  const found = await client.query<{ puballtables: string }>('SELECT puballtables FROM pg_publication WHERE pubname = $1', [name]);
  if (found.rowCount === 0) {
    const target = tables === null ? 'FOR ALL TABLES' : `FOR TABLE ${tables.map((t) => qualified(client, t)).join(', ')}`;
    await client.query(`CREATE PUBLICATION ${client.escapeIdentifier(name)} ${target}`);
    return true;
  }
  if (tables !== null && found.rows[0]!.puballtables !== 't') {
    const have = await client.query<{ schemaname: string; tablename: string }>('SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = $1', [name]);
    const missing = tables.filter((t) => !have.rows.some((h) => h.schemaname === t.schema && h.tablename === t.table));
    if (missing.length > 0) {
      await client.query(`ALTER PUBLICATION ${client.escapeIdentifier(name)} ADD TABLE ${missing.map((t) => qualified(client, t)).join(', ')}`);
    }
  }
  return false;
}

/** The publication's tables, in a stable order. */
export async function publicationTables(client: pg.Client, publication: string): Promise<TableRef[]> {
  const r = await client.query<{ schemaname: string; tablename: string }>(
    'SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = $1 ORDER BY schemaname, tablename',
    [publication],
  );
  return r.rows.map((x) => ({ schema: x.schemaname, table: x.tablename }));
}

/**
 * Tables whose updates or deletes the publication carries but that have neither a primary key nor
 * a usable replica identity: Postgres refuses those updates, and nothing could identify the row.
 */
export async function checkReplicaIdentity(client: pg.Client, publication: string): Promise<void> {
  const r = await client.query<{ schemaname: string; tablename: string }>(
    `SELECT pt.schemaname, pt.tablename
       FROM pg_publication_tables pt
       JOIN pg_publication p ON p.pubname = pt.pubname
       JOIN pg_namespace n ON n.nspname = pt.schemaname
       JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = pt.tablename
      WHERE pt.pubname = $1 AND (p.pubupdate OR p.pubdelete)
        AND (c.relreplident = 'n'
             OR (c.relreplident = 'd' AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary))
             OR (c.relreplident = 'i' AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisreplident)))
      ORDER BY 1, 2`,
    [publication],
  );
  if (r.rows.length > 0) throw new NoReplicaIdentityError(r.rows.map((x) => `${x.schemaname}.${x.tablename}`));
}

export interface SlotFacts {
  plugin: string;
  database: string;
  active: boolean;
  activePid: number | null;
  confirmedFlushLsn: string | null;
}

export async function slotFacts(client: pg.Client, slot: string): Promise<SlotFacts | null> {
  const r = await client.query<{ plugin: string; database: string; active: string; active_pid: string | null; confirmed_flush_lsn: string | null }>(
    'SELECT plugin, database, active::text AS active, active_pid, confirmed_flush_lsn::text AS confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = $1',
    [slot],
  );
  const row = r.rows[0];
  if (row === undefined) return null;
  return {
    plugin: row.plugin,
    database: row.database,
    active: row.active === 'true' || row.active === 't',
    activePid: row.active_pid === null ? null : Number(row.active_pid),
    confirmedFlushLsn: row.confirmed_flush_lsn,
  };
}

export async function dropSlot(client: pg.Client, slot: string): Promise<boolean> {
  const r = await client.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1', [slot]);
  return (r.rowCount ?? 0) > 0;
}

export async function dropPublication(client: pg.Client, publication: string): Promise<boolean> {
  const found = await client.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [publication]);
  if (found.rowCount === 0) return false;
  await client.query(`DROP PUBLICATION ${client.escapeIdentifier(publication)}`);
  return true;
}

/** Facts about non-built-in types, following domains and array elements. */
export async function loadTypeFacts(client: pg.Client, oids: readonly number[], into: Map<number, TypeFacts>): Promise<void> {
  let todo = [...new Set(oids)].filter((o) => !into.has(o));
  for (let round = 0; todo.length > 0 && round < 8; round++) {
    const r = await client.query<{ oid: string; typtype: string; typcategory: string; typelem: string; typbasetype: string; typdelim: string }>(
      'SELECT oid, typtype, typcategory, typelem, typbasetype, typdelim FROM pg_type WHERE oid = ANY($1::oid[])',
      [todo],
    );
    const next: number[] = [];
    for (const row of r.rows) {
      const f: TypeFacts = { oid: Number(row.oid), type: row.typtype, category: row.typcategory, elem: Number(row.typelem), base: Number(row.typbasetype), delim: row.typdelim };
      into.set(f.oid, f);
      for (const o of [f.elem, f.base]) if (o !== 0 && !into.has(o)) next.push(o);
    }
    // OIDs the server does not know (dropped types) are remembered as plain text.
    for (const o of todo) if (!into.has(o)) into.set(o, { oid: o, type: 'b', category: 'S', elem: 0, base: 0, delim: ',' });
    todo = [...new Set(next)];
  }
}

/** The primary key's column names of a relation, in key order (empty: none). */
export async function primaryKey(client: pg.Client, relationOid: number): Promise<string[]> {
  const r = await client.query<{ attname: string }>(
    `SELECT a.attname FROM pg_index i
       JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey::int2[])
      WHERE i.indrelid = $1 AND i.indisprimary
      ORDER BY array_position(i.indkey::int2[], a.attnum)`,
    [relationOid],
  );
  return r.rows.map((x) => x.attname);
}

/**
 * A table's published columns as a Relation message would list them (for the snapshot), and
 * whether it is a partitioned table (read with its partitions, not ONLY).
 */
export async function tableRelation(client: pg.Client, t: TableRef): Promise<RelationMessage & { partitioned: boolean }> {
  const rel = await client.query<{ oid: string; relreplident: string; relkind: string }>(
    'SELECT c.oid, c.relreplident, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2',
    [t.schema, t.table],
  );
  const row = rel.rows[0];
  if (row === undefined) throw new UnknownTableError([tableLabel(t)]);
  const cols = await client.query<{ attname: string; atttypid: string; atttypmod: string }>(
    "SELECT attname, atttypid, atttypmod FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped AND attgenerated = '' ORDER BY attnum",
    [row.oid],
  );
  return {
    oid: Number(row.oid),
    schema: t.schema,
    table: t.table,
    replicaIdentity: row.relreplident,
    partitioned: row.relkind === 'p',
    columns: cols.rows.map((c) => ({ key: false, name: c.attname, typeOid: Number(c.atttypid), typmod: Number(c.atttypmod) })),
  };
}

export { qualified as qualifiedName };
