/**
 * The postgres sink against a private cluster: each mode, type round trips, identifiers that
 * cannot inject SQL, offsets stored and resumed, fencing, on_new_fields, error classes.
 */
import { describe, expect, it } from 'vitest';
import { SinkFencedError } from '../../../connectors/sdk.js';
import { UNCHANGED_TOAST } from '../../../connectors/postgres/sink.js';
import { PgSinkError } from '../../../connectors/postgres/sink-errors.js';
import { batch, openSink, privateCluster, query, valuesBatch } from './sink-helpers.js';

const cluster = privateCluster();
let dbSeq = 0;
async function db(): Promise<string> {
  return cluster.server().createDatabase(`sink_${++dbSeq}`);
}

describe('postgres sink: append', () => {
  it('COPYs rows, stores the next offset in the same transaction, and resumes from it', async () => {
    const url = await db();
    await query(url, 'CREATE TABLE logs (id bigint, level text, msg text, extra jsonb)');
    const { sink } = await openSink({ url, table: 'logs' });
    expect(await sink.committedOffset!('events', 0)).toBeUndefined();
    await sink.write(batch(0, [{ id: 1, level: 'info', msg: 'a\tb\nc\\d' }, { id: 2, level: 'warn', msg: null, extra: { x: [1, 'y'] } }]));
    await sink.write(batch(2, [{ id: 3, level: 'error' }]));
    expect(await sink.committedOffset!('events', 0)).toBe(3);
    // A batch the stored offset already covers (a retry after a lost COMMIT reply) is not written again.
    await sink.write(batch(1, [{ id: 2, level: 'warn' }, { id: 3, level: 'error' }, { id: 4, level: 'debug' }]));
    await sink.close();
    const rows = await query(url, 'SELECT id::int, level, msg, extra FROM logs ORDER BY id');
    expect(rows).toEqual([
      { id: 1, level: 'info', msg: 'a\tb\nc\\d', extra: null },
      { id: 2, level: 'warn', msg: null, extra: { x: [1, 'y'] } },
      { id: 3, level: 'error', msg: null, extra: null },
      { id: 4, level: 'debug', msg: null, extra: null },
    ]);
    const offsets = await query(url, 'SELECT pipeline, sink, topic, partition, next_offset::int, fence::int FROM sluice_offsets');
    expect(offsets).toEqual([{ pipeline: 'p', sink: 'pg', topic: 'events', partition: 0, next_offset: 4, fence: 0 }]);
    // A new sink (a restart) reads its offsets back.
    const again = await openSink({ url, table: 'logs' });
    expect(await again.sink.committedOffset!('events', 0)).toBe(4);
    expect(await again.sink.committedOffset!('events', 1)).toBeUndefined();
    await again.sink.close();
  });

  it('splits a batch into transactions of batch_max_rows, each with its own next offset', async () => {
    const url = await db();
    await query(url, 'CREATE TABLE t (id int)');
    const { sink } = await openSink({ url, table: 't', batch_max_rows: 2, offsets_schema: 'meta', offsets_table: 'offs' });
    await sink.write(batch(10, [{ id: 1 }, { id: 2 }, { id: 3 }, { id: 4 }, { id: 5 }]));
    await sink.close();
    expect(await query(url, 'SELECT count(*)::int AS n FROM t')).toEqual([{ n: 5 }]);
    expect(await query(url, 'SELECT next_offset::int AS n FROM meta.offs')).toEqual([{ n: 15 }]);
  });

  it('writeSpan: a backlog of several batches is one COPY in one transaction, up to batch_max_rows', async () => {
    const url = await db();
    await query(url, 'CREATE TABLE t (id int, s text)');
    const { sink } = await openSink({ url, table: 't', batch_max_rows: 7 });
    const queue = [batch(3, [{ id: 3 }, { id: 4 }, { id: 5 }]), batch(6, [{ id: 6, s: 'other fields go after the COPY' }]), batch(7, [{ id: 7 }]), batch(8, [{ id: 8 }])];
    let asked = 0;
    const more = async () => {
      asked++;
      return queue.shift() ?? null;
    };
    await sink.writeSpan!(batch(0, [{ id: 0 }, { id: 1 }, { id: 2 }]), more);
    // 3 + 3 rows: room for more; 7 rows after the third batch: batch_max_rows reached.
    expect(asked).toBe(2);
    expect(await query(url, 'SELECT count(*)::int AS n, count(DISTINCT xmin::text)::int AS txns FROM t')).toEqual([{ n: 7, txns: 1 }]);
    expect(await query(url, 'SELECT s FROM t WHERE id = 6')).toEqual([{ s: 'other fields go after the COPY' }]);
    expect(await sink.committedOffset!('events', 0)).toBe(7);
    // A span whose batch holds records with other fields ends after that batch (they are written after the COPY).
    const rest = [batch(8, [{ id: 8, s: 'x' }]), batch(9, [{ id: 9 }])];
    await sink.writeSpan!(batch(7, [{ id: 7 }]), async () => rest.shift() ?? null);
    expect(rest).toHaveLength(1);
    expect(await sink.committedOffset!('events', 0)).toBe(9);
    await sink.close();
    expect(await query(url, 'SELECT next_offset::int AS n FROM sluice_offsets')).toEqual([{ n: 9 }]);
  });

  it('writeSpan: a bad row in a later batch rolls the whole span back, offsets included', async () => {
    const url = await db();
    await query(url, 'CREATE TABLE t (id int)');
    const { sink } = await openSink({ url, table: 't' });
    await sink.write(batch(0, [{ id: 0 }]));
    const queue = [batch(2, [{ id: 2 }]), batch(3, [{ id: 'three' }])];
    await expect(sink.writeSpan!(batch(1, [{ id: 1 }]), async () => queue.shift() ?? null)).rejects.toMatchObject({ retriable: false });
    expect(await query(url, 'SELECT id FROM t')).toEqual([{ id: 0 }]);
    expect(await sink.committedOffset!('events', 0)).toBe(1);
    // A read that fails mid-span (the log, not the database): the COPY is cancelled, nothing of
    // the span stays, and the connection goes on to the next write.
    const failing = [batch(2, [{ id: 2 }])];
    const readFailed = Object.assign(new Error('log read failed'), { retriable: true });
    await expect(
      sink.writeSpan!(batch(1, [{ id: 1 }]), async () => {
        const b = failing.shift();
        if (b === undefined) throw readFailed;
        return b;
      }),
    ).rejects.toThrow(/log read failed/);
    expect(await query(url, 'SELECT id FROM t')).toEqual([{ id: 0 }]);
    await sink.write(batch(1, [{ id: 1 }]));
    expect(await query(url, 'SELECT id FROM t ORDER BY id')).toEqual([{ id: 0 }, { id: 1 }]);
    await query(url, 'DELETE FROM t WHERE id = 1');
    // upsert and apply write the first batch alone.
    const up = await openSink({ url, table: 't', mode: 'upsert', key_columns: ['id'], offsets_table: 'up' });
    await query(url, 'CREATE UNIQUE INDEX ON t (id)');
    let asked = 0;
    await up.sink.writeSpan!(batch(0, [{ id: 5 }]), async () => (asked++, batch(1, [{ id: 6 }])));
    expect(asked).toBe(0);
    await up.sink.close();
    await sink.close();
    expect(await query(url, 'SELECT id FROM t ORDER BY id')).toEqual([{ id: 0 }, { id: 5 }]);
  });

  it('writeValues and values spans write what write writes, bytes the fast path declines included', async () => {
    const url = await db();
    await query(url, 'CREATE TABLE t (id int, s text, j jsonb)');
    const values = [
      { id: 0, s: 'a\tb', j: null },
      { id: 1, s: 'caf\u00e9 \u2603', j: null },
      { id: 2, s: null, j: { deep: [1, 2] } },
      { s: 'other order', id: 3, j: null },
      { id: 4, s: 'x', j: null },
      { id: 5, s: 'y', j: null },
    ];
    const { sink } = await openSink({ url, table: 't' });
    expect(sink.writeValues).toBeTypeOf('function');
    await sink.writeValues!(valuesBatch(0, values.slice(0, 4), 3));
    // A span of values batches, the first starting below the stored offset (written already).
    const queue = [valuesBatch(5, values.slice(5))];
    await sink.writeSpan!(valuesBatch(3, values.slice(3, 5)), async () => queue.shift() ?? null);
    expect(await sink.committedOffset!('events', 0)).toBe(6);
    await sink.close();
    expect(await query(url, 'SELECT id, s, j FROM t ORDER BY id')).toEqual(values.map((v) => ({ id: v.id, s: v.s, j: v.j })));
    // Append into a template table, upsert and apply take records only.
    for (const config of [{ table: 't_{{ x }}' }, { table: 't', mode: 'upsert' as const, key_columns: ['id'] }, { table: 't', mode: 'apply' as const }]) {
      const other = await openSink({ url, ...config });
      expect(other.sink.writeValues).toBeUndefined();
      await other.sink.close();
    }
    // A values batch above batch_max_rows is split as write splits it.
    await query(url, 'TRUNCATE t');
    const small = await openSink({ url, table: 't', batch_max_rows: 2, offsets_table: 'small' });
    await small.sink.writeValues!(valuesBatch(0, values.slice(0, 5), 5));
    await small.sink.close();
    expect(await query(url, 'SELECT count(*)::int AS n, count(DISTINCT xmin::text)::int AS txns FROM t')).toEqual([{ n: 5, txns: 3 }]);
  });

  it('renders the table per record from a template', async () => {
    const url = await db();
    await query(url, 'CREATE TABLE "logs_api" (id int); CREATE TABLE "logs_web" (id int)');
    const { sink } = await openSink({ url, table: 'logs_{{ service }}', on_new_fields: 'ignore' });
    await sink.write(batch(0, [{ id: 1, service: 'api' }, { id: 2, service: 'web' }, { id: 3, service: 'api' }]));
    await sink.close();
    expect(await query(url, 'SELECT id FROM logs_api ORDER BY id')).toEqual([{ id: 1 }, { id: 3 }]);
    expect(await query(url, 'SELECT id FROM logs_web')).toEqual([{ id: 2 }]);
  });
});

