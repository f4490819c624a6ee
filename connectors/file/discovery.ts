/**
 * Which stream is a file? The walk of the include globs, and identity: (device, inode) plus a
 * fingerprint of the first bytes (docs/connectors/file-source.md, "Identity, truncation and
 * rotation").
 *
 *  1. a saved or known inode whose first bytes still match resumes at its offset (if the file is
 *     now shorter than that, it was truncated: from 0, counted);
 *  2. an inode whose first bytes changed was truncated and rewritten, or reused: a new stream;
 *  3. a new inode with the full fingerprint of a stream whose file is gone or truncated is a copy
 *     of it (copytruncate, or a device number that changed) and continues it;
 *  4. one with the fingerprint of a stream still being read, and the same bytes where the shorter
 *     of the two ends, is a copy too: not read twice;
 *  5. a stream whose inode is no longer under the globs was rotated away or deleted: it is read to
 *     its end (through its handle, or found again by inode in its directory).
 */
import { open, type FileHandle } from 'node:fs/promises';
import type { FileSourceStats } from './emit.js';
import { fingerprintOf, readPrefix, verifies } from './fingerprint.js';
import type { StreamState } from './position.js';
import { findFiles, findInode, inodeKey, type FoundFile } from './scan.js';
import type { ResolvedConfig } from './source-config.js';
import type { Orphan, StreamTable } from './streams.js';
import type { Tail } from './tail.js';

/** Logs; with a key only once per key. Returns whether it logged. */
export type Say = (level: 'info' | 'warn', message: string, key?: string) => boolean;

const PERMISSION = new Set(['EACCES', 'EPERM']);

export class Discovery {
  private scanCount = 0;

  constructor(
    private readonly table: StreamTable,
    private readonly cfg: ResolvedConfig,
    private readonly stats: FileSourceStats,
    private readonly say: Say,
  ) {}

  /**
   * Walks the globs: tracks new inodes, notices files rotated away, prunes what is gone.
   * `startAtEnd`: new files start after their last complete line (start_at: end, first start).
   */
  async scan(startAtEnd: boolean, stopped: () => boolean): Promise<void> {
    const { table } = this;
    const scan = ++this.scanCount;
    const found = await findFiles(this.cfg.include, this.cfg.exclude, (path, err) => {
      if (this.say('warn', `cannot list ${path}: ${err.code ?? err.message}`, `list:${path}:${err.code}`)) this.stats.list_errors++;
    });
    const seen = new Set<Tail>();
    // Files of saved streams first, so a stream claims its own inode before a copy of it can.
    const savedInodes = new Set(table.orphans.map((o) => inodeKey(o.dev, o.ino)));
    const files = [...found.values()].sort((a, b) => Number(savedInodes.has(b.inode)) - Number(savedInodes.has(a.inode)));
    for (const f of files) {
      if (stopped()) return;
      const t = table.tails.get(f.inode);
      if (t !== undefined) {
        seen.add(t);
        table.setPath(t, f.path);
        t.matched = true;
        if (f.size !== t.size || f.size !== t.readPos) {
          if (f.size > t.size) t.needsRead = true;
          t.size = f.size;
          table.ready.add(t);
        }
        continue;
      }
      const ig = table.ignored.get(f.inode);
      if (ig !== undefined && ig.size === f.size && ig.ctimeMs === f.ctimeMs) {
        ig.scan = scan;
        continue;
      }
      table.ignored.delete(f.inode);
      await this.discover(f, scan, startAtEnd);
      const added = table.tails.get(f.inode);
      if (added !== undefined) seen.add(added);
    }
    const now = Date.now();
    for (const t of [...table.tails.values()]) {
      if (seen.has(t)) continue;
      if (t.matched) {
        table.unmatch(t, now);
        table.ready.add(t);
      }
      if (t.fh === null) await this.relocate(t);
    }
    for (const [inode, ig] of table.ignored) if (ig.scan !== scan) table.ignored.delete(inode);
    this.pruneOrphans(now);
  }

  /**
   * After the first scan of a restart: streams of the position not found under the globs were
   * perhaps rotated (renamed) while sluice was down — then they are in the same directory under
   * another name, maybe with unread bytes. They are read to their end.
   */
  async findRotatedWhileStopped(): Promise<void> {
    for (const o of [...this.table.orphans]) {
      if (o.gone) continue;
      const found = await findInode(o.path, inodeKey(o.dev, o.ino));
      if (found === null || this.table.tails.has(found.inode)) continue;
      if (await this.trackRotated(found, o)) {
        this.table.dropOrphan(o);
        this.say('info', `${o.path} was rotated to ${found.path} while stopped; reading it from offset ${o.offset} to its end`);
      }
    }
  }

