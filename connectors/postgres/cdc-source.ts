/**
 * The `postgres_cdc` source: an initial snapshot consistent with the replication slot, then the
 * slot's changes decoded from pgoutput.
 *
 * Positions (JSON committed with each batch):
 *   { lsn }                      streaming: every transaction whose commit ends at or before `lsn`
 *                                is in the log (`lsn` is the end of its commit record);
 *   { lsn, txn, skip }           the same, plus the first `skip` changes of the transaction whose
 *                                commit record is at `txn` (a transaction split by
 *                                max_transaction_records);
 *   { snapshot: { lsn, table, rows } }  a snapshot in progress (tables before `table` done);
 *   { snapshot_done: true }      initial_only finished.
 * Only `lsn` (never beyond what is durable) is confirmed to the server, in ack().
 *
 * A crash during the snapshot cannot resume it: the exported snapshot died with its connection.
 * The source then drops the slot, makes a new one with a new snapshot, and first emits a `t`
 * (truncate) event per table, so consumers drop the partial rows before the complete set follows.
 */
import type pg from 'pg';
import type { ConnectorContext, Source, SourceBatch, SourceRecord } from '../sdk.js';
import {
  checkReplicaIdentity,
  checkServer,
  checkTablesExist,
  connectQueryClient,
  dropSlot,
  ensurePublication,
  loadTypeFacts,
  primaryKey,
  publicationTables,
  qualifiedName,
  slotFacts,
  tableLabel,
  tableRelation,
  type TableRef,
} from './cdc-catalog.js';
import type { ResolvedCdcConfig } from './cdc-config.js';
import { CdcConnectionError, CdcError, CdcPositionError, SlotInUseError, SlotMissingError } from './cdc-errors.js';
import { ReplicationConnection, type ReplicationStream } from './cdc-stream.js';
import {
  KEEPALIVE,
  MSG_BEGIN,
  MSG_COMMIT,
  MSG_DELETE,
  MSG_INSERT,
  MSG_RELATION,
  MSG_TRUNCATE,
  MSG_UPDATE,
  XLOG_DATA,
  XLOG_HEADER_BYTES,
  decodeBegin,
  decodeCommit,
  decodeKeepalive,
  decodeRelation,
  decodeTruncate,
  formatLsn,
  isoMicros,
  parseLsn,
  readU64,
  rowRelationOid,
  type RelationMessage,
} from './pgoutput.js';
import { encodeRow, encodeSnapshotRow, encodeTruncate, relationShape, rowKey, sourceTail, type RelationShape } from './pgoutput-json.js';
import { ByteWriter } from './pgoutput-bytes.js';
import { needsFacts, type TypeFacts } from './pgoutput-values.js';

export interface StreamPosition {
  lsn: string;
  txn?: string;
  skip?: number;
}

interface SnapshotPosition {
  snapshot: { lsn: string; table: number; rows: number };
}

type Position = StreamPosition | SnapshotPosition | { snapshot_done: true };

/**
 * A record whose value is JSON built by the decoder; `value` parses it only when a transform or a
 * schema asks, and `templateView` (shared by the changes of one table in one transaction) lets
 * topic templates read `source.*` scalars without parsing.
 */
class CdcRecord implements SourceRecord {
  headers?: Record<string, string>;
  private parsed: unknown;
  constructor(
    readonly key: string | null,
    readonly encoded: string | Uint8Array,
    readonly timestamp: number,
    readonly templateView: Record<string, unknown>,
  ) {}

  get value(): unknown {
    if (this.parsed === undefined) {
      const e = this.encoded;
      this.parsed = JSON.parse(typeof e === 'string' ? e : Buffer.from(e.buffer, e.byteOffset, e.byteLength).toString('utf8'));
    }
    return this.parsed;
  }
}

/** What templates may read without the value: the source block's scalars but the per-change LSN. */
function sourceView(shape: { schema: string; table: string }, txid: number | null, tsMs: number, commitTs: string | null, snapshot: boolean): Record<string, unknown> {
  return { source: { schema: shape.schema, table: shape.table, txid, ts_ms: tsMs, commit_ts: commitTs, snapshot } };
}

