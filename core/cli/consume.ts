/**
 * `sluice consume TOPIC`: records out as NDJSON on stdout.
 *
 * Partitions are read in turn (round-robin, one bounded read each), so memory stays bounded and
 * each partition's records come out in offset order — hence, per key, in the order produced.
 * Without `--follow` the consumer stops at the end offsets seen when it started; with it, it waits
 * on every partition at once when all are drained and goes on until SIGINT/SIGTERM.
 * With `--group`, offsets are committed after the records are written out (at most once a second,
 * before idling in `--follow`, and at exit): a crash may repeat records on the next run, never
 * skip them.
 */
import type { Writable } from 'node:stream';

import type { Command } from 'commander';

import { BadPartitionError, OffsetOutOfRangeError } from '../log/errors.js';
import { parseOffsetSpec, resolveOffset } from '../log/offset-spec.js';
import type { OffsetSpec } from '../log/offset-spec.js';
import type { GroupOffset, Log, LogRecord, ReadResult } from '../log/types.js';
import { OutputError, optionParser } from './errors.js';
import { addLogOptions, signalExitCode, verbose, withLog } from './open-log.js';
import type { LogLocationOptions } from './open-log.js';
import { parseInteger } from '../util/units.js';

export interface ConsumeOptions {
  /** Where to start; default: the group's committed offsets, else earliest. */
  from?: OffsetSpec;
  group?: string;
  partition?: number;
  follow?: boolean;
  limit?: number;
  envelope?: boolean;
  signal?: AbortSignal;
  /** Default process.stdout. */
  output?: Writable;
  /** Notices (offsets moved by retention, ...). Default: stderr. */
  warn?: (message: string) => void;
  /** Per read. Default 1 MiB. */
  maxBytes?: number;
  /** How long one wait for new records lasts in follow mode. Default 1000 ms. */
  waitMs?: number;
  /** Least time between two group commits while running. Default 1000 ms. */
  commitIntervalMs?: number;
}

export interface ConsumeSummary {
  records: number;
  stoppedBy: 'end' | 'limit' | 'signal' | 'output-closed';
}

interface PartitionState {
  partition: number;
  /** Next offset to read. */
  next: number;
  /** Exclusive end (end offset at start without --follow). */
  stop: number;
  /** Next offset after the last record whose write completed: what the group may commit. */
  written: number | undefined;
  committed: number | undefined;
}

const NEWLINE = Buffer.from('\n');
const MiB = 1024 * 1024;