  /** A file under the globs, not being read, that starts with `t`'s (full) fingerprint. */
  async findCopy(t: Tail): Promise<{ file: FoundFile; fh: FileHandle } | null> {
    const found = await findFiles(this.cfg.include, this.cfg.exclude, () => undefined);
    for (const f of found.values()) {
      if (this.table.tails.has(f.inode) || f.size < t.fp.bytes) continue;
      let fh: FileHandle;
      try {
        fh = await open(f.path, 'r');
      } catch {
        continue;
      }
      if (verifies(await readPrefix(fh, t.fp.bytes), t.fp)) return { file: f, fh };
      await fh.close();
    }
    return null;
  }

  /** A new inode under the globs: which stream is it? */
  private async discover(f: FoundFile, scan: number, startAtEnd: boolean): Promise<void> {
    const { table } = this;
    let fh: FileHandle;
    try {
      fh = await open(f.path, 'r');
    } catch (err) {
      this.openFailed(f, err as NodeJS.ErrnoException, scan);
      return;
    }
    let kept = false;
    try {
      const st = await fh.stat({ bigint: true });
      if (inodeKey(st.dev, st.ino) !== f.inode) return; // replaced between the walk and the open: next scan
      const prefix = await readPrefix(fh, this.cfg.fingerprintBytes);
      const fp = fingerprintOf(prefix);
      const now = Date.now();
      // 1. The stream saved for this inode, if its first bytes are still the same.
      const own = table.orphans.find((o) => !o.gone && o.dev === f.dev && o.ino === f.ino && verifies(prefix, o.fp));
      for (const o of table.orphans) {
        if (o !== own && !o.gone && o.dev === f.dev && o.ino === f.ino) {
          // 2. Its inode holds other bytes now: truncated and rewritten, or the inode was reused.
          this.stats.file_truncations++;
          this.say('warn', `${f.path} no longer starts with the bytes read before (truncated and rewritten, or a new file on a reused inode): reading it from the start`);
          o.gone = true;
          o.entry = undefined;
          table.dirty = true;
        }
      }
      if (own !== undefined) {
        table.dropOrphan(own);
        if (own.offset > f.size) {
          this.stats.file_truncations++;
          this.say('warn', `${f.path} is shorter (${f.size} bytes) than the offset read (${own.offset}): truncated; reading it again from the start`);
          table.orphans.push({ ...own, gone: true, since: now, entry: undefined });
          kept = table.add(f, fh, fp, 0, false, now).fh !== null;
        } else {
          kept = table.add(f, fh, fp, own.offset, own.skip, now).fh !== null;
        }
        return;
      }
      if (fp.bytes === this.cfg.fingerprintBytes) {
        // 3. A copy of a stream whose file is gone or was truncated: continue it.
        const orphan = table.orphans.find((o) => o.fp.bytes === fp.bytes && o.fp.hash === fp.hash && !(o.gone && o.dev === f.dev && o.ino === f.ino));
        if (orphan !== undefined) {
          table.dropOrphan(orphan);
          this.stats.copies_continued++;
          const at = Math.min(orphan.offset, f.size);
          this.say('info', `${f.path} is a copy of ${orphan.path} (same first ${fp.bytes} bytes): continuing it at offset ${at}`);
          kept = table.add(f, fh, fp, at, at === orphan.offset && orphan.skip, now).fh !== null;
          return;
        }
        // 4. A copy of a stream being read: the same lines, not read twice.
        for (const t of table.tails.values()) {
          if (t.fp.bytes !== fp.bytes || t.fp.hash !== fp.hash) continue;
          const same = await this.sameBytes(t, fh, f.size);
          if (same === 'different') continue; // the same header, other content: its own stream
          if (this.say('info', `${f.path} is a copy of ${t.path} (same first ${fp.bytes} bytes): not read twice`, `dup:${f.inode}`)) {
            this.stats.duplicates_ignored++;
          }
          // Unsure (the original changed under it, e.g. it was just truncated): look again next scan.
          table.ignored.set(f.inode, { reason: 'duplicate', size: same === 'same' ? f.size : -1, ctimeMs: f.ctimeMs, scan });
          return;
        }
      }
      if (prefix.length === 0 && table.tails.size > 0) {
        // Empty: nothing to read yet, and maybe a copy of a stream being read that is still being
        // written (cp creates the file, then writes it). Looked at again once it changes, when its
        // first bytes tell a copy (4. above) from a new stream.
        table.ignored.set(f.inode, { reason: 'duplicate', size: f.size, ctimeMs: f.ctimeMs, scan });
        return;
      }
      // A new stream.
      let offset = 0;
      const old = this.cfg.ignoreOlderMs !== null && now - f.mtimeMs > this.cfg.ignoreOlderMs;
      if (startAtEnd || old) {
        offset = await lastLineEnd(fh, f.size);
        if (offset > 0) table.dirty = true;
      }
      kept = table.add(f, fh, fp, offset, false, now).fh !== null;
    } catch (err) {
      if (this.say('warn', `cannot read ${f.path}: ${(err as Error).message}`, `read:${f.inode}`)) this.stats.read_errors++;
    } finally {
      if (!kept) await fh.close().catch(() => undefined);
    }
  }

