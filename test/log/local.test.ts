/**
 * Behaviour only the local backend has: segment files and their indexes, retention sweeps,
 * damaged files, the directory lock, a full disk, weaker acks and commit-log compaction.
 * The Log contract itself is in test/contract.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { access, mkdir, readFile, readdir, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished } from 'vitest';

import {
  CorruptRecordError,
  DirectoryLockedError,
  InvalidArgumentError,
  LogError,
  OffsetOutOfRangeError,
  StorageFullError,
  UnknownTopicError,
} from '../../core/log/errors.js';
import { decodeCommits } from '../../core/log/local/commit-log.js';
import { openLocalLog, type LocalLog, type LocalLogOptions } from '../../core/log/local/index.js';
import type { ProducerRecord, ValuesReadResult } from '../../core/log/types.js';
import {
  batchesOf,
  readAll,
  rejectionOf,
  segmentBases,
  segmentFile,
  tempDir,
  type PlainRecord,
} from './local-helpers.js';

/** A full garbage collection, so that FileHandles nobody closed are found now, not some time later. */
function fullGc(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

const KiB = 1024;
const MiB = 1024 * KiB;

/** Logs and directories opened by a test, closed and removed after it. */
let opened: LocalLog[] = [];
let dirs: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const log of opened) await log.close().catch(() => undefined);
  for (const cleanup of dirs) await cleanup();
  opened = [];
  dirs = [];
});

async function freshDir(prefix = 'local'): Promise<string> {
  const { dir, cleanup } = await tempDir(prefix);
  dirs.push(cleanup);
  return dir;
}

async function open(dir: string, options: Omit<LocalLogOptions, 'dir'> = {}): Promise<LocalLog> {
  const log = await openLocalLog({ dir, retentionSchedule: false, ...options });
  opened.push(log);
  return log;
}

async function reopen(log: LocalLog, dir: string, options: Omit<LocalLogOptions, 'dir'> = {}): Promise<LocalLog> {
  await log.close();
  return open(dir, options);
}

/** A record whose value says which it is, padded to about `size` bytes. */
function rec(i: number, size = 100, extra: Partial<ProducerRecord> = {}): ProducerRecord {
  const head = `r${i}:`;
  return { key: `k${i}`, value: head + 'x'.repeat(Math.max(0, size - head.length)), partition: 0, ...extra };
}

function hexOf(r: ProducerRecord): string {
  const v = r.value;
  return (typeof v === 'string' ? Buffer.from(v, 'utf8') : Buffer.from(v)).toString('hex');
}

