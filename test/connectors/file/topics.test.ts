/**
 * Text events reach the log as pre-encoded JSON (SourceRecord.encoded); a topic template still
 * works: one reading `host`, `file` or `timestamp` is rendered from the shared template view,
 * one reading the message parses the value.
 */
import { writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { builtinSinks, builtinSources } from '../../../connectors/registry.js';
import { openLocalLog } from '../../../core/log/local/index.js';
import type { Log } from '../../../core/log/types.js';
import { parsePipelines } from '../../../core/pipeline/config.js';
import { PipelineRuntime } from '../../../core/pipeline/runtime.js';
import { pipelinesSchema } from '../../../core/pipeline/setup.js';
import { removeTempDirs, sleep, tempDir } from './helpers.js';

afterAll(removeTempDirs);

async function messages(log: Log, topic: string): Promise<unknown[]> {
  const out: unknown[] = [];
  for (let offset = 0; ; ) {
    const r = await log.read(topic, 0, offset);
    if (r.records.length === 0) break;
    for (const rec of r.records) out.push(JSON.parse(rec.value.toString('utf8')));
    offset = r.nextOffset;
  }
  return out;
}

describe('file source: text events and topic templates', () => {
  it('renders {{ host }} from the template view and {{ message }} from the value', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'app.log'), 'a\nb\na\n');
    const yaml = `version: 1
log: { data_dir: ./data }
pipelines:
  by-host:
    source: { type: file, include: ["app.log"], poll_interval_ms: 20 }
    topic: "h.{{ host }}"
  by-message:
    source: { type: file, include: ["app.log"], poll_interval_ms: 20 }
    topic: "m.{{ message }}"
`;
    const config = parsePipelines(yaml, 'pipelines.yaml', dir, pipelinesSchema({ sources: builtinSources, sinks: builtinSinks }), {});
    const log = await openLocalLog({ dir: config.log.dataDir, retentionSchedule: false });
    const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
    const runtime = new PipelineRuntime(config, { log, sources: builtinSources, sinks: builtinSinks, logger: quiet });
    const host = `h.${hostname()}`;
    try {
      await runtime.start();
      const want = [host, 'm.a', 'm.b'];
      for (const deadline = Date.now() + 10_000; Date.now() < deadline; await sleep(20)) {
        const topics = await log.listTopics();
        if (want.every((t) => topics.includes(t))) break;
      }
      await runtime.stop(1000);
      const file = join(dir, 'app.log');
      const byHost = (await messages(log, host)) as Record<string, unknown>[];
      expect(byHost.map((v) => v.message)).toEqual(['a', 'b', 'a']);
      expect(byHost[0]).toEqual({ timestamp: expect.any(String), host: hostname(), file, message: 'a' });
      expect(((await messages(log, 'm.a')) as Record<string, unknown>[]).map((v) => v.message)).toEqual(['a', 'a']);
      expect(((await messages(log, 'm.b')) as Record<string, unknown>[]).map((v) => v.message)).toEqual(['b']);
    } finally {
      await runtime.stop(0).catch(() => undefined);
      await log.close();
    }
  });

  it('runs of lines keep their order around other records, and are spelled out for a record schema', async () => {
    const dir = await tempDir();
    // Lines with invalid UTF-8 take the per-record path: they sit between runs of valid lines.
    const bad = Buffer.from([0x62, 0x61, 0x64, 0xff, 0x0a]);
    const lines: Buffer[] = [];
    for (let i = 0; i < 3000; i++) lines.push(i % 1000 === 500 ? bad : Buffer.from(`line ${i} "quoted" \\ tab\t\n`));
    await writeFile(join(dir, 'app.log'), Buffer.concat(lines));
    await writeFile(join(dir, 'short.schema.json'), JSON.stringify({ type: 'object', properties: { message: { type: 'string', maxLength: 12 } } }));
    const yaml = `version: 1
log: { data_dir: ./data }
topics:
  checked: { partitions: 1, schema: ./short.schema.json, on_invalid: dlq }
pipelines:
  plain:
    source: { type: file, include: ["app.log"], poll_interval_ms: 20, batch_max_lines: 700 }
    topic: plain
  checked:
    source: { type: file, include: ["app.log"], poll_interval_ms: 20 }
    topic: checked
`;
    const config = parsePipelines(yaml, 'pipelines.yaml', dir, pipelinesSchema({ sources: builtinSources, sinks: builtinSinks }), {});
    const log = await openLocalLog({ dir: config.log.dataDir, retentionSchedule: false });
    const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
    const runtime = new PipelineRuntime(config, { log, sources: builtinSources, sinks: builtinSinks, logger: quiet });
    const expected = lines.map((b) => b.subarray(0, b.length - 1).toString('utf8'));
    const count = async (topic: string): Promise<number> => ((await log.listTopics()).includes(topic) ? (await log.describeTopic(topic)).partitionDetails[0]!.endOffset : 0);
    try {
      await runtime.start();
      for (const deadline = Date.now() + 15_000; Date.now() < deadline; await sleep(20)) {
        if ((await count('plain')) >= 3000 && (await count('checked')) + (await count('checked.dlq')) >= 3000) break;
      }
      await runtime.stop(1000);
      const plain = (await messages(log, 'plain')) as Record<string, unknown>[];
      expect(plain.map((v) => v.message)).toEqual(expected);
      expect(plain.every((v) => v.file === join(dir, 'app.log') && v.host === hostname())).toBe(true);
      // The schema saw every line: short ones pass, the rest went to the DLQ, none lost.
      const checked = (await messages(log, 'checked')) as Record<string, unknown>[];
      const dlq = (await messages(log, 'checked.dlq')) as { original: { message: string } }[];
      expect(checked.map((v) => v.message)).toEqual(expected.filter((m) => m.length <= 12));
      expect(dlq.map((v) => v.original.message)).toEqual(expected.filter((m) => m.length > 12));
    } finally {
      await runtime.stop(0).catch(() => undefined);
      await log.close();
    }
  });
});