describe('postgres sink: types', () => {
  it('round-trips int8 past 2^53, numeric, timestamptz microseconds, jsonb, arrays, bytea', async () => {
    const url = await db();
    await query(
      url,
      `CREATE TABLE types (big int8, num numeric, ts timestamptz, doc jsonb, js json, ints int4[], texts text[], nested int[][],
                           bin bytea, bin64 bytea, flag boolean, f float8, s text)`,
    );
    const { sink } = await openSink({ url, table: 'types' });
    await sink.write(
      batch(0, [
        {
          big: '9007199254740993',
          num: '123456789012345678901234567890.123456789',
          ts: '2024-02-29 23:59:59.123456+00',
          doc: { a: [1, 2.5, null, 'x"y'], b: { c: true }, big: 1e21 },
          js: 'just a string',
          ints: [1, null, 3],
          texts: ['a,b', 'q"uote', 'back\\slash', '{brace}', 'NULL', ''],
          nested: [[1, 2], [3, 4]],
          bin: '\\x00ff10',
          bin64: Buffer.from([0, 1, 2, 255]).toString('base64'),
          flag: false,
          f: 0.1,
          s: 'tab\there',
        },
        { big: '-9223372036854775808', num: 'NaN', ts: null, doc: null, ints: [], texts: null, nested: null, bin: null, flag: true },
      ]),
    );
    await sink.close();
    const rows = await query(
      url,
      `SELECT big::text, num::text, to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') AS ts, doc::text, js::text, ints::text, texts,
              nested::text, encode(bin, 'hex') AS bin, encode(bin64, 'hex') AS bin64, flag, f, s FROM types ORDER BY big DESC`,
    );
    expect(rows[0]).toEqual({
      big: '9007199254740993',
      num: '123456789012345678901234567890.123456789',
      ts: '2024-02-29 23:59:59.123456',
      doc: '{"a": [1, 2.5, null, "x\\"y"], "b": {"c": true}, "big": 1000000000000000000000}',
      js: '"just a string"',
      ints: '{1,NULL,3}',
      texts: ['a,b', 'q"uote', 'back\\slash', '{brace}', 'NULL', ''],
      nested: '{{1,2},{3,4}}',
      bin: '00ff10',
      bin64: '000102ff',
      flag: false,
      f: 0.1,
      s: 'tab\there',
    });
    expect(rows[1]).toMatchObject({ big: '-9223372036854775808', num: 'NaN', ts: null, ints: '{}', flag: true });
  });
});