function valueIndex(r: PlainRecord): number {
  return Number(/^r(\d+):/.exec(Buffer.from(r.value, 'hex').toString())![1]);
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

async function appendEach(log: LocalLog, topic: string, records: ProducerRecord[]): Promise<void> {
  for (const r of records) await log.append(topic, [r], { acks: 'written' });
}

// ---------------------------------------------------------------------------------------------

describe('segments', () => {
  it('rolls by size, writes an index for every closed segment, and reads across them in order', async () => {
    const dir = await freshDir();
    const log = await open(dir, { segmentBytes: 4096 });
    await log.createTopic('t', { partitions: 1 });
    const records = Array.from({ length: 200 }, (_, i) => rec(i, 150));
    await appendEach(log, 't', records);

    const bases = await segmentBases(dir, 't', 0);
    expect(bases.length).toBeGreaterThan(5);
    expect(bases[0]).toBe(0);
    for (const [i, base] of bases.entries()) {
      const size = (await stat(segmentFile(dir, 't', 0, base))).size;
      const last = i === bases.length - 1;
      if (!last) {
        expect(size).toBeLessThanOrEqual(4096);
        expect(size).toBeGreaterThan(4096 - 250);
        // The next segment starts right after this one's last record.
        const batches = batchesOf(await readFile(segmentFile(dir, 't', 0, base)));
        expect(batches[0]!.baseOffset).toBe(base);
        const lastBatch = batches.at(-1)!;
        expect(lastBatch.baseOffset + lastBatch.count).toBe(bases[i + 1]);
      }
      expect(await exists(segmentFile(dir, 't', 0, base, 'index'))).toBe(!last);
    }
    const d = (await log.describeTopic('t')).partitionDetails[0]!;
    expect(d).toMatchObject({ startOffset: 0, endOffset: 200, segments: bases.length });

    const want = records.map(hexOf);
    for (const maxBytes of [1, 700, 5000, MiB]) {
      const got = await readAll(log, 't', 0, 0, maxBytes);
      expect(got.map((r) => r.offset)).toEqual(records.map((_, i) => i));
      expect(got.map((r) => r.value)).toEqual(want);
    }
    // From the middle of a closed segment, and again after reopening (indexes read from files).
    const again = await reopen(log, dir);
    const mid = bases[2]! + 3;
    expect((await readAll(again, 't', 0, mid, 300)).map((r) => r.value)).toEqual(want.slice(mid));
  });

  it('rolls by age', async () => {
    const dir = await freshDir();
    const log = await open(dir);
    await log.createTopic('aged', { partitions: 1, segmentMs: 150 });
    const w = { acks: 'written' } as const;
    await log.append('aged', [rec(0)], w);
    await log.append('aged', [rec(1)], w);
    await sleep(200);
    await log.append('aged', [rec(2)], w);
    await sleep(200);
    await log.append('aged', [rec(3)], w);
    await log.append('aged', [rec(4)], w);
    expect(await segmentBases(dir, 'aged', 0)).toEqual([0, 2, 3]);
    expect(await exists(segmentFile(dir, 'aged', 0, 0, 'index'))).toBe(true);
    expect(await exists(segmentFile(dir, 'aged', 0, 2, 'index'))).toBe(true);
    expect((await readAll(log, 'aged', 0)).map(valueIndex)).toEqual([0, 1, 2, 3, 4]);
  });

  it('finds offsets by timestamp across segments, with timestamps out of order', async () => {
    const dir = await freshDir();
    let log = await open(dir, { segmentBytes: 2048, indexIntervalBytes: 256 });
    await log.createTopic('ts', { partitions: 1 });
    // A fixed pseudo-random sequence: mostly rising, with steps back.
    let seed = 12345;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    const stamps: number[] = [];
    let t = 1_000_000;
    for (let i = 0; i < 400; i++) {
      t += rnd(100) - 30;
      stamps.push(t);
    }
    for (let i = 0; i < stamps.length; ) {
      const n = 1 + rnd(5);
      await log.append(
        'ts',
        stamps.slice(i, i + n).map((ts, j) => rec(i + j, 60, { timestamp: ts })),
        { acks: 'written' },
      );
      i += n;
    }
    expect((await segmentBases(dir, 'ts', 0)).length).toBeGreaterThan(5);
    const expectedFor = (q: number): number | null => {
      const i = stamps.findIndex((s) => s >= q);
      return i < 0 ? null : i;
    };
    const queries = [...new Set(stamps.flatMap((s) => [s - 1, s, s + 1]))];
    queries.push(0, Math.max(...stamps) + 1);
    const check = async (l: LocalLog): Promise<void> => {
      const got: (number | null)[] = [];
      for (const q of queries) got.push(await l.offsetForTimestamp('ts', 0, q));
      expect(got).toEqual(queries.map(expectedFor));
    };
    await check(log);
    log = await reopen(log, dir, { indexIntervalBytes: 256 });
    await check(log);
    // Without index files they are rebuilt from the segments.
    await log.close();
    for (const base of await segmentBases(dir, 'ts', 0)) await rm(segmentFile(dir, 'ts', 0, base, 'index'), { force: true });
    log = await open(dir, { indexIntervalBytes: 256 });
    await check(log);
  });

  it('concurrent reads of closed segments are all correct, and close() leaves no file open', async () => {
    const dir = await freshDir();
    let log = await open(dir, { segmentBytes: 4096 });
    await log.createTopic('cc', { partitions: 1 });
    const records = Array.from({ length: 200 }, (_, i) => rec(i, 150));
    await appendEach(log, 'cc', records);
    const bases = await segmentBases(dir, 'cc', 0);
    await log.close();
    // Without index files every first touch of a segment rebuilds its index by a scan.
    for (const base of bases) await rm(segmentFile(dir, 'cc', 0, base, 'index'), { force: true });
    const fds = async (): Promise<number> => (await readdir('/proc/self/fd')).length;
    const before = await fds();
    // A FileHandle that nobody closed is closed by the garbage collector, with a process warning.
    const leaks: string[] = [];
    const onWarning = (w: Error): void => {
      if (/on garbage collection/.test(w.message)) leaks.push(w.message);
    };
    process.on('warning', onWarning);
    onTestFinished(() => {
      process.off('warning', onWarning);
    });
    log = await open(dir);
    const froms = Array.from({ length: 60 }, (_, i) => (i * 37) % 200);
    const results = await Promise.all([
      ...froms.map((from) => log.read('cc', 0, from, { maxBytes: 2000 })),
      ...froms.map((from) => log.offsetForTimestamp('cc', 0, from)),
    ]);
    for (const [i, from] of froms.entries()) {
      const r = results[i] as Awaited<ReturnType<LocalLog['read']>>;
      expect(r.records[0]!.offset).toBe(from);
      expect(r.records.map((x) => x.offset)).toEqual(r.records.map((_, j) => from + j));
      expect(r.records.map((x) => x.value.toString('hex'))).toEqual(records.slice(from, from + r.records.length).map(hexOf));
    }
    await log.close();
    fullGc();
    await sleep(20);
    fullGc();
    await sleep(20);
    // Each entry is one FileHandle that was opened and dropped without close().
    expect(leaks, 'FileHandles closed by the garbage collector instead of the log').toEqual([]);
    if (process.platform === 'linux') expect(await fds()).toBe(before);
  });

  it('stores records of 1 MiB and 5 MiB across segment boundaries', async () => {
    const dir = await freshDir();
    let log = await open(dir);
    await log.createTopic('big', { partitions: 1, segmentBytes: 2 * MiB });
    const sizes = [10, 1 * MiB, 10, 5 * MiB, 1 * MiB, 1 * MiB, 5 * MiB, 10, 1 * MiB];
    const values = sizes.map((n) => randomBytes(n));
    const digest = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
    const want = values.map(digest);
    for (const v of values) await log.append('big', [{ value: v, partition: 0 }]);
    // Two appends in one flush cycle too: they straddle a boundary in one write.
    const pair = [randomBytes(MiB), randomBytes(MiB + 7)];
    await Promise.all(pair.map((v) => log.append('big', [{ value: v, partition: 0 }])));
    want.push(...pair.map(digest));

    const bases = await segmentBases(dir, 'big', 0);
    expect(bases.length).toBeGreaterThanOrEqual(6);
    for (const base of bases) {
      const size = (await stat(segmentFile(dir, 'big', 0, base))).size;
      // A segment only outgrows segmentBytes when it holds a single batch larger than that.
      if (size > 2 * MiB) expect(batchesOf(await readFile(segmentFile(dir, 'big', 0, base)))).toHaveLength(1);
    }
    const readDigests = async (l: LocalLog, maxBytes: number): Promise<string[]> => {
      const out: string[] = [];
      let offset = 0;
      for (;;) {
        const r = await l.read('big', 0, offset, { maxBytes });
        if (r.records.length === 0) return out;
        expect(r.records[0]!.offset).toBe(offset);
        for (const x of r.records) out.push(digest(x.value));
        offset = r.nextOffset;
      }
    };
    expect(await readDigests(log, 1024)).toEqual(want);
    expect(await readDigests(log, 3 * MiB)).toEqual(want);
    log = await reopen(log, dir);
    expect(await readDigests(log, 1024)).toEqual(want);
    const r = await log.append('big', [{ value: 'after', partition: 0 }]);
    expect(r.batches[0]!.baseOffset).toBe(want.length);
  });
});

// ---------------------------------------------------------------------------------------------

describe('retention', () => {
  it('by bytes: removes the oldest closed segments, moves the start, keeps the active one', async () => {
    const dir = await freshDir();
    let log = await open(dir, { segmentBytes: 4096 });
    await log.createTopic('rb', { partitions: 1, retention: { maxBytes: 3 * 4096 } });
    await log.createTopic('tiny', { partitions: 1, retention: { maxBytes: 1 } });
    const records = Array.from({ length: 300 }, (_, i) => rec(i, 120));
    await appendEach(log, 'rb', records);
    await appendEach(log, 'tiny', records);
    const before = await segmentBases(dir, 'rb', 0);
    expect(before.length).toBeGreaterThan(6);

    await log.enforceRetention();

    const after = await segmentBases(dir, 'rb', 0);
    const d = (await log.describeTopic('rb')).partitionDetails[0]!;
    expect(after.length).toBeLessThan(before.length);
    expect(before).toEqual(expect.arrayContaining(after));
    expect(d.startOffset).toBe(after[0]);
    expect(d.endOffset).toBe(300);
    expect(d.segments).toBe(after.length);
    // As many as could go: what is left is at least maxBytes, and less without its oldest segment.
    const sizes = await Promise.all(after.map(async (b) => (await stat(segmentFile(dir, 'rb', 0, b))).size));
    const total = sizes.reduce((a, b) => a + b, 0);
    expect(d.bytes).toBe(total);
    expect(total).toBeGreaterThanOrEqual(3 * 4096);
    expect(total - sizes[0]!).toBeLessThan(3 * 4096);
    for (const b of before.filter((x) => !after.includes(x))) {
      expect(await exists(segmentFile(dir, 'rb', 0, b))).toBe(false);
      expect(await exists(segmentFile(dir, 'rb', 0, b, 'index'))).toBe(false);
    }

    const err = await rejectionOf(log.read('rb', 0, d.startOffset - 1));
    expect(err).toBeInstanceOf(OffsetOutOfRangeError);
    expect(err).toMatchObject({ code: 'SLUICE_OFFSET_OUT_OF_RANGE', startOffset: d.startOffset, endOffset: 300 });
    await expect(log.read('rb', 0, 0)).rejects.toBeInstanceOf(OffsetOutOfRangeError);
    expect((await readAll(log, 'rb', 0, d.startOffset)).map(valueIndex)).toEqual(
      records.slice(d.startOffset).map((_, i) => d.startOffset + i),
    );
    expect(await log.offsetForTimestamp('rb', 0, 0)).toBe(d.startOffset);

    // maxBytes below one segment: everything but the active segment goes.
    const tiny = (await log.describeTopic('tiny')).partitionDetails[0]!;
    const tinyBases = await segmentBases(dir, 'tiny', 0);
    expect(tinyBases).toHaveLength(1);
    expect(tiny).toMatchObject({ segments: 1, startOffset: tinyBases[0], endOffset: 300 });
    expect(tiny.startOffset).toBeGreaterThan(0);
    expect((await readAll(log, 'tiny', 0, tiny.startOffset)).length).toBe(300 - tiny.startOffset);
    // Sweeping again removes nothing more; the start survives a reopen.
    await log.enforceRetention();
    log = await reopen(log, dir);
    expect((await log.describeTopic('rb')).partitionDetails[0]).toMatchObject({ startOffset: d.startOffset, endOffset: 300 });
    expect((await log.describeTopic('tiny')).partitionDetails[0]).toMatchObject({ startOffset: tiny.startOffset, endOffset: 300 });
    const next = await log.append('tiny', [rec(300)]);
    expect(next.batches[0]!.baseOffset).toBe(300);
  });

  it('by age: removes closed segments whose newest record is too old', async () => {
    const dir = await freshDir();
    const log = await open(dir, { segmentBytes: 4096 });
    await log.createTopic('ra', { partitions: 1, retention: { maxAgeMs: 10 * 60_000 } });
    await log.createTopic('allold', { partitions: 1, retention: { maxAgeMs: 10 * 60_000 } });
    const old = Date.now() - 3600_000;
    const recent = Date.now();
    const records = Array.from({ length: 240 }, (_, i) => rec(i, 120, { timestamp: i < 150 ? old + i : recent + i }));
    await appendEach(log, 'ra', records);
    await appendEach(log, 'allold', records.slice(0, 150));
    const before = await segmentBases(dir, 'ra', 0);
    // The segment holding the first recent record, and everything after it, stay.
    const keepFrom = before.filter((b) => b <= 150).at(-1)!;
    expect(keepFrom).toBeGreaterThan(0);

    await log.enforceRetention();

    expect(await segmentBases(dir, 'ra', 0)).toEqual(before.filter((b) => b >= keepFrom));
    const d = (await log.describeTopic('ra')).partitionDetails[0]!;
    expect(d).toMatchObject({ startOffset: keepFrom, endOffset: 240 });
    await expect(log.read('ra', 0, keepFrom - 1)).rejects.toBeInstanceOf(OffsetOutOfRangeError);
    expect((await readAll(log, 'ra', 0, keepFrom)).map(valueIndex)).toEqual(records.slice(keepFrom).map((_, i) => keepFrom + i));

    // All records old: only the active segment is left.
    const oldBases = await segmentBases(dir, 'allold', 0);
    expect(oldBases).toHaveLength(1);
    const a = (await log.describeTopic('allold')).partitionDetails[0]!;
    expect(a).toMatchObject({ segments: 1, startOffset: oldBases[0], endOffset: 150 });
    expect(a.startOffset).toBeGreaterThan(0);
  });

  it('a read in progress on a segment that a sweep removes still completes, with contiguous records', async () => {
    const dir = await freshDir();
    let log = await open(dir, { segmentBytes: 4096 });
    await log.createTopic('race', { partitions: 1, retention: { maxBytes: 1 } });
    const records = Array.from({ length: 600 }, (_, i) => rec(i, 120));
    await appendEach(log, 'race', records);
    // Reopened, closed segments have no index loaded yet: the read has to wait on the disk.
    log = await reopen(log, dir, { segmentBytes: 4096 });
    const reading = log.read('race', 0, 0, { maxBytes: 64 * MiB });
    const sweeping = log.enforceRetention();
    const [result] = await Promise.all([reading, sweeping]);
    expect(result.records.length).toBeGreaterThan(0);
    // Whatever the read returns is contiguous from where it started, and its content is right.
    const got = result.records.map((r) => r.offset);
    expect(got).toEqual(got.map((_, i) => i));
    expect(result.nextOffset).toBe(got.length);
    expect(result.records.map((r) => r.value.toString('hex'))).toEqual(records.slice(0, got.length).map(hexOf));
    // The sweep did happen, and its files are gone now that the read is over.
    const d = (await log.describeTopic('race')).partitionDetails[0]!;
    expect(d.segments).toBe(1);
    expect(await segmentBases(dir, 'race', 0)).toEqual([d.startOffset]);
    await expect(log.read('race', 0, 0)).rejects.toBeInstanceOf(OffsetOutOfRangeError);
  });
});

// ---------------------------------------------------------------------------------------------

describe('damaged segments', () => {
  /** A log with topic `c` spread over several closed segments, closed again. */
  async function severalSegments(dir: string): Promise<{ records: ProducerRecord[]; bases: number[] }> {
    const log = await open(dir, { segmentBytes: 4096 });
    await log.createTopic('c', { partitions: 1 });
    const records = Array.from({ length: 150 }, (_, i) => rec(i, 200));
    await appendEach(log, 'c', records);
    await log.close();
    const bases = await segmentBases(dir, 'c', 0);
    expect(bases.length).toBeGreaterThan(4);
    return { records, bases };
  }

  it('damage inside a closed segment: reading it rejects with CorruptRecordError naming file and byte', async () => {
    const dir = await freshDir();
    const { records, bases } = await severalSegments(dir);
    const base = bases[1]!;
    const path = segmentFile(dir, 'c', 0, base);
    const buf = await readFile(path);
    // The middle byte, moved off a batch header's first 16 bytes (offset, length, crc) onto data.
    const batches = batchesOf(buf);
    const mid = buf.length >> 1;
    const batch = batches.find((b) => b.position <= mid && mid < b.position + b.length)!;
    const at = mid - batch.position < 16 ? batch.position + 20 : mid;
    buf[at]! ^= 0x40;
    await writeFile(path, buf);

    const warnings: string[] = [];
    const log = await open(dir, { onWarning: (m) => warnings.push(m) });
    // Closed segments are not scanned on open: nothing to warn about yet.
    expect(warnings).toEqual([]);
    const err = await rejectionOf(readAll(log, 'c', 0, base));
    expect(err).toBeInstanceOf(CorruptRecordError);
    expect(err).toMatchObject({ code: 'SLUICE_CORRUPT_RECORD', file: path, position: batch.position });
    expect((err as Error).message).toContain(path);
    expect((err as Error).message).toContain(`byte ${batch.position}`);
    // Reading straight at the damaged batch fails the same way, values only too.
    await expect(log.read('c', 0, batch.baseOffset)).rejects.toBeInstanceOf(CorruptRecordError);
    await expect(log.readValues('c', 0, batch.baseOffset)).rejects.toMatchObject({ code: 'SLUICE_CORRUPT_RECORD', file: path, position: batch.position });
    // The records before it in the same segment, and the other segments, still read.
    const beforeDamage = await log.read('c', 0, base, { maxBytes: 1 });
    if (batch.baseOffset > base) expect(beforeDamage.records[0]!.offset).toBe(base);
    const first = await log.read('c', 0, 0, { maxBytes: 1 });
    expect(first.records[0]!.value.toString('hex')).toBe(hexOf(records[0]!));
    expect((await readAll(log, 'c', 0, bases[2]!)).map(valueIndex)).toEqual(
      records.slice(bases[2]!).map((_, i) => bases[2]! + i),
    );
    // The log still takes appends.
    expect((await log.append('c', [rec(150)])).batches[0]!.baseOffset).toBe(150);
  });

  it('damage in the base offset of a batch in a closed segment is not read as other offsets', async () => {
    const dir = await freshDir();
    const { records, bases } = await severalSegments(dir);
    const base = bases[1]!;
    const path = segmentFile(dir, 'c', 0, base);
    const buf = await readFile(path);
    const batch = batchesOf(buf)[2]!;
    // The base offset is outside the CRC (as in Kafka), so only the offset sequence can tell.
    buf[batch.position]! ^= 0x04;
    await writeFile(path, buf);
    const log = await open(dir);
    const outcome = await readAll(log, 'c', 0, base).then(
      (rs) => rs,
      (err: unknown) => err,
    );
    if (Array.isArray(outcome)) {
      const want = records.slice(base).map((_, i) => base + i);
      expect(outcome.map((r) => r.offset)).toEqual(want);
      expect(outcome.map(valueIndex)).toEqual(want);
    } else {
      expect(outcome).toBeInstanceOf(CorruptRecordError);
    }
  });

  it('damage inside the committed tail of the active segment: the partition is cut there on open, with a warning', async () => {
    const dir = await freshDir();
    let log = await open(dir);
    await log.createTopic('a', { partitions: 1 });
    const records = Array.from({ length: 40 }, (_, i) => rec(i, 80));
    await appendEach(log, 'a', records);
    await log.close();
    const path = segmentFile(dir, 'a', 0, 0);
    const buf = await readFile(path);
    const batches = batchesOf(buf);
    expect(batches).toHaveLength(40);
    const bad = batches[25]!;
    buf[bad.position + bad.length - 3]! ^= 0xff;
    await writeFile(path, buf);

    const warnings: string[] = [];
    log = await open(dir, { onWarning: (m) => warnings.push(m) });
    expect(warnings.some((w) => w.includes(path))).toBe(true);
    const d = (await log.describeTopic('a')).partitionDetails[0]!;
    expect(d.endOffset).toBe(bad.baseOffset);
    // Soft, so that a failure shows both what readers see and what is left on disk.
    expect.soft((await stat(path)).size, 'bytes kept in the segment file').toBe(bad.position);
    expect((await readAll(log, 'a', 0)).map((r) => r.value)).toEqual(records.slice(0, bad.baseOffset).map(hexOf));
    // New records follow on densely from the cut.
    expect((await log.append('a', [rec(1000)])).batches[0]!.baseOffset).toBe(bad.baseOffset);
    log = await reopen(log, dir);
    const all = await readAll(log, 'a', 0);
    expect(all.map(valueIndex)).toEqual([...records.slice(0, bad.baseOffset).map((_, i) => i), 1000]);
  });
});

// ---------------------------------------------------------------------------------------------

describe('directory lock', () => {
  const children: ChildProcess[] = [];
  afterAll(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  });

  it('a second open of the same directory in this process is refused', async () => {
    const dir = await freshDir();
    const log = await open(dir);
    const err = await rejectionOf(openLocalLog({ dir, retentionSchedule: false }));
    expect(err).toBeInstanceOf(DirectoryLockedError);
    expect(err).toMatchObject({ code: 'SLUICE_DIRECTORY_LOCKED', dir });
    expect((err as Error).message).toContain(dir);
    // The refused open left the owner's lock alone; after close the directory opens again.
    expect((await readFile(join(dir, 'LOCK'), 'utf8')).trim()).toBe(String(process.pid));
    await log.close();
    expect(await exists(join(dir, 'LOCK'))).toBe(false);
    await open(dir);
  });

  it('a LOCK held by another live process is refused, naming its pid', async () => {
    const dir = await freshDir();
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    children.push(child);
    await once(child, 'spawn');
    const pid = child.pid!;
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'LOCK'), `${pid}\n`);
    const err = await rejectionOf(openLocalLog({ dir, retentionSchedule: false }));
    expect(err).toBeInstanceOf(DirectoryLockedError);
    expect(err).toMatchObject({ code: 'SLUICE_DIRECTORY_LOCKED', pid, retriable: false });
    expect((err as Error).message).toContain(String(pid));
    expect((await readFile(join(dir, 'LOCK'), 'utf8')).trim()).toBe(String(pid));
    child.kill('SIGKILL');
    await once(child, 'exit');
    // Its owner gone, the lock is taken over.
    await open(dir);
    expect((await readFile(join(dir, 'LOCK'), 'utf8')).trim()).toBe(String(process.pid));
  });

  it('a LOCK left by a dead process is taken over', async () => {
    const dir = await freshDir();
    const child = spawn('true', { stdio: 'ignore' });
    await once(child, 'exit');
    await writeFile(join(dir, 'LOCK'), `${child.pid!}\n`);
    const log = await open(dir);
    expect((await readFile(join(dir, 'LOCK'), 'utf8')).trim()).toBe(String(process.pid));
    await log.createTopic('ok', { partitions: 1 });
    await log.append('ok', [rec(0)]);
    // Garbage in LOCK is stale too.
    await log.close();
    await writeFile(join(dir, 'LOCK'), 'not a pid');
    const again = await open(dir);
    expect((await readAll(again, 'ok', 0)).map(valueIndex)).toEqual([0]);
  });
});

