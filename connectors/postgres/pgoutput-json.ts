/**
 * Row messages (Insert, Update, Delete) and snapshot rows → CDC events as JSON text, built in one
 * pass over the message bytes: no object per column or per row on this path (the JSON text is what
 * the log stores). The event envelope is documented in docs/connectors/postgres-cdc.md and
 * schemas/records/cdc-event.schema.json:
 *
 *   {"op":"c","before":null,"after":{...},"source":{"lsn":"0/16B3748","txid":750,
 *    "schema":"public","table":"orders","ts_ms":1714557600123,"commit_ts":"2024-05-01T10:00:00.123456Z","snapshot":false}}
 */
import {
  MSG_DELETE,
  MSG_INSERT,
  MSG_UPDATE,
  PgoutputError,
  TUPLE_BINARY,
  TUPLE_NULL,
  TUPLE_TEXT,
  TUPLE_UNCHANGED_TOAST,
  type RelationMessage,
} from './pgoutput.js';
import { converterFor, type ToJson, type TypeCatalog } from './pgoutput-values.js';
import { byteConverterFor, type ByteConv, type ByteWriter } from './pgoutput-bytes.js';

/** The marker an unchanged TOASTed column carries instead of its value (never a fake value). */
export const UNCHANGED_TOAST_JSON = '{"__sluice_unchanged_toast":true}';
export const UNCHANGED_TOAST_FIELD = '__sluice_unchanged_toast';

/** A relation as the encoder needs it: its column converters and pre-encoded names. */
export interface RelationShape {
  oid: number;
  schema: string;
  table: string;
  replicaIdentity: string;
  columnNames: string[];
  typeOids: number[];
  /** `"name":` per column. */
  prefixes: string[];
  convert: ToJson[];
  /** Columns pgoutput flags as replica-identity key. */
  identity: boolean[];
  /** Columns of the record key: the primary key, else the replica identity key; empty: no key. */
  keyColumns: number[];
  /** `"schema":"...","table":"..."` for the source block. */
  sourceTable: string;
  /** The same as bytes, for the streaming path. */
  prefixBytes: Buffer[];
  byteConvert: ByteConv[];
}

/**
 * Builds a shape from a Relation message. `primaryKey` lists the primary key's column names (from
 * the catalog); when empty, the replica-identity key columns are the record key.
 */
export function relationShape(rel: RelationMessage, catalog: TypeCatalog, primaryKey: readonly string[]): RelationShape {
  const names = rel.columns.map((c) => c.name);
  let keyColumns = primaryKey.map((k) => names.indexOf(k)).filter((i) => i >= 0);
  if (keyColumns.length !== primaryKey.length || keyColumns.length === 0) {
    keyColumns = rel.replicaIdentity === 'f' ? [] : rel.columns.flatMap((c, i) => (c.key ? [i] : []));
  }
  return {
    oid: rel.oid,
    schema: rel.schema,
    table: rel.table,
    replicaIdentity: rel.replicaIdentity,
    columnNames: names,
    typeOids: rel.columns.map((c) => c.typeOid),
    prefixes: names.map((n) => `${JSON.stringify(n)}:`),
    convert: rel.columns.map((c) => converterFor(c.typeOid, catalog)),
    identity: rel.columns.map((c) => c.key),
    keyColumns,
    sourceTable: `"schema":${JSON.stringify(rel.schema)},"table":${JSON.stringify(rel.table)}`,
    prefixBytes: names.map((n) => Buffer.from(`${JSON.stringify(n)}:`)),
    byteConvert: rel.columns.map((c) => byteConverterFor(c.typeOid, catalog)),
  };
}

/** One snapshot event: the JSON text and the record key. */
export interface EncodedChange {
  op: 'r';
  json: string;
  key: string | null;
}

// Reused between calls: the tuple walker's outputs (no allocation per call).
let keyParts: string[] = [];
let tupleEnd = 0;
/** Per key column: where its JSON value lies, relative to `from`; -1 when absent. */
let keyStart = new Int32Array(8);
let keyEnd = new Int32Array(8);
/** Where the event being written begins in the writer (moves when the arena is replaced). */
let from = 0;

const NULL_BYTES = Buffer.from('null');
const TOAST_BYTES = Buffer.from(UNCHANGED_TOAST_JSON);

