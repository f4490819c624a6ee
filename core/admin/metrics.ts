import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Where in a pipeline an error happened; the `stage` label of `sluice_errors_total`. */
export type ErrorStage = 'source' | 'transform' | 'sink' | 'log';
/** What a topic's `on_invalid` did with records that failed its schema. */
export type InvalidAction = 'dlq' | 'reject' | 'drop';

/** Commits are group fsyncs: sub-millisecond on fast disks, seconds on a stalled one. */
const COMMIT_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
/** Sink writes span a local file append to a slow remote HTTP/S3/Postgres round trip. */
const SINK_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/**
 * Every Prometheus metric Sluice exports, in one place so names, labels and help texts are
 * decided once. Each instance owns a private Registry (never prom-client's global one), so
 * two runtimes in one process — or two tests — do not collide, and it registers the default
 * process/Node.js metrics into it.
 *
 * Calls are meant per batch, not per record. Counts and durations must be finite and
 * non-negative; anything else is a caller bug and throws a RangeError rather than silently
 * poisoning a counter with NaN.
 *
 * Label values come from the configuration (pipeline, sink, topic, group names) and partition
 * numbers, so cardinality is bounded by the pipelines file, never by record contents.
 */
export class Metrics {
  readonly registry: Registry;

  private readonly recordsInTotal: Counter<'pipeline'>;
  private readonly bytesInTotal: Counter<'pipeline'>;
  private readonly recordsOutTotal: Counter<'pipeline' | 'sink'>;
  private readonly bytesOutTotal: Counter<'pipeline' | 'sink'>;
  private readonly errorsTotal: Counter<'pipeline' | 'stage'>;
  private readonly invalidTotal: Counter<'pipeline' | 'topic' | 'action'>;
  private readonly restartsTotal: Counter<'pipeline'>;
  private readonly consumerLag: Gauge<'group' | 'topic' | 'partition'>;
  private readonly commitSeconds: Histogram<never>;
  private readonly sinkWriteSeconds: Histogram<'pipeline' | 'sink'>;
  /** Sources' own metrics, made on first report: `sluice_source_<type>_<name>`. */
  private readonly sourceFamilies = new Map<string, Counter<string> | Gauge<string>>();

  constructor() {
    this.registry = new Registry();
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });

    this.recordsInTotal = new Counter({
      name: 'sluice_records_in_total',
      help: 'Records a pipeline appended to its topic.',
      labelNames: ['pipeline'],
      registers,
    });
    this.bytesInTotal = new Counter({
      name: 'sluice_bytes_in_total',
      help: 'Bytes of records a pipeline appended to its topic.',
      labelNames: ['pipeline'],
      registers,
    });
    this.recordsOutTotal = new Counter({
      name: 'sluice_records_out_total',
      help: 'Records a sink delivered.',
      labelNames: ['pipeline', 'sink'],
      registers,
    });
    this.bytesOutTotal = new Counter({
      name: 'sluice_bytes_out_total',
      help: 'Bytes of records a sink delivered.',
      labelNames: ['pipeline', 'sink'],
      registers,
    });
    this.errorsTotal = new Counter({
      name: 'sluice_errors_total',
      help: 'Errors by pipeline and stage (source, transform, sink, log).',
      labelNames: ['pipeline', 'stage'],
      registers,
    });
    this.invalidTotal = new Counter({
      name: 'sluice_invalid_records_total',
      help: "Records that failed their topic's schema (or that their source dead-lettered), by what was done with them (dlq, reject, drop).",
      labelNames: ['pipeline', 'topic', 'action'],
      registers,
    });
    this.restartsTotal = new Counter({
      name: 'sluice_pipeline_restarts_total',
      help: 'Times a pipeline was restarted after a failure.',
      labelNames: ['pipeline'],
      registers,
    });
    this.consumerLag = new Gauge({
      name: 'sluice_consumer_lag_records',
      help: "Records between a consumer group's committed offset and the partition's end offset.",
      labelNames: ['group', 'topic', 'partition'],
      registers,
    });
    this.commitSeconds = new Histogram({
      name: 'sluice_commit_latency_seconds',
      help: 'Time to make one group commit durable (data fsync, commit record, its fsync).',
      buckets: COMMIT_BUCKETS,
      registers,
    });
    this.sinkWriteSeconds = new Histogram({
      name: 'sluice_sink_write_seconds',
      help: 'Time a sink took to write one batch.',
      labelNames: ['pipeline', 'sink'],
      buckets: SINK_BUCKETS,
      registers,
    });
  }

  /** A batch of `n` records (`bytes` in total) appended to the pipeline's topic. */
  recordsIn(pipeline: string, n: number, bytes: number): void {
    this.recordsInTotal.inc({ pipeline }, amount('n', n));
    this.bytesInTotal.inc({ pipeline }, amount('bytes', bytes));
  }

  /** A batch of `n` records (`bytes` in total) delivered by one sink. */
  recordsOut(pipeline: string, sink: string, n: number, bytes: number): void {
    this.recordsOutTotal.inc({ pipeline, sink }, amount('n', n));
    this.bytesOutTotal.inc({ pipeline, sink }, amount('bytes', bytes));
  }

  error(pipeline: string, stage: ErrorStage): void {
    this.errorsTotal.inc({ pipeline, stage });
  }

  invalid(pipeline: string, topic: string, action: InvalidAction, n: number): void {
    this.invalidTotal.inc({ pipeline, topic, action }, amount('n', n));
  }

  restart(pipeline: string): void {
    this.restartsTotal.inc({ pipeline });
  }

  /** The current lag of one group on one partition (a gauge: the latest value wins). */
  lag(group: string, topic: string, partition: number, lag: number): void {
    this.consumerLag.set({ group, topic, partition: String(partition) }, amount('lag', lag));
  }

  /**
   * Drops the lag series of a partition this process no longer consumes (rebalanced away,
   * group deleted), so a stale value is not reported forever.
   */
  forgetLag(group: string, topic: string, partition: number): void {
    this.consumerLag.remove({ group, topic, partition: String(partition) });
  }

  /**
   * A source's own metric (connectors/sdk.ts SourceMetric): `value` is the increase for a
   * counter, the value for a gauge. Names and label names come from the connector's code, so
   * cardinality stays bounded by it and the pipelines file.
   */
  sourceMetric(type: string, pipeline: string, m: { name: string; help: string; kind: 'counter' | 'gauge'; labels?: Record<string, string> }, value: number): void {
    const name = `sluice_source_${type.replace(/[^a-zA-Z0-9_]/g, '_')}_${m.name}`;
    let family = this.sourceFamilies.get(name);
    if (family === undefined) {
      const config = { name, help: m.help, labelNames: ['pipeline', ...Object.keys(m.labels ?? {})], registers: [this.registry] };
      family = m.kind === 'counter' ? new Counter(config) : new Gauge(config);
      this.sourceFamilies.set(name, family);
    }
    const labels = { ...m.labels, pipeline };
    if (family instanceof Counter) family.inc(labels, amount(name, value));
    else family.set(labels, value);
  }

  commitLatency(seconds: number): void {
    this.commitSeconds.observe(amount('seconds', seconds));
  }

  sinkLatency(pipeline: string, sink: string, seconds: number): void {
    this.sinkWriteSeconds.observe({ pipeline, sink }, amount('seconds', seconds));
  }
}

function amount(what: string, value: number): number {
  if (!Number.isFinite(value) || value < 0) {
    throw new RangeError(`metrics: ${what} must be a finite number >= 0, got ${String(value)}`);
  }
  return value;
}
