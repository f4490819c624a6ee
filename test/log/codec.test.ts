/**
 * The local log's batch format (core/log/local/codec.ts), byte by byte, and Kafka's murmur2
 * partitioner (core/log/partitioner.ts). Pure: no files.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import {
  BATCH_HEADER_BYTES,
  MAGIC,
  checkBatch,
  decodeRecords,
  encodeBatch,
  findTimestamp,
  readHeader,
  recordSize,
  setBaseOffset,
} from '../../core/log/local/codec.js';
import { murmur2, partitionForKey } from '../../core/log/partitioner.js';
import type { LogRecord, ProducerRecord } from '../../core/log/types.js';

/** Encodes `records` as one batch the way the log does: sizes and timestamps measured first. */
function encode(records: readonly ProducerRecord[], now = 0): Buffer {
  const sizes = records.map((r) => recordSize(r));
  const stamps = records.map((r) => r.timestamp ?? now);
  return encodeBatch(records, null, 0, records.length, sizes, stamps).buf;
}

function decodeAll(buf: Buffer, pos = 0): LogRecord[] {
  const h = readHeader(buf, pos);
  const out: LogRecord[] = [];
  decodeRecords(buf, pos, h, h.baseOffset, h.baseOffset + h.count, out);
  return out;
}

/** CRC-32 (IEEE, reflected, as zlib computes it), written out bit by bit as an independent check. */
function referenceCrc32(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const b of bytes) {
    crc ^= b;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

function hex(s: string): Buffer {
  return Buffer.from(s.replace(/\s+/g, ''), 'hex');
}

const T0 = 1_700_000_000_000; // 0x0000018b_cfe56800: needs both 32-bit halves of the int64

describe('batch fixture', () => {
  const records: ProducerRecord[] = [
    { key: 'k', value: 'v1', headers: { h: 'x' }, timestamp: T0 },
    { key: null, value: new Uint8Array([0xff, 0x00]), timestamp: T0 - 10 },
  ];
  // Hand-assembled from the format described at the top of codec.ts (little-endian throughout).
  const body =
    // 16 magic, 17 attributes, 18 count = 2
    '01 00 02000000' +
    // 22 firstTimestamp = T0, 30 maxTimestamp = T0 (the second record is older)
    '0068e5cf8b010000 0068e5cf8b010000' +
    // record 0: tsDelta 0, keyLen 1 "k", valueLen 2 "v1", 1 header: keyLen 1 "h", valueLen 1 "x"
    '00000000 01000000 6b 02000000 7631 0100 0100 68 01000000 78' +
    // record 1: tsDelta -10, keyLen -1 (null), valueLen 2 ff 00, no headers
    'f6ffffff ffffffff 02000000 ff00 0000';
  const expectedLength = 38 + 25 + 16;

  it('encodes every field at its documented byte position', () => {
    const buf = encode(records);
    expect(recordSize(records[0]!)).toBe(25);
    expect(recordSize(records[1]!)).toBe(16);
    expect(buf.length).toBe(expectedLength);
    expect(buf.subarray(0, 8)).toEqual(hex('0000000000000000')); // base offset: placed later
    expect(buf.readUInt32LE(8)).toBe(expectedLength);
    expect(buf.subarray(16)).toEqual(hex(body));
    expect(buf.readUInt32LE(12)).toBe(referenceCrc32(hex(body)));
  });

  it('readHeader reads the documented fields', () => {
    const buf = encode(records);
    expect(readHeader(buf, 0)).toEqual({
      baseOffset: 0,
      length: expectedLength,
      crc: referenceCrc32(hex(body)),
      magic: MAGIC,
      count: 2,
      firstTimestamp: T0,
      maxTimestamp: T0,
    });
    expect(BATCH_HEADER_BYTES).toBe(38);
  });

  it('setBaseOffset writes an int64 outside the checksum', () => {
    const buf = encode(records);
    const base = 2 ** 40 + 5;
    setBaseOffset(buf, base);
    expect(buf.subarray(0, 8)).toEqual(hex('0500000000010000'));
    const h = readHeader(buf, 0);
    expect(h.baseOffset).toBe(base);
    expect(checkBatch(buf, 0, h)).toBeNull();
  });

  it('decodeRecords gives the records back at their offsets', () => {
    const buf = encode(records);
    setBaseOffset(buf, 41);
    const out = decodeAll(buf);
    expect(out.map((r) => ({ ...r, value: [...r.value] }))).toEqual([
      { offset: 41, timestamp: T0, key: 'k', value: [0x76, 0x31], headers: { h: 'x' } },
      { offset: 42, timestamp: T0 - 10, key: null, value: [0xff, 0x00], headers: {} },
    ]);
  });

  it('decodeRecords keeps only offsets in [fromOffset, endOffset)', () => {
    const buf = encode(records);
    setBaseOffset(buf, 10);
    const h = readHeader(buf, 0);
    const tail: LogRecord[] = [];
    decodeRecords(buf, 0, h, 11, 100, tail);
    expect(tail.map((r) => r.offset)).toEqual([11]);
    const head: LogRecord[] = [];
    decodeRecords(buf, 0, h, 0, 11, head);
    expect(head.map((r) => r.offset)).toEqual([10]);
  });

  it('reads a batch at a non-zero position of a larger buffer', () => {
    const a = encode(records);
    const b = encode([{ key: 'second', value: 'batch', timestamp: 5 }]);
    setBaseOffset(a, 0);
    setBaseOffset(b, 2);
    const both = Buffer.concat([a, b]);
    const h = readHeader(both, a.length);
    expect(h).toMatchObject({ baseOffset: 2, count: 1, length: b.length });
    expect(checkBatch(both, a.length, h)).toBeNull();
    expect(decodeAll(both, a.length).map((r) => [r.offset, r.key, r.value.toString()])).toEqual([[2, 'second', 'batch']]);
  });

  it('findTimestamp finds the first record at or after a time', () => {
    const buf = encode([
      { value: 'a', timestamp: 100 },
      { value: 'b', timestamp: 300 },
      { value: 'c', timestamp: 200 },
    ]);
    setBaseOffset(buf, 7);
    const h = readHeader(buf, 0);
    expect(h.maxTimestamp).toBe(300);
    expect(findTimestamp(buf, 0, h, 50)).toBe(7);
    expect(findTimestamp(buf, 0, h, 150)).toBe(8);
    expect(findTimestamp(buf, 0, h, 300)).toBe(8);
    expect(findTimestamp(buf, 0, h, 301)).toBeNull();
  });

  it('checkBatch names each kind of damage', () => {
    const good = encode(records);
    const magic = Buffer.from(good);
    magic[16] = 2;
    expect(checkBatch(magic, 0, readHeader(magic, 0))).toMatch(/magic 2/);

    const short = Buffer.from(good);
    short.writeUInt32LE(20, 8);
    expect(checkBatch(short, 0, readHeader(short, 0))).toMatch(/shorter than its header/);

    const cut = good.subarray(0, good.length - 1);
    expect(checkBatch(cut, 0, readHeader(cut, 0))).toMatch(/past the end/);

    const flipped = Buffer.from(good);
    flipped[good.length - 1]! ^= 0x01;
    expect(checkBatch(flipped, 0, readHeader(flipped, 0))).toMatch(/checksum mismatch/);
  });

  it('decodeRecords rejects a checksummed batch whose count claims more records than it holds', () => {
    const buf = encode(records);
    buf.writeUInt32LE(3, 18);
    buf.writeUInt32LE(referenceCrc32(buf.subarray(16)), 12);
    const h = readHeader(buf, 0);
    expect(checkBatch(buf, 0, h)).toBeNull();
    expect(() => decodeRecords(buf, 0, h, 0, 3, [])).toThrow(/past the end of its batch/);
  });

  it('encodes an empty value, an empty key and an empty header', () => {
    const buf = encode([{ key: '', value: '', headers: { '': '' }, timestamp: 0 }]);
    const [r] = decodeAll(buf);
    expect(r).toMatchObject({ key: '', timestamp: 0, headers: { '': '' } });
    expect(r!.value.length).toBe(0);
  });

  it('keeps a header named "__proto__"', () => {
    const headers = JSON.parse('{"__proto__":"p","a":"1"}') as Record<string, string>;
    expect(Object.keys(headers)).toEqual(['__proto__', 'a']);
    const [r] = decodeAll(encode([{ value: 'v', headers, timestamp: 1 }]));
    expect(Object.keys(r!.headers).sort()).toEqual(['__proto__', 'a']);
    expect(Object.getOwnPropertyDescriptor(r!.headers, '__proto__')?.value).toBe('p');
  });
});

// ---- properties ----

const text = fc.string({ unit: 'binary', maxLength: 40 });
const bytes = fc.uint8Array({ maxLength: 300 });

/** Spreads of timestamps: equal, close, and as far apart as one batch can hold (int32 deltas). */
const delta = fc.oneof(
  fc.constant(0),
  fc.integer({ min: -1000, max: 1000 }),
  fc.integer({ min: -0x7fffffff, max: 0x7fffffff }),
);

const headersArb = fc.option(
  // "__proto__" is covered by its own example above; here it would only make failures random.
  fc.dictionary(
    text.filter((k) => k !== '__proto__'),
    text,
    { maxKeys: 4 },
  ),
  { nil: undefined },
);

const recordsArb = fc
  .tuple(
    fc.integer({ min: 0x7fffffff, max: Number.MAX_SAFE_INTEGER - 0x7fffffff }),
    fc.array(
      fc.record({
        key: fc.oneof(fc.constant(undefined), fc.constant(null), text),
        value: fc.oneof(text, bytes),
        headers: headersArb,
        delta,
      }),
      { minLength: 1, maxLength: 25 },
    ),
  )
  .map(([first, rs]): ProducerRecord[] =>
    rs.map((r, i) => {
      const rec: ProducerRecord = { value: r.value, timestamp: i === 0 ? first : first + r.delta };
      if (r.key !== undefined) rec.key = r.key;
      if (r.headers !== undefined) rec.headers = r.headers;
      return rec;
    }),
  );

function expected(r: ProducerRecord, offset: number): unknown {
  return {
    offset,
    timestamp: r.timestamp,
    key: r.key ?? null,
    value: [...(typeof r.value === 'string' ? Buffer.from(r.value, 'utf8') : r.value)],
    headers: { ...r.headers },
  };
}

describe('batch properties', () => {
  it('any list of records round-trips', () => {
    fc.assert(
      fc.property(recordsArb, fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER - 100 }), (records, base) => {
        const buf = encode(records);
        setBaseOffset(buf, base);
        const h = readHeader(buf, 0);
        expect(checkBatch(buf, 0, h)).toBeNull();
        expect(h.length).toBe(buf.length);
        expect(h.count).toBe(records.length);
        expect(h.firstTimestamp).toBe(records[0]!.timestamp);
        expect(h.maxTimestamp).toBe(Math.max(...records.map((r) => r.timestamp!)));
        const out = decodeAll(buf);
        expect(out.map((r) => ({ ...r, value: [...r.value], headers: { ...r.headers } }))).toEqual(
          records.map((r, i) => expected(r, base + i)),
        );
      }),
      { numRuns: 300 },
    );
  });

  it('any single damaged byte after the length field is caught by checkBatch', () => {
    fc.assert(
      fc.property(recordsArb, fc.nat(), fc.integer({ min: 1, max: 255 }), (records, at, mask) => {
        const buf = encode(records);
        // [12, 16) is the stored CRC itself; [16, length) is what it covers.
        const i = 12 + (at % (buf.length - 12));
        buf[i]! ^= mask;
        expect(checkBatch(buf, 0, readHeader(buf, 0))).not.toBeNull();
      }),
      { numRuns: 500 },
    );
  });

  it('any truncation of a batch is caught by checkBatch', () => {
    fc.assert(
      fc.property(recordsArb, fc.nat(), (records, at) => {
        const buf = encode(records);
        const cut = buf.subarray(0, BATCH_HEADER_BYTES + (at % (buf.length - BATCH_HEADER_BYTES)));
        expect(checkBatch(cut, 0, readHeader(cut, 0))).toMatch(/past the end/);
      }),
    );
  });
});

