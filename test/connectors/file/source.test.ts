/** The `file` source driven directly (open / read / close) on real files: reading and framing. */
import { appendFile, mkdir, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Driver, countSeq, exactlyOnce, messages, removeTempDirs, sleep, tempDir } from './helpers.js';
import type { SourceBatch } from '../../../connectors/sdk.js';

afterAll(removeTempDirs);

function lines(from: number, to: number, pad = 20): string {
  let s = '';
  for (let i = from; i < to; i++) s += `line-${i} ${'x'.repeat(pad)}\n`;
  return s;
}

describe('file source: finding files', () => {
  it('reads existing files, picks up new ones as they appear, and leaves out excluded and compressed ones', async () => {
    const dir = await tempDir();
    await mkdir(join(dir, 'logs'));
    await writeFile(join(dir, 'logs', 'a.log'), 'a1\na2\n');
    await writeFile(join(dir, 'logs', 'skip.log'), 'nope\n');
    await writeFile(join(dir, 'logs', 'a.log.1.gz'), 'not really gzip\n');
    await writeFile(join(dir, 'logs', 'notes.txt'), 'nope\n');
    const d = await Driver.open({ include: ['logs/*.log*'], exclude: ['skip.*'] }, dir);
    const first = await d.settle(200);
    expect(messages(first).sort()).toEqual(['a1', 'a2']);
    await writeFile(join(dir, 'logs', 'b.log'), 'b1\n');
    await mkdir(join(dir, 'logs', 'deeper'));
    await writeFile(join(dir, 'logs', 'deeper', 'c.log'), 'too deep\n');
    expect(messages(await d.collect(1, 3000))).toEqual(['b1']);
    expect(await d.settle(200)).toEqual([]);
    await d.close();
  });

  it('finds files in subdirectories with **, and directories created later', async () => {
    const dir = await tempDir();
    const d = await Driver.open({ include: [`${dir}/**/*.log`] }, '/');
    await mkdir(join(dir, 'x', 'y'), { recursive: true });
    await writeFile(join(dir, 'x', 'y', 'deep.log'), 'deep\n');
    expect(messages(await d.collect(1, 3000))).toEqual(['deep']);
    await d.close();
  });

  it('start_at: end skips what files hold at the first start, not what appears later', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'a.log'), 'old1\nold2\npartial-so-far');
    const d = await Driver.open({ include: ['*.log'], start_at: 'end' }, dir);
    // The first batch pins the start in the position, records or not.
    const pin = await d.next(1000);
    expect(pin?.records).toEqual([]);
    await appendFile(join(dir, 'a.log'), '-done\nnew\n');
    await writeFile(join(dir, 'b.log'), 'b-from-start\n');
    const got = messages(await d.collect(3, 3000)).sort();
    // The line being written at the start is taken whole.
    expect(got).toEqual(['b-from-start', 'new', 'partial-so-far-done']);
    await d.close();
    // A restart from the committed position does not apply start_at again.
    await appendFile(join(dir, 'a.log'), 'after-restart\n');
    const d2 = await Driver.open({ include: ['*.log'], start_at: 'end' }, dir, d.position);
    expect(messages(await d2.settle(300))).toEqual(['after-restart']);
    await d2.close();
  });

  it('ignore_older_ms: old files start at their end', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'old.log'), 'ancient\n');
    const { utimes } = await import('node:fs/promises');
    const past = new Date(Date.now() - 3_600_000);
    await utimes(join(dir, 'old.log'), past, past);
    await writeFile(join(dir, 'fresh.log'), 'fresh\n');
    const d = await Driver.open({ include: ['*.log'], ignore_older_ms: 60_000 }, dir);
    expect(messages(await d.settle(200))).toEqual(['fresh']);
    await appendFile(join(dir, 'old.log'), 'appended\n');
    expect(messages(await d.collect(1, 3000))).toEqual(['appended']);
    await d.close();
  });
});

