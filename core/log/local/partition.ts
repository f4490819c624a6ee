/**
 * One partition of the local log: an ordered list of segments, the offset the next record gets,
 * and the committed point (end offset, active segment, its committed length). Writes may run
 * ahead of the committed point; readers never do.
 */
import { mkdir, readdir } from 'node:fs/promises';
import { BATCH_HEADER_BYTES, checkBatch, decodeRecords, decodeValues, findTimestamp, readHeader, setBaseOffset } from './codec.js';
import type { BatchHeader } from './codec.js';
import type { SlabPool } from '../../util/slab-pool.js';
import type { EncodedBatch } from './codec.js';
import { Segment } from './segment.js';
import { SpanBuilder } from '../value-spans.js';
import type { BatchCache, CachedBatch } from './batch-cache.js';
import { fsyncDir } from './fs-util.js';
import type { PartitionPoint } from './commit-log.js';
import type { AppendedBatch, LogRecord, PartitionDescription, RetentionConfig, ValueSpans } from '../types.js';

export interface PlacedBatch {
  enc: EncodedBatch;
  result: AppendedBatch;
}

export interface SegmentSettings {
  segmentBytes: number;
  segmentMs: number;
  indexIntervalBytes: number;
  /** The log's cache of recently written batches, shared by its partitions (none: reads go to the files). */
  cache?: BatchCache;
}

interface Waiter {
  offset: number;
  wake: () => void;
}

const MIN_READ = 64 * 1024;

export class Partition {
  readonly segments: Segment[] = [];
  nextOffset = 0;
  committedEnd = 0;
  /** Base offset and committed byte length of the segment the committed end lies in. */
  private cBase = 0;
  private cBytes = 0;
  private readonly waiters = new Set<Waiter>();
  /** This partition's batches in the cache, in offset order (written, not necessarily committed). */
  private readonly cached: CachedBatch[] = [];

  private constructor(
    readonly dir: string,
    readonly index: number,
    private readonly settings: SegmentSettings,
  ) {}

  /** Creates an empty partition directory. */
  static async create(dir: string, index: number, settings: SegmentSettings): Promise<Partition> {
    await mkdir(dir, { recursive: true });
    const p = new Partition(dir, index, settings);
    p.segments.push(await Segment.create(dir, 0));
    return p;
  }

  /**
   * Opens a partition and brings it back to its committed point: segments after the committed
   * one are removed, the committed one is cut to its committed length, and its batches are
   * checked. Damage inside committed bytes cuts the partition there and is reported.
   */
  static async recover(
    dir: string,
    index: number,
    settings: SegmentSettings,
    point: PartitionPoint,
    warn: (m: string) => void,
  ): Promise<Partition> {
    await mkdir(dir, { recursive: true });
    const p = new Partition(dir, index, settings);
    const bases = (await readdir(dir))
      .filter((f) => /^\d{20}\.log$/.test(f))
      .map((f) => Number(f.slice(0, 20)))
      .sort((a, b) => a - b);
    for (const base of bases) {
      const seg = new Segment(dir, base);
      if (base > point.segBase) {
        await seg.destroy();
        continue;
      }
      seg.size = (await (await seg.file()).stat()).size;
      if (base < point.segBase) await seg.closeFile();
      p.segments.push(seg);
    }
    let active = p.segments.at(-1);
    if (active === undefined || active.base !== point.segBase) {
      if (point.segBytes > 0) warn(`${dir}: committed segment ${point.segBase} is missing; offsets from ${point.segBase} are lost`);
      active = await Segment.create(dir, point.segBase);
      p.segments.push(active);
    }
    await active.dropIndexFile();
    if (point.segBytes === 0 && point.end === 0 && p.segments.length === 1 && active.size > 0) {
      warn(`${active.logPath}: ${active.size} bytes were never committed (no commit record covers them) and are removed`);
    }
    const scan = await active.scan(point.segBytes, settings.indexIntervalBytes);
    if (scan.damage !== undefined && scan.validBytes < point.segBytes) {
      warn(
        `${active.logPath}: committed data is damaged (${scan.damage}); the partition is cut at byte ` +
          `${scan.validBytes}, offsets ${scan.nextOffset}..${point.end - 1} are lost`,
      );
    }
    await active.truncate(scan.validBytes);
    await (await active.file()).datasync();
    p.nextOffset = p.committedEnd = scan.nextOffset;
    p.cBase = active.base;
    p.cBytes = scan.validBytes;
    await fsyncDir(dir);
    return p;
  }

  get startOffset(): number {
    return this.segments[0]!.base;
  }

  private get active(): Segment {
    return this.segments[this.segments.length - 1]!;
  }

