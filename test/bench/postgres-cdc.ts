/**
 * Postgres CDC benchmark: 1,000,000 inserted rows (transactions of 1,000) read from a replication
 * slot and made durable in the log by `sluice`'s runtime, beside `pg_recvlogical` with pgoutput
 * (proto_version 1, publication_names) reading the same changes to a file in the same run. Both
 * slots exist before the rows go in, so both read the same WAL backlog.
 *
 *   npm run bench -- postgres-cdc [--rows 1000000] [--txn 1000] [--rounds 3] [--source-only]
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import pg from 'pg';
import { openLocalLog } from '../../core/log/local/index.js';
import { parsePipelines } from '../../core/pipeline/config.js';
import { PipelineRuntime } from '../../core/pipeline/runtime.js';
import { pipelinesSchema } from '../../core/pipeline/setup.js';
import { builtinSinks, builtinSources } from '../../connectors/registry.js';
import { postgresCdcSource } from '../../connectors/postgres/cdc.js';
import { findPgBinDir, startPostgres, type PgServer } from '../support/postgres.js';
import { arg, fmt, machine, peakRssMiB, tempDir, timed, type Figure } from './util.js';

const REGISTRY = { sources: builtinSources, sinks: builtinSinks };
const SLOT_RECV = 'bench_recvlogical';
const SLOT_SLUICE = 'sluice_bench';
const PUB = 'bench_pub';

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** Fresh slots for both readers, then the rows: returns the WAL end after the last commit. */
async function prepare(url: string, rows: number, txn: number): Promise<string> {
  return withClient(url, async (c) => {
    await c.query('DROP TABLE IF EXISTS bench; DROP PUBLICATION IF EXISTS bench_pub');
    for (const s of [SLOT_RECV, SLOT_SLUICE]) await c.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1', [s]);
    await c.query('CREATE TABLE bench (id int8 PRIMARY KEY, name text NOT NULL, amount numeric(12,2), qty int4, created timestamptz NOT NULL)');
    await c.query(`CREATE PUBLICATION ${PUB} FOR TABLE bench`);
    for (const s of [SLOT_RECV, SLOT_SLUICE]) await c.query("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", [s]);
    for (let next = 1; next <= rows; next += txn) {
      await c.query(
        "INSERT INTO bench SELECT g, 'customer ' || g, (g % 100000) / 100.0, g % 17, now() FROM generate_series($1::int8, $2::int8) g",
        [next, Math.min(rows, next + txn - 1)],
      );
    }
    return (await c.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0]!.lsn;
  });
}

async function recvlogical(pgs: PgServer, dir: string, endLsn: string, rows: number): Promise<Figure> {
  const bin = join(await findPgBinDir(), 'pg_recvlogical');
  return timed('pg_recvlogical (pgoutput) → file', rows, 0, () =>
    new Promise<void>((resolve, reject) => {
      const child = spawn(bin, [
        '-h', pgs.host, '-p', String(pgs.port), '-U', 'postgres', '-d', 'bench', '--slot', SLOT_RECV, '--start',
        '-o', 'proto_version=1', '-o', `publication_names=${PUB}`, '-E', endLsn, '--no-loop', '-f', join(dir, 'recvlogical.out'),
      ], { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.on('error', reject);
      child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`pg_recvlogical exited ${code}: ${err}`))));
    }),
  );
}

async function sluice(dir: string, url: string, rows: number): Promise<Figure> {
  const text = `version: 1
log: { data_dir: ./data }
pipelines:
  bench:
    source: { type: postgres_cdc, url: "${url}", tables: [public.bench], publication: ${PUB}, slot: ${SLOT_SLUICE}, snapshot: never }
    topic: "cdc.{{ source.table }}"
`;
  const config = parsePipelines(text, 'bench.yaml', dir, pipelinesSchema(REGISTRY));
  const log = await openLocalLog({ dir: config.log.dataDir, retentionSchedule: false });
  const quiet = { info: () => undefined, warn: (m: string) => console.error(m), error: (m: string) => console.error(m) };
  const runtime = new PipelineRuntime(config, { log, ...REGISTRY, logger: quiet });
  const fig = await timed('sluice: slot → log (durable), runtime', rows, 0, async () => {
    await runtime.start();
    for (;;) {
      const s = runtime.status() as { pipelines: { records_in: number }[] };
      if (s.pipelines[0]!.records_in >= rows) break;
      await new Promise((r) => setTimeout(r, 5));
    }
  });
  await runtime.stop(5000);
  await log.close();
  return fig;
}

/** The source alone: decode and ack at once, no log (the connector's own ceiling). */
async function sourceOnly(url: string, rows: number): Promise<Figure> {
  const abort = new AbortController();
  const source = postgresCdcSource.create(
    { url, tables: ['public.bench'], publication: PUB, slot: SLOT_SLUICE, snapshot: 'never' },
    { pipeline: 'bench', baseDir: '.', signal: abort.signal, log: () => undefined },
  );
  await source.open(undefined);
  let n = 0;
  const fig = await timed('sluice source only: slot → JSON (no log)', rows, 0, async () => {
    while (n < rows) {
      const b = await source.read();
      if (b === null) break;
      n += b.records.length;
      for (const r of b.records) if (r.encoded === undefined) throw new Error('expected pre-encoded values');
    }
  });
  abort.abort();
  await source.close();
  return fig;
}

export async function benchPostgresCdc(args: string[]): Promise<string[]> {
  const rows = Number(arg(args, 'rows', '1000000'));
  const txn = Number(arg(args, 'txn', '1000'));
  const rounds = Number(arg(args, 'rounds', '3'));
  const only = args.includes('--source-only');
  const lines = [`machine: ${machine()}`, `${rows} inserted rows in transactions of ${txn}, ${rounds} rounds (each: fresh slots, pg_recvlogical then sluice)`];
  const pgs = await startPostgres({ settings: { shared_buffers: '256MB', max_wal_size: '4GB', logical_decoding_work_mem: '64MB' } });
  try {
    const url = await pgs.createDatabase('bench');
    for (let i = 0; i < rounds; i++) {
      const { dir, remove } = tempDir('sluice-bench-pgcdc');
      try {
        const endLsn = await prepare(url, rows, txn);
        const base = await recvlogical(pgs, dir, endLsn, rows);
        const cpu0 = process.cpuUsage();
        if (process.env.SLUICE_BENCH_MARK) console.error('phase start', String(process.hrtime.bigint() / 1000n));
        const ours = only ? await sourceOnly(url, rows) : await sluice(dir, url, rows);
        const cpu = process.cpuUsage(cpu0);
        if (process.env.SLUICE_BENCH_MARK) console.error('phase end', String(process.hrtime.bigint() / 1000n));
        const cpuShare = (cpu.user + cpu.system) / 1e6 / ours.seconds;
        const b = rows / base.seconds;
        const o = rows / ours.seconds;
        lines.push(`round ${i + 1}: ${base.name} ${fmt(b)} changes/s; ${ours.name} ${fmt(o)} changes/s → ${(o / b).toFixed(2)}× (sluice: ${(cpuShare * 100).toFixed(0)}% of a core, ${(((cpu.user + cpu.system) / rows)).toFixed(2)} µs CPU per change)`);
      } finally {
        remove();
      }
    }
  } finally {
    await pgs.stop();
  }
  lines.push(`peak RSS: ${peakRssMiB().toFixed(0)} MiB`);
  return lines;
}
