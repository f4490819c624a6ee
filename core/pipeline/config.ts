/**
 * Loading pipelines.yaml: parse with positions, substitute `${VAR}` / `${VAR:-default}` in
 * scalar values, validate against the composed JSON Schema (every error at once, each with
 * file:line:column, the key path and a hint), then normalise into a typed PipelinesConfig.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, visit, type Document, type Node } from 'yaml';
import { parseBytes, parseDuration } from '../util/units.js';
import type { Acks, RetentionConfig } from '../log/types.js';
import { JETSTREAM_CONFIG_DEFAULTS, type LogBackendConfig } from '../log/open.js';

export interface ConfigIssue {
  file: string;
  line: number;
  column: number;
  /** Key path, e.g. pipelines.app.source.include */
  path: string;
  message: string;
  hint?: string;
}

export class PipelineConfigError extends Error {
  readonly code = 'SLUICE_CONFIG_INVALID';
  readonly retriable = false;
  constructor(readonly issues: ConfigIssue[]) {
    super(issues.map(formatIssue).join('\n'));
    this.name = 'PipelineConfigError';
  }
}

export function formatIssue(i: ConfigIssue): string {
  return `${i.file}:${i.line}:${i.column}: ${i.path === '' ? '' : `${i.path}: `}${i.message}${i.hint ? ` (${i.hint})` : ''}`;
}

export interface ConnectorSpec {
  type: string;
  config: Record<string, unknown>;
}

export interface TopicSpec {
  partitions: number;
  retention: RetentionConfig;
  /** Absolute path of the record schema, if any. */
  schema?: string;
  onInvalid: 'dlq' | 'reject' | 'drop';
}

export interface PipelineSpec {
  name: string;
  source?: ConnectorSpec;
  transforms: Record<string, unknown>[];
  topic: string;
  key?: string;
  delivery?: 'exactly_once' | 'at_least_once';
  sinks: (ConnectorSpec & { name: string })[];
}

export interface PipelinesConfig {
  file: string;
  baseDir: string;
  log: LogBackendConfig & { retentionCheck: string };
  admin: { listen: string } | null;
  topics: Map<string, TopicSpec>;
  pipelines: PipelineSpec[];
}

const ENV_RE = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

function position(lc: LineCounter, offset: number): { line: number; column: number } {
  const { line, col } = lc.linePos(offset);
  return { line, column: col };
}

/** Levenshtein distance, for "did you mean" hints. */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
  }
  return d[a.length]![b.length]!;
}

export function nearest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const dd = distance(word, c);
    if (dd < bestD) {
      bestD = dd;
      best = c;
    }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

/** Parses and validates a pipelines file; throws PipelineConfigError listing every problem. */
export async function loadPipelinesFile(
  file: string,
  schema: Record<string, unknown>,
  env: NodeJS.ProcessEnv = process.env,
): Promise<PipelinesConfig> {
  const { config, issues } = await readPipelinesFile(file, schema, env);
  if (issues.length > 0 || config === null) throw new PipelineConfigError(issues);
  return config;
}

/**
 * Like loadPipelinesFile, but returns the problems instead of throwing, with the config as far
 * as it could be made (null when the file is not even YAML), so later checks can add theirs.
 */
export async function readPipelinesFile(
  file: string,
  schema: Record<string, unknown>,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ config: PipelinesConfig | null; issues: ConfigIssue[] }> {
  const abs = resolve(file);
  let text: string;
  try {
    text = await readFile(abs, 'utf8');
  } catch (err) {
    return { config: null, issues: [{ file, line: 1, column: 1, path: '', message: `cannot read the file: ${(err as Error).message}` }] };
  }
  return checkPipelines(text, file, dirname(abs), schema, env);
}

export function parsePipelines(
  text: string,
  file: string,
  baseDir: string,
  schema: Record<string, unknown>,
  env: NodeJS.ProcessEnv = process.env,
): PipelinesConfig {
  const { config, issues } = checkPipelines(text, file, baseDir, schema, env);
  if (issues.length > 0 || config === null) throw new PipelineConfigError(issues);
  return config;
}

