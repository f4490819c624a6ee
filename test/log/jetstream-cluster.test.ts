/**
 * The JetStream backend on the documented three-node cluster with replicas 3: appends go on
 * through the loss of a node (stream leaders move), nothing is lost or repeated, offsets stay dense.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { openJetStreamLog } from '../../core/log/jetstream/index.js';
import type { LogRecord } from '../../core/log/types.js';
import { startNatsCluster, type NatsCluster } from '../support/nats-cluster.js';

let cluster: NatsCluster;

beforeAll(async () => {
  cluster = await startNatsCluster();
}, 120_000);

afterAll(async () => {
  await cluster?.stop();
});

describe('JetStream backend on a 3-node cluster', () => {
  it('keeps every record once, at dense offsets, when a node stops during appends', { timeout: 120_000 }, async () => {
    const log = await openJetStreamLog({ servers: cluster.servers, replicas: 3, prefix: 'r3' });
    await log.createTopic('events', { partitions: 3 });
    let n = 0;
    let stop = false;
    const producer = (async () => {
      while (!stop || n < 2000) {
        const i = n;
        n += 20;
        await log.append(
          'events',
          Array.from({ length: 20 }, (_, j) => ({ key: `k${(i + j) % 7}`, value: String(i + j) })),
          { checkpoint: { source: 'gen', position: i + 20 } },
        );
      }
    })();
    await new Promise((r) => setTimeout(r, 500));
    await cluster.nodes[2]!.stop();
    await new Promise((r) => setTimeout(r, 500));
    stop = true;
    await producer;
    const values: number[] = [];
    for (let p = 0; p < 3; p++) {
      const records: LogRecord[] = [];
      let offset = 0;
      for (;;) {
        const r = await log.read('events', p, offset);
        if (r.records.length === 0) break;
        records.push(...r.records);
        offset = r.nextOffset;
      }
      expect(records.map((r) => r.offset)).toEqual(records.map((_, i) => i));
      values.push(...records.map((r) => Number(r.value.toString())));
    }
    values.sort((a, b) => a - b);
    expect(values).toEqual(Array.from({ length: n }, (_, i) => i));
    expect(await log.getCheckpoint('gen')).toBe(n);
    await log.close();
  });
});
