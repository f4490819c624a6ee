/**
 * `sample`: keep a fraction `rate` of the events.
 *
 * Without `key_field` each event is kept with probability `rate` (from `options.random`).
 * With it, the field's value is hashed and the event kept when hash / 2^32 < rate, so every
 * event with the same value (a trace id, a user id) is kept or dropped together, on every run
 * and every worker. Events without the field fall back to random sampling.
 * The hash is FNV-1a (32-bit) over the UTF-16 code units of the value's text (a string as it is,
 * anything else as JSON), finished with murmur3's fmix32 so the high bits are well mixed. It is
 * deliberately not the partitioner's murmur2: sampling by key must not select partitions.
 */
import { SpecError } from './errors.js';
import { getPath } from './field-path.js';
import { fieldPathAt, type Step } from './step.js';
import type { SampleTransform } from './spec.js';

export function sampleHash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export function compileSample(spec: SampleTransform, random: () => number): Step {
  const rate = spec.rate;
  if (typeof rate !== 'number' || !(rate >= 0 && rate <= 1)) throw new SpecError('/rate', 'rate must be a number from 0 to 1');
  if (rate === 1) return () => true;
  if (rate === 0) return () => false;
  if (spec.key_field === undefined) return () => random() < rate;
  const field = fieldPathAt(spec.key_field, '/key_field');
  const threshold = rate * 2 ** 32;
  return (draft) => {
    const v = getPath(draft.event.value, field);
    if (v === undefined) return random() < rate;
    return sampleHash(typeof v === 'string' ? v : JSON.stringify(v)) < threshold;
  };
}
