/**
 * PipelineRuntime in-process on the embedded log: exactly-once from a source to a sink, resume
 * after a restart, dead letters (schema and sink), keys, routes, retries, supervised restarts,
 * bounded in-flight appends and clean shutdown. Custom sources and sinks are declared here and
 * handed to the runtime beside the built-ins.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { builtinSinks, builtinSources } from '../../connectors/registry.js';
import { generateEvent } from '../../connectors/generate/index.js';
import type { SinkBatch, SinkDeclaration, SinkValuesBatch, SourceBatch, SourceDeclaration, SpanBatch } from '../../connectors/sdk.js';
import { openLocalLog } from '../../core/log/local/index.js';
import type { LocalLog } from '../../core/log/local/index.js';
import type { Log, LogRecord } from '../../core/log/types.js';
import { parsePipelines, type PipelinesConfig } from '../../core/pipeline/config.js';
import { PipelineRuntime, type RuntimeDeps } from '../../core/pipeline/runtime.js';
import { pipelinesSchema } from '../../core/pipeline/setup.js';

// ---- fixtures ----

type AnySource = SourceDeclaration<never>;
type AnySink = SinkDeclaration<never>;

interface Harness {
  dir: string;
  config: PipelinesConfig;
  log: LocalLog;
  runtime: PipelineRuntime;
  messages: { level: 'info' | 'warn' | 'error'; text: string }[];
}

const dirs: string[] = [];
const open: { log: LocalLog; runtime: PipelineRuntime; closed: boolean }[] = [];

afterEach(async () => {
  // A failed test must not leave tasks running or the data directory locked.
  for (const o of open.splice(0)) {
    if (o.closed) continue;
    await o.runtime.stop(0).catch(() => undefined);
    await o.log.close().catch(() => undefined);
  }
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'sluice-runtime-'));
  dirs.push(d);
  return d;
}

interface Options {
  sources?: AnySource[];
  sinks?: AnySink[];
  files?: Record<string, string>;
  deps?: Partial<Pick<RuntimeDeps, 'maxInFlight' | 'groupCommitIntervalMs'>>;
  /** Wraps the opened log (to slow or break it). */
  wrapLog?: (log: LocalLog) => Log;
  maxRecordBytes?: number;
}

/** Parses `yaml` in `dir` (no admin), opens the log and creates (not starts) the runtime. */
async function harness(dir: string, yaml: string, o: Options = {}): Promise<Harness> {
  for (const [name, text] of Object.entries(o.files ?? {})) await writeFile(join(dir, name), text);
  const sources = [...builtinSources, ...(o.sources ?? [])] as AnySource[];
  const sinks = [...builtinSinks, ...(o.sinks ?? [])] as AnySink[];
  const config = parsePipelines(yaml, 'pipelines.yaml', dir, pipelinesSchema({ sources, sinks }), {});
  expect(config.admin).toBeNull();
  const log = await openLocalLog({
    dir: config.log.dataDir,
    retentionSchedule: false,
    ...(o.maxRecordBytes === undefined ? {} : { maxRecordBytes: o.maxRecordBytes }),
  });
  const messages: Harness['messages'] = [];
  const runtime = new PipelineRuntime(config, {
    log: o.wrapLog ? o.wrapLog(log) : log,
    sources,
    sinks,
    logger: {
      info: (text) => messages.push({ level: 'info', text }),
      warn: (text) => messages.push({ level: 'warn', text }),
      error: (text) => messages.push({ level: 'error', text }),
    },
    ...o.deps,
  });
  open.push({ log, runtime, closed: false });
  return { dir, config, log, runtime, messages };
}

/** Stops the runtime and closes the log; returns what stop() said. */
async function shutdown(h: Harness, deadlineMs = 10_000): Promise<boolean> {
  const drained = await h.runtime.stop(deadlineMs);
  await h.log.close();
  const o = open.find((x) => x.runtime === h.runtime);
  if (o) o.closed = true;
  return drained;
}

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Every record of a topic, all partitions. */
async function readTopic(log: Log, topic: string): Promise<(LogRecord & { partition: number; json: unknown })[]> {
  const out: (LogRecord & { partition: number; json: unknown })[] = [];
  const { partitions } = await log.describeTopic(topic);
  for (let p = 0; p < partitions; p++) {
    for (let offset = 0; ; ) {
      const r = await log.read(topic, p, offset);
      if (r.records.length === 0) break;
      for (const rec of r.records) out.push({ ...rec, value: Buffer.from(rec.value), partition: p, json: JSON.parse(rec.value.toString('utf8')) as unknown });
      offset = r.nextOffset;
    }
  }
  return out;
}

/** The values the file sink wrote for `topic`, all partitions. */
async function fileOutput(dir: string, topic: string): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = [];
  if (!existsSync(dir)) return out;
  for (const name of await readdir(dir)) {
    if (!name.startsWith(`${topic}-`) || !name.endsWith('.ndjson')) continue;
    const text = await readFile(join(dir, name), 'utf8');
    for (const line of text.split('\n')) if (line !== '') out.push(JSON.parse(line) as Record<string, unknown>);
  }
  return out;
}

const ids = (values: readonly Record<string, unknown>[], field = 'id'): number[] => values.map((v) => v[field] as number).sort((a, b) => a - b);
const range = (n: number, from = 0): number[] => Array.from({ length: n }, (_, i) => i + from);

interface PipelineStatus {
  name: string;
  state: string;
  source: { state: string; restarts: number; last_error?: string; position?: unknown } | null;
  records_in: number;
  sinks: { name: string; state: string; records_out: number; restarts: number; last_error?: string; offsets: Record<string, number> }[];
}

function pipelineStatus(h: Harness, name: string): PipelineStatus {
  const all = (h.runtime.status() as { pipelines: PipelineStatus[] }).pipelines;
  const p = all.find((x) => x.name === name);
  if (p === undefined) throw new Error(`no pipeline ${name}`);
  return p;
}

/** Sum over partitions of where a sink stands. */
function sinkDone(h: Harness, pipeline: string, sink: string): number {
  const s = pipelineStatus(h, pipeline).sinks.find((x) => x.name === sink)!;
  return Object.values(s.offsets).reduce((a, b) => a + b, 0);
}