describe('postgres sink: identifiers', () => {
  it('quotes table and field names: quotes, spaces and SQL in them are names, never SQL', async () => {
    const url = await db();
    await query(url, 'CREATE TABLE victim (id int); INSERT INTO victim VALUES (1)');
    const table = 'odd "table"; DROP TABLE victim; --';
    const { sink } = await openSink({ url, schema: 'my schema', table, create_table: true, on_new_fields: 'add_columns' });
    await sink.write(batch(0, [{ 'id"); DROP TABLE victim; --': 1, 'with space': 'x', 'Mixed"Case': true }]));
    await sink.write(batch(1, [{ 'new" col; DELETE FROM victim': 'y' }]));
    await sink.close();
    expect(await query(url, 'SELECT id FROM victim')).toEqual([{ id: 1 }]);
    const rows = await query(url, `SELECT * FROM "my schema"."odd ""table""; DROP TABLE victim; --" ORDER BY 1`);
    expect(rows).toEqual([
      { 'id"); DROP TABLE victim; --': '1', 'with space': 'x', 'Mixed"Case': true, 'new" col; DELETE FROM victim': null },
      { 'id"); DROP TABLE victim; --': null, 'with space': null, 'Mixed"Case': null, 'new" col; DELETE FROM victim': 'y' },
    ]);
  });

  it('refuses a column type in column_types that is not a type name', async () => {
    const { postgresSink } = await import('../../../connectors/postgres/sink.js');
    const pattern = new RegExp((postgresSink.schema as { properties: { column_types: { additionalProperties: { pattern: string } } } }).properties.column_types.additionalProperties.pattern);
    expect(pattern.test('numeric(12, 2)')).toBe(true);
    expect(pattern.test('text[]')).toBe(true);
    expect(pattern.test('timestamp with time zone')).toBe(true);
    expect(pattern.test('int); DROP TABLE x; --')).toBe(false);
  });
});