  /** Places batches at the next offsets and writes them, rolling segments as needed. */
  async write(batches: readonly PlacedBatch[], now: number, dirty: Set<Segment>): Promise<void> {
    const { segmentBytes, segmentMs, indexIntervalBytes } = this.settings;
    let seg = this.active;
    let start = seg.size;
    let pos = start;
    let bufs: Buffer[] = [];
    for (const b of batches) {
      const len = b.enc.buf.length;
      if (pos > 0 && (pos + len > segmentBytes || now - seg.createdAt >= segmentMs)) {
        await seg.writev(bufs, start);
        seg.size = pos;
        dirty.add(seg);
        seg = await this.roll(seg);
        bufs = [];
        start = pos = 0;
      }
      setBaseOffset(b.enc.buf, this.nextOffset);
      b.result.baseOffset = this.nextOffset;
      if (pos === 0) seg.createdAt = now;
      seg.noteBatch(pos, this.nextOffset, b.enc.maxTimestamp, indexIntervalBytes);
      this.nextOffset += b.enc.count;
      pos += len;
      bufs.push(b.enc.buf);
    }
    await seg.writev(bufs, start);
    seg.size = pos;
    dirty.add(seg);
  }

  /** Keeps a batch this partition has just written in the log's cache (see BatchCache.add). */
  keep(enc: EncodedBatch): void {
    this.settings.cache?.add(this.cached, enc);
  }

  /** Closes the active segment (index written, data fsynced) and starts a new one. */
  private async roll(old: Segment): Promise<Segment> {
    await old.persistIndex();
    await old.datasync();
    const seg = await Segment.create(this.dir, this.nextOffset);
    this.segments.push(seg);
    await fsyncDir(this.dir);
    return seg;
  }

  /** The point to record in the commit log for what has been written so far. */
  writtenPoint(): PartitionPoint {
    return { end: this.nextOffset, segBase: this.active.base, segBytes: this.active.size };
  }

  /** Makes everything written so far visible to readers. */
  markCommitted(point: PartitionPoint): void {
    this.committedEnd = point.end;
    this.cBase = point.segBase;
    this.cBytes = point.segBytes;
    for (const w of this.waiters) {
      if (w.offset < this.committedEnd) {
        this.waiters.delete(w);
        w.wake();
      }
    }
  }

  /** Undoes writes that were not committed (a failed flush cycle). */
  async rollback(): Promise<void> {
    // The undone batches' offsets are given again to the next appends.
    this.settings.cache?.dropFrom(this.cached, this.committedEnd);
    while (this.active.base > this.cBase) {
      const seg = this.segments.pop()!;
      await seg.destroy();
    }
    const seg = this.active;
    await seg.dropIndexFile();
    await seg.truncate(this.cBytes);
    await seg.scan(this.cBytes, this.settings.indexIntervalBytes);
    this.nextOffset = this.committedEnd;
  }

