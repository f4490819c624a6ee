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
});
