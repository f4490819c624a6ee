/**
 * A pipeline's transform chain: runs of built-in transforms compiled together by
 * compileTransforms, with custom (plugin) transforms in between, in the order the file gives.
 */
import type { TransformDeclaration } from '../../connectors/sdk.js';
import { compileTransforms } from './transforms/index.js';
import type { PipelineEvent, TransformFn, TransformSpec } from './transforms/index.js';

export function compileChain(specs: readonly Record<string, unknown>[], custom: readonly TransformDeclaration<never>[]): TransformFn {
  const steps: TransformFn[] = [];
  let run: TransformSpec[] = [];
  const flush = (): void => {
    if (run.length > 0) steps.push(compileTransforms(run));
    run = [];
  };
  for (const spec of specs) {
    const decl = custom.find((d) => d.type === spec.type);
    if (decl === undefined) {
      run.push(spec as unknown as TransformSpec);
      continue;
    }
    flush();
    const { type: _type, ...config } = spec;
    steps.push(decl.create(config as never));
  }
  flush();
  if (steps.length === 0) return (e) => [e];
  if (steps.length === 1) return steps[0]!;
  return (event) => {
    let events: PipelineEvent[] = [event];
    for (const step of steps) {
      const next: PipelineEvent[] = [];
      for (const e of events) for (const out of step(e)) next.push(out);
      events = next;
      if (events.length === 0) break;
    }
    return events;
  };
}