export async function consume(log: Log, topic: string, options: ConsumeOptions = {}): Promise<ConsumeSummary> {
  const out = options.output ?? process.stdout;
  const warn = options.warn ?? ((message: string) => process.stderr.write(`sluice: ${message}\n`));
  const maxBytes = options.maxBytes ?? MiB;
  const waitMs = options.waitMs ?? 1000;
  const commitIntervalMs = options.commitIntervalMs ?? 1000;
  const { group, limit, signal } = options;

  const description = await log.describeTopic(topic);
  let partitions = description.partitionDetails.map((p) => p.partition).sort((a, b) => a - b);
  if (options.partition !== undefined) {
    if (!partitions.includes(options.partition)) {
      throw new BadPartitionError(topic, options.partition, description.partitions);
    }
    partitions = [options.partition];
  }

  const committed = new Map<number, number>();
  if (group !== undefined) {
    for (const o of await log.fetchOffsets(group, topic)) committed.set(o.partition, o.offset);
  }
  const now = Date.now();
  const states: PartitionState[] = [];
  for (const partition of partitions) {
    const details = description.partitionDetails.find((p) => p.partition === partition)!;
    let next: number;
    if (options.from !== undefined) {
      next = await resolveOffset(log, topic, partition, options.from, { description, now });
    } else {
      const offset = committed.get(partition);
      next = offset ?? details.startOffset;
      if (next < details.startOffset) {
        warn(`group ${group}: offset ${next} of ${topic}/${partition} was removed by retention; starting at ${details.startOffset}`);
        next = details.startOffset;
      } else if (next > details.endOffset) {
        warn(`group ${group}: offset ${next} of ${topic}/${partition} is past the end; starting at ${details.endOffset}`);
        next = details.endOffset;
      }
    }
    const stop = options.follow ? Number.POSITIVE_INFINITY : details.endOffset;
    states.push({ partition, next, stop, written: undefined, committed: committed.get(partition) });
  }

  const output = new Output(out);
  const topicJson = JSON.stringify(topic);
  let count = 0;
  let stoppedBy: ConsumeSummary['stoppedBy'] | undefined;
  let lastCommit = Date.now();

  const checkStop = () => {
    if (stoppedBy) return true;
    if (output.closed) stoppedBy = 'output-closed';
    else if (signal?.aborted) stoppedBy = 'signal';
    else if (limit !== undefined && count >= limit) stoppedBy = 'limit';
    return stoppedBy !== undefined;
  };

  const commit = async (force: boolean) => {
    if (group === undefined) return;
    if (!force && Date.now() - lastCommit < commitIntervalMs) return;
    const offsets: GroupOffset[] = [];
    for (const s of states) {
      if (s.written !== undefined && s.written !== s.committed) offsets.push({ topic, partition: s.partition, offset: s.written });
    }
    lastCommit = Date.now();
    if (offsets.length === 0) return;
    await log.commitOffsets(group, offsets);
    for (const o of offsets) states.find((s) => s.partition === o.partition)!.committed = o.offset;
  };

  /** Writes out the records of one read that are in range and within the limit; advances `next`. */
  const emit = async (state: PartitionState, result: ReadResult) => {
    const parts: Buffer[] = [];
    let next = state.next;
    let cut = false;
    for (const record of result.records) {
      if (record.offset < state.next) continue;
      if (record.offset >= state.stop || (limit !== undefined && count >= limit)) {
        cut = true;
        break;
      }
      if (options.envelope) parts.push(Buffer.from(envelope(topicJson, state.partition, record)), NEWLINE);
      else parts.push(record.value, NEWLINE);
      count++;
      next = record.offset + 1;
    }
    // Offsets need not be dense (JetStream): without a cut, continue where the log says.
    state.next = cut ? next : Math.max(next, result.nextOffset);
    if (parts.length === 0) return;
    const written = state.next;
    await output.write(Buffer.concat(parts), () => {
      state.written = written;
    });
    await commit(false);
  };

  /** A read that moves past offsets retention removed meanwhile instead of failing. */
  const read = async (state: PartitionState, readOptions: { maxBytes: number; maxWaitMs?: number; signal?: AbortSignal }) => {
    try {
      return await log.read(topic, state.partition, state.next, readOptions);
    } catch (err) {
      if (err instanceof OffsetOutOfRangeError) {
        const to = err.offset < err.startOffset ? err.startOffset : err.endOffset;
        warn(`offset ${err.offset} of ${topic}/${state.partition} is no longer in the log (${err.startOffset}..${err.endOffset}); continuing at ${to}`);
        state.next = to;
        return undefined;
      }
      if (readOptions.signal?.aborted) return undefined;
      throw err;
    }
  };

  let failed = false;
  try {
    while (!checkStop()) {
      const active = states.filter((s) => s.next < s.stop);
      if (active.length === 0) {
        stoppedBy = 'end';
        break;
      }
      let progressed = false;
      for (const state of active) {
        if (checkStop()) break;
        const before = state.next;
        const result = await read(state, { maxBytes, signal });
        if (result) await emit(state, result);
        if (state.next !== before) progressed = true;
      }
      if (progressed || checkStop()) continue;
      if (!options.follow) {
        // Nothing more below the end offsets seen at start (records were removed meanwhile).
        stoppedBy = 'end';
        break;
      }
      // About to idle: commit what was written, so a crash while waiting repeats nothing.
      await commit(true);
      await waitForRecords(active);
    }
  } catch (err) {
    failed = true;
    throw err;
  } finally {
    await output.settled();
    try {
      await commit(true);
    } catch (err) {
      // After a failure, that failure is the one to report.
      if (!failed) throw err; // eslint-disable-line no-unsafe-finally
    }
  }
  if (output.error) throw new OutputError(output.error);
  return { records: count, stoppedBy: stoppedBy ?? 'end' };

  /**
   * Every partition is drained: wait on all of them at once, and take what any of them gets.
   * The first read to return records ends the others' wait.
   */
  async function waitForRecords(active: PartitionState[]) {
    const round = new AbortController();
    const waitSignal = signal ? AbortSignal.any([signal, round.signal]) : round.signal;
    const results = await Promise.all(
      active.map(async (state) => {
        const result = await read(state, { maxBytes, maxWaitMs: waitMs, signal: waitSignal });
        if (result && result.records.length > 0) round.abort();
        return result;
      }),
    );
    for (const [i, result] of results.entries()) {
      if (result && !checkStop()) await emit(active[i]!, result);
    }
  }
}

