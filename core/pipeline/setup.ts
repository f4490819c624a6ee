/**
 * What `sluice run` and `sluice validate` share: the connector registry handed in by the caller
 * (core never imports connectors itself), the composed schema, and the checks beyond the schema.
 */
import { readFile } from 'node:fs/promises';
import { RecordSchemas } from '../schema/record-ajv.js';
import { dirname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseDocument } from 'yaml';
import type { PluginModule, SinkDeclaration, SourceDeclaration, TransformDeclaration } from '../../connectors/sdk.js';
import { composePipelinesSchema } from '../schema/compose.js';
import { transformSchema } from './transforms/index.js';
import { compileChain } from './chain.js';
import { readPipelinesFile, PipelineConfigError, type ConfigIssue, type PipelinesConfig } from './config.js';
import { deliveryGuarantee, type Guarantee } from './delivery.js';

export interface Registry {
  sources: readonly SourceDeclaration<never>[];
  sinks: readonly SinkDeclaration<never>[];
  transforms?: readonly TransformDeclaration<never>[];
}

export function pipelinesSchema(registry: Registry): Record<string, unknown> {
  return composePipelinesSchema(registry.sources, registry.sinks, transformSchema, registry.transforms ?? []);
}

export interface CheckedConfig {
  config: PipelinesConfig;
  guarantees: Guarantee[];
  /** The built-ins plus what the file's `plugins:` modules declare. */
  registry: Registry;
}

/**
 * Imports the modules a pipelines file names under `plugins:` and adds their declarations to the
 * registry. A type that is already taken, or a module that cannot be loaded, is a config error.
 */
export async function withPlugins(file: string, base: Registry): Promise<Registry> {
  let paths: unknown;
  try {
    paths = parseDocument(await readFile(file, 'utf8')).toJS()?.plugins;
  } catch {
    return base; // unreadable or malformed: the full load reports it with positions
  }
  if (!Array.isArray(paths) || paths.length === 0) return base;
  const sources = [...base.sources];
  const sinks = [...base.sinks];
  const transforms = [...(base.transforms ?? [])];
  const issues: ConfigIssue[] = [];
  for (const [i, p] of paths.entries()) {
    if (typeof p !== 'string') continue;
    const where = `plugins.${i}`;
    let mod: PluginModule;
    try {
      mod = (await import(pathToFileURL(resolve(dirname(resolve(file)), p)).href)) as PluginModule;
    } catch (err) {
      issues.push({ file, line: 1, column: 1, path: where, message: `cannot load plugin ${p}: ${(err as Error).message}` });
      continue;
    }
    const add = <T extends { type: string; kind: string }>(list: T[], decls: readonly T[] | undefined, kind: string): void => {
      for (const d of decls ?? []) {
        if (d?.kind !== kind || typeof d.type !== 'string') {
          issues.push({ file, line: 1, column: 1, path: where, message: `plugin ${p}: an entry of its ${kind}s is not a ${kind} declaration` });
        } else if (list.some((x) => x.type === d.type)) {
          issues.push({ file, line: 1, column: 1, path: where, message: `plugin ${p}: ${kind} type "${d.type}" is already taken` });
        } else list.push(d);
      }
    };
    add(sources, mod.sources, 'source');
    add(sinks, mod.sinks, 'sink');
    add(transforms, mod.transforms, 'transform');
  }
  if (issues.length > 0) throw new PipelineConfigError(await locate(file, issues));
  return { sources, sinks, transforms };
}

/**
 * Loads and checks a pipelines file: schema, record schemas that must compile, transforms that
 * must compile, and pipelines that demand exactly-once from a hop that cannot give it.
 */
export async function loadAndCheck(file: string, builtins: Registry): Promise<CheckedConfig> {
  const registry = await withPlugins(file, builtins);
  const read = await readPipelinesFile(file, pipelinesSchema(registry));
  const earlier = read.issues;
  if (read.config === null) throw new PipelineConfigError(earlier);
  const config = read.config;
  const issues: ConfigIssue[] = [];
  const issue = (path: string, message: string, hint?: string): void => {
    issues.push(hint === undefined ? { file, line: 1, column: 1, path, message } : { file, line: 1, column: 1, path, message, hint });
  };
  const schemas = new RecordSchemas();
  for (const [name, t] of config.topics) {
    if (t.schema === undefined) continue;
    try {
      await schemas.load(t.schema);
    } catch (err) {
      issue(`topics.${name}.schema`, `record schema ${t.schema} cannot be used: ${(err as Error).message}`);
    }
  }
  const guarantees: Guarantee[] = [];
  for (const p of config.pipelines) {
    // Transforms the schema already faulted would only be reported twice.
    const faulted = earlier.some((i) => i.path.startsWith(`pipelines.${p.name}.transforms`));
    try {
      if (!faulted) compileChain(p.transforms, registry.transforms ?? []);
    } catch (err) {
      // A TransformConfigError carries a JSON pointer into the list, e.g. /1/pattern.
      const pointer = (err as { path?: unknown }).path;
      const at = typeof pointer === 'string' && pointer.startsWith('/') ? `.${pointer.slice(1).split('/').join('.')}` : '';
      issue(`pipelines.${p.name}.transforms${at}`, (err as Error).message.replace(/^transforms\/[^:]*: /, ''));
    }
    // The source's own checks beyond its schema (bad regexes, globs), at their keys.
    const sourceDecl = p.source === undefined ? undefined : registry.sources.find((d) => d.type === p.source!.type);
    if (sourceDecl?.validate !== undefined && !earlier.some((i) => i.path.startsWith(`pipelines.${p.name}.source`))) {
      for (const pr of sourceDecl.validate(p.source!.config as never, { baseDir: config.baseDir })) {
        issue(`pipelines.${p.name}.source.${pr.path}`, pr.message, pr.hint);
      }
    }
    const g = deliveryGuarantee(p, registry.sources, registry.sinks);
    guarantees.push(g);
    if (p.delivery === 'exactly_once' && !g.exactlyOnce) {
      issue(`pipelines.${p.name}.delivery`, `exactly_once is asked for, but ${g.weakHops.join('; ')}`, 'use a sink that commits transactionally or idempotently, or say delivery: at_least_once');
    }
  }
  if (earlier.length + issues.length > 0) throw new PipelineConfigError([...earlier, ...(await locate(file, issues))]);
  return { config, guarantees, registry };
}

/** Points issues found after parsing at the line of their key path. */
async function locate(file: string, issues: ConfigIssue[]): Promise<ConfigIssue[]> {
  const { LineCounter, isMap, isPair, isScalar, isSeq } = await import('yaml');
  const lc = new LineCounter();
  const doc = parseDocument(await readFile(file, 'utf8'), { lineCounter: lc });
  return issues.map((i) => {
    let node: unknown = doc.contents;
    let offset = 0;
    for (const seg of i.path.split('.')) {
      if (isSeq(node)) {
        const item = node.items[Number(seg)] as { range?: [number] } | undefined;
        offset = item?.range?.[0] ?? offset;
        node = item;
        continue;
      }
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
