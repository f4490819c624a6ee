/**
 * The Log: topics of partitions of records at dense, growing offsets. One interface, several
 * backends (local files, NATS JetStream); test/contract holds the suite every backend passes.
 *
 * The log is byte-oriented like Kafka's: a record's value is bytes (the pipeline layer stores
 * JSON text there). That keeps the hot paths free of per-record JSON round trips.
 */

/** When an append resolves. */
export type Acks =
  /** as soon as it is queued (offsets are not known: `baseOffset` is -1). */
  | 'none'
  /** when data and commit record are written to the OS: survives a killed process, not a power cut. */
  | 'written'
  /** when data and commit record are fsynced: survives a power cut. */
  | 'durable';

export interface RetentionConfig {
  /** Delete closed segments whose newest record is older than this. Absent: keep forever. */
  maxAgeMs?: number;
  /** Delete the oldest closed segments while a partition holds more than this. Absent: no limit. */
  maxBytes?: number;
}

export interface TopicConfig {
  partitions: number;
  retention?: RetentionConfig;
  /** Roll the active segment when it would grow past this many bytes. */
  segmentBytes?: number;
  /** Roll the active segment when its first record is older than this. */
  segmentMs?: number;
}

export interface PartitionDescription {
  partition: number;
  /** First offset still held (retention moves it forward). */
  startOffset: number;
  /** Offset the next record will get; records below it are committed and readable. */
  endOffset: number;
  bytes: number;
  segments: number;
}

export interface TopicDescription {
  name: string;
  partitions: number;
  retention: RetentionConfig;
  segmentBytes: number;
  segmentMs: number;
  createdAt: number;
  partitionDetails: PartitionDescription[];
}

/** A record to append. */
export interface ProducerRecord {
  key?: string | null;
  /** UTF-8 text (usually JSON) or raw bytes. */
  value: Uint8Array | string;
  headers?: Record<string, string>;
  /** Milliseconds since the epoch; defaults to the time of the append. */
  timestamp?: number;
  /** Explicit partition; otherwise by key hash, otherwise sticky round-robin per append call. */
  partition?: number;
  /**
   * Set: this record stands for `run.count` records whose values are the run's, each with this
   * record's timestamp and partition, no key and no headers (`value` is then ignored: give an
   * empty one). A source that frames many values at once hands them over without an object each.
   */
  run?: ValueRun;
}

/**
 * Values laid out back to back in one buffer: value i is `buf[i === 0 ? start : ends[i - 1], ends[i])`.
 * Only the first `count` entries of `ends` are used. Leave `buf` and `ends` unchanged until the
 * append settles (a backend may read them after the call returns).
 */
export interface ValueRun {
  buf: Uint8Array;
  start: number;
  ends: Uint32Array;
  count: number;
}

/** A record as read back. `value` may share memory with the read buffer: copy it to keep it long. */
export interface LogRecord {
  offset: number;
  timestamp: number;
  key: string | null;
  value: Buffer;
  /** Shared and frozen when empty: treat as read-only. */
  headers: Readonly<Record<string, string>>;
}

export interface SourceCheckpoint {
  /** Stable identity of the source, e.g. `pipeline/<name>`. */
  source: string;
  /** JSON the source can resume from. */
  position: unknown;
}

export interface AppendOptions {
  acks?: Acks;
  /** Committed atomically with the records: after a crash both are there or neither. */
  checkpoint?: SourceCheckpoint;
  /**
   * Appends that share a chain id commit in order, and once one of them fails every later one
   * of the chain fails too (until a new chain id is used). A source keeping several appends in
   * flight uses this so a later checkpoint can never commit past a batch that was not stored.
   */
  chain?: string;
}

export interface AppendEntry {
  topic: string;
  records: readonly ProducerRecord[];
}

export interface AppendedBatch {
  topic: string;
  partition: number;
  /** Offset of the first record of this batch, -1 with acks 'none'. */
  baseOffset: number;
  count: number;
}

