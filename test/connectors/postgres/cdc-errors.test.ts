/** postgres_cdc refuses clearly: wal_level, REPLICATION, replica identity, slot in use, missing slot. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type PgServer } from '../../support/postgres.js';
import { openSource, sql } from './cdc-helpers.js';
import { CdcError } from '../../../connectors/postgres/cdc-errors.js';

let pgs: PgServer;
let url: string;

beforeAll(async () => {
  pgs = await startPostgres();
  url = await pgs.createDatabase('errors');
  await sql(url, `CREATE TABLE ok (id int PRIMARY KEY); CREATE TABLE nokey (v int)`);
}, 120_000);
afterAll(async () => pgs?.stop());

async function failure(p: Promise<unknown>): Promise<CdcError> {
  const err = await p.then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(CdcError);
  return err as CdcError;
}

describe('postgres_cdc errors', () => {
  it('a table without primary key or replica identity', async () => {
    const err = await failure(openSource({ url, tables: ['ok', 'nokey'], publication: 'p_nokey', slot: 's_nokey' }, 'nokey'));
    expect(err.code).toBe('SLUICE_PG_NO_REPLICA_IDENTITY');
    expect(err.message).toMatch(/public\.nokey/);
    expect(err.message).toMatch(/REPLICA IDENTITY FULL/);
    // With REPLICA IDENTITY FULL it is accepted.
    await sql(url, 'ALTER TABLE nokey REPLICA IDENTITY FULL');
    const h = await openSource({ url, tables: ['ok', 'nokey'], publication: 'p_nokey', slot: 's_nokey' }, 'nokey');
    await h.close();
    await sql(url, 'ALTER TABLE nokey REPLICA IDENTITY DEFAULT');
  }, 60_000);

  it('an unknown table', async () => {
    const err = await failure(openSource({ url, tables: ['nope'], publication: 'p_nope', slot: 's_nope' }, 'nope'));
    expect(err.code).toBe('SLUICE_PG_UNKNOWN_TABLE');
  });

  it('a user without REPLICATION', async () => {
    await sql(url, `CREATE ROLE plain LOGIN; GRANT SELECT ON ok TO plain`);
    const plain = url.replace('postgres@', 'plain@');
    const err = await failure(openSource({ url: plain, tables: ['ok'], publication: 'p_plain', slot: 's_plain' }, 'plain'));
    expect(err.code).toBe('SLUICE_PG_NOT_REPLICATION');
    expect(err.message).toMatch(/ALTER ROLE "plain" WITH REPLICATION/);
  });

  it('a slot in use by another reader', async () => {
    const first = await openSource({ url, tables: ['ok'], snapshot: 'never', slot: 's_busy', publication: 'p_busy' }, 'busy');
    try {
      await sql(url, 'INSERT INTO ok VALUES (1)');
      await first.take(1);
      const err = await failure(openSource({ url, tables: ['ok'], snapshot: 'never', slot: 's_busy', publication: 'p_busy' }, 'busy', first.batches[0]!.position));
      expect(err.code).toBe('SLUICE_PG_SLOT_IN_USE');
      expect(err.retriable).toBe(true);
      expect(err.message).toMatch(/s_busy.*in use by server process \d+/);
    } finally {
      await first.close();
    }
  }, 60_000);

  it('a missing slot behind a committed position', async () => {
    const err = await failure(openSource({ url, tables: ['ok'], slot: 's_gone', publication: 'p_gone' }, 'gone', { lsn: '0/1000000' }));
    expect(err.code).toBe('SLUICE_PG_SLOT_MISSING');
    expect(err.message).toMatch(/sluice pipelines drop/);
  });

  it('wal_level below logical', async () => {
    const replica = await startPostgres({ settings: { wal_level: 'replica' } });
    try {
      const u = await replica.createDatabase('w');
      await sql(u, 'CREATE TABLE ok (id int PRIMARY KEY)');
      const err = await failure(openSource({ url: u, tables: ['ok'] }, 'wal'));
      expect(err.code).toBe('SLUICE_PG_WAL_LEVEL');
      expect(err.message).toMatch(/wal_level = replica/);
    } finally {
      await replica.stop();
    }
  }, 120_000);
});
