/**
 * What only the JetStream backend has to show: checkpoints recovered from frame headers when the
 * KV cache lags, a nats-server restart during appends, a transaction cut between its frames, two
 * writers on one partition, and the error for an unreachable server.
 */
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { LogUnavailableError } from '../../core/log/errors.js';
import { openJetStreamLog, type JetStreamLog } from '../../core/log/jetstream/index.js';
import { b64, streamName, streamSubject } from '../../core/log/jetstream/names.js';
import type { Log, LogRecord } from '../../core/log/types.js';
import type { NatsServer } from '../support/nats.js';
import { startLogNats, uniquePrefix } from '../support/nats-log.js';
import { freePort } from '../support/ports.js';

let server: NatsServer;
let nc: NatsConnection;

beforeAll(async () => {
  server = await startLogNats();
  nc = await connect({ servers: server.url });
}, 60_000);

afterAll(async () => {
  await nc?.close();
  await server?.stop();
});

async function readAll(log: Log, topic: string, partition: number): Promise<LogRecord[]> {
  const out: LogRecord[] = [];
  let offset = 0;
  for (;;) {
    const r = await log.read(topic, partition, offset);
    if (r.records.length === 0) return out;
    for (const rec of r.records) out.push({ ...rec, value: Buffer.from(rec.value) });
    offset = r.nextOffset;
  }
}

function open(prefix: string, extra: Partial<Parameters<typeof openJetStreamLog>[0]> = {}): Promise<JetStreamLog> {
  return openJetStreamLog({ servers: [server.url], prefix, ...extra });
}

