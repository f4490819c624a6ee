/**
 * Every example in docs/ is linted: a ```yaml block whose first line that is not blank or a
 * comment is `version: 1` is a complete pipelines file, and must pass what `sluice validate`
 * checks (the composed JSON Schema through parsePipelines, record schemas, transforms, the
 * exactly_once refusal) and also the topic and key templates, which `sluice run` compiles at
 * start. A ```yaml block that starts with `transforms:` is a fragment of a pipeline (as in
 * docs/transforms.md); it is checked inside a minimal pipeline.
 *
 * Paths in examples resolve against the repository root; only record schemas must exist.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REGISTRY } from '../../core/cli/run.js';
import { compileChain } from '../../core/pipeline/chain.js';
import { parsePipelines, PipelineConfigError } from '../../core/pipeline/config.js';
import { deliveryGuarantee } from '../../core/pipeline/delivery.js';
import { pipelinesSchema } from '../../core/pipeline/setup.js';
import { compileTemplate } from '../../core/pipeline/template.js';
import { recordAjv } from '../../core/schema/record-ajv.js';

const ROOT = join(import.meta.dirname, '..', '..');
const DOCS = join(ROOT, 'docs');
/** Examples must not depend on the environment of whoever runs the tests. */
const ENV: NodeJS.ProcessEnv = {};

interface Block {
  file: string;
  /** 1-based, counting every ```yaml block of the file. */
  number: number;
  line: number;
  text: string;
  kind: 'full' | 'transforms' | 'other';
}

function markdownFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...markdownFiles(path));
    else if (entry.name.endsWith('.md')) out.push(path);
  }
  return out.sort();
}

function yamlBlocks(path: string): Block[] {
  const file = relative(ROOT, path);
  const lines = readFileSync(path, 'utf8').split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)```ya?ml\s*$/.exec(lines[i]!);
    if (open === null) continue;
    const indent = open[1]!.length;
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length && !/^\s*```\s*$/.test(lines[j]!); j++) body.push(lines[j]!.slice(indent));
    const text = `${body.join('\n')}\n`;
    const first = body.find((l) => l.trim() !== '' && !l.trimStart().startsWith('#'))?.trim() ?? '';
    const kind = /^version:\s*1\s*(#.*)?$/.test(first) ? 'full' : /^transforms:/.test(first) ? 'transforms' : 'other';
    blocks.push({ file, number: blocks.length + 1, line: i + 1, text, kind });
    i = j;
  }
  return blocks;
}

/** A `transforms:` fragment inside the smallest pipeline that can hold it. */
function wrapTransforms(fragment: string): string {
  const indented = fragment
    .split('\n')
    .map((l) => (l === '' ? l : `    ${l}`))
    .join('\n');
  return `version: 1\npipelines:\n  example:\n    source: { type: generate, count: 1 }\n${indented}\n    topic: example\n`;
}

/** What `sluice validate` checks (core/pipeline/setup.ts loadAndCheck), plus the templates. */
function check(text: string, name: string): string[] {
  const problems: string[] = [];
  let config;
  try {
    config = parsePipelines(text, name, ROOT, pipelinesSchema(REGISTRY), ENV);
  } catch (err) {
    if (err instanceof PipelineConfigError) return err.issues.map((i) => `${i.line}:${i.column}: ${i.path}: ${i.message}`);
    throw err;
  }
  const ajv = recordAjv();
  for (const [topic, t] of config.topics) {
    if (t.schema === undefined) continue;
    try {
      ajv.compile(JSON.parse(readFileSync(t.schema, 'utf8')) as Record<string, unknown>);
    } catch (err) {
      problems.push(`topics.${topic}.schema: ${(err as Error).message}`);
    }
  }
  for (const p of config.pipelines) {
    const at = `pipelines.${p.name}`;
    try {
      compileChain(p.transforms, REGISTRY.transforms ?? []);
    } catch (err) {
      problems.push(`${at}.transforms: ${(err as Error).message}`);
    }
    for (const [key, template] of [['topic', p.topic], ['key', p.key]] as const) {
      if (template === undefined) continue;
      try {
        compileTemplate(template);
      } catch (err) {
        problems.push(`${at}.${key}: ${(err as Error).message}`);
      }
    }
    const g = deliveryGuarantee(p, REGISTRY.sources, REGISTRY.sinks);
    if (p.delivery === 'exactly_once' && !g.exactlyOnce) problems.push(`${at}.delivery: exactly_once, but ${g.weakHops.join('; ')}`);
  }
  return problems;
}

const files = markdownFiles(DOCS);
const blocks = files.flatMap(yamlBlocks);
const checked = blocks.filter((b) => b.kind !== 'other');

describe('docs examples', () => {
  it('finds the examples', () => {
    expect(blocks.filter((b) => b.kind === 'full').length).toBeGreaterThanOrEqual(5);
  });

  it.each(checked.map((b) => [`${b.file} yaml block ${b.number} (line ${b.line})`, b] as const))('%s is valid', (label, b) => {
    const text = b.kind === 'full' ? b.text : wrapTransforms(b.text);
    expect(check(text, label), `${label}:\n${text}`).toEqual([]);
  });

  it('shows a complete example on every connector page, using that connector', () => {
    const pages = files.filter((f) => relative(DOCS, f).startsWith('connectors/'));
    expect(pages.length).toBeGreaterThan(0);
    for (const page of pages) {
      // connectors/file.md, or connectors/file-source.md when a system's source and sink have a page each.
      const type = page.replace(/^.*\//, '').replace(/\.md$/, '').replace(/-(source|sink)$/, '');
      const full = blocks.filter((b) => b.file === relative(ROOT, page) && b.kind === 'full');
      expect(
        // postgres-cdc.md documents type postgres_cdc.
        full.some((b) => new RegExp(`type:\\s*${type.replace(/-/g, '[-_]')}\\b`).test(b.text)),
        `${relative(ROOT, page)} has no complete example with type: ${type}`,
      ).toBe(true);
    }
  });

  it('finds a broken example (the checker is not a no-op)', () => {
    expect(check('version: 1\npipelines:\n  p:\n    topic: t\n    sinks: { s: { type: stdout, colour: red } }\n', 'x')).not.toEqual([]);
    expect(check(wrapTransforms('transforms:\n  - { type: filter, condition: { field: a, matches: "(" } }'), 'x')).not.toEqual([]);
    expect(
      check('version: 1\npipelines:\n  p:\n    source: { type: generate }\n    topic: t\n    delivery: exactly_once\n    sinks: { s: { type: stdout } }\n', 'x'),
    ).not.toEqual([]);
    expect(check('version: 1\npipelines:\n  p:\n    source: { type: generate }\n    topic: t\n    key: "{{ host"\n', 'x')).not.toEqual([]);
  });
});