/** One record as the envelope line: value as JSON when it is JSON, else as a string. */
function envelope(topicJson: string, partition: number, record: LogRecord): string {
  const text = record.value.toString('utf8');
  let value: string;
  try {
    const parsed: unknown = JSON.parse(text);
    // The stored JSON text is used as it is, unless it spans lines (NDJSON must not).
    value = /[\n\r\u2028\u2029]/.test(text) ? JSON.stringify(parsed) : text.trim();
  } catch {
    value = JSON.stringify(text);
  }
  return (
    `{"topic":${topicJson},"partition":${partition},"offset":${record.offset},` +
    `"timestamp":${JSON.stringify(new Date(record.timestamp).toISOString())},` +
    `"key":${JSON.stringify(record.key)},"headers":${JSON.stringify(record.headers)},"value":${value}}`
  );
}

/**
 * stdout with backpressure, and with a reader that may go away: EPIPE (`| head`) marks it closed
 * and ends consumption quietly; any other write error is kept and reported.
 */
class Output {
  closed = false;
  error: unknown;
  private inflight: Promise<void> = Promise.resolve();

  constructor(private readonly stream: Writable) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      this.closed = true;
      if (err.code !== 'EPIPE' && err.code !== 'ERR_STREAM_DESTROYED') this.error ??= err;
    });
  }

  /** Resolves once the data is handed to the OS (or the output closed); `done` runs only on success. */
  write(data: Buffer, done: () => void): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.inflight = new Promise<void>((resolve) => {
      this.stream.write(data, (err) => {
        if (err) this.closed = true;
        else done();
        resolve();
      });
    });
    return this.inflight;
  }

  settled(): Promise<void> {
    return this.inflight;
  }
}

interface ConsumeCommandOptions extends LogLocationOptions, Omit<ConsumeOptions, 'signal'> {}

export function registerConsumeCommand(program: Command): void {
  addLogOptions(
    program
      .command('consume')
      .description('write the records of a topic to stdout as NDJSON (the stored values, one a line)')
      .argument('<topic>', 'topic to read')
      .option(
        '--from <position>',
        'earliest, latest, an offset, an ISO time, or a duration back from now (10m, 2h); default: the group\'s offsets, else earliest',
        optionParser(parseOffsetSpec),
      )
      .option('--group <group>', 'consumer group: start at its committed offsets and commit as records are written')
      .option('--partition <n>', 'read only this partition', optionParser((v) => parseInteger(v, 0)))
      .option('-f, --follow', 'keep waiting for new records until interrupted')
      .option('--limit <n>', 'stop after this many records', optionParser((v) => parseInteger(v, 1, 'limit')))
      .option('--envelope', 'one JSON object per record: topic, partition, offset, timestamp, key, headers, value'),
  ).action(async (topic: string, options: ConsumeCommandOptions, command: Command) => {
    const { summary, interruptedBy } = await withLog(
      options,
      async ({ log, signal, interruptedBy }) => {
        const consumed = await consume(log, topic, {
          from: options.from,
          group: options.group,
          partition: options.partition,
          follow: options.follow,
          limit: options.limit,
          envelope: options.envelope,
          signal,
        });
        return { summary: consumed, interruptedBy: interruptedBy() };
      },
      { verbose: verbose(command) },
    );
    if (verbose(command)) {
      process.stderr.write(`sluice: consumed ${summary.records} records from ${topic} (stopped by ${summary.stoppedBy})\n`);
    }
    // A signal is how --follow is meant to end; otherwise it cut the output short.
    if (interruptedBy && !options.follow) process.exitCode = signalExitCode(interruptedBy);
  });
}