export interface AppendResult {
  /** One per (entry, partition) in the order of the entries; records keep their relative order. */
  batches: AppendedBatch[];
}

export interface ReadOptions {
  /** Soft limit: at least one whole batch is returned even when it is larger. Default 1 MiB. */
  maxBytes?: number;
  /** When there is nothing at `fromOffset` yet, wait up to this long for new records. Default 0. */
  maxWaitMs?: number;
  signal?: AbortSignal;
}

/**
 * The values of consecutive records that sit in one buffer: value `i` is `buf[starts[i], ends[i])`.
 * Only the first `count` entries of `starts` and `ends` are used. The buffer is the reader's own:
 * it may be kept, but not changed.
 */
export interface ValueSpans {
  buf: Buffer;
  starts: Uint32Array;
  ends: Uint32Array;
  count: number;
}

/**
 * What `readValues` returns: the values of the records `firstOffset .. nextOffset - 1`, in offset
 * order across `spans`, without their keys, headers and timestamps and without an object per
 * record. Offsets are dense: there are `nextOffset - firstOffset` values.
 */
export interface ValuesReadResult {
  firstOffset: number;
  spans: ValueSpans[];
  /** Sum of the values' lengths. */
  bytes: number;
  nextOffset: number;
  startOffset: number;
  endOffset: number;
  /**
   * When set: hands the read's buffers back to the log for the next reads. Call it once nothing
   * uses the spans any more (a sink's write of them settled); never calling it is fine too.
   */
  release?: () => void;
}

export interface ReadResult {
  records: LogRecord[];
  /** Offset to read from next. */
  nextOffset: number;
  startOffset: number;
  endOffset: number;
}

export interface GroupOffset {
  topic: string;
  partition: number;
  /** The next offset the group will read. */
  offset: number;
}

export interface Log {
  readonly backend: string;

  createTopic(name: string, config: TopicConfig): Promise<TopicDescription>;
  /** Creates the topic when it does not exist; an existing topic is returned unchanged. */
  ensureTopic(name: string, config: TopicConfig): Promise<TopicDescription>;
  deleteTopic(name: string): Promise<void>;
  listTopics(): Promise<string[]>;
  describeTopic(name: string): Promise<TopicDescription>;

  /** Appends records to one topic. */
  append(topic: string, records: readonly ProducerRecord[], options?: AppendOptions): Promise<AppendResult>;
  /** Appends to several topics at once: all entries and the checkpoint commit together or not at all. */
  appendAll(entries: readonly AppendEntry[], options?: AppendOptions): Promise<AppendResult>;

  /** Committed records from `fromOffset` on, in offset order. */
  read(topic: string, partition: number, fromOffset: number, options?: ReadOptions): Promise<ReadResult>;
  /**
   * Like `read`, the values only (see ValuesReadResult): for a reader that needs nothing else of a
   * record, such as a sink writing values as lines. A backend whose offsets are not dense, or that
   * has no cheaper way, leaves it out.
   */
  readValues?(topic: string, partition: number, fromOffset: number, options?: ReadOptions): Promise<ValuesReadResult>;
  /** First offset whose record's timestamp is >= `timestamp`; null when there is none (read from the end). */
  offsetForTimestamp(topic: string, partition: number, timestamp: number): Promise<number | null>;

  commitOffsets(group: string, offsets: readonly GroupOffset[]): Promise<void>;
  /** The group's committed offsets, for one topic or all. Unknown groups have none. */
  fetchOffsets(group: string, topic?: string): Promise<GroupOffset[]>;
  listGroups(): Promise<string[]>;
  deleteGroup(group: string): Promise<void>;

  /** The last position committed for a source, undefined when it never committed. */
  getCheckpoint(source: string): Promise<unknown>;

  /** Flushes everything queued, then releases files and locks. */
  close(): Promise<void>;
}
