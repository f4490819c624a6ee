/**
 * What `sluice run` and `sluice validate` share: the connector registry handed in by the caller
 * (core never imports connectors itself), the composed schema, and the checks beyond the schema.
 */
import { readFile } from 'node:fs/promises';
import { recordAjv } from '../schema/record-ajv.js';
import type { SinkDeclaration, SourceDeclaration } from '../../connectors/sdk.js';
import { composePipelinesSchema } from '../schema/compose.js';
import { transformSchema } from './transforms/index.js';
import { compileTransforms } from './transforms/index.js';
import type { TransformSpec } from './transforms/index.js';
import { loadPipelinesFile, PipelineConfigError, type ConfigIssue, type PipelinesConfig } from './config.js';
import { deliveryGuarantee, type Guarantee } from './delivery.js';

export interface Registry {
  sources: readonly SourceDeclaration<never>[];
  sinks: readonly SinkDeclaration<never>[];
}

export function pipelinesSchema(registry: Registry): Record<string, unknown> {
  return composePipelinesSchema(registry.sources, registry.sinks, transformSchema);
}

export interface CheckedConfig {
  config: PipelinesConfig;
  guarantees: Guarantee[];
}

/**
 * Loads and checks a pipelines file: schema, record schemas that must compile, transforms that
 * must compile, and pipelines that demand exactly-once from a hop that cannot give it.
 */
export async function loadAndCheck(file: string, registry: Registry): Promise<CheckedConfig> {
  const config = await loadPipelinesFile(file, pipelinesSchema(registry));
  const issues: ConfigIssue[] = [];
  const issue = (path: string, message: string, hint?: string): void => {
    issues.push(hint === undefined ? { file, line: 1, column: 1, path, message } : { file, line: 1, column: 1, path, message, hint });
  };
  const ajv = recordAjv();
  for (const [name, t] of config.topics) {
    if (t.schema === undefined) continue;
    try {
      ajv.compile(JSON.parse(await readFile(t.schema, 'utf8')) as Record<string, unknown>);
    } catch (err) {
      issue(`topics.${name}.schema`, `record schema ${t.schema} cannot be used: ${(err as Error).message}`);
    }
  }
  const guarantees: Guarantee[] = [];
  for (const p of config.pipelines) {
    try {
      compileTransforms(p.transforms as unknown as TransformSpec[]);
    } catch (err) {
      issue(`pipelines.${p.name}.transforms`, (err as Error).message);
    }
    const g = deliveryGuarantee(p, registry.sources, registry.sinks);
    guarantees.push(g);
    if (p.delivery === 'exactly_once' && !g.exactlyOnce) {
      issue(`pipelines.${p.name}.delivery`, `exactly_once is asked for, but ${g.weakHops.join('; ')}`, 'use a sink that commits transactionally or idempotently, or say delivery: at_least_once');
    }
  }
  if (issues.length > 0) throw new PipelineConfigError(await locate(file, issues));
  return { config, guarantees };
}

/** Points issues found after parsing at the line of their key path. */
async function locate(file: string, issues: ConfigIssue[]): Promise<ConfigIssue[]> {
  const { LineCounter, parseDocument, isMap, isPair, isScalar } = await import('yaml');
  const lc = new LineCounter();
  const doc = parseDocument(await readFile(file, 'utf8'), { lineCounter: lc });
  return issues.map((i) => {
    let node: unknown = doc.contents;
    let offset = 0;
    for (const seg of i.path.split('.')) {
      if (!isMap(node)) break;
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === seg);
      if (pair === undefined) break;
      offset = (pair.key as { range?: [number] }).range?.[0] ?? offset;
      node = pair.value;
    }
    const { line, col } = lc.linePos(offset);
    return { ...i, line, column: col };
  });
}
