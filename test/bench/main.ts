/**
 * `npm run bench -- <name> [options]`: runs one benchmark (or all) and prints its figures.
 * Figures go to docs/performance.md by hand, with the command and the machine.
 */
import { spawnSync } from 'node:child_process';
import { benchFile } from './file.js';
import { benchLog } from './log.js';
import { benchPipeline } from './pipeline.js';
import { benchPostgresCdc } from './postgres-cdc.js';
import { benchPostgresSink } from './postgres-sink.js';

const benches: Record<string, (args: string[]) => Promise<string[]>> = {
  log: benchLog,
  pipeline: benchPipeline,
  file: benchFile,
  'postgres-cdc': benchPostgresCdc,
  'postgres-sink': benchPostgresSink,
};

/**
 * Benches that run pipelines in this process get Node as `sluice run` has it (the bin's
 * `#!/usr/bin/env -S node --max-semi-space-size=32` line, docs/operations.md): they run in a child
 * Node with that flag. The others run with Node's defaults, as an embedding program would.
 */
const AS_SLUICE_RUN = ['file', 'pipeline'];
const SLUICE_RUN_FLAGS = ['--max-semi-space-size=32'];

/** Names that run several of the above; `all` skips them. */
const groups: Record<string, string[]> = {
  postgres: ['postgres-cdc', 'postgres-sink'],
};

async function main(): Promise<void> {
  const [name = 'all', ...args] = process.argv.slice(2);
  const names = name === 'all' ? Object.keys(benches) : (groups[name] ?? [name]);
  for (const n of names) {
    const bench = benches[n];
    if (bench === undefined) {
      console.error(`sluice bench: unknown benchmark "${n}" (known: ${[...Object.keys(benches), ...Object.keys(groups)].join(', ')})`);
      process.exit(2);
    }
    if (AS_SLUICE_RUN.includes(n) && !SLUICE_RUN_FLAGS.every((f) => process.execArgv.includes(f))) {
      const child = spawnSync(process.execPath, [...process.execArgv, ...SLUICE_RUN_FLAGS, process.argv[1]!, n, ...args], { stdio: 'inherit' });
      if (child.status !== 0) process.exit(child.status ?? 1);
      continue;
    }
    console.log(`# bench ${n} ${args.join(' ')}`);
    for (const line of await bench(args)) console.log(line);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
