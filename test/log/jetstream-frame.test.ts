/** The JetStream frame codec (core/log/jetstream/frame.ts): byte fixtures and round trips. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { CorruptRecordError } from '../../core/log/errors.js';
import { decodeFrame, decodeFrameValues, encodeFrame, frameBuffer, frameSummary, recordBytes, type FrameRecord } from '../../core/log/jetstream/frame.js';
import { SpanBuilder } from '../../core/log/value-spans.js';
import type { LogRecord } from '../../core/log/types.js';

function encode(records: FrameRecord[]): Buffer {
  const bytes = records.reduce((n, r) => n + recordBytes(r), 0);
  return encodeFrame(records, 0, records.length, bytes);
}

describe('frame codec', () => {
  it('lays out a frame byte by byte', () => {
    const frame = encode([
      { timestamp: 1, key: Buffer.from('k'), value: Buffer.from('v'), headers: [[Buffer.from('h'), Buffer.from('x')]] },
      { timestamp: 2, key: null, value: Buffer.alloc(0), headers: null },
    ]);
    expect(frame.toString('hex')).toBe(
      [
        '534c4631', // "SLF1"
        '02000000', // count 2
        '0000000000000040', // max timestamp 2.0
        '000000000000f03f', // record 0: timestamp 1.0
        '01000000', '6b', // key length 1, "k"
        '01000000', '76', // value length 1, "v"
        '0100', '0100', '68', '01000000', '78', // 1 header: "h" = "x"
        '0000000000000040', // record 1: timestamp 2.0
        'ffffffff', // null key
        '00000000', // empty value
        '0000', // no headers
      ].join(''),
    );
    expect(frameSummary(frame, 'f')).toEqual({ count: 2, maxTimestamp: 2 });
    const out: LogRecord[] = [];
    decodeFrame(frame, 40, 41, 'f', out);
    expect(out).toEqual([{ offset: 41, timestamp: 2, key: null, value: Buffer.alloc(0), headers: {} }]);
  });

  it('keeps a header named __proto__ as data', () => {
    const frame = encode([{ timestamp: 0, key: null, value: Buffer.alloc(0), headers: [[Buffer.from('__proto__'), Buffer.from('x')]] }]);
    const out: LogRecord[] = [];
    decodeFrame(frame, 0, 0, 'f', out);
    expect(Object.entries(out[0]!.headers)).toEqual([['__proto__', 'x']]);
    expect(Object.getPrototypeOf(out[0]!.headers)).toBe(Object.prototype);
  });

  it('refuses bad magic and truncated frames with CorruptRecordError', () => {
    const frame = encode([{ timestamp: 5, key: null, value: Buffer.from('hello'), headers: null }]);
    expect(() => frameSummary(Buffer.from('nope, not a frame'), 'x')).toThrow(CorruptRecordError);
    expect(() => decodeFrame(frame.subarray(0, frame.length - 2), 0, 0, 'x', [])).toThrow(/truncated/);
    expect(() => decodeFrame(Buffer.concat([frame, Buffer.from([0])]), 0, 0, 'x', [])).toThrow(/after the last record/);
    const cut = frame.subarray(0, frame.length - 2);
    expect(() => decodeFrameValues(cut, 0, 0, 'x', new SpanBuilder(frameBuffer(cut)))).toThrow(/truncated/);
    const longer = Buffer.concat([frame, Buffer.from([0])]);
    expect(() => decodeFrameValues(longer, 0, 0, 'x', new SpanBuilder(frameBuffer(longer)))).toThrow(/after the last record/);
  });

  it('round-trips any records', () => {
    const record = fc.record({
      timestamp: fc.integer({ min: 0, max: 2 ** 47 }),
      key: fc.option(fc.string({ unit: 'grapheme' }), { nil: null }),
      value: fc.uint8Array({ maxLength: 300 }),
      headers: fc.dictionary(fc.string({ minLength: 1, maxLength: 10 }), fc.string({ maxLength: 20 }), { maxKeys: 3 }),
    });
    fc.assert(
      fc.property(fc.array(record, { minLength: 1, maxLength: 30 }), fc.nat(1000), fc.nat(40), (records, base, skip) => {
        const frame = encode(
          records.map((r) => ({
            timestamp: r.timestamp,
            key: r.key === null ? null : Buffer.from(r.key, 'utf8'),
            value: r.value,
            headers: Object.keys(r.headers).length === 0 ? null : Object.entries(r.headers).map(([k, v]) => [Buffer.from(k), Buffer.from(v)]),
          })),
        );
        const out: LogRecord[] = [];
        decodeFrame(frame, base, base, 'p', out);
        expect(out.map((r) => [r.offset, r.timestamp, r.key, Buffer.from(r.value).toString('hex'), r.headers])).toEqual(
          records.map((r, i) => [base + i, r.timestamp, r.key, Buffer.from(r.value).toString('hex'), r.headers]),
        );
        // Values only, from any offset in the frame: the same values.
        const from = base + Math.min(skip, records.length - 1);
        const spans = new SpanBuilder(frameBuffer(frame));
        const bytes = decodeFrameValues(frame, base, from, 'p', spans);
        const values = Array.from({ length: spans.count }, (_, i) => frame.subarray(spans.starts[i]!, spans.ends[i]!).toString('hex'));
        expect(values).toEqual(out.filter((r) => r.offset >= from).map((r) => Buffer.from(r.value).toString('hex')));
        expect(bytes).toBe(records.slice(from - base).reduce((n, r) => n + r.value.length, 0));
      }),
    );
  });
});