/**
 * Writes a TupleData at `pos` as a JSON object. `keyOnly`: only the identity columns (an old key
 * tuple, where the other columns are sent as NULL). Fills `keyParts` with the key columns' JSON.
 */
function writeTuple(buf: Buffer, pos: number, shape: RelationShape, keyOnly: boolean, w: ByteWriter): void {
  if (pos + 2 > buf.length) throw new PgoutputError('TupleData truncated');
  const n = buf.readUInt16BE(pos);
  pos += 2;
  if (n > shape.prefixes.length) {
    throw new PgoutputError(`tuple of ${n} columns for relation ${shape.schema}.${shape.table} of ${shape.prefixes.length}`);
  }
  const keys = shape.keyColumns;
  if (keys.length > keyStart.length) {
    keyStart = new Int32Array(keys.length);
    keyEnd = new Int32Array(keys.length);
  }
  keyStart.fill(-1, 0, keys.length);
  from = w.ensure(1, from);
  w.buf[w.pos++] = 123;
  let first = true;
  for (let i = 0; i < n; i++) {
    const kind = buf[pos++];
    let len = 0;
    if (kind === TUPLE_TEXT) {
      len = buf.readUInt32BE(pos);
      pos += 4;
      if (pos + len > buf.length) throw new PgoutputError('TupleData value runs past the message');
    } else if (kind === TUPLE_BINARY) {
      throw new PgoutputError('binary tuple values are not requested and cannot be decoded');
    } else if (kind !== TUPLE_NULL && kind !== TUPLE_UNCHANGED_TOAST) {
      throw new PgoutputError(`unknown TupleData column kind 0x${(kind ?? 0).toString(16)}`);
    }
    if (keyOnly && !shape.identity[i]) {
      pos += len;
      continue;
    }
    const prefix = shape.prefixBytes[i]!;
    from = w.ensure(prefix.length + 1, from);
    if (!first) w.buf[w.pos++] = 44;
    first = false;
    w.bytes(prefix, 0, prefix.length);
    const vrel = w.pos - from;
    if (kind === TUPLE_TEXT) {
      from = shape.byteConvert[i]!(buf, pos, pos + len, w, from);
      pos += len;
    } else {
      const b = kind === TUPLE_NULL ? NULL_BYTES : TOAST_BYTES;
      from = w.ensure(b.length, from);
      w.bytes(b, 0, b.length);
    }
    if (keys.length > 0) {
      const k = keys.indexOf(i);
      // Offsets relative to the event's start survive an arena change.
      if (k >= 0) {
        keyStart[k] = vrel;
        keyEnd[k] = w.pos - from;
      }
    }
  }
  from = w.ensure(1, from);
  w.buf[w.pos++] = 125;
  tupleEnd = pos;
}

/** The record key from the last tuple written: `{"id":1}`, built after the event and copied out. */
function keyFromTuple(shape: RelationShape, w: ByteWriter): string | null {
  const keys = shape.keyColumns;
  if (keys.length === 0) return null;
  let size = 2;
  for (let k = 0; k < keys.length; k++) {
    if (keyStart[k]! < 0) return null;
    size += shape.prefixBytes[keys[k]!]!.length + keyEnd[k]! - keyStart[k]! + 1;
  }
  from = w.ensure(size, from);
  const at = w.pos;
  const b = w.buf;
  b[w.pos++] = 123;
  for (let k = 0; k < keys.length; k++) {
    if (k > 0) b[w.pos++] = 44;
    const prefix = shape.prefixBytes[keys[k]!]!;
    w.bytes(prefix, 0, prefix.length);
    w.bytes(b, from + keyStart[k]!, from + keyEnd[k]!);
  }
  b[w.pos++] = 125;
  const key = b.toString('utf8', at, w.pos);
  w.pos = at;
  return key;
}

function keyJson(shape: RelationShape): string | null {
  const keys = shape.keyColumns;
  if (keys.length === 0) return null;
  let out = '{';
  for (let k = 0; k < keys.length; k++) {
    const v = keyParts[k];
    if (v === undefined) return null;
    out += `${k === 0 ? '' : ','}${shape.prefixes[keys[k]!]!}${v}`;
  }
  return `${out}}`;
}

/** The op and key of the last event encodeRow wrote. */
export let rowOp: 'c' | 'u' | 'd' = 'c';
export let rowKey: string | null = null;

