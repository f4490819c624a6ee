/**
 * Where to start reading a partition, as people write it: `earliest`, `latest`, an offset (`42`),
 * an ISO-8601 time (`2024-05-01T12:00:00Z`) or a duration back from now (`10m`, `2h`, `7d`,
 * `1h30m`). Used by `sluice consume --from`, `sluice groups reset --to` and the pipeline runtime.
 *
 * Parsing is pure; `resolveOffset` turns a spec into an offset of one partition through the Log.
 */
import { parseDuration } from '../util/units.js';
import { BadPartitionError, InvalidArgumentError } from './errors.js';
import type { Log, TopicDescription } from './types.js';

export type OffsetSpec =
  | { kind: 'earliest' }
  | { kind: 'latest' }
  | { kind: 'offset'; offset: number }
  /** Milliseconds since the epoch. */
  | { kind: 'timestamp'; timestamp: number }
  /** That many milliseconds before the time of resolution. */
  | { kind: 'ago'; ms: number };

const EXPECTED =
  'expected earliest, latest, an offset (42), an ISO time (2024-05-01T12:00:00Z) or a duration back from now (10m, 2h, 7d)';

export function parseOffsetSpec(text: string): OffsetSpec {
  const source = text.trim();
  if (source === 'earliest') return { kind: 'earliest' };
  if (source === 'latest') return { kind: 'latest' };
  if (/^\d+$/.test(source)) {
    const offset = Number(source);
    if (!Number.isSafeInteger(offset)) throw new InvalidArgumentError(`invalid position "${text}": offset too large`);
    return { kind: 'offset', offset };
  }
  // A date first: `2024-05-01` must not be mistaken for anything else. Without a zone, the
  // time is local (ECMAScript Date rules); a date alone is midnight UTC.
  if (/^\d{4}-\d{2}-\d{2}(?:[T ]|$)/.test(source)) {
    const timestamp = Date.parse(source);
    if (Number.isNaN(timestamp)) throw new InvalidArgumentError(`invalid position "${text}": not a valid ISO time`);
    return { kind: 'timestamp', timestamp };
  }
  if (/^[\d.]+[a-z]/.test(source)) {
    try {
      return { kind: 'ago', ms: parseDuration(source) };
    } catch {
      // fall through to the general message, which lists every accepted form
    }
  }
  throw new InvalidArgumentError(`invalid position "${text}": ${EXPECTED}`);
}

/** The spec written back in the form `parseOffsetSpec` accepts. */
export function formatOffsetSpec(spec: OffsetSpec): string {
  switch (spec.kind) {
    case 'earliest':
    case 'latest':
      return spec.kind;
    case 'offset':
      return String(spec.offset);
    case 'timestamp':
      return new Date(spec.timestamp).toISOString();
    case 'ago':
      return `${spec.ms}ms`;
  }
}

export interface ResolveOptions {
  /** The time `ago` specs count back from. Default `Date.now()`. */
  now?: number;
  /** A fresh description of the topic, to save one call per partition. */
  description?: TopicDescription;
}

/**
 * The offset of `topic/partition` the spec designates, always within [startOffset, endOffset]:
 * an offset below the start (removed by retention) gives the start, one past the end gives the
 * end, like Kafka's offset reset. A time after the newest record gives the end.
 */
export async function resolveOffset(
  log: Pick<Log, 'describeTopic' | 'offsetForTimestamp'>,
  topic: string,
  partition: number,
  spec: OffsetSpec,
  options: ResolveOptions = {},
): Promise<number> {
  const description = options.description ?? (await log.describeTopic(topic));
  const details = description.partitionDetails.find((p) => p.partition === partition);
  if (!details) throw new BadPartitionError(topic, partition, description.partitions);
  const { startOffset, endOffset } = details;
  const clamp = (offset: number) => Math.min(Math.max(offset, startOffset), endOffset);
  switch (spec.kind) {
    case 'earliest':
      return startOffset;
    case 'latest':
      return endOffset;
    case 'offset':
      return clamp(spec.offset);
    case 'timestamp':
    case 'ago': {
      const timestamp = spec.kind === 'timestamp' ? spec.timestamp : (options.now ?? Date.now()) - spec.ms;
      const offset = await log.offsetForTimestamp(topic, partition, timestamp);
      return offset === null ? endOffset : clamp(offset);
    }
  }
}
