/** Config problems the schema cannot see (globs, multiline regexes) reported at file:line:column. */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { builtinSinks, builtinSources } from '../../../connectors/registry.js';
import { validateConfig } from '../../../connectors/file/source-config.js';
import { formatIssue, PipelineConfigError } from '../../../core/pipeline/config.js';
import { loadAndCheck } from '../../../core/pipeline/setup.js';
import { removeTempDirs, tempDir } from './helpers.js';

afterAll(removeTempDirs);

describe('file source: validate', () => {
  it('accepts good globs and patterns', () => {
    expect(validateConfig({ include: ['logs/**/*.{log,txt}'], exclude: ['*.gz'], multiline: { start_pattern: '^\\d{4}-' } }, '/tmp')).toEqual([]);
  });

  it('names every bad glob and pattern by its key path', () => {
    const problems = validateConfig({ include: ['ok/*.log', 'logs/{a,b.log'], exclude: ['[z-a].log'], multiline: { continuation_pattern: '(unclosed' } }, '/tmp');
    expect(problems.map((p) => p.path)).toEqual(['include.1', 'exclude.0', 'multiline.continuation_pattern']);
    expect(problems[0]!.message).toMatch(/not a valid glob: unclosed "\{"/);
    expect(problems[2]!.message).toMatch(/not a valid regular expression/);
  });

  it('sluice validate / run report them at file:line:column with the rest of the file', async () => {
    const dir = await tempDir();
    const file = join(dir, 'pipelines.yaml');
    await writeFile(
      file,
      `version: 1
pipelines:
  tail:
    source:
      type: file
      include: ["./logs/*.log", "./logs/{a,b.log"]
      multiline:
        start_pattern: "^[0-9"
    topic: app
`,
    );
    const err = await loadAndCheck(file, { sources: builtinSources, sinks: builtinSinks }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PipelineConfigError);
    const lines = (err as PipelineConfigError).issues.map(formatIssue);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:6:33: pipelines\\.tail\\.source\\.include\\.1: not a valid glob`));
    expect(lines[1]).toMatch(/:8:9: pipelines\.tail\.source\.multiline\.start_pattern: not a valid regular expression: .* \(JavaScript syntax/);
  });
});
