/** The pgoutput decoder and the JSON writers, byte by byte (no server). */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeBegin,
  decodeCommit,
  decodeKeepalive,
  decodeRelation,
  decodeRow,
  decodeTruncate,
  decodeType,
  encodeStatusUpdate,
  formatLsn,
  isoMicros,
  parseLsn,
  PgoutputError,
  UNCHANGED_TOAST,
} from '../../../connectors/postgres/pgoutput.js';
import { encodeRow, relationShape, rowKey, rowOp, sourceTail } from '../../../connectors/postgres/pgoutput-json.js';
import { ByteWriter, byteConverterFor, exactDecimal } from '../../../connectors/postgres/pgoutput-bytes.js';
import { arrayConverter, int8, numeric, str } from '../../../connectors/postgres/pgoutput-values.js';

const u8 = (n: number) => Buffer.from([n]);
const u16 = (n: number) => { const b = Buffer.alloc(2); b.writeUInt16BE(n); return b; };
const u32 = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32BE(n); return b; };
const u64 = (n: bigint) => { const b = Buffer.alloc(8); b.writeBigUInt64BE(n); return b; };
const cstr = (s: string) => Buffer.concat([Buffer.from(s), u8(0)]);
const text = (s: string) => Buffer.concat([Buffer.from('t'), u32(Buffer.byteLength(s)), Buffer.from(s)]);
const tuple = (...cols: Buffer[]) => Buffer.concat([u16(cols.length), ...cols]);

const relation = Buffer.concat([
  Buffer.from('R'), u32(16384), cstr('public'), cstr('orders'), Buffer.from('d'), u16(3),
  u8(1), cstr('id'), u32(20), u32(0xffffffff),
  u8(0), cstr('note'), u32(25), u32(0xffffffff),
  u8(0), cstr('doc'), u32(3802), u32(0xffffffff),
]);

describe('pgoutput messages', () => {
  it('Begin, Commit, Relation, Type, Truncate, keepalive', () => {
    const begin = decodeBegin(Buffer.concat([Buffer.from('B'), u64(0x1_0000_0010n), u64(1_000_000n), u32(750)]), 0);
    expect(begin).toEqual({ finalLsn: 0x1_0000_0010, commitTimeUs: 946_684_801_000_000n, xid: 750 });
    expect(isoMicros(begin.commitTimeUs)).toBe('2000-01-01T00:00:01.000000Z');
    const commit = decodeCommit(Buffer.concat([Buffer.from('C'), u8(0), u64(16n), u64(48n), u64(5n)]), 0);
    expect(commit).toMatchObject({ commitLsn: 16, endLsn: 48 });
    const rel = decodeRelation(relation, 0);
    expect(rel).toEqual({
      oid: 16384, schema: 'public', table: 'orders', replicaIdentity: 'd',
      columns: [
        { key: true, name: 'id', typeOid: 20, typmod: -1 },
        { key: false, name: 'note', typeOid: 25, typmod: -1 },
        { key: false, name: 'doc', typeOid: 3802, typmod: -1 },
      ],
    });
    expect(decodeType(Buffer.concat([Buffer.from('Y'), u32(99999), cstr('public'), cstr('mood')]), 0)).toEqual({ oid: 99999, schema: 'public', name: 'mood' });
    expect(decodeTruncate(Buffer.concat([Buffer.from('T'), u32(2), u8(3), u32(1), u32(2)]), 0)).toEqual({ cascade: true, restartIdentity: true, relationOids: [1, 2] });
    expect(decodeKeepalive(Buffer.concat([Buffer.from('k'), u64(0xabcdn), u64(0n), u8(1)]))).toEqual({ walEnd: 0xabcd, replyRequested: true });
  });

  it('Update with an old key tuple and an unchanged TOAST value', () => {
    const msg = Buffer.concat([Buffer.from('U'), u32(16384), Buffer.from('K'), tuple(text('7'), u8(0x6e), u8(0x6e)), Buffer.from('N'), tuple(text('8'), u8(0x75), u8(0x6e))]);
    expect(decodeRow(msg, 0)).toEqual({ type: 'update', relationOid: 16384, oldKind: 'K', old: ['7', null, null], new: ['8', UNCHANGED_TOAST, null] });
  });

  it('truncated and malformed messages are typed errors', () => {
    expect(() => decodeBegin(Buffer.from('B\0\0'), 0)).toThrow(PgoutputError);
    expect(() => decodeRelation(relation.subarray(0, 30), 0)).toThrow(PgoutputError);
    expect(() => decodeRow(Buffer.concat([Buffer.from('I'), u32(1), Buffer.from('N'), u16(1), Buffer.from('x')]), 0)).toThrow(/unknown TupleData/);
  });

  it('LSNs print and parse like Postgres', () => {
    expect(formatLsn(0x16_b374d848)).toBe('16/B374D848');
    fc.assert(fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), (n) => parseLsn(formatLsn(n)) === n));
    const s = encodeStatusUpdate(0x10, 0x20, 0x20, 0);
    expect(s.length).toBe(34);
    expect(s[0]).toBe(0x72);
    expect(s.readBigUInt64BE(9)).toBe(0x20n);
  });
});

