/**
 * `on_parse_error: dlq`: json/logfmt lines that do not parse go to `<topic>.dlq` with the error and
 * the original line, committed with the batch; the others go on to the topic.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { builtinSinks, builtinSources } from '../../../connectors/registry.js';
import { openLocalLog } from '../../../core/log/local/index.js';
import type { Log } from '../../../core/log/types.js';
import { parsePipelines } from '../../../core/pipeline/config.js';
import { PipelineRuntime } from '../../../core/pipeline/runtime.js';
import { pipelinesSchema } from '../../../core/pipeline/setup.js';
import { Driver, removeTempDirs, sleep, tempDir } from './helpers.js';

afterAll(removeTempDirs);

async function values(log: Log, topic: string): Promise<{ value: Record<string, unknown>; headers: Readonly<Record<string, string>> }[]> {
  const out: { value: Record<string, unknown>; headers: Readonly<Record<string, string>> }[] = [];
  for (let offset = 0; ; ) {
    const r = await log.read(topic, 0, offset);
    if (r.records.length === 0) break;
    for (const rec of r.records) out.push({ value: JSON.parse(rec.value.toString('utf8')) as Record<string, unknown>, headers: rec.headers });
    offset = r.nextOffset;
  }
  return out;
}

describe('file source: on_parse_error', () => {
  it('dlq: the record is marked for the dead-letter queue with the error, without parse_error', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'a.log'), '{"msg":"ok"}\nnot json\n[1]\n');
    const d = await Driver.open({ include: ['a.log'], format: 'json', on_parse_error: 'dlq' }, dir);
    await d.settle(200);
    const records = d.batches.flatMap((b) => b.records);
    expect(records).toHaveLength(3);
    expect(records[0]!.deadLetter).toBeUndefined();
    expect(records[1]!.deadLetter?.error).toMatch(/invalid JSON/);
    expect(records[1]!.value).toEqual({ timestamp: expect.any(String), host: expect.any(String), file: join(dir, 'a.log'), message: 'not json' });
    expect(records[2]!.deadLetter?.error).toBe('not a JSON object');
    expect(d.source.stats.parse_errors).toBe(2);
    await d.close();
  });

  it('dlq through the runtime: bad lines land in <topic>.dlq, good ones in the topic, in one commit', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'app.log'), 'level=info msg=one\nmsg="open\nlevel=warn msg=two\n');
    const yaml = `version: 1
log: { data_dir: ./data }
pipelines:
  tail:
    source: { type: file, include: ["*.log"], format: logfmt, on_parse_error: dlq, poll_interval_ms: 20 }
    topic: app
`;
    const config = parsePipelines(yaml, 'pipelines.yaml', dir, pipelinesSchema({ sources: builtinSources, sinks: builtinSinks }), {});
    const log = await openLocalLog({ dir: config.log.dataDir, retentionSchedule: false });
    const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
    const runtime = new PipelineRuntime(config, { log, sources: builtinSources, sinks: builtinSinks, logger: quiet });
    try {
      await runtime.start();
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline && !(await log.listTopics()).includes('app.dlq')) await sleep(20);
      await runtime.stop(1000);
      const good = await values(log, 'app');
      expect(good.map((r) => r.value.msg)).toEqual(['one', 'two']);
      const dlq = await values(log, 'app.dlq');
      expect(dlq).toHaveLength(1);
      expect(dlq[0]!.headers['sluice-error']).toBe('source');
      expect(dlq[0]!.value).toMatchObject({ topic: 'app', error: expect.stringMatching(/invalid logfmt/), original: { message: 'msg="open', file: join(dir, 'app.log') } });
    } finally {
      await runtime.stop(0).catch(() => undefined);
      await log.close();
    }
  });
});