describe('JetStream backend', () => {
  it('completes a topic whose creator died between its entry and its streams', async () => {
    const prefix = uniquePrefix();
    const warnings: string[] = [];
    const log = await open(prefix, { topicCreationWaitMs: 300, onWarning: (m) => warnings.push(m) });
    try {
      await log.createTopic('cut', { partitions: 2 });
      // As if the creator had died after writing the entry: the second partition's stream is gone.
      await (await nc.jetstreamManager()).streams.delete(streamName(prefix, 'cut', 1));
      const d = await log.ensureTopic('cut', { partitions: 2 });
      expect(d.partitions).toBe(2);
      expect(warnings.some((w) => w.includes('partition 1 had no stream'))).toBe(true);
      await log.append('cut', [{ value: 'x', partition: 1 }]);
      expect((await readAll(log, 'cut', 1)).map((r) => r.value.toString())).toEqual(['x']);
    } finally {
      await log.close();
    }
  });

  it('lets several processes ensure one topic at the same moment', async () => {
    const prefix = uniquePrefix();
    const logs = await Promise.all([open(prefix), open(prefix), open(prefix)]);
    try {
      const described = await Promise.all(logs.map((l) => l.ensureTopic('together', { partitions: 8 })));
      for (const d of described) expect(d.partitions).toBe(8);
    } finally {
      for (const l of logs) await l.close();
    }
  });

  it('recovers a checkpoint from the frames when the KV cache lags behind them', async () => {
    const prefix = uniquePrefix();
    let log = await open(prefix);
    await log.createTopic('t', { partitions: 2 });
    await log.append('t', [{ value: 'a', partition: 0 }, { value: 'a', partition: 1 }], {
      checkpoint: { source: 'src', position: { n: 1 } },
    });
    // Let the background cache write of position 1 land, then keep a copy of that cache entry.
    // (A real cache can lag behind the frames, never behind the registration of a stream: that
    // write is awaited before the source's first frame goes to a new stream.)
    await log.close();
    const kv = await nc.jetstream().views.kv(`${prefix}_sources`);
    const stale = (await kv.get(`s${b64('src')}`))!.string();
    expect(JSON.parse(stale)).toMatchObject({ position: { n: 1 } });

    log = await open(prefix);
    await log.append('t', [{ value: 'b', partition: 1 }], { checkpoint: { source: 'src', position: { n: 2 } } });
    await log.appendAll([{ topic: 't', records: [{ value: 'c', partition: 0 }, { value: 'd', partition: 1 }] }], {
      checkpoint: { source: 'src', position: { n: 3 } },
    });
    await log.close();
    // As if the process died before the cache was written: the frames are the truth.
    await kv.put(`s${b64('src')}`, stale);

    log = await open(prefix);
    expect(await log.getCheckpoint('src')).toEqual({ n: 3 });
    await log.append('t', [{ value: 'e', partition: 0 }], { checkpoint: { source: 'src', position: { n: 4 } } });
    await log.close();
    await kv.delete(`s${b64('src')}`);
    log = await open(prefix);
    // The cache gone entirely: nothing is known about the source (it starts over, and its frames'
    // deterministic ids make the re-sent ones duplicates within the window).
    expect(await log.getCheckpoint('src')).toBeUndefined();
    await log.close();
  });

  it('does not write a frame twice when a source re-sends a transaction cut between its frames', async () => {
    const prefix = uniquePrefix();
    // A short duplicate window, waited out: the frames are recognised by their ids, not by the window.
    let log = await open(prefix, { duplicateWindowMs: 1000 });
    await log.createTopic('a', { partitions: 1 });
    await log.createTopic('b', { partitions: 1 });
    const cp = (n: number) => ({ checkpoint: { source: 'files', position: { line: n } } });
    await log.appendAll([{ topic: 'a', records: [{ value: 'a1' }] }, { topic: 'b', records: [{ value: 'b1' }] }], cp(1));

    // The stream of b disappears under the log: the next transaction stores a's frame only.
    const jsm = await nc.jetstreamManager();
    const bStream = streamName(prefix, 'b', 0);
    const bInfo = await jsm.streams.info(bStream);
    await jsm.streams.delete(bStream);
    const batch = [{ topic: 'a', records: [{ value: 'a2' }] }, { topic: 'b', records: [{ value: 'b2' }] }];
    await expect(log.appendAll(batch, cp(2))).rejects.toMatchObject({ code: 'SLUICE_UNKNOWN_TOPIC' });
    await log.close();
    await jsm.streams.add({ ...bInfo.config, subjects: [streamSubject(prefix, bStream)] });
    await new Promise((r) => setTimeout(r, 1200));

    log = await open(prefix, { duplicateWindowMs: 1000 });
    // The cut transaction does not count: the source resumes from line 1 and sends line 2 again.
    expect(await log.getCheckpoint('files')).toEqual({ line: 1 });
    const again = await log.appendAll(batch, cp(2));
    expect(again.batches.map((x) => [x.topic, x.baseOffset])).toEqual([
      ['a', 1],
      ['b', 0],
    ]);
    expect((await readAll(log, 'a', 0)).map((r) => r.value.toString())).toEqual(['a1', 'a2']);
    expect((await readAll(log, 'b', 0)).map((r) => r.value.toString())).toEqual(['b2']);
    expect(await log.getCheckpoint('files')).toEqual({ line: 2 });
    await log.close();
  });

  it('skips the stored frames when the same process retries a transaction that failed half-way', async () => {
    const prefix = uniquePrefix();
    const log = await open(prefix, { duplicateWindowMs: 1000 });
    await log.createTopic('a', { partitions: 1 });
    await log.createTopic('b', { partitions: 1 });
    const jsm = await nc.jetstreamManager();
    const bStream = streamName(prefix, 'b', 0);
    const bInfo = await jsm.streams.info(bStream);
    await jsm.streams.delete(bStream);
    const batch = [{ topic: 'a', records: [{ value: 'a1' }] }, { topic: 'b', records: [{ value: 'b1' }] }];
    const cp = { checkpoint: { source: 'retry', position: 1 } };
    await expect(log.appendAll(batch, cp)).rejects.toMatchObject({ code: 'SLUICE_UNKNOWN_TOPIC' });
    expect(await log.getCheckpoint('retry')).toBeUndefined();
    await jsm.streams.add({ ...bInfo.config, subjects: [streamSubject(prefix, bStream)] });
    await new Promise((r) => setTimeout(r, 1200));
    await log.appendAll(batch, cp);
    expect((await readAll(log, 'a', 0)).map((r) => r.value.toString())).toEqual(['a1']);
    expect((await readAll(log, 'b', 0)).map((r) => r.value.toString())).toEqual(['b1']);
    expect(await log.getCheckpoint('retry')).toBe(1);
    await log.close();
  });

  it('loses nothing and repeats nothing when nats-server restarts during appends', { timeout: 90_000 }, async () => {
    const prefix = uniquePrefix();
    const log = await open(prefix);
    await log.createTopic('r', { partitions: 2 });
    let n = 0;
    let stop = false;
    const producer = (async () => {
      while (!stop || n < 3000) {
        const i = n;
        n += 10;
        await log.append(
          'r',
          Array.from({ length: 10 }, (_, j) => ({ value: String(i + j), partition: (i / 10) % 2 })),
          { checkpoint: { source: 'p', position: i + 10 } },
        );
      }
    })();
    await new Promise((r) => setTimeout(r, 300));
    await server.restart();
    await new Promise((r) => setTimeout(r, 300));
    stop = true;
    await producer;
    const values: number[] = [];
    for (const p of [0, 1]) {
      const records = await readAll(log, 'r', p);
      expect(records.map((r) => r.offset)).toEqual(records.map((_, i) => i));
      values.push(...records.map((r) => Number(r.value.toString())));
    }
    values.sort((x, y) => x - y);
    expect(values).toEqual(Array.from({ length: n }, (_, i) => i));
    expect(await log.getCheckpoint('p')).toBe(n);
    await log.close();
    nc = await connect({ servers: server.url });
  });

  it('fails an append with AppendFailedError once the server stays away past publishRetryMs', { timeout: 60_000 }, async () => {
    const own = await startLogNats();
    const log = await openJetStreamLog({ servers: [own.url], prefix: uniquePrefix(), publishRetryMs: 1500 });
    await log.createTopic('gone', { partitions: 1 });
    await log.append('gone', [{ value: 'before' }]);
    await own.stop();
    const started = Date.now();
    await expect(log.append('gone', [{ value: 'after' }])).rejects.toMatchObject({ code: 'SLUICE_APPEND_FAILED', retriable: true });
    expect(Date.now() - started).toBeLessThan(20_000);
    await Promise.race([log.close(), new Promise((r) => setTimeout(r, 3000))]);
  });

  it('keeps offsets dense with two writers on one partition', { timeout: 60_000 }, async () => {
    const prefix = uniquePrefix();
    const [w1, w2] = await Promise.all([open(prefix), open(prefix)]);
    await w1.createTopic('shared', { partitions: 1 });
    const write = async (log: Log, name: string) => {
      for (let i = 0; i < 200; i++) await log.append('shared', [{ value: `${name}-${i}-0` }, { value: `${name}-${i}-1` }]);
    };
    await Promise.all([write(w1, 'x'), write(w2, 'y')]);
    const records = await readAll(w1, 'shared', 0);
    expect(records.map((r) => r.offset)).toEqual(records.map((_, i) => i));
    expect(new Set(records.map((r) => r.value.toString())).size).toBe(800);
    await Promise.all([w1.close(), w2.close()]);
  });

  it('refuses to open with a one-line LogUnavailableError when no server answers', async () => {
    const port = await freePort();
    const err = await openJetStreamLog({ servers: [`nats://127.0.0.1:${port}`], connectTimeoutMs: 1000 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(LogUnavailableError);
    expect(err).toMatchObject({ code: 'SLUICE_LOG_UNAVAILABLE', retriable: true });
    expect((err as Error).message).toBe(
      `the log at nats://127.0.0.1:${port} is unavailable: connection refused (is nats-server running there?)`,
    );
  });
});
