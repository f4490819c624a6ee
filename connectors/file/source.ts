/**
 * `file` source: tails log files matched by globs, exactly once across restarts, truncation and
 * rotation (docs/connectors/file-source.md).
 *
 * How it is driven: all reading happens inside read(), which the runtime calls only when it has
 * room for another batch — so when the pipeline is full, files are simply not read (bounded
 * memory: one read buffer for the file being read, a partial line per open file). Each batch
 * carries a position (position.ts) describing every file up to and including that batch;
 * open(position) resumes right after it.
 *
 * One read() step: walk the globs if due or asked (discovery.ts: which stream is each file?),
 * check open files for growth and truncation if due, read the files that have bytes (round
 * robin, framed by emit.ts), emit what timed out (partial lines, multiline events) and release
 * rotated files read to their end. Then return the batch — or, with nothing to return, wait for
 * a file event, the next poll or the next timeout.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import { watch, type FSWatcher } from 'chokidar';
import { SlabPool, type ConnectorContext, type Source, type SourceBatch, type SourceDeclaration, type SourceMetric } from '../sdk.js';
import { Discovery } from './discovery.js';
import { Batch, Emitter, emptyStats, type FileSourceStats } from './emit.js';
import { fingerprintOf, readPrefix, verifies } from './fingerprint.js';
import { MultilineAggregator } from './multiline.js';
import { parsePosition, type FilePosition } from './position.js';
import { inodeKey, type FoundFile } from './scan.js';
import { fileSourceSchema, resolveConfig, validateConfig, type FileSourceConfig, type ResolvedConfig } from './source-config.js';
import { StreamTable } from './streams.js';
import { CHUNK } from './text-json.js';
import type { Tail } from './tail.js';

export type { FileSourceConfig } from './source-config.js';
export type { FileSourceStats } from './emit.js';

export class FileSource implements Source {
  readonly stats: FileSourceStats = emptyStats();
  private readonly cfg: ResolvedConfig;
  private readonly table: StreamTable;
  private readonly discovery: Discovery;
  private readonly emitter: Emitter;
  private firstStart = false;
  private lastScanAt = 0;
  private lastRefreshAt = 0;
  private scanRequested = false;
  /** Paths file events said changed, since the last read step. */
  private readonly changed = new Set<string>();
  private watcher: FSWatcher | null = null;
  private wake: (() => void) | null = null;
  private closed = false;
  /** Keys of problems already logged, so one that persists is logged once. */
  private readonly said = new Set<string>();
  /**
   * Chunks for `format: text` events encoded from their bytes. A batch's chunks come back when the
   * runtime acks the batch (it is durable in the log, which holds its own copy), in read order.
   */
  private readonly chunks = new SlabPool(CHUNK, 16);
  /**
   * Read buffers: a tail gives its last one back once its carry no longer lives in it (so a
   * tail holds one at most, as before, and only while it has unframed bytes in it).
   */
  private readonly reads: SlabPool;
  /** Each batch's chunks by its position object (the runtime acks with the same object). */
  private readonly unacked = new Map<unknown, Buffer[]>();

  constructor(
    config: FileSourceConfig,
    private readonly ctx: ConnectorContext,
  ) {
    this.cfg = resolveConfig(config, ctx.baseDir);
    // Room for a read and a partial line carried in front of it.
    this.reads = new SlabPool(this.cfg.readBufferBytes + 64 * 1024, 4);
    const multiline = this.cfg.multiline;
    this.table = new StreamTable(this.cfg.maxOpenFiles, () => (multiline === null ? null : new MultilineAggregator(multiline, this.cfg.maxLineBytes)));
    this.discovery = new Discovery(this.table, this.cfg, this.stats, (level, message, key) => this.say(level, message, key));
    this.emitter = new Emitter({ format: this.cfg.format, onParseError: this.cfg.onParseError, maxLineBytes: this.cfg.maxLineBytes, host: hostname() }, this.stats);
  }

  /** Files being tailed (including rotated ones still being read). */
  get fileCount(): number {
    return this.table.tails.size;
  }

  get openFileCount(): number {
    return this.table.openFiles;
  }

  async open(position: unknown): Promise<void> {
    const now = Date.now();
    this.firstStart = position === undefined || position === null;
    this.table.orphans = parsePosition(position).map((s) => ({ ...s, since: now }));
    await this.scan(this.firstStart && this.cfg.startAt === 'end');
    await this.discovery.findRotatedWhileStopped();
    // The first batch pins where reading starts (start_at: end) and prunes what is gone.
    this.table.dirty = true;
    this.startWatcher();
  }

  async read(): Promise<SourceBatch | null> {
    while (!this.stopped) {
      const now = Date.now();
      const batch = new Batch(this.cfg.batchMaxLines, this.cfg.batchMaxBytes, now, this.ctx.runs === true, this.chunks);
      if (this.scanRequested || now - this.lastScanAt >= this.cfg.pollIntervalMs) await this.scan(false);
      if (now - this.lastRefreshAt >= this.cfg.pollIntervalMs) await this.refresh(batch);
      for (const path of this.changed) {
        const t = this.table.byPath.get(path);
        if (t !== undefined) {
          t.needsRead = true;
          this.table.ready.add(t);
        }
      }
      this.changed.clear();
      await this.pump(batch);
      await this.timeouts(batch, Date.now());
      if (this.stopped && batch.count === 0) break;
      if (batch.count > 0 || this.table.dirty) {
        this.table.dirty = false;
        const position = this.table.snapshot();
        this.unacked.set(position, batch.slabs);
        // Read without acks (a test driving the source): the chunks are left to the collector.
        if (this.unacked.size > 64) this.unacked.delete(this.unacked.keys().next().value);
        return { records: batch.records, position };
      }
      await this.sleep(this.nextDeadline(Date.now()));
    }
    return null;
  }

  /**
   * The runtime acks each batch read, in order, once it is durable (the log holds its own copy):
   * its chunks, and those of the batches before it, are free again.
   */
  async ack(position: unknown): Promise<void> {
    if (!this.unacked.has(position)) return;
    for (const [p, slabs] of this.unacked) {
      this.unacked.delete(p);
      for (const slab of slabs) this.chunks.give(slab);
      if (p === position) break;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.wake?.();
    const w = this.watcher;
    this.watcher = null;
    await w?.close().catch(() => undefined);
    await this.table.closeAll();
  }

  /** Its counters and file counts as metrics (exported by the runtime as sluice_source_file_*). */
  metrics(): SourceMetric[] {
    const s = this.stats;
    const counter = (name: string, help: string, value: number, labels?: Record<string, string>): SourceMetric =>
      labels === undefined ? { name, help, kind: 'counter', value } : { name, help, kind: 'counter', value, labels };
    const errors = 'Files the source could not read, by reason: permission, vanished (with unread bytes), open, read (I/O error), list (a directory).';
    return [
      counter('errors_total', errors, s.unreadable_files, { reason: 'permission' }),
      counter('errors_total', errors, s.files_lost, { reason: 'vanished' }),
      counter('errors_total', errors, s.open_errors, { reason: 'open' }),
      counter('errors_total', errors, s.read_errors, { reason: 'read' }),
      counter('errors_total', errors, s.list_errors, { reason: 'list' }),
      counter('events_total', 'Events (lines or multiline events) emitted.', s.events),
      counter('bytes_read_total', 'Bytes read from files.', s.bytes_read),
      counter('lines_truncated_total', 'Lines (or multiline events) cut at max_line_bytes.', s.truncated_lines),
      counter('invalid_utf8_lines_total', 'Lines whose invalid UTF-8 was replaced by U+FFFD.', s.invalid_utf8_lines),
      counter('parse_errors_total', 'json/logfmt lines that did not parse (kept with parse_error, or dead-lettered).', s.parse_errors),
      counter('partial_lines_flushed_total', 'Last lines emitted without their newline (timeout, rotation, truncation).', s.partial_lines_flushed),
      counter('truncations_total', 'Files found truncated or replaced under the source, read again from the start.', s.file_truncations),
      counter('copies_continued_total', 'Copies of a file (copytruncate) continued where the original stopped.', s.copies_continued),
      counter('duplicates_ignored_total', 'Copies of a file still being read, not read twice.', s.duplicates_ignored),
      counter('rotated_files_drained_total', 'Rotated or deleted files read to their end and released.', s.rotated_files_drained),
      counter('files_closed_inactive_total', 'Handles closed after close_inactive_ms without growth (reopened when the file grows).', s.files_closed_inactive),
      { name: 'files_watched', help: 'Files being tailed, rotated ones still being read included.', kind: 'gauge', value: this.table.tails.size },
      { name: 'files_open', help: 'File handles the source holds open.', kind: 'gauge', value: this.table.openFiles },
    ];
  }

  /** The position after everything emitted so far. */
  snapshot(): FilePosition {
    return this.table.snapshot();
  }

  private get stopped(): boolean {
    return this.closed || this.ctx.signal.aborted;
  }

  private async scan(startAtEnd: boolean): Promise<void> {
    this.scanRequested = false;
    this.lastScanAt = Date.now();
    await this.discovery.scan(startAtEnd, () => this.stopped);
  }

  // ---- reading ----

  /** Reads the files that may have bytes, round robin, until the batch is full or none has any. */
  private async pump(batch: Batch): Promise<void> {
    const { ready, tails } = this.table;
    let budget = 4 * Math.max(this.cfg.batchMaxBytes, this.cfg.readBufferBytes);
    for (let progress = true; progress && !batch.full && ready.size > 0 && budget > 0 && !this.stopped; ) {
      progress = false;
      for (const t of [...ready]) {
        if (batch.full || budget <= 0 || this.stopped) break;
        ready.delete(t);
        if (tails.get(t.inode) !== t) continue;
        const n = await this.drain(t, batch, Math.min(budget, this.cfg.readBufferBytes));
        budget -= n;
        // Back in the queue (at its end) only after progress; a file that cannot be read now is
        // tried again when an event, a scan or a refresh says it changed.
        if (n > 0) {
          progress = true;
          if (t.hasWork() && tails.get(t.inode) === t) {
            ready.delete(t);
            ready.add(t);
          }
        }
      }
    }
    // Out of budget with only discarded bytes so far: commit the progress anyway.
    if (budget <= 0 && batch.count === 0) this.table.dirty = true;
  }

  /**
   * Reads one file's share; returns the bytes consumed (read or framed). A read that fails (an
   * I/O error) is logged and counted, and closes the file: the others go on, and this one is
   * tried again from its committed bytes when it changes.
   */
  private async drain(t: Tail, batch: Batch, quantum: number): Promise<number> {
    try {
      return await this.drainOnce(t, batch, quantum);
    } catch (err) {
      if (t.fh === null) throw err;
      const e = err as NodeJS.ErrnoException;
      if (this.say('warn', `cannot read ${t.path}: ${e.code ?? e.message}; closed, tried again when it changes`, `readerr:${t.inode}:${e.code}`)) {
        this.stats.read_errors++;
      }
      await this.table.detach(t);
      t.needsRead = false;
      return 0;
    }
  }

  private async drainOnce(t: Tail, batch: Batch, quantum: number): Promise<number> {
    if (t.fh === null && !(await this.reopen(t, batch))) {
      t.needsRead = false;
      return 0;
    }
    t.lastUsedAt = batch.now;
    let done = 0;
    let recheck = true;
    while (!batch.full && t.fh !== null) {
      if (t.carryHasLines) {
        const before = t.scanPos;
        if (this.emitter.consume(t, batch, 'fill')) this.table.dirty = true;
        done += t.scanPos - before;
        continue;
      }
      if (done >= quantum) break;
      const n = await t.readChunk(this.cfg.readBufferBytes, this.cfg.fingerprintBytes, Date.now(), this.reads);
      if (n === 'replaced') {
        await this.truncated(t, batch);
        break;
      }
      if (n === 0) {
        const st = await t.fh.stat();
        if (st.size < t.readPos) await this.truncated(t, batch);
        else if (st.size > t.readPos && recheck) {
          // It grew right after the read: once more (only once: some files never read what stat says).
          recheck = false;
          t.size = st.size;
          continue;
        }
        break;
      }
      done += n;
      this.stats.bytes_read += n;
      if (this.emitter.consume(t, batch, 'fill')) this.table.dirty = true;
      if (!t.needsRead) break;
    }
    return done;
  }

  /** Reopens a closed tail by its path, checking it is the same file; false if it cannot be read now. */
  private async reopen(t: Tail, batch: Batch): Promise<boolean> {
    if (!(await this.table.makeRoom(t))) return false;
    let fh: FileHandle;
    try {
      fh = await open(t.path, 'r');
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'ENOENT') this.scanRequested = true;
      else if (this.say('warn', `cannot reopen ${t.path}: ${e.code ?? e.message}`, `reopen:${t.inode}:${e.code}`)) {
        if (e.code === 'EACCES' || e.code === 'EPERM') this.stats.unreadable_files++;
        else this.stats.open_errors++;
      }
      return false;
    }
    const st = await fh.stat({ bigint: true });
    if (inodeKey(st.dev, st.ino) !== t.inode) {
      // Its path is another file now: the next scan finds where it went.
      await fh.close();
      this.scanRequested = true;
      return false;
    }
    this.table.attach(t, fh);
    t.size = Number(st.size);
    const prefix = await readPrefix(fh, this.cfg.fingerprintBytes);
    if (!verifies(prefix, t.fp) || t.size < t.readPos) await this.truncated(t, batch);
    return t.fh !== null;
  }

  /**
   * The file is shorter than what was read, or starts with other bytes: truncated (copytruncate)
   * or replaced. Complete lines read before are emitted. If a copy of the old content is under
   * the globs, the stream continues in it; otherwise the partial line is emitted too (nothing more
   * of it will come) and the old stream is kept a while, so that a copy showing up later still
   * continues it. The truncated file starts a new stream from 0.
   */
  private async truncated(t: Tail, batch: Batch): Promise<void> {
    const { table } = this;
    this.stats.file_truncations++;
    this.say('warn', `${t.path} was truncated or replaced after ${t.readPos} bytes read: reading it again from the start`);
    const fh = t.fh!;
    this.emitter.consume(t, batch, 'lines');
    const copy = t.fp.bytes === this.cfg.fingerprintBytes ? await this.discovery.findCopy(t) : null;
    const st = await fh.stat({ bigint: true });
    const now = Date.now();
    if (copy !== null && copy.file.size >= t.scanPos) {
      this.stats.copies_continued++;
      this.say('info', `${copy.file.path} is a copy of ${t.path} (copytruncate): continuing it at offset ${t.scanPos}`);
      const path = t.path;
      table.moveTo(t, copy.file, copy.fh);
      // The truncated file, under its path, is a new stream.
      const file: FoundFile = { path, inode: inodeKey(st.dev, st.ino), dev: String(st.dev), ino: String(st.ino), size: Number(st.size), mtimeMs: 0, ctimeMs: 0 };
      const fresh = table.add(file, fh, fingerprintOf(await readPrefix(fh, this.cfg.fingerprintBytes)), 0, false, now);
      if (fresh.fh === null) await fh.close();
      return;
    }
    if (copy !== null) await copy.fh.close();
    this.emitter.consume(t, batch, 'final');
    if (t.offset > 0) table.orphans.push({ ...t.state(true), since: now });
    // Copies of the old content set aside as duplicates may now be its continuation.
    for (const [inode, ig] of table.ignored) if (ig.reason === 'duplicate') table.ignored.delete(inode);
    t.restart(0, fingerprintOf(await readPrefix(fh, this.cfg.fingerprintBytes)));
    t.size = Number(st.size);
    table.ready.add(t);
    table.dirty = true;
    this.scanRequested = true;
  }

  /** fstat of every open file: growth and truncation. */
  private async refresh(batch: Batch): Promise<void> {
    this.lastRefreshAt = Date.now();
    for (const t of [...this.table.tails.values()]) {
      if (t.fh === null || this.stopped) continue;
      let size: number;
      try {
        size = (await t.fh.stat()).size;
      } catch {
        continue;
      }
      if (size < t.readPos) await this.truncated(t, batch);
      else if (size > t.readPos) {
        t.size = size;
        t.needsRead = true;
        this.table.ready.add(t);
      }
    }
  }

  /** Partial lines and multiline events whose wait is over; rotated files read to their end. */
  private async timeouts(batch: Batch, now: number): Promise<void> {
    const { partialLineTimeoutMs: partialMs, multilineTimeoutMs: multilineMs, rotateWaitMs, closeInactiveMs } = this.cfg;
    for (const t of [...this.table.tails.values()]) {
      if (!t.atEof()) continue;
      if (!t.matched && t.fh !== null && now - Math.max(t.lastDataAt, t.unmatchedAt) >= rotateWaitMs) {
        // One last look before letting go.
        const size = (await t.fh.stat()).size;
        if (size > t.readPos) {
          t.size = size;
          t.needsRead = true;
          this.table.ready.add(t);
          continue;
        }
        this.emitter.consume(t, batch, 'final');
        this.stats.rotated_files_drained++;
        this.say('info', `${t.path} (rotated or deleted) was read to its end (${t.readPos} bytes) and released`);
        await this.table.detach(t);
        this.table.remove(t);
        continue;
      }
      if (t.matched && t.fh !== null && closeInactiveMs > 0 && t.carry === null && t.agg?.pending !== true && now - t.lastDataAt >= closeInactiveMs) {
        // Idle: give the handle back (the next walk reopens it by path, checking its identity, when it grows).
        this.stats.files_closed_inactive++;
        await this.table.detach(t);
        continue;
      }
      if (t.carry !== null && !t.scanSkip && partialMs > 0 && now - t.lastDataAt >= partialMs) {
        if (this.emitter.consume(t, batch, 'final')) this.table.dirty = true;
      } else if (t.agg?.pending === true && now - t.agg.lastAt >= multilineMs) {
        if (this.emitter.flushEvent(t, batch)) this.table.dirty = true;
      }
    }
  }

  /** When the next timer-driven step is due: a poll, a timeout, a release. */
  private nextDeadline(now: number): number {
    if (this.table.ready.size > 0) return now;
    const { partialLineTimeoutMs: partialMs, multilineTimeoutMs: multilineMs, rotateWaitMs, pollIntervalMs, closeInactiveMs } = this.cfg;
    let next = Math.min(this.lastScanAt, this.lastRefreshAt) + pollIntervalMs;
    for (const t of this.table.tails.values()) {
      if (t.matched && t.fh !== null && closeInactiveMs > 0) next = Math.min(next, t.lastDataAt + closeInactiveMs);
      if (!t.matched && t.fh !== null) next = Math.min(next, Math.max(t.lastDataAt, t.unmatchedAt) + rotateWaitMs);
      if (t.carry !== null && !t.scanSkip && partialMs > 0) next = Math.min(next, t.lastDataAt + partialMs);
      if (t.agg?.pending === true) next = Math.min(next, t.agg.lastAt + multilineMs);
    }
    // Timers never spin: a due step that could not run waits a little.
    return Math.max(next, now + 5);
  }

  private sleep(until: number): Promise<void> {
    const ms = until - Date.now();
    if (ms <= 0 || this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.ctx.signal.removeEventListener('abort', done);
        this.wake = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.ctx.signal.addEventListener('abort', done, { once: true });
      this.wake = done;
    });
  }

  /** File events (chokidar) wake the source; the periodic walk stays the safety net. */
  private startWatcher(): void {
    const bases = [...new Set(this.cfg.include.map((g) => g.base))];
    const depth = Math.max(...this.cfg.include.map((g) => g.depth));
    const regexes = this.cfg.include.map((g) => g.regex);
    const unavailable = (err: unknown): void => {
      this.say('warn', `file events unavailable (${(err as Error).message}); relying on polling every ${this.cfg.pollIntervalMs} ms`, 'watch');
    };
    try {
      const w = watch(bases, {
        ignoreInitial: true,
        persistent: true,
        ...(Number.isFinite(depth) ? { depth: depth - 1 } : {}),
        ignored: (path, stats) => stats?.isFile() === true && (!regexes.some((r) => r.test(path)) || this.cfg.exclude.matches(path)),
      });
      w.on('all', (event, path) => {
        if (event === 'change') this.changed.add(path);
        else this.scanRequested = true;
        this.wake?.();
      });
      w.on('error', unavailable);
      this.watcher = w;
    } catch (err) {
      unavailable(err);
    }
  }

  /** Logs; with a `key`, only once per key (a problem that persists). Returns whether it logged. */
  private say(level: 'info' | 'warn', message: string, key?: string): boolean {
    if (key !== undefined) {
      if (this.said.has(key)) return false;
      if (this.said.size > 10_000) this.said.clear();
      this.said.add(key);
    }
    this.ctx.log(level, `file source: ${message}`);
    return true;
  }
}

export const fileSource: SourceDeclaration<FileSourceConfig> = {
  kind: 'source',
  type: 'file',
  summary: 'tails log files matched by globs, exactly once across restarts, truncation and rotation',
  replayable: true,
  schema: fileSourceSchema,
  validate: (config, ctx) => validateConfig(config, ctx.baseDir),
  create: (config, ctx) => new FileSource(config, ctx),
};
