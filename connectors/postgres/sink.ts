/**
 * `postgres` sink: writes records to Postgres tables, exactly-once.
 *
 * Modes:
 *  - `append`: COPY, a record's top-level fields to the columns of the same name;
 *  - `upsert`: COPY into a temporary staging table, then INSERT … ON CONFLICT (key_columns) DO UPDATE;
 *  - `apply`: replays CDC events {op, before, after, source} — c/r upsert the `after` row, u
 *    updates by primary key (columns holding UNCHANGED_TOAST keep their value), d deletes, t truncates.
 *
 * Delivery `transactional`: every batch's rows and the row (pipeline, sink, topic, partition,
 * next_offset, fence) of the offsets table are written in one transaction. On start the stored
 * next_offset is where the partition resumes; a batch whose fence is older than the stored one is
 * refused (SinkFencedError), and records below the stored next_offset are never written twice.
 */
import { from as copyFrom } from 'pg-copy-streams';
import pg from 'pg';
import { SinkFencedError, compileTemplate } from '../sdk.js';
import type { ConnectorContext, PipelineEvent, Sink, SinkBatch, SinkDeclaration, SinkRecord, SinkValuesBatch, SpanBatch } from '../sdk.js';
import { ValueRecord, below, bytesOf, firstValue, inputOf, recordsOf, rowsOf, type AppendInput } from './sink-input.js';
import { PgSinkError, classifyPgError, redactUrl } from './sink-errors.js';
// The source writes the marker; one definition for both sides.
import { UNCHANGED_TOAST_FIELD } from './pgoutput-json.js';
import { copyPlan, jsonRowToCopy } from './sink-copy.js';
import { copyField, qualified, quoteIdent, valueText, type ColumnType } from './sink-sql.js';
import { addColumns, columnTypesFor, createTable, loadTable, type TableInfo } from './sink-table.js';
import { DEFAULTS, defaultBatchLimits, postgresSinkSchema, type PostgresSinkConfig } from './sink-config.js';
import {
  badRecord,
  badRecordFor,
  cdcEvent,
  groupBySignature,
  isRow,
  lastPerKey,
  signature,
  type CdcEvent,
  type Row,
  type Step,
} from './sink-rows.js';

export type { OnNewFields, PostgresSinkConfig, PostgresSinkMode } from './sink-config.js';

/** Bytes of COPY data sent at a time: the server loads one chunk while the next is encoded. */
const COPY_CHUNK = 64 * 1024;
const COPY_SLAB = 1024 * 1024;

/** A partition's offsets row as this sink last read or wrote it. */
interface Stored {
  next: number;
  fence: number;
}

/**
 * The value the postgres_cdc source puts in a column of `after` whose TOASTed value did not
 * change (the server does not send it): `{"__sluice_unchanged_toast": true}`. The `apply` mode
 * leaves such a column as it is; it is never written as a value.
 */
export { UNCHANGED_TOAST_FIELD };
export const UNCHANGED_TOAST: Readonly<{ __sluice_unchanged_toast: true }> = Object.freeze({ __sluice_unchanged_toast: true });

export function isUnchangedToast(v: unknown): boolean {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && (v as Record<string, unknown>)[UNCHANGED_TOAST_FIELD] === true;
}



class PostgresSink implements Sink {
  private client: pg.Client | null = null;
  private readonly c: Required<Omit<PostgresSinkConfig, 'key_columns' | 'column_types' | 'create_table'>> & PostgresSinkConfig;
  private readonly tables = new Map<string, TableInfo>();
  private readonly stages = new Map<string, string>();
  private stageSeq = 0;
  /** Per topic/partition: the offsets row as this sink last read or wrote it (null: no row yet). */
  private readonly stored = new Map<string, Stored | null>();
  private readonly tableOf: ((e: PipelineEvent) => string) | null;
  private readonly schemaOf: ((e: PipelineEvent) => string) | null;
  private readonly offsets: string;
  private readonly sinkName: string;
  private readonly where: string;

