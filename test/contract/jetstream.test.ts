import { afterAll, beforeAll } from 'vitest';

import { openJetStreamLog } from '../../core/log/jetstream/index.js';
import type { NatsServer } from '../support/nats.js';
import { startLogNats, uniquePrefix } from '../support/nats-log.js';
import { runLogContract } from './log-contract.js';

let server: NatsServer;

beforeAll(async () => {
  server = await startLogNats();
}, 60_000);

afterAll(async () => {
  await server?.stop();
});

runLogContract('jetstream', async () => {
  // A prefix per test: its own streams and buckets on the shared server.
  const prefix = uniquePrefix();
  return {
    open: () => openJetStreamLog({ servers: [server.url], prefix }),
    cleanup: () => Promise.resolve(),
  };
});
