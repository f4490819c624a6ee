/**
 * The connector SDK: the only module connectors import from core. A connector is a plain
 * declaration (name, summary, JSON Schema of its config, delivery mode, factory); built-ins are
 * listed in connectors/registry.ts.
 */
import type { JSONSchemaType } from 'ajv';

export { writeFileAtomic, isErrno } from '../core/log/local/fs-util.js';
export { parseLogfmt } from '../core/pipeline/transforms/logfmt.js';
export type { PipelineEvent } from '../core/pipeline/transforms/types.js';
export { compileTemplate } from '../core/pipeline/template.js';
export { EncodedRecord } from '../core/pipeline/runs.js';
export { SlabPool } from '../core/util/slab-pool.js';
import type { PipelineEvent } from '../core/pipeline/transforms/types.js';
import type { ValueRun, ValueSpans } from '../core/log/types.js';
export type { ValueRun, ValueSpans } from '../core/log/types.js';

/** A record as a source emits it and a sink receives it: the value is JSON. */
export interface SourceRecord {
  key?: string | null;
  value: unknown;
  headers?: Record<string, string>;
  /** ms since the epoch; defaults to the time of the append. */
  timestamp?: number;
  /**
   * Set when the source could not make a proper record of its input (e.g. a line that does not
   * parse) and its config sends such input to the dead-letter queue. The runtime then appends
   * `{ error, topic, original: value }` to `<topic>.dlq` (header `sluice-error: source`) in the
   * same atomic append as the rest of the batch, instead of passing the record on.
   */
  deadLetter?: { error: string };
  /**
   * The value's JSON text, when the source builds it directly (a hot path that never makes the
   * value object, e.g. postgres_cdc, or the file source's text lines): the runtime stores it as it
   * is when the pipeline has no transforms and the topic no record schema; otherwise it reads
   * `value`, which may then be a getter that parses `encoded` on demand.
   */
  encoded?: string | Uint8Array;
  /**
   * With `encoded`: a small object whose scalars equal the value's at the same paths (e.g.
   * postgres_cdc's `{ source: { schema, table, ... } }`), shared by many records. When every
   * field the topic template reads is a scalar here, the topic is rendered from it, once per
   * distinct view object, and the value is never materialized.
   */
  templateView?: Record<string, unknown>;
  /**
   * Only when the context says `runs: true`: this record stands for `run.count` records whose
   * values' JSON texts lie back to back in the run (each like `encoded`), all with this record's
   * timestamp and templateView, no key and no headers; `value` is not read. The runtime appends
   * the run as it is, with no object per value.
   */
  run?: ValueRun;
}

export interface SourceBatch {
  records: SourceRecord[];
  /**
   * JSON the source can resume from: after this batch is durable, reopening the source at this
   * position must continue right after the batch's last record.
   */
  position: unknown;
}

export interface ConnectorContext {
  /** The pipeline's name. */
  pipeline: string;
  /** The sink's name within the pipeline (set for sinks only). */
  sink?: string;
  /** The directory relative paths in the config are resolved against. */
  baseDir: string;
  /** Ends reads and waits when the runtime shuts down. */
  signal: AbortSignal;
  log: (level: 'info' | 'warn' | 'error', message: string) => void;
  /**
   * Sources: the runtime takes records that stand for runs of pre-encoded values
   * (SourceRecord.run) — the pipeline stores values as they are (no transforms, no key
   * template, no record schema).
   */
  runs?: boolean;
}

/**
 * A source. Lifecycle, all calls from one task, never concurrently:
 *   open(position)  — position is the last one committed with records, or undefined on first start.
 *   read()          — the next batch, or null at the end of a finite input; it may wait (and
 *                     must return null or throw once ctx.signal aborts).
 *   ack(position)   — a batch up to this position is durable in the log (in order; for sources
 *                     that confirm upstream, e.g. a replication slot).
 *   close()         — release resources; no call follows.
 */
