/**
 * Names on the server. Topic names are Kafka's (`[a-zA-Z0-9._-]{1,249}`); stream names cannot hold
 * `.` and end up as directory names (255 bytes), KV keys cannot start or end with `.`. Topics never
 * contain `=`, so `.` → `=` is a reversible escape; long names are cut and made unique by a hash.
 */
import { createHash } from 'node:crypto';

const MAX_READABLE = 160;

export function escapeTopic(topic: string): string {
  return topic.replace(/\./g, '=');
}

export function unescapeTopic(escaped: string): string {
  return escaped.replace(/=/g, '.');
}

/** Stream of partition `p` of `topic`: `<prefix>_<topic>_<p>`. */
export function streamName(prefix: string, topic: string, partition: number): string {
  let t = escapeTopic(topic);
  if (t.length > MAX_READABLE) t = `${t.slice(0, 100)}~${hash(topic, 16)}`;
  return `${prefix}_${t}_${partition}`;
}

/** The one subject of that stream. */
export function streamSubject(prefix: string, stream: string): string {
  return `${prefix}.log.${stream}`;
}

/** base64url: KV keys allow `[-/=.\w]`, so arbitrary group and source names go through it. */
export function b64(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64url');
}

export function unb64(text: string): string {
  return Buffer.from(text, 'base64url').toString('utf8');
}

export function hash(text: string, length: number): string {
  return createHash('sha256').update(text).digest('hex').slice(0, length);
}

export function checkPrefix(prefix: string): void {
  if (!/^[A-Za-z0-9_-]{1,32}$/.test(prefix)) {
    throw new RangeError(`log.jetstream.prefix must be 1..32 of [A-Za-z0-9_-], not ${JSON.stringify(prefix)}`);
  }
}
