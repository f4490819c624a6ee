/**
 * docs/connectors/file-source.md: its configuration table lists every key of the schema with its
 * default, and its complete example runs — `sluice run` on real files (needs `npm run build`).
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { appendFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fileSourceSchema } from '../../../connectors/file/source-config.js';
import { removeTempDirs, sleep, tempDir } from './helpers.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const PAGE = readFileSync(join(ROOT, 'docs/connectors/file-source.md'), 'utf8');
const MAIN = join(ROOT, 'dist/core/cli/main.js');

afterAll(removeTempDirs);

type Prop = { default?: unknown; properties?: Record<string, Prop> };

function tableRows(): Map<string, string> {
  const from = PAGE.indexOf('## Configuration');
  const to = PAGE.indexOf('\n## ', from + 1);
  const section = PAGE.slice(from, to < 0 ? undefined : to);
  const rows = new Map<string, string>();
  for (const line of section.split('\n')) {
    const m = /^\| `([a-z_.]+)` \|(.*)$/.exec(line);
    if (m !== null) rows.set(m[1]!, m[2]!);
  }
  return rows;
}

describe('docs/connectors/file-source.md', () => {
  it('lists every config key with its default', () => {
    const rows = tableRows();
    const keys: [string, Prop][] = [];
    for (const [k, p] of Object.entries(fileSourceSchema.properties as Record<string, Prop>)) {
      if (p.properties === undefined) keys.push([k, p]);
      else for (const [sub, sp] of Object.entries(p.properties)) keys.push([`${k}.${sub}`, sp]);
    }
    for (const [key, p] of keys) {
      expect(rows.has(key), `the table has no row for ${key}`).toBe(true);
      if (p.default !== undefined) expect(rows.get(key), key).toContain(`\`${String(p.default)}\``);
    }
    const known = new Set(['type', ...keys.map(([k]) => k)]);
    for (const key of rows.keys()) expect(known.has(key), `the table lists ${key}, which the schema does not have`).toBe(true);
  });

  it.skipIf(!existsSync(MAIN))('runs its example', async () => {
    const yaml = /```yaml\n(version: 1\n[\s\S]*?)```/.exec(PAGE)![1]!;
    const dir = await tempDir('sluice-file-docs-');
    await writeFile(join(dir, 'pipelines.yaml'), yaml.replace('listen: 127.0.0.1:7070', 'listen: "127.0.0.1:0"'));
    await mkdir(join(dir, 'logs', 'api'), { recursive: true });
    await mkdir(join(dir, 'logs', 'billing'), { recursive: true });
    await writeFile(join(dir, 'logs', 'api', 'app.log'), '{"level":"info","msg":"one"}\n{"level":"warn","msg":"two"}\n');
    await writeFile(join(dir, 'logs', 'api', 'app-debug.log'), '{"msg":"excluded"}\n');
    await writeFile(join(dir, 'logs', 'api', 'app.log.1.gz'), 'not read\n');
    await writeFile(join(dir, 'logs', 'billing', 'billing.log'), '2026-01-01 ERROR boom\n\tat a.B(C.java:1)\n2026-01-01 INFO ok\n');
    const child = spawn(process.execPath, [MAIN, 'run', '-c', join(dir, 'pipelines.yaml')], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', r));
    await sleep(300);
    await appendFile(join(dir, 'logs', 'api', 'app.log'), 'not json\n');
    const values = async (): Promise<Record<string, unknown>[]> => {
      const out: Record<string, unknown>[] = [];
      for (const f of await readdir(join(dir, 'data', 'out')).catch(() => [] as string[])) {
        if (!f.endsWith('.ndjson')) continue;
        for (const line of (await readFile(join(dir, 'data', 'out', f), 'utf8')).split('\n')) if (line !== '') out.push(JSON.parse(line) as Record<string, unknown>);
      }
      return out;
    };
    let got: Record<string, unknown>[] = [];
    for (const deadline = Date.now() + 20_000; got.length < 5 && Date.now() < deadline; await sleep(100)) got = await values();
    child.kill('SIGTERM');
    expect(await exited, stderr).toBe(0);
    const byMsg = (m: string) => got.find((v) => v.msg === m || v.message === m);
    expect(byMsg('one')).toMatchObject({ level: 'info', file: join(dir, 'logs', 'api', 'app.log') });
    expect(byMsg('two')).toMatchObject({ level: 'warn' });
    expect(byMsg('not json')).toMatchObject({ parse_error: expect.stringMatching(/invalid JSON/) });
    expect(byMsg('2026-01-01 ERROR boom\n\tat a.B(C.java:1)')).toBeDefined();
    // The last event of billing.log waits for the multiline timeout (1 s), then comes.
    expect(byMsg('2026-01-01 INFO ok')).toBeDefined();
    expect(got.length).toBe(5);
  }, 60_000);
});
