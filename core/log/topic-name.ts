import { InvalidArgumentError, InvalidTopicError } from './errors.js';
import type { TopicConfig } from './types.js';

const LEGAL = /^[a-zA-Z0-9._-]+$/;

/** Kafka's topic-name rules: 1..249 chars of [a-zA-Z0-9._-], and not "." or "..". */
export function checkTopicName(name: string): void {
  if (typeof name !== 'string' || name.length === 0) throw new InvalidTopicError(String(name), 'the name is empty');
  if (name.length > 249) throw new InvalidTopicError(name, 'longer than 249 characters');
  if (name === '.' || name === '..') throw new InvalidTopicError(name, 'cannot be "." or ".."');
  if (!LEGAL.test(name)) throw new InvalidTopicError(name, 'only letters, digits, ".", "_" and "-" are allowed');
}

export function checkTopicConfig(name: string, config: TopicConfig): void {
  const p = config.partitions;
  if (!Number.isInteger(p) || p < 1 || p > 10000) {
    throw new InvalidArgumentError(`topic "${name}": partitions must be an integer from 1 to 10000, not ${p}`);
  }
  const r = config.retention ?? {};
  for (const [k, v] of [
    ['retention max age', r.maxAgeMs],
    ['retention max bytes', r.maxBytes],
    ['segment bytes', config.segmentBytes],
    ['segment ms', config.segmentMs],
  ] as const) {
    if (v !== undefined && (!Number.isFinite(v) || v <= 0)) {
      throw new InvalidArgumentError(`topic "${name}": ${k} must be a positive number, not ${v}`);
    }
  }
}
