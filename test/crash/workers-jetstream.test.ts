/**
 * Several `sluice run` workers on the JetStream backend (generate → topic of 3 partitions → file
 * sink, exactly-once): two share the work through KV leases, one is SIGKILLed mid-stream, a third
 * joins; the survivors take the dead worker's source or partitions over after the lease TTL, and
 * the output holds every generated record exactly once.
 * (The Postgres variant with fencing is test/crash/workers-crash.test.ts.pending.)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { NatsServer } from '../support/nats.js';
import { startLogNats } from '../support/nats-log.js';

const MAIN = join(process.cwd(), 'dist/core/cli/main.js');
const RECORDS = Number(process.env.SLUICE_JS_WORKERS_RECORDS ?? 40_000);
const RATE = Number(process.env.SLUICE_JS_WORKERS_RATE ?? 4_000);

let nats: NatsServer;
let dir: string;
const children: ChildProcess[] = [];

beforeAll(async () => {
  nats = await startLogNats();
  dir = await mkdtemp(join(tmpdir(), 'sluice-js-workers-'));
}, 60_000);

afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await nats?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function start(): { child: ChildProcess; exited: Promise<number | null>; stderr(): string } {
  const child = spawn(process.execPath, [MAIN, 'run', '-c', join(dir, 'pipelines.yaml')], {
    cwd: dir,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, SLUICE_LOG_LEVEL: 'warn' },
  });
  children.push(child);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return { child, exited, stderr: () => stderr };
}

async function outputIds(): Promise<number[]> {
  const ids: number[] = [];
  const files = (await readdir(join(dir, 'out')).catch(() => [] as string[])).filter((f) => f.endsWith('.ndjson'));
  for (const f of files) {
    for (const line of (await readFile(join(dir, 'out', f), 'utf8')).split('\n')) {
      if (line !== '') ids.push((JSON.parse(line) as { id: number }).id);
    }
  }
  return ids;
}

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