// ---------------------------------------------------------------------------------------------

describe('full disk', () => {
  let root: string | undefined;
  let cleanupRoot: (() => Promise<void>) | undefined;
  let mounted = false;
  let why = '';

  beforeAll(async () => {
    if (process.platform !== 'linux' || process.getuid?.() !== 0) {
      why = 'needs root on Linux to mount a small tmpfs';
      return;
    }
    const t = await tempDir('full');
    root = t.dir;
    cleanupRoot = t.cleanup;
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', root], { stdio: 'pipe' });
      mounted = true;
    } catch (err) {
      why = `mount -t tmpfs failed: ${(err as Error).message.split('\n')[0]}`;
    }
  });

  afterAll(async () => {
    for (const log of opened) await log.close().catch(() => undefined);
    if (mounted && root !== undefined) execFileSync('umount', [root], { stdio: 'pipe' });
    await cleanupRoot?.();
  });

  it('an append that does not fit rejects with StorageFullError and leaves no trace; space freed, appends go on', async (ctx) => {
    if (!mounted) ctx.skip(why);
    const dataDir = join(root!, 'data');
    const filler = join(root!, 'filler');
    await writeFile(filler, Buffer.alloc(384 * KiB, 1));
    let log = await open(dataDir);
    await log.createTopic('f', { partitions: 1, segmentBytes: 256 * KiB });
    const acked: string[] = [];
    let failure: unknown;
    for (let i = 0; i < 400 && failure === undefined; i++) {
      const value = randomBytes(24 * KiB);
      try {
        const r = await log.append('f', [{ value, partition: 0 }]);
        expect(r.batches[0]!.baseOffset).toBe(acked.length);
        acked.push(value.toString('hex'));
      } catch (err) {
        failure = err;
      }
    }
    expect(acked.length).toBeGreaterThan(10);
    // Soft, so that the rest (nothing kept, appends resume) is checked whatever the class.
    expect.soft(failure).toBeInstanceOf(StorageFullError);
    expect.soft(failure).toMatchObject({ code: 'SLUICE_STORAGE_FULL', retriable: true });

    expect((await log.describeTopic('f')).partitionDetails[0]!.endOffset).toBe(acked.length);
    expect((await readAll(log, 'f', 0)).map((r) => r.value)).toEqual(acked);

    await unlink(filler);
    const more = randomBytes(24 * KiB);
    const r = await log.append('f', [{ value: more, partition: 0 }]);
    expect(r.batches[0]!.baseOffset).toBe(acked.length);
    acked.push(more.toString('hex'));
    expect((await readAll(log, 'f', 0)).map((x) => x.value)).toEqual(acked);

    log = await reopen(log, dataDir);
    expect((await readAll(log, 'f', 0)).map((x) => x.value)).toEqual(acked);
    const last = await log.append('f', [{ value: 'end', partition: 0 }]);
    expect(last.batches[0]!.baseOffset).toBe(acked.length);
  });
});

