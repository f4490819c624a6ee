/**
 * One tailed stream: a file identity (device, inode, fingerprint), its offsets and its read
 * buffer. Offsets, all absolute byte offsets in the file:
 *
 *   offset  ≤  scanPos  ≤  readPos
 *   │          │           └ bytes read from the file so far
 *   │          └ bytes framed into lines so far; carry = bytes [scanPos, readPos)
 *   └ the committed offset: after the last line (event) that went into a batch. It lags scanPos
 *     only while a multiline event is pending.
 */
import type { FileHandle } from 'node:fs/promises';
import type { SlabPool } from '../sdk.js';
import { fingerprintOf, readPrefix, verifies, type Fingerprint } from './fingerprint.js';
import type { MultilineAggregator } from './multiline.js';
import { identity, toEntry, type PositionEntry, type StreamState } from './position.js';

export interface TailInit {
  dev: string;
  ino: string;
  path: string;
  fp: Fingerprint;
  offset: number;
  skip: boolean;
  size: number;
  now: number;
}

export class Tail {
  dev: string;
  ino: string;
  path: string;
  fp: Fingerprint;
  fh: FileHandle | null = null;
  offset: number;
  skip: boolean;
  scanPos: number;
  scanSkip: boolean;
  readPos: number;
  carry: Buffer | null = null;
  /** The pool slab the last read went to (the carry may live in it), or null. */
  private slab: Buffer | null = null;
  private pool: SlabPool | undefined;
  /** The carry may hold complete lines (framing stopped at a full batch). */
  carryHasLines = false;
  /** The file's size as last seen. */
  size: number;
  /** Whether the last scan found it under the include globs; false: rotated away or deleted. */
  matched = true;
  unmatchedAt = 0;
  /** When bytes last arrived from the file (or it was first tracked). */
  lastDataAt: number;
  lastUsedAt = 0;
  /** A read may find more bytes. */
  needsRead = true;
  private cached: { key: string; entry: PositionEntry; dev: string; ino: string; hash: string } | null = null;

  constructor(
    init: TailInit,
    readonly agg: MultilineAggregator | null,
  ) {
    this.dev = init.dev;
    this.ino = init.ino;
    this.path = init.path;
    this.fp = init.fp;
    this.offset = this.scanPos = this.readPos = init.offset;
    this.skip = this.scanSkip = init.skip;
    this.size = init.size;
    this.lastDataAt = init.now;
  }

  get inode(): string {
    return `${this.dev}:${this.ino}`;
  }

  get key(): string {
    return this.entryAndKey().key;
  }

  entry(): PositionEntry {
    return this.entryAndKey().entry;
  }

  /** The position entry, a new object only when something in it changed (snapshots share them). */
  private entryAndKey(): { key: string; entry: PositionEntry } {
    const c = this.cached;
    if (
      c !== null &&
      c.entry.offset === this.offset &&
      (c.entry.skip === true) === this.skip &&
      c.entry.path === this.path &&
      c.entry.fp_bytes === this.fp.bytes &&
      c.hash === this.fp.hash &&
      c.ino === this.ino &&
      c.dev === this.dev
    ) {
      return c;
    }
    this.cached = { key: identity(this.dev, this.ino, this.fp.hash), entry: toEntry(this.state(false)), dev: this.dev, ino: this.ino, hash: this.fp.hash };
    return this.cached;
  }

  state(gone: boolean): StreamState {
    return { dev: this.dev, ino: this.ino, fp: this.fp, path: this.path, offset: this.offset, skip: this.skip, gone };
  }

  /** No bytes known to be unread: everything read is framed and the file has not grown. */
  atEof(): boolean {
    return !this.carryHasLines && this.readPos >= this.size;
  }

  hasWork(): boolean {
    return this.carryHasLines || this.needsRead || this.size > this.readPos;
  }

  /** Starts over at `offset` as a new stream (after a truncation): nothing read, nothing pending. */
  restart(offset: number, fp: Fingerprint): void {
    this.fp = fp;
    this.offset = this.scanPos = this.readPos = offset;
    this.skip = this.scanSkip = false;
    this.carry = null;
    this.carryHasLines = false;
    this.agg?.flush();
    this.needsRead = true;
  }

  /** Forgets what was read but not framed (the file handle is being closed); it is read again. */
  dropCarry(): void {
    this.readPos = this.scanPos;
    this.carry = null;
    this.carryHasLines = false;
    this.needsRead = true;
  }

  /**
   * Sets the carry after framing; once it no longer lives in the last read's buffer (all framed,
   * or a short partial line copied out), that buffer goes back to the pool for the next read.
   */
  keepCarry(rest: Buffer | null): void {
    this.carry = rest;
    if (this.slab !== null && (rest === null || rest.buffer !== this.slab.buffer)) {
      this.pool?.give(this.slab);
      this.slab = null;
    }
  }

  /**
   * Reads up to `chunkBytes` more bytes after the carry. Returns the count, or 'replaced' when the
   * file no longer starts with the bytes it was identified by (truncated and rewritten): then
   * nothing read is kept. Grows the fingerprint up to `fingerprintBytes` as the file grows.
   */
  async readChunk(chunkBytes: number, fingerprintBytes: number, now: number, pool?: SlabPool): Promise<number | 'replaced'> {
    const fh = this.fh!;
    const known = this.size - this.readPos;
    const want = known > 0 ? Math.min(chunkBytes, known) : Math.min(chunkBytes, 65536);
    const carryLen = this.carry?.length ?? 0;
    this.pool = pool;
    const { buf, slab } = pool !== undefined ? pool.take(carryLen + want) : { buf: Buffer.allocUnsafe(carryLen + want), slab: undefined };
    if (carryLen > 0) this.carry!.copy(buf, 0);
    const { bytesRead } = await fh.read(buf, carryLen, want, this.readPos);
    if (bytesRead > 0) {
      // Checked after the read: a truncation before it shows as a changed prefix now. From
      // offset 0 the bytes just read are the prefix; they must still be the identified ones.
      const prefix =
        this.readPos === 0 && bytesRead >= this.fp.bytes
          ? buf.subarray(carryLen, carryLen + Math.min(bytesRead, fingerprintBytes))
          : await readPrefix(fh, fingerprintBytes);
      if (!verifies(prefix, this.fp)) {
        if (slab !== undefined) pool!.give(slab);
        return 'replaced';
      }
      if (prefix.length > this.fp.bytes) this.fp = fingerprintOf(prefix);
      this.lastDataAt = now;
    }
    this.carry = carryLen + bytesRead > 0 ? buf.subarray(0, carryLen + bytesRead) : null;
    // The last read's buffer held nothing but the carry, copied into this one: back to the pool.
    if (this.slab !== null) pool?.give(this.slab);
    this.slab = slab ?? null;
    this.readPos += bytesRead;
    // A short read is the end of the file for now.
    this.needsRead = bytesRead === want;
    this.size = this.needsRead ? Math.max(this.size, this.readPos) : this.readPos;
    return bytesRead;
  }
}
