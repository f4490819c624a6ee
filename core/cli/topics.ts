/** `sluice topics create|list|describe|delete`. */
import type { Command } from 'commander';

import type { TopicConfig, TopicDescription } from '../log/types.js';
import { optionParser } from './errors.js';
import { addLogOptions, verbose, withLog } from './open-log.js';
import type { LogLocationOptions } from './open-log.js';
import { formatTable, print, printJson } from './output.js';
import { formatBytes, formatDuration, parseBytes, parseDuration, parseInteger } from '../util/units.js';

interface CreateOptions extends LogLocationOptions {
  partitions: number;
  retentionMs?: number;
  retentionBytes?: number;
  segmentBytes?: number;
  segmentMs?: number;
}

interface DescribeOptions extends LogLocationOptions {
  json?: boolean;
}

export function registerTopicCommands(program: Command): void {
  const topics = program.command('topics').description('create, list, describe and delete topics');

  addLogOptions(
    topics
      .command('create')
      .description('create a topic')
      .argument('<name>', 'topic name (letters, digits, ".", "_", "-")')
      .requiredOption('--partitions <n>', 'number of partitions', optionParser((v) => parseInteger(v, 1)))
      .option('--retention-ms <duration>', 'delete data older than this (e.g. 7d, 12h; a bare number is ms)', optionParser(parseDuration))
      .option('--retention-bytes <size>', 'keep at most this much per partition (e.g. 10GiB)', optionParser(parseBytes))
      .option('--segment-bytes <size>', 'roll segment files at this size (e.g. 128MiB)', optionParser(parseBytes))
      .option('--segment-ms <duration>', 'roll segment files at this age (e.g. 1d)', optionParser(parseDuration)),
  ).action(async (name: string, options: CreateOptions, command: Command) => {
    const config: TopicConfig = { partitions: options.partitions };
    if (options.retentionMs !== undefined || options.retentionBytes !== undefined) {
      config.retention = {};
      if (options.retentionMs !== undefined) config.retention.maxAgeMs = options.retentionMs;
      if (options.retentionBytes !== undefined) config.retention.maxBytes = options.retentionBytes;
    }
    if (options.segmentBytes !== undefined) config.segmentBytes = options.segmentBytes;
    if (options.segmentMs !== undefined) config.segmentMs = options.segmentMs;
    const created = await withLog(options, ({ log }) => log.createTopic(name, config), {
      create: true,
      verbose: verbose(command),
    });
    print(`created topic ${created.name} with ${created.partitions} partition${created.partitions === 1 ? '' : 's'}`);
  });

  addLogOptions(topics.command('list').description('list topic names, one a line')).action(
    async (options: LogLocationOptions, command: Command) => {
      const names = await withLog(options, ({ log }) => log.listTopics(), { verbose: verbose(command) });
      for (const name of [...names].sort()) print(name);
    },
  );

  addLogOptions(
    topics
      .command('describe')
      .description('show a topic: settings and, per partition, offsets, bytes and segments')
      .argument('<name>', 'topic name')
      .option('--json', 'print JSON'),
  ).action(async (name: string, options: DescribeOptions, command: Command) => {
    const description = await withLog(options, ({ log }) => log.describeTopic(name), { verbose: verbose(command) });
    if (options.json) printJson(description);
    else print(formatDescription(description));
  });

  addLogOptions(
    topics.command('delete').description('delete a topic and all its data').argument('<name>', 'topic name'),
  ).action(async (name: string, options: LogLocationOptions, command: Command) => {
    await withLog(options, ({ log }) => log.deleteTopic(name), { verbose: verbose(command) });
    print(`deleted topic ${name}`);
  });
}

export function formatDescription(d: TopicDescription): string {
  const retention =
    [
      d.retention.maxAgeMs === undefined ? undefined : `max age ${formatDuration(d.retention.maxAgeMs)}`,
      d.retention.maxBytes === undefined ? undefined : `max ${formatBytes(d.retention.maxBytes)} per partition`,
    ]
      .filter((part) => part !== undefined)
      .join(', ') || 'none (kept forever)';
  const header = [
    `topic:       ${d.name}`,
    `partitions:  ${d.partitions}`,
    `retention:   ${retention}`,
    `segments:    roll at ${formatBytes(d.segmentBytes)} or ${formatDuration(d.segmentMs)}`,
    `created:     ${new Date(d.createdAt).toISOString()}`,
  ];
  const parts = [...d.partitionDetails].sort((a, b) => a.partition - b.partition);
  const rows = parts.map((p) => [
    String(p.partition),
    String(p.startOffset),
    String(p.endOffset),
    formatBytes(p.bytes),
    String(p.segments),
  ]);
  const sum = (pick: (p: (typeof parts)[number]) => number) => parts.reduce((n, p) => n + pick(p), 0);
  rows.push([
    'total',
    '',
    '',
    formatBytes(sum((p) => p.bytes)),
    String(sum((p) => p.segments)),
  ]);
  return `${header.join('\n')}\n\n${formatTable(['PARTITION', 'START', 'END', 'BYTES', 'SEGMENTS'], rows)}`;
}
