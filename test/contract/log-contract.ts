/**
 * The contract every Log backend passes. It speaks only through the Log interface (no files, no
 * backend internals), so the local and the JetStream backends run it unchanged: each test gets
 * fresh storage from the factory, and `open()` after `close()` must reopen that same storage.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import {
  BadPartitionError,
  InvalidArgumentError,
  InvalidTopicError,
  LogClosedError,
  OffsetOutOfRangeError,
  RecordTooLargeError,
  TopicExistsError,
  UnknownTopicError,
} from '../../core/log/errors.js';
import type { LogErrorCode } from '../../core/log/errors.js';
import type { AppendResult, GroupOffset, Log, LogRecord, ProducerRecord } from '../../core/log/types.js';

export interface ContractHarness {
  /** Opens the backend on this harness's storage; called again after `close()` to reopen it. */
  open(): Promise<Log>;
  /** Removes the storage; called once, after the last log of the harness is closed. */
  cleanup(): Promise<void>;
}

const MiB = 1024 * 1024;

type ErrorClass<E extends Error> = abstract new (...args: never[]) => E;

/** Asserts the class and the stable code, and hands back the error for field checks. */
async function expectRejection<E extends Error & { code: LogErrorCode }>(
  promise: Promise<unknown>,
  errorClass: ErrorClass<E>,
  code: LogErrorCode,
): Promise<E> {
  await expect(promise).rejects.toBeInstanceOf(errorClass);
  await expect(promise).rejects.toHaveProperty('code', code);
  return (await promise.then(
    () => undefined,
    (err: unknown) => err,
  )) as E;
}

/** Unique per call, so a backend whose harnesses share a server cannot see another test's topics. */
function topicName(prefix = 't'): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

function text(record: LogRecord): string {
  return record.value.toString('utf8');
}

/** Every committed record of a partition from `from` on; values copied, since reads may share buffers. */
async function readAll(log: Log, topic: string, partition: number, from = 0): Promise<LogRecord[]> {
  const out: LogRecord[] = [];
  let offset = from;
  for (;;) {
    const result = await log.read(topic, partition, offset);
    if (result.records.length === 0) return out;
    if (result.nextOffset <= offset) throw new Error(`read did not advance at ${topic}/${partition}@${offset}`);
    for (const record of result.records) out.push({ ...record, value: Buffer.from(record.value) });
    offset = result.nextOffset;
  }
}

async function waitFor<T>(probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(10);
  }
}

type Settled<T> = { result: T } | { error: unknown };

/** Observes a promise at once, so a rejection while the test awaits something else is not unhandled. */
function settle<T>(promise: Promise<T>): Promise<Settled<T>> {
  return promise.then(
    (result) => ({ result }),
    (error: unknown) => ({ error }),
  );
}

async function resultOf<T>(settled: Promise<Settled<T>>): Promise<T> {
  const outcome = await settled;
  if ('error' in outcome) throw outcome.error;
  return outcome.result;
}