const OP_C = Buffer.from('{"op":"c","before":');
const OP_U = Buffer.from('{"op":"u","before":');
const OP_D = Buffer.from('{"op":"d","before":');
const AFTER = Buffer.from(',"after":');
const SOURCE_LSN = Buffer.from(',"source":{"lsn":"');

/**
 * What follows the LSN in the source block of a table's changes in one transaction:
 * `","txid":N,"schema":"...","table":"...","ts_ms":...,"commit_ts":"...","snapshot":false}}`.
 */
export function sourceTail(shape: RelationShape, xid: number, tsMs: number, commitTs: string): Buffer {
  return Buffer.from(`","txid":${xid},${shape.sourceTable},"ts_ms":${tsMs},"commit_ts":"${commitTs}","snapshot":false}}`);
}

/**
 * A row message (at `start`, its type byte) → the event's JSON bytes in `w`; returns them (a view
 * into the arena). `rowOp` and `rowKey` tell the op and the record key. `tail` is the rest of
 * the source block after the LSN, built once per table and transaction (sourceTail).
 */
export function encodeRow(buf: Buffer, start: number, shape: RelationShape, w: ByteWriter, lsn: number, tail: Buffer): Buffer {
  const type = buf[start];
  let pos = start + 5;
  from = w.ensure(64, w.pos);
  let key: string | null = null;
  if (type === MSG_INSERT) {
    if (buf[pos] !== 0x4e) throw new PgoutputError('Insert without a new tuple');
    w.bytes(OP_C, 0, OP_C.length);
    w.bytes(NULL_BYTES, 0, 4);
    w.bytes(AFTER, 0, AFTER.length);
    writeTuple(buf, pos + 1, shape, false, w);
    key = keyFromTuple(shape, w);
    rowOp = 'c';
  } else if (type === MSG_UPDATE || type === MSG_DELETE) {
    const op = type === MSG_UPDATE ? OP_U : OP_D;
    w.bytes(op, 0, op.length);
    const old = buf[pos];
    if (old === 0x4b || old === 0x4f) {
      writeTuple(buf, pos + 1, shape, old === 0x4b, w);
      key = keyFromTuple(shape, w);
      pos = tupleEnd;
    } else {
      w.bytes(NULL_BYTES, 0, 4);
    }
    from = w.ensure(AFTER.length + 4, from);
    w.bytes(AFTER, 0, AFTER.length);
    if (type === MSG_DELETE) {
      w.bytes(NULL_BYTES, 0, 4);
      rowOp = 'd';
    } else {
      if (buf[pos] !== 0x4e) throw new PgoutputError('Update without a new tuple');
      const oldKey = key;
      writeTuple(buf, pos + 1, shape, false, w);
      key = keyFromTuple(shape, w) ?? oldKey;
      rowOp = 'u';
    }
  } else {
    throw new PgoutputError(`not a row message: 0x${(type ?? 0).toString(16)}`);
  }
  from = w.ensure(SOURCE_LSN.length + 17 + tail.length, from);
  w.bytes(SOURCE_LSN, 0, SOURCE_LSN.length);
  w.lsn(lsn);
  w.bytes(tail, 0, tail.length);
  rowKey = key;
  return w.buf.subarray(from, w.pos);
}

/** A snapshot row (text values from a `SELECT *` in column order) → an `r` event. */
export function encodeSnapshotRow(values: readonly (string | null)[], shape: RelationShape, source: string): EncodedChange {
  let after = '{';
  const keys = shape.keyColumns;
  keyParts = new Array<string>(keys.length);
  for (let i = 0; i < values.length; i++) {
    const t = values[i];
    const v = t === null || t === undefined ? 'null' : shape.convert[i]!(t);
    const k = keys.indexOf(i);
    if (k >= 0) keyParts[k] = v;
    after += i === 0 ? shape.prefixes[i]! + v : `,${shape.prefixes[i]!}${v}`;
  }
  after += '}';
  return { op: 'r', key: keyJson(shape), json: `{"op":"r","before":null,"after":${after},"source":${source}}` };
}

/** A truncate event for one relation. */
export function encodeTruncate(shape: Pick<RelationShape, 'sourceTable'>, lsnTxid: string, sourceTail: string): string {
  return `{"op":"t","before":null,"after":null,"source":${lsnTxid}${shape.sourceTable}${sourceTail}}`;
}