interface SnapshotPlan {
  lsn: number;
  tables: TableRef[];
  table: number;
  rows: number;
  /** Truncate events to emit first (a snapshot started over). */
  truncateFirst: boolean;
  shape: RelationShape | null;
  cursorOpen: boolean;
  startedMs: number;
  /** Set when the snapshot ends the source (initial_only). */
  final: boolean;
}

interface Txn {
  finalLsn: number;
  xid: number;
  commitMs: number;
  commitTs: string;
  /** Changes seen so far (also those skipped on resume). */
  index: number;
  skip: number;
  /** `,"ts_ms":...,"commit_ts":...,"snapshot":false}}` */
  tail: Buffer;
  /** The template view of the last table changed (see CdcRecord). */
  viewShape: RelationShape | null;
  view: Record<string, unknown> | null;
  /** sourceTail of that table. */
  rowTail: Buffer | null;
}

export class CdcSource implements Source {
  private query: pg.Client | null = null;
  private repl: ReplicationConnection | null = null;
  private stream: ReplicationStream | null = null;
  private snapshot: SnapshotPlan | null = null;
  private finished = false;
  /** Where streaming starts, and the partial transaction to skip into. */
  private startLsn = 0;
  private resume: { txn: number; skip: number } | null = null;
  private readonly shapes = new Map<number, RelationShape>();
  private readonly typeFacts = new Map<number, TypeFacts>();
  private txn: Txn | null = null;
  /** End LSN of the last complete transaction handed on. */
  private lastComplete = 0;
  /** LSN acknowledged durable. */
  private ackedLsn = 0;
  private pendingBatches = 0;
  private queryError: Error | null = null;
  private readonly writer = new ByteWriter();

  constructor(
    private readonly config: ResolvedCdcConfig,
    private readonly ctx: ConnectorContext,
  ) {}

  async open(position: unknown): Promise<void> {
    const cfg = this.config;
    const pos = parsePosition(position);
    this.query = await connectQueryClient(cfg.url, (err) => (this.queryError ??= err));
    const q = this.query;
    await checkServer(q);
    if (cfg.tables !== null) await checkTablesExist(q, cfg.tables);
    if (await ensurePublication(q, cfg.publication, cfg.tables)) this.ctx.log('info', `created publication "${cfg.publication}"`);
    await checkReplicaIdentity(q, cfg.publication);
    // What the publication carries, as Postgres lists it: the partitions of a partitioned table
    // (unless publish_via_partition_root), exactly the relations whose changes will stream.
    const tables = await publicationTables(q, cfg.publication);

    if (pos !== null && 'snapshot_done' in pos) {
      this.finished = true;
      return;
    }
    const restarting = pos !== null && 'snapshot' in pos;
    if (cfg.snapshot === 'initial_only') {
      // No slot: a repeatable-read transaction is consistent by itself, and nothing streams after.
      await q.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const lsn = (await q.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0]!.lsn;
      this.snapshot = newPlan(parseLsn(lsn), tables, restarting, true);
      return;
    }
    const slot = await slotFacts(q, cfg.slot);
    if (slot !== null && slot.active) throw new SlotInUseError(cfg.slot, slot.activePid);
    if (pos !== null && 'lsn' in pos) {
      if (slot === null) throw new SlotMissingError(cfg.slot, pos.lsn);
      this.startLsn = parseLsn(pos.lsn);
      this.lastComplete = this.ackedLsn = this.startLsn;
      if (pos.txn !== undefined) this.resume = { txn: parseLsn(pos.txn), skip: pos.skip ?? 0 };
      return;
    }
    // A fresh start, or a snapshot that must start over.
    if (slot !== null && (cfg.snapshot === 'initial' || restarting)) {
      this.ctx.log('warn', `dropping replication slot "${cfg.slot}" to take a snapshot consistent with a new slot${restarting ? ' (the previous snapshot was interrupted)' : ''}`);
      await dropSlot(q, cfg.slot);
    } else if (slot !== null) {
      // snapshot: never, first start, the slot exists: stream from where it stands.
      this.startLsn = 0;
      return;
    }
    const repl = await ReplicationConnection.connect(cfg.url);
    try {
      const created = await repl.createSlot(cfg.slot, cfg.snapshot === 'initial');
      this.ctx.log('info', `created replication slot "${cfg.slot}" at ${formatLsn(created.consistentPoint)}`);
      this.startLsn = this.lastComplete = created.consistentPoint;
      if (cfg.snapshot === 'initial') {
        await q.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
        await q.query(`SET TRANSACTION SNAPSHOT ${q.escapeLiteral(created.snapshotName!)}`);
        this.snapshot = newPlan(created.consistentPoint, tables, restarting, false);
      }
    } finally {
      // The snapshot lives on in the query connection's transaction.
      await repl.close();
    }
  }

