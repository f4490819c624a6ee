/**
 * Three `sluice run` workers share one pipeline on JetStream (generate → topic of 6 partitions →
 * Postgres sink, transactional). One worker is SIGKILLed mid-stream, then another; the survivors
 * take over the source and the partitions through KV leases; then nats-server itself restarts.
 * At the end the table holds every generated record exactly once. SLUICE_WORKERS_RECORDS / SLUICE_WORKERS_RATE make it longer.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'nats';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { liveKeys } from '../../core/log/jetstream/kv-keys.js';
import { startNats, type NatsServer } from '../support/nats.js';
import { startPostgres, type PgServer } from '../support/postgres.js';
import { killHard, startSluice, stderrOf, type SluiceProcess } from '../support/sluice-process.js';

const RECORDS = Number(process.env.SLUICE_WORKERS_RECORDS ?? 30_000);
const RATE = Number(process.env.SLUICE_WORKERS_RATE ?? 3_000);
const TTL_MS = 2_000;

let nats: NatsServer;
let postgres: PgServer;
let targetUrl: string;
let dir: string;
const workers: SluiceProcess[] = [];

beforeAll(async () => {
  [nats, postgres] = await Promise.all([startNats(), startPostgres()]);
  targetUrl = await postgres.createDatabase('target');
  dir = await mkdtemp(join(tmpdir(), 'sluice-workers-'));
}, 120_000);

afterAll(async () => {
  await Promise.allSettled(workers.map(killHard));
  await Promise.allSettled([nats?.stop(), postgres?.stop()]);
  if (dir) await rm(dir, { recursive: true, force: true });
});

function config(): string {
  return `version: 1
log:
  backend: jetstream
  jetstream: { servers: ["${nats.url}"], lease_ttl_ms: ${TTL_MS} }
admin: { listen: "127.0.0.1:0" }
topics:
  events: { partitions: 6 }
pipelines:
  gen:
    source: { type: generate, count: ${RECORDS}, seed: 3, batch_size: 100, rate_per_sec: ${RATE} }
    topic: events
    key: "{{ id }}"
    sinks:
      db: { type: postgres, url: "${targetUrl}", mode: append, table: events, create_table: true }
`;
}

async function rows(): Promise<{ total: number; distinct: number }> {
  const client = new pg.Client({ connectionString: targetUrl });
  await client.connect();
  try {
    const exists = await client.query(`select to_regclass('public.events') is not null as ok`);
    if (!exists.rows[0].ok) return { total: 0, distinct: 0 };
    const r = await client.query('select count(*)::int as total, count(distinct id)::int as distinct from events');
    return { total: r.rows[0].total, distinct: r.rows[0].distinct };
  } finally {
    await client.end();
  }
}

async function waitRows(atLeast: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { total } = await rows();
    if (total >= atLeast) return;
    if (Date.now() > deadline) {
      throw new Error(`only ${total} of ${atLeast} rows after ${timeoutMs} ms\n${stderrOf(workers)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Which workers (pids) hold a lease now (the KV bucket `sluice_leases`, values name their holder). */
async function leaseHolders(): Promise<Set<string>> {
  const nc = await connect({ servers: nats.url });
  try {
    const kv = await nc.jetstream().views.kv('sluice_leases');
    const holders = new Set<string>();
    for (const k of await liveKeys(await nc.jetstreamManager(), kv, 'sluice_leases', 'lease.>')) {
      const e = await kv.get(k);
      if (e?.operation === 'PUT') holders.add(String((e.json() as { pid: number }).pid));
    }
    return holders;
  } finally {
    await nc.close();
  }
}

describe('crash: three workers on JetStream, two SIGKILLed, nats-server restarted', () => {
  it(`delivers ${RECORDS} records exactly once to Postgres`, async () => {
    await writeFile(join(dir, 'pipelines.yaml'), config());
    const file = join(dir, 'pipelines.yaml');
    for (const name of ['w1', 'w2', 'w3']) workers.push(startSluice(name, file, dir));

    await waitRows(RECORDS / 5, 60_000);
    // The work is shared: all three hold leases (6 partitions + the source among 3 workers).
    const pids = new Set(workers.map((w) => String(w.child.pid)));
    const sharing = async () => [...(await leaseHolders())].filter((h) => pids.has(h)).length;
    const deadline = Date.now() + 30_000;
    while ((await sharing()) < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
    expect(await sharing()).toBe(3);
    await killHard(workers[0]!);
    await waitRows((RECORDS * 2) / 5, 60_000);
    await killHard(workers[1]!);
    // And the server itself restarts mid-stream: the survivor reconnects, nothing lost or repeated.
    await waitRows((RECORDS * 3) / 5, 60_000);
    await nats.restart();

    await waitRows(RECORDS, RECORDS / RATE * 1000 + 90_000);
    // Give a late duplicate (if any) the time to show up.
    await new Promise((r) => setTimeout(r, TTL_MS * 2));
    const final = await rows();
    expect(final.distinct).toBe(RECORDS);
    expect(final.total).toBe(RECORDS);

    workers[2]!.child.kill('SIGTERM');
    expect(await workers[2]!.exited).toBe(0);
  }, 300_000);
});
