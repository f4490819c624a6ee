/**
 * The `file` source's table of streams: the tails being read (by inode and by path), the streams
 * without a file (orphans), the inodes deliberately not read, the read queue and the open file
 * handles. The position is a snapshot of it.
 */
import type { FileHandle } from 'node:fs/promises';
import type { Fingerprint } from './fingerprint.js';
import type { MultilineAggregator } from './multiline.js';
import { identity, toEntry, type FilePosition, type PositionEntry, type StreamState } from './position.js';
import type { FoundFile } from './scan.js';
import { Tail } from './tail.js';

/** A stream without a file: truncated, vanished, or not found (yet) after a restart. */
export interface Orphan extends StreamState {
  /** When it lost its file; it is forgotten `rotate_wait_ms` later. */
  since: number;
  entry?: PositionEntry;
}

/** An inode seen and deliberately not read: a copy of a stream being read, or unreadable. */
export interface Ignored {
  reason: 'duplicate' | 'unreadable';
  /** Looked at again when its size or ctime changes (-1: at the next scan). */
  size: number;
  ctimeMs: number;
  /** The scan that last saw it. */
  scan: number;
}

export class StreamTable {
  /** Live streams by inode (`dev:ino`). */
  readonly tails = new Map<string, Tail>();
  /** Streams by the path they are under the globs (rotated-away ones are not here). */
  readonly byPath = new Map<string, Tail>();
  /** Tails that may have bytes to read, in round-robin order. */
  readonly ready = new Set<Tail>();
  orphans: Orphan[] = [];
  readonly ignored = new Map<string, Ignored>();
  openFiles = 0;
  /** The position changed without records (pruned, pinned, discarded bytes): commit it anyway. */
  dirty = false;

  constructor(
    private readonly maxOpenFiles: number,
    private readonly aggregator: () => MultilineAggregator | null,
  ) {}

  /** Starts tailing a stream; its handle is kept open if the limit allows (then t.fh is set), else the caller closes it. */
  add(f: FoundFile, fh: FileHandle, fp: Fingerprint, offset: number, skip: boolean, now: number): Tail {
    const t = new Tail({ dev: f.dev, ino: f.ino, path: f.path, fp, offset, skip, size: f.size, now }, this.aggregator());
    this.tails.set(t.inode, t);
    this.setPath(t, f.path);
    this.ready.add(t);
    if (this.openFiles < this.maxOpenFiles) this.attach(t, fh);
    return t;
  }

  /**
   * The stream `t` goes on in another file (a copy of its own), re-keyed under that inode and read
   * again from its framed offset. Returns its former handle, open, for the caller to reuse.
   */
  moveTo(t: Tail, f: FoundFile, fh: FileHandle): FileHandle | null {
    this.tails.delete(t.inode);
    if (this.byPath.get(t.path) === t) this.byPath.delete(t.path);
    const former = t.fh;
    if (former !== null) {
      t.fh = null;
      this.openFiles--;
    }
    t.dropCarry();
    t.dev = f.dev;
    t.ino = f.ino;
    t.size = f.size;
    t.matched = true;
    this.attach(t, fh);
    this.tails.set(t.inode, t);
    this.setPath(t, f.path);
    this.ignored.delete(f.inode);
    this.ready.add(t);
    this.dirty = true;
    return former;
  }

  setPath(t: Tail, path: string): void {
    if (t.path !== path) {
      if (this.byPath.get(t.path) === t) this.byPath.delete(t.path);
      t.path = path;
    }
    this.byPath.set(path, t);
  }

  /** The tail is no longer under the globs (rotated away or deleted). */
  unmatch(t: Tail, now: number): void {
    t.matched = false;
    t.unmatchedAt = now;
    if (this.byPath.get(t.path) === t) this.byPath.delete(t.path);
  }

  attach(t: Tail, fh: FileHandle): void {
    t.fh = fh;
    this.openFiles++;
  }

  /** Closes the tail's handle; what was read but not framed is read again when it reopens. */
  async detach(t: Tail): Promise<void> {
    if (t.fh === null) return;
    const fh = t.fh;
    t.fh = null;
    this.openFiles--;
    t.dropCarry();
    await fh.close().catch(() => undefined);
  }

  /** Forgets a tail (its handle closed by the caller): its entry leaves the position. */
  remove(t: Tail): void {
    this.tails.delete(t.inode);
    if (this.byPath.get(t.path) === t) this.byPath.delete(t.path);
    this.ready.delete(t);
    this.dirty = true;
  }

  /** Whether a handle may be opened, closing the least recently read reopenable file if needed. */
  async makeRoom(except: Tail): Promise<boolean> {
    if (this.openFiles < this.maxOpenFiles) return true;
    let lru: Tail | null = null;
    for (const t of this.tails.values()) {
      // Rotated-away files are not reopened by path: they keep their handles until released.
      if (t.fh === null || t === except || !t.matched) continue;
      if (lru === null || t.lastUsedAt < lru.lastUsedAt) lru = t;
    }
    if (lru === null) return false;
    await this.detach(lru);
    return true;
  }

  dropOrphan(o: Orphan): void {
    const i = this.orphans.indexOf(o);
    if (i >= 0) this.orphans.splice(i, 1);
    this.dirty = true;
  }

  /** The position after everything emitted so far: a new object, entries shared when unchanged. */
  snapshot(): FilePosition {
    const files: Record<string, PositionEntry> = {};
    for (const o of this.orphans) files[identity(o.dev, o.ino, o.fp.hash)] = o.entry ??= toEntry(o);
    for (const t of this.tails.values()) files[t.key] = t.entry();
    return { version: 1, files };
  }

  async closeAll(): Promise<void> {
    for (const t of this.tails.values()) await this.detach(t);
    this.tails.clear();
    this.byPath.clear();
    this.ready.clear();
  }
}