// ---- murmur2 ----

/** Kafka's Utils.murmur2 as written in Java, in exact 32-bit two's-complement arithmetic via BigInt. */
function javaMurmur2(data: Uint8Array): number {
  const i32 = (x: bigint): bigint => BigInt.asIntN(32, x);
  const ushr = (x: bigint, n: bigint): bigint => BigInt.asUintN(32, x) >> n;
  const m = 0x5bd1e995n;
  const length = data.length;
  let h = i32(BigInt.asIntN(32, 0x9747b28cn) ^ BigInt(length));
  const length4 = Math.floor(length / 4);
  for (let i = 0; i < length4; i++) {
    const i4 = i * 4;
    let k = i32(
      BigInt(data[i4]!) + (BigInt(data[i4 + 1]!) << 8n) + (BigInt(data[i4 + 2]!) << 16n) + (BigInt(data[i4 + 3]!) << 24n),
    );
    k = i32(k * m);
    k = i32(k ^ ushr(k, 24n));
    k = i32(k * m);
    h = i32(h * m);
    h = i32(h ^ k);
  }
  const tail = length & ~3;
  // Java's fall-through switch on length % 4 (case 3, then 2, then 1).
  const rest = length % 4;
  if (rest >= 3) h = i32(h ^ (BigInt(data[tail + 2]!) << 16n));
  if (rest >= 2) h = i32(h ^ (BigInt(data[tail + 1]!) << 8n));
  if (rest >= 1) {
    h = i32(h ^ BigInt(data[tail]!));
    h = i32(h * m);
  }
  h = i32(h ^ ushr(h, 13n));
  h = i32(h * m);
  h = i32(h ^ ushr(h, 15n));
  return Number(h);
}

