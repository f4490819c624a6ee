/** Shared by the postgres sink tests: records as the runtime hands them, and a sink to drive. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll } from 'vitest';
import { startPostgres, type PgServer } from '../../support/postgres.js';
import type { ConnectorContext, Sink, SinkBatch, SinkRecord, SinkValuesBatch, ValueSpans } from '../../../connectors/sdk.js';
import { postgresSink, type PostgresSinkConfig } from '../../../connectors/postgres/sink.js';

export function record(offset: number, value: unknown, o: { topic?: string; partition?: number; key?: string } = {}): SinkRecord {
  const raw = Buffer.from(JSON.stringify(value));
  return {
    topic: o.topic ?? 'events',
    partition: o.partition ?? 0,
    offset,
    timestamp: 1_700_000_000_000 + offset,
    key: o.key ?? null,
    value: JSON.parse(raw.toString()) as unknown,
    raw,
    headers: {},
  };
}

/** A batch of these values at offsets from `first`. */
export function batch(first: number, values: unknown[], o: { topic?: string; partition?: number; fence?: number } = {}): SinkBatch {
  const records = values.map((v, i) => record(first + i, v, o));
  return { topic: o.topic ?? 'events', partition: o.partition ?? 0, records, nextOffset: first + values.length, ...(o.fence === undefined ? {} : { fence: o.fence }) };
}

/** The same values as a values batch (Sink.writeValues), in spans of `perSpan` values over one buffer each. */
export function valuesBatch(first: number, values: unknown[], perSpan = 2, o: { fence?: number } = {}): SinkValuesBatch {
  const spans: ValueSpans[] = [];
  let bytes = 0;
  for (let i = 0; i < values.length; i += perSpan) {
    const texts = values.slice(i, i + perSpan).map((v) => Buffer.from(JSON.stringify(v)));
    // A byte before, between and after each value: readers must keep to the spans.
    const buf = Buffer.concat(texts.flatMap((t) => [Buffer.from('#'), t]).concat(Buffer.from('#')));
    const starts = new Uint32Array(texts.length);
    const ends = new Uint32Array(texts.length);
    let at = 0;
    texts.forEach((t, k) => {
      starts[k] = at + 1;
      ends[k] = at + 1 + t.length;
      at = ends[k]!;
      bytes += t.length;
    });
    spans.push({ buf, starts, ends, count: texts.length });
  }
  return { topic: 'events', partition: 0, firstOffset: first, spans, bytes, nextOffset: first + values.length, ...(o.fence === undefined ? {} : { fence: o.fence }) };
}

export interface Opened {
  sink: Sink;
  logs: string[];
}

export async function openSink(config: Partial<PostgresSinkConfig> & { url: string; table: string }, o: { pipeline?: string; sink?: string } = {}): Promise<Opened> {
  const logs: string[] = [];
  const ctx: ConnectorContext = {
    pipeline: o.pipeline ?? 'p',
    sink: o.sink ?? 'pg',
    baseDir: process.cwd(),
    signal: new AbortController().signal,
    log: (level, message) => logs.push(`${level}: ${message}`),
  };
  const sink = postgresSink.create(config as PostgresSinkConfig, ctx);
  await sink.open();
  return { sink, logs };
}

export async function query<T extends pg.QueryResultRow = Record<string, unknown>>(url: string, text: string, values: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<T>(text, values)).rows;
  } finally {
    await c.end();
  }
}

/** A private cluster for the calling test file, and temp dirs removed with it. */
export function privateCluster(): { server: () => PgServer; tempDir: (prefix: string) => Promise<string> } {
  let server: PgServer | undefined;
  const dirs: string[] = [];
  beforeAll(async () => {
    server = await startPostgres();
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });
  return {
    server: () => server!,
    tempDir: async (prefix) => {
      const d = await mkdtemp(join(tmpdir(), prefix));
      dirs.push(d);
      return d;
    },
  };
}
