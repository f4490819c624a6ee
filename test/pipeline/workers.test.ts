/**
 * Several runtimes ("workers") sharing the work through KV leases on a real nats-server. Here they
 * share one embedded log in one process, which isolates the coordination (fair shares, hand-over,
 * take-over after a worker stops renewing, fencing) from the log backend; the multi-process test on
 * JetStream lives in test/crash.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from 'nats';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { builtinSinks, builtinSources } from '../../connectors/registry.js';
import type { Sink, SinkBatch, SinkDeclaration } from '../../connectors/sdk.js';
import { openLocalLog, type LocalLog } from '../../core/log/local/index.js';
import { parsePipelines } from '../../core/pipeline/config.js';
import { KvCoordinator } from '../../core/pipeline/kv-coordinator.js';
import { PipelineRuntime } from '../../core/pipeline/runtime.js';
import { pipelinesSchema } from '../../core/pipeline/setup.js';
import { startNats, type NatsServer } from '../support/nats.js';

/** A transactional target in memory: per partition the next offset and the highest fence seen. */
class MemoryDb {
  readonly rows = new Map<string, { worker: string; value: unknown }>();
  readonly offsets = new Map<string, { next: number; fence: number }>();
  fencedWrites = 0;

  write(worker: string, batch: SinkBatch): void {
    const k = `${batch.topic}/${batch.partition}`;
    const state = this.offsets.get(k) ?? { next: 0, fence: 0 };
    const fence = batch.fence ?? 0;
    if (fence < state.fence) {
      this.fencedWrites++;
      throw new Error(`fenced: ${k} is held by a newer worker (fence ${state.fence} > ${fence})`);
    }
    for (const r of batch.records) {
      if (r.offset < state.next) continue;
      const id = `${k}@${r.offset}`;
      if (this.rows.has(id)) throw new Error(`duplicate ${id}`);
      this.rows.set(id, { worker, value: r.value });
    }
    this.offsets.set(k, { next: Math.max(state.next, batch.nextOffset), fence });
  }
}

function memorySink(db: MemoryDb, worker: string): SinkDeclaration {
  return {
    kind: 'sink',
    type: 'memdb',
    summary: 'test',
    schema: { type: 'object', additionalProperties: false, properties: {} },
    delivery: 'transactional',
    create: (): Sink => ({
      open: async () => undefined,
      committedOffset: async (topic, partition) => db.offsets.get(`${topic}/${partition}`)?.next,
      write: async (batch) => db.write(worker, batch),
      close: async () => undefined,
    }),
  };
}

const YAML = (count: number, rate: number) => `
version: 1
log: { data_dir: ./data }
topics:
  events: { partitions: 6 }
pipelines:
  gen:
    source: { type: generate, count: ${count}, rate_per_sec: ${rate}, batch_size: 50 }
    topic: events
    key: "{{ id }}"
    sinks:
      db: { type: memdb }
`;

let server: NatsServer;
let nc: NatsConnection;
let dir: string;
let log: LocalLog;
let bucketN = 0;
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  server = await startNats();
  nc = await connect({ servers: server.url });
});
afterAll(async () => {
  await nc?.drain();
  await server?.stop();
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  await log?.close().catch(() => undefined);
  if (dir) await rm(dir, { recursive: true, force: true });
});

interface Worker {
  id: string;
  runtime: PipelineRuntime;
  coordinator: KvCoordinator;
}

async function startWorker(id: string, bucket: string, db: MemoryDb, yaml: string, ttlMs: number): Promise<Worker> {
  const sinks = [...builtinSinks, memorySink(db, id)] as SinkDeclaration<never>[];
  const config = parsePipelines(yaml, 'pipelines.yaml', dir, pipelinesSchema({ sources: builtinSources, sinks }), {});
  const coordinator = await KvCoordinator.open(nc.jetstream(), { bucket, ttlMs, workerId: id });
  const runtime = new PipelineRuntime(config, {
    log,
    sources: builtinSources as never,
    sinks,
    logger: { info: () => undefined, warn: () => undefined, error: () => undefined },
    coordinator,
    scanIntervalMs: 200,
  });
  await runtime.start();
  cleanups.push(async () => {
    await runtime.stop(0);
    await coordinator.close();
  });
  return { id, runtime, coordinator };
}

/** What a SIGKILL leaves behind: renewals stop, the leases stay until the server expires them. */
async function crash(w: Worker): Promise<void> {
  const c = w.coordinator as unknown as { timer: NodeJS.Timeout; closed: boolean; held: Map<string, unknown> };
  clearInterval(c.timer);
  c.closed = true;
  c.held.clear();
  await w.runtime.stop(0);
}

async function waitFor(what: string, cond: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function held(w: Worker): string[] {
  return (w.coordinator.holding() as string[]).filter((u) => u.startsWith('sink/'));
}

describe('several workers', () => {
  it('share the partitions, hand over to a newcomer and take over from a dead worker, each record once', async () => {
    dir = await mkdtemp(join(tmpdir(), 'sluice-workers-'));
    log = await openLocalLog({ dir: join(dir, 'data'), retentionSchedule: false });
    const db = new MemoryDb();
    const bucket = `leases_w_${process.pid}_${++bucketN}`;
    const total = 3000;
    const yaml = YAML(total, 1000);
    const ttl = 1500;

    const a = await startWorker('a', bucket, db, yaml, ttl);
    await waitFor('a to hold every partition', () => held(a).length === 6);
    const b = await startWorker('b', bucket, db, yaml, ttl);
    const c = await startWorker('c', bucket, db, yaml, ttl);
    // Fair share with three workers: two partitions each.
    await waitFor('three workers to hold two partitions each', () => [a, b, c].every((w) => held(w).length === 2));
    expect(a.coordinator.holding()).toContain('source/gen');

    // The worker running the source dies; the source and its partitions move to the survivors.
    await crash(a);
    const t0 = Date.now();
    await waitFor('survivors to hold all six partitions', () => held(b).length + held(c).length === 6);
    await waitFor('the source to move', () => [b, c].some((w) => w.coordinator.holding().includes('source/gen')));
    expect(Date.now() - t0).toBeLessThan(b.coordinator.failoverMs + 3000);

    await crash(b);
    await waitFor('the last worker to hold everything', () => held(c).length === 6);
    await waitFor('every record delivered', () => db.rows.size >= total, 60_000);

    // Exactly once: every generated id once, no offset twice (MemoryDb throws on a repeat).
    const ids = new Set([...db.rows.values()].map((r) => (r.value as { id: number }).id));
    expect(ids.size).toBe(total);
    expect(db.rows.size).toBe(total);
    const writers = new Set([...db.rows.values()].map((r) => r.worker));
    expect(writers.size).toBeGreaterThan(1);
  }, 120_000);

});