/** A source of `{ n }` values counting from its position, `per` a batch, up to `to` (or forever). */
interface CounterHooks {
  onRead?: (instance: number, readNo: number) => void | Promise<void>;
  onAck?: (position: unknown) => void;
  onClose?: () => void;
}

function counterSource(type: string, hooks: CounterHooks = {}): SourceDeclaration<{ to?: number; per?: number }> {
  let instances = 0;
  return {
    kind: 'source',
    type,
    summary: 'counts',
    replayable: true,
    schema: { type: 'object', additionalProperties: false, properties: { to: { type: 'integer' }, per: { type: 'integer' } } },
    create(config) {
      const instance = ++instances;
      let next = 0;
      let reads = 0;
      const per = config.per ?? 10;
      return {
        async open(position: unknown) {
          next = (position as { next?: number } | undefined)?.next ?? 0;
        },
        async read(): Promise<SourceBatch | null> {
          await hooks.onRead?.(instance, ++reads);
          if (config.to !== undefined && next >= config.to) return null;
          const records = [];
          const end = config.to === undefined ? next + per : Math.min(config.to, next + per);
          for (; next < end; next++) records.push({ value: { n: next } });
          return { records, position: { next } };
        },
        async ack(position: unknown) {
          hooks.onAck?.(position);
        },
        async close() {
          hooks.onClose?.();
        },
      };
    },
  };
}

/** A sink keeping `(topic, partition, offset) → value`; `beforeWrite` may throw or wait. */
function memorySink(
  type: string,
  store: Map<string, unknown>,
  beforeWrite: (batch: SinkBatch, call: number) => void | Promise<void> = () => undefined,
  delivery: AnySink['delivery'] = 'at-least-once',
): SinkDeclaration<Record<string, never>> {
  let calls = 0;
  return {
    kind: 'sink',
    type,
    summary: 'keeps records in memory',
    delivery,
    schema: { type: 'object', additionalProperties: false, properties: {} },
    create: () => ({
      async open() {},
      async write(batch: SinkBatch) {
        await beforeWrite(batch, ++calls);
        for (const r of batch.records) {
          const k = `${r.topic}/${r.partition}/${r.offset}`;
          if (store.has(k)) throw new Error(`test: ${k} delivered twice`);
          store.set(k, r.value);
        }
      },
      async close() {},
    }),
  };
}

const SERVICES = ['api', 'web', 'worker', 'billing'];

// ---- tests ----

describe('PipelineRuntime: generate → topic → file sink', () => {
  it('delivers every record exactly once and keeps the file sink state beside the output', async () => {
    const dir = await tempDir();
    const h = await harness(
      dir,
      `version: 1
topics:
  events: { partitions: 3 }
pipelines:
  gen:
    source: { type: generate, count: 1000, seed: 3, batch_size: 100 }
    topic: events
    sinks:
      out: { type: file, path: ./out }
`,
    );
    await h.runtime.start();
    await h.runtime.whenSourcesDone();
    expect(h.runtime.sourcesFinished()).toBe(true);
    await waitFor('the sink to catch up', () => sinkDone(h, 'gen', 'out') === 1000);
    const status = pipelineStatus(h, 'gen');
    expect(status.records_in).toBe(1000);
    expect(status.source!.position).toEqual({ next_id: 1000 });
    const { partitionDetails } = await h.log.describeTopic('events');
    expect(await shutdown(h)).toBe(true);

    const values = await fileOutput(join(dir, 'out'), 'events');
    expect(ids(values)).toEqual(range(1000));
    // Values are the generated events as they were (the timestamp field aside).
    const e5 = values.find((v) => v.id === 5)!;
    const want = generateEvent(3, 5, SERVICES, 0);
    expect({ ...e5, timestamp: undefined }).toEqual({ ...want, timestamp: undefined });

    for (const p of partitionDetails) {
      const statePath = join(dir, 'out', `.events-${p.partition}.state.json`);
      expect(existsSync(statePath), statePath).toBe(true);
      const state = JSON.parse(await readFile(statePath, 'utf8')) as { length: number; next_offset: number };
      expect(state.next_offset).toBe(p.endOffset);
      expect(state.length).toBe((await stat(join(dir, 'out', `events-${p.partition}.ndjson`))).size);
    }
  });

  it('resumes after a restart (new runtime, same directory) without repeats or gaps', async () => {
    const dir = await tempDir();
    const yaml = `version: 1
topics:
  events: { partitions: 2 }
pipelines:
  gen:
    source: { type: generate, count: 3000, seed: 9, rate_per_sec: 6000 }
    topic: events
    sinks:
      out: { type: file, path: ./out }
      mem: { type: memory }
`;
    // An at-least-once sink resumes from its group offset: after clean stops, no repeats either.
    const store = new Map<string, unknown>();
    const mem = { sinks: [memorySink('memory', store) as AnySink] };
    const first = await harness(dir, yaml, mem);
    await first.runtime.start();
    await waitFor('some records', () => pipelineStatus(first, 'gen').records_in >= 300);
    expect(await shutdown(first)).toBe(true);
    const part = ids(await fileOutput(join(dir, 'out'), 'events'));
    expect(part.length).toBeGreaterThan(0);
    expect(part.length).toBeLessThan(3000);
    expect(part).toEqual(range(part.length));

    const second = await harness(dir, yaml, mem);
    await second.runtime.start();
    await second.runtime.whenSourcesDone();
    await waitFor('the sinks to catch up', () => sinkDone(second, 'gen', 'out') === 3000 && sinkDone(second, 'gen', 'mem') === 3000);
    expect(await shutdown(second)).toBe(true);
    expect(ids(await fileOutput(join(dir, 'out'), 'events'))).toEqual(range(3000));
    expect(ids([...store.values()] as Record<string, unknown>[])).toEqual(range(3000));

    // A third start finds nothing to do and writes nothing more.
    const third = await harness(dir, yaml, mem);
    await third.runtime.start();
    await third.runtime.whenSourcesDone();
    expect(pipelineStatus(third, 'gen').records_in).toBe(0);
    expect(await shutdown(third)).toBe(true);
    expect(ids(await fileOutput(join(dir, 'out'), 'events'))).toEqual(range(3000));
    expect(store.size).toBe(3000);
  });
});

