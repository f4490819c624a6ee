/**
 * The pipeline runtime: for every pipeline, a source task (source → transforms → validation →
 * topic, each batch appended together with the source's position) and one task per sink (its own
 * consumer group, partitions in offset order). Tasks are supervised: a failing task is restarted
 * with backoff and never stops the others.
 *
 * Exactly-once, as ARCHITECTURE.md designs it:
 *  - source → log: records and position commit atomically (Log.appendAll with a checkpoint);
 *    on start a source is opened at its last committed position.
 *  - log → sink: transactional and idempotent sinks keep their own offsets, which win over the
 *    group's; at-least-once sinks commit the group offset right after each write.
 */
import type { ValidateFunction } from 'ajv';
import { RecordSchemas } from '../schema/record-ajv.js';
import type { Log, AppendEntry, ProducerRecord, LogRecord, ValuesReadResult } from '../log/types.js';
import { OffsetOutOfRangeError, UnknownTopicError } from '../log/errors.js';
import type {
  ConnectorContext,
  Sink,
  SinkBatch,
  SinkDeclaration,
  SinkRecord,
  SinkValuesBatch,
  SpanBatch,
  Source,
  SourceDeclaration,
  SourceRecord,
  TransformDeclaration,
} from '../../connectors/sdk.js';
import type { PipelineSpec, PipelinesConfig, TopicSpec } from './config.js';
import { compileChain } from './chain.js';
import type { PipelineEvent, TransformFn } from './transforms/index.js';
import { compileTemplate, templateFields } from './template.js';
import { getPath, parseFieldPath, type FieldPath } from './transforms/field-path.js';
import { RESTART_RETRY, SINK_RETRY, backoffDelay, retry, sleep } from './retry.js';
import type { Metrics } from '../admin/metrics.js';
import { LocalCoordinator, units } from './coordinator.js';
import { NO_VALUE, countRecords, spellOut } from './runs.js';
import type { Coordinator, WorkLease } from './coordinator.js';

export interface RuntimeLogger {
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

export interface RuntimeDeps {
  log: Log;
  sources: readonly SourceDeclaration<never>[];
  sinks: readonly SinkDeclaration<never>[];
  /** Custom transforms (from plugins); built-ins need no declaration. */
  transforms?: readonly TransformDeclaration<never>[];
  logger: RuntimeLogger;
  metrics?: Metrics;
  /** Appends in flight per source (positions still commit in order). Default 4. */
  maxInFlight?: number;
  /** How often transactional/idempotent sinks also commit the group offset (for lag). Default 1000 ms. */
  groupCommitIntervalMs?: number;
  /** Who runs which source and sink partition; default: this process runs everything. */
  coordinator?: Coordinator;
  /** How often sinks look for new partitions and workers rebalance. Default 1000 ms. */
  scanIntervalMs?: number;
}

type TaskState = 'starting' | 'standby' | 'running' | 'restarting' | 'finished' | 'stopped' | 'failed';

interface TaskStatus {
  state: TaskState;
  restarts: number;
  lastError?: string;
}

interface SinkStatus extends TaskStatus {
  name: string;
  type: string;
  delivery: string;
  group: string;
  recordsOut: number;
  offsets: Map<string, number>;
}

interface PipelineState {
  spec: PipelineSpec;
  source: (TaskStatus & { type: string; position?: unknown; recordsIn: number }) | null;
  sinks: SinkStatus[];
  transform: TransformFn;
  topicTemplate: (e: PipelineEvent) => string;
  keyTemplate: ((e: PipelineEvent) => string) | null;
  /** Matches the topics this pipeline's sinks read (the target topic, or all its routes). */
  topicPattern: RegExp;
  /**
   * The value fields the topic template reads, when it reads nothing else (no `_key`,
   * `_timestamp`, `_topic`): then its text depends only on them and can be reused per
   * SourceRecord.templateView. Null otherwise.
   */
  topicFields: FieldPath[] | null;
}

/** A topic template's literal parts must match; each {{ ... }} matches one or more characters. */
export function templatePattern(template: string): RegExp {
  const parts = template.split(/\{\{[^}]*\}\}/);
  return new RegExp(`^${parts.map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.+')}$`);
}

const DLQ_SUFFIX = '.dlq';
/** Bytes a sink reads from a partition at once. */
const SINK_READ_BYTES = 4 * 1024 * 1024;

/** One read for a sink: records, or values only for a sink that takes them (Sink.writeValues). */
type SinkRead = { count: number; nextOffset: number; endOffset: number } & (
  | { records: LogRecord[]; values: null }
  | { records: null; values: ValuesReadResult }
);
/** A task that failed after running this long restarts after the shortest backoff again. */
const HEALTHY_MS = 60_000;

/** See PipelineState.topicFields. */
function topicFields(topic: string): FieldPath[] | null {
  if (/\{\{\s*_(key|topic|timestamp)\s*\}\}/.test(topic)) return null;
  return templateFields(topic).map((f) => parseFieldPath(f));
}

/** True when every path leads to a scalar in `view`. */
function leavesIn(view: unknown, paths: readonly FieldPath[]): boolean {
  for (const p of paths) {
    const v = getPath(view, p);
    if (v === undefined || (typeof v === 'object' && v !== null)) return false;
  }
  return true;
}

/** The topics a pipeline's sinks read: its `topic` and every topic a `route` transform names. */
function topicsPattern(spec: PipelineSpec): RegExp {
  const templates = [spec.topic];
  for (const t of spec.transforms) if (t.type === 'route' && typeof t.topic === 'string') templates.push(t.topic);
  return new RegExp(templates.map((t) => templatePattern(t).source).join('|'));
}

