/**
 * Shared by the local-backend tests in this folder: temp directories, reading a partition back in
 * full, and walking the batches of a segment file.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { BATCH_HEADER_BYTES, readHeader } from '../../core/log/local/codec.js';
import type { Log, LogRecord } from '../../core/log/types.js';

export async function tempDir(prefix: string): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), `sluice-${prefix}-`));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** A record reduced to comparable plain data (values copied out of shared read buffers). */
export interface PlainRecord {
  offset: number;
  timestamp: number;
  key: string | null;
  value: string;
  headers: Record<string, string>;
}

export function plain(r: LogRecord): PlainRecord {
  return { offset: r.offset, timestamp: r.timestamp, key: r.key, value: r.value.toString('hex'), headers: { ...r.headers } };
}

/** Every committed record of a partition from `from` on, read `maxBytes` at a time. */
export async function readAll(log: Log, topic: string, partition: number, from = 0, maxBytes?: number): Promise<PlainRecord[]> {
  const out: PlainRecord[] = [];
  let offset = from;
  for (;;) {
    const result = await log.read(topic, partition, offset, maxBytes === undefined ? {} : { maxBytes });
    if (result.records.length === 0) return out;
    if (result.records[0]!.offset !== offset) throw new Error(`read at ${offset} began at ${result.records[0]!.offset}`);
    if (result.nextOffset <= offset) throw new Error(`read did not advance at ${topic}/${partition}@${offset}`);
    for (const r of result.records) out.push(plain(r));
    offset = result.nextOffset;
  }
}

export function segmentDir(dir: string, topic: string, partition: number): string {
  return join(dir, 'topics', topic, String(partition));
}

/** The segment files of a partition, oldest first, as base offsets. */
export async function segmentBases(dir: string, topic: string, partition: number): Promise<number[]> {
  return (await readdir(segmentDir(dir, topic, partition)))
    .filter((f) => /^\d{20}\.log$/.test(f))
    .map((f) => Number(f.slice(0, 20)))
    .sort((a, b) => a - b);
}

export function segmentFile(dir: string, topic: string, partition: number, base: number, ext: 'log' | 'index' = 'log'): string {
  return join(segmentDir(dir, topic, partition), `${String(base).padStart(20, '0')}.${ext}`);
}

export interface BatchSpan {
  position: number;
  length: number;
  baseOffset: number;
  count: number;
}

/** The batches of a segment file's bytes, by their headers (no checks beyond the lengths). */
export function batchesOf(buf: Buffer): BatchSpan[] {
  const out: BatchSpan[] = [];
  let pos = 0;
  while (pos + BATCH_HEADER_BYTES <= buf.length) {
    const h = readHeader(buf, pos);
    if (h.length < BATCH_HEADER_BYTES || pos + h.length > buf.length) break;
    out.push({ position: pos, length: h.length, baseOffset: h.baseOffset, count: h.count });
    pos += h.length;
  }
  return out;
}

/** Resolves with the rejection of `p`, failing when it resolves. */
export async function rejectionOf(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    (v) => {
      throw new Error(`expected a rejection, got ${JSON.stringify(v)}`);
    },
    (err: unknown) => err,
  );
}
