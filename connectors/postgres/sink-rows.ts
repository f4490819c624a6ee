/**
 * Records of the `postgres` sink as rows and change events, and the steps a batch becomes. Pure.
 */
import type { SinkRecord } from '../sdk.js';
import { PgSinkError } from './sink-errors.js';
import type { TableInfo } from './sink-table.js';

export type Row = Record<string, unknown>;

/** One statement (or COPY + statement) of a batch, run in order inside the batch's transaction. */
export type Step =
  | { kind: 'insert'; table: TableInfo; columns: string[]; rows: Row[] }
  | { kind: 'upsert'; table: TableInfo; columns: string[]; rows: Row[]; keys: string[] }
  | { kind: 'delete'; table: TableInfo; keys: string[]; rows: Row[] }
  | { kind: 'update'; table: TableInfo; set: Row; where: Row; keys: string[]; insertIfMissing: boolean }
  | { kind: 'updateMany'; table: TableInfo; columns: string[]; keys: string[]; rows: Row[] }
  | { kind: 'truncate'; table: TableInfo };

export interface CdcEvent {
  op: 'c' | 'u' | 'd' | 'r' | 't';
  before: Row | null;
  after: Row | null;
}

export function isRow(v: unknown): v is Row {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function badRecord(r: SinkRecord, detail: string): PgSinkError {
  return new PgSinkError('SLUICE_PG_BAD_RECORD', `${r.topic}/${r.partition}@${r.offset}: ${detail}`);
}

export function signature(row: Row): string {
  return Object.keys(row).join('\u0001');
}

/** Rows grouped by their field list (in first-seen order), so each COPY has one column list. */
export function groupBySignature(rows: Row[]): [string[], Row[]][] {
  const groups = new Map<string, [string[], Row[]]>();
  let lastSig = '';
  let last: [string[], Row[]] | undefined;
  for (const row of rows) {
    const sig = signature(row);
    if (last === undefined || sig !== lastSig) {
      last = groups.get(sig);
      if (last === undefined) groups.set(sig, (last = [Object.keys(row), []]));
      lastSig = sig;
    }
    last[1].push(row);
  }
  return [...groups.values()];
}

/** The last row of each key (an INSERT … ON CONFLICT cannot touch one row twice). */
export function lastPerKey(rows: Row[], keys: string[], nullKey: (row: Row) => Error): Row[] {
  const byKey = new Map<string, Row>();
  for (const row of rows) {
    const parts = keys.map((k) => row[k]);
    if (parts.some((p) => p === null || p === undefined)) throw nullKey(row);
    const k = keys.length === 1 ? JSON.stringify(parts[0]) : JSON.stringify(parts);
    // Re-inserted so that the map's order is the order of each key's last write.
    byKey.delete(k);
    byKey.set(k, row);
  }
  return byKey.size === rows.length ? rows : [...byKey.values()];
}

export function badRecordFor(records: SinkRecord[], rows: Row[], row: Row, keys: string[]): PgSinkError {
  const r = records[rows.indexOf(row)]!;
  return badRecord(r, `a key column (${keys.join(', ')}) is missing or null`);
}

export function cdcEvent(r: SinkRecord): CdcEvent {
  const v = r.value;
  if (!isRow(v)) throw badRecord(r, 'the value is not a CDC event (a JSON object with op, before, after)');
  const op = v.op;
  if (op !== 'c' && op !== 'u' && op !== 'd' && op !== 'r' && op !== 't') throw badRecord(r, `unknown op ${JSON.stringify(op)} (c, u, d, r or t)`);
  const before = v.before ?? null;
  const after = v.after ?? null;
  if (before !== null && !isRow(before)) throw badRecord(r, '"before" is not an object');
  if (after !== null && !isRow(after)) throw badRecord(r, '"after" is not an object');
  return { op, before, after };
}
