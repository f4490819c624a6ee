/** The example of docs/connectors/postgres-cdc.md, run with `sluice run` against a real server. */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLocalLog } from '../../../core/log/local/index.js';
import { recordAjv } from '../../../core/schema/record-ajv.js';
import { startPostgres, type PgServer } from '../../support/postgres.js';
import { sql } from './cdc-helpers.js';

const ROOT = process.cwd();
const MAIN = join(ROOT, 'dist/core/cli/main.js');

let pgs: PgServer;
let dir: string;
beforeAll(async () => {
  pgs = await startPostgres();
  dir = await mkdtemp(join(tmpdir(), 'sluice-pgcdc-docs-'));
}, 120_000);
afterAll(async () => {
  await pgs?.stop();
  await rm(dir, { recursive: true, force: true });
});

function example(): string {
  const md = readFileSync(join(ROOT, 'docs/connectors/postgres-cdc.md'), 'utf8');
  const m = /```yaml\n(version: 1[\s\S]*?)```/.exec(md);
  if (m === null) throw new Error('no example in docs/connectors/postgres-cdc.md');
  return m[1]!;
}

describe.skipIf(!existsSync(MAIN))('docs/connectors/postgres-cdc.md example', () => {
  it('runs: snapshot and changes of both tables, one topic each, every event valid', async () => {
    const url = await pgs.createDatabase('shop');
    await sql(url, `CREATE TABLE orders (id bigint PRIMARY KEY, status text, total numeric(20,4), items jsonb, created timestamptz DEFAULT now());
      CREATE TABLE customers (id int PRIMARY KEY, name text, photo bytea);
      INSERT INTO orders VALUES (1, 'new', 10.5, '[{"sku":"A1"}]');
      INSERT INTO customers VALUES (1, 'Ada', '\\xdeadbeef')`);
    // The admin server on a free port: 7070 may be taken on a shared machine.
    await writeFile(join(dir, 'pipelines.yaml'), example().replace(/^log: .*$/m, (l) => `${l}\nadmin: { listen: "127.0.0.1:0" }`));
    await symlink(join(ROOT, 'schemas'), join(dir, 'schemas'));
    const child = spawn(process.execPath, [MAIN, 'run', '-c', 'pipelines.yaml'], {
      cwd: dir,
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, SHOP_PG_URL: url, SLUICE_LOG_LEVEL: 'info' },
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise((r) => child.on('exit', r));
    try {
      const deadline = Date.now() + 30_000;
      while (!/streaming from slot \\?"sluice_shop_cdc/.test(stderr)) {
        if (Date.now() > deadline) throw new Error(`sluice did not start streaming:\n${stderr}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      await sql(url, `UPDATE orders SET status = 'paid', total = '1234567890123.4567' WHERE id = 1; INSERT INTO customers VALUES (2, 'Grace', NULL); DELETE FROM customers WHERE id = 1`);
      await new Promise((r) => setTimeout(r, 1500));
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
    const log = await openLocalLog({ dir: join(dir, 'data'), retentionSchedule: false });
    const validate = recordAjv().compile(JSON.parse(readFileSync(join(ROOT, 'schemas/records/cdc-event.schema.json'), 'utf8')) as object);
    try {
      const read = async (topic: string) => {
        const out: { key: string | null; value: Record<string, any> }[] = [];
        const { partitions } = await log.describeTopic(topic);
        for (let p = 0; p < partitions; p++) {
          const r = await log.read(topic, p, 0, { maxBytes: 1 << 20 });
          for (const rec of r.records) out.push({ key: rec.key, value: JSON.parse(rec.value.toString()) });
        }
        return out;
      };
      expect((await log.describeTopic('cdc.orders')).partitions).toBe(4);
      const orders = await read('cdc.orders');
      const customers = await read('cdc.customers');
      for (const e of [...orders, ...customers]) expect(validate(e.value), JSON.stringify(validate.errors)).toBe(true);
      expect(orders.map((e) => e.value.op)).toEqual(['r', 'u']);
      expect(orders[1]!.key).toBe('{"id":1}');
      expect(orders[1]!.value.after).toMatchObject({ id: 1, status: 'paid', total: '1234567890123.4567', items: [{ sku: 'A1' }] });
      expect(customers.map((e) => e.value.op).sort()).toEqual(['c', 'd', 'r']);
      expect(customers.find((e) => e.value.op === 'r')!.value.after.photo).toBe(Buffer.from('deadbeef', 'hex').toString('base64'));
    } finally {
      await log.close();
    }
  }, 90_000);
});
