/**
 * Loading pipelines files: a table of broken files and the exact problems they give (line, column,
 * key path, message, hint), what valid files normalise to, and the committed editor schema.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterEach, describe, expect, it, vi } from 'vitest';

import { builtinSinks, builtinSources } from '../../connectors/registry.js';
import { REGISTRY } from '../../core/cli/run.js';
import { parsePipelines, PipelineConfigError, type ConfigIssue } from '../../core/pipeline/config.js';
import { loadAndCheck, pipelinesSchema } from '../../core/pipeline/setup.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SCHEMA = pipelinesSchema(REGISTRY);

const dirs: string[] = [];
afterEach(async () => {
  vi.unstubAllEnvs();
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

/** Writes `yaml` (and `files` beside it) to a fresh directory; returns the pipelines file's path. */
async function write(yaml: string, files: Record<string, string> = {}): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-config-'));
  dirs.push(dir);
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  const file = join(dir, 'pipelines.yaml');
  await writeFile(file, yaml);
  return file;
}

/** The problems loadAndCheck reports for a file, each as `LINE:COL: path: message (hint)`. */
async function problems(yaml: string, files: Record<string, string> = {}): Promise<string[]> {
  const file = await write(yaml, files);
  const err = await loadAndCheck(file, REGISTRY).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err, 'the file should be refused').toBeInstanceOf(PipelineConfigError);
  const issues = (err as PipelineConfigError).issues;
  for (const i of issues) expect(i.file).toBe(file);
  return issues.map(show);
}

function show(i: ConfigIssue): string {
  return `${i.line}:${i.column}: ${i.path === '' ? '' : `${i.path}: `}${i.message}${i.hint === undefined ? '' : ` (${i.hint})`}`;
}

const BAD_SCHEMA = JSON.stringify({ type: 'object', properties: { level: { type: 'nonsense' } } });
const GOOD_SCHEMA = JSON.stringify({ type: 'object', required: ['message'] });

interface Case {
  name: string;
  yaml: string;
  files?: Record<string, string>;
  env?: Record<string, string | undefined>;
  /** Every problem, in the order they are reported. */
  expected: string[];
}

const GENERATE_KEYS = 'known keys: type, count, seed, rate_per_sec, batch_size, services';

