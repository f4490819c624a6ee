/** The `file` source's counters and file counts as Prometheus metrics, through the runtime. */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { builtinSinks, builtinSources } from '../../../connectors/registry.js';
import { Metrics } from '../../../core/admin/metrics.js';
import { openLocalLog } from '../../../core/log/local/index.js';
import { parsePipelines } from '../../../core/pipeline/config.js';
import { PipelineRuntime } from '../../../core/pipeline/runtime.js';
import { pipelinesSchema } from '../../../core/pipeline/setup.js';
import { removeTempDirs, sleep, tempDir } from './helpers.js';

afterAll(removeTempDirs);

describe('file source: metrics', () => {
  it('exports sluice_source_file_* per pipeline, monotonic across a source restart', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'a.log'), 'one\ntwo\n' + 'x'.repeat(40) + '\n');
    await writeFile(join(dir, 'b.log'), 'three\n');
    const yaml = `version: 1
log: { data_dir: ./data }
pipelines:
  tail:
    source: { type: file, include: ["*.log"], max_line_bytes: 16, poll_interval_ms: 20 }
    topic: app
`;
    const config = parsePipelines(yaml, 'pipelines.yaml', dir, pipelinesSchema({ sources: builtinSources, sinks: builtinSinks }), {});
    const metrics = new Metrics();
    const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
    const run = async (events: number): Promise<string> => {
      const log = await openLocalLog({ dir: config.log.dataDir, retentionSchedule: false });
      const runtime = new PipelineRuntime(config, { log, sources: builtinSources, sinks: builtinSinks, logger: quiet, metrics });
      try {
        await runtime.start();
        // Exported about once a second: wait for this run's lines to show.
        const want = new RegExp(`^sluice_source_file_events_total\\{pipeline="tail"\\} ${events}$`, 'm');
        let during = '';
        for (const deadline = Date.now() + 15_000; Date.now() < deadline; await sleep(100)) {
          during = await metrics.registry.metrics();
          if (want.test(during) && /^sluice_source_file_files_open\{pipeline="tail"\} 2$/m.test(during)) break;
        }
        await runtime.stop(1000);
        return during;
      } finally {
        await runtime.stop(0).catch(() => undefined);
        await log.close();
      }
    };
    const during = await run(4);
    expect(during).toMatch(/^sluice_source_file_events_total\{pipeline="tail"\} 4$/m);
    expect(during).toMatch(/^sluice_source_file_bytes_read_total\{pipeline="tail"\} 55$/m);
    expect(during).toMatch(/^sluice_source_file_lines_truncated_total\{pipeline="tail"\} 1$/m);
    expect(during).toMatch(/^sluice_source_file_files_watched\{pipeline="tail"\} 2$/m);
    expect(during).toMatch(/^sluice_source_file_files_open\{pipeline="tail"\} 2$/m);
    expect(during).toMatch(/^sluice_source_file_errors_total\{reason="permission",pipeline="tail"\} 0$/m);
    expect(during).toMatch(/^# HELP sluice_source_file_errors_total Files the source could not read/m);
    const after = await metrics.registry.metrics();
    // Closed: no file open any more.
    expect(after).toMatch(/^sluice_source_file_files_open\{pipeline="tail"\} 0$/m);
    // A second run starts from the committed position: the new source counts from 0 again, the
    // exported counter goes on from where it was.
    await writeFile(join(dir, 'b.log'), 'three\nfour\n');
    const again = await run(5);
    expect(again).toMatch(/^sluice_source_file_events_total\{pipeline="tail"\} 5$/m);
  });
});