  constructor(
    config: PostgresSinkConfig,
    private readonly ctx: ConnectorContext,
  ) {
    const mode = config.mode ?? DEFAULTS.mode;
    this.c = { ...DEFAULTS, ...defaultBatchLimits(mode), ...config };
    if (this.c.mode === 'upsert' && (config.key_columns === undefined || config.key_columns.length === 0)) {
      throw new PgSinkError('SLUICE_PG_CONFIG', 'mode upsert needs key_columns');
    }
    // Constant names skip the per-record render.
    this.tableOf = this.c.table.includes('{{') ? compileTemplate(this.c.table) : null;
    this.schemaOf = this.c.schema.includes('{{') ? compileTemplate(this.c.schema) : null;
    this.offsets = qualified(this.c.offsets_schema, this.c.offsets_table);
    this.sinkName = ctx.sink ?? 'postgres';
    this.where = redactUrl(this.c.url);
    // append into a constant table needs nothing of a record but its value's bytes.
    if (this.streams()) this.writeValues = (batch) => this.values(batch);
  }

  /** Set in append mode into a constant table only (see the constructor). */
  readonly writeValues?: (batch: SinkValuesBatch) => Promise<void>;

  private async values(batch: SinkValuesBatch): Promise<void> {
    const rows = batch.nextOffset - batch.firstOffset;
    // Transactions above the limits are split the way write splits them.
    if (rows > this.c.batch_max_rows || batch.bytes > this.c.batch_max_bytes) {
      return this.write({ topic: batch.topic, partition: batch.partition, records: recordsOf(batch), nextOffset: batch.nextOffset, fence: batch.fence ?? 0 });
    }
    return this.transaction(batch.topic, batch.partition, batch, batch.nextOffset, batch.fence ?? 0);
  }

  async open(): Promise<void> {
    const client = await this.conn();
    try {
      const exists = await client.query('SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2', [
        this.c.offsets_schema,
        this.c.offsets_table,
      ]);
      if (exists.rows.length > 0) return;
      await createTable(
        client,
        this.c.offsets_schema,
        this.c.offsets_table,
        new Map([
          ['pipeline', 'text'],
          ['sink', 'text'],
          ['topic', 'text'],
          ['partition', 'integer'],
          ['next_offset', 'bigint NOT NULL'],
          ['fence', 'bigint NOT NULL DEFAULT 0'],
          ['updated_at', 'timestamptz NOT NULL DEFAULT now()'],
        ]),
        ['pipeline', 'sink', 'topic', 'partition'],
      );
    } catch (err) {
      throw this.failed(err, `creating the offsets table ${this.offsets}`);
    }
  }

  async committedOffset(topic: string, partition: number): Promise<number | undefined> {
    const client = await this.conn();
    try {
      const state = await this.readStored(client, topic, partition);
      this.stored.set(`${topic}\u0000${partition}`, state);
      return state?.next;
    } catch (err) {
      throw this.failed(err, 'reading the stored offsets');
    }
  }

  async write(batch: SinkBatch): Promise<void> {
    const fence = batch.fence ?? 0;
    const { records } = batch;
    if (records.length === 0) return this.transaction(batch.topic, batch.partition, [], batch.nextOffset, fence);
    // Transactions of at most batch_max_rows / batch_max_bytes; each commits its own next offset.
    let start = 0;
    let bytes = 0;
    for (let i = 0; i < records.length; i++) {
      bytes += records[i]!.raw.length;
      const last = i === records.length - 1;
      if (last || i + 1 - start >= this.c.batch_max_rows || bytes >= this.c.batch_max_bytes) {
        const next = last ? batch.nextOffset : records[i]!.offset + 1;
        await this.transaction(batch.topic, batch.partition, records.slice(start, i + 1), next, fence);
        start = i + 1;
        bytes = 0;
      }
    }
  }

  /**
   * append into a constant table streams every batch into one COPY, so a backlog loads as one
   * transaction of up to batch_max_rows / batch_max_bytes (PostgreSQL loads rows of a long COPY
   * statement with less CPU each than those of many short ones); other modes write `first` alone.
   */
  async writeSpan(first: SpanBatch, more: () => Promise<SpanBatch | null>): Promise<void> {
    const input = inputOf(first);
    let rows = rowsOf(input);
    let bytes = bytesOf(input);
    // A first batch at or over the limits is split as write splits it, and the span ends with it.
    if (!this.streams() || rows === 0 || rows >= this.c.batch_max_rows || bytes >= this.c.batch_max_bytes) {
      return 'records' in first ? this.write(first) : this.values(first);
    }
    const next = async (): Promise<SpanBatch | null> => {
      if (rows >= this.c.batch_max_rows || bytes >= this.c.batch_max_bytes) return null;
      const b = await more();
      if (b === null) return null;
      rows += rowsOf(inputOf(b));
      bytes += bytesOf(inputOf(b));
      return b;
    };
    await this.transaction(first.topic, first.partition, input, first.nextOffset, first.fence ?? 0, next);
  }