describe('rows → JSON bytes', () => {
  const shape = relationShape(decodeRelation(relation, 0), new Map(), ['id']);
  const w = new ByteWriter();
  const tail = sourceTail(shape, 750, 1, 'x');

  it('an insert: values typed, the key from the primary key, the source block', () => {
    const msg = Buffer.concat([Buffer.from('I'), u32(16384), Buffer.from('N'), tuple(text('9007199254740993'), text('a "quoted"\nline\u0001é'), text('{"k": [1, 2]}'))]);
    const json = encodeRow(msg, 0, shape, w, 0x1_00000010, tail);
    expect(rowOp).toBe('c');
    expect(rowKey).toBe('{"id":"9007199254740993"}');
    expect(JSON.parse(json.toString())).toEqual({
      op: 'c', before: null,
      after: { id: '9007199254740993', note: 'a "quoted"\nline\u0001é', doc: { k: [1, 2] } },
      source: { lsn: '1/10', txid: 750, schema: 'public', table: 'orders', ts_ms: 1, commit_ts: 'x', snapshot: false },
    });
  });

  it('a delete with the key only; an update keeps TOAST unchanged', () => {
    const del = Buffer.concat([Buffer.from('D'), u32(16384), Buffer.from('K'), tuple(text('5'), u8(0x6e), u8(0x6e))]);
    expect(JSON.parse(encodeRow(del, 0, shape, w, 1, tail).toString())).toMatchObject({ op: 'd', before: { id: 5 }, after: null });
    expect(rowKey).toBe('{"id":5}');
    const upd = Buffer.concat([Buffer.from('U'), u32(16384), Buffer.from('N'), tuple(text('5'), u8(0x75), u8(0x6e))]);
    expect(JSON.parse(encodeRow(upd, 0, shape, w, 1, tail).toString())).toMatchObject({ op: 'u', before: null, after: { id: 5, note: { __sluice_unchanged_toast: true }, doc: null } });
  });

  it('any text survives as a JSON string (escaping)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (s) => {
        const msg = Buffer.concat([Buffer.from('I'), u32(16384), Buffer.from('N'), tuple(text('1'), text(s), u8(0x6e))]);
        return JSON.parse(encodeRow(msg, 0, shape, w, 1, tail).toString()).after.note === s;
      }),
    );
  });

  it('events stay whole across arena boundaries', () => {
    const big = 'y'.repeat(300_000);
    for (let i = 0; i < 10; i++) {
      const msg = Buffer.concat([Buffer.from('I'), u32(16384), Buffer.from('N'), tuple(text(String(i)), text(big), u8(0x6e))]);
      const e = JSON.parse(encodeRow(msg, 0, shape, w, 1, tail).toString());
      expect(e.after.id).toBe(i);
      expect(e.after.note.length).toBe(300_000);
      expect(rowKey).toBe(`{"id":${i}}`);
    }
  });
});

describe('values', () => {
  it('numeric: a number exactly when a double prints it back the same, on both paths', () => {
    fc.assert(
      fc.property(fc.integer({ min: -1e6, max: 1e6 }), fc.nat({ max: 12 }), fc.integer({ min: 0, max: 2 ** 31 }), (int, scale, frac) => {
        const t = scale === 0 ? String(int) : `${int}.${String(frac).padStart(scale, '0').slice(0, scale)}`;
        const asNumber = String(Number(t)) === t;
        expect(numeric(t)).toBe(asNumber ? t : `"${t}"`);
        const b = Buffer.from(t);
        if (exactDecimal(b, 0, b.length)) expect(asNumber).toBe(true);
        // The streaming (byte) path agrees with the string path.
        const w = new ByteWriter();
        byteConverterFor(1700, new Map())(b, 0, b.length, w, 0);
        expect(w.buf.toString('utf8', 0, w.pos)).toBe(numeric(t));
      }),
    );
    expect(numeric('1.50')).toBe('"1.50"');
    expect(numeric('NaN')).toBe('"NaN"');
    expect(numeric('0.000001')).toBe('0.000001');
    expect(numeric('0.0000001')).toBe('"0.0000001"');
  });

  it('int8: numbers up to 2^53 − 1, strings beyond', () => {
    expect(int8('9007199254740991')).toBe('9007199254740991');
    expect(int8('-9007199254740991')).toBe('-9007199254740991');
    expect(int8('9007199254740992')).toBe('"9007199254740992"');
    expect(int8('-9223372036854775808')).toBe('"-9223372036854775808"');
  });

  it('arrays: quoting, escapes, NULL, nesting, dimension prefixes', () => {
    const ints = arrayConverter((t) => t);
    expect(JSON.parse(ints('{{1,2},{3,NULL}}'))).toEqual([[1, 2], [3, null]]);
    expect(JSON.parse(ints('[0:1]={5,6}'))).toEqual([5, 6]);
    expect(JSON.parse(ints('{}'))).toEqual([]);
    const texts = arrayConverter(str);
    expect(JSON.parse(texts('{"a,b","c\\\\d","e\\"f","NULL",NULL,plain}'))).toEqual(['a,b', 'c\\d', 'e"f', 'NULL', null, 'plain']);
    expect(() => texts('{"open')).toThrow(/malformed/);
  });
});
