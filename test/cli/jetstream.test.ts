/**
 * The `sluice` commands on the JetStream backend, chosen by a pipelines file with
 * `log.backend: jetstream`: topics, produce, consume, groups, and the error when no server answers.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { NatsServer } from '../support/nats.js';
import { startLogNats, uniquePrefix } from '../support/nats-log.js';
import { freePort } from '../support/ports.js';
import { envelopes, lines, ndjson, sluice, tempDir } from './run-sluice.js';

let server: NatsServer;
let dir: { path: string; remove(): Promise<void> };

beforeAll(async () => {
  [server, dir] = await Promise.all([startLogNats(), tempDir()]);
}, 60_000);

afterAll(async () => {
  await server?.stop();
  await dir?.remove();
});

async function configFile(servers: string, prefix = uniquePrefix()): Promise<string> {
  const file = join(dir.path, `${prefix}.yaml`);
  await writeFile(file, `version: 1\nlog:\n  backend: jetstream\n  jetstream:\n    servers: "${servers}"\n    prefix: ${prefix}\npipelines: {}\n`);
  return file;
}

describe('sluice on JetStream', () => {
  it('creates, lists, describes and deletes topics; produces, consumes and manages groups', { timeout: 60_000 }, async () => {
    const c = await configFile(server.url);
    let r = await sluice(['topics', 'create', 'orders', '--partitions', '2', '-c', c]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('created topic orders with 2 partitions\n');
    await sluice(['topics', 'create', 'audit', '--partitions', '1', '-c', c]);
    r = await sluice(['topics', 'list', '-c', c]);
    expect(lines(r.stdout)).toEqual(['audit', 'orders']);

    const values = Array.from({ length: 50 }, (_, i) => ({ id: i, user: `u${i % 5}` }));
    r = await sluice(['produce', 'orders', '--key', 'user', '-c', c], { input: ndjson(values) });
    expect(r.code, r.stderr).toBe(0);

    r = await sluice(['topics', 'describe', 'orders', '-c', c]);
    expect(r.code, r.stderr).toBe(0);
    const ends = lines(r.stdout)
      .filter((l) => /^[01]\s/.test(l))
      .map((l) => Number(l.split(/\s+/)[2]));
    expect(ends.reduce((a, b) => a + b, 0)).toBe(50);

    r = await sluice(['consume', 'orders', '--group', 'g1', '--limit', '50', '--envelope', '-c', c]);
    expect(r.code, r.stderr).toBe(0);
    const got = envelopes(r.stdout);
    expect(got.map((e) => (e.value as { id: number }).id).sort((a, b) => a - b)).toEqual(values.map((v) => v.id));
    for (const e of got) expect(e.key).toBe((e.value as { user: string }).user);

    r = await sluice(['groups', 'list', '-c', c]);
    expect(lines(r.stdout)).toEqual(['g1']);
    r = await sluice(['groups', 'describe', 'g1', '-c', c]);
    expect(r.stdout).toMatch(/orders\s+0\s+\d+\s+\d+\s+0/);
    r = await sluice(['groups', 'reset', 'g1', '--topic', 'orders', '--to', 'earliest', '-c', c]);
    expect(r.code, r.stderr).toBe(0);
    r = await sluice(['consume', 'orders', '--group', 'g1', '--limit', '50', '-c', c]);
    expect(lines(r.stdout)).toHaveLength(50);
    r = await sluice(['groups', 'delete', 'g1', '-c', c]);
    expect(r.code, r.stderr).toBe(0);
    expect(lines((await sluice(['groups', 'list', '-c', c])).stdout)).toEqual([]);

    r = await sluice(['topics', 'delete', 'orders', '-c', c]);
    expect(r.code, r.stderr).toBe(0);
    expect(lines((await sluice(['topics', 'list', '-c', c])).stdout)).toEqual(['audit']);
  });

  it('says in one line that the log is unavailable when no server answers', async () => {
    const port = await freePort();
    const c = await configFile(`nats://127.0.0.1:${port}`);
    const r = await sluice(['topics', 'list', '-c', c]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`sluice: the log at nats://127.0.0.1:${port} is unavailable: connection refused (is nats-server running there?)\n`);
  });
});
