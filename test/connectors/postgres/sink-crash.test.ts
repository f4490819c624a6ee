/**
 * Crash test of the postgres sink: a child `sluice run` (generate → topic of 3 partitions →
 * postgres sink, append mode into a table without a unique key, so a repeat would show) is
 * SIGKILLed at random moments and restarted; the table must hold every record exactly once.
 * A second case kills it while it loads a backlog (a topic filled before it starts), when each
 * partition's reads go into one COPY and one transaction (Sink.writeSpan).
 *   SLUICE_PG_CRASH_RUNS=50 SLUICE_PG_CRASH_RECORDS=200000 npx vitest run test/connectors/postgres/sink-crash
 */
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { describe, expect, it, onTestFinished } from 'vitest';
import { SLUICE_MAIN, killHard, startSluice } from '../../support/sluice-process.js';
import { openLocalLog } from '../../../core/log/local/index.js';
import { generateEvent } from '../../../connectors/generate/index.js';
import { privateCluster, query } from './sink-helpers.js';

const RUNS = Number(process.env.SLUICE_PG_CRASH_RUNS ?? 12);
const RECORDS = Number(process.env.SLUICE_PG_CRASH_RECORDS ?? 40_000);
const RATE = Number(process.env.SLUICE_PG_CRASH_RATE ?? 4_000);

const cluster = privateCluster();

