/**
 * The pgoutput logical-decoding protocol (proto_version 1) and the replication stream's framing:
 * a pure decoder, no I/O. Control messages (Begin, Commit, Relation, Type, Origin, Truncate) decode
 * to small objects; row messages (Insert, Update, Delete) are decoded by pgoutput-json.ts straight
 * into JSON text, so the hot path builds no object per column.
 *
 * LSNs are carried as numbers: exact below 2^53 bytes of WAL (8 PiB), far beyond any real server.
 * https://www.postgresql.org/docs/current/protocol-logicalrep-message-formats.html
 */

/** Microseconds between the Unix epoch and Postgres's epoch (2000-01-01). */
export const PG_EPOCH_US = 946_684_800_000_000n;
const PG_EPOCH_MS = 946_684_800_000;

export class PgoutputError extends Error {
  readonly code = 'SLUICE_PG_PROTOCOL';
  readonly retriable = false;
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** A 64-bit big-endian unsigned at `pos`, as a number (exact below 2^53). */
export function readU64(buf: Buffer, pos: number): number {
  return buf.readUInt32BE(pos) * 4294967296 + buf.readUInt32BE(pos + 4);
}

export function writeU64(buf: Buffer, pos: number, value: number): void {
  buf.writeUInt32BE(Math.floor(value / 4294967296) >>> 0, pos);
  buf.writeUInt32BE(value % 4294967296 >>> 0, pos + 4);
}

/** The textual form Postgres uses: `16/B374D848`. */
export function formatLsn(lsn: number): string {
  return `${Math.floor(lsn / 4294967296).toString(16).toUpperCase()}/${(lsn % 4294967296).toString(16).toUpperCase()}`;
}

export function parseLsn(text: string): number {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text);
  if (m === null) throw new PgoutputError(`not an LSN: "${text}"`);
  return parseInt(m[1]!, 16) * 4294967296 + parseInt(m[2]!, 16);
}

/** A Postgres timestamp (µs since 2000-01-01) at `pos`, as µs since the Unix epoch (bigint). */
export function readPgTimestampUs(buf: Buffer, pos: number): bigint {
  return buf.readBigInt64BE(pos) + PG_EPOCH_US;
}

/** The same, as ms since the Unix epoch (rounded down). */
export function readPgTimestampMs(buf: Buffer, pos: number): number {
  return Math.floor((buf.readInt32BE(pos) * 4294967296 + buf.readUInt32BE(pos + 4)) / 1000) + PG_EPOCH_MS;
}

/** µs since the Unix epoch → ISO 8601 with all six fraction digits, e.g. 2024-05-01T10:00:00.123456Z. */
export function isoMicros(us: bigint): string {
  const ms = Number(us / 1000n);
  const frac = ((us % 1_000_000n) + 1_000_000n) % 1_000_000n;
  return `${new Date(ms).toISOString().slice(0, 19)}.${frac.toString().padStart(6, '0')}Z`;
}

// ---- replication stream (CopyBoth) frames ----

/** XLogData ('w'): header fields; the pgoutput message starts at byte 25. */
export const XLOG_DATA = 0x77;
/** Primary keepalive ('k'). */
export const KEEPALIVE = 0x6b;
export const XLOG_HEADER_BYTES = 25;

export interface Keepalive {
  walEnd: number;
  replyRequested: boolean;
}

export function decodeKeepalive(frame: Buffer): Keepalive {
  if (frame.length < 18) throw new PgoutputError(`keepalive frame too short (${frame.length} bytes)`);
  return { walEnd: readU64(frame, 1), replyRequested: frame[17] === 1 };
}

/** A standby status update ('r'): written, flushed and applied LSN, the client's clock. */
export function encodeStatusUpdate(written: number, flushed: number, applied: number, nowMs: number, replyRequested = false): Buffer {
  const buf = Buffer.alloc(34);
  buf[0] = 0x72;
  writeU64(buf, 1, written);
  writeU64(buf, 9, flushed);
  writeU64(buf, 17, applied);
  buf.writeBigInt64BE(BigInt(Math.floor(nowMs)) * 1000n - PG_EPOCH_US, 25);
  buf[33] = replyRequested ? 1 : 0;
  return buf;
}

// ---- pgoutput messages ----

