/**
 * Postgres sink benchmark on a private cluster (test/support/postgres.ts: fsync off, like every
 * test cluster): rows/s of the sink's `append` mode beside plain COPY of the same rows into the
 * same table shape, in the same run; then `upsert` (new keys, then every key again) and `apply`
 * (inserts, full-row updates, updates with an unchanged-TOAST column, deletes as CDC events).
 *
 *   npm run bench -- postgres-sink [--rows 1000000] [--rounds 1] [--only append]
 *
 * The sink gets batches of about 4 MiB of records, as the runtime reads them from the log, through
 * writeSpan as the runtime hands over a backlog (append: one COPY across reads, up to batch_max_rows),
 * and once more through write, a transaction per read, as when the sink keeps up with its source.
 * The records' JSON bytes are made before the clock starts (they come from the log), their parsing
 * is timed. The COPY baseline streams prebuilt COPY text (what `psql \copy` of a file does).
 */
import { from as copyFrom } from 'pg-copy-streams';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { generateEvent } from '../../connectors/generate/index.js';
import { UNCHANGED_TOAST, postgresSink, type PostgresSinkConfig } from '../../connectors/postgres/sink.js';
import type { SinkBatch, SinkRecord } from '../../connectors/sdk.js';
import { startPostgres, type PgServer } from '../support/postgres.js';
import { arg, machine, peakRssMiB, rate, row, tempDir, timed, type Figure } from './util.js';
import { openLocalLog } from '../../core/log/local/index.js';

const SERVICES = ['api', 'web', 'worker', 'billing'];
/** The runtime reads 4 MiB at a time (SINK_READ_BYTES in core/pipeline/runtime.ts); `SLUICE_BENCH_BATCH_BYTES` changes it here to see what a transaction costs. */
const BATCH_BYTES = Number(process.env.SLUICE_BENCH_BATCH_BYTES ?? 4 * 1024 * 1024);
const TABLE = 'CREATE TABLE events (id bigint PRIMARY KEY, timestamp text, level text, service text, message text)';

class Rec implements SinkRecord {
  private parsed: unknown = undefined;
  readonly topic = 'events';
  readonly partition = 0;
  readonly key = null;
  readonly headers = {};
  constructor(
    readonly offset: number,
    readonly timestamp: number,
    readonly raw: Buffer,
  ) {}
  get value(): unknown {
    return (this.parsed ??= JSON.parse(this.raw.toString('utf8')));
  }
}

interface Made {
  raws: Buffer[];
  bytes: number;
}

/** The records' JSON bytes, as they sit in the log: slices of large read buffers. */
function made(rows: number, value: (id: number) => unknown): Made {
  const raws: Buffer[] = [];
  let bytes = 0;
  for (let start = 0; start < rows; start += 8192) {
    const texts: string[] = [];
    for (let id = start; id < Math.min(rows, start + 8192); id++) texts.push(JSON.stringify(value(id)));
    const buf = Buffer.from(texts.join(''));
    let at = 0;
    for (const t of texts) {
      const len = Buffer.byteLength(t);
      raws.push(buf.subarray(at, at + len));
      at += len;
    }
    bytes += buf.length;
  }
  return { raws, bytes };
}

/** Fresh (unparsed) records in batches of about BATCH_BYTES, offsets from 0, as the runtime reads them. */
function batches(m: Made): (SinkBatch | undefined)[] {
  const out: SinkBatch[] = [];
  let records: SinkRecord[] = [];
  let size = 0;
  for (let id = 0; id < m.raws.length; id++) {
    const raw = m.raws[id]!;
    records.push(new Rec(id, 0, raw));
    size += raw.length;
    if (size >= BATCH_BYTES || id === m.raws.length - 1) {
      out.push({ topic: 'events', partition: 0, records, nextOffset: id + 1, fence: 0 });
      records = [];
      size = 0;
    }
  }
  return out;
}

async function client(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  return c;
}

