import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { charBoundary, frameLines, partialLineEnd } from '../../../connectors/file/framing.js';

interface Line {
  text: string;
  next: number;
  truncated: boolean;
  skipAfter: boolean;
}

function frame(input: string | Buffer, max = 100, skipping = false, stopAfter = Infinity) {
  const buf = typeof input === 'string' ? Buffer.from(input) : input;
  const lines: Line[] = [];
  const r = frameLines(buf, 0, skipping, max, (s, e, next, truncated, skipAfter) => {
    lines.push({ text: buf.toString('utf8', s, e), next, truncated, skipAfter });
    return lines.length < stopAfter;
  });
  return { lines, ...r };
}

describe('frameLines', () => {
  it('splits on LF and drops the CR of CRLF', () => {
    const r = frame('a\nbb\r\n\r\nccc\n');
    expect(r.lines.map((l) => l.text)).toEqual(['a', 'bb', '', 'ccc']);
    expect(r.lines.map((l) => l.next)).toEqual([2, 6, 8, 12]);
    expect(r).toMatchObject({ pos: 12, skipping: false, stopped: false });
  });

  it('leaves a partial last line unconsumed', () => {
    const r = frame('a\nparti');
    expect(r.lines.map((l) => l.text)).toEqual(['a']);
    expect(r.pos).toBe(2);
  });

  it('keeps a CR that is not before an LF', () => {
    expect(frame('a\rb\n').lines[0]!.text).toBe('a\rb');
  });

  it('stops when the handler says so, after that line', () => {
    const r = frame('a\nb\nc\n', 100, false, 2);
    expect(r.lines.map((l) => l.text)).toEqual(['a', 'b']);
    expect(r).toMatchObject({ pos: 4, stopped: true });
  });

  it('cuts a complete line longer than the limit', () => {
    const r = frame(`${'x'.repeat(30)}\nok\n`, 10);
    expect(r.lines).toEqual([
      { text: 'x'.repeat(10), next: 31, truncated: true, skipAfter: false },
      { text: 'ok', next: 34, truncated: false, skipAfter: false },
    ]);
  });

  it('emits the head of an over-long line before its end arrives, then discards the rest', () => {
    const first = frame('x'.repeat(25), 10);
    expect(first.lines).toEqual([{ text: 'x'.repeat(10), next: 25, truncated: true, skipAfter: true }]);
    expect(first).toMatchObject({ pos: 25, skipping: true });
    const middle = frame('y'.repeat(50), 10, true);
    expect(middle.lines).toEqual([]);
    expect(middle).toMatchObject({ pos: 50, skipping: true });
    const end = frame('zz\nnext\n', 10, true);
    expect(end.lines.map((l) => l.text)).toEqual(['next']);
    expect(end).toMatchObject({ pos: 8, skipping: false });
  });

  it('waits while a partial line is shorter than the limit', () => {
    expect(frame('x'.repeat(9), 10)).toMatchObject({ lines: [], pos: 0, skipping: false });
  });

  it('cuts at a UTF-8 character boundary', () => {
    // "é" is 2 bytes: a cut at 3 bytes would split the second one.
    const r = frame('ééé\n', 3);
    expect(r.lines[0]!.text).toBe('é');
    expect(r.lines[0]!.truncated).toBe(true);
  });

  it('frames any input the same however it is split into reads (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom('a', 'b', '\n', '\r', 'é'), { maxLength: 80 }), fc.integer({ min: 1, max: 40 }), fc.integer({ min: 4, max: 12 }), (chars, cutAt, max) => {
        const input = Buffer.from(chars.join(''));
        const whole = frame(input, max).lines.map((l) => [l.text, l.truncated]);
        // The same bytes in two reads, with a carry as the source keeps it.
        const cut = Math.min(cutAt, input.length);
        const a = frame(input.subarray(0, cut), max);
        const carry = Buffer.concat([input.subarray(a.pos, cut), input.subarray(cut)]);
        const b = frame(carry, max, a.skipping);
        const split = [...a.lines, ...b.lines].map((l) => [l.text, l.truncated]);
        // An over-long line may be cut differently when its head is emitted early; compare untruncated lines.
        expect(split.filter((l) => !l[1])).toEqual(whole.filter((l) => !l[1]));
      }),
    );
  });
});

describe('partialLineEnd / charBoundary', () => {
  it('drops a trailing CR of a partial line', () => {
    expect(partialLineEnd(Buffer.from('abc\r'), 0)).toBe(3);
    expect(partialLineEnd(Buffer.from('abc'), 0)).toBe(3);
  });

  it('moves a cut back to the start of a character', () => {
    const b = Buffer.from('a€b'); // € = e2 82 ac
    expect(charBoundary(b, 0, 2)).toBe(1);
    expect(charBoundary(b, 0, 3)).toBe(1);
    expect(charBoundary(b, 0, 4)).toBe(4);
    expect(charBoundary(b, 0, 99)).toBe(b.length);
  });
});