const CASES: Case[] = [
  {
    name: 'malformed YAML (unclosed flow sequence)',
    yaml: 'version: 1\npipelines:\n  p: { topic: [t\n  q: 1\n',
    expected: [
      '4:3: YAML: Flow sequence in block collection must be sufficiently indented and end with a ]',
      '4:3: YAML: Flow map in block collection must be sufficiently indented and end with a }',
    ],
  },
  {
    name: 'tabs as indentation',
    yaml: 'version: 1\npipelines:\n  p:\n\ttopic: t\n',
    expected: ['4:1: YAML: Tabs are not allowed as indentation'],
  },
  {
    name: 'duplicate key',
    yaml: 'version: 1\ntopics:\n  t: { partitions: 2, partitions: 3 }\npipelines:\n  p: { topic: t, source: { type: generate } }\n',
    expected: ['3:23: YAML: Map keys must be unique'],
  },
  {
    name: 'unknown top-level key "pipeline" (and so no "pipelines")',
    yaml: 'version: 1\npipeline:\n  p: { topic: t, source: { type: generate } }\n',
    expected: ['1:1: missing required key "pipelines"', '2:1: pipeline: unknown key "pipeline" (did you mean "pipelines"?)'],
  },
  {
    name: 'unknown top-level key "topcs"',
    yaml: 'version: 1\ntopcs:\n  t: {}\npipelines:\n  p: { topic: t, source: { type: generate } }\n',
    expected: ['2:1: topcs: unknown key "topcs" (did you mean "topics"?)'],
  },
  {
    name: 'wrong version',
    yaml: 'version: 2\npipelines:\n  p: { topic: t, source: { type: generate } }\n',
    expected: ['1:10: version: must be 1'],
  },
  {
    name: 'unknown keys inside a source: near one and far one',
    yaml: [
      'version: 1',
      'pipelines:',
      '  p:',
      '    source:',
      '      type: generate',
      '      inclde: ["./logs/*.log"]',
      '      cont: 3',
      '    topic: t',
      '',
    ].join('\n'),
    expected: [
      `6:7: pipelines.p.source.inclde: unknown key "inclde" (${GENERATE_KEYS})`,
      '7:7: pipelines.p.source.cont: unknown key "cont" (did you mean "count"?)',
    ],
  },
  {
    name: 'unknown key inside a sink, and its missing required path',
    yaml: [
      'version: 1',
      'pipelines:',
      '  p:',
      '    source: { type: generate }',
      '    topic: t',
      '    sinks:',
      '      archive: { type: file, pth: ./out }',
      '      screen: { type: stdout, colour: true }',
      '',
    ].join('\n'),
    expected: [
      '7:16: pipelines.p.sinks.archive: missing required key "path"',
      '7:30: pipelines.p.sinks.archive.pth: unknown key "pth" (did you mean "path"?)',
      '8:31: pipelines.p.sinks.screen.colour: unknown key "colour" (known keys: type)',
    ],
  },
  {
    name: 'unknown key inside a topic',
    yaml: 'version: 1\ntopics:\n  t:\n    partitons: 4\npipelines:\n  p: { topic: t, source: { type: generate } }\n',
    expected: ['4:5: topics.t.partitons: unknown key "partitons" (did you mean "partitions"?)'],
  },
  {
    name: 'wrong types',
    yaml: [
      'version: 1',
      'topics:',
      '  t:',
      '    partitions: "four"',
      'pipelines:',
      '  p:',
      '    source: { type: generate, count: many }',
      '    topic: t',
      '    key: 3',
      '    sinks: [a, b]',
      '',
    ].join('\n'),
    expected: [
      '4:17: topics.t.partitions: must be integer, not string',
      '7:38: pipelines.p.source.count: must be integer, not string',
      '9:10: pipelines.p.key: must be string, not number',
      '10:12: pipelines.p.sinks: must be object, not array',
    ],
  },
  {
    name: 'partitions out of range',
    yaml: 'version: 1\ntopics:\n  t: { partitions: 0 }\npipelines:\n  p: { topic: t, source: { type: generate } }\n',
    expected: ['3:20: topics.t.partitions: must be >= 1'],
  },
  {
    name: 'missing required keys: a pipeline\'s topic, a file sink\'s path, a source\'s type',
    yaml: [
      'version: 1',
      'pipelines:',
      '  p:',
      '    source: { type: generate }',
      '    sinks:',
      '      out: { type: file }',
      '  q:',
      '    source: { count: 3 }',
      '    topic: t',
      '',
    ].join('\n'),
    expected: [
      '4:5: pipelines.p: missing required key "topic"',
      '6:12: pipelines.p.sinks.out: missing required key "path"',
      '8:13: pipelines.q.source: missing required key "type"',
    ],
  },
  {
    name: 'unknown connector types',
    yaml: [
      'version: 1',
      'pipelines:',
      '  p:',
      '    source: { type: generat }',
      '    topic: t',
      '    sinks:',
      '      a: { type: stdut }',
      '      b: { type: kafka }',
      '',
    ].join('\n'),
    expected: [
      '4:21: pipelines.p.source.type: unknown connector type "generat" (did you mean "generate"?)',
      '7:18: pipelines.p.sinks.a.type: unknown connector type "stdut" (did you mean "stdout"?)',
      '8:18: pipelines.p.sinks.b.type: unknown connector type "kafka" (known: file, stdout, postgres)',
    ],
  },
  {
    name: 'bad enums',
    yaml: [
      'version: 1',
      'log: { backend: jetstreem, acks: durabel }',
      'topics:',
      '  t: { on_invalid: dlx }',
      'pipelines:',
      '  p: { topic: t, source: { type: generate }, delivery: maybe }',
      '',
    ].join('\n'),
    expected: [
      '2:17: log.backend: "jetstreem" is not one of "local", "jetstream" (did you mean "jetstream"?)',
      '2:34: log.acks: "durabel" is not one of "durable", "written" (did you mean "durable"?)',
      '4:20: topics.t.on_invalid: "dlx" is not one of "dlq", "reject", "drop" (did you mean "dlq"?)',
      '6:56: pipelines.p.delivery: "maybe" is not one of "exactly_once", "at_least_once"',
    ],
  },
  {
    name: 'a duration with a space in it: one problem, which says what a duration looks like',
    yaml: 'version: 1\ntopics:\n  t:\n    retention: { max_age: 7 days }\npipelines:\n  p: { topic: t, source: { type: generate } }\n',
    expected: ['4:27: topics.t.retention.max_age: is not a valid value here (milliseconds, or a duration like 30s / 12h / 7d)'],
  },
  {
    name: 'a size with an unknown unit',
    yaml: 'version: 1\ntopics:\n  t:\n    retention: { max_bytes: 10XB }\npipelines:\n  p: { topic: t, source: { type: generate } }\n',
    expected: [
      '4:29: topics.t.retention.max_bytes: invalid size "10XB": expected bytes with an optional unit (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB), e.g. 512MiB',
    ],
  },
  {
    name: 'a pipeline with neither source nor sinks',
    yaml: 'version: 1\npipelines:\n  p: { topic: t }\n',
    expected: ['3:6: pipelines.p: a pipeline needs a source, sinks, or both'],
  },
  {
    name: 'an environment variable that is not set and has no default names the variable and the key',
    yaml: 'version: 1\npipelines:\n  p:\n    source: { type: generate }\n    topic: t\n    sinks:\n      out: { type: file, path: "${SLUICE_TEST_UNSET_OUT}" }\n',
    env: { SLUICE_TEST_UNSET_OUT: undefined },
    expected: [
      '7:32: pipelines.p.sinks.out.path: environment variable SLUICE_TEST_UNSET_OUT is not set (set it, or give a default: ${SLUICE_TEST_UNSET_OUT:-value})',
      '7:32: pipelines.p.sinks.out.path: must NOT have fewer than 1 characters',
    ],
  },
  {
    name: 'a record schema that does not exist, and one that does not compile',
    yaml: [
      'version: 1',
      'topics:',
      '  a: { schema: ./missing.schema.json }',
      '  b:',
      '    schema: ./bad.schema.json',
      'pipelines:',
      '  p: { topic: a, source: { type: generate } }',
      '',
    ].join('\n'),
    files: { 'bad.schema.json': BAD_SCHEMA },
    expected: [
      expect.stringMatching(/^3:8: topics\.a\.schema: record schema \/.*\/missing\.schema\.json cannot be used: ENOENT: no such file or directory/) as unknown as string,
      expect.stringMatching(/^5:5: topics\.b\.schema: record schema \/.*\/bad\.schema\.json cannot be used: schema is invalid: data\/properties\/level\/type /) as unknown as string,
    ],
  },
  {
    name: 'a record schema that is not JSON',
    yaml: 'version: 1\ntopics:\n  a: { schema: ./broken.json }\npipelines:\n  p: { topic: a, source: { type: generate } }\n',
    files: { 'broken.json': '{ "type": ' },
    expected: [expect.stringMatching(/^3:8: topics\.a\.schema: record schema \/.*\/broken\.json cannot be used: .*JSON/) as unknown as string],
  },
  {
    name: 'a transform that does not compile points at the transform and the key',
    yaml: [
      'version: 1',
      'pipelines:',
      '  p:',
      '    source: { type: generate }',
      '    transforms:',
      '      - { type: set, fields: { env: demo } }',
      '      - { type: parse, format: regex, pattern: "(?<x>[a-" }',
      '    topic: t',
      '',
    ].join('\n'),
    expected: [
      expect.stringMatching(
        /^7:\d+: pipelines\.p\.transforms\.1\.pattern: .*invalid regex: Invalid regular expression: \/\(\?<x>\[a-\/: Unterminated character class$/,
      ) as unknown as string,
    ],
  },
  {
    name: 'exactly_once with a stdout sink is refused, naming the hop',
    yaml: [
      'version: 1',
      'pipelines:',
      '  p:',
      '    source: { type: generate }',
      '    topic: t',
      '    delivery: exactly_once',
      '    sinks:',
      '      archive: { type: file, path: ./out }',
      '      screen: { type: stdout }',
      '',
    ].join('\n'),
    expected: [
      '6:5: pipelines.p.delivery: exactly_once is asked for, but sink "screen": stdout, lines after the last commit may print again after a restart (use a sink that commits transactionally or idempotently, or say delivery: at_least_once)',
    ],
  },
];

describe('broken pipelines files', () => {
  it.each(CASES)('$name', async (c) => {
    for (const [name, value] of Object.entries(c.env ?? {})) vi.stubEnv(name, value);
    expect(await problems(c.yaml, c.files)).toEqual(c.expected);
  });

  it('reports problems of every stage at once: schema, sizes, record schemas, transforms, delivery', async () => {
    // One problem of each kind; a user fixing them one run at a time would need five runs.
    const yaml = [
      'version: 1', // 1
      'topics:', // 2
      '  t:', // 3
      '    partitons: 4', // 4  schema: unknown key
      '    retention: { max_bytes: 10XB }', // 5  normalisation: bad size unit
      '    schema: ./missing.schema.json', // 6  record schema
      'pipelines:', // 7
      '  p:', // 8
      '    source: { type: generate }', // 9
      '    transforms:', // 10
      '      - { type: parse, format: regex, pattern: "(" }', // 11 transform
      '    topic: t', // 12
      '    delivery: exactly_once', // 13 delivery
      '    sinks:', // 14
      '      screen: { type: stdout }', // 15
      '',
    ].join('\n');
    const found = await problems(yaml);
    const paths = found.map((p) => p.split(': ')[1]);
    expect(paths).toEqual(
      expect.arrayContaining(['topics.t.partitons', 'topics.t.retention.max_bytes', 'topics.t.schema', 'pipelines.p.delivery']),
    );
    expect(found.some((p) => p.startsWith('11:'))).toBe(true);
    expect(found).toHaveLength(5);
  });

  it('reports every schema problem of a file at once, across topics, sources and sinks', async () => {
    const yaml = [
      'version: 1',
      'topcs: {}',
      'topics:',
      '  t: { partitons: 4, on_invalid: dlx }',
      'pipelines:',
      '  p:',
      '    source: { type: generat }',
      '    sinks: { out: { type: file } }',
      '',
    ].join('\n');
    expect(await problems(yaml)).toEqual([
      '2:1: topcs: unknown key "topcs" (did you mean "topics"?)',
      '4:8: topics.t.partitons: unknown key "partitons" (did you mean "partitions"?)',
      '4:34: topics.t.on_invalid: "dlx" is not one of "dlq", "reject", "drop" (did you mean "dlq"?)',
      '7:5: pipelines.p: missing required key "topic"',
      '7:21: pipelines.p.source.type: unknown connector type "generat" (did you mean "generate"?)',
      '8:19: pipelines.p.sinks.out: missing required key "path"',
    ]);
  });

  it('reports a file that cannot be read', async () => {
    const err = await loadAndCheck(join(tmpdir(), 'sluice-no-such-dir', 'pipelines.yaml'), REGISTRY).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PipelineConfigError);
    const [issue] = (err as PipelineConfigError).issues;
    expect(issue).toMatchObject({ line: 1, column: 1, path: '' });
    expect(issue!.message).toMatch(/^cannot read the file: ENOENT/);
  });

  it('is a coded, non-retriable error whose message is one formatted line per problem', async () => {
    const file = await write('version: 1\ntopcs: {}\npipelines:\n  p: { topic: t, sinks: { s: { type: stdut } } }\n');
    const err = (await loadAndCheck(file, REGISTRY).catch((e: unknown) => e)) as PipelineConfigError;
    expect(err.code).toBe('SLUICE_CONFIG_INVALID');
    expect(err.retriable).toBe(false);
    expect(err.name).toBe('PipelineConfigError');
    expect(err.message).toBe(
      [
        `${file}:2:1: topcs: unknown key "topcs" (did you mean "topics"?)`,
        `${file}:4:38: pipelines.p.sinks.s.type: unknown connector type "stdut" (did you mean "stdout"?)`,
      ].join('\n'),
    );
  });
});

describe('valid pipelines files', () => {
  const parse = (yaml: string, env: NodeJS.ProcessEnv = {}) => parsePipelines(yaml, 'p.yaml', '/base', SCHEMA, env);

  it('reads sizes and durations with units', () => {
    const config = parse(
      [
        'version: 1',
        'log: { segment_bytes: 64MiB }',
        'topics:',
        '  a: { retention: { max_age: 7d, max_bytes: 10GB } }',
        '  b: { retention: { max_age: 1h30m, max_bytes: 10GiB } }',
        '  c: { retention: { max_age: 250, max_bytes: 1024 } }',
        '  d: { retention: { max_age: 1.5s, max_bytes: 1.5 KiB } }',
        'pipelines:',
        '  p: { topic: a, source: { type: generate } }',
        '',
      ].join('\n'),
    );
    expect(config.topics.get('a')!.retention).toEqual({ maxAgeMs: 7 * 86_400_000, maxBytes: 10e9 });
    expect(config.topics.get('b')!.retention).toEqual({ maxAgeMs: 5_400_000, maxBytes: 10 * 2 ** 30 });
    expect(config.topics.get('c')!.retention).toEqual({ maxAgeMs: 250, maxBytes: 1024 });
    expect(config.topics.get('d')!.retention).toEqual({ maxAgeMs: 1500, maxBytes: 1536 });
    expect(config.log.segmentBytes).toBe(64 * 2 ** 20);
  });

  it('fills defaults and resolves paths against the file\'s directory', () => {
    const config = parse('version: 1\ntopics:\n  t: {}\npipelines:\n  p: { topic: t, source: { type: generate } }\n');
    expect(config.log).toEqual({ backend: 'local', dataDir: '/base/data', acks: 'durable', retentionCheck: '* * * * *' });
    expect(config.admin).toBeNull();
    expect(config.topics.get('t')).toEqual({ partitions: 1, retention: {}, onInvalid: 'dlq' });
    expect(config.pipelines).toEqual([{ name: 'p', topic: 't', transforms: [], sinks: [], source: { type: 'generate', config: {} } }]);
  });

  it('substitutes ${VAR} and uses ${VAR:-default} when the variable is unset or empty', () => {
    const yaml = [
      'version: 1',
      'log: { data_dir: "${SLUICE_T_DIR:-./store}" }',
      'pipelines:',
      '  p:',
      '    source: { type: generate }',
      '    topic: "logs-${SLUICE_T_ENV}"',
      '    transforms: [{ type: set, fields: { env: "${SLUICE_T_ENV}-${SLUICE_T_EMPTY:-x}" } }]',
      '    sinks: { out: { type: file, path: "${SLUICE_T_OUT:-./out}" } }',
      '',
    ].join('\n');
    const config = parse(yaml, { SLUICE_T_ENV: 'prod', SLUICE_T_EMPTY: '', SLUICE_T_OUT: '/abs/out' });
    expect(config.log.dataDir).toBe('/base/store');
    expect(config.pipelines[0]!.topic).toBe('logs-prod');
    expect(config.pipelines[0]!.transforms).toEqual([{ type: 'set', fields: { env: 'prod-x' } }]);
    expect(config.pipelines[0]!.sinks).toEqual([{ name: 'out', type: 'file', config: { path: '/abs/out' } }]);
  });

  it('does not substitute into a schema number: an env value for an integer key is still a string', () => {
    const err = (() => {
      try {
        parse('version: 1\ntopics:\n  t: { partitions: "${SLUICE_T_N}" }\npipelines:\n  p: { topic: t, source: { type: generate } }\n', { SLUICE_T_N: '4' });
        return null;
      } catch (e) {
        return e;
      }
    })();
    // No silent coercion (STYLE.md habit 4): "4" stays a string and the schema says so.
    expect(err).toBeInstanceOf(PipelineConfigError);
    expect((err as PipelineConfigError).issues.map(show)).toEqual(['3:20: topics.t.partitions: must be integer, not string']);
  });

  it('loads a file whose record schema compiles, and gives each pipeline its guarantee', async () => {
    const file = await write(
      [
        'version: 1',
        'topics:',
        '  t: { schema: ./ok.schema.json, on_invalid: drop }',
        'pipelines:',
        '  a: { topic: t, source: { type: generate }, delivery: exactly_once, sinks: { out: { type: file, path: ./out } } }',
        '  b: { topic: t, sinks: { screen: { type: stdout } }, delivery: at_least_once }',
        '',
      ].join('\n'),
      { 'ok.schema.json': GOOD_SCHEMA },
    );
    const { config, guarantees } = await loadAndCheck(file, REGISTRY);
    expect(config.topics.get('t')!.schema).toBe(join(config.baseDir, 'ok.schema.json'));
    expect(guarantees.map((g) => [g.pipeline, g.exactlyOnce, g.text])).toEqual([
      ['a', true, 'exactly-once'],
      ['b', false, 'at-least-once (sink "screen": stdout, lines after the last commit may print again after a restart)'],
    ]);
  });
});

describe('the repository', () => {
  it('commits schemas/pipelines.schema.json as the composed schema (one source of truth)', async () => {
    const committed = await readFile(join(ROOT, 'schemas', 'pipelines.schema.json'), 'utf8');
    expect(committed).toBe(`${JSON.stringify(pipelinesSchema(REGISTRY), null, 2)}\n`);
  });

  it('has the built-in registry in REGISTRY', () => {
    expect(REGISTRY.sources).toBe(builtinSources);
    expect(REGISTRY.sinks).toBe(builtinSinks);
  });

  it('has a pipelines.yaml that validates and promises exactly-once', async () => {
    const { config, guarantees } = await loadAndCheck(join(ROOT, 'pipelines.yaml'), REGISTRY);
    expect(config.pipelines.map((p) => p.name)).toEqual(['demo-logs', 'tail-logs']);
    expect(guarantees.every((g) => g.exactlyOnce)).toBe(true);
  });
});
