/**
 * `sluice run [-c FILE]`: runs every pipeline of the file on the log until SIGINT/SIGTERM, then
 * stops sources, lets sinks drain within `--drain-timeout`, closes the log. Exit 0 when clean.
 * `sluice validate [-c FILE]`: every problem at once with file:line:column, and each pipeline's
 * end-to-end delivery guarantee.
 */
import { relative, resolve } from 'node:path';
import type { Command } from 'commander';
import pino from 'pino';
type Logger = pino.Logger;
import pretty from 'pino-pretty';
import { builtinSinks, builtinSources } from '../../connectors/registry.js';
import { openLog } from '../log/open.js';
import { openCoordinator } from '../pipeline/open-coordinator.js';
import { PipelineRuntime } from '../pipeline/runtime.js';
import { loadAndCheck, pipelinesSchema, type Registry } from '../pipeline/setup.js';
import { Metrics } from '../admin/metrics.js';
import { startAdminServer } from '../admin/server.js';
import { DEFAULT_ADMIN_LISTEN } from '../admin/listen-address.js';
import { optionParser } from './errors.js';
import { parseDuration } from '../util/units.js';
import { print } from './output.js';
import { DEFAULT_CONFIG_FILE, signalExitCode } from './open-log.js';

export const REGISTRY: Registry = { sources: builtinSources, sinks: builtinSinks };

interface RunOptions {
  config: string;
  drainTimeout: number;
}

function makeLogger(): Logger {
  const level = process.env.SLUICE_LOG_LEVEL ?? 'info';
  return process.stderr.isTTY
    ? pino({ level }, pretty({ colorize: true, destination: 2, ignore: 'pid,hostname', sync: true }))
    : pino({ level }, pino.destination({ dest: 2, sync: true }));
}

export function registerRunCommands(program: Command): void {
  program
    .command('run')
    .description('run every pipeline of the pipelines file')
    .option('-c, --config <file>', 'pipelines file', DEFAULT_CONFIG_FILE)
    .option('--drain-timeout <duration>', 'on shutdown, how long sinks may take to catch up', optionParser(parseDuration), 10_000)
    .action(async (options: RunOptions) => {
      process.exitCode = await run(options);
    });

  program
    .command('validate')
    .description('check a pipelines file: every error with file:line:column, and each pipeline\'s delivery guarantee')
    .option('-c, --config <file>', 'pipelines file', DEFAULT_CONFIG_FILE)
    .action(async (options: { config: string }) => {
      const { config, guarantees } = await loadAndCheck(options.config, REGISTRY);
      print(`${options.config}: valid (${config.pipelines.length} pipeline${config.pipelines.length === 1 ? '' : 's'})`);
      for (const g of guarantees) print(`  ${g.pipeline}: ${g.text}`);
    });
}

/** `sluice schema`: the composed JSON Schema of pipelines files (schemas/pipelines.schema.json). */
export function registerSchemaCommand(program: Command): void {
  program
    .command('schema')
    .description('print the JSON Schema of pipelines files, composed from the connectors\' schemas')
    .action(() => {
      process.stdout.write(`${JSON.stringify(pipelinesSchema(REGISTRY), null, 2)}\n`);
    });
}

async function run(options: RunOptions): Promise<number> {
  const logger = makeLogger();
  // Listen for signals before anything starts: a SIGTERM during start-up is a clean stop too.
  const stopRequested = new Promise<NodeJS.Signals>((resolveSignal) => {
    process.once('SIGINT', () => resolveSignal('SIGINT'));
    process.once('SIGTERM', () => resolveSignal('SIGTERM'));
  });
  const { config, guarantees, registry } = await loadAndCheck(options.config, REGISTRY);
  const log = await openLog(config.log, { onWarning: (m) => logger.warn(m) });
  // JetStream: workers share the work through leases on their own connection; local: one owner.
  let coordinator: Awaited<ReturnType<typeof openCoordinator>>;
  try {
    coordinator = await openCoordinator(config.log, (unit, reason) => logger.warn(`lease on ${unit} lost: ${reason}`));
  } catch (err) {
    await log.close().catch(() => undefined);
    throw err;
  }
  const metrics = new Metrics();
  const runtime = new PipelineRuntime(config, {
    log,
    sources: registry.sources,
    sinks: registry.sinks,
    transforms: registry.transforms ?? [],
    metrics,
    coordinator: coordinator.coordinator,
    logger: { info: (m) => logger.info(m), warn: (m) => logger.warn(m), error: (m) => logger.error(m) },
  });
  let admin: Awaited<ReturnType<typeof startAdminServer>> | null = null;
  let ready = false;
  try {
    await runtime.start();
    admin = await startAdminServer({
      listen: config.admin?.listen ?? DEFAULT_ADMIN_LISTEN,
      metrics,
      ready: () => ready,
      status: async () => ({ ...runtime.status(), topics: await topicsStatus(log) }),
    });
    ready = true;
  } catch (err) {
    await runtime.stop(0).catch(() => undefined);
    await coordinator.close().catch(() => undefined);
    await log.close().catch(() => undefined);
    throw err;
  }
  const shown = (p: string): string => relative(process.cwd(), p) || '.';
  const where =
    config.log.backend === 'jetstream'
      ? `JetStream log at ${config.log.jetstream!.servers.join(',')} (prefix ${config.log.jetstream!.prefix}), worker ${coordinator.coordinator.id}`
      : `log in ${shown(config.log.dataDir)}`;
  logger.info(`sluice is running ${config.pipelines.length} pipeline(s) from ${options.config}; ${where}`);
  for (const p of config.pipelines) {
    const g = guarantees.find((x) => x.pipeline === p.name)!;
    const outs = p.sinks.map((s) => (s.type === 'file' ? `${s.name} → ${shown(resolve(config.baseDir, String(s.config.path)))}` : `${s.name} (${s.type})`));
    logger.info(`pipeline ${p.name}: ${p.source?.type ?? 'topic'} → ${p.topic} → ${outs.join(', ') || 'no sinks'} [${g.text}]`);
  }
  logger.info(`admin: ${admin.url}  (status page ${admin.url}/, metrics ${admin.url}/metrics, JSON ${admin.url}/api/status)`);
  logger.info(
    config.log.backend === 'jetstream'
      ? `read a topic: npx sluice consume <topic> -c ${options.config}`
      : `read the topic: npx sluice consume <topic> -c ${options.config} (stop sluice run first: one process owns the data directory)`,
  );

  const signal = await stopRequested;
  const second = (s: NodeJS.Signals): void => {
    logger.warn(`second ${s}: exiting now; the log recovers to its last commit on the next start`);
    process.exit(signalExitCode(s));
  };
  process.on('SIGINT', second);
  process.on('SIGTERM', second);
  logger.info(`${signal}: stopping sources, draining sinks (up to ${options.drainTimeout} ms)`);
  ready = false;
  const drained = await runtime.stop(options.drainTimeout);
  await admin.close();
  await coordinator.close();
  await log.close();
  logger.info(drained ? 'stopped cleanly' : 'stopped; sinks did not catch up within the drain timeout (they resume where they stopped)');
  return drained ? 0 : 1;
}

async function topicsStatus(log: import('../log/types.js').Log): Promise<unknown[]> {
  const out = [];
  for (const name of await log.listTopics()) {
    const d = await log.describeTopic(name);
    out.push({
      name,
      partitions: d.partitionDetails.map((p) => ({ partition: p.partition, start_offset: p.startOffset, end_offset: p.endOffset, bytes: p.bytes })),
    });
  }
  return out;
}
