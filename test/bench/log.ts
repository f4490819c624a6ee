/**
 * Log benchmark: durable append and sequential read of 100-byte and 1-KiB records on the local
 * backend, beside a baseline measured in the same run: plain `fs.writeSync` of the same bytes
 * in 1 MiB chunks with one `fdatasync` per chunk.
 *
 *   npm run bench -- log [--bytes 1GiB] [--sizes 100,1024] [--batch 1000] [--inflight 16]
 *   npm run bench -- log --backend jetstream ...   (log-jetstream.ts: beside raw nats.js publishing)
 */
import { closeSync, fdatasyncSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { openLocalLog } from '../../core/log/local/index.js';
import type { Log, ProducerRecord } from '../../core/log/types.js';
import { arg, machine, parseSize, peakRssMiB, rate, row, tempDir, timed, type Figure } from './util.js';

export function makeValue(size: number, i: number): Buffer {
  const head = `{"id":${i},"msg":"`;
  const body = 'x'.repeat(Math.max(0, size - head.length - 2));
  return Buffer.from(`${head}${body}"}`.slice(0, size));
}

/** The baseline: the same payload bytes, prebuilt, written 1 MiB at a time, fdatasync per MiB. */
function baseline(dir: string, recordSize: number, total: number): Promise<Figure> {
  const chunk = Buffer.alloc(1024 * 1024);
  for (let p = 0; p + recordSize <= chunk.length; p += recordSize) makeValue(recordSize, p).copy(chunk, p);
  const chunks = Math.ceil(total / chunk.length);
  const records = Math.floor(chunk.length / recordSize) * chunks;
  return timed(`baseline writeSync+fdatasync/MiB ${recordSize} B`, records, chunks * chunk.length, () => {
    const fd = openSync(join(dir, 'baseline.bin'), 'w');
    for (let i = 0; i < chunks; i++) {
      writeSync(fd, chunk);
      fdatasyncSync(fd);
    }
    closeSync(fd);
  });
}

export function median(figs: Figure[]): Figure {
  const sorted = [...figs].sort((a, b) => a.seconds - b.seconds);
  return sorted[Math.floor(sorted.length / 2)]!;
}

export async function benchLog(args: string[]): Promise<string[]> {
  const backend = arg(args, 'backend', 'local');
  if (backend === 'jetstream') return (await import('./log-jetstream.js')).benchLogJetStream(args);
  if (backend !== 'local') throw new Error(`--backend must be local or jetstream, not ${backend}`);
  const total = parseSize(arg(args, 'bytes', '1GiB'));
  const sizes = arg(args, 'sizes', '100,1024').split(',').map(Number);
  const batch = Number(arg(args, 'batch', '1000'));
  const inflight = Number(arg(args, 'inflight', '16'));
  const rounds = Number(arg(args, 'rounds', '3'));
  const lines: string[] = [`machine: ${machine()}`, `payload: ${total} bytes per case, appends of ${batch} records, ${inflight} in flight; median of ${rounds} rounds, baseline and sluice alternating`];
  for (const size of sizes) {
    const bases: Figure[] = [];
    const appends: Figure[] = [];
    const reads: Figure[] = [];
    for (let round = 0; round < rounds; round++) {
      const r = await oneRound(size, total, batch, inflight);
      bases.push(r.base);
      appends.push(r.append);
      reads.push(r.read);
    }
    const base = median(bases);
    const append = median(appends);
    const read = median(reads);
    lines.push(row(base), row(append, base), row(read, base));
    const a = rate(append);
    lines.push(
      `  → append ${((a.mbPerSec / rate(base).mbPerSec) * 100).toFixed(0)}% of baseline MB/s, ` +
        `${((a.recPerSec / rate(base).recPerSec) * 100).toFixed(0)}% of its records/s`,
    );
  }
  lines.push(`peak RSS: ${peakRssMiB().toFixed(0)} MiB`);
  return lines;
}

async function oneRound(
  size: number,
  total: number,
  batch: number,
  inflight: number,
): Promise<{ base: Figure; append: Figure; read: Figure }> {
  const { dir, remove } = tempDir('sluice-bench-log');
  try {
    const base = await baseline(dir, size, total);
    const log = await openLocalLog({ dir: join(dir, 'log'), retentionSchedule: false });
    await log.createTopic('bench', { partitions: 1 });
    const count = Math.floor(total / size);
    const append = await timedAppends(log, `sluice append, durable, ${size} B`, size, count, batch, inflight);
    let got = 0;
    let gotBytes = 0;
    const read = await timed(`sluice sequential read, ${size} B`, count, count * size, async () => {
      let offset = 0;
      for (;;) {
        const r = await log.read('bench', 0, offset, { maxBytes: 1024 * 1024 });
        if (r.records.length === 0) break;
        got += r.records.length;
        for (const rec of r.records) gotBytes += rec.value.length;
        offset = r.nextOffset;
      }
    });
    if (got !== count || gotBytes !== count * size) {
      throw new Error(`read back ${got} records / ${gotBytes} bytes, expected ${count} / ${count * size}`);
    }
    await log.close();
    return { base, append, read };
  } finally {
    remove();
  }
}

/** Appends `count` records of `size` bytes in appends of `batch`, `inflight` at a time, acks durable. */
export function timedAppends(log: Log, name: string, size: number, count: number, batch: number, inflight: number): Promise<Figure> {
  const records: ProducerRecord[][] = [];
  // A ring of distinct prebuilt batches: values differ, the producer does not rebuild them.
  for (let b = 0; b < 16; b++) {
    records.push(Array.from({ length: batch }, (_, i) => ({ value: makeValue(size, b * batch + i) })));
  }
  return timed(name, count, count * size, async () => {
    const pending = new Set<Promise<unknown>>();
    for (let sent = 0, b = 0; sent < count; sent += batch, b++) {
      const n = Math.min(batch, count - sent);
      const recs = n === batch ? records[b % 16]! : records[b % 16]!.slice(0, n);
      const p = log.append('bench', recs, { acks: 'durable' });
      pending.add(p);
      void p.then(() => pending.delete(p));
      if (pending.size >= inflight) await Promise.race(pending);
    }
    await Promise.all(pending);
  });
}