describe('postgres sink: upsert', () => {
  it('inserts new keys and updates existing ones; the last record of a key in a batch wins', async () => {
    const url = await db();
    await query(url, `CREATE TABLE users (tenant text, id int, name text, age int, PRIMARY KEY (tenant, id)); INSERT INTO users VALUES ('a', 1, 'old', 50)`);
    const { sink } = await openSink({ url, table: 'users', mode: 'upsert', key_columns: ['tenant', 'id'] });
    await sink.write(
      batch(0, [
        { tenant: 'a', id: 1, name: 'new' },
        { tenant: 'a', id: 2, name: 'two', age: 2 },
        { tenant: 'b', id: 1, name: 'b1', age: 3 },
        { tenant: 'a', id: 2, name: 'two again', age: 22 },
      ]),
    );
    await sink.close();
    // Columns a record does not carry keep their value.
    expect(await query(url, 'SELECT * FROM users ORDER BY tenant, id')).toEqual([
      { tenant: 'a', id: 1, name: 'new', age: 50 },
      { tenant: 'a', id: 2, name: 'two again', age: 22 },
      { tenant: 'b', id: 1, name: 'b1', age: 3 },
    ]);
  });

  it('creates the table with key_columns as its primary key', async () => {
    const url = await db();
    const { sink } = await openSink({ url, table: 'kv', mode: 'upsert', key_columns: ['k'], create_table: true, column_types: { v: 'numeric(10,2)' } });
    await sink.write(batch(0, [{ k: 'x', v: 1.5 }, { k: 'y', v: 2 }]));
    await sink.write(batch(2, [{ k: 'x', v: 3.25 }]));
    await sink.close();
    expect(await query(url, 'SELECT k, v::text FROM kv ORDER BY k')).toEqual([{ k: 'x', v: '3.25' }, { k: 'y', v: '2.00' }]);
    expect(await query(url, `SELECT format_type(atttypid, atttypmod) AS t FROM pg_attribute WHERE attrelid = 'kv'::regclass AND attname = 'v'`)).toEqual([{ t: 'numeric(10,2)' }]);
  });
});

