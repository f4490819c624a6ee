/**
 * The embedded log: topics of partitions in a data directory, written by group commit.
 *
 * Appends are encoded by the caller's call (so encoding runs while the previous flush waits on
 * the disk) and queued. One flush cycle at a time takes everything queued, places and writes it,
 * fsyncs the touched files once (when any waiter asked for durability), then appends one commit
 * record with every touched partition's new end, the checkpoints and group offsets it carries,
 * and fsyncs that. Only then are the records visible to readers and the appends resolved.
 *
 * Layout of the data directory:
 *   LOCK                       pid of the owning process
 *   commit.log                 commit records (see commit-log.ts)
 *   topics/<name>/topic.json   id, partitions, retention, segment settings
 *   topics/<name>/<p>/<base>.log|.index   segments (see segment.ts, codec.ts)
 */
import { mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { schedule, validate as validateCron, type ScheduledTask } from 'node-cron';
import { SlabPool } from '../../util/slab-pool.js';
import { BatchCache } from './batch-cache.js';
import { BatchBufferPool, encodeBatch, fitsDelta, recordSize, TARGET_BATCH_BYTES } from './codec.js';
import {
  CommitLog,
  CommitState,
  type CommitRecord,
  type GroupCommit,
  type PartitionCommit,
  type PartitionPoint,
} from './commit-log.js';
import { acquireLock, fsyncDir, isErrno, writeFileAtomic } from './fs-util.js';
import { Partition, type PlacedBatch, type SegmentSettings } from './partition.js';
import type { Segment } from './segment.js';
import { LOCAL_DEFAULTS, type LocalLogOptions } from './options.js';
import { StickyPartitioner } from '../partitioner.js';
import { checkAcks, checkpointJson, checkRecord, checkRun, choosePartition, recordTimestamp } from '../records.js';
import { checkTopicConfig, checkTopicName } from '../topic-name.js';
import {
  AppendFailedError,
  BadPartitionError,
  InvalidArgumentError,
  LogClosedError,
  LogError,
  LogFailedError,
  OffsetOutOfRangeError,
  RecordTooLargeError,
  StorageFullError,
  TopicExistsError,
  UnknownTopicError,
} from '../errors.js';
import type {
  Acks,
  AppendEntry,
  AppendOptions,
  AppendResult,
  AppendedBatch,
  GroupOffset,
  Log,
  ProducerRecord,
  ReadOptions,
  ReadResult,
  ValuesReadResult,
  RetentionConfig,
  TopicConfig,
  TopicDescription,
} from '../types.js';

interface TopicMeta {
  id: string;
  name: string;
  partitions: number;
  retention: RetentionConfig;
  segmentBytes: number;
  segmentMs: number;
  createdAt: number;
}

interface Topic {
  meta: TopicMeta;
  dir: string;
  parts: Partition[];
}

interface Waiting {
  resolve: () => void;
  reject: (err: unknown) => void;
}

interface AppendOp extends Waiting {
  kind: 'append';
  placed: { topic: Topic; part: Partition; batch: PlacedBatch }[];
  checkpoint: AppendOptions['checkpoint'];
  chain: string | undefined;
  acks: Acks;
  bytes: number;
}

interface MetaOp extends Waiting {
  kind: 'meta';
  record: Omit<CommitRecord, 'seq'>;
  /** Set when a write failed: the cycle is undone instead of committed. */
  error?: unknown;
}

type Op = AppendOp | MetaOp;

/** A cycle whose data is written and whose commit record is ready. */
interface WrittenCycle {
  ops: Op[];
  bytes: number;
  durable: boolean;
  now: number;
  points: Map<Partition, PartitionPoint>;
  record: Omit<CommitRecord, 'seq'>;
  /** Set when a write failed: the cycle is undone instead of committed. */
  error?: unknown;
}

/** Cycles whose writes may be out while earlier cycles wait for their fsyncs and commit records. */
const PIPELINE_DEPTH = 2;
/** Written cycles are merged into one commit while appends keep arriving, up to this many bytes. */
const MERGE_BYTES = 8 * 1024 * 1024;
/** ... and for at most this long, so a steady stream of appends is still committed promptly. */
const MERGE_MS = 5;

function hasDrops(r: Omit<CommitRecord, 'seq'>): boolean {
  return r.dropTopicIds !== undefined || r.dropGroupTopics !== undefined || r.dropGroups !== undefined;
}

/** Only appends (partition points and source checkpoints, where the later one wins) merge. */
function mergeable(c: WrittenCycle): boolean {
  return c.record.groups === undefined && !hasDrops(c.record);
}

/** One cycle standing for two written one after the other: b's points and checkpoints win. */
function mergeCycles(a: WrittenCycle, b: WrittenCycle): WrittenCycle {
  const points = new Map(a.points);
  for (const [p, pt] of b.points) points.set(p, pt);
  const parts = new Map<string, PartitionCommit>();
  for (const pc of [...(a.record.parts ?? []), ...(b.record.parts ?? [])]) parts.set(`${pc[0]}/${pc[1]}`, pc);
  const record: Omit<CommitRecord, 'seq'> = {};
  if (parts.size > 0) record.parts = [...parts.values()];
  if (a.record.checkpoints !== undefined || b.record.checkpoints !== undefined) {
    record.checkpoints = { ...a.record.checkpoints, ...b.record.checkpoints };
  }
  return { ops: [...a.ops, ...b.ops], bytes: a.bytes + b.bytes, durable: a.durable || b.durable, now: b.now, points, record };
}
const COMMIT_LOG_COMPACT_BYTES = 8 * 1024 * 1024;
const DEFAULT_READ_BYTES = 1024 * 1024;
const MAX_SEGMENT_BYTES = 2 ** 31;

export class LocalLog implements Log {
  readonly backend = 'local';
  private readonly topics = new Map<string, Topic>();
  private readonly creating = new Set<string>();
  /** Chains (AppendOptions.chain) with a failed append, and the error their later appends get. */
  private readonly brokenChains = new Map<string, unknown>();
  private readonly sticky = new StickyPartitioner();
  /** Batch buffers, reused once written: enough for the appends of a few cycles in flight. */
  private readonly pool = new BatchBufferPool(32);
  /** Read buffers of values reads (the runtime reads 4 MiB at a time), given back by release(). */
  private readonly readPool = new SlabPool(4 * 1024 * 1024, 4);
  /** Recently written batches, for reads that keep up with the appends (none when turned off). */
  private readonly cache: BatchCache | undefined;
  private queue: Op[] = [];
  private queuedBytes = 0;
  private flushing: Promise<void> | null = null;
  private readonly dirty = new Set<Segment>();
  private lastSync = Date.now();
  private closed = false;
  private failure: LogFailedError | null = null;
  private spaceWaiters: (() => void)[] = [];
  private cron: ScheduledTask | null = null;
  private syncTimer: NodeJS.Timeout | null = null;
  private sweeping: Promise<void> | null = null;
  private readonly o: Required<Omit<LocalLogOptions, 'onWarning'>> & { warn: (m: string) => void };

  private constructor(
    options: LocalLogOptions,
    private readonly commits: CommitLog,
    private readonly unlock: () => Promise<void>,
  ) {
    const { onWarning, ...rest } = options;
    this.o = { ...LOCAL_DEFAULTS, ...rest, warn: onWarning ?? (() => undefined) };
    this.cache = this.o.batchCacheBytes > 0 ? new BatchCache(this.o.batchCacheBytes, this.pool) : undefined;
  }

  static async open(options: LocalLogOptions): Promise<LocalLog> {
    const warn = options.onWarning ?? (() => undefined);
    const schedule = options.retentionSchedule ?? LOCAL_DEFAULTS.retentionSchedule;
    if (schedule !== false && !validateCron(schedule)) {
      throw new InvalidArgumentError(`retention schedule "${schedule}" is not a valid cron expression`);
    }
    await mkdir(join(options.dir, 'topics'), { recursive: true });
    const unlock = await acquireLock(options.dir);
    try {
      const commits = await CommitLog.open(options.dir, COMMIT_LOG_COMPACT_BYTES, warn);
      const log = new LocalLog(options, commits, unlock);
      await log.loadTopics(commits.state);
      log.startTimers(schedule);
      return log;
    } catch (err) {
      await unlock();
      throw err;
    }
  }

  private settings(meta: TopicMeta): SegmentSettings {
    return { segmentBytes: meta.segmentBytes, segmentMs: meta.segmentMs, indexIntervalBytes: this.o.indexIntervalBytes, cache: this.cache };
  }

  private async loadTopics(state: CommitState): Promise<void> {
    const root = join(this.o.dir, 'topics');
    for (const name of await readdir(root)) {
      const dir = join(root, name);
      if (name.startsWith('~')) {
        // A topic creation or deletion that a crash interrupted.
        await rm(dir, { recursive: true, force: true });
        continue;
      }
      let meta: TopicMeta;
      try {
        meta = JSON.parse(await readFile(join(dir, 'topic.json'), 'utf8')) as TopicMeta;
      } catch (err) {
        this.o.warn(`${dir}: skipped, its topic.json cannot be read (${(err as Error).message})`);
        continue;
      }
      const parts: Partition[] = [];
      for (let p = 0; p < meta.partitions; p++) {
        const point = state.parts.get(CommitState.partKey(meta.id, p)) ?? { end: 0, segBase: 0, segBytes: 0 };
        parts.push(await Partition.recover(join(dir, String(p)), p, this.settings(meta), point, this.o.warn));
      }
      this.topics.set(meta.name, { meta, dir, parts });
    }
  }

  private startTimers(retention: string | false): void {
    if (retention !== false) {
      this.cron = schedule(retention, () => {
        this.enforceRetention().catch((err) => this.o.warn(`retention sweep failed: ${(err as Error).message}`));
      });
    }
    // Appends with weaker acks are fsynced within fsyncIntervalMs even when no more come.
    this.syncTimer = setInterval(() => {
      if (this.dirty.size > 0 && this.flushing === null && this.queue.length === 0) {
        this.enqueueMeta({}).catch(() => undefined);
      }
    }, this.o.fsyncIntervalMs);
    this.syncTimer.unref();
  }

  private check(): void {
    if (this.failure !== null) throw this.failure;
    if (this.closed) throw new LogClosedError();
  }

  private topic(name: string): Topic {
    const t = this.topics.get(name);
    if (t === undefined) throw new UnknownTopicError(name);
    return t;
  }

  private part(topic: string, partition: number): Partition {
    const t = this.topic(topic);
    const p = t.parts[partition];
    if (!Number.isInteger(partition) || p === undefined) throw new BadPartitionError(topic, partition, t.parts.length);
    return p;
  }

  // ---- topics ----

  async createTopic(name: string, config: TopicConfig): Promise<TopicDescription> {
    this.check();
    checkTopicName(name);
    checkTopicConfig(name, config);
    if (this.topics.has(name) || this.creating.has(name)) throw new TopicExistsError(name);
    this.creating.add(name);
    try {
      return await this.create(name, config);
    } finally {
      this.creating.delete(name);
    }
  }

  private async create(name: string, config: TopicConfig): Promise<TopicDescription> {
    const segmentBytes = config.segmentBytes ?? this.o.segmentBytes;
    if (segmentBytes > MAX_SEGMENT_BYTES) {
      throw new InvalidArgumentError(`topic "${name}": segment bytes must be at most ${MAX_SEGMENT_BYTES}`);
    }
    const meta: TopicMeta = {
      id: randomBytes(8).toString('hex'),
      name,
      partitions: config.partitions,
      retention: { ...config.retention },
      segmentBytes,
      segmentMs: config.segmentMs ?? this.o.segmentMs,
      createdAt: Date.now(),
    };
    const root = join(this.o.dir, 'topics');
    // '~' cannot start a topic name, so these never clash with a topic.
    const tmp = join(root, `~tmp-${meta.id}`);
    await mkdir(tmp);
    const parts: Partition[] = [];
    for (let p = 0; p < meta.partitions; p++) {
      parts.push(await Partition.create(join(tmp, String(p)), p, this.settings(meta)));
      await fsyncDir(join(tmp, String(p)));
    }
    await writeFileAtomic(join(tmp, 'topic.json'), JSON.stringify(meta, null, 2));
    for (const p of parts) await p.close();
    if (this.topics.has(name)) {
      await rm(tmp, { recursive: true, force: true });
      throw new TopicExistsError(name);
    }
    const dir = join(root, name);
    await rename(tmp, dir);
    await fsyncDir(root);
    const reopened: Partition[] = [];
    for (let p = 0; p < meta.partitions; p++) {
      reopened.push(
        await Partition.recover(join(dir, String(p)), p, this.settings(meta), { end: 0, segBase: 0, segBytes: 0 }, this.o.warn),
      );
    }
    this.topics.set(name, { meta, dir, parts: reopened });
    return this.describeTopic(name);
  }

  async ensureTopic(name: string, config: TopicConfig): Promise<TopicDescription> {
    this.check();
    if (this.topics.has(name)) return this.describeTopic(name);
    try {
      return await this.createTopic(name, config);
    } catch (err) {
      if (err instanceof TopicExistsError) return this.describeTopic(name);
      throw err;
    }
  }

  async deleteTopic(name: string): Promise<void> {
    this.check();
    const t = this.topic(name);
    this.topics.delete(name);
    // Ordered after any append already queued for it; drops its commit entries and group offsets.
    await this.enqueueMeta({ dropTopicIds: [t.meta.id], dropGroupTopics: [name] });
    for (const p of t.parts) await p.close();
    const root = join(this.o.dir, 'topics');
    const gone = join(root, `~deleted-${t.meta.id}`);
    await rename(t.dir, gone);
    await fsyncDir(root);
    await rm(gone, { recursive: true, force: true });
  }

  async listTopics(): Promise<string[]> {
    this.check();
    return [...this.topics.keys()].sort();
  }

  async describeTopic(name: string): Promise<TopicDescription> {
    this.check();
    const { meta, parts } = this.topic(name);
    return {
      name,
      partitions: meta.partitions,
      retention: { ...meta.retention },
      segmentBytes: meta.segmentBytes,
      segmentMs: meta.segmentMs,
      createdAt: meta.createdAt,
      partitionDetails: parts.map((p) => p.describe()),
    };
  }

  // ---- appends ----

  append(topic: string, records: readonly ProducerRecord[], options?: AppendOptions): Promise<AppendResult> {
    return this.appendAll([{ topic, records }], options);
  }

  async appendAll(entries: readonly AppendEntry[], options: AppendOptions = {}): Promise<AppendResult> {
    this.check();
    const acks = options.acks ?? this.o.defaultAcks;
    checkAcks(acks);
    const placed: AppendOp['placed'] = [];
    const batches: AppendedBatch[] = [];
    let bytes = 0;
    const now = Date.now();
    const chain = options.chain;
    if (chain !== undefined && this.brokenChains.has(chain)) throw this.brokenChains.get(chain);
    try {
      for (const entry of entries) {
        const t = this.topic(entry.topic);
        bytes += this.encodeEntry(t, entry.records, now, placed, batches);
      }
    } catch (err) {
      // Refused before it was queued: appends of the chain issued after it must fail too.
      if (chain !== undefined) this.brokenChains.set(chain, err);
      throw err;
    }
    // It goes into the commit record as JSON: find out now, not when the commit is written.
    if (options.checkpoint !== undefined) checkpointJson(options.checkpoint);
    while (this.queuedBytes > this.o.maxPendingBytes && this.queue.length > 0) {
      await new Promise<void>((r) => this.spaceWaiters.push(r));
      this.check();
    }
    const done = new Promise<void>((resolve, reject) => {
      this.queue.push({ kind: 'append', placed, checkpoint: options.checkpoint, chain: options.chain, acks, bytes, resolve, reject });
    });
    this.queuedBytes += bytes;
    this.kick();
    if (acks === 'none') {
      done.catch((err) => this.o.warn(`an append with acks=none failed: ${(err as Error).message}`));
      // Offsets are not known yet; the placed results keep being filled in for the writer.
      return { batches: batches.map((b) => ({ ...b, baseOffset: -1 })) };
    }
    await done;
    return { batches };
  }

  /** Validates, partitions and encodes one entry's records; returns the bytes queued. */
  private encodeEntry(
    t: Topic,
    given: readonly ProducerRecord[],
    now: number,
    placed: AppendOp['placed'],
    batches: AppendedBatch[],
  ): number {
    const records = this.pieces(given);
    const n = records.length;
    if (n === 0) return 0;
    const count = t.parts.length;
    const sizes = new Uint32Array(n);
    const stamps = new Float64Array(n);
    const parts = new Uint32Array(n);
    const sticky = { partition: -1, partitioner: this.sticky };
    let mixed = false;
    for (let i = 0; i < n; i++) {
      const r = records[i]!;
      // Runs were checked (and cut) by pieces().
      if (r.run === undefined) checkRecord(r, i);
      const size = recordSize(r);
      if (r.run === undefined && size > this.o.maxRecordBytes) throw new RecordTooLargeError(size, this.o.maxRecordBytes);
      sizes[i] = size;
      stamps[i] = recordTimestamp(r, i, now);
      const p = choosePartition(r, t.meta.name, count, sticky);
      parts[i] = p;
      if (p !== parts[0]) mixed = true;
    }
    let bytes = 0;
    if (!mixed) {
      bytes += this.encodeRun(t, t.parts[parts[0]!]!, records, null, 0, n, sizes, stamps, placed, batches);
      return bytes;
    }
    // Group by partition, keeping each partition's records in their given order.
    const counts = new Uint32Array(count + 1);
    for (let i = 0; i < n; i++) counts[parts[i]! + 1]!++;
    for (let p = 0; p < count; p++) counts[p + 1]! += counts[p]!;
    const starts = counts.slice();
    const order = new Uint32Array(n);
    for (let i = 0; i < n; i++) order[counts[parts[i]!]!++] = i;
    for (let p = 0; p < count; p++) {
      if (starts[p + 1]! > starts[p]!) {
        bytes += this.encodeRun(t, t.parts[p]!, records, order, starts[p]!, starts[p + 1]!, sizes, stamps, placed, batches);
      }
    }
    return bytes;
  }

  /**
   * The records with each run checked (a run's values are records of their own: each must fit,
   * not the run), cut at value boundaries into pieces of at most TARGET_BATCH_BYTES so batches
   * keep their size, and empty runs left out.
   */
  private pieces(records: readonly ProducerRecord[]): readonly ProducerRecord[] {
    if (!records.some((r) => r !== null && typeof r === 'object' && r.run !== undefined)) return records;
    const out: ProducerRecord[] = [];
    for (let i = 0; i < records.length; i++) {
      const r = records[i]!;
      if (r === null || typeof r !== 'object' || r.run === undefined) {
        out.push(r);
        continue;
      }
      const longest = checkRun(r, i);
      if (longest + 14 > this.o.maxRecordBytes) throw new RecordTooLargeError(longest + 14, this.o.maxRecordBytes);
      const { buf, ends, count } = r.run;
      let from = 0;
      let start = r.run.start;
      while (from < count) {
        // At least one value a piece; then as many as fit.
        let to = from + 1;
        while (to < count && ends[to]! - start + 14 * (to + 1 - from) <= TARGET_BATCH_BYTES) to++;
        const piece: ProducerRecord = { value: r.value, run: { buf, start, ends: ends.subarray(from, to), count: to - from } };
        if (r.timestamp !== undefined) piece.timestamp = r.timestamp;
        if (r.partition !== undefined) piece.partition = r.partition;
        out.push(piece);
        start = ends[to - 1]!;
        from = to;
      }
    }
    return out;
  }

  /** Encodes records order[from..to) of one partition into batches of about TARGET_BATCH_BYTES. */
  private encodeRun(
    t: Topic,
    part: Partition,
    records: readonly ProducerRecord[],
    order: Uint32Array | null,
    from: number,
    to: number,
    sizes: Uint32Array,
    stamps: Float64Array,
    placed: AppendOp['placed'],
    batches: AppendedBatch[],
  ): number {
    let bytes = 0;
    let start = from;
    let acc = 0;
    const idx = (i: number): number => (order === null ? i : order[i]!);
    for (let i = from; i <= to; i++) {
      const close =
        i === to ||
        (i > start && (acc + sizes[idx(i)]! > TARGET_BATCH_BYTES || !fitsDelta(stamps[idx(start)]!, stamps[idx(i)]!)));
      if (close) {
        const enc = encodeBatch(records, order, start, i, sizes, stamps, this.pool);
        const result: AppendedBatch = { topic: t.meta.name, partition: part.index, baseOffset: -1, count: enc.count };
        placed.push({ topic: t, part, batch: { enc, result } });
        batches.push(result);
        bytes += enc.buf.length;
        start = i;
        acc = 0;
      }
      if (i < to) acc += sizes[idx(i)]!;
    }
    return bytes;
  }

  private enqueueMeta(record: Omit<CommitRecord, 'seq'>): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ kind: 'meta', record, resolve, reject });
      this.kick();
    });
  }

  private kick(): void {
    if (this.flushing !== null) return;
    // Cycles are pipelined: a cycle's writes go to the OS while earlier cycles wait for their
    // fsyncs and commit records (up to PIPELINE_DEPTH of them). Commits stay strictly in order.
    // A cycle starts writing at once, so the first appends of a burst reach the disk while the
    // producer still encodes the rest; written cycles are then held and merged while more appends
    // are waiting (up to MERGE_BYTES), so the burst shares one fsync and one commit record.
    const run = async (): Promise<void> => {
      if (this.o.lingerMs > 0) await new Promise((r) => setTimeout(r, this.o.lingerMs));
      let previous: Promise<void> = Promise.resolve();
      const pending: Promise<void>[] = [];
      let held: WrittenCycle | null = null;
      /** When the first cycle of what is held was written. */
      let heldSince = 0;
      const commit = async (c: WrittenCycle): Promise<void> => {
        // Commit phases run one after another, in order (commitPhase never rejects).
        const done = previous.then(() => this.commitPhase(c));
        previous = done;
        pending.push(done);
        if (pending.length >= PIPELINE_DEPTH) await pending.shift();
      };
      for (;;) {
        if (this.queue.length === 0) {
          if (held !== null) {
            const c = held;
            held = null;
            await commit(c);
            continue;
          }
          // Appends that arrive while the last commit settles must not be stranded.
          await previous;
          if (this.queue.length === 0) break;
        }
        const ops = this.queue;
        this.queue = [];
        const written = await this.writePhase(ops);
        if (written === null) continue;
        if (written.error !== undefined) {
          if (held !== null) {
            await commit(held);
            held = null;
          }
          // Undone only once the earlier cycles have settled and the committed point is final.
          await previous;
          await this.undo(written.points.keys(), written, written.error);
          continue;
        }
        let next = written;
        if (held !== null) {
          if (mergeable(held) && mergeable(written)) next = mergeCycles(held, written);
          else await commit(held);
          held = null;
        }
        // Held for a burst, never for a steady trickle: at most MERGE_BYTES and MERGE_MS.
        if (next === written) heldSince = performance.now();
        if (this.queue.length > 0 && next.bytes < MERGE_BYTES && mergeable(next) && performance.now() - heldSince < MERGE_MS) held = next;
        else await commit(next);
      }
      this.flushing = null;
    };
    this.flushing = run();
  }

  private releaseSpace(bytes: number): void {
    this.queuedBytes -= bytes;
    if (this.queuedBytes <= this.o.maxPendingBytes) {
      const waiters = this.spaceWaiters;
      this.spaceWaiters = [];
      for (const w of waiters) w();
    }
  }

  /**
   * Places and writes one cycle's batches; null when the log has failed. A write failure is
   * returned in `error` (all the cycle's writes settled) for the caller to undo.
   */
  private async writePhase(taken: Op[]): Promise<WrittenCycle | null> {
    // A commit record applies drops after offsets: ops after a drop wait for the next cycle, so a
    // group's offsets committed after its deletion are not deleted with it.
    let all = taken;
    const cut = taken.findIndex((op) => op.kind === 'meta' && hasDrops(op.record));
    if (cut >= 0 && cut < taken.length - 1) {
      this.queue = taken.slice(cut + 1).concat(this.queue);
      all = taken.slice(0, cut + 1);
    }
    // An append whose chain broke earlier is refused before anything of it is written.
    const ops: Op[] = [];
    for (const op of all) {
      let refused = op.kind === 'append' && op.chain !== undefined ? this.brokenChains.get(op.chain) : undefined;
      // An append encoded before its topic was deleted (it waited for space, or was queued
      // behind the deletion) must not be written to the deleted topic's files and acknowledged.
      const gone = op.kind === 'append' && refused === undefined ? op.placed.find((b) => this.topics.get(b.topic.meta.name) !== b.topic) : undefined;
      if (gone !== undefined) {
        refused = new UnknownTopicError(gone.topic.meta.name);
        if ((op as AppendOp).chain !== undefined) this.brokenChains.set((op as AppendOp).chain!, refused);
      }
      if (refused === undefined) ops.push(op);
      else {
        this.releaseSpace((op as AppendOp).bytes);
        op.reject(refused);
      }
    }
    const c: WrittenCycle = { ops, bytes: 0, durable: false, points: new Map(), record: {}, now: Date.now() };
    const byPart = new Map<Partition, PlacedBatch[]>();
    const topicOf = new Map<Partition, Topic>();
    const checkpoints = new Map<string, unknown>();
    let hasCheckpoint = false;
    const groups: GroupCommit[] = [];
    const record = c.record;
    for (const op of ops) {
      if (op.kind === 'append') {
        c.bytes += op.bytes;
        if (op.acks === 'durable') c.durable = true;
        for (const { topic, part, batch } of op.placed) {
          let list = byPart.get(part);
          if (list === undefined) {
            byPart.set(part, (list = []));
            topicOf.set(part, topic);
          }
          list.push(batch);
        }
        if (op.checkpoint !== undefined) {
          checkpoints.set(op.checkpoint.source, op.checkpoint.position);
          hasCheckpoint = true;
        }
      } else {
        c.durable = true;
        const r = op.record;
        if (r.groups) groups.push(...r.groups);
        if (r.dropTopicIds) (record.dropTopicIds ??= []).push(...r.dropTopicIds);
        if (r.dropGroupTopics) (record.dropGroupTopics ??= []).push(...r.dropGroupTopics);
        if (r.dropGroups) (record.dropGroups ??= []).push(...r.dropGroups);
      }
    }
    if (c.now - this.lastSync >= this.o.fsyncIntervalMs) c.durable = true;
    if (this.failure !== null) {
      this.rejectCycle(c, this.failure);
      return null;
    }
    const results = await Promise.allSettled([...byPart].map(([p, list]) => p.write(list, c.now, this.dirty)));
    const failed = results.find((r) => r.status === 'rejected');
    // Every write has settled: the batches' bytes are in the files (or are undone). Written ones
    // stay in the cache for the readers that follow; the others' buffers go back to the pool.
    for (const [p, list] of byPart) {
      for (const b of list) {
        if (failed === undefined) p.keep(b.enc);
        this.pool.release(b.enc);
      }
    }
    if (failed !== undefined) {
      for (const p of byPart.keys()) c.points.set(p, p.writtenPoint());
      c.error = (failed as PromiseRejectedResult).reason;
      return c;
    }
    const parts: PartitionCommit[] = [];
    for (const p of byPart.keys()) {
      const pt = p.writtenPoint();
      c.points.set(p, pt);
      parts.push([topicOf.get(p)!.meta.id, p.index, pt.end, pt.segBase, pt.segBytes]);
    }
    if (parts.length > 0) record.parts = parts;
    if (hasCheckpoint) record.checkpoints = Object.fromEntries(checkpoints);
    if (groups.length > 0) record.groups = groups;
    return c;
  }

  /** Fsyncs once, writes the commit record, then makes the cycle visible and resolves it. */
  private async commitPhase(c: WrittenCycle): Promise<void> {
    if (this.failure !== null) {
      this.rejectCycle(c, this.failure);
      return;
    }
    try {
      if (c.durable) {
        // Only files whose writes have completed are in the set, so one fsync covers them.
        const files = [...this.dirty];
        this.dirty.clear();
        await Promise.all(files.map((s) => s.datasync()));
      }
      await this.commits.append(c.record, c.durable);
    } catch (err) {
      // A failed fsync may have dropped dirty pages: continuing could acknowledge lost data.
      // A failed commit write leaves the next cycle's writes in flight. Both stop the log;
      // reopening recovers to the last commit.
      this.fail(err, c);
      return;
    }
    if (c.durable) this.lastSync = c.now;
    for (const [p, pt] of c.points) p.markCommitted(pt);
    this.releaseSpace(c.bytes);
    for (const op of c.ops) op.resolve();
  }

  private rejectCycle(c: WrittenCycle, err: unknown): void {
    this.releaseSpace(c.bytes);
    for (const op of c.ops) op.reject(err);
  }

  private async undo(parts: Iterable<Partition>, c: WrittenCycle, err: unknown): Promise<void> {
    try {
      for (const p of parts) await p.rollback();
    } catch (rollbackErr) {
      this.fail(rollbackErr, c);
      return;
    }
    const reported =
      err instanceof LogError ? err : isErrno(err, 'ENOSPC') ? new StorageFullError(this.o.dir, err) : new AppendFailedError(err);
    for (const op of c.ops) if (op.kind === 'append' && op.chain !== undefined) this.brokenChains.set(op.chain, reported);
    this.rejectCycle(c, reported);
  }

  private fail(err: unknown, c: WrittenCycle): void {
    this.failure ??= new LogFailedError(err);
    this.o.warn(this.failure.message);
    this.rejectCycle(c, this.failure);
    for (const op of this.queue.splice(0)) op.reject(this.failure);
    for (const t of this.topics.values()) for (const p of t.parts) p.wakeAll();
  }

  // ---- reads ----

  async read(topic: string, partition: number, fromOffset: number, options: ReadOptions = {}): Promise<ReadResult> {
    const ready = this.readable(topic, partition, fromOffset, options);
    const p = ready instanceof Partition ? ready : await ready;
    const records = fromOffset < p.committedEnd ? await p.read(fromOffset, options.maxBytes ?? DEFAULT_READ_BYTES) : [];
    const last = records.at(-1);
    return {
      records,
      nextOffset: last === undefined ? fromOffset : last.offset + 1,
      startOffset: p.startOffset,
      endOffset: p.committedEnd,
    };
  }

  async readValues(topic: string, partition: number, fromOffset: number, options: ReadOptions = {}): Promise<ValuesReadResult> {
    const ready = this.readable(topic, partition, fromOffset, options);
    const p = ready instanceof Partition ? ready : await ready;
    const got = fromOffset < p.committedEnd ? await p.readValues(fromOffset, options.maxBytes ?? DEFAULT_READ_BYTES, this.readPool) : { spans: [], bytes: 0, nextOffset: fromOffset };
    return { firstOffset: fromOffset, ...got, startOffset: p.startOffset, endOffset: p.committedEnd };
  }

  /**
   * The partition to read from `fromOffset`, after waiting for records there as `options` say.
   * Without a wait it is returned at once, not as a promise: the read must start in the same tick
   * as the range check, before a retention sweep can remove the segments it was checked against.
   */
  private readable(topic: string, partition: number, fromOffset: number, options: ReadOptions): Partition | Promise<Partition> {
    this.check();
    const p = this.part(topic, partition);
    if (!Number.isSafeInteger(fromOffset)) throw new InvalidArgumentError(`offset must be an integer, not ${fromOffset}`);
    const range = (): OffsetOutOfRangeError | null =>
      fromOffset < p.startOffset || fromOffset > p.committedEnd
        ? new OffsetOutOfRangeError(topic, partition, fromOffset, p.startOffset, p.committedEnd)
        : null;
    const bad = range();
    if (bad !== null) throw bad;
    if (fromOffset < p.committedEnd || (options.maxWaitMs ?? 0) <= 0) return p;
    return p.waitFor(fromOffset, options.maxWaitMs ?? 0, options.signal).then(() => {
      this.check();
      const after = range();
      if (after !== null) throw after;
      return p;
    });
  }

  async offsetForTimestamp(topic: string, partition: number, timestamp: number): Promise<number | null> {
    this.check();
    return this.part(topic, partition).offsetForTimestamp(timestamp);
  }

  // ---- groups and checkpoints ----

  async commitOffsets(group: string, offsets: readonly GroupOffset[]): Promise<void> {
    this.check();
    if (typeof group !== 'string' || group.length === 0) throw new InvalidArgumentError('group must be a non-empty string');
    const groups: GroupCommit[] = [];
    for (const o of offsets) {
      this.part(o.topic, o.partition);
      if (!Number.isSafeInteger(o.offset) || o.offset < 0) {
        throw new InvalidArgumentError(`offset must be a non-negative integer, not ${o.offset}`);
      }
      groups.push([group, o.topic, o.partition, o.offset]);
    }
    await this.enqueueMeta({ groups });
  }

  async fetchOffsets(group: string, topic?: string): Promise<GroupOffset[]> {
    this.check();
    const offsets = this.commits.state.groups.get(group);
    const out: GroupOffset[] = [];
    for (const [k, offset] of offsets ?? []) {
      const sep = k.lastIndexOf('\u0000');
      const t = k.slice(0, sep);
      if (topic === undefined || t === topic) out.push({ topic: t, partition: Number(k.slice(sep + 1)), offset });
    }
    return out.sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition));
  }

  async listGroups(): Promise<string[]> {
    this.check();
    return [...this.commits.state.groups].filter(([, o]) => o.size > 0).map(([g]) => g).sort();
  }

  async deleteGroup(group: string): Promise<void> {
    this.check();
    await this.enqueueMeta({ dropGroups: [group] });
  }

  async getCheckpoint(source: string): Promise<unknown> {
    this.check();
    return this.commits.state.checkpoints.get(source);
  }

  // ---- retention and shutdown ----

  /** Runs one retention sweep now (the schedule calls this too). */
  async enforceRetention(): Promise<void> {
    this.check();
    if (this.sweeping !== null) return this.sweeping;
    const run = async (): Promise<void> => {
      const now = Date.now();
      for (const t of [...this.topics.values()]) {
        for (const p of t.parts) {
          const removed = await p.sweep(t.meta.retention, now);
          if (removed > 0) this.o.warn(`retention removed ${removed} segment(s) of ${t.meta.name}/${p.index}`);
        }
      }
    };
    this.sweeping = run().finally(() => {
      this.sweeping = null;
    });
    return this.sweeping;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.cron?.stop();
    if (this.syncTimer !== null) clearInterval(this.syncTimer);
    // Everything queued is committed durably before the files close.
    let flushError: unknown = null;
    // A final durable cycle: it fsyncs whatever weaker-acked appends are still queued or unsynced.
    if (this.failure === null) await this.enqueueMeta({}).catch((err: unknown) => (flushError = err));
    while (this.flushing !== null) await this.flushing;
    this.closed = true;
    if (this.sweeping !== null) await this.sweeping.catch(() => undefined);
    for (const t of this.topics.values()) for (const p of t.parts) await p.close();
    if (this.failure === null) await this.commits.close().catch((err: unknown) => (flushError ??= err));
    await this.unlock();
    // The files are released either way; a final flush that failed must not pass for success.
    if (flushError !== null) throw flushError;
  }
}

export function isLocalLog(log: Log): log is LocalLog {
  return log instanceof LocalLog;
}
