/** Custom sources, sinks and transforms loaded from a module named under `plugins:`. */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openLocalLog } from '../../core/log/local/index.js';
import { PipelineConfigError } from '../../core/pipeline/config.js';
import { PipelineRuntime } from '../../core/pipeline/runtime.js';
import { loadAndCheck } from '../../core/pipeline/setup.js';
import { REGISTRY } from '../../core/cli/run.js';

const PLUGIN = `
export const sources = [{
  kind: 'source', type: 'counter', summary: 'counts', replayable: true,
  schema: { type: 'object', additionalProperties: false, required: ['to'], properties: { to: { type: 'integer' } } },
  create(config) {
    let next = 0;
    return {
      async open(position) { next = position?.next ?? 0; },
      async read() {
        if (next >= config.to) return null;
        const records = [];
        for (let i = 0; i < 10 && next < config.to; i++, next++) records.push({ value: { n: next } });
        return { records, position: { next } };
      },
      async close() {},
    };
  },
}];
export const transforms = [{
  kind: 'transform', type: 'double', summary: 'doubles n', schema: { type: 'object', additionalProperties: false, properties: { field: { type: 'string' } } },
  create(config) {
    const f = config.field ?? 'n';
    return (e) => [{ ...e, value: { ...e.value, [f + '_doubled']: e.value[f] * 2 } }];
  },
}];
export const sinks = [{
  kind: 'sink', type: 'memory', summary: 'keeps records', delivery: 'at-least-once', deliveryNote: 'test only',
  schema: { type: 'object', additionalProperties: false, properties: {} },
  create() { return { async open() {}, async write(b) { globalThis.__pluginSink ??= []; for (const r of b.records) globalThis.__pluginSink.push(r.value); }, async close() {} }; },
}];
`;

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function setup(yaml: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-plugins-'));
  dirs.push(dir);
  await writeFile(join(dir, 'my-plugin.mjs'), PLUGIN);
  await writeFile(join(dir, 'pipelines.yaml'), yaml);
  return join(dir, 'pipelines.yaml');
}

describe('plugins', () => {
  it('adds custom sources, transforms and sinks that run like the built-ins', async () => {
    const file = await setup(`version: 1
plugins: [./my-plugin.mjs]
log: { data_dir: ./data }
pipelines:
  p:
    source: { type: counter, to: 35 }
    transforms:
      - { type: double }
      - { type: set, fields: { tagged: "yes" } }
    topic: nums
    sinks:
      mem: { type: memory }
      out: { type: file, path: ./out }
`);
    const { config, guarantees, registry } = await loadAndCheck(file, REGISTRY);
    expect(guarantees[0]!.text).toBe('at-least-once (sink "mem": memory, test only)');
    const log = await openLocalLog({ dir: config.log.dataDir, retentionSchedule: false });
    const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
    const runtime = new PipelineRuntime(config, { log, sources: registry.sources, sinks: registry.sinks, transforms: registry.transforms ?? [], logger: quiet });
    await runtime.start();
    await runtime.whenSourcesDone();
    expect(await runtime.stop(5000)).toBe(true);
    await log.close();
    const lines = (await readFile(join(config.baseDir, 'out', 'nums-0.ndjson'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { n: number; n_doubled: number; tagged: string });
    expect(lines).toHaveLength(35);
    expect(lines[7]).toEqual({ n: 7, n_doubled: 14, tagged: 'yes' });
    const mem = (globalThis as { __pluginSink?: unknown[] }).__pluginSink ?? [];
    expect(mem).toHaveLength(35);
  });

  it('checks a plugin connector config against the plugin schema, with positions', async () => {
    const file = await setup(`version: 1
plugins: [./my-plugin.mjs]
pipelines:
  p:
    source: { type: counter, upto: 3 }
    topic: nums
`);
    const err = await loadAndCheck(file, REGISTRY).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PipelineConfigError);
    const text = (err as Error).message;
    expect(text).toContain('pipelines.yaml:5:');
    expect(text).toContain('unknown key "upto"');
  });

  it('reports a plugin that cannot be loaded', async () => {
    const file = await setup(`version: 1
plugins: [./missing.mjs]
pipelines:
  p: { source: { type: generate, count: 1 }, topic: t }
`);
    const err = await loadAndCheck(file, REGISTRY).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PipelineConfigError);
    expect((err as Error).message).toMatch(/pipelines\.yaml:2:\d+: plugins\.0: cannot load plugin \.\/missing\.mjs/);
  });
});
