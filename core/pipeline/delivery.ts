/**
 * A pipeline's end-to-end delivery guarantee, computed from what its hops declare: the source
 * (is a committed position enough to resume without loss or repeat?) and each sink's commit mode.
 */
import type { SinkDeclaration, SourceDeclaration } from '../../connectors/sdk.js';
import type { PipelineSpec } from './config.js';

export interface Guarantee {
  pipeline: string;
  exactlyOnce: boolean;
  /** e.g. `exactly-once` or `at-least-once (sink "hook": webhook, receivers dedupe by Idempotency-Key)` */
  text: string;
  /** The hops that weaken it, each named. */
  weakHops: string[];
}

export function deliveryGuarantee(
  spec: PipelineSpec,
  sources: readonly SourceDeclaration<never>[],
  sinks: readonly SinkDeclaration<never>[],
): Guarantee {
  const weak: string[] = [];
  if (spec.source !== undefined) {
    const d = sources.find((s) => s.type === spec.source!.type);
    if (d !== undefined && !d.replayable) weak.push(`source: ${d.type} cannot replay from a committed position`);
  }
  for (const s of spec.sinks) {
    const d = sinks.find((x) => x.type === s.type);
    if (d === undefined || d.delivery !== 'at-least-once') continue;
    weak.push(`sink "${s.name}": ${d.type}${d.deliveryNote ? `, ${d.deliveryNote}` : ''}`);
  }
  const exactlyOnce = weak.length === 0;
  return { pipeline: spec.name, exactlyOnce, text: exactlyOnce ? 'exactly-once' : `at-least-once (${weak.join('; ')})`, weakHops: weak };
}