function checkPipelines(
  text: string,
  file: string,
  baseDir: string,
  schema: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
): { config: PipelinesConfig | null; issues: ConfigIssue[] } {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  const issues: ConfigIssue[] = [];
  for (const e of doc.errors) {
    const { line, column } = position(lc, e.pos[0]);
    issues.push({ file, line, column, path: '', message: `YAML: ${e.message.split('\n')[0]}` });
  }
  if (issues.length > 0) return { config: null, issues };

  // ${VAR} substitution in scalar strings, keeping each scalar's position for errors.
  visit(doc, {
    Scalar(_key, node, ancestors) {
      if (typeof node.value !== 'string' || !node.value.includes('${')) return;
      node.value = node.value.replace(ENV_RE, (_m, name: string, fallback: string | undefined) => {
        const v = env[name];
        if (v !== undefined && v !== '') return v;
        if (fallback !== undefined) return fallback;
        const { line, column } = position(lc, node.range?.[0] ?? 0);
        issues.push({
          file,
          line,
          column,
          path: keyPath(ancestors, node),
          message: `environment variable ${name} is not set`,
          hint: `set it, or give a default: \${${name}:-value}`,
        });
        return '';
      });
    },
  });
  const data = doc.toJS() as unknown;
  const ajv = new Ajv({ allErrors: true, verbose: true, strict: false, useDefaults: false });
  const validate = ajv.compile(schema);
  if (!validate(data)) {
    for (const e of relevantErrors(validate.errors ?? [])) issues.push(toIssue(e, doc, lc, file));
  }
  // Even with schema errors, make what can be made, so sizes, record schemas and transforms
  // are checked in the same run and every problem is reported at once.
  let config: PipelinesConfig | null = null;
  try {
    config = normalise(data as RawFile, file, baseDir, doc, lc, issues);
  } catch {
    config = null; // too malformed to go on; the schema errors say why
  }
  return { config, issues: dedupe(issues) };
}

/** The dotted key path of a node from its ancestors (pairs give keys, sequences indexes). */
function keyPath(ancestors: readonly unknown[], node: unknown): string {
  const segs: string[] = [];
  for (let i = 0; i < ancestors.length; i++) {
    const a = ancestors[i];
    const child = i + 1 < ancestors.length ? ancestors[i + 1] : node;
    if (isPair(a) && isScalar(a.key) && a.key !== child) segs.push(String(a.key.value));
    else if (isSeq(a)) segs.push(String(a.items.indexOf(child as never)));
  }
  return segs.join('.');
}

/** Drops the "must match then schema" wrappers ajv adds around the real errors. */
function relevantErrors(errors: ErrorObject[]): ErrorObject[] {
  // A failed oneOf over plain alternatives (a number or a text like 7d) says it best in one line,
  // with its description as the hint; its branches' errors at the same place are noise.
  const oneOfAt = new Set(errors.filter((e) => e.keyword === 'oneOf').map((e) => e.instancePath));
  return errors.filter((e) => e.keyword !== 'if' && (e.keyword === 'oneOf' || !oneOfAt.has(e.instancePath)));
}

function dedupe(issues: ConfigIssue[]): ConfigIssue[] {
  const seen = new Set<string>();
  return issues.filter((i) => {
    const k = formatIssue(i);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

function pathSegments(instancePath: string): string[] {
  return instancePath === '' ? [] : instancePath.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function nodeAt(doc: Document, segs: string[]): Node | null {
  let node: unknown = doc.contents;
  for (const s of segs) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === s);
      node = pair?.value;
    } else if (isSeq(node)) {
      node = node.items[Number(s)];
    } else return null;
  }
  return (node as Node) ?? null;
}

function keyNode(doc: Document, segs: string[], key: string): Node | null {
  const parent = nodeAt(doc, segs);
  if (!isMap(parent)) return null;
  const pair = parent.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === key);
  return (pair?.key as Node) ?? null;
}

