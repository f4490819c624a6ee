/** `sluice validate` and `sluice run` on good and broken pipelines files, as real processes. */
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { finish, lines, sluice, start, tempDir } from './run-sluice.js';

let dir: { path: string; remove(): Promise<void> };
beforeEach(async () => {
  dir = await tempDir('sluice-run-validate-');
});
afterEach(async () => {
  await dir.remove();
});

async function file(name: string, text: string): Promise<string> {
  await writeFile(join(dir.path, name), text);
  return name;
}

const GOOD = `version: 1
log: { data_dir: ./data }
admin: { listen: "127.0.0.1:0" }
topics:
  events: { partitions: 2 }
pipelines:
  archive:
    source: { type: generate, count: 500, seed: 7, batch_size: 100 }
    topic: events
    key: "{{ service }}"
    delivery: exactly_once
    sinks:
      out: { type: file, path: ./out }
  tail:
    topic: events
    sinks:
      x: { type: stdout }
`;

// Problems on lines 2, 5, 8 and 11; the hint of each is in parentheses.
const BROKEN = `version: 1
topcs: {}
topics:
  events:
    partitons: 2
pipelines:
  p:
    source: { type: generat }
    topic: events
    sinks:
      out: { type: file }
`;

const BROKEN_LINES = [
  'sluice: broken.yaml:2:1: topcs: unknown key "topcs" (did you mean "topics"?)',
  'sluice: broken.yaml:5:5: topics.events.partitons: unknown key "partitons" (did you mean "partitions"?)',
  'sluice: broken.yaml:8:21: pipelines.p.source.type: unknown connector type "generat" (did you mean "generate"?)',
  'sluice: broken.yaml:11:12: pipelines.p.sinks.out: missing required key "path"',
];

describe('sluice validate', () => {
  it('prints each pipeline\'s delivery guarantee and exits 0', async () => {
    await file('good.yaml', GOOD);
    const r = await sluice(['validate', '-c', 'good.yaml'], { cwd: dir.path });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      [
        'good.yaml: valid (2 pipelines)',
        '  archive: exactly-once',
        '  tail: at-least-once (sink "x": stdout, lines after the last commit may print again after a restart)',
        '',
      ].join('\n'),
    );
    // Validation touches nothing: no data directory, no output directory.
    expect(existsSync(join(dir.path, 'data'))).toBe(false);
    expect(existsSync(join(dir.path, 'out'))).toBe(false);
  });

  it('reads ./pipelines.yaml by default', async () => {
    await file('pipelines.yaml', GOOD);
    const r = await sluice(['validate'], { cwd: dir.path });
    expect(r.code, r.stderr).toBe(0);
    expect(lines(r.stdout)[0]).toBe('pipelines.yaml: valid (2 pipelines)');
  });

  it('prints one line per problem, FILE:LINE:COL: path: message (hint), and exits non-zero', async () => {
    await file('broken.yaml', BROKEN);
    const r = await sluice(['validate', '-c', 'broken.yaml'], { cwd: dir.path });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(lines(r.stderr)).toEqual(BROKEN_LINES);
  });

  it('refuses exactly_once with a hop that cannot give it, naming the hop', async () => {
    await file(
      'eo.yaml',
      `version: 1
pipelines:
  p:
    source: { type: generate }
    topic: t
    delivery: exactly_once
    sinks:
      screen: { type: stdout }
`,
    );
    const r = await sluice(['validate', '-c', 'eo.yaml'], { cwd: dir.path });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      'sluice: eo.yaml:6:5: pipelines.p.delivery: exactly_once is asked for, but sink "screen": stdout, lines after the last commit may print again after a restart (use a sink that commits transactionally or idempotently, or say delivery: at_least_once)\n',
    );
  });

  it('names an unset environment variable', async () => {
    await file('env.yaml', 'version: 1\npipelines:\n  p:\n    source: { type: generate }\n    topic: "${SLUICE_TEST_SURELY_UNSET_TOPIC}"\n');
    const r = await sluice(['validate', '-c', 'env.yaml'], { cwd: dir.path });
    expect(r.code).toBe(1);
    expect(lines(r.stderr)[0]).toMatch(/^sluice: env\.yaml:5:12: .*environment variable SLUICE_TEST_SURELY_UNSET_TOPIC is not set \(set it, or give a default: \$\{SLUICE_TEST_SURELY_UNSET_TOPIC:-value\}\)$/);
  });

  it('says when the file cannot be read', async () => {
    const r = await sluice(['validate', '-c', 'nope.yaml'], { cwd: dir.path });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^sluice: nope\.yaml:1:1: cannot read the file: ENOENT[^\n]*\n$/);
  });

  it('validates the repository\'s pipelines.yaml', async () => {
    const repo = new URL('../../', import.meta.url).pathname;
    const r = await sluice(['validate', '-c', 'pipelines.yaml'], { cwd: repo });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('pipelines.yaml: valid (2 pipelines)\n  demo-logs: exactly-once\n  tail-logs: exactly-once\n');
  });
});

describe('sluice run', () => {
  it('fails fast on a broken file with the same lines, creating nothing', async () => {
    await file('broken.yaml', BROKEN);
    const t0 = Date.now();
    const r = await sluice(['run', '-c', 'broken.yaml'], { cwd: dir.path, timeoutMs: 15_000 });
    expect(r.code).toBe(1);
    expect(lines(r.stderr)).toEqual(BROKEN_LINES);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(existsSync(join(dir.path, 'data'))).toBe(false);
  });

  it('runs a finite pipeline, writes every record once, and exits 0 on SIGTERM', async () => {
    await file('good.yaml', GOOD);
    const child = start(['run', '-c', 'good.yaml'], { cwd: dir.path });
    const done = finish(child, 30_000);
    const count = async (): Promise<number> => {
      let n = 0;
      for (const p of [0, 1]) {
        const f = join(dir.path, 'out', `events-${p}.ndjson`);
        if (existsSync(f)) n += lines(await readFile(f, 'utf8')).length;
      }
      return n;
    };
    const deadline = Date.now() + 20_000;
    while ((await count()) < 500 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGTERM');
    const r = await done;
    expect(r.code, r.stderr).toBe(0);
    const ids: number[] = [];
    for (const p of [0, 1]) {
      for (const line of lines(await readFile(join(dir.path, 'out', `events-${p}.ndjson`), 'utf8'))) ids.push((JSON.parse(line) as { id: number }).id);
    }
    expect(ids.sort((a, b) => a - b)).toEqual(Array.from({ length: 500 }, (_, i) => i));
    // The stdout sink printed the same records (at-least-once, but one clean run has no repeats).
    expect(lines(r.stdout)).toHaveLength(500);
  });
});
