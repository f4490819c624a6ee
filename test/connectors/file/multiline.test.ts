import { describe, expect, it } from 'vitest';
import { MultilineAggregator } from '../../../connectors/file/multiline.js';

function run(agg: MultilineAggregator, lines: string[]): { text: string; end: number }[] {
  const out: { text: string; end: number }[] = [];
  let off = 0;
  for (const l of lines) {
    off += Buffer.byteLength(l) + 1;
    const ev = agg.push(l, Buffer.byteLength(l), false, off, false, 0);
    if (ev !== null) out.push({ text: ev.text, end: ev.end });
  }
  const last = agg.flush();
  if (last !== null) out.push({ text: last.text, end: last.end });
  return out;
}

describe('MultilineAggregator', () => {
  it('start pattern: a matching line begins an event', () => {
    const agg = new MultilineAggregator({ mode: 'start', pattern: /^\d{4}-/ }, 1000);
    const lines = ['2024-01-01 boom', '  at a()', '  at b()', '2024-01-01 ok', 'orphan?'];
    expect(run(agg, lines)).toEqual([
      { text: '2024-01-01 boom\n  at a()\n  at b()', end: 34 },
      { text: '2024-01-01 ok\norphan?', end: 56 },
    ]);
  });

  it('start pattern: lines before the first start form their own event', () => {
    const agg = new MultilineAggregator({ mode: 'start', pattern: /^START/ }, 1000);
    expect(run(agg, ['junk', 'START a', 'b']).map((e) => e.text)).toEqual(['junk', 'START a\nb']);
  });

  it('continuation pattern: a matching line continues the event', () => {
    const agg = new MultilineAggregator({ mode: 'continuation', pattern: /^\s/ }, 1000);
    expect(run(agg, ['Exception', '\tat x', '\tat y', 'next', 'last', ' cont']).map((e) => e.text)).toEqual([
      'Exception\n\tat x\n\tat y',
      'next',
      'last\n cont',
    ]);
  });

  it('cuts an event at the byte limit but consumes all its lines', () => {
    const agg = new MultilineAggregator({ mode: 'continuation', pattern: /^\s/ }, 12);
    agg.push('head', 4, false, 5, false, 0);
    agg.push(' aaaa', 5, false, 11, false, 0);
    agg.push(' bbbb', 5, false, 17, false, 0);
    const ev = agg.flush()!;
    expect(ev).toEqual({ text: 'head\n aaaa', end: 17, endSkip: false, truncated: true });
  });

  it('records when the last line came (for the timeout)', () => {
    const agg = new MultilineAggregator({ mode: 'start', pattern: /^S/ }, 100);
    agg.push('S1', 2, false, 3, false, 1000);
    agg.push('x', 1, false, 5, false, 1500);
    expect(agg.lastAt).toBe(1500);
    expect(agg.pending).toBe(true);
    agg.flush();
    expect(agg.pending).toBe(false);
  });
});
