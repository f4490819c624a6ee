/**
 * BatchCache on its own: which batches it finds, which it drops first, and when a batch's pooled
 * buffer goes back to the pool (out of the cache and no reader holding it).
 */
import { describe, expect, it } from 'vitest';

import { BatchCache, type CachedBatch } from '../../core/log/local/batch-cache.js';
import { BatchBufferPool, encodeBatch, recordSize, setBaseOffset, type EncodedBatch } from '../../core/log/local/codec.js';
import type { ProducerRecord } from '../../core/log/types.js';

/** A batch of `count` records of `bytes` bytes each at `base`, its buffer from `pool`. */
function batch(pool: BatchBufferPool, base: number, count: number, bytes = 100): EncodedBatch {
  const records: ProducerRecord[] = Array.from({ length: count }, (_, i) => ({ value: `${base + i}:`.padEnd(bytes, 'x') }));
  const enc = encodeBatch(records, null, 0, count, records.map(recordSize), records.map(() => 1_700_000_000_000), pool);
  setBaseOffset(enc.buf, base);
  return enc;
}

describe('BatchCache', () => {
  it('finds the batch holding an offset, in each partition, and drops the oldest over its size', () => {
    const pool = new BatchBufferPool(8);
    const one = batch(pool, 0, 10).buf.length;
    const cache = new BatchCache(one * 4, pool);
    const p0: CachedBatch[] = [];
    const p1: CachedBatch[] = [];
    for (let b = 0; b < 3; b++) {
      cache.add(p0, batch(pool, b * 10, 10));
      cache.add(p1, batch(pool, b * 10, 10));
    }
    // Six batches, room for four: the two written first went first.
    expect(p0.map((b) => b.header.baseOffset)).toEqual([10, 20]);
    expect(p1.map((b) => b.header.baseOffset)).toEqual([10, 20]);
    expect(cache.find(p1, 9)).toBeUndefined();
    expect(cache.find(p1, 10)?.header.baseOffset).toBe(10);
    expect(cache.find(p1, 19)?.header.baseOffset).toBe(10);
    expect(cache.find(p1, 29)?.header.baseOffset).toBe(20);
    expect(cache.find(p1, 30)).toBeUndefined();
    expect(cache.find(p0, 5)).toBeUndefined();
    // Undone writes leave from their first offset on; a partition closed leaves entirely.
    cache.add(p0, batch(pool, 30, 10));
    expect(p0.map((b) => b.header.baseOffset)).toEqual([20, 30]);
    cache.dropFrom(p0, 30);
    expect(p0.map((b) => b.header.baseOffset)).toEqual([20]);
    cache.dropFrom(p1);
    expect(p1).toEqual([]);
    // What was dropped no longer counts, nor is it held: three more fit beside p0's one.
    expect(cache.size).toEqual({ batches: 1, bytes: one });
    for (let b = 3; b < 6; b++) cache.add(p1, batch(pool, b * 10, 10));
    expect(p0.length + p1.length).toBe(4);
    expect(cache.size.batches).toBe(4);
    cache.dropFrom(p0);
    cache.dropFrom(p1);
    expect(cache.size).toEqual({ batches: 0, bytes: 0 });
  });

  it('gives a pooled buffer back once the batch is out of the cache and no reader holds it', () => {
    const pool = new BatchBufferPool(8);
    // Batches of about 100 KiB: pooled (smaller ones come from Buffer.allocUnsafe), each costing
    // the whole slab it lies in.
    const size = BatchBufferPool.SLAB_BYTES;
    const cache = new BatchCache(size * 4, pool);
    const list: CachedBatch[] = [];
    const first = batch(pool, 0, 1000);
    const firstSlab = first.slab!;
    expect(firstSlab).toBeDefined();
    cache.add(list, first);
    // The cache took the slab over: releasing the batch as written does nothing.
    expect(first.slab).toBeUndefined();
    pool.release(first);
    const held = cache.find(list, 0)!;
    held.refs++;
    for (let b = 1; b <= 4; b++) cache.add(list, batch(pool, b * 1000, 1000));
    expect(list.map((b) => b.header.baseOffset)).toEqual([1000, 2000, 3000, 4000]);
    // Out of the cache but held: not reused.
    const next = batch(pool, 5000, 1000);
    expect(next.slab).not.toBe(firstSlab);
    cache.unref(held);
    // Now free: the next batch gets it.
    expect(batch(pool, 6000, 1000).slab).toBe(firstSlab);
    // Batches larger than a quarter of the cache are not kept; their slab stays with the batch.
    const big = new BatchCache(size * 3, pool);
    const mine: CachedBatch[] = [];
    const b = batch(pool, 0, 1000);
    big.add(mine, b);
    expect(mine).toEqual([]);
    expect(b.slab).toBeDefined();
  });
});