describe('PipelineRuntime: record schemas and on_invalid', () => {
  // Only debug and info are valid: generated warn and error events fail the schema.
  const STRICT = JSON.stringify({
    type: 'object',
    required: ['id', 'level'],
    properties: { level: { enum: ['debug', 'info'] } },
  });
  const N = 400;
  const SEED = 5;
  const invalidIds = range(N).filter((id) => !['debug', 'info'].includes(generateEvent(SEED, id, SERVICES, 0).level));
  const validIds = range(N).filter((id) => !invalidIds.includes(id));

  const yaml = (onInvalid: string): string => `version: 1
topics:
  events: { partitions: 2, schema: ./strict.schema.json, on_invalid: ${onInvalid} }
pipelines:
  gen:
    source: { type: generate, count: ${N}, seed: ${SEED}, batch_size: 50 }
    transforms:
      - { type: set, fields: { checked: true } }
    topic: events
    sinks:
      out: { type: file, path: ./out }
`;

  it('has both kinds of events in the input', () => {
    expect(invalidIds.length).toBeGreaterThan(10);
    expect(validIds.length).toBeGreaterThan(10);
  });

  it('dlq: invalid events go to <topic>.dlq with the error and the original; the rest are delivered', async () => {
    const dir = await tempDir();
    const h = await harness(dir, yaml('dlq'), { files: { 'strict.schema.json': STRICT } });
    await h.runtime.start();
    await h.runtime.whenSourcesDone();
    await waitFor('the sink to catch up', () => sinkDone(h, 'gen', 'out') === validIds.length);
    const dlq = await readTopic(h.log, 'events.dlq');
    expect(await shutdown(h)).toBe(true);

    expect(ids(await fileOutput(join(dir, 'out'), 'events'))).toEqual(validIds);
    const letters = dlq.map((r) => r.json as { error: string; topic: string; original: Record<string, unknown> });
    expect(ids(letters.map((l) => l.original))).toEqual(invalidIds);
    for (const [i, l] of letters.entries()) {
      expect(l.topic).toBe('events');
      expect(l.error).toMatch(/level must be equal to one of the allowed values/);
      // The original is the event as the transforms left it.
      expect(l.original.checked).toBe(true);
      expect(dlq[i]!.headers['sluice-error']).toBe('schema');
    }
  });

  it('one schema file with an $id serves several topics', async () => {
    const dir = await tempDir();
    const shared = JSON.stringify({ $id: 'https://example.com/strict.json', ...JSON.parse(STRICT) });
    const h = await harness(
      dir,
      `version: 1
topics:
  a: { partitions: 1, schema: ./strict.schema.json, on_invalid: drop }
  b: { partitions: 1, schema: ./strict.schema.json, on_invalid: drop }
pipelines:
  ga:
    source: { type: generate, count: ${N}, seed: ${SEED}, batch_size: 50 }
    topic: a
  gb:
    source: { type: generate, count: ${N}, seed: ${SEED}, batch_size: 50 }
    topic: b
`,
      { files: { 'strict.schema.json': shared } },
    );
    await h.runtime.start();
    await h.runtime.whenSourcesDone();
    expect((await readTopic(h.log, 'a')).length).toBe(validIds.length);
    expect((await readTopic(h.log, 'b')).length).toBe(validIds.length);
    expect(await shutdown(h)).toBe(true);
  });

  it('drop: invalid events are dropped, nothing is dead-lettered', async () => {
    const dir = await tempDir();
    const h = await harness(dir, yaml('drop'), { files: { 'strict.schema.json': STRICT } });
    await h.runtime.start();
    await h.runtime.whenSourcesDone();
    await waitFor('the sink to catch up', () => sinkDone(h, 'gen', 'out') === validIds.length);
    expect(await h.log.listTopics()).not.toContain('events.dlq');
    expect(await shutdown(h)).toBe(true);
    expect(ids(await fileOutput(join(dir, 'out'), 'events'))).toEqual(validIds);
  });

  it('reject: the pipeline fails (restarts, last error in the status) and appends nothing past the bad batch', async () => {
    const dir = await tempDir();
    const h = await harness(dir, yaml('reject'), { files: { 'strict.schema.json': STRICT } });
    await h.runtime.start();
    await waitFor('a restart', () => (pipelineStatus(h, 'gen').source?.restarts ?? 0) >= 1);
    const s = pipelineStatus(h, 'gen');
    expect(s.source!.last_error).toMatch(/^record rejected by the schema of topic "events": .*level must be equal to one of the allowed values/);
    expect(['restarting', 'running']).toContain(s.source!.state);
    expect(h.messages.some((m) => m.level === 'error' && m.text.includes('pipeline "gen" source failed'))).toBe(true);
    const firstBad = invalidIds[0]!;
    const batchOfFirstBad = Math.floor(firstBad / 50);
    const { partitionDetails } = await h.log.describeTopic('events');
    // Whole batches before the first invalid event are in the log, and nothing after.
    expect(partitionDetails.reduce((a, p) => a + p.endOffset, 0)).toBe(batchOfFirstBad * 50);
    expect(await h.log.listTopics()).not.toContain('events.dlq');
    expect(await shutdown(h)).toBe(true);
  });
});

