/**
 * The crash suite: a child `sluice run` (generate → topic → file sink) is SIGKILLed at random
 * moments, restarted each time, and at the end the sink must hold every generated record exactly
 * once. CI runs SLUICE_CRASH_RUNS=20 (the default); the soak mode is e.g.
 *   SLUICE_CRASH_RUNS=500 SLUICE_CRASH_RECORDS=1000000 SLUICE_CRASH_RATE=20000 npx vitest run test/crash
 *
 * The same runs on the JetStream backend (a private nats-server), shorter by default because each
 * restart waits for the killed worker's source lease to expire (lease_ttl_ms 1000):
 *   SLUICE_CRASH_JS_RUNS=200 SLUICE_CRASH_JS_RECORDS=500000 npx vitest run test/crash/pipeline-crash
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { NatsServer } from '../support/nats.js';
import { startLogNats, uniquePrefix } from '../support/nats-log.js';
import { fileSinkIds, startSluice, type SluiceProcess } from '../support/sluice-process.js';

const RUNS = Number(process.env.SLUICE_CRASH_RUNS ?? 20);
const RECORDS = Number(process.env.SLUICE_CRASH_RECORDS ?? 40_000);
// Paced so that every run is cut off mid-stream; the soak mode can raise it.
const RATE = Number(process.env.SLUICE_CRASH_RATE ?? 4_000);

interface Backend {
  name: string;
  runs: number;
  records: number;
  /** How long a run lives before its kill: min + random * spread. */
  lifeMs: [number, number];
  log(): string;
}

let nats: NatsServer | undefined;
const BACKENDS: Backend[] = [
  { name: 'local', runs: RUNS, records: RECORDS, lifeMs: [200, 1300], log: () => '{ data_dir: ./data }' },
  {
    name: 'jetstream',
    runs: Number(process.env.SLUICE_CRASH_JS_RUNS ?? 6),
    records: Number(process.env.SLUICE_CRASH_JS_RECORDS ?? 70_000),
    // A restart takes the source over once the killed run's lease expired (~1-2 s).
    lifeMs: [2500, 2000],
    log: () => `{ backend: jetstream, jetstream: { servers: "${nats!.url}", prefix: ${uniquePrefix()}, lease_ttl_ms: 1000 } }`,
  },
];

beforeAll(async () => {
  nats = await startLogNats();
}, 60_000);

afterAll(async () => {
  await nats?.stop();
});

function config(count: number, backend: Backend): string {
  return `version: 1
log: ${backend.log()}
admin: { listen: "127.0.0.1:0" }
topics:
  events: { partitions: 3 }
pipelines:
  gen:
    source: { type: generate, count: ${count}, seed: 7, batch_size: 250, rate_per_sec: ${RATE} }
    topic: events
    key: "{{ service }}"
    sinks:
      out: { type: file, path: ./out }
`;
}

const outputIds = (dir: string): Promise<number[]> => fileSinkIds(join(dir, 'out'));
const start = (dir: string, logLevel = 'warn'): SluiceProcess =>
  startSluice('sluice run', join(dir, 'pipelines.yaml'), dir, { SLUICE_LOG_LEVEL: logLevel });

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe.each(BACKENDS)('crash ($name): sluice run killed with SIGKILL at random moments', (backend) => {
  const RUNS = backend.runs;
  const RECORDS = backend.records;
  it(`holds every record exactly once after ${RUNS} kills`, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sluice-crash-'));
    dirs.push(dir);
    await writeFile(join(dir, 'pipelines.yaml'), config(RECORDS, backend));
    let kills = 0;
    const progress: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const run = start(dir);
      await new Promise((r) => setTimeout(r, backend.lifeMs[0] + Math.random() * backend.lifeMs[1]));
      run.child.kill('SIGKILL');
      const code = await run.exited;
      if (run.child.signalCode === 'SIGKILL') kills++;
      else expect.fail(`run ${i} ended by itself (code ${code}) before the kill: ${run.stderr()}`);
      // The sink's output never holds a repeat, even between runs.
      const ids = await outputIds(dir);
      expect(new Set(ids).size).toBe(ids.length);
      progress.push(ids.length);
    }
    // The kills must land while work is under way, not after it is done.
    const midStream = progress.filter((n) => n > 0 && n < RECORDS).length;
    expect(midStream, `records in the sink after each kill: ${progress.join(', ')}`).toBeGreaterThanOrEqual(Math.min(RUNS - 1, 10));
    expect(kills).toBe(RUNS);
    // A last run finishes the work and stops cleanly on SIGTERM.
    const last = start(dir, 'info');
    const deadline = Date.now() + 120_000;
    while (!last.stderr().includes('sluice is running') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    let ids = await outputIds(dir);
    while (ids.length < RECORDS && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      ids = await outputIds(dir);
    }
    last.child.kill('SIGTERM');
    expect(await last.exited, last.stderr()).toBe(0);
    ids = await outputIds(dir);
    expect(ids.length).toBe(RECORDS);
    const sorted = [...ids].sort((a, b) => a - b);
    for (let i = 0; i < RECORDS; i++) {
      if (sorted[i] !== i) expect.fail(`id ${i} is ${sorted[i]! > i ? 'missing' : 'repeated'}`);
    }
  }, 600_000);
});
