/**
 * Crash recovery of the local log, as a property. A random history of appends (some carrying a
 * source checkpoint) and group-offset commits is committed and closed: that is the snapshot.
 * Then more work is done and closed, and a crash is simulated by putting commit.log back to its
 * snapshot bytes, so that work was never committed, and by damaging what lies beyond the
 * committed bytes the way a crash can: segment tails left as they are, cut, scribbled on or
 * followed by garbage, or the next commit record torn. Reopened, the log must hold exactly the
 * snapshot: the same records in order, none twice, the same start and end offsets, checkpoints
 * and group offsets; and it must take new appends at the next offsets.
 */
import { appendFile, readFile, readdir, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { openLocalLog, type LocalLog } from '../../core/log/local/index.js';
import type { GroupOffset, ProducerRecord } from '../../core/log/types.js';
import { readAll, segmentDir, tempDir, type PlainRecord } from './local-helpers.js';

const TOPICS = { a: 3, b: 1 } as const;
type TopicName = keyof typeof TOPICS;
const TOPIC_NAMES = Object.keys(TOPICS) as TopicName[];
const GROUPS = ['g1', 'g2'];
const SOURCES = ['pipeline/one', 'pipeline/two'];
const SEGMENT_BYTES = 4096;

// ---- the generated history ----

interface RecordSpec {
  /** 'explicit': a partition is given; 'key': routed by key hash; 'none': sticky. */
  route: 'explicit' | 'key' | 'none';
  partition: number;
  key: string;
  size: number;
  headers: boolean;
  timestamp: number | null;
}

type OpSpec =
  | { kind: 'append'; topic: TopicName; records: RecordSpec[]; checkpoint: number | null; acks: 'written' | 'durable' }
  | { kind: 'commit'; group: number; topic: TopicName; partition: number; offset: number };

const recordArb: fc.Arbitrary<RecordSpec> = fc.record({
  route: fc.constantFrom('explicit', 'key', 'none'),
  partition: fc.nat({ max: 2 }),
  key: fc.string({ unit: 'binary', maxLength: 12 }),
  size: fc.oneof(fc.integer({ min: 0, max: 200 }), fc.integer({ min: 200, max: 1500 }), fc.integer({ min: 3000, max: 5000 })),
  headers: fc.boolean(),
  timestamp: fc.option(fc.integer({ min: 0, max: 4_000_000_000_000 }), { nil: null }),
});

const opArb: fc.Arbitrary<OpSpec> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('append' as const),
      topic: fc.constantFrom(...TOPIC_NAMES),
      records: fc.array(recordArb, { minLength: 1, maxLength: 6 }),
      checkpoint: fc.option(fc.nat({ max: 1 }), { nil: null }),
      acks: fc.constantFrom('written' as const, 'durable' as const),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('commit' as const),
      group: fc.nat({ max: GROUPS.length - 1 }),
      topic: fc.constantFrom(...TOPIC_NAMES),
      partition: fc.nat({ max: 2 }),
      offset: fc.nat({ max: 60 }),
    }),
  },
);

/** Ops in waves: the ops of one wave run concurrently (and so share flush cycles). */
const wavesArb = (min: number, max: number): fc.Arbitrary<OpSpec[][]> =>
  fc.array(fc.array(opArb, { minLength: 1, maxLength: 4 }), { minLength: min, maxLength: max });

type TailDamage = 'none' | 'cut' | 'flip' | 'garbage' | 'garbage-segment';
type CommitDamage = 'restore' | 'torn' | 'garbage';

const scenarioArb = fc.record({
  before: wavesArb(1, 8),
  after: wavesArb(1, 6),
  tail: fc.constantFrom<TailDamage>('none', 'cut', 'flip', 'garbage', 'garbage-segment'),
  commit: fc.constantFrom<CommitDamage>('restore', 'torn', 'garbage'),
  seed: fc.integer(),
});

// ---- running it ----

/** A small deterministic PRNG for the damage, so that a failing seed replays exactly. */
function prng(seed: number): (n: number) => number {
  let s = seed >>> 0 || 1;
  return (n) => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s % n;
  };
}

let serial = 0;

function toRecord(spec: RecordSpec, topic: TopicName, tag: string): ProducerRecord {
  const head = `${tag}#${serial++}|`;
  const r: ProducerRecord = { value: head + 'v'.repeat(Math.max(0, spec.size - head.length)) };
  if (spec.route === 'explicit') r.partition = spec.partition % TOPICS[topic];
  if (spec.route === 'key') r.key = spec.key;
  if (spec.headers) r.headers = { tag, 'x-ü': spec.key };
  if (spec.timestamp !== null) r.timestamp = spec.timestamp;
  return r;
}