export class PipelineRuntime {
  private readonly pipelines: PipelineState[] = [];
  private readonly stopSources = new AbortController();
  private readonly stopSinks = new AbortController();
  private draining = false;
  private readonly sourceTasks: Promise<void>[] = [];
  private readonly sinkTasks: Promise<void>[] = [];
  /** Aborted when sinks start draining (wakes their waiting reads) or stop. */
  private readonly drainSignal = new AbortController();
  private readonly knownTopics = new Set<string>();
  private readonly validators = new Map<string, ValidateFunction | null>();
  private readonly schemas = new RecordSchemas();
  private readonly startedAt = Date.now();
  private readonly maxInFlight: number;
  private readonly groupCommitMs: number;
  private readonly coordinator: Coordinator;
  private readonly scanMs: number;
  /** Source units this worker holds now, for the fair share. */
  private sourcesHeld = 0;

  constructor(
    private readonly config: PipelinesConfig,
    private readonly deps: RuntimeDeps,
  ) {
    this.maxInFlight = deps.maxInFlight ?? 4;
    this.groupCommitMs = deps.groupCommitIntervalMs ?? 1000;
    this.coordinator = deps.coordinator ?? new LocalCoordinator();
    this.scanMs = deps.scanIntervalMs ?? 1000;
  }

  /** Creates declared topics, compiles what can be compiled, and starts every task. */
  async start(): Promise<void> {
    for (const [name, t] of this.config.topics) await this.ensureTopic(name, t);
    for (const validatorTopic of this.config.topics.keys()) await this.validator(validatorTopic);
    for (const spec of this.config.pipelines) {
      const state: PipelineState = {
        spec,
        source: spec.source === undefined ? null : { type: spec.source.type, state: 'starting', restarts: 0, recordsIn: 0 },
        sinks: spec.sinks.map((s) => ({
          name: s.name,
          type: s.type,
          delivery: this.sinkDecl(s.type).delivery,
          group: `sluice.${spec.name}.${s.name}`,
          state: 'starting' as TaskState,
          restarts: 0,
          recordsOut: 0,
          offsets: new Map(),
        })),
        transform: compileChain(spec.transforms, this.deps.transforms ?? []),
        topicTemplate: compileTemplate(spec.topic),
        keyTemplate: spec.key === undefined ? null : compileTemplate(spec.key),
        topicPattern: topicsPattern(spec),
        topicFields: topicFields(spec.topic),
      };
      if (!spec.topic.includes('{{')) await this.ensureTopic(spec.topic);
      this.pipelines.push(state);
    }
    for (const p of this.pipelines) {
      if (p.source !== null) {
        this.sourceTasks.push(this.supervise(`pipeline "${p.spec.name}" source`, p.source, this.stopSources.signal, () => this.runSource(p)));
      }
      for (const s of p.sinks) {
        this.sinkTasks.push(this.supervise(`pipeline "${p.spec.name}" sink "${s.name}"`, s, this.stopSinks.signal, () => this.runSink(p, s)));
      }
    }
  }

  private sourceDecl(type: string): SourceDeclaration<never> {
    const d = this.deps.sources.find((s) => s.type === type);
    if (d === undefined) throw new Error(`unknown source type "${type}"`);
    return d;
  }

  private sinkDecl(type: string): SinkDeclaration<never> {
    const d = this.deps.sinks.find((s) => s.type === type);
    if (d === undefined) throw new Error(`unknown sink type "${type}"`);
    return d;
  }

  private async ensureTopic(name: string, spec?: TopicSpec): Promise<void> {
    if (this.knownTopics.has(name)) return;
    const t = spec ?? this.config.topics.get(name);
    await this.deps.log.ensureTopic(name, { partitions: t?.partitions ?? 1, retention: t?.retention ?? {} });
    this.knownTopics.add(name);
  }

  private async validator(topic: string): Promise<ValidateFunction | null> {
    if (this.validators.has(topic)) return this.validators.get(topic)!;
    const path = this.config.topics.get(topic)?.schema;
    let v: ValidateFunction | null = null;
    if (path !== undefined) v = await this.schemas.load(path);
    this.validators.set(topic, v);
    return v;
  }