describe('postgres sink: apply', () => {
  const ev = (op: string, before: unknown, after: unknown, table = 'orders') => ({ op, before, after, source: { lsn: '0/1', txid: 1, schema: 'public', table, ts_ms: 0 } });

  it('replays c, r, u, d and t by primary key; unchanged TOAST columns keep their value', async () => {
    const url = await db();
    await query(url, 'CREATE TABLE orders (id int PRIMARY KEY, status text, note text, big text); CREATE TABLE other (id int PRIMARY KEY)');
    const { sink } = await openSink({ url, table: '{{ source.table }}', mode: 'apply' });
    await sink.write(
      batch(0, [
        ev('r', null, { id: 1, status: 'new', note: 'snap', big: 'B'.repeat(5000) }),
        ev('c', null, { id: 2, status: 'new', note: null, big: 'C' }),
        ev('c', null, { id: 3, status: 'new', note: null, big: 'D' }),
        ev('u', null, { id: 1, status: 'paid', note: 'n', big: UNCHANGED_TOAST }),
        ev('u', { id: 2 }, { id: 2, status: 'paid', note: 'n2', big: 'C2' }),
        ev('d', { id: 3 }, null),
        ev('c', null, { id: 3, status: 'again', note: null, big: 'E' }),
        ev('c', null, { id: 9 }, 'other'),
        ev('u', { id: 2 }, { id: 20, status: 'moved', note: null, big: 'C2' }),
      ]),
    );
    expect(await query(url, 'SELECT id, status, note, length(big) AS len FROM orders ORDER BY id')).toEqual([
      { id: 1, status: 'paid', note: 'n', len: 5000 },
      { id: 3, status: 'again', note: null, len: 1 },
      { id: 20, status: 'moved', note: null, len: 2 },
    ]);
    expect(await query(url, 'SELECT id FROM other')).toEqual([{ id: 9 }]);
    await sink.write(batch(9, [ev('t', null, null), ev('c', null, { id: 5, status: 's', note: null, big: 'x' })]));
    await sink.close();
    expect(await query(url, 'SELECT id FROM orders')).toEqual([{ id: 5 }]);
  });

  it('batches updates that keep TOASTed columns, in order, the same key twice included', async () => {
    const url = await db();
    await query(url, `CREATE TABLE docs (id int PRIMARY KEY, title text, body text, meta jsonb)`);
    const { sink } = await openSink({ url, table: 'docs', mode: 'apply' });
    const T = UNCHANGED_TOAST;
    await sink.write(
      batch(0, [
        ev('c', null, { id: 1, title: 'a', body: 'B1', meta: { v: 1 } }, 'docs'),
        ev('c', null, { id: 2, title: 'b', body: 'B2', meta: { v: 2 } }, 'docs'),
        ev('u', null, { id: 1, title: 'a1', body: T, meta: T }, 'docs'),
        ev('u', null, { id: 2, title: 'b1', body: T, meta: T }, 'docs'),
        ev('u', null, { id: 1, title: 'a2', body: T, meta: T }, 'docs'),
        ev('u', null, { id: 2, title: 'b2', body: 'B2 new', meta: T }, 'docs'),
        ev('u', null, { id: 2, title: 'b3', body: T, meta: { v: 3 } }, 'docs'),
        ev('d', { id: 1 }, null, 'docs'),
        ev('u', null, { id: 1, title: 'gone', body: T, meta: T }, 'docs'),
      ]),
    );
    await sink.close();
    expect(await query(url, 'SELECT * FROM docs ORDER BY id')).toEqual([{ id: 2, title: 'b3', body: 'B2 new', meta: { v: 3 } }]);
  });

  it('refuses an event that is not a CDC event with a non-retriable error', async () => {
    const url = await db();
    await query(url, 'CREATE TABLE orders (id int PRIMARY KEY)');
    const { sink } = await openSink({ url, table: 'orders', mode: 'apply' });
    const err = await sink.write(batch(0, [{ op: 'x', after: { id: 1 } }])).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PgSinkError);
    expect(err).toMatchObject({ code: 'SLUICE_PG_BAD_RECORD', retriable: false });
    await sink.close();
  });
});