  async close(): Promise<void> {
    const c = this.client;
    this.client = null;
    if (c !== null) await c.end().catch(() => undefined);
  }

  // ---- connection and errors ----

  private async conn(): Promise<pg.Client> {
    if (this.client !== null) return this.client;
    const client = new pg.Client({
      connectionString: this.c.url,
      connectionTimeoutMillis: this.c.connect_timeout_ms,
      application_name: `sluice ${this.ctx.pipeline}/${this.sinkName}`.slice(0, 63),
    });
    // A connection lost between writes: the next write connects again.
    client.on('error', (err) => {
      if (this.client === client) this.client = null;
      this.ctx.log('warn', `connection to ${this.where} lost: ${err.message}`);
    });
    try {
      await client.connect();
    } catch (err) {
      await client.end().catch(() => undefined);
      const e = classifyPgError(err, `connecting to ${this.where}`);
      // A refused login or a missing database is still worth retrying: it may be fixed meanwhile.
      throw new PgSinkError('SLUICE_PG_CONNECTION', e.message, { cause: err, retriable: true, sqlState: e.sqlState });
    }
    this.client = client;
    this.tables.clear();
    this.stages.clear();
    this.stored.clear();
    return client;
  }

  /** Classifies an error; a retriable one also drops the connection (its state is unknown). */
  private failed(err: unknown, what: string): Error {
    if (err instanceof SinkFencedError) return err;
    const e = classifyPgError(err, what);
    if (e.retriable) {
      const c = this.client;
      this.client = null;
      c?.end().catch(() => undefined);
    }
    return e;
  }

  // ---- the transaction ----

  /**
   * One transaction: the records' rows and the partition's offsets row. The stored (next_offset,
   * fence) is read once and then known (this sink is the partition's only writer while its lease
   * holds); the transaction's first statement moves the row on only if it is still what was read,
   * so a write by anyone else in between (another worker, after a lost lease) rolls the whole
   * transaction back — then the row is read again, and the batch is refused (newer fence) or
   * trimmed to what is not stored yet.
   */
  private async transaction(
    topic: string,
    partition: number,
    /** Values only in append mode into a constant table (streamed). */
    input: AppendInput,
    nextOffset: number,
    fence: number,
    /** append streamed: batches that follow `input`, in the same COPY and transaction. */
    more?: () => Promise<SpanBatch | null>,
  ): Promise<void> {
    const key = `${topic}\u0000${partition}`;
    for (let attempt = 1; ; attempt++) {
      const client = await this.conn();
      let open = false;
      try {
        let state = this.stored.get(key);
        if (state === undefined) this.stored.set(key, (state = await this.readStored(client, topic, partition)));
        if (state !== null && state.fence > fence) throw new SinkFencedError(topic, partition, fence, state.fence);
        // Records the stored offset already covers were written by an earlier transaction.
        const from = state === null ? -1 : state.next;
        if (from >= nextOffset) return;
        const todo = below(input, from);
        // BEGIN and the offsets row's move go in one round trip, ahead of the rows: the row is
        // locked from here to COMMIT, and a row moved by someone else stops the batch before any
        // row is written. Literals, not parameters: a multi-statement query is a simple query.
        open = true;
        const lit = (v: string | number): string => (typeof v === 'number' ? String(v) : client.escapeLiteral(v));
        const ids = `${lit(this.ctx.pipeline)}, ${lit(this.sinkName)}, ${lit(topic)}, ${lit(partition)}`;
        const [, moved] = (await client.query(
          state === null
            ? `BEGIN; INSERT INTO ${this.offsets} (pipeline, sink, topic, partition, next_offset, fence) VALUES (${ids}, ${lit(nextOffset)}, ${lit(fence)})
                 ON CONFLICT (pipeline, sink, topic, partition) DO NOTHING`
            : `BEGIN; UPDATE ${this.offsets} SET next_offset = ${lit(nextOffset)}, fence = ${lit(fence)}, updated_at = now()
                 WHERE (pipeline, sink, topic, partition) = (${ids}) AND next_offset = ${lit(state.next)} AND fence = ${lit(state.fence)}`,
        )) as unknown as pg.QueryResult[];
        if (moved!.rowCount !== 1) {
          // Someone else wrote the partition since it was read: undo, read again, decide again.
          await client.query('ROLLBACK');
          open = false;
          this.stored.delete(key);
          if (attempt >= 3) throw new PgSinkError('SLUICE_PG_CONNECTION', `${topic}/${partition}: the offsets row keeps changing under this sink`, { retriable: true });
          continue;
        }
        let next = nextOffset;
        const following =
          more === undefined
            ? undefined
            : async (): Promise<AppendInput | null> => {
                const b = await more();
                if (b === null) return null;
                next = b.nextOffset;
                return inputOf(b);
              };
        const rest = this.streams() ? await this.streamAppend(client, todo, following) : recordsOf(todo);
        for (const step of await this.plan(client, rest)) await this.run(client, step);
        // The row is locked since BEGIN: moving it on to the span's end cannot miss.
        await client.query(
          next === nextOffset ? 'COMMIT' : `UPDATE ${this.offsets} SET next_offset = ${lit(next)}, updated_at = now() WHERE (pipeline, sink, topic, partition) = (${ids}); COMMIT`,
        );
        open = false;
        this.stored.set(key, { next, fence });
        return;
      } catch (err) {
        if (open) await client.query('ROLLBACK').catch(() => undefined);
        // The outcome of a failed COMMIT is unknown: read the offsets row again next time.
        this.stored.delete(key);
        // DDL and staging tables of a rolled-back transaction are gone: read the catalog again.
        this.tables.clear();
        this.stages.clear();
        throw this.failed(err, `writing ${topic}/${partition} to ${this.where}`);
      }
    }
  }

