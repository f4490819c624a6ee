import { setTimeout as sleep } from 'node:timers/promises';
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { KvCoordinator, leaseKey } from '../../core/pipeline/kv-coordinator.js';
import { startNats, type NatsServer } from '../support/nats.js';

let server: NatsServer;
let nc: NatsConnection;
let bucketN = 0;

beforeAll(async () => {
  server = await startNats();
  nc = await connect({ servers: server.url });
});

afterAll(async () => {
  await nc?.drain();
  await server?.stop();
});

async function eventually(probe: () => boolean, timeoutMs = 15000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(50);
  }
}

/** A fresh bucket per test, so expiry settings and leases never leak between tests. */
function bucket(): string {
  return `leases_${process.pid}_${++bucketN}`;
}

async function open(b: string, workerId: string, ttlMs = 3000): Promise<KvCoordinator> {
  return KvCoordinator.open(nc.jetstream(), { bucket: b, ttlMs, workerId });
}

describe('KvCoordinator', () => {
  it('grants a unit to one worker at a time and hands it on after release', async () => {
    const b = bucket();
    const [a, c] = [await open(b, 'a'), await open(b, 'c')];
    try {
      const la = await a.tryAcquire('sink/p/s/t/0');
      expect(la).not.toBeNull();
      expect(await c.tryAcquire('sink/p/s/t/0')).toBeNull();
      // Asking again for a unit it holds returns the same lease.
      expect(await a.tryAcquire('sink/p/s/t/0')).toBe(la);
      await la!.release();
      expect(la!.lost.aborted).toBe(true);
      const lc = await c.tryAcquire('sink/p/s/t/0');
      expect(lc).not.toBeNull();
      expect(lc!.fence).toBeGreaterThan(la!.fence);
    } finally {
      await a.close();
      await c.close();
    }
  });

  it('keeps a lease alive by renewing it past the TTL', async () => {
    const b = bucket();
    const [a, c] = [await open(b, 'a', 1500), await open(b, 'c', 1500)];
    try {
      const la = await a.tryAcquire('source/p');
      await sleep(4000);
      expect(la!.lost.aborted).toBe(false);
      expect(await c.tryAcquire('source/p')).toBeNull();
    } finally {
      await a.close();
      await c.close();
    }
  });

  it('lets a survivor take over a dead worker\'s unit within the TTL, with a larger fence', async () => {
    const b = bucket();
    const ttl = 1500;
    // The "dead" worker: takes the lease, then its renewals stop (as if SIGKILLed).
    const dead = await open(b, 'dead', ttl);
    const survivor = await open(b, 'survivor', ttl);
    try {
      const old = await dead.tryAcquire('source/p');
      (dead as unknown as { timer: NodeJS.Timeout }).timer.unref();
      clearInterval((dead as unknown as { timer: NodeJS.Timeout }).timer);
      const t0 = Date.now();
      let taken = null;
      while (taken === null && Date.now() - t0 < ttl * 4) {
        taken = await survivor.tryAcquire('source/p');
        if (taken === null) await sleep(100);
      }
      expect(taken).not.toBeNull();
      const waited = Date.now() - t0;
      expect(waited).toBeLessThan(survivor.failoverMs + 1500);
      expect(taken!.fence).toBeGreaterThan(old!.fence);
    } finally {
      await survivor.close();
    }
  });

  it('tells the old holder its lease is lost when it was taken over', async () => {
    const b = bucket();
    const lostUnits: string[] = [];
    const slow = await KvCoordinator.open(nc.jetstream(), {
      bucket: b,
      ttlMs: 1500,
      workerId: 'slow',
      onLost: (u) => lostUnits.push(u),
    });
    const other = await open(b, 'other', 1500);
    try {
      const lease = await slow.tryAcquire('source/q');
      // Simulate a stall: the key expires while "slow" does not renew, and another worker takes it.
      const timer = (slow as unknown as { timer: NodeJS.Timeout }).timer;
      clearInterval(timer);
      let taken = null;
      while (taken === null) {
        await sleep(100);
        taken = await other.tryAcquire('source/q');
      }
      // The stalled worker wakes up and renews: it finds out at once.
      await (slow as unknown as { renewAll(): Promise<void> }).renewAll();
      expect(lease!.lost.aborted).toBe(true);
      expect(lostUnits).toEqual(['source/q']);
    } finally {
      await slow.close();
      await other.close();
    }
  });

  it('computes a fair share from the live workers', async () => {
    const b = bucket();
    const ws = [await open(b, 'w1'), await open(b, 'w2'), await open(b, 'w3')];
    try {
      // Each counts the others on its next renewal round (every TTL/3).
      await eventually(() => ws.every((w) => w.fairShare(8) === 3));
      await ws[2]!.close();
      await eventually(() => ws[0]!.fairShare(8) === 4);
    } finally {
      for (const w of ws) await w.close();
    }
  });

  it('refuses a TTL that differs from the bucket\'s', async () => {
    const b = bucket();
    const a = await open(b, 'a', 3000);
    try {
      await expect(open(b, 'b', 6000)).rejects.toThrow(/expires entries after 3000 ms/);
    } finally {
      await a.close();
    }
  });

  it('escapes unit names into valid KV keys', () => {
    expect(leaseKey('sink/orders.sync/pg/cdc.public.orders/3')).toBe('lease.sink/orders=2esync/pg/cdc=2epublic=2eorders/3');
    expect(leaseKey('source/a b')).toBe('lease.source/a=20b');
  });
});
