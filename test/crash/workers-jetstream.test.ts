/**
 * Several `sluice run` workers on the JetStream backend (generate → topic of 3 partitions → file
 * sink, exactly-once): two share the work through KV leases, one is SIGKILLed mid-stream, a third
 * joins; the survivors take the dead worker's source or partitions over after the lease TTL, and
 * the output holds every generated record exactly once.
 * (The Postgres variant with fencing is test/crash/workers-crash.test.ts.pending.)
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { NatsServer } from '../support/nats.js';
import { startLogNats } from '../support/nats-log.js';
import { fileSinkIds, killHard, startSluice, type SluiceProcess } from '../support/sluice-process.js';

const RECORDS = Number(process.env.SLUICE_JS_WORKERS_RECORDS ?? 40_000);
const RATE = Number(process.env.SLUICE_JS_WORKERS_RATE ?? 4_000);

let nats: NatsServer;
let dir: string;
const workers: SluiceProcess[] = [];

beforeAll(async () => {
  nats = await startLogNats();
  dir = await mkdtemp(join(tmpdir(), 'sluice-js-workers-'));
}, 60_000);

afterAll(async () => {
  await Promise.allSettled(workers.map(killHard));
  await nats?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const start = (): SluiceProcess => {
  const p = startSluice('worker', join(dir, 'pipelines.yaml'), dir);
  workers.push(p);
  return p;
};
const outputIds = (): Promise<number[]> => fileSinkIds(join(dir, 'out'));

describe('workers on JetStream', () => {
  it('share a pipeline, survive a SIGKILLed worker and deliver every record once', { timeout: 180_000 }, async () => {
    await writeFile(
      join(dir, 'pipelines.yaml'),
      `version: 1
log: { backend: jetstream, jetstream: { servers: "${nats.url}", lease_ttl_ms: 1500 } }
admin: { listen: "127.0.0.1:0" }
topics:
  events: { partitions: 3 }
pipelines:
  gen:
    source: { type: generate, count: ${RECORDS}, seed: 5, batch_size: 200, rate_per_sec: ${RATE} }
    topic: events
    key: "{{ id }}"
    sinks:
      out: { type: file, path: ./out }
`,
    );
    const a = start();
    const b = start();
    await new Promise((r) => setTimeout(r, 3000));
    a.child.kill('SIGKILL');
    await a.exited;
    const before = new Set(await outputIds()).size;
    expect(before).toBeGreaterThan(0);
    expect(before).toBeLessThan(RECORDS);
    const c = start();
    const deadline = Date.now() + 120_000;
    let ids = await outputIds();
    while (ids.length < RECORDS && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      ids = await outputIds();
    }
    b.child.kill('SIGTERM');
    c.child.kill('SIGTERM');
    expect(await b.exited, b.stderr()).toBe(0);
    expect(await c.exited, c.stderr()).toBe(0);
    ids = await outputIds();
    expect(ids.length).toBe(RECORDS);
    const sorted = [...ids].sort((x, y) => x - y);
    for (let i = 0; i < RECORDS; i++) {
      if (sorted[i] !== i) expect.fail(`id ${i} is ${sorted[i]! > i ? 'missing' : 'repeated'}`);
    }
  });
});