  private async readStored(client: pg.Client, topic: string, partition: number): Promise<Stored | null> {
    const res = await client.query<{ next_offset: string; fence: string }>({
      name: 'sluice_offsets_read',
      text: `SELECT next_offset, fence FROM ${this.offsets} WHERE pipeline = $1 AND sink = $2 AND topic = $3 AND partition = $4`,
      values: [this.ctx.pipeline, this.sinkName, topic, partition],
    });
    const row = res.rows[0];
    return row === undefined ? null : { next: Number(row.next_offset), fence: Number(row.fence) };
  }

  // ---- planning: records → steps ----

  private tableKey(r: SinkRecord): [string, string] {
    if (this.tableOf === null && this.schemaOf === null) return [this.c.schema, this.c.table];
    const e: PipelineEvent = { value: r.value, key: r.key, headers: r.headers as Record<string, string>, timestamp: r.timestamp, topic: r.topic };
    const table = this.tableOf === null ? this.c.table : this.tableOf(e);
    const schema = this.schemaOf === null ? this.c.schema : this.schemaOf(e);
    if (table === '') throw badRecord(r, `the table template "${this.c.table}" renders empty`);
    if (schema === '') throw badRecord(r, `the schema template "${this.c.schema}" renders empty`);
    return [schema, table];
  }

  /** Records grouped by target table, in offset order within each. */
  private byTable(records: SinkRecord[]): Map<string, { schema: string; table: string; records: SinkRecord[] }> {
    const out = new Map<string, { schema: string; table: string; records: SinkRecord[] }>();
    for (const r of records) {
      const [schema, table] = this.tableKey(r);
      const k = `${schema}\u0000${table}`;
      let g = out.get(k);
      if (g === undefined) out.set(k, (g = { schema, table, records: [] }));
      g.records.push(r);
    }
    return out;
  }

  private async plan(client: pg.Client, records: SinkRecord[]): Promise<Step[]> {
    const steps: Step[] = [];
    for (const g of this.byTable(records).values()) {
      if (this.c.mode === 'apply') await this.planApply(client, g.schema, g.table, g.records, steps);
      else await this.planRows(client, g.schema, g.table, g.records, steps);
    }
    return steps;
  }

  private keyColumns(info: TableInfo): string[] {
    const keys = this.c.key_columns ?? info.primaryKey;
    if (keys.length === 0) {
      throw new PgSinkError('SLUICE_PG_CONFIG', `table ${info.sql} has no primary key: set key_columns for mode ${this.c.mode}`);
    }
    for (const k of keys) if (!info.columns.has(k)) throw new PgSinkError('SLUICE_PG_CONFIG', `key column ${quoteIdent(k)} is not a column of ${info.sql}`);
    return keys;
  }

