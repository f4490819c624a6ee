/** `sluice topics` and `sluice groups`, as real processes against a temporary data directory. */
import { describe, expect, it } from 'vitest';

import { lines, ndjson, useDataDir } from './run-sluice.js';

const fx = useDataDir();

describe('sluice topics', () => {
  it('creates with sizes and durations, lists, describes (text and JSON) and deletes', async () => {
    let r = await fx.run([
      'topics', 'create', 'orders', '--partitions', '3',
      '--retention-ms', '7d', '--retention-bytes', '10GiB', '--segment-bytes', '1MiB',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('created topic orders with 3 partitions\n');
    await fx.createTopic('audit');

    r = await fx.run(['topics', 'list']);
    expect(r.stdout).toBe('audit\norders\n');

    await fx.produce('orders', ndjson([{ a: 1 }, { a: 2 }]), ['--partition', '1']);
    r = await fx.run(['topics', 'describe', 'orders', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const d = JSON.parse(r.stdout);
    expect(d).toMatchObject({
      name: 'orders',
      partitions: 3,
      retention: { maxAgeMs: 604_800_000, maxBytes: 10 * 2 ** 30 },
      segmentBytes: 2 ** 20,
    });
    expect(d.partitionDetails[1]).toMatchObject({ partition: 1, startOffset: 0, endOffset: 2 });
    expect(d.partitionDetails[1].bytes).toBeGreaterThan(0);

    r = await fx.run(['topics', 'describe', 'orders']);
    expect(r.stdout).toContain('retention:   max age 7d, max 10 GiB per partition');
    expect(r.stdout).toMatch(/PARTITION\s+START\s+END\s+BYTES\s+SEGMENTS/);
    expect(r.stdout).toMatch(/^1\s+0\s+2\s+\d+ B\s+1$/m);

    r = await fx.run(['topics', 'delete', 'orders']);
    expect(r.code, r.stderr).toBe(0);
    expect((await fx.run(['topics', 'list'])).stdout).toBe('audit\n');

    r = await fx.run(['topics', 'describe', 'orders']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('sluice: unknown topic "orders"\n');
  });

  it('refuses a bad size with a usage error (exit 2) and creates nothing', async () => {
    const r = await fx.run(['topics', 'create', 'x', '--partitions', '1', '--retention-bytes', '10XB']);
    expect(r.code).toBe(2);
    expect(lines(r.stderr)).toHaveLength(1);
    expect(r.stderr).toMatch(/^sluice: option '--retention-bytes <size>' argument '10XB' is invalid\. expected bytes/);
  });
});

describe('sluice groups', () => {
  it('commits as it consumes, resumes, describes lag, resets and deletes', async () => {
    await fx.withLog(async (log) => {
      await log.createTopic('t', { partitions: 2 });
      await log.append('t', [0, 1, 2, 3].map((i) => ({ value: String(i), partition: 0 })));
      await log.append('t', [10, 11].map((i) => ({ value: String(i), partition: 1 })));
    });

    const first = await fx.run(['consume', 't', '--group', 'g', '--partition', '0', '--limit', '3']);
    expect(lines(first.stdout)).toEqual(['0', '1', '2']);
    let d = await fx.run(['groups', 'describe', 'g']);
    expect(d.code, d.stderr).toBe(0);
    expect(lines(d.stdout)).toEqual([
      'TOPIC  PARTITION  COMMITTED  END  LAG',
      't      0          3          4    1',
      't      1          -          2    -',
    ]);

    // Resumes at the committed offsets (partition 1 never committed: from earliest).
    const second = await fx.run(['consume', 't', '--group', 'g']);
    expect(lines(second.stdout).sort()).toEqual(['10', '11', '3']);
    expect((await fx.run(['consume', 't', '--group', 'g'])).stdout).toBe('');
    expect(JSON.parse((await fx.run(['groups', 'describe', 'g', '--json'])).stdout)).toEqual([
      { topic: 't', partition: 0, committed: 4, startOffset: 0, endOffset: 4, lag: 0 },
      { topic: 't', partition: 1, committed: 2, startOffset: 0, endOffset: 2, lag: 0 },
    ]);
    expect((await fx.run(['groups', 'list'])).stdout).toBe('g\n');

    // --from wins over the group's offsets.
    expect(lines((await fx.run(['consume', 't', '--group', 'g', '--partition', '1', '--from', '1'])).stdout)).toEqual(['11']);

    let r = await fx.run(['groups', 'reset', 'g', '--topic', 't', '--to', '1', '--partition', '0', '--dry-run']);
    expect(r.code, r.stderr).toBe(0);
    expect(lines(r.stdout)).toEqual(['TOPIC  PARTITION  OLD  NEW', 't      0          4    1']);
    expect(r.stderr).toBe('dry run: nothing was committed\n');
    expect((await fx.run(['consume', 't', '--group', 'g'])).stdout).toBe('');

    r = await fx.run(['groups', 'reset', 'g', '--topic', 't', '--to', 'earliest']);
    expect(lines(r.stdout)).toEqual(['TOPIC  PARTITION  OLD  NEW', 't      0          4    0', 't      1          2    0']);
    expect(lines((await fx.run(['consume', 't', '--group', 'g'])).stdout)).toHaveLength(6);

    // A duration back from now goes through offsetForTimestamp: every record is younger than an hour.
    r = await fx.run(['groups', 'reset', 'g', '--topic', 't', '--to', '1h']);
    expect(lines(r.stdout).slice(1)).toEqual(['t      0          4    0', 't      1          2    0']);

    r = await fx.run(['groups', 'delete', 'g']);
    expect(r.stdout).toBe('deleted group g\n');
    expect((await fx.run(['groups', 'list'])).stdout).toBe('');
    r = await fx.run(['groups', 'delete', 'g']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('sluice: unknown consumer group "g"\n');
  });
});

