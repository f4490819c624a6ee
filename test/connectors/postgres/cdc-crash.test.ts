/**
 * `sluice run` with a postgres_cdc pipeline, as a real process: SIGKILLed during streaming and
 * during the snapshot, and the Postgres server restarted during streaming. Every change must be
 * in the topic exactly once (after the last `t` event of an interrupted snapshot). Also
 * `sluice pipelines drop`. Needs `npm run build` (dist/).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLocalLog } from '../../../core/log/local/index.js';
import { startPostgres, type PgServer } from '../../support/postgres.js';
import { sql, type Event } from './cdc-helpers.js';

const MAIN = join(process.cwd(), 'dist/core/cli/main.js');
const KILLS = Number(process.env.SLUICE_PG_CRASH_RUNS ?? 4);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let pgs: PgServer;
const dirs: string[] = [];

beforeAll(async () => {
  pgs = await startPostgres();
}, 120_000);
afterAll(async () => {
  await pgs?.stop();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

function config(url: string, extra = ''): string {
  return `version: 1
log: { data_dir: ./data }
admin: { listen: "127.0.0.1:0" }
pipelines:
  orders:
    source: { type: postgres_cdc, url: "${url}", tables: [public.items], snapshot_fetch_rows: 500, max_batch_records: 500${extra} }
    topic: "cdc.{{ source.table }}"
`;
}

interface Running {
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal: NodeJS.Signals): void;
  stderr(): string;
  /** The source's committed position and records_in from the admin API. */
  status(): Promise<{ position: unknown; recordsIn: number } | null>;
}

function run(dir: string, args = ['run', '-c', 'pipelines.yaml']): Running {
  const child = spawn(process.execPath, [MAIN, ...args], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, SLUICE_LOG_LEVEL: 'info' } });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.on('exit', (code, signal) => r({ code, signal })));
  return {
    exited,
    kill: (s) => child.kill(s),
    stderr: () => stderr,
    async status() {
      const m = /admin: (http:\/\/[0-9.:]+)/.exec(stderr);
      if (m === null) return null;
      try {
        const s = (await (await fetch(`${m[1]}/api/status`)).json()) as { pipelines: { source: { position: unknown }; records_in: number }[] };
        return { position: s.pipelines[0]!.source.position, recordsIn: s.pipelines[0]!.records_in };
      } catch {
        return null;
      }
    },
  };
}

async function topicEvents(dir: string, topic = 'cdc.items'): Promise<Event[]> {
  const log = await openLocalLog({ dir: join(dir, 'data'), retentionSchedule: false });
  try {
    const out: Event[] = [];
    const { partitions } = await log.describeTopic(topic);
    for (let p = 0; p < partitions; p++) {
      for (let off = 0; ; ) {
        const r = await log.read(topic, p, off, { maxBytes: 4 << 20 });
        if (r.records.length === 0) break;
        for (const rec of r.records) out.push(JSON.parse(rec.value.toString('utf8')) as Event);
        off = r.nextOffset;
      }
    }
    return out;
  } finally {
    await log.close();
  }
}

/** A writer: transactions of a few inserts and an update, numbered; returns the changes made. */
function writer(url: string) {
  let stop = false;
  let next = 1;
  let changes = 0;
  let failures = 0;
  const done = (async () => {
    while (!stop) {
      const ids = [next, next + 1, next + 2];
      next += 3;
      try {
        await sql(url, `BEGIN; INSERT INTO items (id, v) VALUES (${ids[0]}, 0), (${ids[1]}, 0), (${ids[2]}, 0); UPDATE items SET v = v + 1 WHERE id = ${ids[0]}; COMMIT`);
        changes += 4;
      } catch {
        failures++; // the server is restarting: this transaction did not commit
        await sleep(100);
      }
      await sleep(5);
    }
  })();
  return {
    async stop() {
      stop = true;
      await done;
      return { changes, failures };
    },
  };
}

async function waitFor(what: string, cond: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/**
 * Runs sluice until its source is caught up (the number of records it took in is steady for 2 s,
 * and at least `min`), then stops it cleanly.
 */
async function drain(dir: string, min = 0): Promise<void> {
  const r = run(dir);
  try {
    let last = -1;
    let steadySince = Date.now();
    await waitFor('the source to catch up', async () => {
      const n = (await r.status())?.recordsIn ?? -1;
      if (n !== last) {
        last = n;
        steadySince = Date.now();
      }
      return n >= min && Date.now() - steadySince > 2000;
    }, 90_000);
  } finally {
    r.kill('SIGTERM');
    await r.exited;
  }
}

/**
 * The events after the last `t` (a snapshot that started over), replayed, give exactly the table;
 * snapshot rows are unique; streamed changes, each identified by its LSN, come exactly once and
 * number `streamedExpected` when given.
 */
async function checkExactlyOnce(url: string, events: Event[], streamedExpected?: number): Promise<void> {
  const lastT = events.map((e) => e.op).lastIndexOf('t');
  const tail = events.slice(lastT + 1);
  const snap = tail.filter((e) => e.op === 'r');
  expect(new Set(snap.map((e) => e.after!.id)).size).toBe(snap.length);
  const streamed = tail.filter((e) => !e.source.snapshot);
  const seen = new Map<string, number>();
  for (const e of streamed) seen.set(`${e.source.lsn}/${e.op}`, (seen.get(`${e.source.lsn}/${e.op}`) ?? 0) + 1);
  expect([...seen].filter(([, n]) => n > 1)).toEqual([]);
  if (streamedExpected !== undefined) expect(streamed.length).toBe(streamedExpected);
  const rows = new Map<number, number>();
  for (const e of tail) {
    if (e.op === 'r' || e.op === 'c') {
      expect(rows.has(e.after!.id as number)).toBe(false);
      rows.set(e.after!.id as number, e.after!.v as number);
    } else if (e.op === 'u') {
      expect(rows.has(e.after!.id as number)).toBe(true);
      rows.set(e.after!.id as number, e.after!.v as number);
    } else if (e.op === 'd') rows.delete(e.before!.id as number);
  }
  const table = (await sql(url, 'SELECT id, v FROM items ORDER BY id')).rows as { id: number; v: number }[];
  expect([...rows].sort((a, b) => a[0] - b[0])).toEqual(table.map((r) => [r.id, r.v]));
}

async function newDir(url: string, extra = ''): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-pgcdc-crash-'));
  dirs.push(dir);
  await writeFile(join(dir, 'pipelines.yaml'), config(url, extra));
  return dir;
}