export const MSG_BEGIN = 0x42; // B
export const MSG_COMMIT = 0x43; // C
export const MSG_ORIGIN = 0x4f; // O
export const MSG_RELATION = 0x52; // R
export const MSG_TYPE = 0x59; // Y
export const MSG_INSERT = 0x49; // I
export const MSG_UPDATE = 0x55; // U
export const MSG_DELETE = 0x44; // D
export const MSG_TRUNCATE = 0x54; // T
export const MSG_MESSAGE = 0x4d; // M (logical decoding message; only with the `messages` option)

export interface BeginMessage {
  /** LSN of the transaction's commit record. */
  finalLsn: number;
  /** Commit time, µs since the Unix epoch. */
  commitTimeUs: bigint;
  xid: number;
}

export interface CommitMessage {
  flags: number;
  commitLsn: number;
  /** End of the commit record: the LSN to confirm once the transaction is durable. */
  endLsn: number;
  commitTimeUs: bigint;
}

export interface RelationColumn {
  /** Part of the replica identity key (pgoutput's flag 1). */
  key: boolean;
  name: string;
  typeOid: number;
  typmod: number;
}

export interface RelationMessage {
  oid: number;
  schema: string;
  table: string;
  /** 'd' default, 'n' nothing, 'f' full, 'i' index. */
  replicaIdentity: string;
  columns: RelationColumn[];
}

export interface TypeMessage {
  oid: number;
  schema: string;
  name: string;
}

export interface OriginMessage {
  commitLsn: number;
  name: string;
}

export interface TruncateMessage {
  cascade: boolean;
  restartIdentity: boolean;
  relationOids: number[];
}

/** A NUL-terminated string at `pos`; returns the string and the position after the NUL. */
function readCString(buf: Buffer, pos: number): [string, number] {
  const end = buf.indexOf(0, pos);
  if (end < 0) throw new PgoutputError('unterminated string in pgoutput message');
  return [buf.toString('utf8', pos, end), end + 1];
}

function need(buf: Buffer, start: number, bytes: number, what: string): void {
  if (buf.length - start < bytes) throw new PgoutputError(`${what} message truncated (${buf.length - start} of ${bytes} bytes)`);
}

/** `start` points at the message type byte in every decode function. */
export function decodeBegin(buf: Buffer, start: number): BeginMessage {
  need(buf, start, 21, 'Begin');
  return { finalLsn: readU64(buf, start + 1), commitTimeUs: readPgTimestampUs(buf, start + 9), xid: buf.readUInt32BE(start + 17) };
}

export function decodeCommit(buf: Buffer, start: number): CommitMessage {
  need(buf, start, 26, 'Commit');
  return {
    flags: buf[start + 1]!,
    commitLsn: readU64(buf, start + 2),
    endLsn: readU64(buf, start + 10),
    commitTimeUs: readPgTimestampUs(buf, start + 18),
  };
}

export function decodeOrigin(buf: Buffer, start: number): OriginMessage {
  need(buf, start, 10, 'Origin');
  const [name] = readCString(buf, start + 9);
  return { commitLsn: readU64(buf, start + 1), name };
}

export function decodeRelation(buf: Buffer, start: number): RelationMessage {
  need(buf, start, 8, 'Relation');
  const oid = buf.readUInt32BE(start + 1);
  let [schema, pos] = readCString(buf, start + 5);
  let table: string;
  [table, pos] = readCString(buf, pos);
  need(buf, pos, 3, 'Relation');
  const replicaIdentity = String.fromCharCode(buf[pos]!);
  const n = buf.readInt16BE(pos + 1);
  pos += 3;
  const columns: RelationColumn[] = [];
  for (let i = 0; i < n; i++) {
    need(buf, pos, 1, 'Relation');
    const flags = buf[pos]!;
    let name: string;
    [name, pos] = readCString(buf, pos + 1);
    need(buf, pos, 8, 'Relation');
    columns.push({ key: (flags & 1) === 1, name, typeOid: buf.readUInt32BE(pos), typmod: buf.readInt32BE(pos + 4) });
    pos += 8;
  }
  return { oid, schema, table, replicaIdentity, columns };
}

export function decodeType(buf: Buffer, start: number): TypeMessage {
  need(buf, start, 7, 'Type');
  const oid = buf.readUInt32BE(start + 1);
  const [schema, pos] = readCString(buf, start + 5);
  const [name] = readCString(buf, pos);
  return { oid, schema, name };
}