export interface Source {
  open(position: unknown): Promise<void>;
  read(): Promise<SourceBatch | null>;
  ack?(position: unknown): Promise<void>;
  close(): Promise<void>;
  /**
   * The source's own metrics, read by the runtime about once a second while it runs (and once
   * more before close) and exported as `sluice_source_<type>_<name>{pipeline, ...labels}`.
   * Synchronous and cheap: it reports counts the source keeps anyway.
   */
  metrics?(): SourceMetric[];
}

/** One sample of a source's metric. */
export interface SourceMetric {
  /** snake_case, e.g. `errors_total` (counters end in `_total`). */
  name: string;
  help: string;
  /**
   * counter: the total since this Source object was created (the runtime adds the increase to
   * the exported counter, so it stays monotonic when the source is restarted); gauge: the value now.
   */
  kind: 'counter' | 'gauge';
  /** Label values besides `pipeline`; the same label names every time for a given name. */
  labels?: Record<string, string>;
  value: number;
}

/** How a sink makes its writes exactly-once (or says it cannot). */
export type SinkDelivery =
  /** Records and the sink's next offset are stored in one transaction in the target. */
  | 'transactional'
  /** Output is deterministic per (topic, partition, offset): a retry overwrites or truncates back. */
  | 'idempotent'
  /** Delivered, then committed; each delivery carries a stable idempotency key (topic/partition/offset). */
  | 'at-least-once';

export interface SinkRecord {
  topic: string;
  partition: number;
  offset: number;
  timestamp: number;
  key: string | null;
  /** The value, parsed from JSON on first access. */
  readonly value: unknown;
  /** The value's stored bytes (JSON text): sinks that write JSON use these as they are. */
  readonly raw: Buffer;
  headers: Readonly<Record<string, string>>;
}

export interface SinkBatch {
  topic: string;
  partition: number;
  /** In offset order, contiguous. */
  records: SinkRecord[];
  /** Offset after the last record. */
  nextOffset: number;
  /**
   * The fence of the lease under which this worker writes the partition (grows with every new
   * holder; 0 on the local backend). A transactional sink stores it with its offsets and refuses
   * a batch whose fence is smaller than the stored one: a worker that lost the partition can no
   * longer write it.
   */
  fence?: number;
}

/**
 * A transactional sink refuses a batch whose `fence` is smaller than the one it stored: another
 * worker holds the partition now. Not retriable; the runtime never dead-letters records for it.
 */
export class SinkFencedError extends Error {
  readonly code = 'SLUICE_SINK_FENCED';
  readonly retriable = false;
  constructor(
    readonly topic: string,
    readonly partition: number,
    readonly fence: number,
    readonly storedFence: number,
  ) {
    super(`${topic}/${partition}: fence ${fence} is older than the stored fence ${storedFence}; another worker holds the partition`);
    this.name = new.target.name;
  }
}

/**
 * A sink. Lifecycle: open() once; then write() called with batches of one partition at a time,
 * in offset order per partition, never concurrently; close() last.
 * For 'transactional' and 'idempotent' sinks, `committedOffset` returns the sink's own record of
 * where each partition's output ends; it wins over the log's group offsets on start.
 * Errors: an error with `retriable: false` is not retried as a batch: the runtime writes the
 * batch again record by record and dead-letters the records that fail (a data error of one
 * record); any other error is retried with backoff first. `SinkFencedError`, and an error with
 * `retriable: true` that outlasts the retries (the target is down), fail the task, which restarts
 * with backoff: no record is dead-lettered for them.
 * A batch may hold no records (after a dead letter): a sink that stores offsets stores nextOffset.
 */
/**
 * A batch as values only (see Sink.writeValues): the records `firstOffset .. nextOffset - 1`, value
 * by value in offset order across `spans`. The buffers are shared: read them, never change them,
 * and keep nothing of them once the call they came with settled (the log reads into them again).
 */
export interface SinkValuesBatch {
  topic: string;
  partition: number;
  firstOffset: number;
  spans: ValueSpans[];
  /** Sum of the values' lengths. */
  bytes: number;
  nextOffset: number;
  fence?: number;
}

/** A batch of a span (Sink.writeSpan): values when the sink takes values, else records. */
export type SpanBatch = SinkBatch | SinkValuesBatch;