  /** append / upsert: each record's value is a row. */
  private async planRows(client: pg.Client, schema: string, table: string, records: SinkRecord[], steps: Step[]): Promise<void> {
    let rows: Row[] = [];
    for (const r of records) {
      const v = r.value;
      if (!isRow(v)) throw badRecord(r, `the value is not a JSON object (mode ${this.c.mode} writes its fields as columns)`);
      rows.push(v);
    }
    const info = await this.table(client, schema, table, rows);
    if (this.c.mode === 'upsert') {
      const keys = this.keyColumns(info);
      rows = lastPerKey(rows, keys, (row) => badRecordFor(records, rows, row, keys));
      for (const [columns, group] of await this.fit(client, info, rows)) steps.push({ kind: 'upsert', table: info, columns, rows: group, keys });
    } else {
      for (const [columns, group] of await this.fit(client, info, rows)) steps.push({ kind: 'insert', table: info, columns, rows: group });
    }
  }

  /** apply: CDC events, in order; consecutive upserts and consecutive deletes are batched. */
  private async planApply(client: pg.Client, schema: string, table: string, records: SinkRecord[], steps: Step[]): Promise<void> {
    const events: CdcEvent[] = records.map((r) => cdcEvent(r));
    const images = events.flatMap((e) => (e.after !== null ? [e.after] : []));
    let info = await this.table(client, schema, table, images);
    const keys = this.keyColumns(info);
    // New fields of any `after` image are handled once for the whole batch.
    if (images.length > 0) {
      await this.fit(client, info, images);
      info = this.tables.get(`${schema}\u0000${table}`)!;
    }
    const known = info.columns;
    const clean = (row: Row): Row => {
      let out: Row | null = null;
      for (const k of Object.keys(row)) {
        if (known.has(k)) continue;
        out ??= { ...row };
        delete out[k];
      }
      return out ?? row;
    };
    // Runs of one kind, flushed as one step when the kind changes: order between runs is kept.
    let upserts: Row[] = [];
    let deletes: Row[] = [];
    /** Updates that leave unchanged-TOAST columns alone, all with the same columns, each key once. */
    let partial: { sig: string; keys: Set<string>; rows: Row[] } | null = null;
    const flush = async (): Promise<void> => {
      if (upserts.length > 0) {
        const rows = lastPerKey(upserts, keys, () => new PgSinkError('SLUICE_PG_BAD_RECORD', `an event of ${info.sql} has a null key column`));
        for (const [columns, group] of groupBySignature(rows)) steps.push({ kind: 'upsert', table: info, columns, rows: group, keys });
        upserts = [];
      }
      if (deletes.length > 0) {
        steps.push({ kind: 'delete', table: info, keys, rows: deletes });
        deletes = [];
      }
      if (partial !== null) {
        steps.push({ kind: 'updateMany', table: info, columns: Object.keys(partial.rows[0]!), keys, rows: partial.rows });
        partial = null;
      }
    };
    for (let i = 0; i < events.length; i++) {
      const e = events[i]!;
      const r = records[i]!;
      if (e.op === 't') {
        await flush();
        steps.push({ kind: 'truncate', table: info });
        continue;
      }
      if (e.op === 'd') {
        const where = e.before ?? e.after;
        if (where === null || keys.some((k) => where[k] === null || where[k] === undefined)) throw badRecord(r, `delete without the key columns ${keys.join(', ')} in "before"`);
        if (upserts.length > 0 || partial !== null) await flush();
        deletes.push(where);
        continue;
      }
      const after = e.after;
      if (after === null) throw badRecord(r, `op "${e.op}" without "after"`);
      if (keys.some((k) => after[k] === null || after[k] === undefined)) throw badRecord(r, `"after" lacks the key columns ${keys.join(', ')}`);
      const row = clean(after);
      const toast = Object.keys(row).some((k) => isUnchangedToast(row[k]));
      const before = e.before;
      const keyMoved = e.op === 'u' && before !== null && keys.some((k) => before[k] !== undefined && JSON.stringify(before[k]) !== JSON.stringify(after[k]));
      if (!toast && !keyMoved) {
        if (deletes.length > 0 || partial !== null) await flush();
        upserts.push(row);
        continue;
      }
      const set: Row = {};
      for (const k of Object.keys(row)) if (!isUnchangedToast(row[k])) set[k] = row[k];
      if (!keyMoved) {
        // An update that keeps TOASTed columns: batched with its neighbours (staging table + UPDATE … FROM).
        const sig = signature(set);
        const key = JSON.stringify(keys.map((k) => set[k]));
        if (upserts.length > 0 || deletes.length > 0 || (partial !== null && (partial.sig !== sig || partial.keys.has(key)))) await flush();
        partial ??= { sig, keys: new Set(), rows: [] };
        partial.keys.add(key);
        partial.rows.push(set);
        continue;
      }
      // An update that moves the key: one UPDATE by the old key.
      await flush();
      steps.push({ kind: 'update', table: info, set, where: before!, keys, insertIfMissing: !toast });
    }
    await flush();
  }

