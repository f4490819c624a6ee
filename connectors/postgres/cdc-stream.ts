/**
 * The replication connection: a `pg` Client with `replication: 'database'`, the slot commands,
 * and the START_REPLICATION stream read as CopyData frames through pg-copy-streams' `both()`
 * (one frame per read, `alignOnCopyDataFrame`). Standby status updates go back on the same
 * stream. Reading is pull-based: when the source stops calling `next()`, the stream's buffer
 * fills, the socket is paused and the server waits (bounded memory).
 */
import type { Duplex } from 'node:stream';
import pg from 'pg';
import copyStreams from 'pg-copy-streams';
import { connectionError, redact, sessionOptions } from './cdc-catalog.js';
import { CdcConnectionError, CdcError, SlotInUseError, WalLevelError } from './cdc-errors.js';
import { encodeStatusUpdate, formatLsn, parseLsn } from './pgoutput.js';

type BothFactory = (sql: string, options: Record<string, unknown>) => Duplex & { submit(connection: unknown): void };
const both = (copyStreams as unknown as { both: BothFactory }).both;

/** Frames buffered ahead of the decoder before the socket is paused. */
const FRAMES_BUFFERED = 4096;

export interface CreatedSlot {
  slot: string;
  consistentPoint: number;
  snapshotName: string | null;
}

export class ReplicationConnection {
  private constructor(
    private readonly client: pg.Client,
    private readonly url: string,
  ) {}

  private failure: Error | null = null;

  static async connect(url: string): Promise<ReplicationConnection> {
    const client = new pg.Client({ connectionString: url, replication: 'database', options: sessionOptions(), connectionTimeoutMillis: 10_000 } as pg.ClientConfig);
    const conn = new ReplicationConnection(client, url);
    client.on('error', (err) => (conn.failure ??= err));
    try {
      await client.connect();
    } catch (err) {
      await client.end().catch(() => undefined);
      throw connectionError(err, url);
    }
    return conn;
  }

  /**
   * CREATE_REPLICATION_SLOT with an exported snapshot (valid until this connection runs another
   * command or closes) or without one.
   */
  async createSlot(slot: string, exportSnapshot: boolean): Promise<CreatedSlot> {
    try {
      const r = await this.client.query<{ consistent_point: string; snapshot_name: string | null }>(
        `CREATE_REPLICATION_SLOT ${this.client.escapeIdentifier(slot)} LOGICAL pgoutput ${exportSnapshot ? 'EXPORT_SNAPSHOT' : 'NOEXPORT_SNAPSHOT'}`,
      );
      const row = r.rows[0]!;
      return { slot, consistentPoint: parseLsn(row.consistent_point), snapshotName: row.snapshot_name };
    } catch (err) {
      throw this.mapError(err, slot);
    }
  }

  /** Starts streaming; the returned stream yields CopyData frames. */
  start(slot: string, lsn: number, publication: string, statusIntervalMs: number): ReplicationStream {
    const pub = this.client.escapeLiteral(this.client.escapeIdentifier(publication));
    const sql = `START_REPLICATION SLOT ${this.client.escapeIdentifier(slot)} LOGICAL ${formatLsn(lsn)} (proto_version '1', publication_names ${pub})`;
    const copy = both(sql, { alignOnCopyDataFrame: true, readableObjectMode: true, readableHighWaterMark: FRAMES_BUFFERED });
    const stream = new ReplicationStream(copy, statusIntervalMs, (err) => this.mapError(err, slot), () => this.failure);
    this.client.query(copy as unknown as pg.Submittable);
    return stream;
  }

  mapError(err: unknown, slot: string): Error {
    if (err instanceof CdcError) return err;
    const e = err as { code?: string; message?: string };
    if (e.code === '55006' || /replication slot .* is active/.test(e.message ?? '')) {
      const pid = /PID (\d+)/.exec(e.message ?? '')?.[1];
      return new SlotInUseError(slot, pid === undefined ? null : Number(pid), { cause: err });
    }
    if (/wal_level >= logical|requires "?wal_level"? >= "?logical/.test(e.message ?? '')) return new WalLevelError('below logical');
    if (typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code) && !e.code.startsWith('08') && !e.code.startsWith('57')) {
      return new CdcError('SLUICE_PG_REPLICATION', `replication from ${redact(this.url)} failed: ${e.message}`, { cause: err });
    }
    return new CdcConnectionError(`replication connection to ${redact(this.url)} lost: ${e.message ?? String(err)}`, { cause: err });
  }

  async close(): Promise<void> {
    await this.client.end().catch(() => undefined);
  }
}

export class ReplicationStream {
  private failure: Error | null = null;
  private ended = false;
  private wake: (() => void) | null = null;
  private readonly timer: NodeJS.Timeout;
  /** The last flush LSN told to the server. */
  private flushed = 0;
  private received = 0;

  constructor(
    private readonly copy: Duplex,
    statusIntervalMs: number,
    mapError: (err: unknown) => Error,
    connectionFailure: () => Error | null,
  ) {
    const notify = (): void => {
      const w = this.wake;
      this.wake = null;
      w?.();
    };
    copy.on('readable', notify);
    copy.on('error', (err) => {
      this.failure ??= mapError(err);
      notify();
    });
    copy.on('end', () => {
      this.ended = true;
      notify();
    });
    copy.on('close', () => {
      this.ended = true;
      const c = connectionFailure();
      if (c !== null) this.failure ??= mapError(c);
      notify();
    });
    // The server hears from us even while the pipeline is full and nothing is read.
    this.timer = setInterval(() => this.sendStatus(), statusIntervalMs);
    this.timer.unref();
  }

  /** The next frame, null when none is buffered (then `wait`). Throws once the stream failed. */
  next(): Buffer | null {
    const frame = this.copy.read() as Buffer | null;
    if (frame !== null) return frame;
    if (this.failure !== null) throw this.failure;
    if (this.ended) throw new CdcConnectionError('the replication stream ended');
    return null;
  }

  /** Resolves when a frame may be buffered, the stream failed or ended, or `signal` aborts. */
  wait(signal: AbortSignal, timeoutMs: number): Promise<void> {
    if (this.failure !== null || this.ended || this.copy.readableLength > 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(t);
        signal.removeEventListener('abort', done);
        this.wake = null;
        resolve();
      };
      const t = setTimeout(done, timeoutMs);
      signal.addEventListener('abort', done, { once: true });
      this.wake = done;
    });
  }

  /** Records what arrived (written LSN for the status updates). */
  noteReceived(lsn: number): void {
    if (lsn > this.received) this.received = lsn;
  }

  /** Confirms `lsn` as flushed (durable): the server may recycle WAL before it. */
  confirm(lsn: number): void {
    if (lsn > this.flushed) {
      this.flushed = lsn;
      this.sendStatus();
    }
  }

  get confirmedLsn(): number {
    return this.flushed;
  }

  sendStatus(replyRequested = false): void {
    if (this.failure !== null || this.ended) return;
    const written = Math.max(this.received, this.flushed);
    this.copy.write(encodeStatusUpdate(written, this.flushed, this.flushed, Date.now(), replyRequested));
  }

  close(): void {
    clearInterval(this.timer);
    this.copy.removeAllListeners('readable');
    this.copy.on('error', () => undefined);
  }
}
