/**
 * A private nats-server for JetStream-backend tests: max_payload raised to 8 MiB (as docs/operations.md
 * recommends) so records of a few MiB fit in a frame, and a unique prefix per harness so tests
 * sharing the server never see each other's topics, groups or checkpoints.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { startNats, type NatsServer } from './nats.js';

export async function startLogNats(): Promise<NatsServer> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-nats-conf-'));
  const conf = join(dir, 'nats.conf');
  await writeFile(conf, 'max_payload: 8MB\n');
  return startNats({ args: ['-c', conf] });
}

export function uniquePrefix(): string {
  return `t${randomUUID().replace(/-/g, '').slice(0, 12)}`;
}