function sortOffsets(offsets: GroupOffset[]): GroupOffset[] {
  return [...offsets].sort((a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition);
}

function onlyBatch(result: AppendResult) {
  expect(result.batches).toHaveLength(1);
  return result.batches[0]!;
}

interface LogFixture {
  /** The open log of the current test. */
  readonly log: Log;
  /** Closes the log (flushing it) and opens the same storage again. */
  reopen(): Promise<Log>;
  /** Closes the log; the fixture will not close it again. */
  close(): Promise<void>;
}

function useLog(factory: () => Promise<ContractHarness>): LogFixture {
  let harness: ContractHarness | undefined;
  let current: Log | undefined;
  let open = false;

  beforeEach(async () => {
    harness = await factory();
    current = await harness.open();
    open = true;
  });

  afterEach(async () => {
    try {
      if (open) await current?.close();
    } finally {
      open = false;
      current = undefined;
      await harness?.cleanup();
      harness = undefined;
    }
  });

  const fixture: LogFixture = {
    get log(): Log {
      if (current === undefined) throw new Error('no log: used outside a test');
      return current;
    },
    async close() {
      if (!open) return;
      open = false;
      await current?.close();
    },
    async reopen() {
      await fixture.close();
      if (harness === undefined) throw new Error('no harness: used outside a test');
      current = await harness.open();
      open = true;
      return current;
    },
  };
  return fixture;
}

export function runLogContract(name: string, factory: () => Promise<ContractHarness>): void {
  describe(`Log contract: ${name}`, () => {
    const fx = useLog(factory);

    describe('topics', () => {
      it('creates, describes, lists and deletes a topic', async () => {
        const { log } = fx;
        const topic = topicName('orders');
        const before = Date.now();
        const created = await log.createTopic(topic, {
          partitions: 3,
          retention: { maxAgeMs: 3_600_000, maxBytes: 10 * MiB },
        });
        expect(created.name).toBe(topic);
        expect(created.partitions).toBe(3);
        expect(created.retention).toEqual({ maxAgeMs: 3_600_000, maxBytes: 10 * MiB });
        expect(created.segmentBytes).toBeGreaterThan(0);
        expect(created.segmentMs).toBeGreaterThan(0);
        expect(created.createdAt).toBeGreaterThanOrEqual(before - 1000);
        expect(created.createdAt).toBeLessThanOrEqual(Date.now() + 1000);
        expect(created.partitionDetails.map((p) => [p.partition, p.startOffset, p.endOffset])).toEqual([
          [0, 0, 0],
          [1, 0, 0],
          [2, 0, 0],
        ]);

        const described = await log.describeTopic(topic);
        expect(described.name).toBe(topic);
        expect(described.partitions).toBe(3);
        expect(described.retention).toEqual({ maxAgeMs: 3_600_000, maxBytes: 10 * MiB });
        expect(described.createdAt).toBe(created.createdAt);

        const other = topicName('audit');
        await log.createTopic(other, { partitions: 1 });
        expect(await log.listTopics()).toEqual(expect.arrayContaining([topic, other]));

        await log.deleteTopic(topic);
        const after = await log.listTopics();
        expect(after).not.toContain(topic);
        expect(after).toContain(other);
        await expectRejection(log.describeTopic(topic), UnknownTopicError, 'SLUICE_UNKNOWN_TOPIC');
      });

      it('recreates a deleted topic empty', async () => {
        const { log } = fx;
        const topic = topicName();
        await log.createTopic(topic, { partitions: 1 });
        await log.append(topic, [{ value: 'a' }, { value: 'b' }]);
        await log.deleteTopic(topic);
        const again = await log.createTopic(topic, { partitions: 2 });
        expect(again.partitions).toBe(2);
        expect(again.partitionDetails.map((p) => p.endOffset)).toEqual([0, 0]);
        expect((await log.read(topic, 0, 0)).records).toEqual([]);
      });

      it('rejects creating an existing topic with TopicExistsError', async () => {
        const { log } = fx;
        const topic = topicName();
        await log.createTopic(topic, { partitions: 1 });
        const err = await expectRejection(
          log.createTopic(topic, { partitions: 1 }),
          TopicExistsError,
          'SLUICE_TOPIC_EXISTS',
        );
        expect(err.topic).toBe(topic);
      });

      it('ensureTopic creates once and then returns the existing topic unchanged', async () => {
        const { log } = fx;
        const topic = topicName();
        const first = await log.ensureTopic(topic, { partitions: 3 });
        expect(first.partitions).toBe(3);
        await log.append(topic, [{ value: 'x', partition: 1 }]);
        const second = await log.ensureTopic(topic, { partitions: 5, retention: { maxAgeMs: 1000 } });
        expect(second.partitions).toBe(3);
        expect(second.createdAt).toBe(first.createdAt);
        expect(second.retention).toEqual(first.retention);
        expect(second.partitionDetails[1]!.endOffset).toBe(1);
        expect((await log.listTopics()).filter((t) => t === topic)).toHaveLength(1);
      });

      it('rejects operations on a missing topic with UnknownTopicError', async () => {
        const { log } = fx;
        const missing = topicName('missing');
        const describeErr = await expectRejection(log.describeTopic(missing), UnknownTopicError, 'SLUICE_UNKNOWN_TOPIC');
        expect(describeErr.topic).toBe(missing);
        await expectRejection(log.append(missing, [{ value: 'x' }]), UnknownTopicError, 'SLUICE_UNKNOWN_TOPIC');
        await expectRejection(log.read(missing, 0, 0), UnknownTopicError, 'SLUICE_UNKNOWN_TOPIC');
        await expectRejection(log.deleteTopic(missing), UnknownTopicError, 'SLUICE_UNKNOWN_TOPIC');
        await expectRejection(log.offsetForTimestamp(missing, 0, 0), UnknownTopicError, 'SLUICE_UNKNOWN_TOPIC');
      });

      it('rejects invalid topic names with InvalidTopicError (Kafka rules)', async () => {
        const { log } = fx;
        const bad = ['', '.', '..', 'a/b', '../escape', 'with space', 'tab\tname', 'ünïcode', 'star*', 'x'.repeat(250)];
        for (const name of bad) {
          const err = await expectRejection(
            log.createTopic(name, { partitions: 1 }),
            InvalidTopicError,
            'SLUICE_INVALID_TOPIC',
          );
          expect(err.topic).toBe(name);
          await expectRejection(log.ensureTopic(name, { partitions: 1 }), InvalidTopicError, 'SLUICE_INVALID_TOPIC');
        }
        const topics = await log.listTopics();
        for (const name of bad) expect(topics).not.toContain(name);
      });

      it('accepts every legal character and a name of 249 characters', async () => {
        const { log } = fx;
        const legal = ['a.b_c-D9', '...x', '_', '-', 'x'.repeat(249)];
        for (const name of legal) {
          const created = await log.createTopic(name, { partitions: 1 });
          expect(created.name).toBe(name);
          const { baseOffset } = onlyBatch(await log.append(name, [{ value: name }]));
          expect(baseOffset).toBe(0);
          expect(text((await log.read(name, 0, 0)).records[0]!)).toBe(name);
        }
        expect(await log.listTopics()).toEqual(expect.arrayContaining(legal));
      });

      it('requires at least one partition (InvalidArgumentError)', async () => {
        const { log } = fx;
        const names: string[] = [];
        for (const partitions of [0, -1, 1.5, Number.NaN]) {
          const name = topicName();
          names.push(name);
          await expectRejection(log.createTopic(name, { partitions }), InvalidArgumentError, 'SLUICE_INVALID_ARGUMENT');
        }
        const ensured = topicName();
        names.push(ensured);
        await expectRejection(
          log.ensureTopic(ensured, { partitions: 0 }),
          InvalidArgumentError,
          'SLUICE_INVALID_ARGUMENT',
        );
        const topics = await log.listTopics();
        for (const name of names) expect(topics).not.toContain(name);
      });

      it('rejects partitions out of range with BadPartitionError', async () => {
        const { log } = fx;
        const topic = topicName();
        await log.createTopic(topic, { partitions: 3 });
        const err = await expectRejection(
          log.append(topic, [{ value: 'x', partition: 3 }]),
          BadPartitionError,
          'SLUICE_BAD_PARTITION',
        );
        expect(err.topic).toBe(topic);
        expect(err.partition).toBe(3);
        expect(err.partitions).toBe(3);
        await expectRejection(log.append(topic, [{ value: 'x', partition: -1 }]), BadPartitionError, 'SLUICE_BAD_PARTITION');
        await expectRejection(log.read(topic, 3, 0), BadPartitionError, 'SLUICE_BAD_PARTITION');
        await expectRejection(log.read(topic, -1, 0), BadPartitionError, 'SLUICE_BAD_PARTITION');
        await expectRejection(log.offsetForTimestamp(topic, 7, 0), BadPartitionError, 'SLUICE_BAD_PARTITION');

        // A bad record fails its whole append: the good one beside it is not kept.
        await expectRejection(
          log.append(topic, [{ value: 'ok', partition: 0 }, { value: 'bad', partition: 9 }]),
          BadPartitionError,
          'SLUICE_BAD_PARTITION',
        );
        expect((await log.describeTopic(topic)).partitionDetails.map((p) => p.endOffset)).toEqual([0, 0, 0]);
      });
    });

    describe('append and read', () => {
      it('gives dense offsets from 0 per partition', async () => {
        const { log } = fx;
        const topic = topicName();
        await log.createTopic(topic, { partitions: 2 });

        const first = onlyBatch(await log.append(topic, [0, 1, 2].map((i) => ({ value: `a${i}`, partition: 0 }))));
        expect(first).toEqual({ topic, partition: 0, baseOffset: 0, count: 3 });
        const second = onlyBatch(await log.append(topic, [{ value: 'a3', partition: 0 }, { value: 'a4', partition: 0 }]));
        expect(second).toEqual({ topic, partition: 0, baseOffset: 3, count: 2 });
        const other = onlyBatch(await log.append(topic, [{ value: 'b0', partition: 1 }]));
        expect(other).toEqual({ topic, partition: 1, baseOffset: 0, count: 1 });

        const result = await log.read(topic, 0, 0);
        expect(result.records.map((r) => r.offset)).toEqual([0, 1, 2, 3, 4]);
        expect(result.records.map(text)).toEqual(['a0', 'a1', 'a2', 'a3', 'a4']);
        expect(result.nextOffset).toBe(5);
        expect(result.startOffset).toBe(0);
        expect(result.endOffset).toBe(5);

        const fromMiddle = await log.read(topic, 0, 3);
        expect(fromMiddle.records.map((r) => r.offset)).toEqual([3, 4]);
        expect(fromMiddle.records.map(text)).toEqual(['a3', 'a4']);

        const description = await log.describeTopic(topic);
        expect(description.partitionDetails.map((p) => [p.startOffset, p.endOffset])).toEqual([
          [0, 5],
          [0, 1],
        ]);
        expect(description.partitionDetails[0]!.bytes).toBeGreaterThan(0);
      });

      it('round-trips values as bytes, from Buffer, Uint8Array and string', async () => {
        const { log } = fx;
        const topic = topicName();
        await log.createTopic(topic, { partitions: 1 });
        const binary = Buffer.from([0x00, 0xff, 0x10, 0x80, 0x00, 0x7f, 0xc3, 0x28]);
        const typed = new Uint8Array([1, 2, 3, 250, 0]);
        const unicode = '{"msg":"héllo wörld ✓ 🚀","n":1}';
        await log.append(topic, [
          { value: binary },
          { value: typed },
          { value: unicode },
          { value: '' },
          { value: Buffer.alloc(0) },
        ]);
        const records = (await log.read(topic, 0, 0)).records;
        expect(records).toHaveLength(5);
        for (const record of records) expect(Buffer.isBuffer(record.value)).toBe(true);
        expect(records[0]!.value.toString('hex')).toBe(binary.toString('hex'));
        expect(records[1]!.value.toString('hex')).toBe(Buffer.from(typed).toString('hex'));
        expect(text(records[2]!)).toBe(unicode);
        expect(records[2]!.value.length).toBe(Buffer.byteLength(unicode, 'utf8'));
        expect(records[3]!.value.length).toBe(0);
        expect(records[4]!.value.length).toBe(0);
      });

      it('round-trips keys and headers', async () => {
        const { log } = fx;
        const topic = topicName();
        await log.createTopic(topic, { partitions: 1 });
        const headers = { 'content-type': 'application/json', 'ünï-cödé': 'välue ✓', empty: '' };
        await log.append(topic, [
          { key: null, value: 'a', partition: 0 },
          { value: 'b', partition: 0 },
          { key: 'ключ-🔑', value: 'c', partition: 0, headers },
          { key: '', value: 'd', partition: 0, headers: {} },
        ]);
        const records = (await log.read(topic, 0, 0)).records;
        expect(records.map((r) => r.key)).toEqual([null, null, 'ключ-🔑', '']);
        expect(records.map((r) => r.headers)).toEqual([{}, {}, headers, {}]);
      });

      it('keeps explicit timestamps and defaults to the time of the append', async () => {
        const { log } = fx;
        const topic = topicName();
        await log.createTopic(topic, { partitions: 1 });
        const explicit = 1_600_000_000_123;
        const before = Date.now();
        await log.append(topic, [{ value: 'old', timestamp: explicit }, { value: 'now' }]);
        const after = Date.now();
        const [old, now] = (await log.read(topic, 0, 0)).records;
        expect(old!.timestamp).toBe(explicit);
        expect(now!.timestamp).toBeGreaterThanOrEqual(before - 5);
        expect(now!.timestamp).toBeLessThanOrEqual(after + 5);
      });

      it('treats maxBytes as a soft limit: at least one record, about that many bytes', async () => {
        const { log } = fx;
        const topic = topicName();
        await log.createTopic(topic, { partitions: 1 });
        const size = 1024;
        for (let i = 0; i < 20; i++) {
          await log.append(topic, [{ value: Buffer.alloc(size, i), partition: 0 }]);
        }

        const tiny = await log.read(topic, 0, 0, { maxBytes: 1 });
        expect(tiny.records.length).toBeGreaterThanOrEqual(1);
        expect(tiny.records[0]!.offset).toBe(0);
        expect(tiny.records[0]!.value.length).toBe(size);
        expect(tiny.nextOffset).toBe(tiny.records.length);

        const maxBytes = 5 * size;
        const limited = await log.read(topic, 0, 0, { maxBytes });
        const valueBytes = limited.records.reduce((n, r) => n + r.value.length, 0);
        expect(limited.records.length).toBeGreaterThanOrEqual(1);
        expect(limited.records.length).toBeLessThan(20);
        // Soft: the batch that crosses the limit may come whole, but not more than that.
        expect(valueBytes).toBeLessThanOrEqual(maxBytes + size);
        expect(limited.nextOffset).toBe(limited.records.at(-1)!.offset + 1);

        // Reading on from nextOffset yields the rest, contiguous and in order.
        const seen: number[] = [];
        let offset = 0;
        while (offset < 20) {
          const page = await log.read(topic, 0, offset, { maxBytes });
          expect(page.records.length).toBeGreaterThanOrEqual(1);
          for (const r of page.records) {
            expect(r.value[0]).toBe(r.offset);
            seen.push(r.offset);
          }
          offset = page.nextOffset;
        }
        expect(seen).toEqual(Array.from({ length: 20 }, (_, i) => i));
      });

      it('returns nothing at the end, with nextOffset = endOffset', async () => {
        const { log } = fx;
        const topic = topicName();
        await log.createTopic(topic, { partitions: 2 });
        const empty = await log.read(topic, 1, 0);
        expect(empty).toEqual({ records: [], nextOffset: 0, startOffset: 0, endOffset: 0 });

        await log.append(topic, [{ value: 'a', partition: 0 }, { value: 'b', partition: 0 }]);
        const atEnd = await log.read(topic, 0, 2);
        expect(atEnd.records).toEqual([]);
        expect(atEnd.nextOffset).toBe(2);
        expect(atEnd.endOffset).toBe(2);
      });

      it('rejects reads outside [startOffset, endOffset] with OffsetOutOfRangeError', async () => {
        const { log } = fx;
        const topic = topicName();
        await log.createTopic(topic, { partitions: 1 });
        await log.append(topic, [{ value: 'a' }, { value: 'b' }]);

        const above = await expectRejection(log.read(topic, 0, 3), OffsetOutOfRangeError, 'SLUICE_OFFSET_OUT_OF_RANGE');
        expect(above.topic).toBe(topic);
        expect(above.partition).toBe(0);
        expect(above.offset).toBe(3);
        expect(above.startOffset).toBe(0);
        expect(above.endOffset).toBe(2);
        await expectRejection(log.read(topic, 0, 1000), OffsetOutOfRangeError, 'SLUICE_OFFSET_OUT_OF_RANGE');
        const below = await expectRejection(log.read(topic, 0, -1), OffsetOutOfRangeError, 'SLUICE_OFFSET_OUT_OF_RANGE');
        expect(below.offset).toBe(-1);
      });

      it('readValues gives the values read gives, from any offset and with any maxBytes, and the same limits', async () => {
        const { log } = fx;
        if (log.readValues === undefined) return;
        const topic = topicName();
        await log.createTopic(topic, { partitions: 1 });
        const values: string[] = [];
        for (let a = 0; a < 12; a++) {
          const batch = Array.from({ length: 1 + (a % 5) }, (_, i) => `${values.length + i}:${'v'.repeat((a * 37 + i) % 300)}`);
          await log.append(
            topic,
            batch.map((value, i) => ({ value, partition: 0, key: i % 2 === 0 ? `k${i}` : null, headers: i % 3 === 0 ? { h: 'x' } : undefined })),
          );
          values.push(...batch);
        }
        for (const from of [0, 1, 7, values.length - 1, values.length]) {
          for (const maxBytes of [1, 500, 1 << 20]) {
            const r = await log.read(topic, 0, from, { maxBytes });
            const v = await log.readValues(topic, 0, from, { maxBytes });
            const got: string[] = [];
            for (const sp of v.spans) for (let i = 0; i < sp.count; i++) got.push(sp.buf.subarray(sp.starts[i]!, sp.ends[i]!).toString());
            expect(got).toEqual(r.records.map((x) => x.value.toString()));
            expect(got).toEqual(values.slice(from, v.nextOffset));
            expect({ first: v.firstOffset, next: v.nextOffset, start: v.startOffset, end: v.endOffset, bytes: v.bytes }).toEqual({
              first: from,
              next: r.nextOffset,
              start: r.startOffset,
              end: r.endOffset,
              bytes: got.reduce((n, x) => n + Buffer.byteLength(x), 0),
            });
            v.release?.();
          }
        }
        await expectRejection(log.readValues(topic, 0, values.length + 1), OffsetOutOfRangeError, 'SLUICE_OFFSET_OUT_OF_RANGE');
      });

      it('round-trips records of 1 MiB and 3 MiB', async () => {
        const { log } = fx;
        const topic = topicName();
        await log.createTopic(topic, { partitions: 1 });
        const one = randomBytes(1 * MiB);
        const three = randomBytes(3 * MiB);
        expect(onlyBatch(await log.append(topic, [{ value: one, key: 'one' }])).baseOffset).toBe(0);
        expect(onlyBatch(await log.append(topic, [{ value: three, key: 'three' }])).baseOffset).toBe(1);

        const first = await log.read(topic, 0, 0);
        expect(first.records[0]!.key).toBe('one');
        expect(first.records[0]!.value.equals(one)).toBe(true);
        const second = await log.read(topic, 0, 1);
        expect(second.records).toHaveLength(1);
        expect(second.records[0]!.key).toBe('three');
        expect(second.records[0]!.value.equals(three)).toBe(true);
        expect(second.nextOffset).toBe(2);
      });

      it('rejects a record above the maximum with RecordTooLargeError and keeps nothing of it', async () => {
        const { log } = fx;
        const topic = topicName();
        await log.createTopic(topic, { partitions: 1 });
        const err = await expectRejection(
          log.append(topic, [{ value: 'small' }, { value: Buffer.alloc(20 * MiB) }]),
          RecordTooLargeError,
          'SLUICE_RECORD_TOO_LARGE',
        );
        expect(err.size).toBeGreaterThanOrEqual(20 * MiB);
        expect(err.max).toBeLessThan(20 * MiB);
        expect((await log.describeTopic(topic)).partitionDetails[0]!.endOffset).toBe(0);

        // The log carries on.
        expect(onlyBatch(await log.append(topic, [{ value: 'after' }])).baseOffset).toBe(0);
        expect((await log.read(topic, 0, 0)).records.map(text)).toEqual(['after']);
      });
    });

    describe('runs of values (ProducerRecord.run)', () => {
      /** Values back to back in one buffer, after `pad` bytes that belong to none of them. */
      function runOf(values: string[], pad = 3): { value: Uint8Array; run: { buf: Uint8Array; start: number; ends: Uint32Array; count: number } } {
        const parts = values.map((v) => Buffer.from(v));
        const buf = Buffer.concat([Buffer.alloc(pad, 0x21), ...parts, Buffer.alloc(5, 0x21)]);
        const ends = new Uint32Array(values.length + 2);
        let at = pad;
        parts.forEach((b, i) => (ends[i] = at += b.length));
        return { value: new Uint8Array(0), run: { buf, start: pad, ends, count: values.length } };
      }

      it('stores a run as one record a value, in order with the records around it, and reopens', async () => {
        const topic = topicName();
        await fx.log.createTopic(topic, { partitions: 1 });
        const big = 'r'.repeat(300_000);
        const result = await fx.log.append(topic, [
          { value: 'before', timestamp: 1000 },
          { ...runOf(['{"a":1}', '', big, '{"é":"✓"}']), timestamp: 2000 },
          { ...runOf([]), timestamp: 2500 },
          { value: 'after', timestamp: 3000 },
        ]);
        expect(result.batches.reduce((n, b) => n + b.count, 0)).toBe(6);
        const check = async (log: Log): Promise<void> => {
          const records = await readAll(log, topic, 0);
          expect(records.map(text)).toEqual(['before', '{"a":1}', '', big, '{"é":"✓"}', 'after']);
          expect(records.map((r) => r.offset)).toEqual([0, 1, 2, 3, 4, 5]);
          expect(records.map((r) => r.timestamp)).toEqual([1000, 2000, 2000, 2000, 2000, 3000]);
          expect(records.map((r) => r.key)).toEqual([null, null, null, null, null, null]);
        };
        await check(fx.log);
        await check(await fx.reopen());
      });

      it('checks each value against the record size limit, and refuses a run with a key', async () => {
        const topic = topicName();
        await fx.log.createTopic(topic, { partitions: 1 });
        await expectRejection(fx.log.append(topic, [runOf(['ok', 'x'.repeat(20 * MiB)])]), RecordTooLargeError, 'SLUICE_RECORD_TOO_LARGE');
        await expectRejection(fx.log.append(topic, [{ ...runOf(['a']), key: 'k' }]), InvalidArgumentError, 'SLUICE_INVALID_ARGUMENT');
        const bad = runOf(['a', 'b']);
        bad.run.ends[1] = 10_000;
        await expectRejection(fx.log.append(topic, [bad]), InvalidArgumentError, 'SLUICE_INVALID_ARGUMENT');
        expect((await fx.log.describeTopic(topic)).partitionDetails[0]!.endOffset).toBe(0);
        // Many small values split over several batches: all there, in order.
        const many = Array.from({ length: 30_000 }, (_, i) => `{"i":${i},"pad":"${'p'.repeat(60)}"}`);
        await fx.log.append(topic, [runOf(many)]);
        expect((await readAll(fx.log, topic, 0)).map(text)).toEqual(many);
      });
    });

    describe('partitioning', () => {
      it('honours an explicit partition', async () => {
        const { log } = fx;
        const topic = topicName();
        await log.createTopic(topic, { partitions: 3 });
        const result = await log.append(topic, [
          { value: 'p2', partition: 2, key: 'k' },
          { value: 'p0', partition: 0, key: 'k' },
          { value: 'p1', partition: 1 },
          { value: 'p2b', partition: 2 },
        ]);
        const byPartition = new Map(result.batches.map((b) => [b.partition, b]));
        expect(byPartition.get(0)).toMatchObject({ topic, baseOffset: 0, count: 1 });
        expect(byPartition.get(1)).toMatchObject({ topic, baseOffset: 0, count: 1 });
        expect(byPartition.get(2)).toMatchObject({ topic, baseOffset: 0, count: 2 });
        expect((await log.read(topic, 0, 0)).records.map(text)).toEqual(['p0']);
        expect((await log.read(topic, 1, 0)).records.map(text)).toEqual(['p1']);
        expect((await log.read(topic, 2, 0)).records.map(text)).toEqual(['p2', 'p2b']);
      });

      it('puts the same key in the same partition, and spreads different keys', async () => {
        const { log } = fx;
        const topic = topicName();
        await log.createTopic(topic, { partitions: 4 });
        const keys = Array.from({ length: 100 }, (_, i) => `user-${i}`);
        const partitionOf = new Map<string, number>();
        for (const key of keys) {
          partitionOf.set(key, onlyBatch(await log.append(topic, [{ key, value: 'first' }])).partition);
        }
        for (const key of keys) {
          expect(onlyBatch(await log.append(topic, [{ key, value: 'second' }])).partition).toBe(partitionOf.get(key));
        }
        expect(new Set(partitionOf.values()).size).toBe(4);

        // Keys mixed in one call land where they landed alone.
        await log.append(
          topic,
          keys.slice(0, 20).map((key) => ({ key, value: 'third' })),
        );
        for (let p = 0; p < 4; p++) {
          for (const record of await readAll(log, topic, p)) {
            expect(partitionOf.get(record.key!)).toBe(p);
          }
        }
      });

      it('keeps one call of keyless records in one partition and rotates between calls', async () => {
        const { log } = fx;
        const topic = topicName();
        await log.createTopic(topic, { partitions: 3 });
        const partitions: number[] = [];
        for (let call = 0; call < 6; call++) {
          const batch = onlyBatch(
            await log.append(
              topic,
              Array.from({ length: 5 }, (_, i) => ({ value: `${call}-${i}` })),
            ),
          );
          expect(batch.count).toBe(5);
          partitions.push(batch.partition);
        }
        expect(new Set(partitions).size).toBe(3);
        for (let i = 1; i < partitions.length; i++) expect(partitions[i]).not.toBe(partitions[i - 1]);

        // Each call's records are contiguous in its partition.
        for (let call = 0; call < 6; call++) {
          const records = (await readAll(log, topic, partitions[call]!)).filter((r) => text(r).startsWith(`${call}-`));
          expect(records.map(text)).toEqual([0, 1, 2, 3, 4].map((i) => `${call}-${i}`));
          const first = records[0]!.offset;
          expect(records.map((r) => r.offset)).toEqual([0, 1, 2, 3, 4].map((i) => first + i));
        }
      });

      it('reads back a key in the order it was appended', async () => {
        const { log } = fx;
        const topic = topicName();
        await log.createTopic(topic, { partitions: 3 });
        const keys = ['alpha', 'beta', 'gamma', 'delta'];
        for (let round = 0; round < 10; round++) {
          await log.append(
            topic,
            keys.flatMap((key) => [
              { key, value: `${key}:${round}:0` },
              { key, value: `${key}:${round}:1` },
            ]),
          );
        }
        const all = (await Promise.all([0, 1, 2].map((p) => readAll(log, topic, p)))).flat();
        for (const key of keys) {
          const values = all.filter((r) => r.key === key).map(text);
          const expected = Array.from({ length: 10 }, (_, round) => [`${key}:${round}:0`, `${key}:${round}:1`]).flat();
          expect(values).toEqual(expected);
        }
      });
    });

    describe('appendAll', () => {
      it('commits entries of two topics together and reports every batch', async () => {
        const { log } = fx;
        const a = topicName('a');
        const b = topicName('b');
        await log.createTopic(a, { partitions: 2 });
        await log.createTopic(b, { partitions: 1 });
        await log.append(b, [{ value: 'existing' }]);

        const result = await log.appendAll([
          {
            topic: a,
            records: [
              { value: 'a0-0', partition: 0 },
              { value: 'a1-0', partition: 1 },
              { value: 'a0-1', partition: 0 },
            ],
          },
          { topic: b, records: [{ value: 'b-1' }, { value: 'b-2' }] },
        ]);
        expect(result.batches).toHaveLength(3);
        expect(result.batches.slice(0, 2).map((x) => x.topic)).toEqual([a, a]);
        expect(result.batches.slice(0, 2).sort((x, y) => x.partition - y.partition)).toEqual([
          { topic: a, partition: 0, baseOffset: 0, count: 2 },
          { topic: a, partition: 1, baseOffset: 0, count: 1 },
        ]);
        expect(result.batches[2]).toEqual({ topic: b, partition: 0, baseOffset: 1, count: 2 });

        expect((await log.read(a, 0, 0)).records.map(text)).toEqual(['a0-0', 'a0-1']);
        expect((await log.read(a, 1, 0)).records.map(text)).toEqual(['a1-0']);
        expect((await log.read(b, 0, 0)).records.map(text)).toEqual(['existing', 'b-1', 'b-2']);
      });

      it('keeps nothing when one entry names a missing topic', async () => {
        const { log } = fx;
        const a = topicName('a');
        await log.createTopic(a, { partitions: 1 });
        await expectRejection(
          log.appendAll(
            [
              { topic: a, records: [{ value: 'x' }] },
              { topic: topicName('missing'), records: [{ value: 'y' }] },
            ],
            { checkpoint: { source: 'src/all-or-nothing', position: 1 } },
          ),
          UnknownTopicError,
          'SLUICE_UNKNOWN_TOPIC',
        );
        expect((await log.describeTopic(a)).partitionDetails[0]!.endOffset).toBe(0);
        expect(await log.getCheckpoint('src/all-or-nothing')).toBeUndefined();
      });
    });

    describe('acks', () => {
      it("gives offsets with 'durable' and 'written'", async () => {
        const { log } = fx;
        const topic = topicName();
        await log.createTopic(topic, { partitions: 1 });
        const durable = onlyBatch(await log.append(topic, [{ value: 'd' }], { acks: 'durable' }));
        expect(durable).toEqual({ topic, partition: 0, baseOffset: 0, count: 1 });
        const written = onlyBatch(await log.append(topic, [{ value: 'w1' }, { value: 'w2' }], { acks: 'written' }));
        expect(written).toEqual({ topic, partition: 0, baseOffset: 1, count: 2 });
        const all = await log.appendAll([{ topic, records: [{ value: 'x' }] }], { acks: 'written' });
        expect(all.batches[0]!.baseOffset).toBe(3);
        expect((await log.read(topic, 0, 0)).records.map(text)).toEqual(['d', 'w1', 'w2', 'x']);
      });

      it("gives baseOffset -1 with 'none' and the records become readable soon after", async () => {
        const { log } = fx;
        const topic = topicName();
        await log.createTopic(topic, { partitions: 2 });
        const result = await log.append(
          topic,
          [
            { value: 'n1', partition: 1 },
            { value: 'n2', partition: 1 },
          ],
          { acks: 'none' },
        );
        const batch = onlyBatch(result);
        // Soft, so a wrong placeholder still lets the readability half of the test report.
        expect.soft(batch.baseOffset).toBe(-1);
        expect(batch.count).toBe(2);
        expect(batch.topic).toBe(topic);
        const records = await waitFor(async () => {
          const read = await log.read(topic, 1, 0);
          return read.records.length >= 2 ? read.records : undefined;
        }, 3000);
        expect(records.map(text)).toEqual(['n1', 'n2']);
        expect(records.map((r) => r.offset)).toEqual([0, 1]);
      });
    });

    describe('read with maxWaitMs', () => {
      it('waits at the end and returns records appended meanwhile', async () => {
        const { log } = fx;
        const topic = topicName();
        await log.createTopic(topic, { partitions: 1 });
        await log.append(topic, [{ value: 'before' }]);
        const started = Date.now();
        const pending = settle(log.read(topic, 0, 1, { maxWaitMs: 5000 }));
        await sleep(100);
        await log.append(topic, [{ value: 'during' }]);
        const result = await resultOf(pending);
        expect(Date.now() - started).toBeLessThan(4000);
        expect(result.records.map(text)).toEqual(['during']);
        expect(result.records[0]!.offset).toBe(1);
        expect(result.nextOffset).toBe(2);
      });

      it('returns empty after the timeout when nothing comes', async () => {
        const { log } = fx;
        const topic = topicName();
        await log.createTopic(topic, { partitions: 2 });
        const started = Date.now();
        const pending = settle(log.read(topic, 0, 0, { maxWaitMs: 300 }));
        // Records for another partition must not end the wait with wrong data.
        await sleep(50);
        await log.append(topic, [{ value: 'elsewhere', partition: 1 }]);
        const result = await resultOf(pending);
        const elapsed = Date.now() - started;
        expect(result.records).toEqual([]);
        expect(result.nextOffset).toBe(0);
        expect(elapsed).toBeGreaterThanOrEqual(250);
        expect(elapsed).toBeLessThan(3000);
      });

      it('does not wait when records are already there', async () => {
        const { log } = fx;
        const topic = topicName();
        await log.createTopic(topic, { partitions: 1 });
        await log.append(topic, [{ value: 'ready' }]);
        const started = Date.now();
        const result = await log.read(topic, 0, 0, { maxWaitMs: 5000 });
        expect(Date.now() - started).toBeLessThan(1000);
        expect(result.records.map(text)).toEqual(['ready']);
      });

      it('ends the wait when the AbortSignal fires', async () => {
        const { log } = fx;
        const topic = topicName();
        await log.createTopic(topic, { partitions: 1 });
        const controller = new AbortController();
        const started = Date.now();
        const pending = settle(log.read(topic, 0, 0, { maxWaitMs: 20_000, signal: controller.signal }));
        setTimeout(() => controller.abort(), 100);
        // Either settling is fine: an empty result, or a rejection with the abort reason.
        const outcome = await pending;
        expect(Date.now() - started).toBeLessThan(3000);
        if ('result' in outcome) {
          expect(outcome.result.records).toEqual([]);
        } else {
          expect(outcome.error).toMatchObject({ name: 'AbortError' });
        }
      });
    });

    describe('offsetForTimestamp', () => {
      it('finds the first offset at or after a timestamp', async () => {
        const { log } = fx;
        const topic = topicName();
        await log.createTopic(topic, { partitions: 2 });
        const base = Date.now() - 60_000;
        await log.append(topic, [
          { value: 'a', timestamp: base + 1000, partition: 0 },
          { value: 'b', timestamp: base + 2000, partition: 0 },
        ]);
        await log.append(topic, [{ value: 'c', timestamp: base + 3000, partition: 0 }]);

        expect(await log.offsetForTimestamp(topic, 0, base + 2000)).toBe(1);
        expect(await log.offsetForTimestamp(topic, 0, base + 3000)).toBe(2);
        expect(await log.offsetForTimestamp(topic, 0, base + 1500)).toBe(1);
        expect(await log.offsetForTimestamp(topic, 0, base + 2999)).toBe(2);
        expect(await log.offsetForTimestamp(topic, 0, base + 1000)).toBe(0);
        expect(await log.offsetForTimestamp(topic, 0, base)).toBe(0);
        expect(await log.offsetForTimestamp(topic, 0, 0)).toBe(0);
        expect(await log.offsetForTimestamp(topic, 0, base + 3001)).toBeNull();
        expect(await log.offsetForTimestamp(topic, 1, base)).toBeNull();
      });
    });

    describe('consumer groups', () => {
      it('commits, fetches (all or one topic), lists and deletes groups', async () => {
        const { log } = fx;
        const a = topicName('a');
        const b = topicName('b');
        await log.createTopic(a, { partitions: 2 });
        await log.createTopic(b, { partitions: 1 });
        await log.append(a, [{ value: 'x', partition: 0 }]);

        expect(await log.fetchOffsets('g-unknown')).toEqual([]);

        await log.commitOffsets('g1', [
          { topic: a, partition: 0, offset: 1 },
          { topic: a, partition: 1, offset: 0 },
          { topic: b, partition: 0, offset: 0 },
        ]);
        await log.commitOffsets('g2', [{ topic: a, partition: 0, offset: 0 }]);
        // A later commit replaces the partition's offset and leaves the others.
        await log.commitOffsets('g1', [{ topic: a, partition: 1, offset: 0 }, { topic: a, partition: 0, offset: 1 }]);

        expect(sortOffsets(await log.fetchOffsets('g1'))).toEqual(
          sortOffsets([
            { topic: a, partition: 0, offset: 1 },
            { topic: a, partition: 1, offset: 0 },
            { topic: b, partition: 0, offset: 0 },
          ]),
        );
        expect(sortOffsets(await log.fetchOffsets('g1', a))).toEqual([
          { topic: a, partition: 0, offset: 1 },
          { topic: a, partition: 1, offset: 0 },
        ]);
        expect(await log.fetchOffsets('g1', b)).toEqual([{ topic: b, partition: 0, offset: 0 }]);
        expect(await log.fetchOffsets('g2')).toEqual([{ topic: a, partition: 0, offset: 0 }]);

        expect(await log.listGroups()).toEqual(expect.arrayContaining(['g1', 'g2']));
        await log.deleteGroup('g1');
        const groups = await log.listGroups();
        expect(groups).not.toContain('g1');
        expect(groups).toContain('g2');
        expect(await log.fetchOffsets('g1')).toEqual([]);
        expect(await log.fetchOffsets('g2')).toEqual([{ topic: a, partition: 0, offset: 0 }]);
      });

      it('keeps group offsets across close and reopen', async () => {
        const topic = topicName();
        await fx.log.createTopic(topic, { partitions: 2 });
        await fx.log.append(topic, [{ value: 'x', partition: 1 }, { value: 'y', partition: 1 }]);
        await fx.log.commitOffsets('g-durable', [
          { topic, partition: 0, offset: 0 },
          { topic, partition: 1, offset: 2 },
        ]);
        await fx.log.commitOffsets('g-gone', [{ topic, partition: 0, offset: 0 }]);
        await fx.log.deleteGroup('g-gone');

        const log = await fx.reopen();
        expect(sortOffsets(await log.fetchOffsets('g-durable'))).toEqual([
          { topic, partition: 0, offset: 0 },
          { topic, partition: 1, offset: 2 },
        ]);
        expect(await log.listGroups()).toContain('g-durable');
        expect(await log.listGroups()).not.toContain('g-gone');
      });
    });

    describe('source checkpoints', () => {
      it('returns the position committed with an append; the latest wins', async () => {
        const { log } = fx;
        const topic = topicName();
        await log.createTopic(topic, { partitions: 1 });
        expect(await log.getCheckpoint('pipeline/files')).toBeUndefined();

        const position = { files: { 'a.log': { fingerprint: 'f00d', offset: 1024 } }, lsn: '0/16B3748', n: [1, null, 'x'] };
        await log.append(topic, [{ value: 'a' }], { checkpoint: { source: 'pipeline/files', position } });
        expect(await log.getCheckpoint('pipeline/files')).toEqual(position);

        await log.append(topic, [{ value: 'b' }], { checkpoint: { source: 'pipeline/other', position: 7 } });
        const next = { files: { 'a.log': { fingerprint: 'f00d', offset: 2048 } } };
        await log.appendAll([{ topic, records: [{ value: 'c' }] }], {
          checkpoint: { source: 'pipeline/files', position: next },
        });
        expect(await log.getCheckpoint('pipeline/files')).toEqual(next);
        expect(await log.getCheckpoint('pipeline/other')).toBe(7);
        expect(await log.getCheckpoint('pipeline/never')).toBeUndefined();
      });

      it('keeps checkpoints across close and reopen', async () => {
        const topic = topicName();
        await fx.log.createTopic(topic, { partitions: 1 });
        await fx.log.append(topic, [{ value: 'a' }], { checkpoint: { source: 'src/a', position: { offset: 1 } } });
        await fx.log.append(topic, [{ value: 'b' }], { checkpoint: { source: 'src/a', position: { offset: 2 } } });
        await fx.log.append(topic, [{ value: 'c' }], { checkpoint: { source: 'src/b', position: 'tail' } });

        const log = await fx.reopen();
        expect(await log.getCheckpoint('src/a')).toEqual({ offset: 2 });
        expect(await log.getCheckpoint('src/b')).toBe('tail');
        expect(await log.getCheckpoint('src/c')).toBeUndefined();
      });
    });

    describe('concurrency', () => {
      it('keeps every record of 8 concurrent producers exactly once, dense and in producer order', { timeout: 30_000 }, async () => {
        const { log } = fx;
        const topic = topicName();
        const partitions = 3;
        const producers = 8;
        const appendsEach = 500;
        const perAppend = 3;
        await log.createTopic(topic, { partitions });

        const produce = async (producer: number): Promise<void> => {
          for (let i = 0; i < appendsEach; i++) {
            // Even producers use keys, odd ones let the log pick (sticky per call).
            const records: ProducerRecord[] = Array.from({ length: perAppend }, (_, j) => ({
              key: producer % 2 === 0 ? `p${producer}-k${(i + j) % 5}` : null,
              value: JSON.stringify({ p: producer, s: i * perAppend + j }),
            }));
            const result = await log.append(topic, records);
            expect(result.batches.reduce((n, b) => n + b.count, 0)).toBe(perAppend);
            for (const b of result.batches) expect(b.baseOffset).toBeGreaterThanOrEqual(0);
          }
        };
        await Promise.all(Array.from({ length: producers }, (_, p) => produce(p)));

        const seen = new Set<string>();
        let total = 0;
        for (let p = 0; p < partitions; p++) {
          const records = await readAll(log, topic, p);
          expect(records.map((r) => r.offset)).toEqual(records.map((_, i) => i));
          expect((await log.describeTopic(topic)).partitionDetails[p]!.endOffset).toBe(records.length);
          const last = new Map<number, number>();
          for (const record of records) {
            const { p: producer, s } = JSON.parse(text(record)) as { p: number; s: number };
            const id = `${producer}/${s}`;
            expect(seen.has(id), `record ${id} appears twice`).toBe(false);
            seen.add(id);
            expect(s, `producer ${producer} out of order in partition ${p}`).toBeGreaterThan(last.get(producer) ?? -1);
            last.set(producer, s);
          }
          total += records.length;
        }
        expect(total).toBe(producers * appendsEach * perAppend);
        expect(seen.size).toBe(producers * appendsEach * perAppend);
      });
    });

    describe('durability', () => {
      it('keeps records, end offsets and topic config across close and reopen', async () => {
        const topic = topicName();
        await fx.log.createTopic(topic, { partitions: 2, retention: { maxAgeMs: 86_400_000 } });
        const ts = Date.now() - 1000;
        await fx.log.append(
          topic,
          [
            { key: 'k', value: 'a', partition: 0, headers: { h: '1' }, timestamp: ts },
            { key: null, value: Buffer.from([0, 1, 2]), partition: 0, timestamp: ts + 1 },
            { value: 'c', partition: 0, timestamp: ts + 2 },
          ],
          { acks: 'durable' },
        );
        await fx.log.append(topic, [{ value: 'p1', partition: 1, timestamp: ts }], { acks: 'durable' });
        const before = await fx.log.describeTopic(topic);
        const recordsBefore = await readAll(fx.log, topic, 0);

        const log = await fx.reopen();
        expect(await log.listTopics()).toContain(topic);
        const after = await log.describeTopic(topic);
        expect(after.partitions).toBe(2);
        expect(after.retention).toEqual({ maxAgeMs: 86_400_000 });
        expect(after.createdAt).toBe(before.createdAt);
        expect(after.partitionDetails.map((p) => [p.startOffset, p.endOffset])).toEqual([
          [0, 3],
          [0, 1],
        ]);
        const recordsAfter = await readAll(log, topic, 0);
        expect(recordsAfter).toEqual(recordsBefore);
        expect(recordsAfter[1]!.value.toString('hex')).toBe('000102');
        expect(recordsAfter[0]).toMatchObject({ offset: 0, key: 'k', headers: { h: '1' }, timestamp: ts });

        expect(onlyBatch(await log.append(topic, [{ value: 'd', partition: 0 }])).baseOffset).toBe(3);
        expect(onlyBatch(await log.append(topic, [{ value: 'p1b', partition: 1 }])).baseOffset).toBe(1);
        expect((await log.read(topic, 0, 3)).records.map(text)).toEqual(['d']);
      });

      it('flushes appends queued with acks none on close', async () => {
        const topic = topicName();
        await fx.log.createTopic(topic, { partitions: 1 });
        for (let i = 0; i < 10; i++) await fx.log.append(topic, [{ value: `q${i}` }], { acks: 'none' });

        const log = await fx.reopen();
        const records = await readAll(log, topic, 0);
        expect(records.map(text)).toEqual(Array.from({ length: 10 }, (_, i) => `q${i}`));
      });

      it('keeps a deleted topic deleted across reopen', async () => {
        const topic = topicName();
        const kept = topicName();
        await fx.log.createTopic(topic, { partitions: 1 });
        await fx.log.createTopic(kept, { partitions: 1 });
        await fx.log.append(topic, [{ value: 'x' }]);
        await fx.log.deleteTopic(topic);

        const log = await fx.reopen();
        const topics = await log.listTopics();
        expect(topics).not.toContain(topic);
        expect(topics).toContain(kept);
      });
    });

    describe('close', () => {
      it('rejects every further call with LogClosedError', async () => {
        const topic = topicName();
        await fx.log.createTopic(topic, { partitions: 1 });
        await fx.log.append(topic, [{ value: 'x' }]);
        const log = fx.log;
        await fx.close();

        const code = 'SLUICE_LOG_CLOSED';
        await expectRejection(log.append(topic, [{ value: 'y' }]), LogClosedError, code);
        await expectRejection(log.appendAll([{ topic, records: [{ value: 'y' }] }]), LogClosedError, code);
        await expectRejection(log.read(topic, 0, 0), LogClosedError, code);
        await expectRejection(log.offsetForTimestamp(topic, 0, 0), LogClosedError, code);
        await expectRejection(log.createTopic(topicName(), { partitions: 1 }), LogClosedError, code);
        await expectRejection(log.ensureTopic(topic, { partitions: 1 }), LogClosedError, code);
        await expectRejection(log.describeTopic(topic), LogClosedError, code);
        await expectRejection(log.listTopics(), LogClosedError, code);
        await expectRejection(log.deleteTopic(topic), LogClosedError, code);
        await expectRejection(log.commitOffsets('g', [{ topic, partition: 0, offset: 1 }]), LogClosedError, code);
        await expectRejection(log.fetchOffsets('g'), LogClosedError, code);
        await expectRejection(log.listGroups(), LogClosedError, code);
        await expectRejection(log.deleteGroup('g'), LogClosedError, code);
        await expectRejection(log.getCheckpoint('s'), LogClosedError, code);
      });

      it('ends a waiting read instead of hanging', async () => {
        const topic = topicName();
        await fx.log.createTopic(topic, { partitions: 1 });
        const started = Date.now();
        const pending = settle(fx.log.read(topic, 0, 0, { maxWaitMs: 20_000 }));
        await sleep(50);
        await fx.close();
        const outcome = await pending;
        expect(Date.now() - started).toBeLessThan(5000);
        if ('result' in outcome) expect(outcome.result.records).toEqual([]);
        else expect(outcome.error).toBeInstanceOf(LogClosedError);
      });
    });
  });
}
