/** The `file` sink's state: one 128-byte record rewritten in place; older states still read. */
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fileSink } from '../../../connectors/file/index.js';
import type { SinkBatch, SinkRecord, SinkValuesBatch, ValueSpans } from '../../../connectors/sdk.js';
import { removeTempDirs, tempDir } from './helpers.js';

afterAll(removeTempDirs);

function batch(from: number, n: number): SinkBatch {
  const records: SinkRecord[] = [];
  for (let o = from; o < from + n; o++) {
    const raw = Buffer.from(JSON.stringify({ n: o }));
    records.push({ topic: 't', partition: 0, offset: o, timestamp: 0, key: null, value: { n: o }, raw, headers: {} });
  }
  return { topic: 't', partition: 0, records, nextOffset: from + n };
}

const ctx = (dir: string) => ({ pipeline: 'p', baseDir: dir, signal: new AbortController().signal, log: () => undefined });

describe('file sink state', () => {
  it('is a fixed 128-byte JSON record, rewritten in place, and wins on reopen', async () => {
    const dir = await tempDir();
    const sink = fileSink.create({ path: 'out' }, ctx(dir));
    await sink.open();
    await sink.write(batch(0, 3));
    await sink.write(batch(3, 2));
    await sink.close();
    const statePath = join(dir, 'out', '.t-0.state.json');
    const text = await readFile(statePath, 'utf8');
    expect(text).toHaveLength(128);
    expect(JSON.parse(text)).toEqual({ length: (await stat(join(dir, 'out', 't-0.ndjson'))).size, next_offset: 5 });
    // Lines past the committed length (a run that died before its state write) are cut on open.
    await writeFile(join(dir, 'out', 't-0.ndjson'), '{"n":5}\n', { flag: 'a' });
    const again = fileSink.create({ path: 'out' }, ctx(dir));
    await again.open();
    expect(await again.committedOffset!('t', 0)).toBe(5);
    await again.write(batch(5, 1));
    await again.close();
    const lines = (await readFile(join(dir, 'out', 't-0.ndjson'), 'utf8')).trim().split('\n');
    expect(lines.map((l) => (JSON.parse(l) as { n: number }).n)).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('reads the unpadded state of earlier versions', async () => {
    const dir = await tempDir();
    const { mkdir } = await import('node:fs/promises');
    await mkdir(join(dir, 'out'));
    await writeFile(join(dir, 'out', 't-0.ndjson'), '{"n":0}\n{"n":1}\n{"n":2}\n');
    await writeFile(join(dir, 'out', '.t-0.state.json'), JSON.stringify({ length: 16, next_offset: 2 }));
    const sink = fileSink.create({ path: 'out' }, ctx(dir));
    await sink.open();
    expect(await sink.committedOffset!('t', 0)).toBe(2);
    await sink.write(batch(2, 2));
    await sink.close();
    const lines = (await readFile(join(dir, 'out', 't-0.ndjson'), 'utf8')).trim().split('\n');
    expect(lines).toEqual(['{"n":0}', '{"n":1}', '{"n":2}', '{"n":3}']);
    expect(JSON.parse(await readFile(join(dir, 'out', '.t-0.state.json'), 'utf8'))).toEqual({ length: 32, next_offset: 4 });
  });
});

describe('file sink, values only', () => {
  /** Values framed as a log batch frames them: bytes of other stuff around each, in `pieces` buffers. */
  function valuesBatch(from: number, values: string[], pieces: number): SinkValuesBatch {
    const spans: ValueSpans[] = [];
    const per = Math.ceil(values.length / pieces);
    let bytes = 0;
    for (let k = 0; k < values.length; k += per) {
      const part = values.slice(k, k + per);
      const chunks: Buffer[] = [Buffer.from('HEADER-BYTES')];
      const starts = new Uint32Array(part.length);
      const ends = new Uint32Array(part.length);
      let at = chunks[0]!.length;
      part.forEach((v, i) => {
        const frame = Buffer.from(`<${i % 10}${'#'.repeat(i % 4)}>`);
        chunks.push(frame);
        at += frame.length;
        const b = Buffer.from(v);
        chunks.push(b);
        starts[i] = at;
        ends[i] = at += b.length;
        bytes += b.length;
      });
      chunks.push(Buffer.from('TRAILER'));
      spans.push({ buf: Buffer.concat(chunks), starts, ends, count: part.length });
    }
    return { topic: 't', partition: 0, firstOffset: from, spans, bytes, nextOffset: from + values.length };
  }

  it('writes the same file as write(), from values spread over several buffers, and keeps the state', async () => {
    const values = Array.from({ length: 500 }, (_, i) => JSON.stringify({ n: i, pad: 'é'.repeat(i % 50) }));
    const viaRecords = await tempDir();
    const a = fileSink.create({ path: 'out' }, ctx(viaRecords));
    await a.open();
    const viaValues = await tempDir();
    const b = fileSink.create({ path: 'out' }, ctx(viaValues));
    await b.open();
    for (const [from, n, pieces] of [[0, 1, 1], [1, 200, 3], [201, 0, 1], [201, 299, 7]] as const) {
      const part = values.slice(from, from + n);
      const records: SinkRecord[] = part.map((v, i) => ({ topic: 't', partition: 0, offset: from + i, timestamp: 0, key: null, value: JSON.parse(v), raw: Buffer.from(v), headers: {} }));
      await a.write({ topic: 't', partition: 0, records, nextOffset: from + n });
      await b.writeValues!(valuesBatch(from, part, pieces));
    }
    await a.close();
    await b.close();
    const file = (dir: string): Promise<string> => readFile(join(dir, 'out', 't-0.ndjson'), 'utf8');
    expect(await file(viaValues)).toBe(values.join('\n') + '\n');
    expect(await file(viaValues)).toBe(await file(viaRecords));
    const again = fileSink.create({ path: 'out' }, ctx(viaValues));
    await again.open();
    expect(await again.committedOffset!('t', 0)).toBe(500);
    await again.close();
  });
});