/** Runs the waves; returns the values of every acknowledged record (as hex) per topic. */
async function run(log: LocalLog, waves: OpSpec[][], tag: string, acked: Map<TopicName, string[]>): Promise<void> {
  for (const wave of waves) {
    await Promise.all(
      wave.map(async (op) => {
        if (op.kind === 'commit') {
          await log.commitOffsets(GROUPS[op.group]!, [
            { topic: op.topic, partition: op.partition % TOPICS[op.topic], offset: op.offset },
          ]);
          return;
        }
        const records = op.records.map((r) => toRecord(r, op.topic, tag));
        const options =
          op.checkpoint === null
            ? { acks: op.acks }
            : { acks: op.acks, checkpoint: { source: SOURCES[op.checkpoint]!, position: { tag, n: serial, s: 'ü€𝄞' } } };
        const result = await log.append(op.topic, records, options);
        expect(result.batches.reduce((n, b) => n + b.count, 0)).toBe(records.length);
        for (const r of records) acked.get(op.topic)!.push(Buffer.from(r.value as string).toString('hex'));
      }),
    );
  }
}

interface Snapshot {
  records: Map<string, PlainRecord[]>;
  ranges: Map<string, { startOffset: number; endOffset: number }>;
  checkpoints: unknown[];
  groups: GroupOffset[][];
  listGroups: string[];
}

async function capture(log: LocalLog): Promise<Snapshot> {
  const records = new Map<string, PlainRecord[]>();
  const ranges = new Map<string, { startOffset: number; endOffset: number }>();
  for (const topic of TOPIC_NAMES) {
    const d = await log.describeTopic(topic);
    for (const p of d.partitionDetails) {
      ranges.set(`${topic}/${p.partition}`, { startOffset: p.startOffset, endOffset: p.endOffset });
      records.set(`${topic}/${p.partition}`, await readAll(log, topic, p.partition, p.startOffset, 3000));
    }
  }
  return {
    records,
    ranges,
    checkpoints: await Promise.all(SOURCES.map((s) => log.getCheckpoint(s))),
    groups: await Promise.all(GROUPS.map((g) => log.fetchOffsets(g))),
    listGroups: await log.listGroups(),
  };
}

/** Sizes of every segment file, keyed by path; and which one is each partition's last. */
async function segmentFiles(dir: string): Promise<{ sizes: Map<string, number>; last: Set<string> }> {
  const sizes = new Map<string, number>();
  const last = new Set<string>();
  for (const topic of TOPIC_NAMES) {
    for (let p = 0; p < TOPICS[topic]; p++) {
      const pdir = segmentDir(dir, topic, p);
      const logs = (await readdir(pdir)).filter((f) => f.endsWith('.log')).sort();
      for (const f of logs) sizes.set(join(pdir, f), (await stat(join(pdir, f))).size);
      if (logs.length > 0) last.add(join(pdir, logs.at(-1)!));
    }
  }
  return { sizes, last };
}

async function damageTails(dir: string, kind: TailDamage, committed: Awaited<ReturnType<typeof segmentFiles>>, rnd: (n: number) => number): Promise<string> {
  const now = await segmentFiles(dir);
  // Bytes a crash may have left in any state: past the committed length of the segment that was
  // active at the snapshot, and all of any segment created after it. Closed segments were
  // complete and fsynced before the next one was created, so a crash cannot touch them.
  const candidates: { path: string; from: number; size: number }[] = [];
  for (const [path, size] of now.sizes) {
    const before = committed.sizes.get(path);
    if (before === undefined) candidates.push({ path, from: 0, size });
    else if (committed.last.has(path)) candidates.push({ path, from: before, size });
  }
  const grown = candidates.filter((c) => c.size > c.from);
  switch (kind) {
    case 'none':
      return 'none';
    case 'cut': {
      if (grown.length === 0) return 'cut: nothing beyond the commit';
      const c = grown[rnd(grown.length)]!;
      const at = c.from + rnd(c.size - c.from);
      await truncate(c.path, at);
      return `cut ${c.path} at ${at} (committed ${c.from}, was ${c.size})`;
    }
    case 'flip': {
      if (grown.length === 0) return 'flip: nothing beyond the commit';
      const c = grown[rnd(grown.length)]!;
      const buf = await readFile(c.path);
      const flips: number[] = [];
      for (let k = 1 + rnd(8); k > 0; k--) {
        const at = c.from + rnd(c.size - c.from);
        buf[at]! ^= 1 + rnd(255);
        flips.push(at);
      }
      await writeFile(c.path, buf);
      return `flip ${c.path} at ${flips.join(',')} (committed ${c.from})`;
    }
    case 'garbage': {
      const c = candidates[rnd(candidates.length)]!;
      const junk = Buffer.from(Array.from({ length: 1 + rnd(3000) }, () => rnd(256)));
      await appendFile(c.path, junk);
      return `garbage ${junk.length} bytes after ${c.path}`;
    }
    case 'garbage-segment': {
      // A segment file past everything committed, as a roll that was never committed leaves.
      const c = candidates[rnd(candidates.length)]!;
      const path = join(c.path, '..', `${String(100_000 + rnd(1000)).padStart(20, '0')}.log`);
      await writeFile(path, Buffer.from(Array.from({ length: rnd(5000) }, () => rnd(256))));
      return `garbage segment ${path}`;
    }
  }
}