describe('PipelineRuntime: keys and routes', () => {
  it('key "{{ service }}": every record keyed by its service, each service in one partition', async () => {
    const dir = await tempDir();
    const h = await harness(
      dir,
      `version: 1
topics:
  events: { partitions: 4 }
pipelines:
  gen:
    source: { type: generate, count: 400, seed: 1, batch_size: 37 }
    topic: events
    key: "{{ service }}"
`,
    );
    await h.runtime.start();
    await h.runtime.whenSourcesDone();
    const records = await readTopic(h.log, 'events');
    expect(await shutdown(h)).toBe(true);
    expect(records).toHaveLength(400);
    const partitionOf = new Map<string, Set<number>>();
    for (const r of records) {
      const service = (r.json as { service: string }).service;
      expect(r.key).toBe(service);
      let set = partitionOf.get(service);
      if (set === undefined) partitionOf.set(service, (set = new Set()));
      set.add(r.partition);
    }
    expect([...partitionOf.keys()].sort()).toEqual([...SERVICES].sort());
    for (const [service, parts] of partitionOf) expect([...parts], service).toHaveLength(1);
  });

  it('a topic template fans out to several topics, and the sink reads all of them', async () => {
    const dir = await tempDir();
    const h = await harness(
      dir,
      `version: 1
pipelines:
  gen:
    source: { type: generate, count: 300, seed: 2 }
    topic: "logs.{{ level }}"
    sinks:
      out: { type: file, path: ./out }
`,
    );
    await h.runtime.start();
    await h.runtime.whenSourcesDone();
    await waitFor('the sink to catch up', () => sinkDone(h, 'gen', 'out') === 300, 10_000);
    const topics = (await h.log.listTopics()).filter((t) => t.startsWith('logs.')).sort();
    expect(await shutdown(h)).toBe(true);
    const levels = [...new Set(range(300).map((id) => generateEvent(2, id, SERVICES, 0).level))].sort();
    expect(topics).toEqual(levels.map((l) => `logs.${l}`));
    const all: Record<string, unknown>[] = [];
    for (const level of levels) {
      const values = await fileOutput(join(dir, 'out'), `logs.${level}`);
      expect(values.every((v) => v.level === level)).toBe(true);
      all.push(...values);
    }
    expect(ids(all)).toEqual(range(300));
  });

  it('a route transform sends events to several topics, and the pipeline\'s sink reads every routed topic', async () => {
    const dir = await tempDir();
    const h = await harness(
      dir,
      `version: 1
topics:
  logs: { partitions: 1 }
pipelines:
  gen:
    source: { type: generate, count: 300, seed: 2 }
    transforms:
      - { type: route, topic: "logs-{{ level }}" }
    topic: logs
    sinks:
      out: { type: file, path: ./out }
`,
    );
    await h.runtime.start();
    await h.runtime.whenSourcesDone();
    const levels = [...new Set(range(300).map((id) => generateEvent(2, id, SERVICES, 0).level))].sort();
    const routed = (await h.log.listTopics()).filter((t) => t.startsWith('logs-')).sort();
    expect(routed).toEqual(levels.map((l) => `logs-${l}`));
    let inLog = 0;
    for (const t of routed) inLog += (await readTopic(h.log, t)).length;
    expect(inLog).toBe(300);
    // The sink of the pipeline should deliver what the pipeline produced, wherever it was routed.
    await waitFor('the sink to read the routed topics', () => sinkDone(h, 'gen', 'out') === 300, 2_500).catch(() => undefined);
    expect(await shutdown(h)).toBe(true);
    const all: Record<string, unknown>[] = [];
    for (const t of routed) all.push(...(await fileOutput(join(dir, 'out'), t)));
    expect(ids(all)).toEqual(range(300));
  });
});

describe('PipelineRuntime: sink failures', () => {
  it('retries a sink that fails its first writes, then delivers every record exactly once', async () => {
    const dir = await tempDir();
    const store = new Map<string, unknown>();
    let failures = 0;
    const sink = memorySink('flaky', store, (_batch, call) => {
      if (call <= 3) {
        failures++;
        throw new Error(`flaky write ${call}`);
      }
    });
    const h = await harness(
      dir,
      `version: 1
topics:
  events: { partitions: 2 }
pipelines:
  gen:
    source: { type: generate, count: 500, seed: 4, batch_size: 100 }
    topic: events
    sinks:
      mem: { type: flaky }
`,
      { sinks: [sink as AnySink] },
    );
    await h.runtime.start();
    await h.runtime.whenSourcesDone();
    await waitFor('the sink to catch up', () => store.size === 500);
    expect(await shutdown(h)).toBe(true);
    expect(failures).toBe(3);
    expect(ids([...store.values()] as Record<string, unknown>[])).toEqual(range(500));
    const retries = h.messages.filter((m) => m.level === 'warn' && /sink "mem" write failed \(attempt \d\): flaky write \d; retrying in \d+ ms/.test(m.text));
    expect(retries).toHaveLength(3);
    // Retries are not restarts, and nothing was dead-lettered.
    expect(pipelineStatus(h, 'gen').sinks[0]!.restarts).toBe(0);
    expect(existsSync(join(h.config.log.dataDir, 'topics', 'events.dlq'))).toBe(false);
  });

  it('dead-letters a poison record that always fails and delivers the rest once', async () => {
    const dir = await tempDir();
    const store = new Map<string, unknown>();
    const sink = memorySink('picky', store, (batch) => {
      if (batch.records.some((r) => (r.value as { id: number }).id === 7)) throw new Error('cannot take id 7');
    });
    const h = await harness(
      dir,
      `version: 1
topics:
  events: { partitions: 1 }
pipelines:
  gen:
    source: { type: generate, count: 40, seed: 4, batch_size: 10 }
    topic: events
    sinks:
      mem: { type: picky }
`,
      { sinks: [sink as AnySink] },
    );
    await h.runtime.start();
    await h.runtime.whenSourcesDone();
    await waitFor('the sink to catch up', () => sinkDone(h, 'gen', 'mem') === 40);
    const dlq = await readTopic(h.log, 'events.dlq');
    const status = pipelineStatus(h, 'gen');
    expect(await shutdown(h)).toBe(true);

    expect(ids([...store.values()] as Record<string, unknown>[])).toEqual(range(40).filter((i) => i !== 7));
    expect(dlq).toHaveLength(1);
    expect(dlq[0]!.headers['sluice-error']).toBe('sink');
    const letter = dlq[0]!.json as { error: string; sink: string; topic: string; partition: number; offset: number; original: { id: number } };
    expect(letter).toMatchObject({ error: 'cannot take id 7', sink: 'mem', topic: 'events', partition: 0, offset: 7 });
    expect(letter.original.id).toBe(7);
    expect(h.messages.some((m) => m.level === 'error' && m.text === 'sink "mem": events/0@7 went to events.dlq: cannot take id 7')).toBe(true);
    // records_out counts what the sink took, not what went to the dead-letter topic.
    expect(status.sinks[0]!.records_out).toBe(39);
  });
});

