/**
 * Pipeline benchmark: generate → log (durable commits) → file sink, records/s until the sink holds
 * every record, beside the log-only append rate of the same events measured in the same run.
 *
 *   npm run bench -- pipeline [--records 2000000] [--partitions 4] [--rounds 3] [--backend local|jetstream]
 *
 * With --backend jetstream both sides run on a private nats-server (a fresh prefix each time).
 */
import { join } from 'node:path';
import { openLocalLog } from '../../core/log/local/index.js';
import { openLog } from '../../core/log/open.js';
import type { Log } from '../../core/log/types.js';
import { startLogNats, uniquePrefix } from '../support/nats-log.js';
import { jetStreamConfig, parsePipelines } from '../../core/pipeline/config.js';
import { PipelineRuntime } from '../../core/pipeline/runtime.js';
import { pipelinesSchema } from '../../core/pipeline/setup.js';
import { builtinSinks, builtinSources } from '../../connectors/registry.js';
import { generateEvent } from '../../connectors/generate/index.js';
import type { ProducerRecord } from '../../core/log/types.js';
import { arg, machine, peakRssMiB, rate, row, tempDir, timed, type Figure } from './util.js';

const REGISTRY = { sources: builtinSources, sinks: builtinSinks };
const SERVICES = ['api', 'web', 'worker', 'billing'];

function median(figs: Figure[]): Figure {
  return [...figs].sort((a, b) => a.seconds - b.seconds)[Math.floor(figs.length / 2)]!;
}

/** The source side alone: the same events, made and JSON-encoded, appended durably in batches of 1,000. */
/** `log:` of the benchmark's pipelines file: the local log in ./data, or JetStream at `natsUrl`. */
function logSection(natsUrl: string | undefined): string {
  return natsUrl === undefined ? '{ data_dir: ./data }' : `{ backend: jetstream, jetstream: { servers: "${natsUrl}", prefix: ${uniquePrefix()} } }`;
}

async function logOnly(dir: string, records: number, partitions: number, natsUrl: string | undefined): Promise<Figure> {
  const log: Log =
    natsUrl === undefined
      ? await openLocalLog({ dir: join(dir, 'log-only'), retentionSchedule: false })
      : await openLog({
          backend: 'jetstream',
          dataDir: '',
          acks: 'durable',
          retentionCheck: false,
          jetstream: jetStreamConfig({ servers: natsUrl, prefix: uniquePrefix() }, dir),
        });
  await log.createTopic('events', { partitions });
  let bytes = 0;
  const fig = await timed('log only: generate + append, durable', records, 0, async () => {
    const pending: Promise<unknown>[] = [];
    const now = Date.now();
    for (let next = 0; next < records; next += 1000) {
      const batch: ProducerRecord[] = [];
      for (let id = next; id < Math.min(records, next + 1000); id++) {
        const e = generateEvent(42, id, SERVICES, now);
        const value = JSON.stringify(e);
        bytes += value.length;
        batch.push({ key: e.service, value, timestamp: now });
      }
      pending.push(log.append('events', batch, { acks: 'durable' }));
      if (pending.length >= 4) await pending.shift();
    }
    await Promise.all(pending);
  });
  await log.close();
  return { ...fig, bytes };
}

async function pipeline(dir: string, records: number, partitions: number, bytes: number, natsUrl: string | undefined): Promise<Figure> {
  const text = `version: 1
log: ${logSection(natsUrl)}
topics:
  events: { partitions: ${partitions} }
pipelines:
  bench:
    source: { type: generate, count: ${records}, seed: 42, batch_size: 1000 }
    topic: events
    key: "{{ service }}"
    sinks:
      out: { type: file, path: ./out }
`;
  const config = parsePipelines(text, 'bench.yaml', dir, pipelinesSchema(REGISTRY));
  const log = await openLog({ ...config.log, retentionCheck: false });
  const quiet = { info: () => undefined, warn: (m: string) => console.error(m), error: (m: string) => console.error(m) };
  const runtime = new PipelineRuntime(config, { log, ...REGISTRY, logger: quiet });
  const fig = await timed('pipeline: generate → log → file sink', records, bytes, async () => {
    await runtime.start();
    for (;;) {
      const s = runtime.status() as { pipelines: { sinks: { offsets: Record<string, number> }[] }[] };
      const done = Object.values(s.pipelines[0]!.sinks[0]!.offsets).reduce((a, b) => a + b, 0);
      if (done >= records) break;
      await new Promise((r) => setTimeout(r, 5));
    }
  });
  await runtime.stop(5000);
  await log.close();
  return fig;
}

export async function benchPipeline(args: string[]): Promise<string[]> {
  const records = Number(arg(args, 'records', '1000000'));
  const partitions = Number(arg(args, 'partitions', '4'));
  const rounds = Number(arg(args, 'rounds', '3'));
  const backend = arg(args, 'backend', 'local');
  const nats = backend === 'jetstream' ? await startLogNats() : undefined;
  const lines = [`machine: ${machine()}`, `${records} generated events (~130 B of JSON each), ${partitions} partitions, ${backend} log, median of ${rounds} rounds`];
  const bases: Figure[] = [];
  const pipes: Figure[] = [];
  for (let i = 0; i < rounds; i++) {
    const { dir, remove } = tempDir('sluice-bench-pipeline');
    try {
      const base = await logOnly(dir, records, partitions, nats?.url);
      bases.push(base);
      pipes.push(await pipeline(dir, records, partitions, base.bytes, nats?.url));
    } finally {
      remove();
    }
  }
  await nats?.stop();
  const base = median(bases);
  const pipe = median(pipes);
  lines.push(row(base), row(pipe, base));
  lines.push(`  → pipeline at ${((rate(pipe).recPerSec / rate(base).recPerSec) * 100).toFixed(0)}% of the log-only rate`);
  lines.push(`peak RSS: ${peakRssMiB().toFixed(0)} MiB`);
  return lines;
}
