/**
 * Sync databases in real time (issue 5 item 3): a table in one database → postgres_cdc → topic →
 * postgres sink (apply) → the same table in another database, under a mixed insert / update /
 * delete load, while `sluice run` is SIGKILLed and restarted again and again. At the end the
 * target equals the source, every column of every row. SLUICE_SYNC_KILLS and SLUICE_SYNC_SECONDS
 * make it longer, e.g. SLUICE_SYNC_KILLS=50 SLUICE_SYNC_SECONDS=300 npx vitest run test/connectors/postgres/sync-crash.test.ts
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { startPostgres, type PgServer } from '../../support/postgres.js';
import { killHard, startSluice, stderrOf, type SluiceProcess } from '../../support/sluice-process.js';

const KILLS = Number(process.env.SLUICE_SYNC_KILLS ?? 6);
const SECONDS = Number(process.env.SLUICE_SYNC_SECONDS ?? 20);

const DDL = `
  create type mood as enum ('calm', 'busy', 'on fire');
  create table public.orders (
    id bigint primary key,
    customer text not null,
    amount numeric(20, 6),
    big int8,
    ratio double precision,
    tags text[],
    meta jsonb,
    blob bytea,
    created timestamptz,
    mood mood,
    note text
  );
  alter table public.orders alter column note set storage external;`;

let server: PgServer;
let sourceUrl: string;
let targetUrl: string;
let dir: string;
const procs: SluiceProcess[] = [];

beforeAll(async () => {
  server = await startPostgres();
  [sourceUrl, targetUrl] = await Promise.all([server.createDatabase('sync_source'), server.createDatabase('sync_target')]);
  for (const url of [sourceUrl, targetUrl]) await query(url, DDL);
  dir = await mkdtemp(join(tmpdir(), 'sluice-sync-'));
  await writeFile(
    join(dir, 'pipelines.yaml'),
    `version: 1
log: { data_dir: ./data }
admin: { listen: "127.0.0.1:0" }
topics:
  cdc-orders: { partitions: 3 }
pipelines:
  orders-sync:
    source: { type: postgres_cdc, url: "${sourceUrl}", tables: [public.orders] }
    topic: cdc-orders
    sinks:
      replica: { type: postgres, url: "${targetUrl}", mode: apply, table: orders }
`,
  );
}, 120_000);

afterAll(async () => {
  await Promise.allSettled(procs.map(killHard));
  await server?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function query(url: string, sql: string, params: unknown[] = []): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await client.query(sql, params);
  } finally {
    await client.end();
  }
}

/** Every row, every column, as Postgres renders it: equal text means equal data. */
async function snapshot(url: string): Promise<string[]> {
  const r = await query(url, 'select row_to_json(o)::text as row from public.orders o order by id');
  return r.rows.map((x: { row: string }) => x.row);
}

/** A deterministic pseudo-random generator, so a failing run can be replayed. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Mixed transactions on the source until `until` says stop; returns how many it committed. */
async function load(until: () => boolean): Promise<number> {
  const random = rng(42);
  const client = new pg.Client({ connectionString: sourceUrl });
  await client.connect();
  const live: number[] = [];
  let nextId = 1;
  let txns = 0;
  const moods = ['calm', 'busy', 'on fire'];
  const row = (id: number) => [
    id,
    `customer ${Math.floor(random() * 1000)} "quoted" ü`,
    (random() * 1e9).toFixed(6),
    (BigInt(2) ** 60n + BigInt(Math.floor(random() * 1e6))).toString(),
    random() * 1000,
    ['a', `b ${id}`, null],
    { id, nested: { list: [1, 2.5, 'x'], flag: random() < 0.5 } },
    Buffer.from([id & 0xff, 0, 0xff, Math.floor(random() * 256)]),
    // Microseconds: three more digits after the milliseconds.
    new Date(Date.UTC(2026, 0, 1) + Math.floor(random() * 1e9)).toISOString().replace('Z', `${String(Math.floor(random() * 1000)).padStart(3, '0')}+00:00`),
    moods[Math.floor(random() * 3)],
    random() < 0.3 ? 'x'.repeat(20_000) + id : random() < 0.5 ? null : `short ${id}`,
  ];
  try {
    while (!until()) {
      await client.query('begin');
      const ops = 1 + Math.floor(random() * 5);
      for (let i = 0; i < ops; i++) {
        const r = random();
        if (r < 0.5 || live.length < 10) {
          const id = nextId++;
          await client.query(
            'insert into public.orders values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)',
            row(id),
          );
          live.push(id);
        } else if (r < 0.85) {
          const id = live[Math.floor(random() * live.length)]!;
          if (random() < 0.5) {
            // Leaves the TOASTed note unchanged: the sink must keep it.
            await client.query('update public.orders set amount = $2, tags = $3, mood = $4 where id = $1', [
              id,
              (random() * 1e6).toFixed(6),
              [`t${Math.floor(random() * 10)}`],
              moods[Math.floor(random() * 3)],
            ]);
          } else {
            const [, ...rest] = row(id);
            await client.query(
              'update public.orders set customer = $2, amount = $3, big = $4, ratio = $5, tags = $6, meta = $7, blob = $8, created = $9, mood = $10, note = $11 where id = $1',
              [id, ...rest],
            );
          }
        } else {
          const at = Math.floor(random() * live.length);
          const id = live[at]!;
          live.splice(at, 1);
          await client.query('delete from public.orders where id = $1', [id]);
        }
      }
      await client.query('commit');
      txns++;
      await new Promise((r) => setTimeout(r, 2));
    }
  } finally {
    await client.end();
  }
  return txns;
}

describe('sync: Postgres table → CDC → topic → Postgres apply, with SIGKILLs', () => {
  it(`keeps the target equal to the source across ${KILLS} kills`, async () => {
    let stop = false;
    const loading = load(() => stop);
    const endAt = Date.now() + SECONDS * 1000;
    const killEvery = (SECONDS * 1000) / (KILLS + 1);
    let run = startSluice('run 0', join(dir, 'pipelines.yaml'), dir);
    procs.push(run);
    for (let k = 1; k <= KILLS; k++) {
      await new Promise((r) => setTimeout(r, killEvery * (0.5 + Math.random())));
      await killHard(run);
      run = startSluice(`run ${k}`, join(dir, 'pipelines.yaml'), dir);
      procs.push(run);
    }
    await new Promise((r) => setTimeout(r, Math.max(0, endAt - Date.now())));
    stop = true;
    const txns = await loading;
    expect(txns).toBeGreaterThan(100);

    const want = await snapshot(sourceUrl);
    expect(want.length).toBeGreaterThan(50);
    expect(want.some((r) => r.includes('x'.repeat(20_000)))).toBe(true);
    const deadline = Date.now() + 120_000;
    let got = await snapshot(targetUrl);
    while (JSON.stringify(got) !== JSON.stringify(want) && Date.now() < deadline) {
      if (run.child.exitCode !== null) throw new Error(`sluice run exited with ${run.child.exitCode}\n${stderrOf([run])}`);
      await new Promise((r) => setTimeout(r, 500));
      got = await snapshot(targetUrl);
    }
    if (got.length !== want.length) throw new Error(`target has ${got.length} rows, source ${want.length}\n${stderrOf(procs.slice(-3))}`);
    expect(got).toEqual(want);

    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(0);
  }, 600_000);
});