function toIssue(e: ErrorObject, doc: Document, lc: LineCounter, file: string): ConfigIssue {
  const segs = pathSegments(e.instancePath);
  let node = nodeAt(doc, segs);
  let path = segs.join('.');
  let message = e.message ?? 'is invalid';
  let hint: string | undefined;
  const parentSchema = e.parentSchema as { properties?: Record<string, unknown> } | undefined;
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = (e.params as { additionalProperty: string }).additionalProperty;
      node = keyNode(doc, segs, key) ?? node;
      path = [...segs, key].join('.');
      message = `unknown key "${key}"`;
      const known = Object.keys(parentSchema?.properties ?? {});
      const near = nearest(key, known);
      hint = near !== undefined ? `did you mean "${near}"?` : known.length > 0 ? `known keys: ${known.join(', ')}` : undefined;
      break;
    }
    case 'required': {
      const missing = (e.params as { missingProperty: string }).missingProperty;
      message = `missing required key "${missing}"`;
      break;
    }
    case 'enum': {
      const allowed = (e.params as { allowedValues: unknown[] }).allowedValues;
      const got = e.data;
      const near = typeof got === 'string' ? nearest(got, allowed.map(String)) : undefined;
      message = `${JSON.stringify(got)} is not one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}`;
      if (segs.at(-1) === 'type') message = `unknown connector type ${JSON.stringify(got)}`;
      hint = near !== undefined ? `did you mean "${near}"?` : segs.at(-1) === 'type' ? `known: ${allowed.join(', ')}` : undefined;
      break;
    }
    case 'type':
      message = `must be ${(e.params as { type: string }).type}, not ${Array.isArray(e.data) ? 'array' : e.data === null ? 'null' : typeof e.data}`;
      break;
    case 'const':
      message = `must be ${JSON.stringify((e.params as { allowedValue: unknown }).allowedValue)}`;
      break;
    case 'oneOf':
      message = 'is not a valid value here';
      hint = (e.parentSchema as { description?: string } | undefined)?.description;
      break;
    default:
      break;
  }
  const offset = node?.range?.[0] ?? 0;
  const { line, column } = position(lc, offset);
  return hint === undefined ? { file, line, column, path, message } : { file, line, column, path, message, hint };
}

interface RawJetStream {
  servers?: string | string[];
  credentials?: string;
  tls?: { ca_file?: string; cert_file?: string; key_file?: string };
  replicas?: number;
  duplicate_window_ms?: number;
  prefix?: string;
  lease_ttl_ms?: number;
}

/** `log.jetstream` with defaults, paths resolved against the file's directory. */
export function jetStreamConfig(raw: RawJetStream, baseDir: string): NonNullable<LogBackendConfig['jetstream']> {
  const d = JETSTREAM_CONFIG_DEFAULTS;
  const servers = raw.servers === undefined ? d.servers : Array.isArray(raw.servers) ? raw.servers : [raw.servers];
  const out: NonNullable<LogBackendConfig['jetstream']> = {
    servers,
    replicas: raw.replicas ?? d.replicas,
    duplicateWindowMs: raw.duplicate_window_ms ?? d.duplicateWindowMs,
    prefix: raw.prefix ?? d.prefix,
    leaseTtlMs: raw.lease_ttl_ms ?? d.leaseTtlMs,
  };
  if (raw.credentials !== undefined) out.credentials = resolve(baseDir, raw.credentials);
  if (raw.tls !== undefined) {
    const tls: NonNullable<typeof out.tls> = {};
    if (raw.tls.ca_file !== undefined) tls.caFile = resolve(baseDir, raw.tls.ca_file);
    if (raw.tls.cert_file !== undefined) tls.certFile = resolve(baseDir, raw.tls.cert_file);
    if (raw.tls.key_file !== undefined) tls.keyFile = resolve(baseDir, raw.tls.key_file);
    out.tls = tls;
  }
  return out;
}

