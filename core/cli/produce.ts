/**
 * `sluice produce TOPIC`: NDJSON on stdin, one record a line.
 *
 * Each non-blank line must be JSON; the record's value is the line's own bytes (never
 * re-serialized). Lines are gathered into appends of up to 1000 records or 1 MiB, and a partial
 * batch is sent when the input pauses, so `tail -f | sluice produce` is not held back. One append
 * is in flight at a time while the next batch is parsed: memory stays bounded (stdin is not read
 * while a full batch waits), and appends commit in input order, so what the log holds is always a
 * prefix of the input — after a bad line, a failed append, a signal or a crash alike.
 */
import { Option } from 'commander';
import type { Command } from 'commander';

import { BadPartitionError } from '../log/errors.js';
import { LOCAL_DEFAULTS } from '../log/local/options.js';
import type { AppendResult, Log, ProducerRecord } from '../log/types.js';
import { BadInputError, optionParser } from './errors.js';
import { addLogOptions, signalExitCode, verbose, withLog } from './open-log.js';
import type { LogLocationOptions } from './open-log.js';
import { parseInteger } from '../util/units.js';

export interface ProduceOptions {
  /** Top-level field (or dot path) of each line's JSON that gives the record key. */
  key?: string;
  partition?: number;
  acks?: 'durable' | 'written';
  signal?: AbortSignal;
  maxBatchRecords?: number;
  maxBatchBytes?: number;
  /** Longest line accepted; longer is a bad line (memory stays bounded). */
  maxLineBytes?: number;
  /** Send a partial batch when no input arrived for this long. */
  lingerMs?: number;
}

export interface ProduceSummary {
  records: number;
  /** Records appended per partition. */
  partitions: Map<number, number>;
  /** Records whose key field was missing or null (they have no key). */
  withoutKey: number;
  interrupted: boolean;
}

const NEWLINE = 0x0a;
const MiB = 1024 * 1024;

/**
 * Appends the NDJSON of `input` to `topic`. Resolves when everything is appended; a bad line
 * rejects with `BadInputError` after appending every line before it and none after it.
 */
