/** `sluice produce` and `sluice consume`, as real processes against a temporary data directory. */
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';

import { describe, expect, it } from 'vitest';

import { consume } from '../../core/cli/consume.js';
import { produceNdjson } from '../../core/cli/produce.js';
import { openLocalLog } from '../../core/log/local/index.js';
import { envelopes, finish, lines, ndjson, start, useDataDir } from './run-sluice.js';

const fx = useDataDir();

describe('sluice produce and consume', () => {
  it('round-trips NDJSON values byte for byte, skipping blank lines', async () => {
    await fx.createTopic('t');
    const input = '{"b":2, "a":1}\n\n   \n[1,2,3]\n"text"\n{"uni":"ünï 🚀"}\r\n42\n{"last":true}';
    const r = await fx.produce('t', input);
    expect(r.stderr).toBe('produced 6 records to t (partition 0: 6)\n');

    const out = await fx.run(['consume', 't']);
    expect(out.code, out.stderr).toBe(0);
    expect(out.stderr).toBe('');
    expect(out.stdout).toBe('{"b":2, "a":1}\n[1,2,3]\n"text"\n{"uni":"ünï 🚀"}\n42\n{"last":true}\n');
  });

  it('keys by a field (dot path too) and keeps each key in produced order across partitions', async () => {
    await fx.createTopic('t', 4);
    const values = Array.from({ length: 300 }, (_, i) => ({ seq: i, user: { id: `u${i % 7}` } }));
    const r = await fx.produce('t', ndjson(values), ['--key', 'user.id']);
    expect(r.stderr).toMatch(/^produced 300 records to t \(partitions \d: \d+/);

    const out = await fx.run(['consume', 't', '--envelope']);
    expect(out.code, out.stderr).toBe(0);
    const records = envelopes(out.stdout);
    expect(records).toHaveLength(300);
    const partitionsOfKey = new Map<string, Set<number>>();
    const lastSeq = new Map<string, number>();
    for (const e of records) {
      const value = e.value as (typeof values)[number];
      expect(e.topic).toBe('t');
      expect(e.key).toBe(value.user.id);
      expect(e.headers).toEqual({});
      expect(Number.isNaN(Date.parse(e.timestamp))).toBe(false);
      expect(value.seq).toBeGreaterThan(lastSeq.get(e.key!) ?? -1);
      lastSeq.set(e.key!, value.seq);
      partitionsOfKey.set(e.key!, (partitionsOfKey.get(e.key!) ?? new Set()).add(e.partition));
    }
    for (const set of partitionsOfKey.values()) expect(set.size).toBe(1);
    expect(new Set(records.map((e) => e.partition)).size).toBeGreaterThan(1);
  });

  it('shows values that are not JSON as strings in the envelope, and keeps keys and headers', async () => {
    // Other writers (connectors) may store anything: write such records through the Log itself.
    const log = await openLocalLog({ dir: fx.dataDir, retentionSchedule: false });
    await log.createTopic('t', { partitions: 1 });
    await log.append('t', [
      { value: 'plain text', key: 'k1', headers: { source: 'test' }, timestamp: Date.UTC(2024, 4, 1, 12) },
      { value: '{\n  "pretty": true\n}' },
      { value: ' {"a":1} ' },
    ]);
    await log.close();

    const out = await fx.run(['consume', 't', '--envelope']);
    expect(out.code, out.stderr).toBe(0);
    expect(lines(out.stdout)).toEqual([
      '{"topic":"t","partition":0,"offset":0,"timestamp":"2024-05-01T12:00:00.000Z","key":"k1","headers":{"source":"test"},"value":"plain text"}',
      expect.stringMatching(/^\{"topic":"t","partition":0,"offset":1,.*"key":null,"headers":\{\},"value":\{"pretty":true\}\}$/),
      expect.stringMatching(/"offset":2,.*"value":\{"a":1\}\}$/),
    ]);
    // Without --envelope the stored bytes come out as they are.
    expect((await fx.run(['consume', 't'])).stdout).toBe('plain text\n{\n  "pretty": true\n}\n {"a":1} \n');
  });

  it('counts records whose key field is missing', async () => {
    await fx.createTopic('t');
    const r = await fx.produce('t', ndjson([{ id: 'a' }, { other: 1 }, { id: 7 }]), ['--key', 'id']);
    expect(r.stderr).toBe('produced 3 records to t (partition 0: 3); 1 without id, so without key\n');
    const keys = envelopes((await fx.run(['consume', 't', '--envelope'])).stdout).map((e) => e.key);
    expect(keys).toEqual(['a', null, '7']);
  });

  it('reads from earliest, latest, an offset, an ISO time and a duration ago', async () => {
    const now = Date.now();
    const hour = 3_600_000;
    await fx.withLog(async (log) => {
      await log.createTopic('t', { partitions: 1 });
      await log.append('t', [0, 1, 2, 3, 4].map((i) => ({ value: String(i), timestamp: now - (5 - i) * hour })));
    });
    const from = async (spec: string) => {
      const r = await fx.run(['consume', 't', '--from', spec]);
      expect(r.code, r.stderr).toBe(0);
      return lines(r.stdout).map(Number);
    };
    expect(await from('earliest')).toEqual([0, 1, 2, 3, 4]);
    expect(await from('latest')).toEqual([]);
    expect(await from('2')).toEqual([2, 3, 4]);
    expect(await from('999')).toEqual([]);
    expect(await from(new Date(now - 2.5 * hour).toISOString())).toEqual([3, 4]);
    expect(await from('150m')).toEqual([3, 4]);
    expect(await from('10s')).toEqual([]);
  });

  it('stops after --limit records and reads one --partition', async () => {
    await fx.withLog(async (log) => {
      await log.createTopic('t', { partitions: 2 });
      await log.append('t', [0, 1, 2].map((i) => ({ value: String(i), partition: 0 })));
      await log.append('t', [10, 11].map((i) => ({ value: String(i), partition: 1 })));
    });
    expect(lines((await fx.run(['consume', 't', '--partition', '1'])).stdout)).toEqual(['10', '11']);
    expect(lines((await fx.run(['consume', 't', '--partition', '0', '--limit', '2'])).stdout)).toEqual(['0', '1']);
    const limited = await fx.run(['consume', 't', '--limit', '4']);
    expect(lines(limited.stdout)).toHaveLength(4);

    const missing = await fx.run(['consume', 't', '--partition', '5']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe('sluice: topic "t" has no partition 5 (it has 2: 0..1)\n');
  });

  it('stops at a bad line: reports its number, appends everything before it and nothing after', async () => {
    await fx.createTopic('t', 3);
    // Past the first batches (1000 lines each), so appends before the bad line are in flight.
    const good = Array.from({ length: 2500 }, (_, i) => `{"seq":${i}}\n`);
    const input = `${good.join('')}{"seq": oops}\n{"seq":2500}\n{"seq":2501}\n`;
    const r = await fx.run(['produce', 't'], input);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^sluice: line 2501: invalid JSON: .* \(the 2500 records before it were appended\)\n$/);
    expect(lines(r.stderr)).toHaveLength(1);

    const seqs = lines((await fx.run(['consume', 't'])).stdout).map((line) => (JSON.parse(line) as { seq: number }).seq);
    expect(seqs.sort((a, b) => a - b)).toEqual(Array.from({ length: 2500 }, (_, i) => i));
  });

  it('reports a bad first line with nothing appended, and a key field holding an object', async () => {
    await fx.createTopic('t');
    let r = await fx.run(['produce', 't'], 'not json\n{"a":1}\n');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^sluice: line 1: invalid JSON: .*\(nothing was appended\)\n$/);
    r = await fx.run(['produce', 't', '--key', 'k'], '{"k":"x"}\n\n{"k":{"nested":1}}\n');
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      'sluice: line 3: key field k holds an object; expected a string or a number (the 1 record before it was appended)\n',
    );
    expect(lines((await fx.run(['consume', 't'])).stdout)).toEqual(['{"k":"x"}']);
  });

  it('follows until SIGINT, then exits 0 after closing the log', async () => {
    await fx.createTopic('t');
    await fx.produce('t', ndjson([1, 2]));
    const child = start(['consume', 't', '--follow', '--group', 'g', '--data-dir', fx.dataDir]);
    const done = finish(child);
    let seen = '';
    child.stdout!.on('data', (chunk: Buffer) => (seen += chunk.toString()));
    for (let i = 0; i < 200 && seen !== '1\n2\n'; i++) await sleep(25);
    expect(seen).toBe('1\n2\n');

    // The follower owns the data directory meanwhile: a second process is told so in one line.
    const locked = await fx.run(['produce', 't'], '3\n');
    expect(locked.code).toBe(1);
    expect(locked.stderr).toMatch(/^sluice: data directory .* is in use by another sluice process/);
    expect(lines(locked.stderr)).toHaveLength(1);

    child.kill('SIGINT');
    const r = await done;
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const described = await fx.run(['groups', 'describe', 'g', '--json']);
    expect(JSON.parse(described.stdout)).toEqual([
      { topic: 't', partition: 0, committed: 2, startOffset: 0, endOffset: 2, lag: 0 },
    ]);
  });

  it('appends a partial batch as soon as the input pauses (tail -f | sluice produce)', async () => {
    await fx.createTopic('t');
    const child = start(['produce', 't', '--data-dir', fx.dataDir]);
    const done = finish(child);
    child.stdin!.write('{"first":1}\n{"second":2}\n');
    // Well past the 100 ms linger (and a start-up on a loaded machine); then SIGKILL, so only what
    // was appended by now survives.
    await sleep(2500);
    child.kill('SIGKILL');
    expect((await done).signal).toBe('SIGKILL');
    expect((await fx.run(['consume', 't'])).stdout).toBe('{"first":1}\n{"second":2}\n');
  });

  it('stops quietly when the reader goes away (EPIPE)', async () => {
    await fx.withLog(async (log) => {
      await log.createTopic('t', { partitions: 1 });
      await log.append('t', Array.from({ length: 20_000 }, (_, i) => ({ value: JSON.stringify({ i, pad: 'x'.repeat(100) }) })));
    });
    const child = start(['consume', 't', '--follow', '--data-dir', fx.dataDir]);
    const done = finish(child);
    await new Promise((resolve) => child.stdout!.once('data', resolve));
    child.stdout!.destroy();
    const r = await done;
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });
});


