import { existsSync } from 'node:fs';
import { StorageType, connect, type NatsConnection } from 'nats';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNats, type NatsServer } from './nats.js';
import { canConnect, freePort, waitFor, WaitTimeoutError } from './ports.js';
import { startPostgres, type PgServer } from './postgres.js';

async function query<T extends pg.QueryResultRow>(url: string, sql: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end();
  }
}

describe('ports', () => {
  it('freePort returns a bindable port that is not a system service port', async () => {
    const port = await freePort();
    expect(port).toBeGreaterThan(1024);
    expect([4222, 5432]).not.toContain(port);
    expect(await canConnect(port)).toBe(false);
  });

  it('waitFor returns the first truthy value and times out with a clear error', async () => {
    let calls = 0;
    await expect(waitFor(() => (++calls >= 3 ? 'ok' : false), { intervalMs: 1 })).resolves.toBe('ok');

    const failing = waitFor(
      () => {
        throw new Error('still booting');
      },
      { timeoutMs: 100, intervalMs: 10, what: 'the widget' },
    );
    await expect(failing).rejects.toThrow(WaitTimeoutError);
    await expect(failing).rejects.toThrow(/waiting for the widget; last error: still booting/);
  });
});

describe('postgres harness', () => {
  let server: PgServer;

  beforeAll(async () => {
    server = await startPostgres();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('runs with logical replication settings on a private port', async () => {
    expect([5432, 0]).not.toContain(server.port);
    const [walLevel] = await query<{ wal_level: string }>(server.url(), 'SHOW wal_level');
    expect(walLevel?.wal_level).toBe('logical');
    const [slots] = await query<{ max_replication_slots: string }>(server.url(), 'SHOW max_replication_slots');
    expect(slots?.max_replication_slots).toBe('20');
  });

  it('creates a database with a table in it', async () => {
    const url = await server.createDatabase('harness_check');
    expect(url).toBe(server.url('harness_check'));
    await query(url, 'CREATE TABLE t (id int PRIMARY KEY, note text)');
    await query(url, "INSERT INTO t VALUES (1, 'hello')");
    expect(await query(url, 'SELECT id, note FROM t')).toEqual([{ id: 1, note: 'hello' }]);
  });

  it('restarts on the same port and keeps its data', async () => {
    const port = server.port;
    await server.restart();
    expect(server.port).toBe(port);
    expect(await query(server.url('harness_check'), 'SELECT note FROM t')).toEqual([{ note: 'hello' }]);
  });

  it('stops: port closed, data dir removed, stop is idempotent', async () => {
    await server.stop();
    expect(await canConnect(server.port)).toBe(false);
    expect(existsSync(server.dataDir)).toBe(false);
    await server.stop();
    await expect(server.restart()).rejects.toThrow(/stopped/);
  });
});

describe('nats harness', () => {
  let server: NatsServer;
  let nc: NatsConnection | undefined;

  beforeAll(async () => {
    server = await startNats();
  });
  afterAll(async () => {
    await nc?.close();
    await server?.stop();
  });

  async function freshConnection(): Promise<NatsConnection> {
    await nc?.close();
    nc = await connect({ servers: server.url });
    return nc;
  }

  it('serves JetStream: create a stream, publish, read back', async () => {
    expect([4222, 0]).not.toContain(server.port);
    const conn = await freshConnection();
    const jsm = await conn.jetstreamManager();
    await jsm.streams.add({ name: 'HARNESS', subjects: ['harness.>'], storage: StorageType.File });
    const ack = await conn.jetstream().publish('harness.one', new TextEncoder().encode('hello'));
    expect(ack.seq).toBe(1);
    const stored = await jsm.streams.getMessage('HARNESS', { seq: 1 });
    expect(stored.subject).toBe('harness.one');
    expect(stored.string()).toBe('hello');
  });

  it('restarts on the same port and store dir and keeps the stream', async () => {
    const { port, storeDir } = server;
    await nc?.close();
    nc = undefined;
    await server.restart();
    expect(server.port).toBe(port);
    expect(server.storeDir).toBe(storeDir);
    const conn = await freshConnection();
    const jsm = await conn.jetstreamManager();
    const stored = await jsm.streams.getMessage('HARNESS', { seq: 1 });
    expect(stored.string()).toBe('hello');
  });

  it('stops: port closed, store dir removed, stop is idempotent', async () => {
    await nc?.close();
    nc = undefined;
    await server.stop();
    expect(await canConnect(server.port)).toBe(false);
    expect(existsSync(server.storeDir)).toBe(false);
    await server.stop();
    await expect(server.restart()).rejects.toThrow(/stopped/);
  });
});