export async function produceNdjson(
  log: Log,
  topic: string,
  input: AsyncIterable<Buffer | string>,
  options: ProduceOptions = {},
): Promise<ProduceSummary> {
  const maxBatchRecords = options.maxBatchRecords ?? 1000;
  const maxBatchBytes = options.maxBatchBytes ?? MiB;
  const maxLineBytes = options.maxLineBytes ?? LOCAL_DEFAULTS.maxRecordBytes;
  const lingerMs = options.lingerMs ?? 100;
  const acks = options.acks ?? 'durable';
  const keyPath = options.key === undefined ? undefined : options.key.split('.');
  const decoder = new TextDecoder('utf-8', { fatal: true });

  const description = await log.describeTopic(topic);
  if (options.partition !== undefined && options.partition >= description.partitions) {
    throw new BadPartitionError(topic, options.partition, description.partitions);
  }

  const summary: ProduceSummary = { records: 0, partitions: new Map(), withoutKey: 0, interrupted: false };
  let batch: ProducerRecord[] = [];
  let batchBytes = 0;
  let inflight: Promise<void> | undefined;
  let failure: { error: unknown } | undefined;
  let lineNumber = 0;

  const account = (result: AppendResult) => {
    for (const b of result.batches) {
      summary.records += b.count;
      summary.partitions.set(b.partition, (summary.partitions.get(b.partition) ?? 0) + b.count);
    }
  };
  const throwIfFailed = () => {
    if (failure) throw failure.error;
  };
  /** Starts appending the current batch once the previous append is done (order = input order). */
  const flush = async () => {
    if (inflight) await inflight;
    throwIfFailed();
    if (batch.length === 0) return;
    const records = batch;
    batch = [];
    batchBytes = 0;
    inflight = log.append(topic, records, { acks }).then(account, (error: unknown) => {
      failure = { error };
    });
  };
  const drain = async () => {
    await flush();
    if (inflight) await inflight;
    throwIfFailed();
  };

  /** Parses one line (without its newline) into the batch; a string is a bad line's reason. */
  const addLine = (line: Buffer): string | undefined => {
    lineNumber++;
    let start = 0;
    let end = line.length;
    while (start < end && isSpace(line[start]!)) start++;
    while (end > start && isSpace(line[end - 1]!)) end--;
    if (start === end) return undefined;
    const value = line.subarray(start, end);
    let text: string;
    try {
      text = decoder.decode(value);
    } catch {
      return 'not valid UTF-8';
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      return `invalid JSON: ${shorten((err as Error).message)}`;
    }
    const record: ProducerRecord = { value };
    if (keyPath) {
      const key = keyOf(parsed, options.key!, keyPath);
      if (typeof key === 'object') return key.error;
      if (key === undefined) summary.withoutKey++;
      else record.key = key;
    }
    if (options.partition !== undefined) record.partition = options.partition;
    batch.push(record);
    batchBytes += value.length;
    return undefined;
  };

  const iterator = input[Symbol.asyncIterator]();
  const stopReading = () => {
    // A stream is destroyed directly: iterator.return() would queue behind the pending next().
    const stream = input as { destroy?: () => void };
    if (typeof stream.destroy === 'function') stream.destroy();
    else void Promise.resolve(iterator.return?.()).catch(() => undefined);
  };
  const aborted = abortPromise(options.signal);
  let carry: Buffer[] = [];
  let carryBytes = 0;
  let pending = iterator.next();
  try {
    for (;;) {
      const next = options.signal?.aborted
        ? 'aborted'
        : await nextChunk(pending, aborted, batch.length > 0 ? lingerMs : undefined);
      if (next === 'aborted') {
        summary.interrupted = true;
        pending.catch(() => undefined);
        stopReading();
        break;
      }
      if (next === 'idle') {
        await flush();
        continue;
      }
      if (next.done) {
        if (carryBytes > 0) {
          const reason = addLine(Buffer.concat(carry, carryBytes));
          if (reason !== undefined) throw new BadInputError(lineNumber, reason);
        }
        break;
      }
      pending = iterator.next();
      // From here on a rejection of `pending` is handled by the next await; keep Node quiet meanwhile.
      pending.catch(() => undefined);

      const chunk = typeof next.value === 'string' ? Buffer.from(next.value) : next.value;
      let from = 0;
      for (;;) {
        const newline = chunk.indexOf(NEWLINE, from);
        if (newline === -1) break;
        let line = chunk.subarray(from, newline);
        if (carryBytes > 0) {
          carry.push(line);
          line = Buffer.concat(carry, carryBytes + line.length);
          carry = [];
          carryBytes = 0;
        }
        from = newline + 1;
        if (line.length > maxLineBytes) throw new BadInputError(lineNumber + 1, `longer than ${maxLineBytes} bytes`);
        const reason = addLine(line);
        if (reason !== undefined) throw new BadInputError(lineNumber, reason);
        if (batch.length >= maxBatchRecords || batchBytes >= maxBatchBytes) await flush();
      }
      if (from < chunk.length) {
        carry.push(chunk.subarray(from));
        carryBytes += chunk.length - from;
        if (carryBytes > maxLineBytes) throw new BadInputError(lineNumber + 1, `longer than ${maxLineBytes} bytes`);
      }
      throwIfFailed();
    }
  } catch (err) {
    stopReading();
    if (err instanceof BadInputError) {
      // Everything before the bad line goes in; nothing after it was parsed.
      await drain();
      throw new BadInputError(
        err.line,
        `${err.message.replace(/^line \d+: /, '')} (${appendedBefore(summary.records)})`,
      );
    }
    // An append failed, or the input broke: wait for the append in flight, report the first cause.
    if (inflight) await inflight;
    throw failure ? failure.error : err;
  }
  await drain();
  return summary;
}

function appendedBefore(records: number): string {
  if (records === 0) return 'nothing was appended';
  return records === 1 ? 'the 1 record before it was appended' : `the ${records} records before it were appended`;
}

function isSpace(byte: number): boolean {
  return byte === 0x20 || byte === 0x09 || byte === 0x0d || byte === 0x0a;
}