describe('file source: framing and events', () => {
  it('text events carry message, file, host and the ingest time', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'a.log'), 'hello\r\n\nworld\n');
    const before = Date.now();
    const d = await Driver.open({ include: ['a.log'] }, dir);
    const b = (await d.next(2000))!;
    expect(b.records.map((r) => r.value)).toEqual([
      { timestamp: expect.any(String), host: hostname(), file: join(dir, 'a.log'), message: 'hello' },
      { timestamp: expect.any(String), host: hostname(), file: join(dir, 'a.log'), message: 'world' },
    ]);
    expect(b.records[0]!.timestamp).toBeGreaterThanOrEqual(before);
    expect(Date.parse((b.records[0]!.value as { timestamp: string }).timestamp)).toBe(b.records[0]!.timestamp);
    await d.close();
  });

  it('json and logfmt: parsed fields; a line that does not parse keeps its text and says why', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'j.log'), '{"level":"info","msg":"ok"}\nnot json\n');
    await writeFile(join(dir, 'k.log'), 'level=warn msg="a b"\nmsg="open\n');
    const j = await Driver.open({ include: ['j.log'], format: 'json' }, dir);
    const je = await j.settle(200);
    expect(je[0]).toMatchObject({ level: 'info', msg: 'ok', file: join(dir, 'j.log') });
    expect(je[1]).toMatchObject({ message: 'not json', parse_error: expect.stringMatching(/invalid JSON/) });
    expect(j.source.stats.parse_errors).toBe(1);
    await j.close();
    const k = await Driver.open({ include: ['k.log'], format: 'logfmt' }, dir);
    const ke = await k.settle(200);
    expect(ke[0]).toMatchObject({ level: 'warn', msg: 'a b' });
    expect(ke[1]).toMatchObject({ message: 'msg="open', parse_error: expect.stringMatching(/invalid logfmt/) });
    await k.close();
  });

  it('replaces and counts invalid UTF-8', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'a.log'), Buffer.from([0x6f, 0x6b, 0x0a, 0x62, 0xff, 0x64, 0x0a, 0xc3, 0xa9, 0x0a]));
    const d = await Driver.open({ include: ['a.log'] }, dir);
    expect(messages(await d.settle(200))).toEqual(['ok', 'b\ufffdd', 'é']);
    expect(d.source.stats.invalid_utf8_lines).toBe(1);
    await d.close();
  });

  it('cuts lines longer than max_line_bytes, counts them, and discards their rest even across reads and restarts', async () => {
    const dir = await tempDir();
    const file = join(dir, 'a.log');
    await writeFile(file, `short\n${'L'.repeat(300)}`);
    const cfg = { include: ['a.log'], max_line_bytes: 100, read_buffer_bytes: 64 };
    const d = await Driver.open(cfg, dir);
    const got = await d.settle(200);
    expect(messages(got)).toEqual(['short', 'L'.repeat(100)]);
    expect(d.source.stats.truncated_lines).toBe(1);
    // The rest of the long line is still to be discarded: the position says so.
    const pos = d.position as { files: Record<string, { offset: number; skip?: boolean }> };
    expect(Object.values(pos.files)[0]).toMatchObject({ offset: 306, skip: true });
    await d.close();
    await appendFile(file, `${'M'.repeat(200)}\nafter\n`);
    const d2 = await Driver.open(cfg, dir, pos);
    expect(messages(await d2.settle(200))).toEqual(['after']);
    await d2.close();
  });

  it('holds a partial last line until its newline comes', async () => {
    const dir = await tempDir();
    const file = join(dir, 'a.log');
    await writeFile(file, 'one\ntw');
    const d = await Driver.open({ include: ['a.log'], partial_line_timeout_ms: 0 }, dir);
    expect(messages(await d.settle(300))).toEqual(['one']);
    await appendFile(file, 'o\r');
    expect(await d.settle(200)).toEqual([]);
    await appendFile(file, '\nthree\n');
    expect(messages(await d.collect(2, 3000))).toEqual(['two', 'three']);
    await d.close();
  });

  it('flushes a partial last line after partial_line_timeout_ms; what follows is a new line', async () => {
    const dir = await tempDir();
    const file = join(dir, 'a.log');
    await writeFile(file, 'stuck');
    const d = await Driver.open({ include: ['a.log'], partial_line_timeout_ms: 150 }, dir);
    const t0 = Date.now();
    expect(messages(await d.collect(1, 3000))).toEqual(['stuck']);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(100);
    expect(d.source.stats.partial_lines_flushed).toBe(1);
    await appendFile(file, '-rest\n');
    expect(messages(await d.collect(1, 3000))).toEqual(['-rest']);
    await d.close();
  });

  it('multiline with a start pattern, the last event flushed after timeout_ms', async () => {
    const dir = await tempDir();
    const file = join(dir, 'a.log');
    const trace = '2024-05-01 ERROR boom\njava.lang.IllegalStateException: x\n\tat a.b(C.java:1)\n\tat d.e(F.java:2)\n';
    await writeFile(file, `${trace}2024-05-01 INFO ok\n2024-05-01 WARN last\n  detail\n`);
    const d = await Driver.open({ include: ['a.log'], multiline: { start_pattern: '^\\d{4}-\\d{2}-\\d{2} ', timeout_ms: 150 } }, dir);
    const got = messages(await d.collect(3, 3000));
    expect(got).toEqual([trace.slice(0, -1), '2024-05-01 INFO ok', '2024-05-01 WARN last\n  detail']);
    await d.close();
  });

  it('multiline with a continuation pattern; a restart mid-event re-reads the whole event', async () => {
    const dir = await tempDir();
    const file = join(dir, 'a.log');
    await writeFile(file, 'first\n  cont1\nsecond\n  cont2\n');
    const cfg = { include: ['a.log'], multiline: { continuation_pattern: '^\\s', timeout_ms: 60_000 } };
    const d = await Driver.open(cfg, dir);
    expect(messages(await d.settle(200))).toEqual(['first\n  cont1']);
    // "second" is pending: the position points at its start.
    const pos = d.position as { files: Record<string, { offset: number }> };
    expect(Object.values(pos.files)[0]!.offset).toBe('first\n  cont1\n'.length);
    await d.close();
    await appendFile(file, '  cont3\nthird\n');
    const d2 = await Driver.open(cfg, dir, pos);
    expect(messages(await d2.settle(200))).toEqual(['second\n  cont2\n  cont3']);
    await d2.close();
  });

  it('reads no more than batch_max_lines / batch_max_bytes a batch', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'a.log'), lines(0, 1000));
    const d = await Driver.open({ include: ['a.log'], batch_max_lines: 64, batch_max_bytes: 100_000 }, dir);
    const got = await d.settle(200);
    expect(exactlyOnce(countSeq(got), 1000)).toEqual([]);
    expect(Math.max(...d.batches.map((b) => b.records.length))).toBeLessThanOrEqual(64);
    const e = await Driver.open({ include: ['a.log'], batch_max_bytes: 1000 }, dir);
    const got2 = await e.settle(200);
    expect(got2.length).toBe(1000);
    // Lines are 27 to 29 bytes: a batch stops at the first line that reaches 1000 bytes.
    expect(Math.max(...e.batches.map((b) => b.records.length))).toBeLessThanOrEqual(38);
    await d.close();
    await e.close();
  });

  it('does not read ahead: files are read only when read() is called', async () => {
    const dir = await tempDir();
    const file = join(dir, 'a.log');
    await writeFile(file, lines(0, 10_000));
    const d = await Driver.open({ include: ['a.log'], batch_max_lines: 100, read_buffer_bytes: 4096 }, dir);
    await d.next(1000);
    await sleep(200); // the runtime is busy: no read() call
    // One batch read, and at most one read buffer beyond it.
    const pos = d.position as { files: Record<string, { offset: number }> };
    expect(Object.values(pos.files)[0]!.offset).toBe(Buffer.byteLength(lines(0, 100)));
    expect(d.source.stats.events).toBe(100);
    await d.close();
  });
});