  async read(): Promise<SourceBatch | null> {
    if (this.finished) return null;
    if (this.queryError !== null) throw new CdcConnectionError(`connection lost: ${this.queryError.message}`, { cause: this.queryError });
    if (this.snapshot !== null) return this.readSnapshot(this.snapshot);
    return this.readStream();
  }

  async ack(position: unknown): Promise<void> {
    const p = position as Position;
    if (p !== null && typeof p === 'object' && 'lsn' in p) {
      const lsn = parseLsn(p.lsn);
      if (lsn > this.ackedLsn) this.ackedLsn = lsn;
      this.pendingBatches = Math.max(0, this.pendingBatches - 1);
      this.stream?.confirm(this.ackedLsn);
    }
  }

  async close(): Promise<void> {
    this.stream?.close();
    this.stream = null;
    await this.repl?.close();
    this.repl = null;
    await this.query?.end().catch(() => undefined);
    this.query = null;
  }

  // ---- snapshot ----

  private async readSnapshot(plan: SnapshotPlan): Promise<SourceBatch | null> {
    const q = this.query!;
    const records: SourceRecord[] = [];
    const lsnText = formatLsn(plan.lsn);
    if (plan.truncateFirst) {
      plan.truncateFirst = false;
      for (const t of plan.tables) {
        const tail = `,"ts_ms":${plan.startedMs},"commit_ts":null,"snapshot":true}`;
        const shape = { schema: t.schema, table: t.table, sourceTable: `"schema":${JSON.stringify(t.schema)},"table":${JSON.stringify(t.table)}` };
        records.push(new CdcRecord(null, encodeTruncate(shape, `{"lsn":"${lsnText}","txid":null,`, tail), plan.startedMs, sourceView(t, null, plan.startedMs, null, true)));
      }
      return { records, position: snapshotPosition(plan) };
    }
    while (plan.table < plan.tables.length) {
      const t = plan.tables[plan.table]!;
      if (!plan.cursorOpen) {
        const rel = await tableRelation(q, t);
        plan.shape = await this.shapeFor(rel);
        const cols = plan.shape.columnNames.map((c) => q.escapeIdentifier(c)).join(', ');
        // ONLY: children of old-style inheritance are tables of their own; a partitioned root
        // (publish_via_partition_root) is read with its partitions.
        await q.query(`DECLARE sluice_snapshot NO SCROLL CURSOR FOR SELECT ${cols === '' ? 'NULL' : cols} FROM ${rel.partitioned ? '' : 'ONLY '}${qualifiedName(q, t)}`);
        plan.cursorOpen = true;
      }
      const shape = plan.shape!;
      const res = await q.query<unknown[]>({ text: `FETCH ${this.config.snapshotFetchRows} FROM sluice_snapshot`, rowMode: 'array' });
      const source = `{"lsn":"${lsnText}","txid":null,${shape.sourceTable},"ts_ms":${plan.startedMs},"commit_ts":null,"snapshot":true}`;
      const view = sourceView(shape, null, plan.startedMs, null, true);
      for (const row of res.rows) {
        const e = encodeSnapshotRow(row as (string | null)[], shape, source);
        records.push(new CdcRecord(e.key, e.json, plan.startedMs, view));
      }
      plan.rows += res.rows.length;
      if (res.rows.length < this.config.snapshotFetchRows) {
        await q.query('CLOSE sluice_snapshot');
        plan.cursorOpen = false;
        this.ctx.log('info', `snapshot of ${tableLabel(t)}: ${plan.rows} rows`);
        plan.table++;
        plan.rows = 0;
      }
      if (records.length > 0) return { records, position: snapshotPosition(plan) };
    }
    await q.query('COMMIT');
    this.snapshot = null;
    if (plan.final) {
      this.finished = true;
      return { records: [], position: { snapshot_done: true } };
    }
    this.pendingBatches++;
    return { records: [], position: { lsn: formatLsn(plan.lsn) } satisfies StreamPosition };
  }

