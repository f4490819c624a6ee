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
  };
}

/** One event as the source hands it on: the JSON text, the record key and the table. */
export interface EncodedChange {
  op: 'c' | 'u' | 'd';
  json: string;
  key: string | null;
}

// Reused between calls: the tuple walker's outputs (no allocation per call).
let keyParts: string[] = [];
let tupleEnd = 0;

/**
 * A TupleData at `pos` as a JSON object. `keyOnly`: only the identity columns (an old key tuple,
 * where the other columns are sent as NULL). Fills `keyParts` with the key columns' JSON values.
 */
function tupleJson(buf: Buffer, pos: number, shape: RelationShape, keyOnly: boolean): string {
  if (pos + 2 > buf.length) throw new PgoutputError('TupleData truncated');
  const n = buf.readUInt16BE(pos);
  pos += 2;
  if (n > shape.prefixes.length) {
    throw new PgoutputError(`tuple of ${n} columns for relation ${shape.schema}.${shape.table} of ${shape.prefixes.length}`);
  }
  let out = '{';
  let first = true;
  const keys = shape.keyColumns;
  keyParts = keys.length === 0 ? keyParts : new Array<string>(keys.length);
  for (let i = 0; i < n; i++) {
    const kind = buf[pos++];
    let value: string;
    if (kind === TUPLE_TEXT) {
      const len = buf.readUInt32BE(pos);
      pos += 4;
      const end = pos + len;
      if (end > buf.length) throw new PgoutputError('TupleData value runs past the message');
      value = shape.convert[i]!(buf.toString('utf8', pos, end));
      pos = end;
    } else if (kind === TUPLE_NULL) {
      value = 'null';
    } else if (kind === TUPLE_UNCHANGED_TOAST) {
      value = UNCHANGED_TOAST_JSON;
    } else if (kind === TUPLE_BINARY) {
      const len = buf.readUInt32BE(pos);
      pos += 4 + len;
      throw new PgoutputError('binary tuple values are not requested and cannot be decoded');
    } else {
      throw new PgoutputError(`unknown TupleData column kind 0x${(kind ?? 0).toString(16)}`);
    }
    if (keyOnly && !shape.identity[i]) continue;
    const k = keys.indexOf(i);
    if (k >= 0) keyParts[k] = value;
    out += first ? shape.prefixes[i]! + value : `,${shape.prefixes[i]!}${value}`;
    first = false;
  }
  tupleEnd = pos;
  return `${out}}`;
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

/**
 * A row message (at `start`, its type byte) → event JSON. `source` is the rest of the source
 * block after the table: `,"ts_ms":...,"commit_ts":"...","snapshot":false}` built once per
 * transaction; `lsnTxid` its head: `{"lsn":"...","txid":N,`.
 */
export function encodeRow(buf: Buffer, start: number, shape: RelationShape, lsnTxid: string, sourceTail: string): EncodedChange {
  const type = buf[start];
  let pos = start + 5;
  let before = 'null';
  let after = 'null';
  let op: 'c' | 'u' | 'd';
  let key: string | null;
  if (type === MSG_INSERT) {
    if (buf[pos] !== 0x4e) throw new PgoutputError('Insert without a new tuple');
    after = tupleJson(buf, pos + 1, shape, false);
    key = keyJson(shape);
    op = 'c';
  } else if (type === MSG_UPDATE || type === MSG_DELETE) {
    const old = buf[pos];
    let oldKey: string | null = null;
    if (old === 0x4b || old === 0x4f) {
      before = tupleJson(buf, pos + 1, shape, old === 0x4b);
      oldKey = keyJson(shape);
      pos = tupleEnd;
    }
    if (type === MSG_DELETE) {
      op = 'd';
      key = oldKey;
    } else {
      if (buf[pos] !== 0x4e) throw new PgoutputError('Update without a new tuple');
      after = tupleJson(buf, pos + 1, shape, false);
      key = keyJson(shape) ?? oldKey;
      op = 'u';
    }
  } else {
    throw new PgoutputError(`not a row message: 0x${(type ?? 0).toString(16)}`);
  }
  return {
    op,
    key,
    json: `{"op":"${op}","before":${before},"after":${after},"source":${lsnTxid}${shape.sourceTable}${sourceTail}}`,
  };
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
  return { op: 'c', key: keyJson(shape), json: `{"op":"r","before":null,"after":${after},"source":${source}}` };
}

/** A truncate event for one relation. */
export function encodeTruncate(shape: Pick<RelationShape, 'sourceTable'>, lsnTxid: string, sourceTail: string): string {
  return `{"op":"t","before":null,"after":null,"source":${lsnTxid}${shape.sourceTable}${sourceTail}}`;
}
