/**
 * `sluice pipelines drop NAME [-c FILE] [--keep-position]`: removes what a pipeline's source keeps
 * outside Sluice (for postgres_cdc: its replication slot and publication, so no slot is left to
 * hold WAL on the server), then resets the source's committed position so the next `sluice run`
 * starts over (for postgres_cdc: a new slot and snapshot). Run it while the pipeline is stopped:
 * the log's data directory must not be held by `sluice run`.
 */
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { openLocalLog } from '../log/local/index.js';
import type { Log } from '../log/types.js';
import { loadAndCheck } from '../pipeline/setup.js';
import { ConfigError } from './errors.js';
import { DEFAULT_CONFIG_FILE } from './open-log.js';
import { print } from './output.js';
import { REGISTRY } from './run.js';

interface DropOptions {
  config: string;
  keepPosition?: boolean;
}

export function registerPipelineCommands(program: Command): void {
  const pipelines = program.command('pipelines').description('act on the pipelines of a pipelines file');
  pipelines
    .command('drop <name>')
    .description("remove what the pipeline's source keeps outside sluice (e.g. a replication slot) and reset its position")
    .option('-c, --config <file>', 'pipelines file', DEFAULT_CONFIG_FILE)
    .option('--keep-position', "keep the source's committed position in the log")
    .action(async (name: string, options: DropOptions) => {
      for (const line of await dropPipeline(name, options)) print(line);
    });
}

export async function dropPipeline(name: string, options: DropOptions): Promise<string[]> {
  const { config, registry } = await loadAndCheck(options.config, REGISTRY);
  const spec = config.pipelines.find((p) => p.name === name);
  if (spec === undefined) {
    throw new ConfigError(`${options.config}: no pipeline "${name}" (pipelines: ${config.pipelines.map((p) => p.name).join(', ') || 'none'})`);
  }
  if (spec.source === undefined) return [`pipeline "${name}" has no source: nothing to drop`];
  const decl = registry.sources.find((s) => s.type === spec.source!.type)!;
  // Opening the log first takes its lock: a running `sluice run` makes this fail before anything is dropped.
  let log: Log | null = null;
  if (!options.keepPosition && existsSync(config.log.dataDir)) log = await openLocalLog({ dir: config.log.dataDir, retentionSchedule: false });
  try {
    const lines: string[] = [];
    const abort = new AbortController();
    if (decl.drop === undefined) {
      lines.push(`source type "${decl.type}" keeps nothing outside sluice`);
    } else {
      const done = await decl.drop(spec.source.config as never, {
        pipeline: name,
        baseDir: config.baseDir,
        signal: abort.signal,
        log: (_level, message) => lines.push(message),
      });
      lines.push(...(done.length > 0 ? done : ['nothing to drop on the source side']));
    }
    if (log !== null) {
      // An empty commit carrying a null position: the source starts over on the next run.
      await log.appendAll([], { checkpoint: { source: `pipeline/${name}`, position: null } });
      lines.push(`reset the position of pipeline "${name}"`);
    }
    return lines;
  } finally {
    await log?.close();
  }
}