export interface Sink {
  open(): Promise<void>;
  committedOffset?(topic: string, partition: number): Promise<number | undefined>;
  write(batch: SinkBatch): Promise<void>;
  /**
   * Optional, for a sink that needs nothing of a record but its value's bytes: the runtime then
   * reads the log without an object per record and hands batches here, with the same contract
   * as `write`. When it fails, the runtime reads the same records again and goes on through
   * `write` (retries, a record at a time, dead letters).
   */
  writeValues?(batch: SinkValuesBatch): Promise<void>;
  /**
   * Optional, for a sink whose cost per record falls as its transactions grow (COPY into
   * PostgreSQL): several consecutive reads of one partition written as one transaction. The
   * runtime calls it instead of `write` when the log holds more than one read past `first`;
   * `more()` resolves to the next batch (contiguous with the one before) while the log has more
   * at hand right now, else to null. The sink calls `more()` only while it has room (its own
   * limits), writes every batch it got, and stores the offset after the last of them with their
   * records, atomically. Resolves once that is committed. When it throws, nothing of it may be
   * stored: the runtime then writes the same records again from `first` through `write`, a read at
   * a time (retries, a record at a time, dead letters). The batches are values batches when the
   * task reads values (the sink has `writeValues` and the log `readValues`), record batches else;
   * a call of `more()` hands back the values batches before it: the sink keeps nothing of their
   * buffers past that call (the log reads into them again).
   */
  writeSpan?(first: SpanBatch, more: () => Promise<SpanBatch | null>): Promise<void>;
  close(): Promise<void>;
}

/** A problem in a connector's config that its JSON Schema cannot see (a bad regex, a bad glob). */
export interface ConfigProblem {
  /** Dotted key path inside the connector's config, e.g. `multiline.start_pattern` or `include.0`. */
  path: string;
  message: string;
  hint?: string;
}

export interface SourceDeclaration<C = Record<string, unknown>> {
  kind: 'source';
  type: string;
  summary: string;
  /** JSON Schema of the connector's config (without the `type` key, which the runtime adds). */
  schema: JSONSchemaType<C> | Record<string, unknown>;
  /** Whether re-reading from a committed position gives exactly the same records. */
  replayable: boolean;
  /**
   * Checks beyond the schema, run by `sluice validate` and `sluice run` on a config the schema
   * accepted; each problem is reported at its key's file:line:column.
   */
  validate?(config: C, ctx: { baseDir: string }): ConfigProblem[];
  create(config: C, ctx: ConnectorContext): Source;
  /**
   * Removes what the source keeps outside Sluice for the pipeline (e.g. a replication slot and a
   * publication), for `sluice pipelines drop`; resolves to one line per thing removed. Called
   * while the pipeline does not run.
   */
  drop?(config: C, ctx: ConnectorContext): Promise<string[]>;
}

/**
 * A custom transform: `create` compiles its config once; the function it returns runs for every
 * event and returns the events that go on ([] drops it). It must not mutate its input.
 */
export interface TransformDeclaration<C = Record<string, unknown>> {
  kind: 'transform';
  type: string;
  summary: string;
  schema: JSONSchemaType<C> | Record<string, unknown>;
  create(config: C): (event: PipelineEvent) => PipelineEvent[];
}

/**
 * What a plugin module (named under `plugins:` in pipelines.yaml) exports: any of these lists.
 * Its connectors and transforms are used exactly like the built-ins.
 */
export interface PluginModule {
  sources?: readonly SourceDeclaration<never>[];
  sinks?: readonly SinkDeclaration<never>[];
  transforms?: readonly TransformDeclaration<never>[];
}

export interface SinkDeclaration<C = Record<string, unknown>> {
  kind: 'sink';
  type: string;
  summary: string;
  schema: JSONSchemaType<C> | Record<string, unknown>;
  delivery: SinkDelivery;
  /** Said in `sluice validate` next to the guarantee, e.g. how receivers deduplicate. */
  deliveryNote?: string;
  create(config: C, ctx: ConnectorContext): Sink;
}