  /** Runs a task until it finishes or its signal aborts; a failure restarts it with backoff. */
  private async supervise(name: string, status: TaskStatus, signal: AbortSignal, run: () => Promise<void>): Promise<void> {
    for (let attempt = 1; !signal.aborted; attempt++) {
      status.state = 'running';
      const startedAt = Date.now();
      try {
        await run();
        status.state = signal.aborted ? 'stopped' : 'finished';
        return;
      } catch (err) {
        if (signal.aborted) {
          status.state = 'stopped';
          return;
        }
        // A task that ran healthily for a while starts its backoff over.
        if (Date.now() - startedAt > HEALTHY_MS) attempt = 1;
        status.restarts++;
        status.lastError = (err as Error)?.message ?? String(err);
        status.state = 'restarting';
        const delay = backoffDelay(attempt, RESTART_RETRY);
        this.deps.logger.error(`${name} failed: ${status.lastError}; restarting in ${delay} ms`);
        const pipeline = name.match(/"([^"]+)"/)?.[1] ?? name;
        this.deps.metrics?.restart(pipeline);
        await sleep(delay, signal);
      }
    }
    status.state = 'stopped';
  }

  // ---- source side ----

  /**
   * Runs the pipeline's source while this worker holds its lease: waits for the lease (another
   * worker may run the source), runs, and waits again when the lease is lost or handed over to
   * balance the work. Ends when the runtime stops or the source's input is finite and done.
   */
  private async runSource(p: PipelineState): Promise<void> {
    const unit = units.source(p.spec.name);
    const total = this.pipelines.filter((x) => x.source !== null).length;
    const stop = this.stopSources.signal;
    while (!stop.aborted) {
      p.source!.state = 'standby';
      const lease = await this.acquire(unit, () => this.sourcesHeld < this.coordinator.fairShare(total), stop);
      if (lease === null) return;
      p.source!.state = 'running';
      this.sourcesHeld++;
      const handover = new AbortController();
      // Gives the source up when this worker holds more than its share (another worker joined).
      const rebalance = setInterval(() => {
        if (!handover.signal.aborted && this.sourcesHeld > this.coordinator.fairShare(total)) {
          this.sourcesHeld--;
          handover.abort();
          this.deps.logger.info(`pipeline "${p.spec.name}": handing the source over to balance the work`);
        }
      }, this.scanMs);
      let finished = false;
      try {
        finished = await this.runSourceHeld(p, lease, AbortSignal.any([stop, lease.lost, handover.signal]));
      } finally {
        clearInterval(rebalance);
        if (!handover.signal.aborted) this.sourcesHeld--;
        await lease.release();
      }
      if (finished) return;
      if (lease.lost.aborted && !handover.signal.aborted && !stop.aborted) {
        this.deps.logger.warn(`pipeline "${p.spec.name}": source stopped: ${String((lease.lost.reason as Error)?.message ?? lease.lost.reason)}`);
      }
    }
  }

  /**
   * Waits until the unit's lease is granted (while `wanted()` says this worker should take more
   * work); null when `stop` aborts first.
   */
  private async acquire(unit: string, wanted: () => boolean, stop: AbortSignal): Promise<WorkLease | null> {
    while (!stop.aborted) {
      if (wanted()) {
        const lease = await this.coordinator.tryAcquire(unit);
        if (lease !== null) return lease;
      }
      await sleep(this.scanMs, stop);
    }
    return null;
  }

  /** The source at work under a lease; true when its input ended (read() returned null). */
  private async runSourceHeld(p: PipelineState, lease: WorkLease, signal: AbortSignal): Promise<boolean> {
    const { log } = this.deps;
    const spec = p.spec.source!;
    const id = `pipeline/${p.spec.name}`;
    const ctx: ConnectorContext = {
      pipeline: p.spec.name,
      baseDir: this.config.baseDir,
      signal,
      log: (level, message) => this.deps.logger[level](`pipeline "${p.spec.name}": ${message}`),
      // Runs of pre-encoded values go to the log as they are when nothing needs them one by one
      // (a run that meets a record schema after all is spelled out in prepare()).
      runs: p.spec.transforms.length === 0 && p.keyTemplate === null && p.topicFields !== null,
    };
    const position = await log.getCheckpoint(id);
    const source: Source = this.sourceDecl(spec.type).create(spec.config as never, ctx);
    const stopMetrics = this.reportSourceMetrics(p, source);
    await source.open(position);
    p.source!.position = position;
    const inFlight: Promise<void>[] = [];
    let acked: Promise<void> = Promise.resolve();
    // A fresh chain per run: if one append fails, the ones behind it fail too, so no later
    // checkpoint commits past the gap; the restart resumes at the last stored batch.
    let failure: unknown = null;
    const chain = `${id}#${Date.now()}-${Math.random().toString(36).slice(2)}`;
    let ended = false;
    try {
      while (!signal.aborted) {
        const batch = await source.read();
        if (batch === null) {
          ended = !signal.aborted;
          break;
        }
        if (failure !== null) throw failure;
        const entries = await this.prepare(p, batch.records);
        const appended = log.appendAll(entries, { checkpoint: { source: id, position: batch.position }, acks: this.config.log.acks, chain });
        const n = countRecords(batch.records);
        // Only the position waits for the append: the records can go (young) while it is in flight.
        const position = batch.position;
        // Acks go to the source in order, each after its batch is durable.
        acked = Promise.all([acked, appended]).then(async () => {
          p.source!.position = position;
          p.source!.recordsIn += n;
          await source.ack?.(position);
        });
        // Awaited below; meanwhile a failure stops this loop before it issues another append.
        appended.catch((err: unknown) => (failure ??= err));
        acked.catch(() => undefined);
        inFlight.push(acked);
        if (inFlight.length >= this.maxInFlight) await inFlight.shift();
      }
      await Promise.all(inFlight);
    } finally {
      await Promise.allSettled(inFlight);
      await source.close().finally(stopMetrics);
    }
    // Stopped by a lost or handed-over lease is not an error of the source: the caller waits again.
    return ended;
  }

  /**
   * Exports the source's own metrics (Source.metrics) about once a second while it runs; the
   * returned function reports a last time and stops. Counters are reported as increases since the
   * last look, so a restarted source (counting from 0 again) keeps the exported series monotonic.
   */
  private reportSourceMetrics(p: PipelineState, source: Source): () => void {
    const metrics = this.deps.metrics;
    if (metrics === undefined || source.metrics === undefined) return () => undefined;
    const seen = new Map<string, number>();
    const type = p.spec.source!.type;
    let warned = false;
    const report = (): void => {
      try {
        for (const m of source.metrics!()) {
          if (m.kind === 'gauge') {
            metrics.sourceMetric(type, p.spec.name, m, m.value);
            continue;
          }
          const k = `${m.name}${JSON.stringify(m.labels ?? {})}`;
          const last = seen.get(k);
          seen.set(k, m.value);
          // The first look exports the series even at 0, so that it exists before it grows.
          if (last === undefined || m.value > last) metrics.sourceMetric(type, p.spec.name, m, Math.max(0, m.value - (last ?? 0)));
        }
      } catch (err) {
        if (!warned) this.deps.logger.warn(`pipeline "${p.spec.name}": source metrics not exported: ${(err as Error).message}`);
        warned = true;
      }
    };
    const timer = setInterval(report, 1000);
    timer.unref();
    return () => {
      clearInterval(timer);
      report();
    };
  }

  /** Source records → events → transforms → validated, keyed, encoded entries per topic. */
  private async prepare(p: PipelineState, records: readonly SourceRecord[]): Promise<AppendEntry[]> {
    const byTopic = new Map<string, ProducerRecord[]>();
    const push = (topic: string, r: ProducerRecord): void => {
      let list = byTopic.get(topic);
      if (list === undefined) byTopic.set(topic, (list = []));
      list.push(r);
    };
    const now = Date.now();
    let bytes = 0;
    const direct = p.spec.transforms.length === 0;
    // The topic rendered for the last template view (records of one table and transaction share it).
    let lastView: unknown;
    let viewTopic: string | undefined;
    // The last topic's validator and record list: runs of records go to one topic.
    let lastTopic: string | undefined;
    let lastValidate: ValidateFunction | null = null;
    let lastList: ProducerRecord[] = [];
    /** The topic rendered from a template view, once per distinct view; undefined if it cannot be. */
    const topicOfView = (view: Record<string, unknown>, timestamp: number): string | undefined => {
      if (view !== lastView) {
        lastView = view;
        viewTopic = leavesIn(view, p.topicFields!) ? p.topicTemplate({ value: view, key: null, headers: {}, timestamp, topic: '' }) : undefined;
      }
      return viewTopic;
    };
    /** Makes `topic` the current one: its validator, and (without one) its record list. */
    const useTopic = async (topic: string): Promise<void> => {
      lastValidate = await this.validator(topic);
      lastTopic = topic;
      lastList = lastValidate === null ? (byTopic.get(topic) ?? []) : [];
      if (lastValidate === null && !byTopic.has(topic)) byTopic.set(topic, lastList);
    };
    /** The topic of a run that goes to the log as it is: from its view, without a record schema. */
    const runTopic = async (r: SourceRecord): Promise<string | undefined> => {
      const view = r.templateView;
      if (!direct || p.keyTemplate !== null || p.topicFields === null || view === undefined) return undefined;
      const topic = topicOfView(view, r.timestamp ?? now);
      if (topic === undefined) return undefined;
      return (await this.validator(topic)) === null ? topic : undefined;
    };
    // Runs that cannot go as they are are spelled out first, one record a value.
    let list: readonly SourceRecord[] = records;
    if (records.some((r) => r.run !== undefined)) {
      const out: SourceRecord[] = [];
      for (const r of records) {
        if (r.run === undefined || (await runTopic(r)) !== undefined) out.push(r);
        else for (const one of spellOut(r)) out.push(one);
      }
      list = out;
    }
    let count = 0;
    for (const r of list) {
      if (r.run !== undefined) {
        const topic = await runTopic(r);
        if (topic === undefined) throw new Error('internal: a run that cannot go as it is was not spelled out');
        if (topic !== lastTopic) await useTopic(topic);
        const run = r.run;
        lastList.push({ value: NO_VALUE, run, timestamp: r.timestamp ?? now });
        bytes += run.count === 0 ? 0 : run.ends[run.count - 1]! - run.start;
        count += run.count;
        continue;
      }
      count++;
      // Pre-encoded values pass through as they are when nothing needs the value object (a
      // record the source dead-letters takes the general path to <topic>.dlq).
      if (direct && r.encoded !== undefined && r.deadLetter === undefined) {
        const timestamp = r.timestamp ?? now;
        let topic: string | undefined;
        const view = p.topicFields === null ? undefined : r.templateView;
        if (view !== undefined) topic = topicOfView(view, timestamp);
        let ev: PipelineEvent | undefined;
        if (topic === undefined) {
          ev = { value: r.value, key: r.key ?? null, headers: r.headers ?? {}, timestamp, topic: '' };
          topic = ev.topic = p.topicTemplate(ev);
        }
        // No await (a microtask) per record once the topic is known.
        if (topic !== lastTopic) await useTopic(topic);
        if (lastValidate === null) {
          let key = r.key ?? null;
          if (p.keyTemplate !== null) {
            ev ??= { value: r.value, key, headers: r.headers ?? {}, timestamp, topic };
            key = p.keyTemplate(ev);
          }
          const rec: ProducerRecord = { value: r.encoded, timestamp };
          if (key !== null && key !== '') rec.key = key;
          if (r.headers !== undefined && Object.keys(r.headers).length > 0) rec.headers = r.headers;
          bytes += r.encoded.length;
          lastList.push(rec);
          continue;
        }
      }
      const event: PipelineEvent = {
        value: r.value,
        key: r.key ?? null,
        headers: r.headers ?? {},
        timestamp: r.timestamp ?? now,
        topic: '',
      };
      event.topic = p.topicTemplate(event);
      if (r.deadLetter !== undefined) {
        // The source's own verdict (e.g. a line that did not parse): straight to the DLQ.
        this.deps.metrics?.invalid(p.spec.name, event.topic, 'dlq', 1);
        push(event.topic + DLQ_SUFFIX, {
          value: JSON.stringify({ error: r.deadLetter.error, topic: event.topic, original: event.value }),
          timestamp: event.timestamp,
          headers: { ...event.headers, 'sluice-error': 'source' },
        });
        continue;
      }
      for (const out of p.transform(event)) {
        const topic = out.topic;
        // Compiled once per topic: no await (a microtask) per record once it is known.
        const known = this.validators.get(topic);
        const validate = known !== undefined || this.validators.has(topic) ? (known ?? null) : await this.validator(topic);
        if (validate !== null && !validate(out.value)) {
          const action = this.config.topics.get(topic)?.onInvalid ?? 'dlq';
          this.deps.metrics?.invalid(p.spec.name, topic, action, 1);
          const errors = this.schemas.ajv.errorsText(validate.errors);
          if (action === 'drop') continue;
          if (action === 'reject') throw new Error(`record rejected by the schema of topic "${topic}": ${errors}`);
          push(topic + DLQ_SUFFIX, {
            value: JSON.stringify({ error: errors, topic, original: out.value }),
            timestamp: out.timestamp,
            headers: { ...out.headers, 'sluice-error': 'schema' },
          });
          continue;
        }
        const value = JSON.stringify(out.value) ?? 'null';
        bytes += value.length;
        const key = p.keyTemplate !== null ? p.keyTemplate(out) : out.key;
        const rec: ProducerRecord = { value, timestamp: out.timestamp };
        if (key !== null && key !== '') rec.key = key;
        if (Object.keys(out.headers).length > 0) rec.headers = out.headers;
        push(topic, rec);
      }
    }
    for (const topic of byTopic.keys()) await this.ensureTopic(topic);
    this.deps.metrics?.recordsIn(p.spec.name, count, bytes);
    return [...byTopic].map(([topic, recs]) => ({ topic, records: recs }));
  }

  // ---- sink side ----

  private async runSink(p: PipelineState, s: SinkStatus): Promise<void> {
    const spec = p.spec.sinks.find((x) => x.name === s.name)!;
    const decl = this.sinkDecl(spec.type);
    const signal = this.stopSinks.signal;
    const ctx: ConnectorContext = {
      pipeline: p.spec.name,
      sink: s.name,
      baseDir: this.config.baseDir,
      signal,
      log: (level, message) => this.deps.logger[level](`pipeline "${p.spec.name}" sink "${s.name}": ${message}`),
    };
    const sink = decl.create(spec.config as never, ctx);
    await sink.open();
    const writeLock = { tail: Promise.resolve() as Promise<unknown> };
    const loops = new Map<string, Promise<void>>();
    /** Partitions this worker works on, each under its lease, with a switch to hand it over. */
    const held = new Map<string, AbortController>();
    let failure: unknown = null;
    const wake = new AbortController();
    const onStop = (): void => wake.abort();
    signal.addEventListener('abort', onStop, { once: true });
    this.drainSignal.signal.addEventListener('abort', onStop, { once: true });
    try {
      // Partitions of every topic this pipeline's sinks read (new routed topics are picked up),
      // as many as this worker's fair share; the excess is handed over when workers join.
      while (failure === null) {
        const parts: [string, number][] = [];
        for (const topic of await this.deps.log.listTopics()) {
          if (topic.endsWith(DLQ_SUFFIX) || !p.topicPattern.test(topic)) continue;
          let partitions: number;
          try {
            ({ partitions } = await this.deps.log.describeTopic(topic));
          } catch (err) {
            // Deleted since it was listed, or still being created by another worker: next scan.
            if (err instanceof UnknownTopicError) continue;
            throw err;
          }
          for (let part = 0; part < partitions; part++) parts.push([topic, part]);
        }
        const share = this.coordinator.fairShare(parts.length);
        let excess = held.size - share;
        for (const stop of held.values()) {
          if (excess <= 0) break;
          if (!stop.signal.aborted) {
            stop.abort();
            excess--;
          }
        }
        for (const [topic, part] of parts) {
          if (held.size >= share || this.draining || signal.aborted) break;
          const k = `${topic}/${part}`;
          if (loops.has(k)) continue;
          const lease = await this.coordinator.tryAcquire(units.sinkPartition(p.spec.name, s.name, topic, part));
          if (lease === null) continue;
          const stop = new AbortController();
          held.set(k, stop);
          const loop = this.partitionLoop(p, s, decl, sink, topic, part, writeLock, lease, AbortSignal.any([stop.signal, lease.lost]))
            .catch((err: unknown) => {
              failure ??= err;
              wake.abort();
            })
            .finally(async () => {
              loops.delete(k);
              held.delete(k);
              s.offsets.delete(k);
              await lease.release().catch(() => undefined);
            });
          loops.set(k, loop);
        }
        if (this.draining || signal.aborted) break;
        await sleep(this.scanMs, wake.signal);
        if (this.draining) break;
      }
      await Promise.all([...loops.values()]);
      if (failure !== null) throw failure;
    } finally {
      signal.removeEventListener('abort', onStop);
      this.drainSignal.signal.removeEventListener('abort', onStop);
      for (const stop of held.values()) stop.abort();
      await Promise.allSettled([...loops.values()]);
      await sink.close();
    }
  }

  private async partitionLoop(
    p: PipelineState,
    s: SinkStatus,
    decl: SinkDeclaration<never>,
    sink: Sink,
    topic: string,
    partition: number,
    writeLock: { tail: Promise<unknown> },
    lease: WorkLease,
    /** Aborted when the lease is lost or handed over: stop after the write in hand. */
    stop: AbortSignal,
  ): Promise<void> {
    const { log } = this.deps;
    const signal = this.stopSinks.signal;
    const wakeRead = AbortSignal.any([this.drainSignal.signal, stop]);
    const own = await sink.committedOffset?.(topic, partition);
    const group = (await log.fetchOffsets(s.group, topic)).find((o) => o.partition === partition)?.offset;
    let offset = own ?? group ?? (await log.describeTopic(topic)).partitionDetails[partition]!.startOffset;
    const key = `${topic}/${partition}`;
    s.offsets.set(key, offset);
    let lastGroupCommit = 0;
    let committed = group ?? -1;
    const commitGroup = async (force: boolean): Promise<void> => {
      if (offset === committed) return;
      if (!force && decl.delivery !== 'at-least-once' && Date.now() - lastGroupCommit < this.groupCommitMs) return;
      await log.commitOffsets(s.group, [{ topic, partition, offset }]);
      committed = offset;
      lastGroupCommit = Date.now();
    };
    // A sink that takes values only gets them without an object per record (when the log can).
    const values = sink.writeValues !== undefined && log.readValues !== undefined;
    const readAt = async (from: number, maxWaitMs = this.draining ? 0 : 500): Promise<SinkRead> => {
      const options = { maxBytes: SINK_READ_BYTES, maxWaitMs, signal: wakeRead };
      if (values) {
        const v = await log.readValues!(topic, partition, from, options);
        return { count: v.nextOffset - v.firstOffset, nextOffset: v.nextOffset, endOffset: v.endOffset, records: null, values: v };
      }
      const r = await log.read(topic, partition, from, options);
      return { count: r.records.length, nextOffset: r.nextOffset, endOffset: r.endOffset, records: r.records, values: null };
    };
    /** The read of the records after the batch being written, started before its write (read-ahead). */
    let ahead = null as { from: number; read: Promise<SinkRead> } | null;
    const readAhead = (from: number, maxWaitMs?: number): void => {
      ahead = { from, read: readAt(from, maxWaitMs) };
      ahead.read.catch(() => undefined);
    };
    const toBatch = (r: SinkRead): SpanBatch =>
      r.values !== null
        ? { topic, partition, firstOffset: r.values.firstOffset, spans: r.values.spans, bytes: r.values.bytes, nextOffset: r.nextOffset, fence: lease.fence }
        : { topic, partition, records: r.records.map((x) => toSinkRecord(topic, partition, x)), nextOffset: r.nextOffset, fence: lease.fence };
    /** After a span that failed, its records go through write, a read at a time, up to here. */
    let noSpanBefore = -1;
    try {
      while (!stop.aborted) {
        let res: SinkRead;
        try {
          const pending: Promise<SinkRead> | null = ahead !== null && ahead.from === offset ? ahead.read : null;
          ahead = null;
          res = await (pending ?? readAt(offset));
        } catch (err) {
          if (err instanceof OffsetOutOfRangeError && offset < err.startOffset) {
            // Retention removed what this sink had not read yet: like Kafka's auto.offset.reset=earliest.
            this.deps.logger.warn(`${s.group}: ${topic}/${partition} offsets ${offset}..${err.startOffset - 1} were removed by retention before they were delivered`);
            offset = err.startOffset;
            continue;
          }
          if (err instanceof UnknownTopicError) return;
          throw err;
        }
        this.deps.metrics?.lag(s.group, topic, partition, res.endOffset - res.nextOffset);
        if (res.count === 0) {
          if (this.draining || signal.aborted) {
            if (this.draining && offset < res.endOffset) continue;
            break;
          }
          await commitGroup(false);
          continue;
        }
        if (stop.aborted) break;
        const t0 = performance.now();
        if (sink.writeSpan !== undefined && res.endOffset > res.nextOffset && offset >= noSpanBefore) {
          // A backlog, and a sink whose transactions get cheaper per record as they grow: one
          // transaction over as many reads as it takes (and the log has at hand).
          const readNext = (from: number): Promise<SinkRead> => {
            readAhead(from, 0);
            return ahead!.read.then((r) => {
              this.deps.metrics?.lag(s.group, topic, partition, r.endOffset - r.nextOffset);
              return r;
            });
          };
          const first = res;
          const run = writeLock.tail.then(() => this.deliverSpan(p, s, sink, offset, first, toBatch, readNext, stop));
          writeLock.tail = run.catch(() => undefined);
          const span = await run;
          if (span.failed) {
            noSpanBefore = span.nextOffset;
            ahead = null;
            continue;
          }
          this.deps.metrics?.recordsOut(p.spec.name, s.name, span.nextOffset - offset, span.bytes);
          this.deps.metrics?.sinkLatency(p.spec.name, s.name, (performance.now() - t0) / 1000);
          offset = span.nextOffset;
          s.offsets.set(key, offset);
          await commitGroup(false);
          continue;
        }
        // While this batch is written, the next one is read.
        if (!this.draining) readAhead(res.nextOffset);
        const bytes = readBytes(res);
        const batch = toBatch(res);
        const run = writeLock.tail.then(() => ('spans' in batch ? this.deliverValues(p, s, sink, batch) : this.deliver(p, s, sink, batch)));
        writeLock.tail = run.catch(() => undefined);
        await run;
        // The sink is done with the read's buffers: the log may read into them again.
        res.values?.release?.();
        this.deps.metrics?.recordsOut(p.spec.name, s.name, res.count, bytes);
        this.deps.metrics?.sinkLatency(p.spec.name, s.name, (performance.now() - t0) / 1000);
        offset = res.nextOffset;
        s.offsets.set(key, offset);
        await commitGroup(false);
      }
    } finally {
      // After a lost lease the new holder owns the group offset: committing ours could move it back.
      if (!lease.lost.aborted || this.coordinator.failoverMs === 0) await commitGroup(true).catch(() => undefined);
    }
  }

  /**
   * Writes a batch with retries (an error with `retriable: false` is not retried); a record that
   * still fails alone goes to the DLQ. A fenced sink, or one whose error says `retriable: true`
   * (the target is down), fails the task instead: its records are not bad.
   */
  private async deliver(p: PipelineState, s: SinkStatus, sink: Sink, batch: SinkBatch): Promise<void> {
    const w = this.sinkWrites(p, s);
    try {
      await retry(() => sink.write(batch), { policy: SINK_RETRY, signal: w.signal, onRetry: w.onRetry, isRetriable: w.isRetriable });
    } catch (err) {
      if (w.signal.aborted || w.outage(err)) throw err;
      s.recordsOut += await this.oneByOne(p, s, sink, batch);
      return;
    }
    s.recordsOut += batch.records.length;
  }

  /**
   * deliver for a batch of values: when writeValues keeps failing for its records (not because
   * the target is down), the same records are read again and go through write one at a time.
   */
  private async deliverValues(p: PipelineState, s: SinkStatus, sink: Sink, batch: SinkValuesBatch): Promise<void> {
    const w = this.sinkWrites(p, s);
    try {
      await retry(() => sink.writeValues!(batch), { policy: SINK_RETRY, signal: w.signal, onRetry: w.onRetry, isRetriable: w.isRetriable });
    } catch (err) {
      if (w.signal.aborted || w.outage(err)) throw err;
      const { topic, partition } = batch;
      for (let from = batch.firstOffset; from < batch.nextOffset; ) {
        const r = await this.deps.log.read(topic, partition, from, { maxBytes: SINK_READ_BYTES });
        const records = r.records.filter((x) => x.offset < batch.nextOffset).map((x) => toSinkRecord(topic, partition, x));
        if (records.length === 0) throw new Error(`${topic}/${partition}: offsets ${from}..${batch.nextOffset - 1} could not be read again`, { cause: err });
        const next = records[records.length - 1]!.offset + 1;
        s.recordsOut += await this.oneByOne(p, s, sink, { topic, partition, records, nextOffset: next, fence: batch.fence });
        from = next;
      }
      return;
    }
    s.recordsOut += batch.nextOffset - batch.firstOffset;
  }

  /**
   * One sink.writeSpan over `first` and the reads that follow it while the log has them at hand
   * (each started while the sink writes the batch before). Resolves to the offset after the last
   * batch the sink took; `failed` when the span threw (nothing of it is stored, by writeSpan's
   * contract): the caller then writes the same records through write, a read at a time.
   */
  private async deliverSpan(
    p: PipelineState,
    s: SinkStatus,
    sink: Sink,
    from: number,
    first: SinkRead,
    toBatch: (r: SinkRead) => SpanBatch,
    readNext: (from: number) => Promise<SinkRead>,
    stop: AbortSignal,
  ): Promise<{ nextOffset: number; bytes: number; failed: boolean }> {
    let last = first.nextOffset;
    let bytes = readBytes(first);
    let pending: Promise<SinkRead> | null = readNext(last);
    /** The reads handed to the sink whose buffers it may still use (writeSpan: until it calls more()). */
    let handed: SinkRead[] = [first];
    const more = async (): Promise<SpanBatch | null> => {
      for (const r of handed) r.values?.release?.();
      handed = [];
      if (pending === null || stop.aborted || this.stopSinks.signal.aborted) return null;
      const r = await pending;
      pending = null;
      if (r.count === 0 || r.nextOffset <= last) return null;
      if (r.endOffset > r.nextOffset) pending = readNext(r.nextOffset);
      last = r.nextOffset;
      bytes += readBytes(r);
      handed.push(r);
      return toBatch(r);
    };
    try {
      await sink.writeSpan!(toBatch(first), more);
      for (const r of handed) r.values?.release?.();
    } catch (err) {
      if (this.stopSinks.signal.aborted) throw err;
      this.deps.metrics?.error(p.spec.name, 'sink');
      this.deps.logger.warn(`sink "${s.name}" write of offsets ${from}..${last - 1} as one transaction failed: ${(err as Error).message}; writing them a read at a time`);
      return { nextOffset: last, bytes, failed: true };
    }
    s.recordsOut += last - from;
    return { nextOffset: last, bytes, failed: false };
  }

  /** What deliver and deliverValues share: the stop signal, retry logging, and error kinds. */
  private sinkWrites(p: PipelineState, s: SinkStatus) {
    const onRetry = (err: unknown, attempt: number, delay: number): void => {
      this.deps.metrics?.error(p.spec.name, 'sink');
      this.deps.logger.warn(`sink "${s.name}" write failed (attempt ${attempt}): ${(err as Error).message}; retrying in ${delay} ms`);
    };
    const isRetriable = (err: unknown): boolean => (err as { retriable?: unknown } | null)?.retriable !== false;
    const fenced = (err: unknown): boolean => (err as { code?: unknown } | null)?.code === 'SLUICE_SINK_FENCED';
    // An error that says it is retriable (the target is down) is no fault of the records: the task
    // fails and restarts with backoff from the sink's offsets instead of dead-lettering the batch.
    const outage = (err: unknown): boolean => fenced(err) || (err as { retriable?: unknown } | null)?.retriable === true;
    return { signal: this.stopSinks.signal, onRetry, isRetriable, outage };
  }

  /**
   * Finds the poison: delivers one record at a time, dead-lettering the ones that keep failing;
   * resolves to how many were delivered.
   */
  private async oneByOne(p: PipelineState, s: SinkStatus, sink: Sink, batch: SinkBatch): Promise<number> {
    const { signal, onRetry, isRetriable, outage } = this.sinkWrites(p, s);
    const keepsOffsets = s.delivery !== 'at-least-once';
    let delivered = 0;
    for (const r of batch.records) {
      const one: SinkBatch = { ...batch, records: [r], nextOffset: r.offset + 1 };
      try {
        await retry(() => sink.write(one), { policy: { ...SINK_RETRY, maxAttempts: 2 }, signal, onRetry, isRetriable });
        delivered++;
      } catch (recordErr) {
        if (signal.aborted || outage(recordErr)) throw recordErr;
        await this.deadLetter(p, s, r, recordErr);
        // A sink that stores its offsets moves past the dead letter, so a restart does not send it again.
        if (keepsOffsets) await retry(() => sink.write({ ...one, records: [] }), { policy: SINK_RETRY, signal, onRetry, isRetriable });
      }
    }
    return delivered;
  }

  /**
   * Appends a poison record to `<topic>.dlq`, once per sink: the letter goes to the log together
   * with a checkpoint naming the offset it is for (per sink, topic and partition) and the creation
   * times of the topic and of its DLQ topic. A sink that stores offsets moves past the record right
   * after its letter, so at most its last letter can be ahead of its offset: a restart that meets
   * that same record again — the task stopped in between — finds it named and does not append it
   * twice. Any other record is dead-lettered, also when it fails again in a replay; a topic or DLQ
   * topic deleted and created again starts afresh. (An at-least-once sink's offset moves with the
   * group commits: letters since the last one may come again, as its records do.)
   */
  private async deadLetter(p: PipelineState, s: SinkStatus, r: SinkRecord, err: unknown): Promise<void> {
    const topic = r.topic + DLQ_SUFFIX;
    const id = `sink-dlq/${p.spec.name}/${s.name}/${r.topic}/${r.partition}`;
    await this.ensureTopic(topic);
    const created = (await this.deps.log.describeTopic(r.topic)).createdAt;
    const dlqCreated = (await this.deps.log.describeTopic(topic)).createdAt;
    const last = (await this.deps.log.getCheckpoint(id)) as { offset?: unknown; created?: unknown; dlq_created?: unknown } | undefined;
    if (last?.offset === r.offset && last.created === created && last.dlq_created === dlqCreated) {
      this.deps.logger.warn(`sink "${s.name}": ${r.topic}/${r.partition}@${r.offset} is already in ${topic} (dead-lettered before a restart)`);
      return;
    }
    await this.deps.log.append(
      topic,
      [
        {
          value: JSON.stringify({ error: (err as Error)?.message ?? String(err), sink: s.name, topic: r.topic, partition: r.partition, offset: r.offset, original: r.value }),
          headers: { 'sluice-error': 'sink' },
        },
      ],
      { checkpoint: { source: id, position: { offset: r.offset, created, dlq_created: dlqCreated } } },
    );
    this.deps.metrics?.invalid(p.spec.name, r.topic, 'dlq', 1);
    this.deps.logger.error(`sink "${s.name}": ${r.topic}/${r.partition}@${r.offset} went to ${topic}: ${(err as Error)?.message}`);
  }

  // ---- status and shutdown ----

  status(): Record<string, unknown> {
    return {
      started_at: new Date(this.startedAt).toISOString(),
      worker: this.coordinator.id,
      pipelines: this.pipelines.map((p) => ({
        name: p.spec.name,
        topic: p.spec.topic,
        state: p.source?.state ?? (p.sinks.every((s) => s.state === 'running') ? 'running' : p.sinks[0]?.state ?? 'idle'),
        source: p.source === null ? null : { type: p.source.type, state: p.source.state, position: p.source.position, restarts: p.source.restarts, last_error: p.source.lastError },
        records_in: p.source?.recordsIn ?? 0,
        sinks: p.sinks.map((s) => ({
          name: s.name,
          type: s.type,
          delivery: s.delivery,
          group: s.group,
          state: s.state,
          records_out: s.recordsOut,
          restarts: s.restarts,
          last_error: s.lastError,
          offsets: Object.fromEntries(s.offsets),
        })),
      })),
    };
  }

  /** True once every source has finished (finite inputs); sinks may still be catching up. */
  sourcesFinished(): boolean {
    return this.pipelines.every((p) => p.source === null || p.source.state === 'finished');
  }

  /**
   * Stops sources (what they appended stays committed), lets sinks drain what is in the log
   * within `deadlineMs`, then stops them. Resolves true when the sinks drained in time.
   */
  async stop(deadlineMs = 10_000): Promise<boolean> {
    this.stopSources.abort();
    await Promise.allSettled(this.sourceTasks);
    this.draining = true;
    this.drainSignal.abort();
    let timer: NodeJS.Timeout | undefined;
    const drained = await Promise.race([
      Promise.allSettled(this.sinkTasks).then(() => true),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(false), deadlineMs))),
    ]);
    clearTimeout(timer);
    this.stopSinks.abort();
    // A sink stuck in a write that ignores the abort must not hold shutdown forever.
    await Promise.race([Promise.allSettled(this.sinkTasks), sleep(2000)]);
    return drained;
  }

  /** Resolves when every task has ended by itself (finite sources done, sinks drained). */
  async whenSourcesDone(): Promise<void> {
    await Promise.allSettled(this.sourceTasks);
  }
}

/** A record read from the log, its value parsed only if a sink asks for it. */
class LogSinkRecord implements SinkRecord {
  private parsed: unknown = UNPARSED;
  readonly offset: number;
  readonly timestamp: number;
  readonly key: string | null;
  readonly raw: Buffer;
  readonly headers: Readonly<Record<string, string>>;

  constructor(
    readonly topic: string,
    readonly partition: number,
    r: LogRecord,
  ) {
    this.offset = r.offset;
    this.timestamp = r.timestamp;
    this.key = r.key;
    this.raw = r.value;
    this.headers = r.headers;
  }

  get value(): unknown {
    if (this.parsed === UNPARSED) {
      const text = this.raw.toString('utf8');
      try {
        this.parsed = JSON.parse(text);
      } catch {
        this.parsed = text;
      }
    }
    return this.parsed;
  }
}

const UNPARSED = Symbol('unparsed');

/** Sum of a sink read's value lengths. */
function readBytes(r: SinkRead): number {
  if (r.values !== null) return r.values.bytes;
  let n = 0;
  for (const x of r.records) n += x.value.length;
  return n;
}

function toSinkRecord(topic: string, partition: number, r: LogRecord): SinkRecord {
  return new LogSinkRecord(topic, partition, r);
}