interface RawFile {
  version: 1;
  log?: {
    backend?: 'local' | 'jetstream';
    data_dir?: string;
    acks?: Acks;
    segment_bytes?: number | string;
    retention_check?: string;
    jetstream?: RawJetStream;
  };
  admin?: { listen?: string };
  topics?: Record<string, { partitions?: number; retention?: { max_age?: number | string; max_bytes?: number | string }; schema?: string; on_invalid?: TopicSpec['onInvalid'] }>;
  pipelines: Record<
    string,
    {
      source?: { type: string } & Record<string, unknown>;
      transforms?: Record<string, unknown>[];
      topic: string;
      key?: string;
      delivery?: PipelineSpec['delivery'];
      sinks?: Record<string, { type: string } & Record<string, unknown>>;
    }
  >;
}

function normalise(raw: RawFile, file: string, baseDir: string, doc: Document, lc: LineCounter, issues: ConfigIssue[]): PipelinesConfig {
  const at = (segs: string[], message: string, hint?: string): void => {
    const { line, column } = position(lc, nodeAt(doc, segs)?.range?.[0] ?? 0);
    issues.push(hint === undefined ? { file, line, column, path: segs.join('.'), message } : { file, line, column, path: segs.join('.'), message, hint });
  };
  /** A number as it is, or text through `parse`; a parse error is reported at the key. */
  const quantity =
    (parse: (text: string) => number) =>
    (v: number | string | undefined, segs: string[]): number | undefined => {
      if (v === undefined) return undefined;
      if (issues.some((i) => i.path === segs.join('.'))) return undefined; // the schema said it already
      try {
        return typeof v === 'number' ? v : parse(v);
      } catch (err) {
        at(segs, (err as Error).message);
        return undefined;
      }
    };
  const size = quantity(parseBytes);
  const duration = quantity(parseDuration);
  const topics = new Map<string, TopicSpec>();
  for (const [name, t] of Object.entries(raw.topics ?? {})) {
    const retention: RetentionConfig = {};
    const maxAge = duration(t.retention?.max_age, ['topics', name, 'retention', 'max_age']);
    const maxBytes = size(t.retention?.max_bytes, ['topics', name, 'retention', 'max_bytes']);
    if (maxAge !== undefined) retention.maxAgeMs = maxAge;
    if (maxBytes !== undefined) retention.maxBytes = maxBytes;
    const spec: TopicSpec = { partitions: t.partitions ?? 1, retention, onInvalid: t.on_invalid ?? 'dlq' };
    if (t.schema !== undefined) spec.schema = resolve(baseDir, t.schema);
    topics.set(name, spec);
  }
  const pipelines: PipelineSpec[] = [];
  for (const [name, p] of Object.entries(raw.pipelines)) {
    const spec: PipelineSpec = {
      name,
      transforms: p.transforms ?? [],
      topic: p.topic,
      sinks: Object.entries(p.sinks ?? {}).map(([sinkName, s]) => {
        const { type, ...config } = s;
        return { name: sinkName, type, config };
      }),
    };
    if (p.source !== undefined) {
      const { type, ...config } = p.source;
      spec.source = { type, config };
    }
    if (p.key !== undefined) spec.key = p.key;
    if (p.delivery !== undefined) spec.delivery = p.delivery;
    if (spec.source === undefined && spec.sinks.length === 0) {
      at(['pipelines', name], 'a pipeline needs a source, sinks, or both');
    }
    pipelines.push(spec);
  }
  const log = raw.log ?? {};
  const segmentBytes = size(log.segment_bytes, ['log', 'segment_bytes']);
  return {
    file,
    baseDir,
    log: {
      backend: log.backend ?? 'local',
      dataDir: resolve(baseDir, log.data_dir ?? './data'),
      acks: log.acks ?? 'durable',
      ...(segmentBytes === undefined ? {} : { segmentBytes }),
      retentionCheck: log.retention_check ?? '* * * * *',
      ...(log.backend === 'jetstream' ? { jetstream: jetStreamConfig(log.jetstream ?? {}, baseDir) } : {}),
    },
    admin: raw.admin?.listen !== undefined ? { listen: raw.admin.listen } : null,
    topics,
    pipelines,
  };
}
