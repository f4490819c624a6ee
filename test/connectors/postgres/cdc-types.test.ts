import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type PgServer } from '../../support/postgres.js';
import { openSource, sql } from './cdc-helpers.js';

let pgs: PgServer;
let url: string;

beforeAll(async () => {
  pgs = await startPostgres();
  url = await pgs.createDatabase('types');
}, 120_000);
afterAll(async () => pgs?.stop());

describe('postgres_cdc types', () => {
  it('decodes every type faithfully, in the snapshot and in the stream', async () => {
    await sql(url, `CREATE TYPE mood AS ENUM ('sad', 'happy');
      CREATE TABLE t (id int8 PRIMARY KEY, n numeric, n2 numeric(10,2), f float8, r real, ts timestamptz, tsn timestamp, d date,
        j jsonb, js json, a int4[], ta text[], b bytea, m mood, ma mood[], u uuid, bo bool, s text, i2 int2, iv interval)`);
    const row = `(9007199254740993, 12345678901234567890.123456789, 1.50, 0.1, 1.5, '2024-05-01 10:00:00.123456+02', '2024-05-01 10:00:00.000001', '2024-05-01',
      '{"a": [1, 2.5, "x"], "b": null}', '{"k" : "v"}', '{1,NULL,3}', '{"a b","c\\"d",NULL}', '\\x00ff10', 'happy', '{sad,happy}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', true, 'héllo "q"', -5, '1 day 2 hours')`;
    await sql(url, `INSERT INTO t VALUES ${row.replace('9007199254740993', '1')}`);
    const h = await openSource({ url, tables: ['t'] }, 'types');
    try {
      const [snap] = await h.take(1);
      expect(snap!.event.op).toBe('r');
      expect(snap!.key).toBe('{"id":1}');
      await sql(url, `INSERT INTO t VALUES ${row}`);
      const [ins] = await h.take(1);
      expect(ins!.event.op).toBe('c');
      expect(ins!.key).toBe('{"id":"9007199254740993"}');
      const after = ins!.event.after!;
      expect(after).toEqual({
        id: '9007199254740993',
        n: '12345678901234567890.123456789',
        n2: '1.50',
        f: 0.1,
        r: 1.5,
        ts: '2024-05-01T08:00:00.123456Z',
        tsn: '2024-05-01T10:00:00.000001',
        d: '2024-05-01',
        j: { a: [1, 2.5, 'x'], b: null },
        js: { k: 'v' },
        a: [1, null, 3],
        ta: ['a b', 'c"d', null],
        b: Buffer.from([0, 255, 16]).toString('base64'),
        m: 'happy',
        ma: ['sad', 'happy'],
        u: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
        bo: true,
        s: 'héllo "q"',
        i2: -5,
        iv: 'P1DT2H',
      });
      const snapAfter = { ...snap!.event.after, id: after.id };
      expect(snapAfter).toEqual(after);
      expect(ins!.event.source).toMatchObject({ schema: 'public', table: 't', snapshot: false });
      expect(ins!.event.source.commit_ts).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
      expect(typeof ins!.event.source.txid).toBe('number');
      expect(ins!.event.source.lsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
      // small int8 and plain numeric stay numbers
      await sql(url, `INSERT INTO t (id, n) VALUES (42, 3.25)`);
      const [small] = await h.take(1);
      expect(small!.event.after).toMatchObject({ id: 42, n: 3.25, j: null, a: null });
    } finally {
      await h.close();
    }
  }, 60_000);
});
