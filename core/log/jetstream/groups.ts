/**
 * Consumer-group offsets in the KV bucket `<prefix>_groups`: one key per (group, topic, partition),
 * `g<base64url(group)>.<topic with . as =>.<partition>`, its value the next offset as text. One key
 * per partition, so workers committing different partitions of one group never contend.
 */
import type { JetStreamManager, KV } from 'nats';

import { InvalidArgumentError } from '../errors.js';
import { checkTopicName } from '../topic-name.js';
import type { GroupOffset } from '../types.js';
import { kvKeys, liveKeys } from './kv-keys.js';
import { b64, escapeTopic, unb64, unescapeTopic } from './names.js';

export class JsGroups {
  constructor(
    private readonly kv: KV,
    private readonly jsm: JetStreamManager,
    private readonly bucket: string,
  ) {}

  async commit(group: string, offsets: readonly GroupOffset[]): Promise<void> {
    checkGroup(group);
    for (const o of offsets) {
      if (!Number.isSafeInteger(o.offset) || o.offset < 0) throw new InvalidArgumentError(`offset must be a non-negative integer, not ${o.offset}`);
      checkTopicName(o.topic);
    }
    await Promise.all(offsets.map((o) => this.kv.put(`${token(group)}.${escapeTopic(o.topic)}.${o.partition}`, String(o.offset))));
  }

  async fetch(group: string, topic?: string): Promise<GroupOffset[]> {
    checkGroup(group);
    const filter = topic === undefined ? `${token(group)}.>` : `${token(group)}.${escapeTopic(topic)}.*`;
    const out: GroupOffset[] = [];
    for (const key of await this.keys(filter)) {
      const e = await this.kv.get(key);
      if (e === null || e.operation !== 'PUT') continue;
      const [, t, p] = key.split('.');
      out.push({ topic: unescapeTopic(t!), partition: Number(p), offset: Number(e.string()) });
    }
    return out;
  }

  async list(): Promise<string[]> {
    const groups = new Set<string>();
    for (const key of await liveKeys(this.jsm, this.kv, this.bucket)) groups.add(unb64(key.split('.')[0]!.slice(1)));
    return [...groups].sort();
  }

  async delete(group: string): Promise<void> {
    checkGroup(group);
    for (const key of await this.keys(`${token(group)}.>`)) await this.kv.purge(key);
  }

  private keys(filter: string): Promise<string[]> {
    return kvKeys(this.jsm, this.bucket, filter);
  }
}

function token(group: string): string {
  return `g${b64(group)}`;
}

function checkGroup(group: string): void {
  if (typeof group !== 'string' || group === '') throw new InvalidArgumentError('group name must be a non-empty string');
}