describe('produce and consume in process', () => {
  async function waitUntil(condition: () => boolean, timeoutMs = 5000) {
    const deadline = Date.now() + timeoutMs;
    while (!condition()) {
      if (Date.now() > deadline) throw new Error('condition not met in time');
      await sleep(5);
    }
  }

  it('follows every partition at once: a new record on any of them ends the wait', async () => {
    const log = await openLocalLog({ dir: fx.dataDir, retentionSchedule: false });
    try {
      await log.createTopic('t', { partitions: 3 });
      await log.append('t', [{ value: '"old"', partition: 0 }]);
      const output = new PassThrough();
      let text = '';
      output.on('data', (chunk: Buffer) => (text += chunk.toString()));
      const controller = new AbortController();
      const running = consume(log, 't', {
        follow: true,
        output,
        signal: controller.signal,
        group: 'g',
        waitMs: 10_000,
        commitIntervalMs: 0,
      });
      await waitUntil(() => text === '"old"\n');

      let started = Date.now();
      await log.append('t', [{ value: '"p2"', partition: 2 }]);
      await waitUntil(() => text.endsWith('"p2"\n'));
      await log.append('t', [{ value: '"p1a"', partition: 1 }, { value: '"p1b"', partition: 1 }]);
      await waitUntil(() => text.endsWith('"p1a"\n"p1b"\n'));
      // Far below the 10 s wait: the partitions that got nothing stopped waiting.
      expect(Date.now() - started).toBeLessThan(3000);

      started = Date.now();
      controller.abort();
      expect(await running).toEqual({ records: 4, stoppedBy: 'signal' });
      expect(Date.now() - started).toBeLessThan(3000);
      const committed = (await log.fetchOffsets('g', 't')).sort((a, b) => a.partition - b.partition);
      expect(committed.map((o) => [o.partition, o.offset])).toEqual([
        [0, 1],
        [1, 2],
        [2, 1],
      ]);
    } finally {
      await log.close();
    }
  });

  it('stops following at --limit', async () => {
    const log = await openLocalLog({ dir: fx.dataDir, retentionSchedule: false });
    try {
      await log.createTopic('t', { partitions: 2 });
      const output = new PassThrough();
      output.resume();
      const running = consume(log, 't', { follow: true, limit: 3, output, waitMs: 10_000 });
      await log.append('t', [{ value: '1' }, { value: '2' }]);
      await log.append('t', [{ value: '3' }, { value: '4' }]);
      expect(await running).toEqual({ records: 3, stoppedBy: 'limit' });
    } finally {
      await log.close();
    }
  });

  it('produces from any async iterable, splitting lines across chunks', async () => {
    const log = await openLocalLog({ dir: fx.dataDir, retentionSchedule: false });
    try {
      await log.createTopic('t', { partitions: 1 });
      async function* chunks() {
        yield '{"a":';
        yield Buffer.from('1}\n{"a"');
        yield ':2}\r\n\n{"a":3}';
      }
      const summary = await produceNdjson(log, 't', chunks(), { maxBatchRecords: 2 });
      expect(summary.records).toBe(3);
      const read = await log.read('t', 0, 0);
      expect(read.records.map((r) => r.value.toString())).toEqual(['{"a":1}', '{"a":2}', '{"a":3}']);
    } finally {
      await log.close();
    }
  });
  it('rejects invalid UTF-8 and over-long lines by number, keeping the lines before them', async () => {
    await fx.withLog(async (log) => {
      await log.createTopic('t', { partitions: 1 });
      async function* input(...chunks: (string | Buffer)[]) {
        yield* chunks;
      }
      await expect(
        produceNdjson(log, 't', input('"a"\n', Buffer.from([0x22, 0xff, 0x22, 0x0a]), '"c"\n')),
      ).rejects.toThrow('line 2: not valid UTF-8 (the 1 record before it was appended)');
      await expect(
        produceNdjson(log, 't', input('"b"\n\n"', 'x'.repeat(40), 'y'.repeat(40)), { maxLineBytes: 64 }),
      ).rejects.toMatchObject({ code: 'SLUICE_BAD_INPUT', line: 3, message: 'line 3: longer than 64 bytes (the 1 record before it was appended)' });
      const read = await log.read('t', 0, 0);
      expect(read.records.map((r) => r.value.toString())).toEqual(['"a"', '"b"']);
    });
  });
});
