/**
 * Partition choice shared by every backend. A record goes to its explicit partition, else to
 * murmur2(key) like Kafka's default partitioner (so keys land where a Kafka producer would put
 * them), else to a "sticky" partition that stays the same for one append call and rotates
 * between calls, which keeps batches large without skewing partitions over time.
 */

/** Kafka's murmur2 (32-bit, seed 0x9747b28c) over the key's UTF-8 bytes. */
export function murmur2(data: Uint8Array): number {
  const length = data.length;
  const m = 0x5bd1e995;
  const r = 24;
  let h = (0x9747b28c ^ length) | 0;
  const length4 = length >> 2;
  for (let i = 0; i < length4; i++) {
    const i4 = i << 2;
    let k = data[i4]! | (data[i4 + 1]! << 8) | (data[i4 + 2]! << 16) | (data[i4 + 3]! << 24);
    k = Math.imul(k, m);
    k ^= k >>> r;
    k = Math.imul(k, m);
    h = Math.imul(h, m) ^ k;
  }
  const tail = length & ~3;
  const rest = length % 4;
  if (rest === 3) h ^= data[tail + 2]! << 16;
  if (rest >= 2) h ^= data[tail + 1]! << 8;
  if (rest >= 1) {
    h ^= data[tail]!;
    h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h | 0;
}

/** The partition of a key among `partitions`: (murmur2(utf8(key)) & 0x7fffffff) % partitions. */
export function partitionForKey(key: string, partitions: number): number {
  return (murmur2(Buffer.from(key, 'utf8')) & 0x7fffffff) % partitions;
}

/** Rotating sticky choice for keyless records, one counter per topic. */
export class StickyPartitioner {
  private readonly next = new Map<string, number>();

  /** The partition for keyless records of the next append call to `topic`. */
  take(topic: string, partitions: number): number {
    const n = this.next.get(topic) ?? Math.floor(Math.random() * partitions);
    this.next.set(topic, n + 1);
    return n % partitions;
  }
}
