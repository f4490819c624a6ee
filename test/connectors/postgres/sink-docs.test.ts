/**
 * docs/connectors/postgres-sink.md: its configuration table lists every key of the schema with
 * its default, and its complete example runs — `sluice run` against a private cluster (needs
 * `npm run build`).
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { postgresSink } from '../../../connectors/postgres/sink.js';
import { privateCluster, query } from './sink-helpers.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const PAGE = readFileSync(join(ROOT, 'docs/connectors/postgres-sink.md'), 'utf8');
const MAIN = join(ROOT, 'dist/core/cli/main.js');

const cluster = privateCluster();

describe('docs/connectors/postgres-sink.md', () => {
  it('lists every config key with its default', () => {
    const rows = new Map<string, string>();
    const from = PAGE.indexOf('## Configuration');
    for (const line of PAGE.slice(from, PAGE.indexOf('\n## ', from + 1)).split('\n')) {
      const m = /^\| `([a-z_]+)` \|(.*)$/.exec(line);
      if (m !== null) rows.set(m[1]!, m[2]!);
    }
    const props = (postgresSink.schema as { properties: Record<string, { default?: unknown }> }).properties;
    for (const [key, p] of Object.entries(props)) {
      expect(rows.has(key), `the table has no row for ${key}`).toBe(true);
      if (p.default !== undefined) expect(rows.get(key), key).toContain(`\`${String(p.default)}\``);
    }
    for (const key of rows.keys()) expect(key === 'type' || key in props, `the table lists ${key}, which the schema does not have`).toBe(true);
  });

  it.skipIf(!existsSync(MAIN))('runs its example', async () => {
    const yaml = /```yaml\n(# yaml-language-server[^\n]*\nversion: 1\n[\s\S]*?)```/.exec(PAGE)![1]!;
    const dir = await cluster.tempDir('sluice-pgsink-docs-');
    await writeFile(join(dir, 'pipelines.yaml'), yaml.replace('listen: 127.0.0.1:7070', 'listen: "127.0.0.1:0"'));
    const url = await cluster.server().createDatabase('docs');
    const child = spawn(process.execPath, [MAIN, 'run', '-c', join(dir, 'pipelines.yaml')], {
      cwd: dir,
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, TARGET_PG_URL: url },
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', r));
    const count = async (table: string): Promise<number> =>
      Number((await query<{ n: string }>(url, `SELECT count(*) AS n FROM ${table}`).catch(() => [{ n: '0' }]))[0]!.n);
    const deadline = Date.now() + 30_000;
    while ((await count('app_events')) < 2000 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    // Both sinks have caught up when their stored offsets reach the end of both partitions.
    while (Date.now() < deadline) {
      const [o] = await query<{ n: string }>(url, `SELECT coalesce(sum(next_offset), 0) AS n FROM sluice_offsets WHERE sink = 'latest'`);
      if (Number(o!.n) >= 2000) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    child.kill('SIGTERM');
    expect(await exited, stderr).toBe(0);
    expect(await count('app_events')).toBe(2000);
    const types = await query<{ c: string; t: string }>(
      url,
      `SELECT attname AS c, format_type(atttypid, atttypmod) AS t FROM pg_attribute WHERE attrelid = 'app_events'::regclass AND attnum > 0 ORDER BY attnum`,
    );
    expect(types).toEqual([
      { c: 'id', t: 'bigint' },
      { c: 'timestamp', t: 'timestamp with time zone' },
      { c: 'level', t: 'text' },
      { c: 'service', t: 'text' },
      { c: 'message', t: 'text' },
    ]);
    const latest = await query<{ service: string; id: string }>(url, 'SELECT service, id FROM last_event ORDER BY service');
    expect(latest.map((r) => r.service)).toEqual(['api', 'billing', 'web', 'worker']);
    const maxIds = await query<{ service: string; id: string }>(url, 'SELECT service, max(id)::text AS id FROM app_events GROUP BY service ORDER BY service');
    expect(latest.map((r) => String(r.id))).toEqual(maxIds.map((r) => r.id));
  }, 90_000);
});
