import { describe, expect, it } from 'vitest';
import { compileTransforms } from '../../../core/pipeline/transforms/index.js';
import { sampleHash } from '../../../core/pipeline/transforms/sample.js';
import { event } from './helpers.js';

/** A deterministic PRNG (mulberry32) so the counts below are reproducible. */
function seeded(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('sample', () => {
  it('keeps all at rate 1 and none at rate 0', () => {
    const all = compileTransforms([{ type: 'sample', rate: 1 }], { random: () => 0.999 });
    const none = compileTransforms([{ type: 'sample', rate: 0 }], { random: () => 0 });
    expect(all(event({})).length).toBe(1);
    expect(none(event({})).length).toBe(0);
  });

  it('keeps about rate of the events at random', () => {
    const fn = compileTransforms([{ type: 'sample', rate: 0.25 }], { random: seeded(1) });
    let kept = 0;
    for (let i = 0; i < 20_000; i++) kept += fn(event({ i })).length;
    expect(kept / 20_000).toBeGreaterThan(0.23);
    expect(kept / 20_000).toBeLessThan(0.27);
  });

  it('decides by the key field: the same value always gets the same answer', () => {
    const fn = compileTransforms([{ type: 'sample', rate: 0.3, key_field: 'trace' }], {
      random: () => {
        throw new Error('must not be used when the field is there');
      },
    });
    let kept = 0;
    for (let i = 0; i < 10_000; i++) {
      const first = fn(event({ trace: `t-${i}` })).length;
      const again = fn(event({ trace: `t-${i}`, other: 1 })).length;
      expect(again).toBe(first);
      kept += first;
    }
    expect(kept / 10_000).toBeGreaterThan(0.28);
    expect(kept / 10_000).toBeLessThan(0.32);
    // Numbers hash as their JSON text.
    expect(fn(event({ trace: 12 })).length).toBe(fn(event({ trace: 12 })).length);
  });

  it('falls back to random sampling when the key field is missing', () => {
    const keep = compileTransforms([{ type: 'sample', rate: 0.5, key_field: 'trace' }], { random: () => 0.1 });
    const drop = compileTransforms([{ type: 'sample', rate: 0.5, key_field: 'trace' }], { random: () => 0.9 });
    expect(keep(event({})).length).toBe(1);
    expect(drop(event({})).length).toBe(0);
  });

  it('has a stable hash (changing it would change which keys are kept)', () => {
    expect([sampleHash(''), sampleHash('a'), sampleHash('trace-1')]).toEqual([2872998923, 444641715, 597944320]);
  });
});