describe('postgres sink: fencing', () => {
  it('refuses a batch whose fence is older than the stored one', async () => {
    const url = await db();
    await query(url, 'CREATE TABLE t (id int)');
    const { sink } = await openSink({ url, table: 't' });
    await sink.write(batch(0, [{ id: 1 }], { fence: 5 }));
    const err = await sink.write(batch(1, [{ id: 2 }], { fence: 4 })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SinkFencedError);
    expect(err).toMatchObject({ code: 'SLUICE_SINK_FENCED', retriable: false, fence: 4, storedFence: 5 });
    await sink.write(batch(1, [{ id: 3 }], { fence: 6 }));
    await sink.close();
    expect(await query(url, 'SELECT id FROM t ORDER BY id')).toEqual([{ id: 1 }, { id: 3 }]);
    expect(await query(url, 'SELECT fence::int FROM sluice_offsets')).toEqual([{ fence: 6 }]);
  });

  it('a worker that lost the partition cannot write after the new holder, even with its offsets in memory', async () => {
    const url = await db();
    await query(url, 'CREATE TABLE t (id int)');
    const old = await openSink({ url, table: 't' });
    const next = await openSink({ url, table: 't' });
    await old.sink.write(batch(0, [{ id: 1 }, { id: 2 }], { fence: 1 }));
    // The new holder resumes from the stored offset and writes with a newer fence.
    expect(await next.sink.committedOffset!('events', 0)).toBe(2);
    await next.sink.write(batch(2, [{ id: 3 }], { fence: 2 }));
    // The old holder still believes it is at offset 2 with fence 1: its write is rolled back and refused.
    expect(await old.sink.write(batch(2, [{ id: 99 }], { fence: 1 })).catch((e: unknown) => e)).toBeInstanceOf(SinkFencedError);
    // A writer with the same fence whose memory is behind skips what is already stored.
    const same = await openSink({ url, table: 't' });
    expect(await same.sink.committedOffset!('events', 0)).toBe(3);
    await next.sink.write(batch(3, [{ id: 4 }], { fence: 2 }));
    await same.sink.write(batch(3, [{ id: 4 }, { id: 5 }], { fence: 2 }));
    for (const o of [old, next, same]) await o.sink.close();
    expect(await query(url, 'SELECT id FROM t ORDER BY id')).toEqual([{ id: 1 }, { id: 2 }, { id: 3 }, { id: 4 }, { id: 5 }]);
    expect(await query(url, 'SELECT next_offset::int AS n, fence::int AS f FROM sluice_offsets')).toEqual([{ n: 5, f: 2 }]);
  });
});