describe.skipIf(!existsSync(MAIN))('postgres_cdc under crashes', () => {
  it(`every change exactly once after ${KILLS} SIGKILLs during streaming`, async () => {
    const url = await pgs.createDatabase('crash_stream');
    await sql(url, 'CREATE TABLE items (id int PRIMARY KEY, v int)');
    const dir = await newDir(url);
    await drain(dir); // slot and (empty) snapshot first: every change below is streamed
    const w = writer(url);
    for (let i = 0; i < KILLS; i++) {
      const r = run(dir);
      await waitFor('records flowing', async () => ((await r.status())?.recordsIn ?? 0) > 0, 30_000);
      await sleep(300 + Math.random() * 700);
      r.kill('SIGKILL');
      await r.exited;
      await sleep(Math.random() * 300);
    }
    const { changes } = await w.stop();
    await drain(dir);
    await checkExactlyOnce(url, await topicEvents(dir), changes);
  }, 180_000);

  it('a SIGKILL during the snapshot: the snapshot starts over after t, changes exactly once', async () => {
    const url = await pgs.createDatabase('crash_snapshot');
    await sql(url, 'CREATE TABLE items (id int PRIMARY KEY, v int); INSERT INTO items SELECT g + 1000000, 0 FROM generate_series(1, 40000) g');
    const dir = await newDir(url);
    const r = run(dir);
    await waitFor('the snapshot under way', async () => {
      const s = await r.status();
      return s !== null && typeof s.position === 'object' && s.position !== null && 'snapshot' in s.position && s.recordsIn >= 1000;
    });
    r.kill('SIGKILL');
    await r.exited;
    // Changes go on while sluice is down and while the new snapshot is read.
    const w = writer(url);
    await sleep(300);
    const r2 = run(dir);
    await waitFor('the new snapshot done', async () => {
      const s = await r2.status();
      return s !== null && typeof s.position === 'object' && s.position !== null && 'lsn' in s.position;
    });
    await sleep(500);
    const { changes } = await w.stop();
    r2.kill('SIGKILL');
    await r2.exited;
    await drain(dir);
    const events = await topicEvents(dir);
    expect(events.map((e) => e.op).lastIndexOf('t')).toBeGreaterThan(0);
    expect(changes).toBeGreaterThan(0);
    await checkExactlyOnce(url, events);
  }, 180_000);

  it('a server restart during streaming: reconnects with backoff, every change exactly once', async () => {
    const url = await pgs.createDatabase('crash_restart');
    await sql(url, 'CREATE TABLE items (id int PRIMARY KEY, v int)');
    const dir = await newDir(url);
    await drain(dir);
    const r = run(dir);
    const w = writer(url);
    try {
      await waitFor('records flowing', async () => ((await r.status())?.recordsIn ?? 0) > 100, 30_000);
      await pgs.restart();
      const before = (await r.status())?.recordsIn ?? 0;
      await waitFor('records flowing again', async () => ((await r.status())?.recordsIn ?? 0) > before + 100, 60_000);
    } finally {
      var { changes } = await w.stop();
      r.kill('SIGTERM');
      await r.exited;
    }
    expect(r.stderr()).toMatch(/restarting in/);
    await drain(dir);
    await checkExactlyOnce(url, await topicEvents(dir), changes);
  }, 180_000);

  it('sluice pipelines drop removes the slot and publication and resets the position', async () => {
    const url = await pgs.createDatabase('drop');
    await sql(url, 'CREATE TABLE items (id int PRIMARY KEY, v int); INSERT INTO items VALUES (1, 1)');
    const dir = await newDir(url);
    await drain(dir, 1);
    expect((await sql(url, "SELECT 1 FROM pg_replication_slots WHERE slot_name = 'sluice_orders'")).rowCount).toBe(1);
    const d = run(dir, ['pipelines', 'drop', 'orders', '-c', 'pipelines.yaml']);
    expect((await d.exited).code).toBe(0);
    expect((await sql(url, "SELECT 1 FROM pg_replication_slots WHERE slot_name = 'sluice_orders'")).rowCount).toBe(0);
    expect((await sql(url, "SELECT 1 FROM pg_publication WHERE pubname = 'sluice_orders'")).rowCount).toBe(0);
    // The next run starts over: a new slot and a new snapshot.
    await drain(dir, 1);
    const events = await topicEvents(dir);
    expect(events.filter((e) => e.op === 'r').length).toBe(2);
    // Unknown pipeline: a clear error.
    const bad = run(dir, ['pipelines', 'drop', 'nope', '-c', 'pipelines.yaml']);
    expect((await bad.exited).code).toBe(1);
    expect(bad.stderr()).toMatch(/no pipeline "nope"/);
  }, 120_000);
});