function shorten(message: string, max = 160): string {
  return message.length <= max ? message : `${message.slice(0, max - 1)}…`;
}

/** The key from a field or dot path: a string (numbers and booleans as text), undefined when absent. */
function keyOf(value: unknown, field: string, path: string[]): string | undefined | { error: string } {
  let current: unknown = value;
  // A top-level field whose name contains dots wins over the path reading.
  if (isObject(value) && Object.hasOwn(value, field)) current = value[field];
  else {
    for (const part of path) {
      if (!isObject(current)) return undefined;
      current = current[part];
    }
  }
  if (current === undefined || current === null) return undefined;
  if (typeof current === 'string') return current;
  if (typeof current === 'number' || typeof current === 'boolean') return String(current);
  return { error: `key field ${field} holds ${Array.isArray(current) ? 'an array' : 'an object'}; expected a string or a number` };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function abortPromise(signal: AbortSignal | undefined): Promise<'aborted'> | undefined {
  if (!signal) return undefined;
  if (signal.aborted) return Promise.resolve('aborted');
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve('aborted'), { once: true }));
}

/** The next chunk, or 'aborted' when the signal fires first, or 'idle' when `idleMs` pass first. */
async function nextChunk<T>(
  pending: Promise<IteratorResult<T>>,
  aborted: Promise<'aborted'> | undefined,
  idleMs: number | undefined,
): Promise<IteratorResult<T> | 'aborted' | 'idle'> {
  const racers: Promise<IteratorResult<T> | 'aborted' | 'idle'>[] = [pending];
  if (aborted) racers.push(aborted);
  let timer: NodeJS.Timeout | undefined;
  if (idleMs !== undefined) racers.push(new Promise((resolve) => (timer = setTimeout(() => resolve('idle'), idleMs))));
  try {
    return await Promise.race(racers);
  } finally {
    if (timer) clearTimeout(timer);
  }
}

export function formatSummary(topic: string, summary: ProduceSummary, keyField?: string): string {
  const parts = [...summary.partitions.entries()].sort((a, b) => a[0] - b[0]).map(([p, n]) => `${p}: ${n}`);
  let text = `produced ${summary.records} record${summary.records === 1 ? '' : 's'} to ${topic}`;
  if (parts.length > 0) text += ` (partition${parts.length === 1 ? '' : 's'} ${parts.join(', ')})`;
  if (keyField !== undefined && summary.withoutKey > 0) text += `; ${summary.withoutKey} without ${keyField}, so without key`;
  return text;
}

interface ProduceCommandOptions extends LogLocationOptions {
  key?: string;
  partition?: number;
  acks: 'durable' | 'written';
  quiet?: boolean;
}

export function registerProduceCommand(program: Command): void {
  addLogOptions(
    program
      .command('produce')
      .description('append NDJSON from stdin to a topic, one record a line (the line is the value)')
      .argument('<topic>', 'topic to append to')
      .option('--key <field>', 'take the record key from this field of each line (dot path allowed, e.g. user.id)')
      .option('--partition <n>', 'append every record to this partition', optionParser((v) => parseInteger(v, 0)))
      .addOption(
        new Option('--acks <level>', 'durable: fsynced (survives a power cut); written: in the OS (survives a crash)')
          .choices(['durable', 'written'])
          .default('durable'),
      )
      .option('-q, --quiet', 'do not print the summary on stderr'),
  ).action(async (topic: string, options: ProduceCommandOptions, command: Command) => {
    const { summary, interruptedBy } = await withLog(
      options,
      async ({ log, signal, interruptedBy }) => {
        const produced = await produceNdjson(log, topic, process.stdin, {
          key: options.key,
          partition: options.partition,
          acks: options.acks,
          signal,
        });
        return { summary: produced, interruptedBy: interruptedBy() };
      },
      { verbose: verbose(command) },
    );
    if (!options.quiet) {
      const prefix = interruptedBy ? `interrupted by ${interruptedBy}: ` : '';
      process.stderr.write(`${prefix}${formatSummary(topic, summary, options.key)}\n`);
    }
    if (interruptedBy) process.exitCode = signalExitCode(interruptedBy);
  });
}