describe('file source: restart from a position', () => {
  it('resumes exactly after the last committed batch, mid-file', async () => {
    const dir = await tempDir();
    const file = join(dir, 'a.log');
    await writeFile(file, lines(0, 1000));
    const cfg = { include: ['a.log'], batch_max_lines: 100 };
    const d = await Driver.open(cfg, dir);
    const kept: ReturnType<typeof messages> = [];
    for (let i = 0; i < 3; i++) {
      const b = (await d.next(1000))!;
      // Batch 3 is read but "not committed": the crash loses it.
      if (i < 2) kept.push(...messages(b.records.map((r) => r.value) as never));
    }
    const committed = d.batches[1]!.position;
    await d.close();
    await appendFile(file, lines(1000, 1200));
    const d2 = await Driver.open(cfg, dir, committed);
    const rest = await d2.settle(200);
    const all = [...kept.map((message) => ({ message })), ...rest];
    expect(exactlyOnce(countSeq(all), 1200)).toEqual([]);
    await d2.close();
  });

  it('a position entry whose size is beyond the file is a truncation: read again from 0', async () => {
    const dir = await tempDir();
    const file = join(dir, 'a.log');
    await writeFile(file, lines(0, 100));
    const d = await Driver.open({ include: ['a.log'] }, dir);
    await d.settle(200);
    const pos = d.position;
    await d.close();
    await writeFile(file, lines(0, 10)); // same first bytes, shorter
    const d2 = await Driver.open({ include: ['a.log'] }, dir, pos);
    expect(exactlyOnce(countSeq(await d2.settle(200)), 10)).toEqual([]);
    expect(d2.source.stats.file_truncations).toBe(1);
    await d2.close();
    expect((await stat(file)).size).toBe(Buffer.byteLength(lines(0, 10)));
  });
});