export function decodeTruncate(buf: Buffer, start: number): TruncateMessage {
  need(buf, start, 6, 'Truncate');
  const n = buf.readUInt32BE(start + 1);
  const options = buf[start + 5]!;
  need(buf, start, 6 + 4 * n, 'Truncate');
  const relationOids: number[] = [];
  for (let i = 0; i < n; i++) relationOids.push(buf.readUInt32BE(start + 6 + 4 * i));
  return { cascade: (options & 1) === 1, restartIdentity: (options & 2) === 2, relationOids };
}

/** The relation OID of an Insert, Update or Delete message. */
export function rowRelationOid(buf: Buffer, start: number): number {
  need(buf, start, 6, 'row');
  return buf.readUInt32BE(start + 1);
}

// ---- tuple data ----

/** Column kinds inside TupleData. */
export const TUPLE_NULL = 0x6e; // n
export const TUPLE_UNCHANGED_TOAST = 0x75; // u
export const TUPLE_TEXT = 0x74; // t
export const TUPLE_BINARY = 0x62; // b

/**
 * Walks a TupleData at `pos` (its Int16 column count): `visit(column, kind, start, end)` per column,
 * where start..end are the value's bytes for 't'/'b'. Returns the position after the tuple.
 */
export function walkTuple(buf: Buffer, pos: number, visit: (column: number, kind: number, start: number, end: number) => void): number {
  need(buf, pos, 2, 'TupleData');
  const n = buf.readUInt16BE(pos);
  pos += 2;
  for (let i = 0; i < n; i++) {
    const kind = buf[pos++];
    if (kind === TUPLE_TEXT || kind === TUPLE_BINARY) {
      const len = buf.readUInt32BE(pos);
      pos += 4;
      if (pos + len > buf.length) throw new PgoutputError('TupleData value runs past the message');
      visit(i, kind, pos, pos + len);
      pos += len;
    } else if (kind === TUPLE_NULL || kind === TUPLE_UNCHANGED_TOAST) {
      visit(i, kind, pos, pos);
    } else {
      throw new PgoutputError(`unknown TupleData column kind ${kind === undefined ? 'past the end' : `0x${kind.toString(16)}`}`);
    }
  }
  return pos;
}

/** A row message decoded to plain text values (tests and tools; the source uses pgoutput-json.ts). */
export interface DecodedRow {
  type: 'insert' | 'update' | 'delete';
  relationOid: number;
  /** 'K' key-only old tuple, 'O' full old tuple, or null. */
  oldKind: 'K' | 'O' | null;
  old: TupleValue[] | null;
  new: TupleValue[] | null;
}

/** null = SQL NULL; UNCHANGED = an unchanged TOASTed value; string = the text form. */
export type TupleValue = string | null | typeof UNCHANGED_TOAST;
export const UNCHANGED_TOAST: unique symbol = Symbol('unchanged-toast');

function readTupleValues(buf: Buffer, pos: number): [TupleValue[], number] {
  const out: TupleValue[] = [];
  const end = walkTuple(buf, pos, (_i, kind, s, e) => {
    out.push(kind === TUPLE_NULL ? null : kind === TUPLE_UNCHANGED_TOAST ? UNCHANGED_TOAST : buf.toString(kind === TUPLE_TEXT ? 'utf8' : 'hex', s, e));
  });
  return [out, end];
}

export function decodeRow(buf: Buffer, start: number): DecodedRow {
  const type = buf[start];
  const relationOid = rowRelationOid(buf, start);
  let pos = start + 5;
  if (type === MSG_INSERT) {
    if (buf[pos] !== 0x4e) throw new PgoutputError('Insert without a new tuple');
    const [values] = readTupleValues(buf, pos + 1);
    return { type: 'insert', relationOid, oldKind: null, old: null, new: values };
  }
  let oldKind: 'K' | 'O' | null = null;
  let old: TupleValue[] | null = null;
  if (buf[pos] === 0x4b || buf[pos] === 0x4f) {
    oldKind = buf[pos] === 0x4b ? 'K' : 'O';
    [old, pos] = readTupleValues(buf, pos + 1);
  }
  if (type === MSG_DELETE) return { type: 'delete', relationOid, oldKind, old, new: null };
  if (type !== MSG_UPDATE) throw new PgoutputError(`not a row message: 0x${(type ?? 0).toString(16)}`);
  if (buf[pos] !== 0x4e) throw new PgoutputError('Update without a new tuple');
  const [values] = readTupleValues(buf, pos + 1);
  return { type: 'update', relationOid, oldKind, old, new: values };
}
