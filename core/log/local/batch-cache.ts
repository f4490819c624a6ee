/**
 * The most recently written batches of every partition, kept in memory after their write (as
 * Redpanda's batch cache does): a reader that keeps up with the writers — a sink behind its
 * source — reads them from here, with no read from the file, no copy and no checksum, since these
 * bytes are the very buffer that was written and never left memory. Reads further back go to the
 * files as before.
 *
 * One cache serves the whole log, bounded in bytes (a batch counts the whole pooled slab it lies
 * in, which may be larger than the batch) and in batches; the oldest batch goes first.
 * A batch's buffer came from the log's batch pool and goes back to it once the batch has left
 * the cache and no reader holds a view of it (CachedBatch.refs), so written batches' memory is
 * reused by the next appends rather than freshly allocated.
 */
import type { BatchBufferPool, BatchHeader, EncodedBatch } from './codec.js';
import { readHeader } from './codec.js';

export interface CachedBatch {
  /** The batch's bytes as written (base offset set). */
  readonly buf: Buffer;
  readonly header: BatchHeader;
  /** The pooled slab `buf` lies in, if any. */
  slab: Buffer | undefined;
  /** Memory it holds: its slab's size (a small batch still holds a whole slab), else its own. */
  readonly cost: number;
  /** Readers holding views of `buf` (values reads not yet released). */
  refs: number;
  readonly list: CachedBatch[];
}

const MAX_BATCHES = 4096;

export class BatchCache {
  /** Every batch in the cache, oldest first (a Set keeps insertion order and drops from anywhere). */
  private readonly fifo = new Set<CachedBatch>();
  private bytes = 0;

  constructor(
    readonly maxBytes: number,
    private readonly pool: BatchBufferPool,
  ) {}

  /**
   * Keeps a batch just written at the end of its partition's `list`; takes its slab over (the
   * caller's pool.release of `enc` is then a no-op). Batches costing more than a quarter of the
   * cache are not kept.
   */
  add(list: CachedBatch[], enc: EncodedBatch): void {
    const cost = enc.slab?.length ?? enc.buf.length;
    if (cost > this.maxBytes / 4) return;
    const b: CachedBatch = { buf: enc.buf, header: readHeader(enc.buf, 0), slab: enc.slab, cost, refs: 0, list };
    enc.slab = undefined;
    list.push(b);
    this.fifo.add(b);
    this.bytes += cost;
    while (this.bytes > this.maxBytes || this.fifo.size > MAX_BATCHES) this.evictOldest();
  }

  /** Batches in the cache, and the memory they hold. */
  get size(): { batches: number; bytes: number } {
    return { batches: this.fifo.size, bytes: this.bytes };
  }

  /** The batch of `list` holding `offset`, if any. */
  find(list: readonly CachedBatch[], offset: number): CachedBatch | undefined {
    let lo = 0;
    let hi = list.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const h = list[mid]!.header;
      if (offset < h.baseOffset) hi = mid - 1;
      else if (offset >= h.baseOffset + h.count) lo = mid + 1;
      else return list[mid];
    }
    return undefined;
  }

  /** Removes the batches of `list` from offset `from` on (writes undone), or all of them. */
  dropFrom(list: CachedBatch[], from = 0): void {
    while (list.length > 0 && list[list.length - 1]!.header.baseOffset + list[list.length - 1]!.header.count > from) {
      this.leave(list.pop()!);
    }
  }

  /** A reader is done with the views of `b` it took. */
  unref(b: CachedBatch): void {
    b.refs--;
    this.giveBack(b);
  }

  private evictOldest(): void {
    const b = this.fifo.values().next().value;
    if (b === undefined) return;
    // The oldest batch of the cache is the first of its partition's list.
    const i = b.list.indexOf(b);
    if (i >= 0) b.list.splice(i, 1);
    this.leave(b);
  }

  private leave(b: CachedBatch): void {
    this.fifo.delete(b);
    this.bytes -= b.cost;
    this.giveBack(b);
  }

  private giveBack(b: CachedBatch): void {
    if (b.refs > 0 || b.slab === undefined || this.fifo.has(b)) return;
    const slab = b.slab;
    b.slab = undefined;
    this.pool.give(slab);
  }
}