// ---------------------------------------------------------------------------------------------

describe('weaker acks', () => {
  it("1,000 appends with acks 'written' are all there after close and reopen", async () => {
    const dir = await freshDir();
    let log = await open(dir);
    await log.createTopic('w', { partitions: 3 });
    const results = await Promise.all(
      Array.from({ length: 1000 }, (_, i) => log.append('w', [rec(i, 50, { partition: i % 3 })], { acks: 'written' })),
    );
    for (const r of results) expect(r.batches[0]!.baseOffset).toBeGreaterThanOrEqual(0);
    log = await reopen(log, dir);
    for (let p = 0; p < 3; p++) {
      const got = await readAll(log, 'w', p);
      expect(got.map(valueIndex)).toEqual(Array.from({ length: 1000 }, (_, i) => i).filter((i) => i % 3 === p));
      expect(got.map((r) => r.offset)).toEqual(got.map((_, i) => i));
    }
  });

  it("1,000 appends with acks 'none' are all there after close and reopen", async () => {
    const dir = await freshDir();
    let log = await open(dir);
    await log.createTopic('n', { partitions: 3 });
    for (let i = 0; i < 1000; i++) {
      const r = await log.append('n', [rec(i, 50, { partition: i % 3 })], { acks: 'none' });
      expect(r.batches[0]!.baseOffset).toBe(-1);
    }
    log = await reopen(log, dir);
    for (let p = 0; p < 3; p++) {
      const got = await readAll(log, 'n', p);
      expect(got.map(valueIndex)).toEqual(Array.from({ length: 1000 }, (_, i) => i).filter((i) => i % 3 === p));
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe('group commit', () => {
  it('a burst of appends shares fsyncs and commit records; checkpoints, group offsets and drops keep their order', async () => {
    const dir = await freshDir();
    let log = await open(dir);
    await log.createTopic('a', { partitions: 2 });
    await log.createTopic('b', { partitions: 1 });
    await log.commitOffsets('gone', [{ topic: 'a', partition: 0, offset: 1 }]);
    const before = decodeCommits(await readFile(join(dir, 'commit.log'))).records.length;
    // 40 appends of ~256 KiB issued at once, with a group commit and a group deletion among them:
    // appends merge into shared commits, the group operations keep their place in the order.
    const work: Promise<unknown>[] = [];
    for (let i = 0; i < 40; i++) {
      const topic = i % 3 === 0 ? 'b' : 'a';
      const records = Array.from({ length: 8 }, (_, j) => rec(i * 8 + j, 32 * KiB, { partition: topic === 'b' ? 0 : i % 2 }));
      work.push(log.append(topic, records, { checkpoint: { source: 'burst', position: { i } } }));
      if (i === 10) work.push(log.commitOffsets('kept', [{ topic: 'a', partition: 1, offset: 5 }]));
      if (i === 20) work.push(log.deleteGroup('gone'));
      if (i === 30) work.push(log.commitOffsets('gone', [{ topic: 'a', partition: 0, offset: 7 }]));
    }
    await Promise.all(work);
    const commits = decodeCommits(await readFile(join(dir, 'commit.log'))).records.length - before;
    expect(commits).toBeLessThan(10);
    log = await reopen(log, dir);
    expect(await log.getCheckpoint('burst')).toEqual({ i: 39 });
    expect(await log.fetchOffsets('kept')).toEqual([{ topic: 'a', partition: 1, offset: 5 }]);
    expect(await log.fetchOffsets('gone')).toEqual([{ topic: 'a', partition: 0, offset: 7 }]);
    const expected = (topic: string, p: number): number[] =>
      Array.from({ length: 40 }, (_, i) => i)
        .filter((i) => (i % 3 === 0 ? topic === 'b' : topic === 'a' && i % 2 === p))
        .flatMap((i) => Array.from({ length: 8 }, (_, j) => i * 8 + j));
    expect((await readAll(log, 'a', 0)).map(valueIndex)).toEqual(expected('a', 0));
    expect((await readAll(log, 'a', 1)).map(valueIndex)).toEqual(expected('a', 1));
    expect((await readAll(log, 'b', 0)).map(valueIndex)).toEqual(expected('b', 0));
  });
});

// ---------------------------------------------------------------------------------------------

describe('runs of values', () => {
  function run(values: string[]): ProducerRecord {
    const buf = Buffer.from(values.join(''));
    const ends = new Uint32Array(values.length);
    let at = 0;
    values.forEach((v, i) => (ends[i] = at += Buffer.byteLength(v)));
    return { value: new Uint8Array(0), run: { buf, start: 0, ends, count: values.length } };
  }

  it('a run is cut into batches of about 1 MiB at value boundaries; an empty run writes nothing', async () => {
    const dir = await freshDir();
    let log = await open(dir);
    await log.createTopic('r', { partitions: 1 });
    const values = Array.from({ length: 30_000 }, (_, i) => `{"i":${i},"pad":"${'p'.repeat(70)}"}`);
    await log.append('r', [run(values)]);
    expect((await log.append('r', [run([])])).batches).toEqual([]);
    log = await reopen(log, dir);
    const spans = batchesOf(await readFile(segmentFile(dir, 'r', 0, 0)));
    expect(spans.length).toBeGreaterThanOrEqual(3);
    for (const b of spans) expect(b.length).toBeLessThanOrEqual(1024 * 1024 + 38);
    expect(spans.reduce((n, b) => n + b.count, 0)).toBe(30_000);
    expect((await readAll(log, 'r', 0)).map((r) => Buffer.from(r.value, 'hex').toString())).toEqual(values);
    // Empty values and values of every length in between, in one run, read back in place.
    const mixed = ['', 'a', '', 'bcd', ...Array.from({ length: 40 }, (_, i) => 'é'.repeat(i)), ''];
    await log.append('r', [run(mixed)]);
    expect((await readAll(log, 'r', 0, 30_000)).map((r) => Buffer.from(r.value, 'hex').toString())).toEqual(mixed);
  });
});

describe('values-only reads', () => {
  /** The values readValues returns, one Buffer each, with the offsets it says they have. */
  function valuesOf(r: ValuesReadResult): { offset: number; value: string }[] {
    const out: { offset: number; value: string }[] = [];
    let offset = r.firstOffset;
    for (const sp of r.spans) for (let i = 0; i < sp.count; i++) out.push({ offset: offset++, value: sp.buf.subarray(sp.starts[i]!, sp.ends[i]!).toString('hex') });
    expect(offset).toBe(r.nextOffset);
    return out;
  }

  it('give the values read() gives, from any offset, across batches and segments, whatever the keys and headers', async () => {
    const dir = await freshDir();
    const log = await open(dir, { segmentBytes: 8192, indexIntervalBytes: 512 });
    await log.createTopic('v', { partitions: 1 });
    const records: ProducerRecord[] = [];
    for (let i = 0; i < 400; i++) {
      records.push({
        value: i % 37 === 0 ? '' : `v${i}:${'x'.repeat(i % 90)}`,
        key: i % 3 === 0 ? null : `k${i}`,
        headers: i % 5 === 0 ? { a: `h${i}`, bee: 'x'.repeat(i % 7) } : undefined,
        partition: 0,
      });
    }
    // Batches of several records, and of one.
    for (let i = 0; i < records.length; ) {
      const n = 1 + (i % 13);
      await log.append('v', records.slice(i, i + n));
      i += n;
    }
    expect((await segmentBases(dir, 'v', 0)).length).toBeGreaterThan(3);
    for (const from of [0, 1, 36, 37, 150, 299, 398, 399]) {
      for (const maxBytes of [1, 700, 5000, 1 << 20]) {
        const r = await log.read('v', 0, from, { maxBytes });
        const v = await log.readValues('v', 0, from, { maxBytes });
        expect(valuesOf(v)).toEqual(r.records.map((x) => ({ offset: x.offset, value: x.value.toString('hex') })));
        expect(v.bytes).toBe(r.records.reduce((n, x) => n + x.value.length, 0));
        expect({ nextOffset: v.nextOffset, startOffset: v.startOffset, endOffset: v.endOffset }).toEqual({
          nextOffset: r.nextOffset,
          startOffset: r.startOffset,
          endOffset: r.endOffset,
        });
      }
    }
    // Many small values in one read buffer (the span arrays grow as they fill).
    await log.createTopic('small', { partitions: 1 });
    await log.append('small', Array.from({ length: 5000 }, (_, i) => ({ value: String(i), partition: 0 })));
    const many = await log.readValues('small', 0, 0, { maxBytes: 1 << 20 });
    expect(valuesOf(many).map((x) => Buffer.from(x.value, 'hex').toString())).toEqual(Array.from({ length: 5000 }, (_, i) => String(i)));
    // At the end: nothing (after waiting, if asked); past it: out of range, as read().
    expect((await log.readValues('v', 0, 400, { maxWaitMs: 20 })).spans).toEqual([]);
    await expect(log.readValues('v', 0, 401)).rejects.toBeInstanceOf(OffsetOutOfRangeError);
    await expect(log.readValues('nope', 0, 0)).rejects.toBeInstanceOf(UnknownTopicError);
  });

  it('read into a released read\'s buffers, and never into those of a read not released', async () => {
    const dir = await freshDir();
    // From the files: with the batch cache, these reads would take the batches' own buffers.
    const log = await open(dir, { batchCacheBytes: 0 });
    await log.createTopic('r', { partitions: 1 });
    const values = Array.from({ length: 3000 }, (_, i) => `${i}:${'y'.repeat(200)}`);
    for (let i = 0; i < values.length; i += 100) await log.append('r', values.slice(i, i + 100).map((value) => ({ value, partition: 0 })));
    const text = (r: ValuesReadResult): string[] => valuesOf(r).map((x) => Buffer.from(x.value, 'hex').toString());
    const opts = { maxBytes: 128 * 1024 };
    const buffers = (r: ValuesReadResult): Set<ArrayBufferLike> => new Set(r.spans.map((sp) => sp.buf.buffer));
    const shared = (x: ValuesReadResult, y: ValuesReadResult): boolean => [...buffers(x)].some((buf) => buffers(y).has(buf));
    const a = await log.readValues('r', 0, 0, opts);
    const b = await log.readValues('r', 0, a.nextOffset, opts);
    expect(shared(a, b)).toBe(false);
    const ta = text(a);
    a.release!();
    a.release!();
    const c = await log.readValues('r', 0, b.nextOffset, opts);
    // a's buffers again (released twice, given back once), and b untouched by the read.
    expect(shared(c, a)).toBe(true);
    expect(shared(c, b)).toBe(false);
    const d = await log.readValues('r', 0, c.nextOffset, opts);
    expect(d.spans.length).toBeGreaterThan(0);
    expect(shared(d, b) || shared(d, c)).toBe(false);
    expect([...ta, ...text(b), ...text(c), ...text(d)]).toEqual(values.slice(0, d.nextOffset));
    await log.close();
  });
});

describe('batch cache', () => {
  const text = (r: ValuesReadResult): string[] => {
    const out: string[] = [];
    for (const sp of r.spans) for (let i = 0; i < sp.count; i++) out.push(sp.buf.subarray(sp.starts[i]!, sp.ends[i]!).toString());
    return out;
  };
  const buffers = (r: ValuesReadResult): Set<ArrayBufferLike> => new Set(r.spans.map((sp) => sp.buf.buffer));
  /** `n` appends of `per` values of about 100 bytes each (a batch each), numbered from `from`. */
  async function batches(log: LocalLog, topic: string, from: number, n: number, per: number): Promise<string[]> {
    const all: string[] = [];
    for (let b = 0; b < n; b++) {
      const values = Array.from({ length: per }, (_, i) => `${from + b * per + i}:${'z'.repeat(90)}`);
      await log.append(topic, values.map((value) => ({ value, partition: 0 })));
      all.push(...values);
    }
    return all;
  }

  it('reads give what the files give, from any offset, partly cached or not', async () => {
    const dir = await freshDir();
    // Room for a few of the batches below: reads start in the files and go on in the cache.
    let log = await open(dir, { batchCacheBytes: 24 * KiB, segmentBytes: 16 * KiB });
    await log.createTopic('m', { partitions: 1 });
    const values: string[] = [];
    for (let i = 0; i < 60; i++) {
      const n = 1 + ((i * 7) % 23);
      const vs = Array.from({ length: n }, (_, k) => `${values.length + k}:${'q'.repeat((i * 13 + k) % 120)}`);
      await log.append('m', vs.map((value, k) => ({ value, key: k % 2 === 0 ? `k${k}` : null, headers: k % 3 === 0 ? { h: 'v' } : undefined, partition: 0 })));
      values.push(...vs);
    }
    const reads = async (l: LocalLog): Promise<unknown[]> => {
      const got: unknown[] = [];
      for (const from of [0, 1, 100, 400, values.length - 30, values.length - 1]) {
        for (const maxBytes of [1, 3000, 1 << 20]) {
          const r = await l.read('m', 0, from, { maxBytes });
          const v = await l.readValues('m', 0, from, { maxBytes });
          expect(text(v)).toEqual(r.records.map((x) => x.value.toString()));
          expect(text(v)).toEqual(values.slice(from, v.nextOffset));
          got.push([from, maxBytes, r.nextOffset, v.nextOffset, r.records.map((x) => [x.offset, x.timestamp, x.key, { ...x.headers }])]);
          v.release?.();
        }
      }
      return got;
    };
    const cached = await reads(log);
    log = await reopen(log, dir, { batchCacheBytes: 0 });
    expect(await reads(log)).toEqual(cached);
  });

  it('a values read keeps its batches while later appends push them out; released, their buffers are reused', async () => {
    const dir = await freshDir();
    // Batches of about 100 KiB, so they come from the log's buffer pool; the cache holds 5 (each
    // counts the whole 1 MiB slab it lies in).
    const log = await open(dir, { batchCacheBytes: 5.5 * 1024 * KiB });
    await log.createTopic('e', { partitions: 1 });
    const values = await batches(log, 'e', 0, 3, 1000);
    const a = await log.readValues('e', 0, 0);
    expect(a.nextOffset).toBe(3000);
    expect(a.release).toBeDefined();
    const ta = text(a);
    expect(ta).toEqual(values);
    // Records read the same batches as copies: they outlive any reuse.
    const records = (await log.read('e', 0, 0)).records;
    values.push(...(await batches(log, 'e', 3000, 20, 1000)));
    expect(text(a)).toEqual(ta);
    expect(records.map((r) => r.value.toString())).toEqual(values.slice(0, records.length));
    a.release!();
    a.release!();
    // The next batch is written into one of a's buffers, now free.
    values.push(...(await batches(log, 'e', 23000, 1, 1000)));
    const next = await log.readValues('e', 0, 23000);
    expect(text(next)).toEqual(values.slice(23000));
    expect([...buffers(next)].some((b) => buffers(a).has(b))).toBe(true);
    next.release!();
    values.push(...(await batches(log, 'e', 24000, 10, 1000)));
    const last = await log.readValues('e', 0, 30000);
    expect(text(last)).toEqual(values.slice(30000));
    // Everything, from the files.
    const reopened = await reopen(log, dir, { batchCacheBytes: 0 });
    expect((await readAll(reopened, 'e', 0)).map((r) => Buffer.from(r.value, 'hex').toString())).toEqual(values);
  });
});

describe('appends racing a topic deletion', () => {
  it('an append queued behind the deletion of its topic is refused, not acknowledged into deleted files', async () => {
    const dir = await freshDir();
    let log = await open(dir, { maxPendingBytes: 1024 });
    await log.createTopic('doomed', { partitions: 1 });
    const first = log.append('doomed', [rec(0, 200 * KiB)]);
    // Waits for space behind the first, so it is queued after the deletion.
    const second = rejectionOf(log.append('doomed', [rec(1, 200 * KiB)]));
    const deleted = log.deleteTopic('doomed');
    await first;
    await deleted;
    expect(await second).toBeInstanceOf(UnknownTopicError);
    await log.createTopic('doomed', { partitions: 1 });
    await log.append('doomed', [rec(2)]);
    log = await reopen(log, dir);
    expect((await readAll(log, 'doomed', 0)).map(valueIndex)).toEqual([2]);
  });
});

// ---------------------------------------------------------------------------------------------

describe('records the format cannot hold', () => {
  it('a header key longer than 65535 bytes is refused with a LogError, and the log goes on', async () => {
    const dir = await freshDir();
    const log = await open(dir);
    await log.createTopic('h', { partitions: 1 });
    const err = await rejectionOf(log.append('h', [{ value: 'v', headers: { ['k'.repeat(70_000)]: 'v' }, partition: 0 }]));
    expect.soft(err).toBeInstanceOf(LogError);
    expect.soft(err).toBeInstanceOf(InvalidArgumentError);
    expect((await log.append('h', [rec(0)])).batches[0]!.baseOffset).toBe(0);
    expect((await readAll(log, 'h', 0)).map(valueIndex)).toEqual([0]);
  });
});

// ---------------------------------------------------------------------------------------------

describe('commit log compaction', () => {
  it('a commit log past 8 MiB is compacted into one snapshot, and the state survives reopening', async () => {
    const dir = await freshDir();
    let log = await open(dir);
    await log.createTopic('c', { partitions: 2 });
    await log.createTopic('other', { partitions: 1 });
    const commitLog = join(dir, 'commit.log');
    const longGroup = (j: number): string => `group-${j}-${'g'.repeat(3000)}`;
    const pad = 'p'.repeat(600_000);

    await log.append('other', [rec(0, 10, { partition: 0 })], { checkpoint: { source: 'early', position: { lsn: '0/16B3748' } } });
    await log.commitOffsets('doomed', [{ topic: 'c', partition: 0, offset: 1 }]);
    await log.commitOffsets('moved', [{ topic: 'c', partition: 1, offset: 1 }]);
    await log.deleteGroup('doomed');

    let sizes: number[] = [];
    for (let i = 0; i < 18; i++) {
      await log.append('c', [rec(i, 100, { partition: i % 2 })], { checkpoint: { source: 'src', position: { i, pad } } });
      await Promise.all(
        Array.from({ length: 4 }, (_, j) => log.commitOffsets(longGroup(j), [{ topic: 'c', partition: j % 2, offset: i }])),
      );
      await log.commitOffsets('moved', [{ topic: 'c', partition: 1, offset: i + 1 }]);
      sizes.push((await stat(commitLog)).size);
    }
    // It grew to the threshold, then (the cycle that crossed it) shrank to about one snapshot.
    const drop = sizes.findIndex((s, i) => i > 0 && s < sizes[i - 1]!);
    expect(drop).toBeGreaterThan(0);
    expect(sizes[drop - 1]).toBeGreaterThan(7 * MiB);
    expect(sizes[drop]).toBeLessThan(2 * MiB);
    expect(await exists(`${commitLog}.compact`)).toBe(false);

    const check = async (l: LocalLog): Promise<void> => {
      expect(await l.getCheckpoint('src')).toEqual({ i: 17, pad });
      expect(await l.getCheckpoint('early')).toEqual({ lsn: '0/16B3748' });
      for (let j = 0; j < 4; j++) expect(await l.fetchOffsets(longGroup(j))).toEqual([{ topic: 'c', partition: j % 2, offset: 17 }]);
      expect(await l.fetchOffsets('moved')).toEqual([{ topic: 'c', partition: 1, offset: 18 }]);
      expect(await l.fetchOffsets('doomed')).toEqual([]);
      expect(await l.listGroups()).toEqual([...Array.from({ length: 4 }, (_, j) => longGroup(j)), 'moved'].sort());
      const parts = (await l.describeTopic('c')).partitionDetails.map((d) => d.endOffset);
      expect(parts).toEqual([9, 9]);
      expect((await l.describeTopic('other')).partitionDetails[0]!.endOffset).toBe(1);
      expect((await readAll(l, 'c', 0)).map(valueIndex)).toEqual([0, 2, 4, 6, 8, 10, 12, 14, 16]);
      expect((await readAll(l, 'other', 0)).map(valueIndex)).toEqual([0]);
    };
    await check(log);
    log = await reopen(log, dir);
    await check(log);
    // Commits after the compaction land in the new file and replay on top of the snapshot.
    sizes = [];
    await log.append('c', [rec(99, 10, { partition: 0 })], { checkpoint: { source: 'late', position: 7 } });
    await log.commitOffsets('moved', [{ topic: 'c', partition: 0, offset: 3 }]);
    log = await reopen(log, dir);
    expect(await log.getCheckpoint('late')).toBe(7);
    expect(await log.getCheckpoint('src')).toEqual({ i: 17, pad });
    expect(await log.fetchOffsets('moved')).toEqual([
      { topic: 'c', partition: 0, offset: 3 },
      { topic: 'c', partition: 1, offset: 18 },
    ]);
    expect((await log.describeTopic('c')).partitionDetails[0]!.endOffset).toBe(10);
    expect((await readdir(dir)).sort()).toEqual(['LOCK', 'commit.log', 'topics']);
  });
});