describe('PipelineRuntime: a sink\'s dead letters after a restart', () => {
  /**
   * A sink that stores its offsets (in `next`) and refuses the ids in `refuse`; while `down()`
   * says so, its offset-only write after a dead letter finds the target down for good, so the task
   * fails there and restarts from the poison record's offset.
   */
  function storingSink(store: Map<string, unknown>, next: Map<string, number>, refuse: number[], down: () => boolean): SinkDeclaration<Record<string, never>> {
    const base = memorySink(
      'storing',
      store,
      (batch) => {
        if (batch.records.length === 0 && down()) throw Object.assign(new Error('target down'), { retriable: true });
        const bad = batch.records.find((r) => refuse.includes((r.value as { id: number }).id));
        if (bad !== undefined) throw Object.assign(new Error(`cannot take id ${(bad.value as { id: number }).id}`), { retriable: false });
      },
      'idempotent',
    );
    return {
      ...base,
      create: (config, ctx) => {
        const sink = base.create(config, ctx);
        return {
          ...sink,
          async committedOffset(topic: string, partition: number) {
            return next.get(`${topic}/${partition}`) ?? 0;
          },
          async write(batch: SinkBatch) {
            await sink.write(batch);
            next.set(`${batch.topic}/${batch.partition}`, batch.nextOffset);
          },
        };
      },
    };
  }
  const yaml = `version: 1
topics:
  events: { partitions: 1 }
pipelines:
  gen:
    source: { type: generate, count: 40, seed: 4, batch_size: 10 }
    topic: events
    sinks:
      mem: { type: storing }
`;
  const letters = async (h: Harness): Promise<number[]> => (await readTopic(h.log, 'events.dlq')).map((r) => (r.json as { offset: number }).offset);

  it('a poison record is dead-lettered once, also when the task stops before the sink moves past it', async () => {
    const dir = await tempDir();
    const store = new Map<string, unknown>();
    const next = new Map<string, number>();
    let downs = 0;
    // Down for the whole first run (6 attempts), then up.
    const sink = storingSink(store, next, [7], () => downs++ < 6);
    const h = await harness(dir, yaml, { sinks: [sink as AnySink] });
    await h.runtime.start();
    await h.runtime.whenSourcesDone();
    await waitFor('the sink to catch up', () => store.size === 39, 20_000);
    const dlq = await letters(h);
    const status = pipelineStatus(h, 'gen');
    expect(await shutdown(h)).toBe(true);
    expect(status.sinks[0]!.restarts).toBeGreaterThan(0);
    expect(ids([...store.values()] as Record<string, unknown>[])).toEqual(range(40).filter((i) => i !== 7));
    expect(dlq).toEqual([7]);
    expect(h.messages.filter((m) => m.text === 'sink "mem": events/0@7 is already in events.dlq (dead-lettered before a restart)')).toHaveLength(1);
  }, 30_000);

  it('a replay from an earlier offset dead-letters whatever fails in it: only a restart right after a letter skips it', async () => {
    const dir = await tempDir();
    const next = new Map<string, number>();
    const first = new Map<string, unknown>();
    let h = await harness(dir, yaml, { sinks: [storingSink(first, next, [7], () => false) as AnySink] });
    await h.runtime.start();
    await h.runtime.whenSourcesDone();
    await waitFor('the sink to catch up', () => first.size === 39);
    expect(await shutdown(h)).toBe(true);
    // The sink's output is rebuilt from the start, and now id 3 fails too.
    next.clear();
    const second = new Map<string, unknown>();
    h = await harness(dir, yaml, { sinks: [storingSink(second, next, [3, 7], () => false) as AnySink] });
    await h.runtime.start();
    await waitFor('the replay', () => second.size === 38);
    const dlq = await letters(h);
    expect(await shutdown(h)).toBe(true);
    expect(ids([...second.values()] as Record<string, unknown>[])).toEqual(range(40).filter((i) => i !== 3 && i !== 7));
    // 3 is new; 7 fails again in the replay and gets a second letter: nothing that fails goes unlettered.
    expect(dlq).toEqual([7, 3, 7]);
  }, 30_000);
});

describe('PipelineRuntime: sinks that take values only', () => {
  it('get batches of values; a batch that keeps failing goes again as records, a record at a time, and its poison is dead-lettered', async () => {
    const dir = await tempDir();
    const store = new Map<string, unknown>();
    let valueBatches = 0;
    let valueFailures = 0;
    const base = memorySink('values', store, (batch) => {
      if (batch.records.some((r) => (r.value as { id: number }).id === 17)) throw new Error('cannot take id 17');
    });
    const sink: SinkDeclaration<Record<string, never>> = {
      ...base,
      create: (config, ctx) => {
        const inner = base.create(config, ctx);
        return {
          ...inner,
          async writeValues(batch: SinkValuesBatch) {
            valueBatches++;
            let offset = batch.firstOffset;
            const took: [string, unknown][] = [];
            for (const sp of batch.spans) {
              for (let i = 0; i < sp.count; i++) {
                const value = JSON.parse(sp.buf.toString('utf8', sp.starts[i]!, sp.ends[i]!)) as { id: number };
                if (value.id === 17) {
                  valueFailures++;
                  throw Object.assign(new Error('cannot take id 17'), { retriable: false });
                }
                took.push([`${batch.topic}/${batch.partition}/${offset++}`, value]);
              }
            }
            expect(offset).toBe(batch.nextOffset);
            for (const [k, v] of took) {
              if (store.has(k)) throw new Error(`test: ${k} delivered twice`);
              store.set(k, v);
            }
          },
        };
      },
    };
    const h = await harness(
      dir,
      `version: 1
topics:
  events: { partitions: 2 }
pipelines:
  gen:
    source: { type: generate, count: 300, seed: 4, batch_size: 50 }
    topic: events
    sinks:
      mem: { type: values }
`,
      { sinks: [sink as AnySink] },
    );
    await h.runtime.start();
    await h.runtime.whenSourcesDone();
    await waitFor('the sink to catch up', () => sinkDone(h, 'gen', 'mem') === 300);
    const dlq = await readTopic(h.log, 'events.dlq');
    const status = pipelineStatus(h, 'gen');
    expect(await shutdown(h)).toBe(true);

    expect(valueBatches).toBeGreaterThan(1);
    // Not retried: the error said so.
    expect(valueFailures).toBe(1);
    expect(ids([...store.values()] as Record<string, unknown>[])).toEqual(range(300).filter((i) => i !== 17));
    expect(dlq).toHaveLength(1);
    expect(dlq[0]!.json).toMatchObject({ error: 'cannot take id 17', sink: 'mem', topic: 'events' });
    expect(status.sinks[0]!.records_out).toBe(299);
  });
});

