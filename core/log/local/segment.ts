/**
 * One segment of a partition: `<base offset, 20 digits>.log` holding batches, and for closed
 * segments `<base>.index`, the sparse index (one entry every `indexIntervalBytes` of log) with,
 * per entry, the relative offset and file position of a batch and the largest timestamp of all
 * batches before it — which makes it the time index too. The active segment's index lives in
 * memory and is rebuilt by a scan on open.
 */
import { open, unlink, readFile, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { BATCH_HEADER_BYTES, checkBatch, readHeader, readInt64, writeInt64 } from './codec.js';
import { CorruptRecordError } from '../errors.js';
import { isErrno } from './fs-util.js';

const INDEX_MAGIC = 0x5158444c; // "LDXQ"
const INDEX_HEADER = 16;
const INDEX_ENTRY = 16;
const SCAN_CHUNK = 1024 * 1024;

export function segmentName(base: number): string {
  return String(base).padStart(20, '0');
}

export interface ScanResult {
  /** Bytes from the start that hold valid, consecutive batches. */
  validBytes: number;
  /** Offset after the last valid batch. */
  nextOffset: number;
  /** Why the scan stopped before `limit`, if it did. */
  damage?: string;
}

export class Segment {
  size = 0;
  /** Largest record timestamp in the segment, -1 when empty or not known yet. */
  maxTimestamp = -1;
  /** Wall-clock time the first batch was written (for rolling by age). */
  createdAt = 0;
  refs = 0;
  deleted = false;
  private handle: FileHandle | null = null;
  private opening: Promise<FileHandle> | null = null;
  private indexLoaded = false;
  private rel: number[] = [];
  private pos: number[] = [];
  private tsBefore: number[] = [];
  private lastIndexed = -Infinity;

  constructor(
    readonly dir: string,
    readonly base: number,
  ) {}

  get logPath(): string {
    return join(this.dir, `${segmentName(this.base)}.log`);
  }

  get indexPath(): string {
    return join(this.dir, `${segmentName(this.base)}.index`);
  }

  async file(): Promise<FileHandle> {
    if (this.handle !== null) return this.handle;
    // Concurrent callers share one open: a second handle would leak.
    this.opening ??= open(this.logPath, 'r+').then(
      (h) => {
        this.handle = h;
        this.opening = null;
        return h;
      },
      (err: unknown) => {
        this.opening = null;
        throw err;
      },
    );
    return this.opening;
  }

  /** Creates an empty segment file. */
  static async create(dir: string, base: number): Promise<Segment> {
    const s = new Segment(dir, base);
    s.handle = await open(s.logPath, 'w+');
    s.indexLoaded = true;
    return s;
  }

  async writev(bufs: Buffer[], position: number): Promise<void> {
    if (bufs.length === 0) return;
    let expected = 0;
    for (const b of bufs) expected += b.length;
    const h = await this.file();
    const { bytesWritten } = await h.writev(bufs, position);
    if (bytesWritten !== expected) {
      // A short write without an error is the file system running out of space.
      const err = new Error(`short write to ${this.logPath}: ${bytesWritten} of ${expected} bytes`) as NodeJS.ErrnoException;
      err.code = 'ENOSPC';
      throw err;
    }
  }

  async datasync(): Promise<void> {
    if (this.handle !== null) await this.handle.datasync();
  }

  /** Records a batch written at `position` in the in-memory index. */
  noteBatch(position: number, baseOffset: number, maxTimestamp: number, interval: number): void {
    if (position === 0 || position - this.lastIndexed >= interval) {
      this.rel.push(baseOffset - this.base);
      this.pos.push(position);
      this.tsBefore.push(this.maxTimestamp);
      this.lastIndexed = position;
    }
    if (maxTimestamp > this.maxTimestamp) this.maxTimestamp = maxTimestamp;
  }

  private resetIndex(): void {
    this.rel = [];
    this.pos = [];
    this.tsBefore = [];
    this.lastIndexed = -Infinity;
    this.maxTimestamp = -1;
  }

  /**
   * Reads batch headers from the start up to `limit` bytes, checking each batch's CRC and that
   * offsets follow on from `base`, and rebuilds the in-memory index on the way.
   */
  async scan(limit: number, interval: number): Promise<ScanResult> {
    const h = await this.file();
    const { size } = await h.stat();
    const end = Math.min(limit, size);
    this.resetIndex();
    let pos = 0;
    let next = this.base;
    let damage: string | undefined = size < limit ? `the file is ${size} bytes, shorter than ${limit}` : undefined;
    let buf = Buffer.allocUnsafe(Math.min(SCAN_CHUNK, Math.max(end, BATCH_HEADER_BYTES)));
    outer: while (pos < end) {
      const want = Math.min(buf.length, end - pos);
      const { bytesRead } = await h.read(buf, 0, want, pos);
      let p = 0;
      while (p + BATCH_HEADER_BYTES <= bytesRead) {
        const hd = readHeader(buf, p);
        if (hd.length < BATCH_HEADER_BYTES || pos + p + hd.length > end) {
          damage = `batch at byte ${pos + p} ${hd.length < BATCH_HEADER_BYTES ? 'has a bad length' : 'runs past the end'}`;
          pos += p;
          break outer;
        }
        if (p + hd.length > bytesRead) break; // finish it in the next (possibly larger) read
        const bad = checkBatch(buf, p, hd) ?? (hd.baseOffset !== next ? `offset ${hd.baseOffset}, expected ${next}` : null);
        if (bad !== null) {
          damage = `batch at byte ${pos + p}: ${bad}`;
          pos += p;
          break outer;
        }
        if (this.createdAt === 0) this.createdAt = Date.now();
        this.noteBatch(pos + p, hd.baseOffset, hd.maxTimestamp, interval);
        next = hd.baseOffset + hd.count;
        p += hd.length;
      }
      if (p === 0) {
        if (bytesRead < BATCH_HEADER_BYTES) {
          damage = `torn batch header at byte ${pos}`;
          break;
        }
        // One batch larger than the buffer: grow the buffer to hold it.
        buf = Buffer.allocUnsafe(readHeader(buf, 0).length);
        continue;
      }
      pos += p;
    }
    this.indexLoaded = true;
    return damage === undefined ? { validBytes: pos, nextOffset: next } : { validBytes: pos, nextOffset: next, damage };
  }

  /** Loads the index of a closed segment from its file, or rebuilds it when that is missing or stale. */
  async ensureIndex(interval: number): Promise<void> {
    if (this.indexLoaded) return;
    try {
      const buf = await readFile(this.indexPath);
      const n = (buf.length - INDEX_HEADER) / INDEX_ENTRY;
      if (buf.length >= INDEX_HEADER && Number.isInteger(n) && buf.readUInt32LE(0) === INDEX_MAGIC && buf.readUInt32LE(4) === n) {
        this.resetIndex();
        this.maxTimestamp = readInt64(buf, 8) - 1;
        for (let i = 0; i < n; i++) {
          const o = INDEX_HEADER + i * INDEX_ENTRY;
          this.rel.push(buf.readUInt32LE(o));
          this.pos.push(buf.readUInt32LE(o + 4));
          this.tsBefore.push(readInt64(buf, o + 8) - 1);
        }
        this.lastIndexed = this.pos[n - 1] ?? -Infinity;
        if (n > 0 && this.pos[n - 1]! < this.size) {
          this.indexLoaded = true;
          return;
        }
      }
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err;
    }
    await this.scan(this.size, interval);
    await this.persistIndex();
  }

  /** Writes the index file of a segment that is being closed. */
  async persistIndex(): Promise<void> {
    const n = this.rel.length;
    const buf = Buffer.allocUnsafe(INDEX_HEADER + n * INDEX_ENTRY);
    buf.writeUInt32LE(INDEX_MAGIC, 0);
    buf.writeUInt32LE(n, 4);
    // Timestamps are stored +1 so that "none" (-1) fits an unsigned field.
    writeInt64(buf, this.maxTimestamp + 1, 8);
    for (let i = 0; i < n; i++) {
      const o = INDEX_HEADER + i * INDEX_ENTRY;
      buf.writeUInt32LE(this.rel[i]!, o);
      buf.writeUInt32LE(this.pos[i]!, o + 4);
      writeInt64(buf, this.tsBefore[i]! + 1, o + 8);
    }
    await writeFile(this.indexPath, buf);
  }

  async dropIndexFile(): Promise<void> {
    await unlink(this.indexPath).catch((err) => {
      if (!isErrno(err, 'ENOENT')) throw err;
    });
  }

  /** File position of the last indexed batch whose base offset is <= `offset`. */
  positionFor(offset: number): number {
    const target = offset - this.base;
    let lo = 0;
    let hi = this.rel.length - 1;
    let best = 0;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.rel[mid]! <= target) {
        best = this.pos[mid]!;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return best;
  }

  /** A position before which every batch's timestamps are all < `timestamp`. */
  positionForTimestamp(timestamp: number): number {
    let lo = 0;
    let hi = this.tsBefore.length - 1;
    let best = 0;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.tsBefore[mid]! < timestamp) {
        best = this.pos[mid]!;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return best;
  }

  async truncate(bytes: number): Promise<void> {
    const h = await this.file();
    await h.truncate(bytes);
    this.size = bytes;
  }

  /** Throws CorruptRecordError naming this file and the absolute position. */
  corrupt(position: number, detail: string): never {
    throw new CorruptRecordError(this.logPath, position, detail);
  }

  async closeFile(): Promise<void> {
    if (this.opening !== null) await this.opening.catch(() => undefined);
    const h = this.handle;
    this.handle = null;
    if (h !== null) await h.close();
  }

  /** Closes and removes the segment's files. */
  async destroy(): Promise<void> {
    await this.closeFile();
    for (const p of [this.logPath, this.indexPath]) {
      await unlink(p).catch((err) => {
        if (!isErrno(err, 'ENOENT')) throw err;
      });
    }
  }
}