async function damageCommitLog(path: string, kind: CommitDamage, snapshot: Buffer, rnd: (n: number) => number): Promise<string> {
  const later = await readFile(path);
  const extends_ = later.length > snapshot.length && later.subarray(0, snapshot.length).equals(snapshot);
  if (kind === 'torn' && extends_) {
    // The first commit record after the snapshot, cut short inside its header or payload.
    const next = 8 + later.readUInt32LE(snapshot.length);
    const keep = 1 + rnd(next - 1);
    await writeFile(path, later.subarray(0, snapshot.length + keep));
    return `torn commit: ${keep} of ${next} bytes`;
  }
  if (kind === 'garbage') {
    const junk = Buffer.from(Array.from({ length: 1 + rnd(200) }, () => rnd(256)));
    await writeFile(path, Buffer.concat([snapshot, junk]));
    return `commit log + ${junk.length} garbage bytes`;
  }
  await writeFile(path, snapshot);
  return 'commit log restored';
}

async function openAt(dir: string, warnings: string[]): Promise<LocalLog> {
  return openLocalLog({ dir, retentionSchedule: false, segmentBytes: SEGMENT_BYTES, indexIntervalBytes: 512, onWarning: (m) => warnings.push(m) });
}

function sortedCounts(values: string[]): string[] {
  return [...values].sort();
}

// ---- the property ----

describe('recovery', () => {
  it('after a crash the log holds exactly what was committed, and goes on from there', async () => {
    await fc.assert(
      fc.asyncProperty(scenarioArb, async (scenario) => {
        const { dir, cleanup } = await tempDir('recovery');
        const warnings: string[] = [];
        const opened: LocalLog[] = [];
        const open = async (): Promise<LocalLog> => {
          const log = await openAt(dir, warnings);
          opened.push(log);
          return log;
        };
        try {
          // 1. The committed history.
          let log = await open();
          for (const [t, n] of Object.entries(TOPICS)) await log.createTopic(t, { partitions: n });
          const acked = new Map<TopicName, string[]>(TOPIC_NAMES.map((t) => [t, []]));
          await run(log, scenario.before, 'before', acked);
          await log.close();
          const commitPath = join(dir, 'commit.log');
          const committedCommitLog = await readFile(commitPath);
          const committedFiles = await segmentFiles(dir);

          // 2. What it holds, read back; it must be everything that was acknowledged.
          log = await open();
          const expected = await capture(log);
          for (const t of TOPIC_NAMES) {
            const stored = [...expected.records].filter(([k]) => k.startsWith(`${t}/`)).flatMap(([, rs]) => rs.map((r) => r.value));
            expect(sortedCounts(stored)).toEqual(sortedCounts(acked.get(t)!));
          }

          // 3. More work, then the crash: it never committed.
          await run(log, scenario.after, 'after', new Map(TOPIC_NAMES.map((t) => [t, []])));
          await log.close();
          const rnd = prng(scenario.seed);
          const what = [
            await damageCommitLog(commitPath, scenario.commit, committedCommitLog, rnd),
            await damageTails(dir, scenario.tail, committedFiles, rnd),
          ].join('; ');

          // 4. Recovered: exactly the snapshot.
          log = await open();
          const got = await capture(log);
          expect(got.ranges, what).toEqual(expected.ranges);
          for (const [k, records] of expected.records) {
            const back = got.records.get(k)!;
            expect(back.map((r) => r.offset), `${what}: offsets of ${k}`).toEqual(records.map((_, i) => expected.ranges.get(k)!.startOffset + i));
            expect(back, `${what}: records of ${k}`).toEqual(records);
          }
          expect(got.checkpoints, what).toEqual(expected.checkpoints);
          expect(got.groups, what).toEqual(expected.groups);
          expect(got.listGroups, what).toEqual(expected.listGroups);

          // 5. New appends follow on at the next offsets, and are there after another reopen.
          for (const topic of TOPIC_NAMES) {
            for (let p = 0; p < TOPICS[topic]; p++) {
              const r = await log.append(topic, [{ value: `new-${topic}-${p}`, partition: p }]);
              expect(r.batches[0]!.baseOffset, `${what}: next offset of ${topic}/${p}`).toBe(expected.ranges.get(`${topic}/${p}`)!.endOffset);
            }
          }
          await log.close();
          log = await open();
          for (const topic of TOPIC_NAMES) {
            for (let p = 0; p < TOPICS[topic]; p++) {
              const k = `${topic}/${p}`;
              const back = await readAll(log, topic, p, expected.ranges.get(k)!.startOffset, 5000);
              expect(back.slice(0, -1), `${what}: ${k} after new appends`).toEqual(expected.records.get(k));
              expect(Buffer.from(back.at(-1)!.value, 'hex').toString(), what).toBe(`new-${topic}-${p}`);
            }
          }
          await log.close();
        } finally {
          for (const l of opened) await l.close().catch(() => undefined);
          await cleanup();
        }
      }),
      { numRuns: 25 },
    );
  });
});