  /**
   * The table's catalog entry; created from `rows` when missing and create_table is on
   * (types from column_types, else inferred; primary key from key_columns).
   */
  private async table(client: pg.Client, schema: string, table: string, rows: Row[]): Promise<TableInfo> {
    const k = `${schema}\u0000${table}`;
    const cached = this.tables.get(k);
    if (cached !== undefined) return cached;
    let info = await loadTable(client, schema, table);
    if (info === null && this.c.create_table === true) {
      const types = columnTypesFor(rows, this.c.column_types ?? {});
      const keys = this.c.key_columns ?? [];
      if (this.c.mode !== 'append' && keys.length === 0) {
        throw new PgSinkError('SLUICE_PG_CONFIG', `create_table in mode ${this.c.mode} needs key_columns for the primary key of ${qualified(schema, table)}`);
      }
      if (types.size === 0 && keys.length === 0) throw new PgSinkError('SLUICE_PG_NO_TABLE', `cannot create ${qualified(schema, table)}: the records have no non-null field`);
      await createTable(client, schema, table, types, keys);
      this.ctx.log('info', `created table ${qualified(schema, table)} (${[...types].map(([n, t]) => `${n} ${t}`).join(', ')})`);
      info = await loadTable(client, schema, table);
    }
    if (info === null) {
      throw new PgSinkError('SLUICE_PG_NO_TABLE', `table ${qualified(schema, table)} does not exist (create it, or set create_table: true)`);
    }
    this.tables.set(k, info);
    return info;
  }

  /**
   * Rows grouped by their set of fields, each group with the columns it writes; fields without a
   * column follow on_new_fields (add them, leave them out, or fail the records).
   */
  private async fit(client: pg.Client, info: TableInfo, rows: Row[]): Promise<[string[], Row[]][]> {
    const groups = groupBySignature(rows);
    const unknown = new Set<string>();
    for (const [fields] of groups) for (const f of fields) if (!info.columns.has(f)) unknown.add(f);
    if (unknown.size === 0) return groups;
    const names = [...unknown].map((f) => JSON.stringify(f)).join(', ');
    if (this.c.on_new_fields === 'fail') {
      throw new PgSinkError('SLUICE_PG_NEW_FIELDS', `${info.sql} has no column for the field(s) ${names} (on_new_fields: fail)`);
    }
    let current = info;
    if (this.c.on_new_fields === 'add_columns') {
      const types = columnTypesFor(rows, this.c.column_types ?? {}, unknown);
      if (types.size > 0) {
        await addColumns(client, info, types);
        this.ctx.log('info', `added to ${info.sql}: ${[...types].map(([n, t]) => `${quoteIdent(n)} ${t}`).join(', ')}`);
        current = (await loadTable(client, info.schema, info.table)) ?? info;
        this.tables.set(`${info.schema}\u0000${info.table}`, current);
        // Steps keep a reference to the table object: let them see the new columns.
        info.columns = current.columns;
      }
    }
    // Fields still without a column (ignored, or only nulls so far) are left out.
    return groups.map(([fields, group]) => [fields.filter((f) => current.columns.has(f)), group]);
  }

  // ---- running steps ----

  private columnTypes(info: TableInfo, columns: string[]): ColumnType[] {
    return columns.map((c) => info.columns.get(c)!);
  }

  private async copy(client: pg.Client, target: string, columns: string[], types: ColumnType[], rows: Row[]): Promise<void> {
    let text = '';
    const n = columns.length;
    for (const row of rows) {
      for (let i = 0; i < n; i++) {
        if (i > 0) text += '\t';
        text += copyField(valueText(row[columns[i]!], types[i]));
      }
      text += '\n';
    }
    const stream = client.query(copyFrom(`COPY ${target} (${columns.map(quoteIdent).join(', ')}) FROM STDIN`));
    await new Promise<void>((resolve, reject) => {
      stream.on('error', reject);
      stream.on('finish', resolve);
      stream.end(Buffer.from(text));
    });
  }

  /**
   * append into a constant table, streamed: records are parsed and encoded while the server
   * already loads the ones sent before (JS and Postgres work side by side, not one after the
   * other). The first record's fields are the COPY's columns; records with other fields, and all
   * records when the first one needs on_new_fields, are returned for the general path. Batches
   * from `following` go into the same COPY until it returns null or a batch had such records.
   */
  private streams(): boolean {
    return this.c.mode === 'append' && this.tableOf === null && this.schemaOf === null;
  }

