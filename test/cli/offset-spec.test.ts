import { describe, expect, it } from 'vitest';

import { BadPartitionError, InvalidArgumentError } from '../../core/log/errors.js';
import { formatOffsetSpec, parseOffsetSpec, resolveOffset } from '../../core/log/offset-spec.js';
import type { OffsetSpec } from '../../core/log/offset-spec.js';
import type { Log, TopicDescription } from '../../core/log/types.js';

describe('parseOffsetSpec', () => {
  it.each<[string, OffsetSpec]>([
    ['earliest', { kind: 'earliest' }],
    ['latest', { kind: 'latest' }],
    ['0', { kind: 'offset', offset: 0 }],
    ['42', { kind: 'offset', offset: 42 }],
    [' 7 ', { kind: 'offset', offset: 7 }],
    ['2024-05-01T12:00:00Z', { kind: 'timestamp', timestamp: Date.UTC(2024, 4, 1, 12) }],
    ['2024-05-01T12:00:00.250+02:00', { kind: 'timestamp', timestamp: Date.UTC(2024, 4, 1, 10, 0, 0, 250) }],
    ['2024-05-01', { kind: 'timestamp', timestamp: Date.UTC(2024, 4, 1) }],
    ['10m', { kind: 'ago', ms: 600_000 }],
    ['2h', { kind: 'ago', ms: 7_200_000 }],
    ['7d', { kind: 'ago', ms: 604_800_000 }],
    ['1h30m', { kind: 'ago', ms: 5_400_000 }],
    ['500ms', { kind: 'ago', ms: 500 }],
  ])('%j', (text, spec) => {
    expect(parseOffsetSpec(text)).toEqual(spec);
  });

  it.each(['', 'first', 'EARLIEST', '-1', '1.5', '2024-13-45T00:00:00Z', '2024-05-01Tnope', '10 minutes', '10M', 'now', '99999999999999999999'])(
    'rejects %j with the accepted forms',
    (text) => {
      expect(() => parseOffsetSpec(text)).toThrow(InvalidArgumentError);
      expect(() => parseOffsetSpec(text)).toThrow(/invalid position/);
    },
  );

  it('formats back to something it parses to the same spec', () => {
    for (const text of ['earliest', 'latest', '42', '2024-05-01T12:00:00.000Z', '90m']) {
      const spec = parseOffsetSpec(text);
      expect(parseOffsetSpec(formatOffsetSpec(spec))).toEqual(spec);
    }
  });
});

describe('resolveOffset', () => {
  // Partition 0 holds offsets 10..20 (0..9 removed by retention); record i has timestamp 1000 * i.
  const description: TopicDescription = {
    name: 't',
    partitions: 1,
    retention: {},
    segmentBytes: 1,
    segmentMs: 1,
    createdAt: 0,
    partitionDetails: [{ partition: 0, startOffset: 10, endOffset: 20, bytes: 0, segments: 1 }],
  };
  const asked: number[] = [];
  const log: Pick<Log, 'describeTopic' | 'offsetForTimestamp'> = {
    describeTopic: async () => description,
    offsetForTimestamp: async (_topic, _partition, timestamp) => {
      asked.push(timestamp);
      const offset = Math.ceil(timestamp / 1000);
      return offset >= 20 ? null : Math.max(offset, 10);
    },
  };
  const resolve = (text: string, now?: number) => resolveOffset(log, 't', 0, parseOffsetSpec(text), { now });

  it('maps earliest and latest to the start and end offsets', async () => {
    expect(await resolve('earliest')).toBe(10);
    expect(await resolve('latest')).toBe(20);
  });

  it('clamps offsets into [start, end]', async () => {
    expect(await resolve('15')).toBe(15);
    expect(await resolve('3')).toBe(10);
    expect(await resolve('99')).toBe(20);
  });

  it('finds times through offsetForTimestamp, and the end when nothing is that recent', async () => {
    expect(await resolve(new Date(12_500).toISOString())).toBe(13);
    expect(await resolve(new Date(1_000_000).toISOString())).toBe(20);
  });

  it('counts durations back from now', async () => {
    asked.length = 0;
    expect(await resolve('5s', 20_000)).toBe(15);
    expect(asked).toEqual([15_000]);
  });

  it('rejects a partition the topic does not have', async () => {
    await expect(resolveOffset(log, 't', 3, { kind: 'earliest' })).rejects.toBeInstanceOf(BadPartitionError);
  });
});