describe('file source: encoder chunks', () => {
  it("reuses a batch's chunks only after the runtime acked the batch, and never another batch's", async () => {
    const dir = await tempDir();
    const lines = Array.from({ length: 5000 }, (_, i) => `line ${String(i).padStart(6, '0')} ${'x'.repeat(80)}`);
    await writeFile(join(dir, 'a.log'), lines.join('\n') + '\n');
    const d = await Driver.open({ include: ['a.log'], batch_max_lines: 1000 }, dir);
    const texts = (b: SourceBatch): string[] => b.records.map((r) => Buffer.from(r.encoded as Uint8Array).toString('utf8'));
    const chunkOf = (b: SourceBatch): ArrayBufferLike => (b.records[0]!.encoded as Uint8Array).buffer;
    const b1 = (await d.next())!;
    const b2 = (await d.next())!;
    const t1 = texts(b1);
    const t2 = texts(b2);
    expect(chunkOf(b1)).not.toBe(chunkOf(b2));
    // An ack of something not read gives nothing back.
    await d.source.ack({ not: 'a position' });
    const b3 = (await d.next())!;
    expect([chunkOf(b1), chunkOf(b2)]).not.toContain(chunkOf(b3));
    expect(texts(b1)).toEqual(t1);
    // b1 is durable: its chunk is taken by the next batch, while b2's and b3's stay as they are.
    await d.source.ack(b1.position);
    const t3 = texts(b3);
    const b4 = (await d.next())!;
    expect(chunkOf(b4)).toBe(chunkOf(b1));
    expect(texts(b2)).toEqual(t2);
    expect(texts(b3)).toEqual(t3);
    // An ack covers the batches before it too.
    await d.source.ack(b3.position);
    const b5 = (await d.next())!;
    expect([chunkOf(b2), chunkOf(b3)]).toContain(chunkOf(b5));
    expect(texts(b4).map((t) => (JSON.parse(t) as { message: string }).message)).toEqual(lines.slice(3000, 4000));
    expect(texts(b5).map((t) => (JSON.parse(t) as { message: string }).message)).toEqual(lines.slice(4000, 5000));
    await d.close();
  });
});

describe('file source: read buffers', () => {
  it('frames every line intact when read buffers are reused, across reads, full batches and partial lines', async () => {
    const dir = await tempDir();
    // Lines of 1..3000 bytes: many cross a 64 KiB read, and batches fill mid-buffer.
    const lines = Array.from({ length: 3000 }, (_, i) => `${i}:${String.fromCharCode(97 + (i % 26)).repeat((i * 7919) % 3000)}`);
    await writeFile(join(dir, 'a.log'), lines.join('\n') + '\n');
    const d = await Driver.open({ include: ['a.log'], read_buffer_bytes: 65536, batch_max_lines: 37 }, dir);
    const got: string[] = [];
    while (got.length < lines.length) {
      const b = await d.next(2000);
      if (b === null) break;
      // Acked at once, as the runtime would once durable: chunks and read buffers go round fast.
      got.push(...messages(b.records.map((r) => r.value) as { message?: string }[]));
      await d.source.ack(b.position);
    }
    expect(got).toEqual(lines);
    await d.close();
  });
});
