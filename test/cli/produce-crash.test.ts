/**
 * `sluice produce` killed mid-stream (SIGKILL, no chance to flush) leaves the topic holding a clean
 * prefix of its input: every record up to some line, byte for byte, none twice, no gap, nothing
 * torn; and the log opens again and takes more. SIGTERM instead stops it cleanly (exit 143).
 */
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { afterEach, beforeEach, expect, it } from 'vitest';

import { finish, lines, sluice, start, tempDir } from './run-sluice.js';
import type { RunResult } from './run-sluice.js';

let dir: { path: string; remove(): Promise<void> };
let dataDir: string;

beforeEach(async () => {
  dir = await tempDir('sluice-crash-');
  dataDir = join(dir.path, 'data');
});
afterEach(async () => {
  await dir.remove();
});

/** The input line of sequence number `seq`: deterministic, of varying length, keyed by `k`. */
function line(seq: number): string {
  return JSON.stringify({ seq, k: `k${seq % 7}`, pad: 'x'.repeat((seq * 13) % 97) });
}

/**
 * Starts `sluice produce` and feeds it lines from `first` on until `stop()` says so, honouring
 * backpressure; resolves with the process result and how many lines were written to its stdin.
 */
function produceStream(first: number, stop: (bytesWritten: number) => NodeJS.Signals | undefined) {
  const child = start(['produce', 't', '--key', 'k', '--data-dir', dataDir]);
  const done = finish(child, 20_000);
  let seq = first;
  let bytes = 0;
  let stopped = false;
  child.stdin!.on('error', () => undefined);
  const pump = () => {
    while (!stopped) {
      const signal = stop(bytes);
      if (signal) {
        stopped = true;
        child.kill(signal);
        return;
      }
      let chunk = '';
      for (let i = 0; i < 200; i++) chunk += `${line(seq++)}\n`;
      bytes += chunk.length;
      if (!child.stdin!.write(chunk)) {
        child.stdin!.once('drain', pump);
        return;
      }
    }
  };
  pump();
  return done;
}

interface Envelope {
  partition: number;
  offset: number;
  key: string | null;
  value: { seq: number; k: string; pad: string };
}

/** Checks the topic holds exactly lines `0..n-1` (each once, intact, per key in order) and returns n. */
async function expectCleanPrefix(): Promise<number> {
  const r = await sluice(['consume', 't', '--envelope', '--data-dir', dataDir]);
  expect(r.code, r.stderr).toBe(0);
  const records = lines(r.stdout).map((text) => JSON.parse(text) as Envelope);
  // Plain checks gathered into one assertion: tens of thousands of expect() calls would be slow.
  const problems: string[] = [];
  const seen = new Set<number>();
  const nextOffset = new Map<number, number>();
  const lastSeqOfKey = new Map<string, number>();
  for (const e of records) {
    const { seq } = e.value;
    const at = `${e.partition}@${e.offset} (seq ${seq})`;
    if (JSON.stringify(e.value) !== line(seq)) problems.push(`${at}: value differs from the input line`);
    if (e.key !== e.value.k) problems.push(`${at}: key ${e.key}, expected ${e.value.k}`);
    if (seen.has(seq)) problems.push(`${at}: seq ${seq} twice`);
    seen.add(seq);
    if (e.offset !== (nextOffset.get(e.partition) ?? 0)) problems.push(`${at}: offsets not dense`);
    nextOffset.set(e.partition, e.offset + 1);
    if (seq <= (lastSeqOfKey.get(e.key!) ?? -1)) problems.push(`${at}: key ${e.key} out of order`);
    lastSeqOfKey.set(e.key!, seq);
    if (problems.length > 20) break;
  }
  const n = records.length;
  for (let seq = 0; seq < n && problems.length <= 20; seq++) {
    if (!seen.has(seq)) problems.push(`seq ${seq} missing (${n} records)`);
  }
  expect(problems).toEqual([]);
  return n;
}

it('SIGKILL mid-stream leaves a clean prefix, and the log takes more afterwards', { timeout: 30_000 }, async () => {
  let r = await sluice(['topics', 'create', 't', '--partitions', '3', '--data-dir', dataDir]);
  expect(r.code, r.stderr).toBe(0);

  // Kill once a few MiB went through the pipe: with one append in flight at a time, all but the
  // last batch or two of what the process read are durable by then.
  const killAt = 2 * 1024 * 1024 + Math.floor(Math.random() * 2 * 1024 * 1024);
  const killed: RunResult = await produceStream(0, (bytes) => (bytes >= killAt ? 'SIGKILL' : undefined));
  expect(killed.signal).toBe('SIGKILL');

  const n = await expectCleanPrefix();
  expect(n).toBeGreaterThan(5_000);

  // Recovery: the next producer takes the lock over and continues right after the prefix.
  const more = Array.from({ length: 500 }, (_, i) => `${line(n + i)}\n`).join('');
  r = await sluice(['produce', 't', '--key', 'k', '--data-dir', dataDir], { input: more });
  expect(r.code, r.stderr).toBe(0);
  expect(r.stderr).toMatch(/^produced 500 records to t/);
  expect(await expectCleanPrefix()).toBe(n + 500);
});

it('SIGTERM mid-stream appends what was read, closes the log and exits 143', { timeout: 30_000 }, async () => {
  let r = await sluice(['topics', 'create', 't', '--partitions', '3', '--data-dir', dataDir]);
  expect(r.code, r.stderr).toBe(0);
  const started = Date.now();
  const stopped = await produceStream(0, (bytes) => (bytes >= 1024 * 1024 ? 'SIGTERM' : undefined));
  expect(stopped.code).toBe(143);
  expect(stopped.stderr).toMatch(/^interrupted by SIGTERM: produced \d+ records to t \(partitions /);
  const reported = Number(/produced (\d+) records/.exec(stopped.stderr)![1]);
  expect(await expectCleanPrefix()).toBe(reported);
  expect(Date.now() - started).toBeLessThan(15_000);
  await sleep(0);
});
