/**
 * postgres_cdc driven directly (no runtime): ops and before images, TOAST, truncate, schema
 * changes, huge transactions split and resumed, snapshot modes, idle slot advance.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type PgServer } from '../../support/postgres.js';
import { openSource, sql } from './cdc-helpers.js';

let pgs: PgServer;

beforeAll(async () => {
  pgs = await startPostgres();
}, 120_000);
afterAll(async () => pgs?.stop());

let n = 0;
async function db(): Promise<string> {
  return pgs.createDatabase(`changes${++n}`);
}

async function confirmedFlush(url: string, slot: string): Promise<string> {
  return (await sql(url, 'SELECT confirmed_flush_lsn::text AS l FROM pg_replication_slots WHERE slot_name = $1', [slot])).rows[0].l as string;
}

describe('postgres_cdc changes', () => {
  it('inserts, updates and deletes with DEFAULT and FULL replica identity', async () => {
    const url = await db();
    await sql(url, `CREATE TABLE d (id int PRIMARY KEY, v text, w int); CREATE TABLE f (id int PRIMARY KEY, v text); ALTER TABLE f REPLICA IDENTITY FULL`);
    const h = await openSource({ url, tables: ['d', 'f'], snapshot: 'never' }, 'ops');
    try {
      await sql(url, `INSERT INTO d VALUES (1, 'a', 1); UPDATE d SET v = 'b' WHERE id = 1; UPDATE d SET id = 2 WHERE id = 1; DELETE FROM d WHERE id = 2;
        INSERT INTO f VALUES (1, 'a'); UPDATE f SET v = 'b'; DELETE FROM f`);
      const ev = await h.take(7);
      expect(ev.map((e) => `${e.event.source.table}:${e.event.op}`)).toEqual(['d:c', 'd:u', 'd:u', 'd:d', 'f:c', 'f:u', 'f:d']);
      expect(ev[0]!.event.after).toEqual({ id: 1, v: 'a', w: 1 });
      // DEFAULT: no before image unless the key changed; then, and on delete, only the key.
      expect(ev[1]!.event.before).toBeNull();
      expect(ev[2]!.event.before).toEqual({ id: 1 });
      expect(ev[2]!.key).toBe('{"id":2}');
      expect(ev[3]!.event.before).toEqual({ id: 2 });
      expect(ev[3]!.event.after).toBeNull();
      expect(ev[3]!.key).toBe('{"id":2}');
      // FULL: the whole old row.
      expect(ev[5]!.event.before).toEqual({ id: 1, v: 'a' });
      expect(ev[6]!.event.before).toEqual({ id: 1, v: 'b' });
      // one transaction: one txid, increasing LSNs
      expect(new Set(ev.map((e) => e.event.source.txid)).size).toBe(1);
    } finally {
      await h.close();
    }
  }, 60_000);

  it('marks unchanged TOAST values, never fakes them; NULL stays null', async () => {
    const url = await db();
    await sql(url, `CREATE TABLE t (id int PRIMARY KEY, big text, small text, n text)`);
    const big = 'x'.repeat(10_000) + Array.from({ length: 3000 }, (_, i) => i).join(',');
    await sql(url, `INSERT INTO t VALUES (1, $1, 's', NULL)`, [big]);
    const h = await openSource({ url, tables: ['t'], snapshot: 'never' }, 'toast');
    try {
      await sql(url, `UPDATE t SET small = 'z' WHERE id = 1; UPDATE t SET big = 'short' WHERE id = 1`);
      const [u1, u2] = await h.take(2);
      expect(u1!.event.after).toEqual({ id: 1, big: { __sluice_unchanged_toast: true }, small: 'z', n: null });
      expect(u2!.event.after).toEqual({ id: 1, big: 'short', small: 'z', n: null });
    } finally {
      await h.close();
    }
  }, 60_000);

  it('emits a t event per truncated table and follows schema changes mid-stream', async () => {
    const url = await db();
    await sql(url, `CREATE TABLE a (id int PRIMARY KEY, v text); CREATE TABLE b (id int PRIMARY KEY)`);
    const h = await openSource({ url, tables: ['a', 'b'], snapshot: 'never' }, 'schema');
    try {
      await sql(url, `INSERT INTO a VALUES (1, 'x'); INSERT INTO b VALUES (1)`);
      await h.take(2);
      await sql(url, `TRUNCATE a, b`);
      const t = await h.take(2);
      expect(t.map((e) => [e.event.op, e.event.source.table, e.event.before, e.event.after])).toEqual([
        ['t', 'a', null, null],
        ['t', 'b', null, null],
      ]);
      await sql(url, `ALTER TABLE a ADD COLUMN added jsonb DEFAULT '{"d": 1}'; ALTER TABLE a ALTER COLUMN v TYPE int USING 7; INSERT INTO a VALUES (2, 8, '[1]')`);
      await sql(url, `ALTER TABLE a DROP COLUMN v; INSERT INTO a VALUES (3)`);
      const [c2, c3] = await h.take(2);
      expect(c2!.event.after).toEqual({ id: 2, v: 8, added: [1] });
      expect(c3!.event.after).toEqual({ id: 3, added: { d: 1 } });
    } finally {
      await h.close();
    }
  }, 60_000);

  it('splits a huge transaction by max_transaction_records and resumes inside it', async () => {
    const url = await db();
    await sql(url, `CREATE TABLE h (id int PRIMARY KEY)`);
    const h = await openSource({ url, tables: ['h'], snapshot: 'never', max_transaction_records: 300 }, 'huge');
    await sql(url, `INSERT INTO h SELECT generate_series(1, 1000)`);
    const first = await h.take(600);
    expect(first.map((e) => e.event.after!.id)).toEqual(Array.from({ length: 600 }, (_, i) => i + 1));
    const parts = h.batches.map((b) => [b.records.length, b.position]);
    expect(parts[0]![0]).toBe(300);
    expect(parts[1]).toEqual([300, expect.objectContaining({ skip: 600 })]);
    const resumeAt = h.batches[1]!.position;
    // Crash: what was read after the last committed batch is lost.
    await h.close();
    const again = await openSource({ url, tables: ['h'], snapshot: 'never', max_transaction_records: 300 }, 'huge', resumeAt);
    try {
      const rest = await again.take(400);
      expect(rest.map((e) => e.event.after!.id)).toEqual(Array.from({ length: 400 }, (_, i) => i + 601));
      expect(again.batches.at(-1)!.position).not.toHaveProperty('skip');
    } finally {
      await again.close();
    }
  }, 60_000);

  it('snapshot: initial gives existing rows as r then the changes after the slot point', async () => {
    const url = await db();
    await sql(url, `CREATE TABLE s (id int PRIMARY KEY, v text); INSERT INTO s SELECT g, 'v' || g FROM generate_series(1, 2500) g`);
    const h = await openSource({ url, tables: ['s'], snapshot_fetch_rows: 1000 }, 'snap');
    try {
      const rows = await h.take(2500);
      expect(rows.every((e) => e.event.op === 'r' && e.event.source.snapshot)).toBe(true);
      expect(new Set(rows.map((e) => e.key)).size).toBe(2500);
      await sql(url, `INSERT INTO s VALUES (2501, 'new'); DELETE FROM s WHERE id = 1`);
      const ch = await h.take(2);
      expect(ch.map((e) => e.event.op)).toEqual(['c', 'd']);
      expect(h.batches.map((b) => b.position)).toContainEqual({ lsn: expect.stringMatching(/\//) });
    } finally {
      await h.close();
    }
  }, 60_000);

  it('snapshot: never skips existing rows; initial_only ends after them without a slot', async () => {
    const url = await db();
    await sql(url, `CREATE TABLE s (id int PRIMARY KEY); INSERT INTO s SELECT generate_series(1, 10)`);
    const never = await openSource({ url, tables: ['s'], snapshot: 'never', slot: 'never_slot' }, 'never');
    try {
      await sql(url, `INSERT INTO s VALUES (11)`);
      const [e] = await never.take(1);
      expect(e!.event).toMatchObject({ op: 'c', after: { id: 11 } });
    } finally {
      await never.close();
    }
    const only = await openSource({ url, tables: ['s'], snapshot: 'initial_only', slot: 'only_slot' }, 'only');
    try {
      const rows = await only.take(100);
      expect(rows.length).toBe(11);
      expect(await only.source.read()).toBeNull();
      expect((await sql(url, `SELECT 1 FROM pg_replication_slots WHERE slot_name = 'only_slot'`)).rowCount).toBe(0);
    } finally {
      await only.close();
    }
  }, 60_000);

  it('a snapshot interrupted by a crash starts over with a new slot, after a t event per table', async () => {
    const url = await db();
    await sql(url, `CREATE TABLE s (id int PRIMARY KEY); INSERT INTO s SELECT generate_series(1, 3000)`);
    const h = await openSource({ url, tables: ['s'], snapshot_fetch_rows: 1000 }, 'restart');
    await h.take(1000);
    const mid = h.batches[0]!.position;
    expect(mid).toMatchObject({ snapshot: { table: 0, rows: 1000 } });
    await h.close();
    await sql(url, `INSERT INTO s VALUES (3001)`);
    const again = await openSource({ url, tables: ['s'], snapshot_fetch_rows: 1000 }, 'restart', mid);
    try {
      const ev = await again.take(3002);
      expect(ev[0]!.event).toMatchObject({ op: 't', source: { table: 's', snapshot: true } });
      expect(ev.slice(1).every((e) => e.event.op === 'r')).toBe(true);
      expect(new Set(ev.slice(1).map((e) => e.key)).size).toBe(3001);
      expect(again.logs.join('\n')).toMatch(/interrupted/);
    } finally {
      await again.close();
    }
  }, 60_000);

  it('confirms only acknowledged positions, and lets an idle slot advance to the server position', async () => {
    const url = await db();
    await sql(url, `CREATE TABLE i (id int PRIMARY KEY); CREATE TABLE other (id int)`);
    const h = await openSource({ url, tables: ['i'], snapshot: 'never', status_interval_ms: 200 }, 'idle');
    try {
      await sql(url, `INSERT INTO i VALUES (1)`);
      await h.take(1);
      const pos = h.batches[0]!.position as { lsn: string };
      // WAL that the publication does not carry: the slot must still move past it.
      await sql(url, `INSERT INTO other SELECT generate_series(1, 1000)`);
      const target = (await sql(url, 'SELECT pg_current_wal_lsn()::text AS l')).rows[0].l as string;
      const reader = h.take(1, 3000).catch(() => []);
      await reader;
      const flushed = await confirmedFlush(url, 'sluice_idle');
      const num = (l: string) => { const [a, b] = l.split('/'); return parseInt(a!, 16) * 2 ** 32 + parseInt(b!, 16); };
      expect(num(flushed)).toBeGreaterThanOrEqual(num(pos.lsn));
      expect(num(flushed)).toBeGreaterThanOrEqual(num(target));
    } finally {
      await h.close();
    }
  }, 60_000);

  it('stops reading the replication stream while nobody asks for a batch (bounded memory)', async () => {
    const url = await db();
    await sql(url, `CREATE TABLE fc (id int PRIMARY KEY, pad text)`);
    const h = await openSource({ url, tables: ['fc'], snapshot: 'never', max_batch_records: 100 }, 'flow');
    try {
      await sql(url, `INSERT INTO fc VALUES (0, '')`);
      await h.take(1);
      // 50,000 changes wait on the server while the pipeline (this test) reads nothing.
      await sql(url, `INSERT INTO fc SELECT g, repeat('p', 200) FROM generate_series(1, 50000) g`);
      await new Promise((r) => setTimeout(r, 2000));
      const copy = (h.source as unknown as { stream: { copy: { readableLength: number } } }).stream.copy;
      // 4,096 frames buffered, plus the rest of the socket chunk being parsed when the limit hit.
      expect(copy.readableLength).toBeGreaterThan(0);
      expect(copy.readableLength).toBeLessThanOrEqual(4096 + 1000);
      // Reading again drains everything, in order.
      const rest = await h.take(50000, 60_000);
      expect(rest.at(-1)!.event.after!.id).toBe(50000);
    } finally {
      await h.close();
    }
  }, 90_000);

  it('a partitioned table: snapshot and changes of its partitions', async () => {
    const url = await db();
    await sql(url, `CREATE TABLE m (id int, region text, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
      CREATE TABLE m_eu PARTITION OF m FOR VALUES IN ('eu'); CREATE TABLE m_us PARTITION OF m FOR VALUES IN ('us');
      INSERT INTO m VALUES (1, 'eu'), (2, 'us')`);
    const h = await openSource({ url, tables: ['m'] }, 'parts');
    try {
      const snap = await h.take(2);
      expect(snap.map((e) => [e.event.op, e.event.source.table, e.key]).sort()).toEqual([
        ['r', 'm_eu', '{"id":1,"region":"eu"}'],
        ['r', 'm_us', '{"id":2,"region":"us"}'],
      ]);
      await sql(url, `INSERT INTO m VALUES (3, 'us')`);
      const [c] = await h.take(1);
      expect(c!.event).toMatchObject({ op: 'c', after: { id: 3, region: 'us' }, source: { table: 'm_us' } });
    } finally {
      await h.close();
    }
    // A publication that publishes through the root: one table name, partitions read with it.
    await sql(url, `CREATE PUBLICATION p_root FOR TABLE m WITH (publish_via_partition_root = true)`);
    const root = await openSource({ url, tables: ['m'], publication: 'p_root', slot: 'root_slot' }, 'root');
    try {
      const snap = await root.take(3);
      expect(snap.map((e) => [e.event.source.table, e.event.after!.id]).sort()).toEqual([['m', 1], ['m', 2], ['m', 3]]);
      await sql(url, `INSERT INTO m VALUES (4, 'eu')`);
      const [c] = await root.take(1);
      expect(c!.event).toMatchObject({ op: 'c', source: { table: 'm' } });
    } finally {
      await root.close();
    }
  }, 60_000);
});
