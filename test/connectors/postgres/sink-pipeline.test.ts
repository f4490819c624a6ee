/**
 * The postgres sink driven by the runtime: a record the table refuses goes to `<topic>.dlq` with
 * the server's error while the others land, the stored offset moves past it, and a restart
 * resumes from the sink's own offsets (no repeat).
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { builtinSinks, builtinSources } from '../../../connectors/registry.js';
import { openLocalLog } from '../../../core/log/local/index.js';
import type { Log } from '../../../core/log/types.js';
import { parsePipelines } from '../../../core/pipeline/config.js';
import { PipelineRuntime } from '../../../core/pipeline/runtime.js';
import { pipelinesSchema } from '../../../core/pipeline/setup.js';
import { privateCluster, query } from './sink-helpers.js';

const cluster = privateCluster();

async function topicValues(log: Log, topic: string): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = [];
  const { partitions } = await log.describeTopic(topic);
  for (let p = 0; p < partitions; p++) {
    for (let offset = 0; ; ) {
      const r = await log.read(topic, p, offset);
      if (r.records.length === 0) break;
      for (const rec of r.records) out.push(JSON.parse(rec.value.toString('utf8')) as Record<string, unknown>);
      offset = r.nextOffset;
    }
  }
  return out;
}

async function runUntil(dir: string, yaml: string, done: (log: Log) => Promise<boolean>): Promise<string[]> {
  const registry = { sources: builtinSources, sinks: builtinSinks };
  const config = parsePipelines(yaml, 'pipelines.yaml', dir, pipelinesSchema(registry), {});
  const log = await openLocalLog({ dir: config.log.dataDir, retentionSchedule: false });
  const messages: string[] = [];
  const logger = { info: (m: string) => messages.push(m), warn: (m: string) => messages.push(m), error: (m: string) => messages.push(m) };
  const runtime = new PipelineRuntime(config, { log, ...registry, logger, scanIntervalMs: 100 });
  try {
    await runtime.start();
    const deadline = Date.now() + 30_000;
    while (!(await done(log))) {
      if (Date.now() > deadline) throw new Error(`timed out; runtime said:\n${messages.join('\n')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    await runtime.stop(5000);
    await log.close();
  }
  return messages;
}

describe('postgres sink in a pipeline', () => {
  it('dead-letters the records the table refuses; the others land once; a restart repeats nothing', async () => {
    const url = await cluster.server().createDatabase('dlq');
    // ids ending in 7 break the CHECK constraint: a data error of one record, not of the batch.
    await query(url, 'CREATE TABLE events (id bigint, level text, service text, message text, timestamp text, CHECK (id % 10 <> 7))');
    const dir = await cluster.tempDir('sluice-pgsink-');
    const yaml = (count: number) => `version: 1
log: { data_dir: ./data }
topics:
  events: { partitions: 2 }
pipelines:
  gen:
    source: { type: generate, count: ${count}, seed: 3, batch_size: 100 }
    topic: events
    key: "{{ service }}"
    sinks:
      db: { type: postgres, url: "${url}", table: events }
`;
    const stored = async (): Promise<number> =>
      Number((await query<{ n: string | null }>(url, "SELECT sum(next_offset) AS n FROM sluice_offsets WHERE to_regclass('sluice_offsets') IS NOT NULL").catch(() => [{ n: null }]))[0]!.n ?? 0);
    const messages = await runUntil(dir, yaml(500), async () => (await stored()) >= 500);
    expect(messages.some((m) => m.includes('went to events.dlq') && m.includes('events_id_check')), messages.slice(0, 5).join('\n')).toBe(true);
    const rows = await query<{ id: string }>(url, 'SELECT id FROM events ORDER BY id');
    const expected = Array.from({ length: 500 }, (_, i) => i).filter((i) => i % 10 !== 7);
    expect(rows.map((r) => Number(r.id))).toEqual(expected);
    // More records; the sink resumes from its own offsets.
    await runUntil(dir, yaml(700), async () => (await stored()) >= 700);
    const after = await query<{ n: string; d: string }>(url, 'SELECT count(*) AS n, count(DISTINCT id) AS d FROM events');
    expect(after[0]).toEqual({ n: '630', d: '630' });
    const log = await openLocalLog({ dir: join(dir, 'data'), retentionSchedule: false });
    try {
      const dlq = await topicValues(log, 'events.dlq');
      expect(dlq.map((d) => (d.original as { id: number }).id).sort((a, b) => a - b)).toEqual(Array.from({ length: 70 }, (_, i) => i * 10 + 7));
      expect(dlq[0]).toMatchObject({ sink: 'db', topic: 'events', error: expect.stringContaining('SQLSTATE 23514') });
    } finally {
      await log.close();
    }
  }, 90_000);
});