describe('crash: sluice run with a postgres sink, killed with SIGKILL', () => {
  it.skipIf(!existsSync(SLUICE_MAIN))(`holds every record exactly once after ${RUNS} kills`, async () => {
    const url = await cluster.server().createDatabase('crash');
    await query(url, 'CREATE TABLE events (id bigint NOT NULL, timestamp text, level text, service text, message text)');
    const dir = await cluster.tempDir('sluice-pgcrash-');
    await writeFile(
      join(dir, 'pipelines.yaml'),
      `version: 1
log: { data_dir: ./data }
admin: { listen: "127.0.0.1:0" }
topics:
  events: { partitions: 3 }
pipelines:
  gen:
    source: { type: generate, count: ${RECORDS}, seed: 7, batch_size: 250, rate_per_sec: ${RATE} }
    topic: events
    key: "{{ service }}"
    sinks:
      db: { type: postgres, url: "\${TARGET_PG_URL}", table: events, batch_max_rows: 500 }
`,
    );
    const config = join(dir, 'pipelines.yaml');
    const env = { TARGET_PG_URL: url };
    const counts = async (): Promise<{ n: number; d: number }> => {
      const [r] = await query<{ n: string; d: string }>(url, 'SELECT count(*) AS n, count(DISTINCT id) AS d FROM events');
      return { n: Number(r!.n), d: Number(r!.d) };
    };
    const progress: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const run = startSluice(`run ${i}`, config, dir, env);
      await new Promise((r) => setTimeout(r, 300 + Math.random() * 1500));
      if (run.child.exitCode !== null) expect.fail(`run ${i} ended by itself (code ${run.child.exitCode}) before the kill: ${run.stderr()}`);
      await killHard(run);
      // Never a repeat, even between runs.
      const { n, d } = await counts();
      expect(n).toBe(d);
      progress.push(n);
    }
    const midStream = progress.filter((n) => n > 0 && n < RECORDS).length;
    expect(midStream, `rows after each kill: ${progress.join(', ')}`).toBeGreaterThanOrEqual(Math.min(RUNS, 6));
    const last = startSluice('last', config, dir, { ...env, SLUICE_LOG_LEVEL: 'info' });
    const deadline = Date.now() + 180_000;
    while (!last.stderr().includes('sluice is running') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    let c = await counts();
    while (c.n < RECORDS && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      c = await counts();
    }
    last.child.kill('SIGTERM');
    expect(await last.exited, last.stderr()).toBe(0);
    const ids = (await query<{ id: string }>(url, 'SELECT id FROM events ORDER BY id')).map((r) => Number(r.id));
    expect(ids.length).toBe(RECORDS);
    for (let i = 0; i < RECORDS; i++) if (ids[i] !== i) expect.fail(`id ${i} is ${ids[i]! > i ? 'missing' : 'repeated'}`);
    const offsets = await query<{ n: string }>(url, 'SELECT sum(next_offset) AS n FROM sluice_offsets');
    expect(Number(offsets[0]!.n)).toBe(RECORDS);
  }, 600_000);

  it.skipIf(!existsSync(SLUICE_MAIN))('holds every record exactly once when killed while loading a backlog as spans of reads', async () => {
    const records = Number(process.env.SLUICE_PG_CRASH_BACKLOG ?? 450_000);
    const url = await cluster.server().createDatabase('crash_backlog');
    await query(url, 'CREATE TABLE events (id bigint NOT NULL, timestamp text, level text, service text, message text)');
    const dir = await cluster.tempDir('sluice-pgspan-');
    // The topic is full before the sink starts: ~20 MB per partition, five reads or more each.
    const log = await openLocalLog({ dir: join(dir, 'data'), retentionSchedule: false });
    await log.createTopic('events', { partitions: 3 });
    const now = Date.now();
    for (let i = 0; i < records; i += 3000) {
      const ids = Array.from({ length: Math.min(3000, records - i) }, (_, j) => i + j);
      await log.append('events', ids.map((id) => ({ partition: id % 3, value: JSON.stringify(generateEvent(7, id, ['api', 'web'], now)) })));
    }
    await log.close();
    await writeFile(
      join(dir, 'pipelines.yaml'),
      `version: 1
log: { data_dir: ./data }
admin: { listen: "127.0.0.1:0" }
topics:
  events: { partitions: 3 }
pipelines:
  load:
    topic: events
    sinks:
      db: { type: postgres, url: "\${TARGET_PG_URL}", table: events, batch_max_rows: 90000 }
`,
    );
    const config = join(dir, 'pipelines.yaml');
    const env = { TARGET_PG_URL: url };
    const progress: number[] = [];
    // One connection for the polling below: a new one per query would make it too slow to see a span under way.
    const watch = new pg.Client({ connectionString: url });
    await watch.connect();
    onTestFinished(() => watch.end());
    const counts = async (): Promise<{ n: number; d: number }> => {
      const [c] = (await watch.query<{ n: string; d: string }>('SELECT count(*) AS n, count(DISTINCT id) AS d FROM events')).rows;
      return { n: Number(c!.n), d: Number(c!.d) };
    };
    const copying = async (): Promise<boolean> =>
      (await watch.query("SELECT 1 FROM pg_stat_activity WHERE application_name LIKE 'sluice load/%' AND state = 'active' AND query LIKE 'COPY%'")).rows.length > 0;
    for (let i = 0; i < RUNS && progress.at(-1) !== records; i++) {
      const run = startSluice(`run ${i}`, config, dir, env);
      // Killed while a span's COPY is under way: 0–250 ms after one is seen (a span takes ~150 ms here).
      const deadline = Date.now() + 30_000;
      while (!(await copying()) && (await counts()).n < records && run.child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, Math.random() * 250));
      if (run.child.exitCode !== null) expect.fail(`run ${i} ended by itself (code ${run.child.exitCode}) before the kill: ${run.stderr()}`);
      await killHard(run);
      const { n, d } = await counts();
      expect(n).toBe(d);
      progress.push(n);
    }
    // At least one kill landed before the load was done (on a busy machine the first run may get far).
    expect(progress.filter((n) => n < records).length, `rows after each kill: ${progress.join(', ')}`).toBeGreaterThanOrEqual(1);
    const last = startSluice('last', config, dir, { ...env, SLUICE_LOG_LEVEL: 'info' });
    const deadline = Date.now() + 180_000;
    while (!last.stderr().includes('sluice is running') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    while ((await counts()).n < records && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    last.child.kill('SIGTERM');
    expect(await last.exited, last.stderr()).toBe(0);
    const ids = (await query<{ id: string }>(url, 'SELECT id FROM events ORDER BY id')).map((r) => Number(r.id));
    expect(ids.length, `rows after each kill: ${progress.join(', ')}`).toBe(records);
    for (let i = 0; i < records; i++) if (ids[i] !== i) expect.fail(`id ${i} is ${ids[i]! > i ? 'missing' : 'repeated'}`);
    // Spans were written: transactions with more rows than one 4 MiB read holds (~30,000).
    const big = await query<{ rows: string }>(url, 'SELECT count(*) AS rows FROM events GROUP BY xmin::text HAVING count(*) > 40000');
    expect(big.length, `rows after each kill: ${progress.join(', ')}`).toBeGreaterThan(0);
    const offsets = await query<{ n: string }>(url, 'SELECT sum(next_offset) AS n FROM sluice_offsets');
    expect(Number(offsets[0]!.n)).toBe(records);
  }, 600_000);
});