describe('postgres sink: on_new_fields', () => {
  it('add_columns adds typed columns; ignore leaves fields out; fail refuses the records', async () => {
    const url = await db();
    await query(url, 'CREATE TABLE a (id int); CREATE TABLE i (id int); CREATE TABLE f (id int)');
    const add = await openSink({ url, table: 'a', on_new_fields: 'add_columns' }, { sink: 'a' });
    await add.sink.write(batch(0, [{ id: 1, n: 5, x: 1.5, s: 'str', b: true, o: { k: 1 }, none: null }]));
    await add.sink.close();
    expect(await query(url, `SELECT attname AS c, format_type(atttypid, atttypmod) AS t FROM pg_attribute WHERE attrelid = 'a'::regclass AND attnum > 0 ORDER BY attnum`)).toEqual([
      { c: 'id', t: 'integer' },
      { c: 'n', t: 'bigint' },
      { c: 'x', t: 'double precision' },
      { c: 's', t: 'text' },
      { c: 'b', t: 'boolean' },
      { c: 'o', t: 'jsonb' },
    ]);
    expect(add.logs.some((l) => l.includes('added to "public"."a"'))).toBe(true);

    const ign = await openSink({ url, table: 'i', on_new_fields: 'ignore' }, { sink: 'i' });
    await ign.sink.write(batch(0, [{ id: 1, extra: 'dropped' }]));
    await ign.sink.close();
    expect(await query(url, 'SELECT * FROM i')).toEqual([{ id: 1 }]);

    const fail = await openSink({ url, table: 'f' }, { sink: 'f' });
    const err = await fail.sink.write(batch(0, [{ id: 1, extra: 'no' }])).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'SLUICE_PG_NEW_FIELDS', retriable: false });
    expect((err as Error).message).toContain('"extra"');
    await fail.sink.close();
    expect(await query(url, 'SELECT count(*)::int AS n FROM f')).toEqual([{ n: 0 }]);
  });
});

describe('postgres sink: errors', () => {
  it('classifies a bad value as a data error and a missing table as not retriable', async () => {
    const url = await db();
    await query(url, 'CREATE TABLE t (id int NOT NULL)');
    const { sink } = await openSink({ url, table: 't' });
    expect(await sink.write(batch(0, [{ id: 'not a number' }])).catch((e: unknown) => e)).toMatchObject({ code: 'SLUICE_PG_DATA', retriable: false, sqlState: '22P02' });
    expect(await sink.write(batch(0, [{ id: null }])).catch((e: unknown) => e)).toMatchObject({ code: 'SLUICE_PG_DATA', retriable: false, sqlState: '23502' });
    // The connection is still usable after a data error.
    await sink.write(batch(0, [{ id: 1 }]));
    await sink.close();
    const other = await openSink({ url, table: 'missing' }, { sink: 'm' });
    expect(await other.sink.write(batch(0, [{ id: 1 }])).catch((e: unknown) => e)).toMatchObject({ code: 'SLUICE_PG_NO_TABLE', retriable: false });
    await other.sink.close();
  });

  it('a server that is down is a retriable connection error, without the password in the message', async () => {
    const { postgresSink } = await import('../../../connectors/postgres/sink.js');
    const sink = postgresSink.create(
      { url: 'postgres://u:s3cret@127.0.0.1:1/db', table: 't', connect_timeout_ms: 2000 },
      { pipeline: 'p', sink: 's', baseDir: '.', signal: new AbortController().signal, log: () => undefined },
    );
    const err = (await sink.open().catch((e: unknown) => e)) as PgSinkError;
    expect(err).toMatchObject({ code: 'SLUICE_PG_CONNECTION', retriable: true });
    expect(err.message).not.toContain('s3cret');
    expect(err.message).toContain('127.0.0.1:1');
  });
});
