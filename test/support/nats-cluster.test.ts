/**
 * The documented three-node JetStream cluster (docs/nats-cluster/*.conf) forms, serves R3 streams
 * and keeps serving them when one node dies.
 */
import { StorageType, connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { startNatsCluster, type NatsCluster } from './nats-cluster.js';

let cluster: NatsCluster;
let nc: NatsConnection;

beforeAll(async () => {
  cluster = await startNatsCluster();
  nc = await connect({ servers: cluster.servers, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
}, 120_000);

afterAll(async () => {
  await nc?.close();
  await cluster?.stop();
});

describe('three-node JetStream cluster from docs/nats-cluster', () => {
  it('replicates an R3 stream and keeps serving it with one node down', async () => {
    const jsm = await nc.jetstreamManager();
    const info = await jsm.streams.add({ name: 'r3', subjects: ['r3.>'], num_replicas: 3, storage: StorageType.File });
    expect(info.config.num_replicas).toBe(3);
    const js = nc.jetstream();
    for (let i = 0; i < 100; i++) await js.publish('r3.a', new TextEncoder().encode(`m${i}`));

    await cluster.nodes[2]!.stop();
    // The stream's leader may have been the stopped node: publishes succeed again after an election.
    const deadline = Date.now() + 30_000;
    for (let i = 100; i < 200; i++) {
      for (;;) {
        try {
          await js.publish('r3.a', new TextEncoder().encode(`m${i}`), { msgID: `m${i}`, timeout: 2000 });
          break;
        } catch (err) {
          if (Date.now() > deadline) throw err;
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    }
    const after = await jsm.streams.info('r3');
    expect(after.state.messages).toBe(200);
    const last = await jsm.streams.getMessage('r3', { seq: 200 });
    expect(new TextDecoder().decode(last.data)).toBe('m199');
  }, 120_000);
});
