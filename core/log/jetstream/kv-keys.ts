/**
 * Listing a KV bucket's keys. Not `kv.keys()`: its ordered consumer misses keys that are written
 * while it lists them (seen with nats-server 2.9 while leases were renewed and offsets committed),
 * so the keys come from the stream's own state: one subject per key, deleted keys included (they
 * keep their marker until purged or expired).
 */
import type { JetStreamManager, KV } from 'nats';

/** Every key the bucket has a subject for that matches `filter` (NATS wildcards, e.g. `a.>`). */
export async function kvKeys(jsm: JetStreamManager, bucket: string, filter = '>'): Promise<string[]> {
  const subjectPrefix = `$KV.${bucket}.`;
  const info = await jsm.streams.info(`KV_${bucket}`, { subjects_filter: `${subjectPrefix}${filter}` });
  return Object.keys(info.state.subjects ?? {}).map((s) => s.slice(subjectPrefix.length));
}

/** The keys matching `filter` that hold a value now (not deleted or purged). */
export async function liveKeys(jsm: JetStreamManager, kv: KV, bucket: string, filter = '>'): Promise<string[]> {
  const keys = await kvKeys(jsm, bucket, filter);
  const live = await Promise.all(keys.map(async (k) => ((await kv.get(k))?.operation === 'PUT' ? k : null)));
  return live.filter((k): k is string => k !== null);
}
