/**
 * The Log on NATS JetStream. Partition p of topic t is the stream `<prefix>_<t>_<p>` (file storage,
 * `replicas` copies, retention as MaxAge/MaxBytes); records travel in frames (frame.ts), offsets
 * are dense (partition.ts); topics, group offsets and source checkpoint caches live in KV buckets
 * `<prefix>_topics`, `<prefix>_groups`, `<prefix>_sources`. See docs/log.md and docs/exactly-once.md.
 */
import { randomUUID } from 'node:crypto';
import type { KV, NatsConnection, StreamConfig } from 'nats';

import {
  BadPartitionError,
  InvalidArgumentError,
  LogClosedError,
  OffsetOutOfRangeError,
  RecordTooLargeError,
  TopicExistsError,
  UnknownTopicError,
  describe,
} from '../errors.js';
import { StickyPartitioner } from '../partitioner.js';
import { checkAcks, checkpointJson, checkRecord, choosePartition, expandRuns, recordTimestamp } from '../records.js';
import { checkTopicConfig, checkTopicName } from '../topic-name.js';
import type {
  Acks,
  AppendedBatch,
  AppendEntry,
  AppendOptions,
  AppendResult,
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
import { connectNats, type NatsSession } from './connect.js';
import { JsGroups } from './groups.js';
import { encodeFrame, FRAME_HEADER_BYTES, recordBytes, type FrameRecord } from './frame.js';
import { checkPrefix, escapeTopic, streamName, streamSubject, unescapeTopic } from './names.js';
import { JETSTREAM_DEFAULTS, type JetStreamLogOptions } from './options.js';
import { JsPartition, isStreamNotFound, type OutFrame, type PartitionContext } from './partition.js';
import { checkpointHeaders, recoverSource, txnId, writeCache, type SourceState } from './sources.js';
import { liveKeys } from './kv-keys.js';
import { setTimeout as sleep } from 'node:timers/promises';

const DEFAULT_READ_BYTES = 1024 * 1024;
/** Room left in a message for the headers (checkpoint positions travel there). */
const HEADER_ROOM = 64 * 1024;
/** Reported for describe(): segments are the server's business on this backend. */
const SEGMENT_BYTES = 8 * 1024 * 1024;
const SEGMENT_MS = 7 * 24 * 3600 * 1000;

interface TopicMeta {
  partitions: number;
  retention: RetentionConfig;
  createdAt: number;
}

interface Topic {
  name: string;
  meta: TopicMeta;
  parts: JsPartition[];
}

export function isJetStreamLog(log: Log): log is JetStreamLog {
  return log.backend === 'jetstream';
}

export class JetStreamLog implements Log {
  readonly backend = 'jetstream';
  private readonly topics = new Map<string, Topic>();
  private readonly groups: JsGroups;
  private readonly loading = new Map<string, Promise<Topic>>();
  private intake: Promise<unknown> = Promise.resolve();
  private readonly sources = new Map<string, Promise<SourceState>>();
  private readonly brokenChains = new Map<string, unknown>();
  private readonly pending = new Set<Promise<unknown>>();
  private readonly sticky = new StickyPartitioner();
  private readonly writerId = randomUUID().slice(0, 12);
  private frameCounter = 0;
  private closed = false;
  private readonly ctx: PartitionContext;
  private readonly prefix: string;
  /** Frames are packed up to this many bytes... */
  private readonly maxFrame: number;
  /** ...but one record alone may fill a message up to the server's max_payload. */
  private readonly maxMessage: number;
  private readonly defaultAcks: Acks;
  private readonly warn: (message: string) => void;

  private constructor(
    private readonly session: NatsSession,
    private readonly options: JetStreamLogOptions,
    private readonly topicsKv: KV,
    groupsKv: KV,
    private readonly sourcesKv: KV,
  ) {
    this.prefix = options.prefix ?? JETSTREAM_DEFAULTS.prefix;
    this.groups = new JsGroups(groupsKv, session.jsm, `${this.prefix}_groups`);
    this.warn = options.onWarning ?? (() => undefined);
    this.defaultAcks = options.defaultAcks ?? JETSTREAM_DEFAULTS.defaultAcks;
    const serverMax = session.nc.info?.max_payload ?? 1024 * 1024;
    this.maxMessage = serverMax - HEADER_ROOM;
    this.maxFrame = Math.min(options.maxFrameBytes ?? JETSTREAM_DEFAULTS.maxFrameBytes, this.maxMessage);
    this.ctx = {
      nats: session.nats,
      js: session.js,
      jsm: session.jsm,
      maxInflight: options.maxInflight ?? JETSTREAM_DEFAULTS.maxInflight,
      publishRetryMs: options.publishRetryMs ?? JETSTREAM_DEFAULTS.publishRetryMs,
      isClosed: () => this.closed,
      warn: this.warn,
    };
  }

  static async open(options: JetStreamLogOptions): Promise<JetStreamLog> {
    const prefix = options.prefix ?? JETSTREAM_DEFAULTS.prefix;
    checkPrefix(prefix);
    const session = await connectNats(options);
    try {
      const replicas = options.replicas ?? JETSTREAM_DEFAULTS.replicas;
      const kv = (name: string) => session.js.views.kv(`${prefix}_${name}`, { history: 1, replicas });
      const [topics, groups, sources] = [await kv('topics'), await kv('groups'), await kv('sources')];
      return new JetStreamLog(session, options, topics, groups, sources);
    } catch (err) {
      await session.nc.close().catch(() => undefined);
      throw err;
    }
  }

  get connection(): NatsConnection {
    return this.session.nc;
  }

  /** Largest record accepted: the server's max_payload less room for headers. */
  get maxRecordBytes(): number {
    return this.maxMessage - FRAME_HEADER_BYTES;
  }

  private check(): void {
    if (this.closed) throw new LogClosedError();
  }

  // ---------------------------------------------------------------- topics

  private streamConfig(topic: string, p: number, meta: TopicMeta): Partial<StreamConfig> {
    const { nanos } = this.session.nats;
    const name = streamName(this.prefix, topic, p);
    return {
      name,
      subjects: [streamSubject(this.prefix, name)],
      storage: this.session.nats.StorageType.File,
      retention: this.session.nats.RetentionPolicy.Limits,
      discard: this.session.nats.DiscardPolicy.Old,
      num_replicas: this.options.replicas ?? JETSTREAM_DEFAULTS.replicas,
      duplicate_window: nanos(this.options.duplicateWindowMs ?? JETSTREAM_DEFAULTS.duplicateWindowMs),
      max_age: meta.retention.maxAgeMs === undefined ? 0 : nanos(meta.retention.maxAgeMs),
      max_bytes: meta.retention.maxBytes ?? -1,
      max_msg_size: -1,
      // Reads fetch frames by sequence with direct gets (raw payloads, served by any replica).
      allow_direct: true,
      description: `sluice topic ${topic} partition ${p}`,
    };
  }

  private build(name: string, meta: TopicMeta): Topic {
    const parts = Array.from({ length: meta.partitions }, (_, p) => {
      const stream = streamName(this.prefix, name, p);
      return new JsPartition(this.ctx, name, p, stream, streamSubject(this.prefix, stream));
    });
    return { name, meta, parts };
  }

  private topic(name: string): Promise<Topic> {
    const known = this.topics.get(name);
    if (known !== undefined) return Promise.resolve(known);
    // One lookup per name at a time: appends issued in order must stay in order, so a second
    // append may not overtake the first because its lookup answered sooner.
    let loading = this.loading.get(name);
    if (loading === undefined) {
      loading = (async () => {
        checkTopicName(name);
        const entry = await this.topicsKv.get(escapeTopic(name));
        if (entry === null || entry.operation !== 'PUT') throw new UnknownTopicError(name);
        const t = this.build(name, JSON.parse(entry.string()) as TopicMeta);
        this.topics.set(name, t);
        return t;
      })();
      this.loading.set(name, loading);
      const done = (): void => {
        this.loading.delete(name);
      };
      loading.then(done, done);
    }
    return loading;
  }

  private forget(name: string): void {
    this.topics.delete(name);
  }

  async createTopic(name: string, config: TopicConfig): Promise<TopicDescription> {
    this.check();
    checkTopicName(name);
    checkTopicConfig(name, config);
    const meta: TopicMeta = { partitions: config.partitions, retention: { ...(config.retention ?? {}) }, createdAt: Date.now() };
    const key = escapeTopic(name);
    try {
      await this.topicsKv.create(key, JSON.stringify(meta));
    } catch (err) {
      if (/wrong last sequence|exists/i.test(describe(err))) throw new TopicExistsError(name);
      throw err;
    }
    try {
      for (let p = 0; p < meta.partitions; p++) {
        const cfg = this.streamConfig(name, p, meta);
        // A stream left by a crashed delete of an earlier topic of that name goes first.
        await this.session.jsm.streams.delete(cfg.name!).catch(() => undefined);
        await this.session.jsm.streams.add(cfg);
      }
    } catch (err) {
      await this.topicsKv.delete(key).catch(() => undefined);
      throw err;
    }
    const t = this.build(name, meta);
    this.topics.set(name, t);
    return this.describe(t);
  }

  async ensureTopic(name: string, config: TopicConfig): Promise<TopicDescription> {
    this.check();
    checkTopicName(name);
    checkTopicConfig(name, config);
    try {
      return await this.describeTopic(name);
    } catch (err) {
      if (!(err instanceof UnknownTopicError)) throw err;
    }
    try {
      return await this.createTopic(name, config);
    } catch (err) {
      if (!(err instanceof TopicExistsError)) throw err;
    }
    // Another process created it a moment ago (workers starting together): its entry is there,
    // its streams may still be on their way.
    const deadline = Date.now() + (this.options.topicCreationWaitMs ?? JETSTREAM_DEFAULTS.topicCreationWaitMs);
    for (;;) {
      try {
        return await this.describeTopic(name);
      } catch (err) {
        if (!(err instanceof UnknownTopicError)) throw err;
        if (Date.now() > deadline) return this.completeCreation(name);
        await sleep(100);
      }
    }
  }

  /**
   * A topic whose entry exists but whose streams never came (its creator died in between): the
   * missing streams are added. Only adds — a stream that exists is never touched.
   */
  private async completeCreation(name: string): Promise<TopicDescription> {
    const entry = await this.topicsKv.get(escapeTopic(name));
    if (entry === null || entry.operation !== 'PUT') throw new UnknownTopicError(name);
    const meta = JSON.parse(entry.string()) as TopicMeta;
    for (let p = 0; p < meta.partitions; p++) {
      const cfg = this.streamConfig(name, p, meta);
      await this.session.jsm.streams.info(cfg.name!).catch(async (err: unknown) => {
        if (!isStreamNotFound(err)) throw err;
        this.warn(`topic ${name}: partition ${p} had no stream (its creation was cut short); created it`);
        await this.session.jsm.streams.add(cfg);
      });
    }
    return this.describeTopic(name);
  }

  async deleteTopic(name: string): Promise<void> {
    this.check();
    this.forget(name);
    const t = await this.topic(name);
    this.forget(name);
    await this.topicsKv.delete(escapeTopic(name));
    for (const part of t.parts) {
      await this.session.jsm.streams.delete(part.stream).catch((err: unknown) => {
        if (!isStreamNotFound(err)) throw err;
      });
    }
  }

  async listTopics(): Promise<string[]> {
    this.check();
    const out: string[] = [];
    for (const key of await liveKeys(this.session.jsm, this.topicsKv, `${this.prefix}_topics`)) out.push(unescapeTopic(key));
    return out.sort();
  }

  async describeTopic(name: string): Promise<TopicDescription> {
    this.check();
    // Another process may have deleted or recreated it: always ask, but keep the partitions'
    // state (writers in flight, read hints) while it is the same topic.
    checkTopicName(name);
    const entry = await this.topicsKv.get(escapeTopic(name));
    if (entry === null || entry.operation !== 'PUT') {
      this.forget(name);
      throw new UnknownTopicError(name);
    }
    const meta = JSON.parse(entry.string()) as TopicMeta;
    let t = this.topics.get(name);
    if (t === undefined || t.meta.createdAt !== meta.createdAt || t.meta.partitions !== meta.partitions) {
      t = this.build(name, meta);
      this.topics.set(name, t);
    }
    return this.describe(t);
  }

  private async describe(t: Topic): Promise<TopicDescription> {
    const partitionDetails = [];
    for (const part of t.parts) {
      await part.refresh(true);
      partitionDetails.push({
        partition: part.index,
        startOffset: part.start,
        endOffset: part.end,
        bytes: part.bytes,
        segments: 1,
      });
    }
    return {
      name: t.name,
      partitions: t.meta.partitions,
      retention: { ...t.meta.retention },
      segmentBytes: SEGMENT_BYTES,
      segmentMs: SEGMENT_MS,
      createdAt: t.meta.createdAt,
      partitionDetails,
    };
  }

  // ---------------------------------------------------------------- appends

  append(topic: string, records: readonly ProducerRecord[], options?: AppendOptions): Promise<AppendResult> {
    return this.appendAll([{ topic, records }], options);
  }

  async appendAll(entries: readonly AppendEntry[], options: AppendOptions = {}): Promise<AppendResult> {
    this.check();
    const acks = options.acks ?? this.defaultAcks;
    checkAcks(acks);
    const chain = options.chain;
    if (chain !== undefined && this.brokenChains.has(chain)) throw this.brokenChains.get(chain);
    const work = this.appendWork(entries, options);
    this.track(work.done);
    if (chain !== undefined) {
      work.done.catch((err: unknown) => {
        if (!this.brokenChains.has(chain)) this.brokenChains.set(chain, err);
      });
    }
    let placed: PlacedBatch[];
    try {
      placed = await work.placed;
    } catch (err) {
      if (chain !== undefined) this.brokenChains.set(chain, err);
      throw err;
    }
    if (acks === 'none') {
      work.done.catch((err: unknown) => this.warn(`an append with acks=none failed: ${describe(err)}`));
      return { batches: placed.map((b) => ({ topic: b.topic, partition: b.partition, baseOffset: -1, count: b.count })) };
    }
    await work.done;
    return { batches: placed.map((b) => ({ topic: b.topic, partition: b.partition, baseOffset: b.base, count: b.count })) };
  }

  private track(p: Promise<unknown>): void {
    const settled = p.then(
      () => undefined,
      () => undefined,
    );
    this.pending.add(settled);
    void settled.then(() => this.pending.delete(settled));
  }

  /**
   * `placed` resolves once the append is validated and queued; `done` once every frame is stored.
   * Appends are taken in one at a time, in call order (`intake`), up to the point where their
   * frames are queued on the partitions and their transaction is ordered behind the source's
   * previous one: an append made later can never be stored before one made earlier, whatever its
   * topic lookups cost. The publishing itself overlaps.
   */
  private appendWork(entries: readonly AppendEntry[], options: AppendOptions): { placed: Promise<PlacedBatch[]>; done: Promise<void> } {
    const prepared = this.intake.then(() => this.prepare(entries, options));
    this.intake = prepared.catch(() => undefined);
    const done = prepared.then((p) => p.stored);
    done.catch(() => undefined);
    return { placed: prepared.then((p) => p.batches), done };
  }

  private async prepare(entries: readonly AppendEntry[], options: AppendOptions): Promise<{ batches: PlacedBatch[]; stored: Promise<void> }> {
    const now = Date.now();
    const batches: PlacedBatch[] = [];
    const frames: PendingFrame[] = [];
    for (const entry of entries) this.place(await this.topic(entry.topic), entry.records, now, batches, frames);
    let stored: Promise<void>;
    if (options.checkpoint === undefined) {
      for (const f of frames) f.msgId = `${this.writerId}-${this.frameCounter++}`;
      stored = this.publish(frames, batches).then(() => undefined);
    } else {
      const positionJson = checkpointJson(options.checkpoint);
      const state = await this.sourceState(options.checkpoint.source);
      // Its synchronous start orders the transaction behind the source's previous one.
      stored = this.publishTxn(state, options.checkpoint.position, positionJson, frames, batches);
    }
    stored.catch(() => undefined);
    return { batches, stored };
  }

  /** Validates, partitions and packs one entry's records into frames (one run of frames per partition). */
  private place(t: Topic, given: readonly ProducerRecord[], now: number, batches: PlacedBatch[], frames: PendingFrame[]): void {
    const records = expandRuns(given);
    const n = records.length;
    if (n === 0) return;
    const count = t.parts.length;
    const byPartition = new Map<number, FrameRecord[]>();
    const sizes = new Map<number, number[]>();
    const sticky = { partition: -1, partitioner: this.sticky };
    for (let i = 0; i < n; i++) {
      const r = records[i]!;
      checkRecord(r, i);
      const ts = recordTimestamp(r, i, now);
      const p = choosePartition(r, t.name, count, sticky);
      const v = r.value;
      let headers: [Buffer, Buffer][] | null = null;
      if (r.headers !== undefined && r.headers !== null) {
        const entries = Object.entries(r.headers);
        if (entries.length > 0) {
          headers = entries.map(([k, hv]) => [Buffer.from(k, 'utf8'), Buffer.from(hv, 'utf8')]);
        }
      }
      const fr: FrameRecord = {
        timestamp: ts,
        key: r.key == null ? null : Buffer.from(r.key, 'utf8'),
        value: typeof v === 'string' ? Buffer.from(v, 'utf8') : v,
        headers,
      };
      const size = recordBytes(fr);
      if (size + FRAME_HEADER_BYTES > this.maxMessage) throw new RecordTooLargeError(size, this.maxRecordBytes);
      let list = byPartition.get(p);
      if (list === undefined) {
        list = [];
        byPartition.set(p, list);
        sizes.set(p, []);
      }
      list.push(fr);
      sizes.get(p)!.push(size);
    }
    for (const [p, list] of byPartition) {
      const batch: PlacedBatch = { topic: t.name, partition: p, base: -1, count: list.length };
      batches.push(batch);
      const sz = sizes.get(p)!;
      let from = 0;
      let bytes = 0;
      const flush = (to: number): void => {
        let maxTs = 0;
        for (let i = from; i < to; i++) maxTs = Math.max(maxTs, list[i]!.timestamp);
        frames.push({ part: t.parts[p]!, batch, payload: encodeFrame(list, from, to, bytes), count: to - from, maxTs, msgId: '', first: from === 0 });
        from = to;
        bytes = 0;
      };
      for (let i = 0; i < list.length; i++) {
        if (i > from && FRAME_HEADER_BYTES + bytes + sz[i]! > this.maxFrame) flush(i);
        bytes += sz[i]!;
      }
      flush(list.length);
    }
  }

  /** Publishes frames (message ids set) and fills in each batch's base offset. */
  private async publish(
    frames: PendingFrame[],
    _batches: PlacedBatch[],
    extra?: (i: number) => [string, string][],
    stored?: Map<string, { base: number; seq: number }>,
  ): Promise<number[]> {
    const seqs: number[] = new Array<number>(frames.length).fill(0);
    await Promise.all(
      frames.map(
        (f, i) =>
          new Promise<void>((resolve, reject) => {
            const settle = (base: number, seq: number): void => {
              if (f.first) f.batch.base = base;
              seqs[i] = seq;
              // Frames of a transaction that fails later must be known as stored (see publishTxn).
              stored?.set(f.msgId, { base, seq });
              resolve();
            };
            const known = stored?.get(f.msgId);
            if (known !== undefined) return settle(known.base, known.seq);
            const out: OutFrame = {
              payload: f.payload,
              count: f.count,
              maxTs: f.maxTs,
              msgId: f.msgId,
              headers: extra?.(i) ?? [],
              order: this.frameCounter++,
              resolve: settle,
              reject,
            };
            f.part.send(out);
          }),
      ),
    );
    return seqs;
  }

  // ---------------------------------------------------------------- checkpoints

  private sourceState(source: string): Promise<SourceState> {
    let state = this.sources.get(source);
    if (state === undefined) {
      state = recoverSource(this.sourcesKv, source, (stream) => this.partitionOfStream(stream));
      this.sources.set(source, state);
      state.catch(() => this.sources.delete(source));
    }
    return state;
  }

  private async partitionOfStream(stream: string): Promise<JsPartition | null> {
    const m = new RegExp(`^${this.prefix}_(.*)_(\\d+)$`).exec(stream);
    if (m === null) return null;
    for (const t of this.topics.values()) for (const p of t.parts) if (p.stream === stream) return p;
    const topic = unescapeTopic(m[1]!);
    try {
      const t = await this.topic(topic);
      return t.parts[Number(m[2])] ?? null;
    } catch (err) {
      if (err instanceof UnknownTopicError || (err as { code?: string }).code === 'SLUICE_INVALID_TOPIC') return null;
      throw err;
    }
  }

  /**
   * An append with a checkpoint. Its frames carry the checkpoint (sources.ts). Transactions of one
   * source commit in order: a transaction may be in flight beside the previous one only when both
   * are one frame on the same stream (the stream keeps their order); otherwise it waits for the
   * previous one, so a crash can never leave a later position stored without an earlier one.
   */
  private async publishTxn(state: SourceState, position: unknown, positionJson: string, frames: PendingFrame[], batches: PlacedBatch[]): Promise<void> {
    // The previous position *issued* (not yet committed when appends are pipelined): a re-send
    // after a restart starts from the committed one, which is then the same.
    const previousJson = state.issuedJson;
    state.issuedJson = positionJson;
    const txn = txnId(state.source, previousJson, positionJson);
    const counter = ++state.counter;
    frames.forEach((f, i) => (f.msgId = `${txn}-${i}`));
    const single = frames.length === 1 ? frames[0]!.part.stream : null;
    const previous = state.tail;
    const mayOverlap = single !== null && previous.stream === single;
    let finish!: () => void;
    const mine = new Promise<void>((r) => (finish = r));
    state.tail = { stream: single, done: mine };
    if (frames.length === 0) {
      // Nothing to carry the checkpoint: it goes into the cache alone (awaited, so it is stored).
      try {
        await previous.done;
        this.commitPosition(state, counter, position, positionJson);
        await this.flushSource(state, true);
        return;
      } catch (err) {
        state.issuedJson = state.positionJson;
        throw err;
      } finally {
        finish();
      }
    }
    try {
      if (!mayOverlap) await previous.done;
      // Register new streams before writing to them, so recovery knows where to look.
      const fresh = [...new Set(frames.map((f) => f.part))].filter((p) => !(p.stream in state.seqs));
      if (fresh.length > 0) {
        for (const part of fresh) {
          await part.refresh(true);
          state.seqs[part.stream] = part.lastSeq;
        }
        await this.flushSource(state, true);
      }
      const headers = (i: number) => checkpointHeaders(state, txn, counter, positionJson, i, frames.length);
      // Frames that land are entered in state.stored: should another frame of the transaction
      // fail, the source's re-send of this batch (same position, same ids) skips them.
      const seqs = await this.publish(frames, batches, headers, state.stored);
      if (mayOverlap) await previous.done;
      for (let i = 0; i < frames.length; i++) {
        const s = frames[i]!.part.stream;
        state.seqs[s] = Math.max(state.seqs[s] ?? 0, seqs[i]!);
      }
      for (const f of frames) state.stored.delete(f.msgId);
      this.commitPosition(state, counter, position, positionJson);
      void this.flushSource(state, false);
    } catch (err) {
      // The source starts again from its committed position: its re-send must get the same ids.
      state.issuedJson = state.positionJson;
      throw err;
    } finally {
      finish();
    }
  }

  private commitPosition(state: SourceState, counter: number, position: unknown, positionJson: string): void {
    if (counter <= state.committed) return;
    state.committed = counter;
    state.position = position;
    state.positionJson = positionJson;
    state.hasPosition = true;
  }

  /** Writes the source's cache entry; in the background unless `wait`. One write at a time. */
  private async flushSource(state: SourceState, wait: boolean): Promise<void> {
    state.dirty = true;
    if (state.writing !== null) {
      if (!wait) return;
      await state.writing;
      if (!state.dirty) return;
    }
    const run = (async () => {
      try {
        while (state.dirty) await writeCache(this.sourcesKv, state);
      } catch (err) {
        if (wait) throw err;
        this.warn(`caching the checkpoint of ${state.source} failed: ${describe(err)}`);
      } finally {
        state.writing = null;
      }
    })();
    state.writing = run;
    this.track(run);
    if (wait) await run;
  }

  async getCheckpoint(source: string): Promise<unknown> {
    this.check();
    const state = await this.sourceState(source);
    return state.hasPosition ? (JSON.parse(state.positionJson) as unknown) : undefined;
  }

  // ---------------------------------------------------------------- reads

  private async part(topic: string, partition: number): Promise<JsPartition> {
    const t = await this.topic(topic);
    if (!Number.isInteger(partition) || partition < 0 || partition >= t.parts.length) {
      throw new BadPartitionError(topic, partition, t.parts.length);
    }
    return t.parts[partition]!;
  }

  async read(topic: string, partition: number, fromOffset: number, options: ReadOptions = {}): Promise<ReadResult> {
    const { got, p } = await this.readWith(topic, partition, fromOffset, options, async (p, maxBytes) => {
      const records = await p.read(fromOffset, maxBytes);
      return { records, nextOffset: records.length === 0 ? fromOffset : records.at(-1)!.offset + 1 };
    });
    return { records: got?.records ?? [], nextOffset: got?.nextOffset ?? fromOffset, startOffset: p.start, endOffset: p.end };
  }

  async readValues(topic: string, partition: number, fromOffset: number, options: ReadOptions = {}): Promise<ValuesReadResult> {
    const { got, p } = await this.readWith(topic, partition, fromOffset, options, (p, maxBytes) => p.readValues(fromOffset, maxBytes));
    return { firstOffset: fromOffset, spans: got?.spans ?? [], bytes: got?.bytes ?? 0, nextOffset: got?.nextOffset ?? fromOffset, startOffset: p.start, endOffset: p.end };
  }

  /**
   * What read and readValues share: the range checks, the wait at the end, and the fetch (`fetch`,
   * called only when there is something to read; `got` is undefined otherwise).
   */
  private async readWith<T extends { nextOffset: number }>(
    topic: string,
    partition: number,
    fromOffset: number,
    options: ReadOptions,
    fetch: (p: JsPartition, maxBytes: number) => Promise<T>,
  ): Promise<{ got: T | undefined; p: JsPartition }> {
    this.check();
    const p = await this.part(topic, partition);
    if (!Number.isSafeInteger(fromOffset)) throw new InvalidArgumentError(`offset must be an integer, not ${fromOffset}`);
    if (fromOffset >= p.end || fromOffset < p.start) await this.refreshOrForget(p);
    const outOfRange = (): OffsetOutOfRangeError | null =>
      fromOffset < p.start || fromOffset > p.end ? new OffsetOutOfRangeError(topic, partition, fromOffset, p.start, p.end) : null;
    let bad = outOfRange();
    if (bad !== null) throw bad;
    if (fromOffset === p.end && (options.maxWaitMs ?? 0) > 0) {
      await p.waitBeyond(fromOffset, options.maxWaitMs ?? 0, options.signal);
      this.check();
      bad = outOfRange();
      if (bad !== null) throw bad;
    }
    const got = fromOffset < p.end ? await fetch(p, options.maxBytes ?? DEFAULT_READ_BYTES) : undefined;
    if (got !== undefined && got.nextOffset === fromOffset) {
      // The frame went while we looked for it: retention moved the start past it.
      await this.refreshOrForget(p);
      bad = outOfRange();
      if (bad !== null) throw bad;
    }
    return { got, p };
  }

  private async refreshOrForget(p: JsPartition): Promise<void> {
    try {
      await p.refresh(true);
    } catch (err) {
      if (err instanceof UnknownTopicError) this.forget(p.topic);
      throw err;
    }
  }

  async offsetForTimestamp(topic: string, partition: number, timestamp: number): Promise<number | null> {
    this.check();
    return (await this.part(topic, partition)).offsetForTimestamp(timestamp);
  }

  // ---------------------------------------------------------------- groups (groups.ts)

  async commitOffsets(group: string, offsets: readonly GroupOffset[]): Promise<void> {
    this.check();
    return this.groups.commit(group, offsets);
  }

  async fetchOffsets(group: string, topic?: string): Promise<GroupOffset[]> {
    this.check();
    return this.groups.fetch(group, topic);
  }

  async listGroups(): Promise<string[]> {
    this.check();
    return this.groups.list();
  }

  async deleteGroup(group: string): Promise<void> {
    this.check();
    return this.groups.delete(group);
  }

  // ---------------------------------------------------------------- close

  async close(): Promise<void> {
    if (this.closed) return;
    // Appends already accepted (acks none included) finish first.
    while (this.pending.size > 0) await Promise.all([...this.pending]);
    for (const source of this.sources.values()) {
      const state = await source.catch(() => null);
      if (state !== null && state.dirty) await this.flushSource(state, true).catch((err: unknown) => this.warn(describe(err)));
    }
    this.closed = true;
    for (const t of this.topics.values()) for (const p of t.parts) p.wake();
    await this.session.nc.drain().catch(() => this.session.nc.close());
  }
}

interface PlacedBatch {
  topic: string;
  partition: number;
  base: number;
  count: number;
}

interface PendingFrame {
  part: JsPartition;
  batch: PlacedBatch;
  payload: Buffer;
  count: number;
  maxTs: number;
  msgId: string;
  /** The first frame of its batch: its base is the batch's. */
  first: boolean;
}

export type { AppendedBatch };
