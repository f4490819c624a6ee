/** Drives a postgres_cdc source directly (no runtime): open, read batches, ack them. */
import pg from 'pg';
import type { ConnectorContext, Source, SourceBatch } from '../../../connectors/sdk.js';
import { postgresCdcSource } from '../../../connectors/postgres/cdc.js';
import type { CdcConfig } from '../../../connectors/postgres/cdc-config.js';

export interface Event {
  op: string;
  before: Record<string, unknown> | null;
  after: Record<string, unknown> | null;
  source: { lsn: string; txid: number | null; schema: string; table: string; ts_ms: number; commit_ts: string | null; snapshot: boolean };
}

export interface Harness {
  source: Source;
  abort: AbortController;
  logs: string[];
  /** Every batch read so far, in order. */
  batches: SourceBatch[];
  /** Reads (and acks) until `n` more events arrived; returns them. */
  take(n: number, timeoutMs?: number): Promise<{ event: Event; key: string | null }[]>;
  close(): Promise<void>;
}

export async function openSource(config: CdcConfig, pipeline: string, position?: unknown): Promise<Harness> {
  const abort = new AbortController();
  const logs: string[] = [];
  const ctx: ConnectorContext = { pipeline, baseDir: process.cwd(), signal: abort.signal, log: (level, m) => logs.push(`${level}: ${m}`) };
  const source = postgresCdcSource.create(config, ctx);
  await source.open(position);
  const batches: SourceBatch[] = [];
  const pending: { event: Event; key: string | null }[] = [];
  return {
    source,
    abort,
    logs,
    batches,
    async take(n, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      while (pending.length < n) {
        if (Date.now() > deadline) throw new Error(`only ${pending.length} of ${n} events within ${timeoutMs} ms`);
        const read = source.read();
        const timer = setTimeout(() => abort.abort(), Math.max(1, deadline - Date.now()));
        const batch = await read;
        clearTimeout(timer);
        if (batch === null) break;
        batches.push(batch);
        for (const r of batch.records) pending.push({ event: r.value as Event, key: r.key ?? null });
        await source.ack?.(batch.position);
      }
      return pending.splice(0, n);
    },
    async close() {
      abort.abort();
      await source.close();
    },
  };
}

export async function sql(url: string, text: string, values?: unknown[]): Promise<pg.QueryResult> {
  const c = new pg.Client({ connectionString: url });
  c.on('error', () => undefined);
  await c.connect();
  try {
    return await c.query(text, values);
  } finally {
    await c.end();
  }
}