describe('murmur2', () => {
  // From Kafka's clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java (testMurmur2).
  const kafkaVectors: [string, number][] = [
    ['21', -973932308],
    ['foobar', -790332482],
    ['a-little-bit-long-string', -985981536],
    ['a-little-bit-longer-string', -1486304829],
    ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
    ['abc', 479470107],
  ];

  it.each(kafkaVectors)('matches Kafka for %j', (key, hash) => {
    expect(murmur2(Buffer.from(key, 'utf8'))).toBe(hash);
    expect(javaMurmur2(Buffer.from(key, 'utf8'))).toBe(hash);
  });

  it('puts keys where Kafka would: toPositive(murmur2(key)) % partitions', () => {
    for (const [key, hash] of kafkaVectors) {
      for (const n of [1, 2, 3, 4, 7, 12, 100]) expect(partitionForKey(key, n)).toBe((hash & 0x7fffffff) % n);
    }
    // Worked out by hand: -790332482 & 0x7fffffff = 1357151166.
    expect(partitionForKey('foobar', 4)).toBe(2);
    expect(partitionForKey('foobar', 10)).toBe(6);
  });

  it('agrees with the Java algorithm on any bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (data) => {
        const h = murmur2(data);
        expect(h).toBe(javaMurmur2(data));
        expect(Number.isInteger(h) && h >= -(2 ** 31) && h < 2 ** 31).toBe(true);
        expect(murmur2(Uint8Array.from(data))).toBe(h);
      }),
      { numRuns: 1000 },
    );
  });

  it('hashes the UTF-8 bytes of a key', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 20 }), fc.integer({ min: 1, max: 64 }), (key, n) => {
        const p = partitionForKey(key, n);
        expect(p).toBe((javaMurmur2(Buffer.from(key, 'utf8')) & 0x7fffffff) % n);
        expect(p >= 0 && p < n).toBe(true);
      }),
    );
  });

  it('spreads keys evenly', () => {
    const partitions = 8;
    const n = 40_000;
    const counts = new Array<number>(partitions).fill(0);
    for (let i = 0; i < n; i++) counts[partitionForKey(`user-${i}`, partitions)]!++;
    // Binomial sd is ~66 here; 5% (250) is far outside chance for a uniform hash.
    for (const c of counts) expect(Math.abs(c - n / partitions)).toBeLessThan(n / partitions / 20);
    // And the bits of the hash itself: each of the 32 bits is set about half the time.
    const bits = new Array<number>(32).fill(0);
    for (let i = 0; i < 4096; i++) {
      const h = murmur2(Buffer.from(`k${i}`));
      for (let b = 0; b < 32; b++) if ((h >>> b) & 1) bits[b]!++;
    }
    for (const c of bits) expect(Math.abs(c - 2048)).toBeLessThan(200);
  });
});
