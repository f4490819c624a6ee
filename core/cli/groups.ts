/** `sluice groups list|describe|reset|delete`: consumer-group offsets. */
import type { Command } from 'commander';

import { UnknownGroupError, UnknownTopicError } from '../log/errors.js';
import { parseOffsetSpec, resolveOffset } from '../log/offset-spec.js';
import type { OffsetSpec } from '../log/offset-spec.js';
import type { GroupOffset, Log } from '../log/types.js';
import { optionParser } from './errors.js';
import { addLogOptions, verbose, withLog } from './open-log.js';
import type { LogLocationOptions } from './open-log.js';
import { formatTable, print, printJson } from './output.js';
import { parseInteger } from '../util/units.js';

export interface GroupPartitionLag {
  topic: string;
  partition: number;
  /** Next offset the group will read; null when it never committed for this partition. */
  committed: number | null;
  startOffset: number | null;
  endOffset: number | null;
  /** endOffset − committed; null when either is unknown. */
  lag: number | null;
}

/** Per partition of every topic the group committed for: committed offset, end offset and lag. */
export async function describeGroup(log: Log, group: string): Promise<GroupPartitionLag[]> {
  if (!(await log.listGroups()).includes(group)) throw new UnknownGroupError(group);
  const offsets = await log.fetchOffsets(group);
  const byTopic = new Map<string, Map<number, number>>();
  for (const o of offsets) {
    if (!byTopic.has(o.topic)) byTopic.set(o.topic, new Map());
    byTopic.get(o.topic)!.set(o.partition, o.offset);
  }
  const rows: GroupPartitionLag[] = [];
  for (const topic of [...byTopic.keys()].sort()) {
    const committed = byTopic.get(topic)!;
    let details;
    try {
      details = (await log.describeTopic(topic)).partitionDetails;
    } catch (err) {
      if (!(err instanceof UnknownTopicError)) throw err;
      // The topic was deleted; the group's offsets for it remain until the group is reset or deleted.
      for (const [partition, offset] of [...committed.entries()].sort((a, b) => a[0] - b[0])) {
        rows.push({ topic, partition, committed: offset, startOffset: null, endOffset: null, lag: null });
      }
      continue;
    }
    for (const p of [...details].sort((a, b) => a.partition - b.partition)) {
      const offset = committed.get(p.partition);
      rows.push({
        topic,
        partition: p.partition,
        committed: offset ?? null,
        startOffset: p.startOffset,
        endOffset: p.endOffset,
        lag: offset === undefined ? null : Math.max(0, p.endOffset - Math.max(offset, p.startOffset)),
      });
    }
  }
  return rows;
}

export interface ResetPlan {
  topic: string;
  partition: number;
  from: number | null;
  to: number;
}

/** Moves the group's offsets for a topic (all partitions, or one) to the spec; `dryRun` only plans. */
export async function resetGroup(
  log: Log,
  group: string,
  topic: string,
  spec: OffsetSpec,
  options: { partition?: number; dryRun?: boolean } = {},
): Promise<ResetPlan[]> {
  const description = await log.describeTopic(topic);
  const current = new Map((await log.fetchOffsets(group, topic)).map((o) => [o.partition, o.offset]));
  const partitions =
    options.partition !== undefined ? [options.partition] : description.partitionDetails.map((p) => p.partition).sort((a, b) => a - b);
  const now = Date.now();
  const plan: ResetPlan[] = [];
  for (const partition of partitions) {
    const to = await resolveOffset(log, topic, partition, spec, { description, now });
    plan.push({ topic, partition, from: current.get(partition) ?? null, to });
  }
  if (!options.dryRun) {
    await log.commitOffsets(
      group,
      plan.map((p): GroupOffset => ({ topic, partition: p.partition, offset: p.to })),
    );
  }
  return plan;
}

const dash = (value: number | null) => (value === null ? '-' : String(value));

export function registerGroupCommands(program: Command): void {
  const groups = program.command('groups').description('list, describe, reset and delete consumer groups');

  addLogOptions(groups.command('list').description('list consumer groups, one a line')).action(
    async (options: LogLocationOptions, command: Command) => {
      const names = await withLog(options, ({ log }) => log.listGroups(), { verbose: verbose(command) });
      for (const name of [...names].sort()) print(name);
    },
  );

  addLogOptions(
    groups
      .command('describe')
      .description("show a group's committed offsets, the end offsets and the lag, per topic and partition")
      .argument('<group>', 'consumer group')
      .option('--json', 'print JSON'),
  ).action(async (group: string, options: LogLocationOptions & { json?: boolean }, command: Command) => {
    const rows = await withLog(options, ({ log }) => describeGroup(log, group), { verbose: verbose(command) });
    if (options.json) {
      printJson(rows);
      return;
    }
    print(
      formatTable(
        ['TOPIC', 'PARTITION', 'COMMITTED', 'END', 'LAG'],
        rows.map((r) => [r.topic, String(r.partition), dash(r.committed), dash(r.endOffset), dash(r.lag)]),
      ),
    );
  });

  addLogOptions(
    groups
      .command('reset')
      .description("move a group's offsets for a topic")
      .argument('<group>', 'consumer group (created when new)')
      .requiredOption('--topic <topic>', 'topic whose offsets to move')
      .requiredOption(
        '--to <position>',
        'earliest, latest, an offset, an ISO time, or a duration back from now (10m, 2h)',
        optionParser(parseOffsetSpec),
      )
      .option('--partition <n>', 'only this partition', optionParser((v) => parseInteger(v, 0)))
      .option('--dry-run', 'show the new offsets without committing them'),
  ).action(
    async (
      group: string,
      options: LogLocationOptions & { topic: string; to: OffsetSpec; partition?: number; dryRun?: boolean },
      command: Command,
    ) => {
      const plan = await withLog(
        options,
        ({ log }) => resetGroup(log, group, options.topic, options.to, { partition: options.partition, dryRun: options.dryRun }),
        { verbose: verbose(command) },
      );
      print(
        formatTable(
          ['TOPIC', 'PARTITION', 'OLD', 'NEW'],
          plan.map((p) => [p.topic, String(p.partition), dash(p.from), String(p.to)]),
        ),
      );
      if (options.dryRun) process.stderr.write('dry run: nothing was committed\n');
    },
  );

  addLogOptions(groups.command('delete').description('delete a consumer group and its offsets').argument('<group>', 'consumer group')).action(
    async (group: string, options: LogLocationOptions, command: Command) => {
      await withLog(
        options,
        async ({ log }) => {
          if (!(await log.listGroups()).includes(group)) throw new UnknownGroupError(group);
          await log.deleteGroup(group);
        },
        { verbose: verbose(command) },
      );
      print(`deleted group ${group}`);
    },
  );
}