/** CPU seconds a process (a server backend) has used (Linux: /proc/<pid>/stat utime + stime, 100 ticks a second). */
function backendCpu(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** CPU used during a timed case: this process and the server backend doing the work. */
interface Cpu {
  nodeS: number;
  serverS: number;
}
const cpuOf = new WeakMap<Figure, Cpu>();

async function withCpu(pid: number, fn: () => Promise<Figure>): Promise<Figure> {
  const n0 = process.cpuUsage();
  const s0 = backendCpu(pid);
  const fig = await fn();
  const n = process.cpuUsage(n0);
  cpuOf.set(fig, { nodeS: (n.user + n.system) / 1e6, serverS: backendCpu(pid) - s0 });
  return fig;
}

/**
 * Every timed case starts on a freshly started server (a fast shutdown checkpoints) and a clean
 * page cache: the case before it leaves dirty pages in both, and shared buffers full of its own
 * pages, which the next load pays for (its backend evicting buffers to get free ones, the kernel
 * writing back hundreds of MB on the same two cores). Without the restart the case that ran
 * second was 20-40% slower whichever it was, even after a CHECKPOINT.
 */
async function fresh(server: PgServer): Promise<void> {
  await server.restart();
  spawnSync('sync');
}

async function backendPid(c: pg.Client): Promise<number> {
  return (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
}

/**
 * Plain COPY of prebuilt text: one statement for all rows, or (`statements`) one transaction of
 * BEGIN / COPY / COMMIT per group of that many rows — the sink's transactions, without the sink.
 */
async function plainCopy(server: PgServer, url: string, rows: number, now: number, statements?: number[]): Promise<Figure> {
  const groups: Buffer[][] = [];
  const sizes = statements ?? [rows];
  let bytes = 0;
  let id = 0;
  for (const size of sizes) {
    const chunks: Buffer[] = [];
    let text = '';
    for (const last = id + size - 1; id <= last; id++) {
      const e = generateEvent(42, id, SERVICES, now);
      text += `${e.id}\t${e.timestamp}\t${e.level}\t${e.service}\t${e.message}\n`;
      if (text.length >= 1024 * 1024 || id === last) {
        chunks.push(Buffer.from(text));
        bytes += text.length;
        text = '';
      }
    }
    groups.push(chunks);
  }
  await fresh(server);
  const c = await client(url);
  await c.query(TABLE);
  const name = statements === undefined ? 'plain COPY (prebuilt text, one transaction)' : `plain COPY in the sink's ${sizes.length} txn(s)`;
  const fig = await withCpu(await backendPid(c), () => timed(name, rows, bytes, async () => {
    for (const chunks of groups) {
      if (statements !== undefined) await c.query('BEGIN');
      const stream = c.query(copyFrom('COPY events (id, timestamp, level, service, message) FROM STDIN'));
      await new Promise<void>((resolve, reject) => {
        stream.on('error', reject);
        stream.on('finish', resolve);
        let i = 0;
        const more = (): void => {
          while (i < chunks.length) if (!stream.write(chunks[i++]!)) return void stream.once('drain', more);
          stream.end();
        };
        more();
      });
      if (statements !== undefined) await c.query('COMMIT');
    }
  }));
  await c.end();
  return fig;
}

/**
 * The sink fed as the runtime feeds it from a log that holds all the rows (a backlog): the batches
 * go through writeSpan, a read at a time (`spans: false`: through write, a transaction each, as
 * when the sink keeps up with its source). `txns` gets the rows of each transaction.
 */
async function viaSink(
  server: PgServer,
  url: string,
  name: string,
  config: Partial<PostgresSinkConfig>,
  m: Made,
  rows: number,
  o: { spans?: boolean; txns?: number[] } = {},
): Promise<Figure> {
  const sink = postgresSink.create({ url, table: 'events', ...config } as PostgresSinkConfig, {
    pipeline: 'bench',
    sink: name,
    baseDir: '.',
    signal: new AbortController().signal,
    log: () => undefined,
  });
  const list = batches(m);
  await fresh(server);
  await sink.open();
  const admin = await client(url);
  const app = `sluice bench/${name}`.slice(0, 63);
  const pid = (await admin.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE application_name = $1', [app])).rows[0]!.pid;
  await admin.end();
  const fig = await withCpu(pid, () => timed(name, rows, m.bytes, async () => {
    // Each batch is dropped once handed over, as the runtime does.
    let i = 0;
    const take = (): SinkBatch | null => {
      const b = list[i];
      list[i++] = undefined;
      return b ?? null;
    };
    while (i < list.length) {
      const first = take()!;
      let n = first.records.length;
      if (o.spans === false) await sink.write(first);
      else {
        await sink.writeSpan!(first, async () => {
          const b = take();
          n += b?.records.length ?? 0;
          return b;
        });
      }
      o.txns?.push(n);
    }
  }));
  await sink.close();
  return fig;
}

/**
 * `sluice run` itself: the records in a topic of the local log (one partition) before the clock
 * starts, then the real CLI in a child process (`node --max-semi-space-size=32 … run`, as the bin
 * runs it) with a sink-only pipeline (topic → postgres append), timed from its "sluice is running"
 * line until the offsets row reaches the end. The runtime reads the log, makes the record objects
 * and hands the backlog to the sink as spans; the child's CPU is its own (not this process's,
 * which holds every prebuilt record of the other cases).
 */
async function viaRuntime(server: PgServer, url: string, m: Made, rows: number): Promise<Figure> {
  const { dir, remove } = tempDir('sluice-bench-pgsink');
  try {
    const log = await openLocalLog({ dir: join(dir, 'data'), retentionSchedule: false });
    await log.createTopic('events', { partitions: 1 });
    for (let i = 0; i < m.raws.length; i += 8192) await log.append('events', m.raws.slice(i, i + 8192).map((value) => ({ value })));
    await log.close();
    writeFileSync(
      join(dir, 'bench.yaml'),
      `version: 1
log: { data_dir: ./data }
topics:
  events: { partitions: 1 }
pipelines:
  bench:
    topic: events
    sinks:
      db: { type: postgres, url: "${url}", table: events }
`,
    );
    await fresh(server);
    // SLUICE_BENCH_NODE_ARGS adds Node options to the child, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
    const nodeArgs = (process.env.SLUICE_BENCH_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
    const child = spawn(process.execPath, ['--max-semi-space-size=32', ...nodeArgs, join(process.cwd(), 'dist/core/cli/main.js'), 'run', '-c', 'bench.yaml'], {
      cwd: dir,
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, SLUICE_LOG_LEVEL: 'info' },
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const c = await client(url);
    try {
      while (!stderr.includes('sluice is running')) {
        if (child.exitCode !== null) throw new Error(`sluice run ended: ${stderr}`);
        await new Promise((r) => setTimeout(r, 5));
      }
      const cpu0 = backendCpu(child.pid!);
      let server: { pid: number; s0: number } | null = null;
      const fig = await timed('sluice run: full topic → sink append', rows, m.bytes, async () => {
        for (;;) {
          if (server === null) {
            const b = await c.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE application_name = 'sluice bench/db'");
            if (b.rows[0] !== undefined) server = { pid: b.rows[0].pid, s0: backendCpu(b.rows[0].pid) };
          }
          // The sink creates the offsets table when it opens.
          const r = await c.query<{ n: string }>('SELECT max(next_offset) AS n FROM sluice_offsets').catch(() => null);
          if (Number(r?.rows[0]?.n ?? 0) >= rows) break;
          await new Promise((res) => setTimeout(res, 50));
        }
      });
      // The server's backend is found once the sink has connected (its first few ms uncounted).
      const srv = server as { pid: number; s0: number } | null;
      cpuOf.set(fig, { nodeS: backendCpu(child.pid!) - cpu0, serverS: srv === null ? NaN : backendCpu(srv.pid) - srv.s0 });
      return fig;
    } finally {
      await c.end();
      child.kill('SIGTERM');
      await exited;
    }
  } finally {
    remove();
  }
}

function cdc(op: string, before: unknown, after: unknown): unknown {
  return { op, before, after, source: { lsn: '0/16B3748', txid: 1234, schema: 'public', table: 'events', ts_ms: 1700000000000 } };
}

async function round(server: PgServer, n: number, rows: number, only: string): Promise<Figure[]> {
  const now = Date.now();
  const event = (id: number) => generateEvent(42, id, SERVICES, now);
  const appendUrl = await server.createDatabase(`append_${n}`);
  const c = await client(appendUrl);
  await c.query(TABLE);
  await c.end();
  const rowsMade = made(rows, event);
  // The order alternates from round to round: on this kind of machine the server's CPU per row
  // drifts by ±30% from one load to the next, and neither side should always go first.
  const sinkFirst = n % 2 === 1;
  const txns: number[] = [];
  const backlog = (): Promise<Figure> => viaSink(server, appendUrl, 'sink append, a backlog (COPY + offsets, writeSpan)', {}, rowsMade, rows, { txns });
  const append0 = sinkFirst ? await backlog() : null;
  const copy = await plainCopy(server, await server.createDatabase(`copy_${n}`), rows, now);
  const append = append0 ?? (await backlog());
  // The same rows as plain COPY in the sink's transactions.
  const split = await plainCopy(server, await server.createDatabase(`split_${n}`), rows, now, txns);
  // As when the sink keeps up with its source: a transaction per read of the log.
  const perReadUrl = await server.createDatabase(`per_read_${n}`);
  const pr = await client(perReadUrl);
  await pr.query(TABLE);
  await pr.end();
  const perRead = await viaSink(server, perReadUrl, 'sink append, a txn per 4 MiB read (write)', {}, rowsMade, rows, { spans: false });
  const runtimeUrl = await server.createDatabase(`runtime_${n}`);
  const rt = await client(runtimeUrl);
  await rt.query(TABLE);
  await rt.end();
  const viaRun = await viaRuntime(server, runtimeUrl, rowsMade, rows);
  if (only === 'append') return [copy, append, split, perRead, viaRun];

  const upsertUrl = await server.createDatabase(`upsert_${n}`);
  const u = await client(upsertUrl);
  await u.query(TABLE);
  await u.end();
  const upsertNew = await viaSink(server, upsertUrl, 'sink upsert, new keys', { mode: 'upsert', key_columns: ['id'] }, rowsMade, rows);
  const again = made(rows, (id) => ({ ...event(id), level: 'changed' }));
  const upsertAll = await viaSink(server, upsertUrl, 'sink upsert, every key again', { mode: 'upsert', key_columns: ['id'], offsets_table: 'upsert_again' }, again, rows);

  const applyUrl = await server.createDatabase(`apply_${n}`);
  const a = await client(applyUrl);
  await a.query(TABLE);
  await a.end();
  const cfg = (t: string): Partial<PostgresSinkConfig> => ({ mode: 'apply', table: '{{ source.table }}', offsets_table: t });
  const inserts = await viaSink(server, applyUrl, 'sink apply, c events', cfg('o1'), made(rows, (id) => cdc('c', null, event(id))), rows);
  const updates = await viaSink(server, applyUrl, 'sink apply, u events (full rows)', cfg('o2'), made(rows, (id) => cdc('u', null, { ...event(id), level: 'x' })), rows);
  const toast = await viaSink(server, applyUrl, 'sink apply, u events, unchanged TOAST', cfg('o4'), made(rows, (id) => cdc('u', null, { ...event(id), level: 'y', message: UNCHANGED_TOAST })), rows);
  const deletes = await viaSink(server, applyUrl, 'sink apply, d events', cfg('o3'), made(rows, (id) => cdc('d', { id }, null)), rows);
  const left = await client(applyUrl);
  const [{ n: remaining }] = (await left.query<{ n: string }>('SELECT count(*) AS n FROM events')).rows as [{ n: string }];
  await left.end();
  if (remaining !== '0') throw new Error(`apply bench: ${remaining} rows left after the deletes`);
  return [copy, append, split, perRead, viaRun, upsertNew, upsertAll, inserts, updates, toast, deletes];
}

/**
 * CPU per row of this process and of the server backend: a figure the machine's load moves much
 * less than the wall clock. With two cores the two sides can work at once, so the larger of the
 * two bounds the rate.
 */
function cpuText(f: Figure): string {
  const c = cpuOf.get(f);
  if (c === undefined) return '';
  const per = (s: number): string => ((s * 1e6) / f.records).toFixed(2);
  return Number.isNaN(c.serverS) ? `cpu µs/row: node ${per(c.nodeS)}` : `cpu µs/row: node ${per(c.nodeS)}, server ${per(c.serverS)}`;
}

export async function benchPostgresSink(args: string[]): Promise<string[]> {
  const rows = Number(arg(args, 'rows', '1000000'));
  const rounds = Number(arg(args, 'rounds', '1'));
  const only = arg(args, 'only', 'all');
  const lines = [`machine: ${machine()}`, `${rows} generated events (~130 B of JSON each), private cluster with fsync off, ${rounds} round(s); ratios against plain COPY of the same round`];
  // No checkpoint or autovacuum of one case's table while the next case is timed.
  const server = await startPostgres({ settings: { max_wal_size: '4GB', checkpoint_timeout: '30min', autovacuum: false } });
  try {
    const ratios = new Map<string, number[]>();
    for (let i = 0; i < rounds; i++) {
      const [copy, ...rest] = await round(server, i, rows, only);
      lines.push(`round ${i + 1}:`, `${row(copy!)}  ${cpuText(copy!)}`);
      for (const f of rest) {
        const ratio = rate(f).recPerSec / rate(copy!).recPerSec;
        lines.push(`${row(f)}  (${ratio.toFixed(2)}× COPY rows/s)  ${cpuText(f)}`);
        ratios.set(f.name, [...(ratios.get(f.name) ?? []), ratio]);
      }
    }
    if (rounds > 1) {
      lines.push('median ratio to plain COPY over the rounds (each round against its own COPY):');
      for (const [name, rs] of ratios) {
        const sorted = [...rs].sort((a, b) => a - b);
        lines.push(`  ${name.padEnd(44)} ${sorted[Math.floor(sorted.length / 2)]!.toFixed(2)}×  (${sorted.map((r) => r.toFixed(2)).join(', ')})`);
      }
    }
  } finally {
    await server.stop();
  }
  lines.push(`peak RSS: ${peakRssMiB().toFixed(0)} MiB`);
  return lines;
}