  private async streamAppend(client: pg.Client, input: AppendInput, following: () => Promise<AppendInput | null> = async () => null): Promise<SinkRecord[]> {
    const first = firstValue(input);
    if (!isRow(first)) return recordsOf(input);
    const info = await this.table(client, this.c.schema, this.c.table, [first]);
    const columns = Object.keys(first);
    if (columns.length === 0 || columns.some((c) => !info.columns.has(c))) return recordsOf(input);
    const types = this.columnTypes(info, columns);
    const n = columns.length;
    const plan = copyPlan(columns, types);
    const rest: SinkRecord[] = [];
    const stream = client.query(copyFrom(`COPY ${info.sql} (${columns.map(quoteIdent).join(', ')}) FROM STDIN`));
    const done = new Promise<void>((resolve, reject) => {
      stream.on('error', reject);
      stream.on('finish', resolve);
    });
    let failed = false;
    done.catch(() => (failed = true));
    // Chunks are cut from 1 MiB slabs: a chunk sent is the socket's until it is written, so a slab
    // is never reused, but one allocation serves about 16 chunks.
    let out = Buffer.allocUnsafe(COPY_SLAB);
    let len = 0;
    const flush = async (): Promise<void> => {
      const full = out.subarray(0, len);
      out = out.length - len >= COPY_CHUNK * 2 ? out.subarray(len) : Buffer.allocUnsafe(COPY_SLAB);
      len = 0;
      if (!stream.write(full)) await Promise.race([new Promise<void>((resolve) => stream.once('drain', resolve)), done.catch(() => undefined)]);
    };
    const room = async (bytes: number): Promise<void> => {
      if (len + bytes <= out.length) return;
      if (len > 0) await flush();
      if (bytes > out.length) out = Buffer.allocUnsafe(Math.max(bytes, COPY_SLAB));
    };
    /** A record the byte path declined: same fields in the same order go in this COPY, encoded from the parsed value. */
    const general = async (r: SinkRecord): Promise<void> => {
      const row = r.value;
      let same = isRow(row);
      let k = 0;
      if (same) {
        for (const key in row as Row) {
          if (k >= n || key !== columns[k]) {
            same = false;
            break;
          }
          k++;
        }
      }
      if (!same || k !== n) {
        rest.push(r);
        return;
      }
      let text = '';
      for (let i = 0; i < n; i++) {
        if (i > 0) text += '\t';
        text += copyField(valueText((row as Row)[columns[i]!], types[i]));
      }
      text += '\n';
      await room(Buffer.byteLength(text));
      len += out.write(text, len);
    };
    try {
      for (let batch: AppendInput | null = input; batch !== null && !failed; batch = rest.length === 0 ? await following() : null) {
        if (Array.isArray(batch)) {
          for (const r of batch) {
            if (failed) break;
            const raw = r.raw;
            if (len + raw.length + 1 > out.length) await room(raw.length + 1);
            // The usual record: its JSON bytes become the COPY row directly.
            const end = jsonRowToCopy(raw, plan, out, len);
            if (end >= 0) len = end;
            else await general(r);
            if (len >= COPY_CHUNK) await flush();
          }
          continue;
        }
        // Values: the same, from the read buffers, with no object per record.
        let offset = batch.firstOffset;
        for (const { buf, starts, ends, count } of batch.spans) {
          for (let i = 0; i < count && !failed; i++, offset++) {
            const s = starts[i]!;
            const e = ends[i]!;
            if (len + e - s + 1 > out.length) await room(e - s + 1);
            const end = jsonRowToCopy(buf, plan, out, len, s, e);
            if (end >= 0) len = end;
            else await general(new ValueRecord(batch.topic, batch.partition, offset, buf.subarray(s, e)));
            if (len >= COPY_CHUNK) await flush();
          }
        }
      }
    } catch (err) {
      // A record that cannot be encoded, or a read of the next batch that failed: the COPY must end
      // before anything else can run on the connection (a ROLLBACK would queue behind it for ever).
      // destroy() sends CopyFail; the server's error settles `done`.
      stream.destroy(err as Error);
      await done.catch(() => undefined);
      throw err;
    }
    stream.end(out.subarray(0, len));
    await done;
    return rest;
  }