describe('PipelineRuntime: sinks that write a backlog as one transaction (writeSpan)', () => {
  /** A sink-only pipeline over a topic that already holds `count` records of ~200 bytes (more than one 4 MiB read). */
  async function backlog(dir: string, count: number, sink: SinkDeclaration<Record<string, never>>): Promise<Harness> {
    const h = await harness(
      dir,
      `version: 1
topics:
  events: { partitions: 1 }
pipelines:
  drain:
    topic: events
    sinks:
      mem: { type: ${sink.type} }
`,
      { sinks: [sink as AnySink] },
    );
    await h.log.createTopic('events', { partitions: 1 });
    const pad = 'x'.repeat(180);
    for (let i = 0; i < count; i += 5000) {
      await h.log.append('events', range(Math.min(5000, count - i)).map((j) => ({ value: JSON.stringify({ id: i + j, pad }) })));
    }
    return h;
  }

  /** A transactional sink that keeps what it took: each span's batches are committed together, or none of them. */
  function spanSink(store: Map<string, unknown>, spans: number[][], failSpan: (span: number, batches: number) => boolean): SinkDeclaration<Record<string, never>> {
    const base = memorySink('spans', store, () => undefined, 'transactional');
    let offset: number | undefined;
    return {
      ...base,
      create: (config, ctx) => {
        const inner = base.create(config, ctx);
        const take = (batch: SinkBatch): void => {
          if (offset !== undefined) expect(batch.records[0]?.offset ?? batch.nextOffset).toBe(offset);
          offset = batch.nextOffset;
        };
        return {
          ...inner,
          committedOffset: async () => offset,
          async write(batch: SinkBatch) {
            take(batch);
            await inner.write(batch);
          },
          async writeSpan(first: SinkBatch, more: () => Promise<SinkBatch | null>) {
            const at = offset;
            const batches = [first];
            for (let b = await more(); b !== null; b = await more()) batches.push(b);
            spans.push(batches.map((b) => b.records.length));
            if (failSpan(spans.length, batches.length)) throw Object.assign(new Error('span refused'), { retriable: false });
            for (let i = 1; i < batches.length; i++) expect(batches[i]!.records[0]!.offset).toBe(batches[i - 1]!.nextOffset);
            offset = at;
            for (const b of batches) {
              take(b);
              await inner.write(b);
            }
          },
        };
      },
    };
  }

  it('hands the whole backlog to one writeSpan, a read at a time, each record once', async () => {
    const dir = await tempDir();
    const store = new Map<string, unknown>();
    const spans: number[][] = [];
    const h = await backlog(dir, 60_000, spanSink(store, spans, () => false));
    await h.runtime.start();
    await waitFor('the sink to catch up', () => store.size === 60_000);
    const status = pipelineStatus(h, 'drain');
    expect(await shutdown(h)).toBe(true);
    // About 12 MB of records: three reads or more, all in the first span.
    expect(spans[0]!.length).toBeGreaterThanOrEqual(3);
    expect(spans[0]!.reduce((a, b) => a + b, 0)).toBe(60_000);
    expect(status.sinks[0]!.records_out).toBe(60_000);
    expect(status.sinks[0]!.offsets).toEqual({ 'events/0': 60_000 });
  });

  it('hands a sink that takes values a span of values batches, whose buffers it reads before asking for more', async () => {
    const dir = await tempDir();
    const store = new Map<string, unknown>();
    const counts: number[] = [];
    const base = memorySink('valuespans', store, () => undefined, 'transactional');
    let stored: number | undefined;
    const sink: SinkDeclaration<Record<string, never>> = {
      ...base,
      create: (config, ctx) => ({
        ...base.create(config, ctx),
        committedOffset: async () => stored,
        async writeValues() {
          throw new Error('test: a backlog goes through writeSpan');
        },
        async writeSpan(first: SpanBatch, more: () => Promise<SpanBatch | null>) {
          const took: [number, unknown][] = [];
          // Each batch's values are read before more() is called: after it, the log reads into them again.
          for (let b: SpanBatch | null = first; b !== null; b = await more()) {
            if (!('spans' in b)) throw new Error('test: expected values batches');
            let offset = b.firstOffset;
            for (const sp of b.spans) for (let i = 0; i < sp.count; i++) took.push([offset++, JSON.parse(sp.buf.toString('utf8', sp.starts[i]!, sp.ends[i]!))]);
            expect(offset).toBe(b.nextOffset);
          }
          counts.push(took.length);
          for (const [o, v] of took) {
            if (store.has(`events/0/${o}`)) throw new Error(`test: ${o} delivered twice`);
            store.set(`events/0/${o}`, v);
          }
          stored = took.at(-1)![0] + 1;
        },
      }),
    };
    const h = await backlog(dir, 60_000, sink);
    await h.runtime.start();
    await waitFor('the sink to catch up', () => store.size === 60_000);
    expect(await shutdown(h)).toBe(true);
    expect(ids([...store.values()] as Record<string, unknown>[])).toEqual(range(60_000));
    expect(counts[0]).toBe(60_000);
  });

  it('writes a span that fails again through write, a read at a time, and loses or repeats nothing', async () => {
    const dir = await tempDir();
    const store = new Map<string, unknown>();
    const spans: number[][] = [];
    const h = await backlog(dir, 40_000, spanSink(store, spans, (span) => span === 1));
    await h.runtime.start();
    await waitFor('the sink to catch up', () => store.size === 40_000);
    expect(await shutdown(h)).toBe(true);
    expect(ids([...store.values()] as Record<string, unknown>[])).toEqual(range(40_000));
    expect(spans[0]!.reduce((a, b) => a + b, 0)).toBe(40_000);
    expect(h.messages.some((m) => m.level === 'warn' && /sink "mem" write of offsets 0\.\.39999 as one transaction failed: span refused; writing them a read at a time/.test(m.text))).toBe(true);
    // Nothing was dead-lettered: the records were fine one read at a time.
    expect(existsSync(join(h.config.log.dataDir, 'topics', 'events.dlq'))).toBe(false);
  });
});

