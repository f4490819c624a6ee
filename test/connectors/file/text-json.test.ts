/** The text-event JSON encoder gives exactly JSON.stringify's bytes, for any valid UTF-8 line. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EncodedRecord } from '../../../connectors/sdk.js';
import { TextJsonEncoder } from '../../../connectors/file/text-json.js';

const ISO = '2026-12-03T14:00:00.000Z';

function expected(host: string, file: string, message: string): string {
  return JSON.stringify({ timestamp: ISO, host, file, message });
}

describe('text events encoded from bytes', () => {
  it('escapes quotes, backslashes and every control character as JSON.stringify does', () => {
    const enc = new TextJsonEncoder('h"1', ISO);
    let all = 'a"b\\c/\u007f é 😀 ';
    for (let c = 0; c < 0x20; c++) all += String.fromCharCode(c);
    const buf = Buffer.from(`xx${all}yy`);
    const json = enc.encode('/logs/a "b".log', buf, 2, buf.length - 2);
    expect(Buffer.from(json).toString('utf8')).toBe(expected('h"1', '/logs/a "b".log', all));
  });

  it('matches JSON.stringify for arbitrary strings, across files and chunk boundaries', () => {
    const enc = new TextJsonEncoder('web-1', ISO);
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 3000 }), fc.constantFrom('/a.log', '/b.log'), (s, file) => {
        // Lone surrogates are not valid UTF-8 lines: those take the string path.
        const text = Buffer.from(s, 'utf8').toString('utf8');
        const buf = Buffer.from(text, 'utf8');
        const json = enc.encode(file, buf, 0, buf.length);
        expect(Buffer.from(json).toString('utf8')).toBe(expected('web-1', file, text));
        const rec = new EncodedRecord(json, 1, enc.view);
        expect(rec.value).toEqual({ timestamp: ISO, host: 'web-1', file, message: text });
        expect(rec.templateView).toEqual({ timestamp: ISO, host: 'web-1', file });
      }),
      { numRuns: 2000 },
    );
  });
});