  /** A session-local staging table with these columns of the target, reused across batches. */
  private async stage(client: pg.Client, info: TableInfo, columns: string[]): Promise<string> {
    const k = `${info.sql}\u0000${columns.join('\u0001')}`;
    let name = this.stages.get(k);
    if (name !== undefined) return name;
    name = quoteIdent(`sluice_stage_${++this.stageSeq}`);
    const cols = columns.map((c) => `${quoteIdent(c)} ${info.columns.get(c)!.sqlType}`).join(', ');
    await client.query(`CREATE TEMP TABLE ${name} (${cols}) ON COMMIT DELETE ROWS`);
    this.stages.set(k, name);
    return name;
  }

  private async run(client: pg.Client, step: Step): Promise<void> {
    const { table } = step;
    switch (step.kind) {
      case 'insert':
        if (step.columns.length === 0) {
          await client.query(`INSERT INTO ${table.sql} SELECT FROM generate_series(1, $1)`, [step.rows.length]);
          return;
        }
        await this.copy(client, table.sql, step.columns, this.columnTypes(table, step.columns), step.rows);
        return;
      case 'upsert': {
        const { columns } = step;
        const stage = await this.stage(client, table, columns);
        await this.copy(client, stage, columns, this.columnTypes(table, columns), step.rows);
        const list = columns.map(quoteIdent).join(', ');
        const updates = columns.filter((c) => !step.keys.includes(c)).map((c) => `${quoteIdent(c)} = EXCLUDED.${quoteIdent(c)}`);
        await client.query(
          `INSERT INTO ${table.sql} (${list}) SELECT ${list} FROM ${stage} ON CONFLICT (${step.keys.map(quoteIdent).join(', ')}) DO ${
            updates.length === 0 ? 'NOTHING' : `UPDATE SET ${updates.join(', ')}`
          }`,
        );
        await client.query(`TRUNCATE ${stage}`);
        return;
      }
      case 'delete': {
        const types = this.columnTypes(table, step.keys);
        const params = step.keys.map((k, i) => step.rows.map((row) => valueText(row[k], types[i])));
        const sel = step.keys.map((_k, i) => `unnest($${i + 1}::text[])::${types[i]!.sqlType}`).join(', ');
        await client.query(`DELETE FROM ${table.sql} WHERE (${step.keys.map(quoteIdent).join(', ')}) IN (SELECT ${sel})`, params);
        return;
      }
      case 'update': {
        const setCols = Object.keys(step.set);
        if (setCols.length === 0) return;
        const values: (string | null)[] = [];
        const param = (v: unknown, c: string): string => {
          const t = table.columns.get(c)!;
          values.push(valueText(v, t));
          return `$${values.length}::${t.sqlType}`;
        };
        const set = setCols.map((c) => `${quoteIdent(c)} = ${param(step.set[c], c)}`).join(', ');
        const where = step.keys.map((k) => `${quoteIdent(k)} = ${param(step.where[k], k)}`).join(' AND ');
        const res = await client.query(`UPDATE ${table.sql} SET ${set} WHERE ${where}`, values);
        if (res.rowCount === 0 && step.insertIfMissing) {
          values.length = 0;
          const vals = setCols.map((c) => param(step.set[c], c)).join(', ');
          await client.query(`INSERT INTO ${table.sql} (${setCols.map(quoteIdent).join(', ')}) VALUES (${vals}) ON CONFLICT DO NOTHING`, values);
        }
        return;
      }
      case 'updateMany': {
        const sets = step.columns.filter((c) => !step.keys.includes(c));
        if (sets.length === 0) return;
        const stage = await this.stage(client, table, step.columns);
        await this.copy(client, stage, step.columns, this.columnTypes(table, step.columns), step.rows);
        const assign = sets.map((c) => `${quoteIdent(c)} = s.${quoteIdent(c)}`).join(', ');
        const match = step.keys.map((k) => `t.${quoteIdent(k)} = s.${quoteIdent(k)}`).join(' AND ');
        await client.query(`UPDATE ${table.sql} AS t SET ${assign} FROM ${stage} AS s WHERE ${match}`);
        await client.query(`TRUNCATE ${stage}`);
        return;
      }
      case 'truncate':
        await client.query(`TRUNCATE ${table.sql}`);
        return;
    }
  }
}

export const postgresSink: SinkDeclaration<PostgresSinkConfig> = {
  kind: 'sink',
  type: 'postgres',
  summary: 'rows in Postgres tables (append, upsert, or apply CDC events), exactly-once by offsets in the same transaction',
  delivery: 'transactional',
  schema: postgresSinkSchema,
  create: (config, ctx) => new PostgresSink(config, ctx),
};