  // ---- streaming ----

  private async startStream(): Promise<ReplicationStream> {
    this.repl = await ReplicationConnection.connect(this.config.url);
    this.stream = this.repl.start(this.config.slot, this.startLsn, this.config.publication, this.config.statusIntervalMs);
    this.stream.confirm(this.ackedLsn);
    this.ctx.log('info', `streaming from slot "${this.config.slot}" at ${formatLsn(this.startLsn)}`);
    return this.stream;
  }

  private async readStream(): Promise<SourceBatch | null> {
    const stream = this.stream ?? (await this.startStream());
    const records: SourceRecord[] = [];
    const signal = this.ctx.signal;
    const maxBatch = this.config.maxBatchRecords;
    const maxTxn = this.config.maxTransactionRecords;
    /** Records of the open transaction in this batch. */
    let inBatch = 0;
    let position: StreamPosition | null = null;
    for (;;) {
      if (signal.aborted) return null;
      const frame = stream.next();
      if (frame === null) {
        if (position !== null && this.txn === null && records.length > 0) break;
        await stream.wait(signal, this.config.statusIntervalMs);
        continue;
      }
      const kind = frame[0];
      if (kind === KEEPALIVE) {
        const k = decodeKeepalive(frame);
        stream.noteReceived(k.walEnd);
        // Nothing in hand and everything handed on is durable: the slot may advance to the
        // server's position (WAL of other tables and databases would pile up otherwise).
        if (this.txn === null && records.length === 0 && this.pendingBatches === 0 && this.resume === null) stream.confirm(k.walEnd);
        if (k.replyRequested) stream.sendStatus();
        continue;
      }
      if (kind !== XLOG_DATA) continue;
      const walStart = readU64(frame, 1);
      stream.noteReceived(walStart);
      const m = XLOG_HEADER_BYTES;
      const type = frame[m];
      if (type === MSG_INSERT || type === MSG_UPDATE || type === MSG_DELETE) {
        const txn = this.txn;
        if (txn === null) throw new CdcError('SLUICE_PG_REPLICATION', 'a row change outside a transaction');
        txn.index++;
        if (txn.index <= txn.skip) continue;
        const oid = rowRelationOid(frame, m);
        let shape = txn.viewShape;
        if (shape === null || shape.oid !== oid) {
          shape = this.shapes.get(oid) ?? null;
          if (shape === null) throw new CdcError('SLUICE_PG_REPLICATION', `a change for relation ${oid} before its Relation message`);
          txn.viewShape = shape;
          txn.view = sourceView(shape, txn.xid, txn.commitMs, txn.commitTs, false);
          txn.rowTail = sourceTail(shape, txn.xid, txn.commitMs, txn.commitTs);
        }
        const json = encodeRow(frame, m, shape, this.writer, walStart, txn.rowTail!);
        records.push(new CdcRecord(rowKey, json, txn.commitMs, txn.view!));
        if (++inBatch >= maxTxn) {
          // A huge transaction: hand this part on; the position says where inside it we are.
          position = { lsn: formatLsn(this.lastComplete), txn: formatLsn(txn.finalLsn), skip: txn.index };
          break;
        }
      } else if (type === MSG_BEGIN) {
        const b = decodeBegin(frame, m);
        const commitMs = Number(b.commitTimeUs / 1000n);
        const commitTs = isoMicros(b.commitTimeUs);
        let skip = 0;
        if (this.resume !== null) {
          if (this.resume.txn === b.finalLsn) skip = this.resume.skip;
          this.resume = null;
        }
        this.txn = { finalLsn: b.finalLsn, xid: b.xid, commitMs, commitTs, index: 0, skip, tail: Buffer.from(`,"ts_ms":${commitMs},"commit_ts":"${commitTs}","snapshot":false}}`), viewShape: null, view: null, rowTail: null };
        inBatch = 0;
      } else if (type === MSG_COMMIT) {
        const c = decodeCommit(frame, m);
        this.txn = null;
        this.lastComplete = c.endLsn;
        position = { lsn: formatLsn(c.endLsn) };
        if (records.length >= maxBatch) break;
      } else if (type === MSG_RELATION) {
        const rel = decodeRelation(frame, m);
        this.shapes.set(rel.oid, await this.shapeFor(rel));
        if (this.txn !== null) this.txn.viewShape = null;
      } else if (type === MSG_TRUNCATE) {
        const txn = this.txn;
        if (txn === null) throw new CdcError('SLUICE_PG_REPLICATION', 'a truncate outside a transaction');
        const t = decodeTruncate(frame, m);
        const lsn = formatLsn(walStart);
        for (const oid of t.relationOids) {
          txn.index++;
          if (txn.index <= txn.skip) continue;
          const shape = this.shapes.get(oid);
          if (shape === undefined) continue;
          records.push(new CdcRecord(null, encodeTruncate(shape, `{"lsn":"${lsn}","txid":${txn.xid},`, txn.tail.toString().slice(0, -1)), txn.commitMs, sourceView(shape, txn.xid, txn.commitMs, txn.commitTs, false)));
          inBatch++;
        }
      }
      // Type, Origin and logical messages carry nothing the events need.
    }
    this.pendingBatches++;
    return { records, position };
  }