describe('PipelineRuntime: supervision', () => {
  it('restarts a source that throws, with backoff, resuming at its committed position; other pipelines keep running', async () => {
    const dir = await tempDir();
    let thrown = 0;
    const flaky = counterSource('flaky_counter', {
      onRead: (instance, readNo) => {
        if (instance === 1 && readNo === 2) {
          thrown++;
          throw new Error('source fell over');
        }
      },
    });
    const h = await harness(
      dir,
      `version: 1
pipelines:
  flaky:
    source: { type: flaky_counter, to: 100, per: 10 }
    topic: numbers
  steady:
    source: { type: generate, count: 2000, seed: 8, rate_per_sec: 10000 }
    topic: events
    sinks:
      out: { type: file, path: ./out }
`,
      { sources: [flaky as AnySource] },
    );
    const t0 = Date.now();
    await h.runtime.start();
    await waitFor('the restart', () => pipelineStatus(h, 'flaky').source!.restarts === 1);
    const during = pipelineStatus(h, 'flaky');
    expect(during.source!.last_error).toBe('source fell over');
    await h.runtime.whenSourcesDone();
    // RESTART_RETRY: the first restart waits 250..500 ms.
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    expect(thrown).toBe(1);
    expect(pipelineStatus(h, 'flaky').source!.state).toBe('finished');
    expect(pipelineStatus(h, 'steady').source!.restarts).toBe(0);
    const numbers = await readTopic(h.log, 'numbers');
    await waitFor('the steady sink', () => sinkDone(h, 'steady', 'out') === 2000);
    expect(await shutdown(h)).toBe(true);
    expect(ids(numbers.map((r) => r.json as Record<string, unknown>), 'n')).toEqual(range(100));
    expect(ids(await fileOutput(join(dir, 'out'), 'events'))).toEqual(range(2000));
    expect(h.messages.some((m) => m.level === 'error' && /^pipeline "flaky" source failed: source fell over; restarting in \d+ ms$/.test(m.text))).toBe(true);
  });

  it('restarts the source task when an append fails, without an unhandled rejection', async () => {
    const dir = await tempDir();
    const unhandled: unknown[] = [];
    const saved = process.listeners('unhandledRejection');
    process.removeAllListeners('unhandledRejection');
    const onUnhandled = (reason: unknown): void => {
      unhandled.push(reason);
    };
    process.on('unhandledRejection', onUnhandled);
    try {
      let appends = 0;
      const slowReads = counterSource('slow_counter', { onRead: () => sleep(30) });
      const h = await harness(
        dir,
        `version: 1
pipelines:
  p:
    source: { type: slow_counter, to: 60, per: 10 }
    topic: numbers
`,
        {
          sources: [slowReads as AnySource],
          // The second append fails (say, the disk filled up) while the source waits in read().
          wrapLog: (log) =>
            new Proxy(log, {
              get(target, prop, receiver) {
                if (prop === 'appendAll') {
                  return async (...args: Parameters<Log['appendAll']>) => {
                    if (++appends === 2) throw new Error('disk full (test)');
                    return target.appendAll(...args);
                  };
                }
                const v = Reflect.get(target, prop, receiver) as unknown;
                return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
              },
            }),
        },
      );
      await h.runtime.start();
      await h.runtime.whenSourcesDone();
      const numbers = await readTopic(h.log, 'numbers');
      const status = pipelineStatus(h, 'p');
      expect(await shutdown(h)).toBe(true);
      expect(status.source!.restarts).toBe(1);
      expect(status.source!.last_error).toBe('disk full (test)');
      await sleep(20);
      // Both at once: the batch whose append failed must not be skipped by a later checkpoint,
      // and the failure must not surface as an unhandled rejection (which kills `sluice run`).
      expect({ numbers: ids(numbers.map((r) => r.json as Record<string, unknown>), 'n'), unhandled: unhandled.map(String) }).toEqual({
        numbers: range(60),
        unhandled: [],
      });
    } finally {
      process.off('unhandledRejection', onUnhandled);
      for (const l of saved) process.on('unhandledRejection', l);
    }
  });
});