  /**
   * Whether a file with the same first bytes as `t`'s also has the same bytes where the shorter
   * of the two ends — a copy — or not: two files that only share a header. 'unsure' when `t`'s
   * file no longer starts with its fingerprint (truncated: its next read finds out).
   */
  private async sameBytes(t: Tail, fh: FileHandle, size: number): Promise<'same' | 'different' | 'unsure'> {
    let own = t.fh;
    const opened = own === null;
    try {
      if (own === null) {
        try {
          own = await open(t.path, 'r');
        } catch {
          return 'unsure';
        }
        const st = await own.stat({ bigint: true });
        if (inodeKey(st.dev, st.ino) !== t.inode) return 'unsure';
      }
      const n = this.cfg.fingerprintBytes;
      if (!verifies(await readPrefix(own, n), t.fp)) {
        t.needsRead = true;
        this.table.ready.add(t);
        return 'unsure';
      }
      const end = Math.min(size, (await own.stat()).size);
      if (end <= n) return 'same';
      const a = Buffer.alloc(n);
      const b = Buffer.alloc(n);
      await own.read(a, 0, n, end - n);
      await fh.read(b, 0, n, end - n);
      return a.equals(b) ? 'same' : 'different';
    } finally {
      if (opened) await own?.close().catch(() => undefined);
    }
  }

  /** Tracks a file outside the globs that holds a saved stream (rotated while stopped). */
  private async trackRotated(f: FoundFile, o: StreamState): Promise<boolean> {
    let fh: FileHandle;
    try {
      fh = await open(f.path, 'r');
    } catch (err) {
      if (this.say('warn', `cannot open ${f.path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, `open:${f.inode}`)) this.stats.open_errors++;
      return false;
    }
    const prefix = await readPrefix(fh, this.cfg.fingerprintBytes);
    if (!verifies(prefix, o.fp) || o.offset > f.size) {
      await fh.close();
      return false;
    }
    const now = Date.now();
    const t = this.table.add(f, fh, fingerprintOf(prefix), o.offset, o.skip, now);
    if (t.fh === null) await fh.close();
    this.table.unmatch(t, now);
    return true;
  }

  /** A closed tail whose inode is no longer under the globs: renamed next to them, or gone. */
  private async relocate(t: Tail): Promise<void> {
    const f = await findInode(t.path, t.inode);
    if (f !== null) {
      t.path = f.path;
      t.size = f.size;
      t.needsRead = true;
      this.table.ready.add(t);
      return;
    }
    this.table.remove(t);
    if (t.size > t.offset || t.carry !== null) {
      this.stats.files_lost++;
      this.say('warn', `${t.path} vanished while its handle was closed, at offset ${t.offset} of ${t.size} bytes: the rest is lost`);
    } else {
      this.say('info', `${t.path} is gone; it was read to its end`);
    }
  }

  private openFailed(f: FoundFile, err: NodeJS.ErrnoException, scan: number): void {
    if (err.code === 'ENOENT') return; // vanished between the walk and the open
    this.table.ignored.set(f.inode, { reason: 'unreadable', size: f.size, ctimeMs: f.ctimeMs, scan });
    if (PERMISSION.has(err.code ?? '')) {
      if (this.say('warn', `cannot read ${f.path}: permission denied (${err.code}); skipped until it changes`, `perm:${f.inode}:${f.ctimeMs}`)) {
        this.stats.unreadable_files++;
      }
    } else {
      if (this.say('warn', `cannot open ${f.path}: ${err.code ?? err.message}; skipped until it changes`, `open:${f.inode}:${f.ctimeMs}`)) {
        this.stats.open_errors++;
      }
    }
  }

  /** Streams without a file are kept `rotate_wait_ms` (a copy may still show up), then forgotten. */
  private pruneOrphans(now: number): void {
    const { table } = this;
    const keep: Orphan[] = [];
    for (const o of table.orphans) {
      // A saved stream whose file is there but unreadable for now keeps its offset.
      if (now - o.since < this.cfg.rotateWaitMs || (!o.gone && table.ignored.get(inodeKey(o.dev, o.ino))?.reason === 'unreadable')) keep.push(o);
      else if (!o.gone) this.say('warn', `${o.path} (offset ${o.offset}) was not found again: forgotten; bytes after that offset, if any, were not read`);
    }
    if (keep.length !== table.orphans.length) {
      table.orphans = keep;
      table.dirty = true;
    }
  }
}

/** Where "the end" of a file is for start_at: end — after its last complete line. */
async function lastLineEnd(fh: FileHandle, size: number): Promise<number> {
  const window = Math.min(size, 65536);
  if (window === 0) return 0;
  const buf = Buffer.allocUnsafe(window);
  const { bytesRead } = await fh.read(buf, 0, window, size - window);
  const lf = buf.subarray(0, bytesRead).lastIndexOf(0x0a);
  if (lf >= 0) return size - window + lf + 1;
  return size > window ? size : 0;
}