  /** A relation's shape, after learning what the server knows about its non-built-in types. */
  private async shapeFor(rel: RelationMessage): Promise<RelationShape> {
    const q = this.query!;
    const missing = rel.columns.flatMap((c) => needsFacts(c.typeOid, this.typeFacts));
    if (missing.length > 0) await loadTypeFacts(q, missing, this.typeFacts);
    // A second pass: elements of arrays of user types learned just now.
    const more = rel.columns.flatMap((c) => needsFacts(c.typeOid, this.typeFacts));
    if (more.length > 0) await loadTypeFacts(q, more, this.typeFacts);
    return relationShape(rel, this.typeFacts, await primaryKey(q, rel.oid));
  }
}

function newPlan(lsn: number, tables: TableRef[], truncateFirst: boolean, final: boolean): SnapshotPlan {
  return { lsn, tables, table: 0, rows: 0, truncateFirst, shape: null, cursorOpen: false, startedMs: Date.now(), final };
}

function snapshotPosition(plan: SnapshotPlan): SnapshotPosition {
  return { snapshot: { lsn: formatLsn(plan.lsn), table: plan.table, rows: plan.rows } };
}

function parsePosition(position: unknown): Position | null {
  if (position === undefined || position === null) return null;
  if (typeof position === 'object') {
    const p = position as Record<string, unknown>;
    if (p.snapshot_done === true) return { snapshot_done: true };
    if (typeof p.snapshot === 'object' && p.snapshot !== null) return p as unknown as SnapshotPosition;
    if (typeof p.lsn === 'string') {
      try {
        parseLsn(p.lsn);
        if (p.txn !== undefined) parseLsn(String(p.txn));
      } catch {
        throw new CdcPositionError(`committed position ${JSON.stringify(position)} holds an invalid LSN`);
      }
      return p as unknown as StreamPosition;
    }
  }
  throw new CdcPositionError(`committed position ${JSON.stringify(position)} was not written by postgres_cdc`);
}
