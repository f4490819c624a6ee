/**
 * Log benchmark on the JetStream backend, against a private nats-server, beside two baselines
 * measured in the same run on the same server:
 *  - raw nats.js: one JetStream message per record, a window of 1 000 pending acks (the fastest
 *    pattern measured here for per-record publishing);
 *  - raw nats.js frames: the same bytes in ~1 MiB messages, window of 16 pending acks (the ceiling
 *    for packing records, without sluice's encoding and bookkeeping).
 *
 *   npm run bench -- log --backend jetstream [--bytes 256MiB] [--sizes 100,1024] [--batch 1000] [--inflight 8]
 */
import { connect, type JetStreamClient, type PubAck } from 'nats';

import { openJetStreamLog } from '../../core/log/jetstream/index.js';
import { startLogNats } from '../support/nats-log.js';
import { makeValue, median, timedAppends } from './log.js';
import { arg, machine, parseSize, peakRssMiB, rate, row, timed, type Figure } from './util.js';

async function windowed(n: number, window: number, publish: (i: number) => Promise<PubAck>): Promise<void> {
  const pending = new Set<Promise<unknown>>();
  for (let i = 0; i < n; i++) {
    const p = publish(i);
    pending.add(p);
    void p.then(() => pending.delete(p));
    if (pending.size >= window) await Promise.race(pending);
  }
  await Promise.all(pending);
}

export async function benchLogJetStream(args: string[]): Promise<string[]> {
  const total = parseSize(arg(args, 'bytes', '256MiB'));
  const sizes = arg(args, 'sizes', '100,1024').split(',').map(Number);
  const batch = Number(arg(args, 'batch', '1000'));
  const inflight = Number(arg(args, 'inflight', '8'));
  const rounds = Number(arg(args, 'rounds', '3'));
  // Per-record publishing is ~50x slower: give it a fixed share so a round stays short.
  const perRecordCount = Number(arg(args, 'per-record', '200000'));
  const server = await startLogNats();
  const lines: string[] = [
    `machine: ${machine()}`,
    `nats-server ${server.url} (private, file store, R1); ${total} bytes per case; sluice appends of ${batch} records, ${inflight} in flight, acks durable; median of ${rounds} rounds`,
  ];
  const nc = await connect({ servers: server.url });
  const js = nc.jetstream();
  const jsm = await nc.jetstreamManager();
  let streamNo = 0;
  const freshStream = async (): Promise<string> => {
    const name = `raw${streamNo++}`;
    await jsm.streams.add({ name, subjects: [`${name}.>`] });
    return name;
  };
  try {
    for (const size of sizes) {
      const raws: Figure[] = [];
      const frames: Figure[] = [];
      const appends: Figure[] = [];
      const reads: Figure[] = [];
      for (let round = 0; round < rounds; round++) {
        raws.push(await rawPerRecord(js, await freshStream(), size, perRecordCount));
        frames.push(await rawFrames(js, await freshStream(), size, total));
        const r = await sluiceRound(server.url, size, total, batch, inflight, round);
        appends.push(r.append);
        reads.push(r.read);
        for (const s of await jsm.streams.names().next()) if (s.startsWith('raw')) await jsm.streams.delete(s);
      }
      const raw = median(raws);
      const frame = median(frames);
      const append = median(appends);
      lines.push(row(raw), row(frame, raw), row(append, raw), row(median(reads), raw));
      lines.push(
        `  → sluice append ${(rate(append).recPerSec / rate(raw).recPerSec).toFixed(1)}× raw per-record publish, ` +
          `${((rate(append).mbPerSec / rate(frame).mbPerSec) * 100).toFixed(0)}% of raw 1 MiB frames' MB/s`,
      );
    }
  } finally {
    await nc.close();
    await server.stop();
  }
  lines.push(`peak RSS: ${peakRssMiB().toFixed(0)} MiB`);
  return lines;
}

function rawPerRecord(js: JetStreamClient, stream: string, size: number, count: number): Promise<Figure> {
  const values = Array.from({ length: 1000 }, (_, i) => makeValue(size, i));
  return timed(`raw nats.js, a message per record, window 1000, ${size} B`, count, count * size, () =>
    windowed(count, 1000, (i) => js.publish(`${stream}.x`, values[i % 1000]!)),
  );
}

function rawFrames(js: JetStreamClient, stream: string, size: number, total: number): Promise<Figure> {
  const perFrame = Math.floor((1024 * 1024 - 64 * 1024) / size);
  const frame = Buffer.alloc(perFrame * size);
  for (let i = 0; i < perFrame; i++) makeValue(size, i).copy(frame, i * size);
  const count = Math.floor(total / size);
  const frames = Math.ceil(count / perFrame);
  return timed(`raw nats.js, ~1 MiB messages, window 16, ${size} B`, frames * perFrame, frames * frame.length, () =>
    windowed(frames, 16, () => js.publish(`${stream}.x`, frame)),
  );
}

async function sluiceRound(
  url: string,
  size: number,
  total: number,
  batch: number,
  inflight: number,
  round: number,
): Promise<{ append: Figure; read: Figure }> {
  const log = await openJetStreamLog({ servers: [url], prefix: `bench${size}r${round}` });
  await log.createTopic('bench', { partitions: 1 });
  const count = Math.floor(total / size);
  const append = await timedAppends(log, `sluice append, jetstream, durable, ${size} B`, size, count, batch, inflight);
  let got = 0;
  const read = await timed(`sluice sequential read, jetstream, ${size} B`, count, count * size, async () => {
    let offset = 0;
    for (;;) {
      const r = await log.read('bench', 0, offset, { maxBytes: 1024 * 1024 });
      if (r.records.length === 0) break;
      got += r.records.length;
      offset = r.nextOffset;
    }
  });
  if (got !== count) throw new Error(`read back ${got} records, expected ${count}`);
  await log.deleteTopic('bench');
  await log.close();
  return { append, read };
}