describe('PipelineRuntime: a batch the log refuses', () => {
  it('never commits a later batch\'s position past a batch whose append failed (a record too large for the log)', async () => {
    const dir = await tempDir();
    const saved = process.listeners('unhandledRejection');
    process.removeAllListeners('unhandledRejection');
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => {
      unhandled.push(reason);
    };
    process.on('unhandledRejection', onUnhandled);
    try {
      // Record 15 is larger than the log accepts; it is in the second batch (10..19).
      const big: SourceDeclaration<{ to: number }> = {
        kind: 'source',
        type: 'big_one',
        summary: 'one record too large',
        replayable: true,
        schema: { type: 'object', additionalProperties: false, required: ['to'], properties: { to: { type: 'integer' } } },
        create(config) {
          let next = 0;
          return {
            async open(position: unknown) {
              next = (position as { next?: number } | undefined)?.next ?? 0;
            },
            async read() {
              await sleep(5);
              if (next >= config.to) return null;
              const records = [];
              for (const end = next + 10; next < end; next++) records.push({ value: { n: next, pad: next === 15 ? 'x'.repeat(4096) : '' } });
              return { records, position: { next } };
            },
            async close() {},
          };
        },
      };
      const h = await harness(
        dir,
        `version: 1
pipelines:
  p:
    source: { type: big_one, to: 60 }
    topic: numbers
`,
        { sources: [big as AnySource], maxRecordBytes: 1024 },
      );
      await h.runtime.start();
      await waitFor('the source to fail or finish', () => {
        const src = pipelineStatus(h, 'p').source!;
        return src.restarts >= 1 || src.state === 'finished';
      });
      await sleep(700); // room for a restart to resume from whatever position was committed
      const inLog = (await readTopic(h.log, 'numbers')).map((r) => r.json as Record<string, unknown>);
      const dead = (await h.log.listTopics()).includes('numbers.dlq')
        ? (await readTopic(h.log, 'numbers.dlq')).map((r) => (r.json as { original: Record<string, unknown> }).original)
        : [];
      const status = pipelineStatus(h, 'p');
      await shutdown(h);
      if (status.source!.restarts > 0) expect(status.source!.last_error).toMatch(/exceeds the maximum of 1024 bytes/);
      // Whatever the runtime does with the bad batch (fail, or dead-letter it), records after it
      // must not be in the log while records 10..19 are neither there nor dead-lettered.
      const numbers = ids([...inLog, ...dead], 'n');
      expect({ numbers, unhandled: unhandled.map(String) }).toEqual({ numbers: range(numbers.length), unhandled: [] });
    } finally {
      process.off('unhandledRejection', onUnhandled);
      for (const l of saved) process.on('unhandledRejection', l);
    }
  });
});

describe('PipelineRuntime: flow control and shutdown', () => {
  it('keeps at most maxInFlight source batches un-acked while a slow sink lags, and stops cleanly', async () => {
    const dir = await tempDir();
    const maxInFlight = 3;
    let unacked = 0;
    let maxUnacked = 0;
    let reads = 0;
    let closed = 0;
    const source = counterSource('endless', {
      onRead: () => {
        reads++;
      },
      onAck: () => {
        unacked--;
      },
      onClose: () => {
        closed++;
      },
    });
    // Count a batch as un-acked from the moment read() returns it.
    const counting: SourceDeclaration<{ to?: number; per?: number }> = {
      ...source,
      create(config, ctx) {
        const inner = source.create(config, ctx);
        return {
          open: (p) => inner.open(p),
          read: async () => {
            const b = await inner.read();
            if (b !== null) {
              unacked++;
              maxUnacked = Math.max(maxUnacked, unacked);
            }
            return b;
          },
          ack: (p) => inner.ack!(p),
          close: () => inner.close(),
        };
      },
    };
    const store = new Map<string, unknown>();
    let sinkClosed = 0;
    const slowBase = memorySink('slow', store, () => sleep(15));
    const slow: SinkDeclaration<Record<string, never>> = {
      ...slowBase,
      create(config, ctx) {
        const s = slowBase.create(config, ctx);
        return { ...s, close: async () => void sinkClosed++ };
      },
    };
    let lead = 0;
    const h = await harness(
      dir,
      `version: 1
pipelines:
  p:
    source: { type: endless, per: 20 }
    topic: numbers
    sinks:
      s: { type: slow }
`,
      {
        sources: [counting as AnySource],
        sinks: [slow as AnySink],
        deps: { maxInFlight },
        // Appends take a while, so batches pile up in flight unless the runtime holds the source back.
        wrapLog: (log) =>
          new Proxy(log, {
            get(target, prop, receiver) {
              if (prop === 'appendAll') {
                return async (...args: Parameters<Log['appendAll']>) => {
                  await sleep(20);
                  return target.appendAll(...args);
                };
              }
              const v = Reflect.get(target, prop, receiver) as unknown;
              return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
            },
          }),
      },
    );
    await h.runtime.start();
    const until = Date.now() + 600;
    while (Date.now() < until) {
      const end = (await h.log.describeTopic('numbers').catch(() => null))?.partitionDetails[0]?.endOffset ?? 0;
      lead = Math.max(lead, end - sinkDone(h, 'p', 's'));
      await sleep(10);
    }
    expect(reads).toBeGreaterThan(maxInFlight * 2);
    expect(maxUnacked).toBeGreaterThanOrEqual(2);
    expect(maxUnacked).toBeLessThanOrEqual(maxInFlight);
    // The log, not memory, is the buffer: the topic may run ahead of the slow sink.
    expect(lead).toBeGreaterThan(0);

    const drained = await h.runtime.stop(10_000);
    expect(drained).toBe(true);
    expect(closed).toBe(1);
    expect(sinkClosed).toBe(1);
    // Everything the source got acked is in the log and was delivered, once.
    const end = (await h.log.describeTopic('numbers')).partitionDetails[0]!.endOffset;
    expect(unacked).toBe(0);
    expect(store.size).toBe(end);
    expect(ids([...store.values()] as Record<string, unknown>[], 'n')).toEqual(range(end));
    await h.log.close();
    open.find((o) => o.runtime === h.runtime)!.closed = true;
    // The directory is free again: another log can open it.
    const again = await openLocalLog({ dir: h.config.log.dataDir, retentionSchedule: false });
    expect((await again.describeTopic('numbers')).partitionDetails[0]!.endOffset).toBe(end);
    expect(await again.getCheckpoint('pipeline/p')).toEqual({ next: end });
    await again.close();
  });

  it('stop() on a runtime whose sinks cannot drain in time resolves false, and the log still closes', async () => {
    const dir = await tempDir();
    const store = new Map<string, unknown>();
    const stuck = memorySink('stuck', store, () => sleep(400));
    const h = await harness(
      dir,
      `version: 1
pipelines:
  p:
    source: { type: generate, count: 200, batch_size: 10 }
    topic: events
    sinks:
      s: { type: stuck }
`,
      { sinks: [stuck as AnySink] },
    );
    await h.runtime.start();
    await h.runtime.whenSourcesDone();
    const t0 = Date.now();
    expect(await h.runtime.stop(100)).toBe(false);
    expect(Date.now() - t0).toBeLessThan(2_000);
    await h.log.close();
    open.find((o) => o.runtime === h.runtime)!.closed = true;
  });
});