  /** Resolves when the committed end passes `offset`, or when `ms` pass or `signal` aborts. */
  waitFor(offset: number, ms: number, signal?: AbortSignal): Promise<void> {
    if (offset < this.committedEnd || ms <= 0 || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        this.waiters.delete(w);
        resolve();
      };
      const w: Waiter = { offset, wake: done };
      const timer = setTimeout(done, ms);
      signal?.addEventListener('abort', done, { once: true });
      this.waiters.add(w);
    });
  }

  wakeAll(): void {
    for (const w of [...this.waiters]) w.wake();
  }

  private readableBytes(seg: Segment): number {
    if (seg.base < this.cBase) return seg.size;
    return seg.base === this.cBase ? this.cBytes : 0;
  }

  private findSegment(offset: number): number {
    let lo = 0;
    let hi = this.segments.length - 1;
    let best = 0;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.segments[mid]!.base <= offset) {
        best = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return best;
  }

  private acquire(seg: Segment): void {
    seg.refs++;
  }

  private async release(seg: Segment): Promise<void> {
    seg.refs--;
    if (seg.deleted && seg.refs === 0) await seg.destroy();
  }

  /**
   * Reads committed records from `from` on: about `maxBytes` of batches, at least one whole
   * batch. The caller has checked startOffset <= from < committedEnd.
   */
  async read(from: number, maxBytes: number): Promise<LogRecord[]> {
    const out: LogRecord[] = [];
    // Records outlive the read with no release: they get a copy of a cached batch, not a view.
    await this.scan(from, maxBytes, undefined, (b) => Buffer.from(b.buf), (buf, p, hd, offset, end) => {
      const before = out.length;
      decodeRecords(buf, p, hd, offset, end, out);
      return out.length - before;
    });
    return out;
  }

  /**
   * Like read, the values only; resolves to them and the offset after the last. With a pool, the
   * read buffers are cut from its slabs, cached batches are read in place, and `release` gives
   * both back: the caller calls it once nothing uses the spans any more (or never: then they are
   * collected, and cached batches' buffers are not reused).
   */
  async readValues(from: number, maxBytes: number, pool?: SlabPool): Promise<{ spans: ValueSpans[]; bytes: number; nextOffset: number; release?: () => void }> {
    const spans: ValueSpans[] = [];
    let bytes = 0;
    let current: SpanBuilder | null = null;
    const slabs: Buffer[] = [];
    const held: CachedBatch[] = [];
    const alloc =
      pool === undefined
        ? undefined
        : (n: number): Buffer => {
            const { buf, slab } = pool.take(n);
            if (slab !== undefined) slabs.push(slab);
            return buf;
          };
    const take =
      pool === undefined
        ? (b: CachedBatch): Buffer => Buffer.from(b.buf)
        : (b: CachedBatch): Buffer => {
            b.refs++;
            held.push(b);
            return b.buf;
          };
    // Gives back what the read took (once): read buffers to the pool, cached batches to the cache.
    const release = (): void => {
      for (const s of slabs.splice(0)) pool!.give(s);
      for (const b of held.splice(0)) this.settings.cache!.unref(b);
    };
    let nextOffset: number;
    try {
      nextOffset = await this.scan(from, maxBytes, alloc, take, (buf, p, hd, offset, end) => {
        if (current === null || current.buf !== buf) {
          if (current !== null && current.count > 0) spans.push(current.spans());
          // A buffer holding just this batch (a cached one) needs room for its records, no more.
          current = p === 0 && buf.length === hd.length ? new SpanBuilder(buf, hd.baseOffset + hd.count - offset) : new SpanBuilder(buf);
        }
        const before = current.bytes;
        const n = decodeValues(buf, p, hd, offset, end, current);
        bytes += current.bytes - before;
        return n;
      });
    } catch (err) {
      release();
      throw err;
    }
    const last = current as SpanBuilder | null;
    if (last !== null && last.count > 0) spans.push(last.spans());
    if (slabs.length === 0 && held.length === 0) return { spans, bytes, nextOffset };
    return { spans, bytes, nextOffset, release };
  }

  /**
   * Reads the batches read and readValues return: from the cache while it holds them, then from
   * the files, checking each; `decode` takes the records of a batch from `offset` (below `end`)
   * and returns how many it took. Resolves to the offset after the last record taken.
   */
  private async scan(
    from: number,
    maxBytes: number,
    /** Where read buffers come from (default Buffer.allocUnsafe). */
    alloc: ((bytes: number) => Buffer) | undefined,
    /** The buffer to decode a cached batch from: the batch's own, or a copy. */
    take: (b: CachedBatch) => Buffer,
    decode: (buf: Buffer, p: number, hd: BatchHeader, offset: number, end: number) => number,
  ): Promise<number> {
    const end = this.committedEnd;
    let bytes = 0;
    let offset = from;
    const cache = this.settings.cache;
    if (cache !== undefined) {
      // Only committed batches are read: `end` is the committed end, at a batch boundary.
      for (let b = cache.find(this.cached, offset); b !== undefined && offset < end && bytes < maxBytes; b = cache.find(this.cached, offset)) {
        offset += decode(take(b), 0, b.header, offset, end);
        bytes += b.header.length;
      }
    }
    let i = this.findSegment(offset);
    while (i < this.segments.length && offset < end && bytes < maxBytes) {
      const seg = this.segments[i]!;
      const limit = this.readableBytes(seg);
      this.acquire(seg);
      try {
        await seg.ensureIndex(this.settings.indexIntervalBytes);
        const h = await seg.file();
        let pos = seg.positionFor(offset);
        // The CRC leaves out the base offset, so check that offsets follow on from batch to batch.
        let expected = -1;
        while (pos < limit && offset < end && bytes < maxBytes) {
          const want = Math.min(limit - pos, Math.max(maxBytes - bytes, MIN_READ));
          let buf = alloc === undefined ? Buffer.allocUnsafe(want) : alloc(want);
          let got = (await h.read(buf, 0, want, pos)).bytesRead;
          let p = 0;
          while (p + BATCH_HEADER_BYTES <= got) {
            const hd = readHeader(buf, p);
            if (hd.length < BATCH_HEADER_BYTES) seg.corrupt(pos + p, `batch length ${hd.length} is too small`);
            if (p + hd.length > got) {
              if (p > 0) break;
              // A single batch larger than what was read: read all of it.
              if (pos + hd.length > limit) seg.corrupt(pos, `batch of ${hd.length} bytes runs past the committed end`);
              buf = Buffer.allocUnsafe(hd.length);
              got = (await h.read(buf, 0, hd.length, pos)).bytesRead;
              if (got < hd.length) seg.corrupt(pos, 'the file ends inside a batch');
            }
            const bad = checkBatch(buf, p, hd);
            if (bad !== null) seg.corrupt(pos + p, bad);
            if (expected < 0 ? hd.baseOffset < seg.base || hd.baseOffset > offset : hd.baseOffset !== expected) {
              seg.corrupt(pos + p, `batch offset ${hd.baseOffset} does not follow on (expected ${expected < 0 ? `${seg.base}..${offset}` : expected})`);
            }
            expected = hd.baseOffset + hd.count;
            if (hd.baseOffset + hd.count > offset) {
              let n = 0;
              try {
                n = decode(buf, p, hd, offset, end);
              } catch (err) {
                seg.corrupt(pos + p, (err as Error).message);
              }
              // Offsets are dense, and a batch never starts after `offset` (checked above).
              offset += n;
              bytes += hd.length;
            }
            p += hd.length;
            if (bytes >= maxBytes || offset >= end) break;
          }
          if (p === 0) seg.corrupt(pos, 'a batch header is cut short');
          pos += p;
        }
      } finally {
        await this.release(seg);
      }
      // Retention may have removed segments meanwhile: look the next one up again.
      // Retention may have removed this segment meanwhile: then stop here; the next read
      // learns from OffsetOutOfRangeError where the partition starts now.
      const at = this.segments.indexOf(seg);
      if (at < 0) break;
      i = at + 1;
    }
    return offset;
  }

  /** First committed offset with a timestamp >= `timestamp`, or null. */
  async offsetForTimestamp(timestamp: number): Promise<number | null> {
    for (const seg of [...this.segments]) {
      const limit = this.readableBytes(seg);
      if (limit === 0) break;
      this.acquire(seg);
      try {
        await seg.ensureIndex(this.settings.indexIntervalBytes);
        if (seg.maxTimestamp < timestamp) continue;
        const h = await seg.file();
        let pos = seg.positionForTimestamp(timestamp);
        const header = Buffer.allocUnsafe(BATCH_HEADER_BYTES);
        while (pos + BATCH_HEADER_BYTES <= limit) {
          await h.read(header, 0, BATCH_HEADER_BYTES, pos);
          const hd = readHeader(header, 0);
          if (hd.length < BATCH_HEADER_BYTES) seg.corrupt(pos, `batch length ${hd.length} is too small`);
          if (hd.maxTimestamp >= timestamp) {
            const buf = Buffer.allocUnsafe(hd.length);
            await h.read(buf, 0, hd.length, pos);
            const bad = checkBatch(buf, 0, hd);
            if (bad !== null) seg.corrupt(pos, bad);
            const found = findTimestamp(buf, 0, hd, timestamp);
            if (found !== null && found < this.committedEnd) return found;
          }
          pos += hd.length;
        }
      } finally {
        await this.release(seg);
      }
    }
    return null;
  }

  /** Removes closed segments that retention no longer keeps; never the active one. */
  async sweep(retention: RetentionConfig, now: number): Promise<number> {
    let removed = 0;
    const closed = (): Segment | undefined => {
      const s = this.segments[0]!;
      return this.segments.length > 1 && s.base < this.cBase ? s : undefined;
    };
    if (retention.maxAgeMs !== undefined) {
      for (let s = closed(); s !== undefined; s = closed()) {
        await s.ensureIndex(this.settings.indexIntervalBytes);
        if (s.maxTimestamp >= now - retention.maxAgeMs) break;
        await this.remove(s);
        removed++;
      }
    }
    if (retention.maxBytes !== undefined) {
      let total = this.bytes();
      for (let s = closed(); s !== undefined && total - s.size >= retention.maxBytes; s = closed()) {
        total -= s.size;
        await this.remove(s);
        removed++;
      }
    }
    return removed;
  }

  private async remove(seg: Segment): Promise<void> {
    this.segments.shift();
    seg.deleted = true;
    if (seg.refs === 0) await seg.destroy();
  }

  bytes(): number {
    let total = 0;
    for (const s of this.segments) total += this.readableBytes(s);
    return total;
  }

  describe(): PartitionDescription {
    return {
      partition: this.index,
      startOffset: this.startOffset,
      endOffset: this.committedEnd,
      bytes: this.bytes(),
      segments: this.segments.length,
    };
  }

  async close(): Promise<void> {
    this.wakeAll();
    this.settings.cache?.dropFrom(this.cached);
    for (const s of this.segments) await s.closeFile();
  }
}
