/**
 * The `file` source under rotation, truncation, deletion and inode reuse, with writers producing
 * lines continuously; and restarts across them. Every line must arrive exactly once.
 */
import { appendFile, copyFile, readFile, rename, stat, truncate, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Driver, countSeq, exactlyOnce, messages, removeTempDirs, sleep, tempDir, type Event } from './helpers.js';
import { LineWriter } from './writer.js';

afterAll(removeTempDirs);

function lines(from: number, to: number, tag = 'line'): string {
  let s = '';
  for (let i = from; i < to; i++) s += `${tag}-${i} ${'x'.repeat(40)}\n`;
  return s;
}

/** Reads while `during` runs, then until the source is quiet. */
async function readWhile(d: Driver, during: Promise<void>): Promise<Event[]> {
  const out: Event[] = [];
  let done = false;
  void during.then(() => (done = true));
  while (!done) {
    const b = await d.next(50);
    if (b !== null) for (const r of b.records) out.push(r.value as Event);
  }
  await during;
  for (const e of await d.settle(600)) out.push(e);
  return out;
}

/** Rotates `times` times, `ms` apart, then stops the writer. */
async function rotateEvery(w: LineWriter, ms: number, times: number, rotate: () => void): Promise<void> {
  for (let i = 0; i < times; i++) {
    await sleep(ms);
    rotate();
  }
  await sleep(ms);
  w.stop();
}

function entries(position: unknown): { path: string; offset: number; gone?: boolean }[] {
  return Object.values((position as { files: Record<string, { path: string; offset: number; gone?: boolean }> }).files);
}

describe('file source: rotation under continuous writes', () => {
  it('rename+create: the renamed file is read to its end (the writer goes on into it for a while), then released', async () => {
    const dir = await tempDir();
    const path = join(dir, 'app.log');
    const w = new LineWriter(path);
    // Only the live name is included: rotated files are out of the globs.
    const d = await Driver.open({ include: ['app.log'], rotate_wait_ms: 150, batch_max_lines: 500 }, dir);
    w.start(20, 2);
    const got = await readWhile(
      d,
      rotateEvery(w, 120, 6, () => w.rotateRename(40)),
    ).finally(() => w.close());
    expect(w.next).toBeGreaterThan(2000);
    expect(exactlyOnce(countSeq(got), w.next)).toEqual([]);
    expect(d.source.stats.rotated_files_drained).toBe(6);
    // Rotated files read to their end are released and pruned from the position.
    expect(entries(d.position).map((e) => e.path)).toEqual([path]);
    await d.close();
  });

  it('rename+create into names the globs match: the same inode is the same stream', async () => {
    const dir = await tempDir();
    const w = new LineWriter(join(dir, 'app.log'));
    const d = await Driver.open({ include: ['app.log*'], batch_max_lines: 500 }, dir);
    w.start(20, 2);
    const got = await readWhile(
      d,
      rotateEvery(w, 120, 5, () => w.rotateRename(30)),
    ).finally(() => w.close());
    expect(exactlyOnce(countSeq(got), w.next)).toEqual([]);
    await d.close();
  });

  it('copytruncate: the copy (matched by the globs) continues the stream; the truncated file starts over', async () => {
    const dir = await tempDir();
    const w = new LineWriter(join(dir, 'app.log'));
    const d = await Driver.open({ include: ['app.log*'], batch_max_lines: 300 }, dir);
    w.start(20, 2);
    const got = await readWhile(
      d,
      rotateEvery(w, 120, 6, () => w.rotateCopyTruncate()),
    ).finally(() => w.close());
    expect(w.next).toBeGreaterThan(2000);
    expect(exactlyOnce(countSeq(got), w.next)).toEqual([]);
    expect(d.source.stats.file_truncations).toBe(6);
    await d.close();
  });

  it('both styles in turn, every 60 ms, with a reader that falls behind: nothing lost, repeated or garbled', async () => {
    const dir = await tempDir();
    const w = new LineWriter(join(dir, 'app.log'), 60);
    const d = await Driver.open({ include: ['app.log*'], batch_max_lines: 100, rotate_wait_ms: 300, poll_interval_ms: 50 }, dir);
    w.start(10, 5);
    let style = 0;
    const rotator = setInterval(() => (style++ % 2 === 0 ? w.rotateRename(30) : w.rotateCopyTruncate()), 60);
    const got: Event[] = [];
    const t0 = Date.now();
    while (Date.now() - t0 < 3000) {
      const b = await d.next(50);
      if (b !== null) for (const r of b.records) got.push(r.value as Event);
      await sleep(Math.random() * 150); // the pipeline is busy: files are not read meanwhile
    }
    clearInterval(rotator);
    w.stop();
    for (const e of await d.settle(1500)) got.push(e);
    w.close();
    expect(got.filter((e) => !/^line-\d+ x{60}$/.test(e.message!))).toEqual([]);
    expect(exactlyOnce(countSeq(got), w.next)).toEqual([]);
    expect(w.rotations).toBeGreaterThan(20);
    await d.close();
  });

  it('copytruncate while the source is slow to read: lines in the copy are not lost', async () => {
    const dir = await tempDir();
    const w = new LineWriter(join(dir, 'app.log'));
    const d = await Driver.open({ include: ['app.log*'], batch_max_lines: 50 }, dir);
    w.write(500);
    await d.next(1000); // 50 lines read, 450 unread when the file is truncated
    w.rotateCopyTruncate();
    w.write(100);
    const got = [...((d.batches[0]?.records.map((r) => r.value) as Event[]) ?? []), ...(await d.settle(400))];
    w.close();
    expect(exactlyOnce(countSeq(got), 600)).toEqual([]);
    expect(d.source.stats.copies_continued).toBe(1);
    await d.close();
  });
});

describe('file source: truncation, deletion, inode reuse', () => {
  it('truncation in place is noticed and the file is read again from 0, counted', async () => {
    const dir = await tempDir();
    const file = join(dir, 'a.log');
    await writeFile(file, lines(0, 100, 'old'));
    const d = await Driver.open({ include: ['a.log'] }, dir);
    expect((await d.settle(200)).length).toBe(100);
    await truncate(file, 0);
    await appendFile(file, lines(0, 10, 'new'));
    expect(messages(await d.collect(10, 3000)).map((m) => m.split(' ')[0])).toEqual(Array.from({ length: 10 }, (_, i) => `new-${i}`));
    expect(d.source.stats.file_truncations).toBe(1);
    expect(await d.settle(200)).toEqual([]);
    await d.close();
  });

  it('truncated and refilled past the old size before the source looks: the new content is read whole', async () => {
    const dir = await tempDir();
    const file = join(dir, 'a.log');
    await writeFile(file, lines(0, 50, 'old'));
    const d = await Driver.open({ include: ['a.log'] }, dir);
    expect((await d.settle(200)).length).toBe(50);
    // No read() calls meanwhile: the file is rewritten with more bytes than were read.
    await writeFile(file, lines(0, 200, 'new'));
    const got = await d.settle(300);
    expect(got.length).toBe(200);
    expect(got.every((e) => e.message!.startsWith('new-'))).toBe(true);
    await d.close();
  });

  it('a deleted file still open is read to its end, then its entry is pruned', async () => {
    const dir = await tempDir();
    const file = join(dir, 'a.log');
    await writeFile(file, lines(0, 10));
    const d = await Driver.open({ include: ['a.log'], rotate_wait_ms: 100 }, dir);
    expect((await d.settle(200)).length).toBe(10);
    await appendFile(file, lines(10, 300));
    await unlink(file); // before the source read those lines
    const counts = countSeq(await d.settle(500));
    expect([...counts.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: 290 }, (_, i) => i + 10));
    expect([...counts.values()].every((c) => c === 1)).toBe(true);
    expect(entries(d.position)).toEqual([]);
    expect(d.source.stats.rotated_files_drained).toBe(1);
    await d.close();
  });

  it('a saved entry with this inode but other first bytes (inode reuse) is not resumed', async () => {
    const dir = await tempDir();
    const file = join(dir, 'a.log');
    await writeFile(file, lines(0, 20));
    const st = await stat(file, { bigint: true });
    // A position saved for an earlier file that had the same inode.
    const position = { version: 1, files: { [`${st.dev}:${st.ino}:00000000deadbeef`]: { path: file, offset: 100, fp_bytes: 16 } } };
    const d = await Driver.open({ include: ['a.log'] }, dir, position);
    expect(exactlyOnce(countSeq(await d.settle(200)), 20)).toEqual([]);
    expect(d.source.stats.file_truncations).toBe(1);
    await d.close();
  });

  it('a file deleted and another created (the inode is often reused) while stopped: the new one is read whole', async () => {
    const dir = await tempDir();
    const file = join(dir, 'a.log');
    await writeFile(file, lines(0, 300, 'old'));
    const d = await Driver.open({ include: ['a.log'] }, dir);
    await d.settle(200);
    const pos = d.position;
    await d.close();
    const before = await stat(file);
    await unlink(file);
    await writeFile(file, lines(0, 400, 'new')); // longer than the saved offset
    const reused = (await stat(file)).ino === before.ino;
    const d2 = await Driver.open({ include: ['a.log'] }, dir, pos);
    const got = await d2.settle(300);
    expect(got.length, `inode reused: ${reused}`).toBe(400);
    expect(got.every((e) => e.message!.startsWith('new-'))).toBe(true);
    await d2.close();
  });
});

describe('file source: rotation edge cases', () => {
  it('a partial last line of a rotated file is emitted when the file is released', async () => {
    const dir = await tempDir();
    const file = join(dir, 'app.log');
    await writeFile(file, 'whole\nno-newline-yet');
    const d = await Driver.open({ include: ['app.log'], rotate_wait_ms: 100, partial_line_timeout_ms: 0 }, dir);
    expect(messages(await d.settle(200))).toEqual(['whole']);
    await rename(file, `${file}.1`);
    await writeFile(file, 'fresh\n');
    expect(messages(await d.settle(500)).sort()).toEqual(['fresh', 'no-newline-yet']);
    expect(d.source.stats.partial_lines_flushed).toBe(1);
    await d.close();
  });

  it('a file rotated while its handle was closed (max_open_files) is found by inode and read to its end', async () => {
    const dir = await tempDir();
    const a = join(dir, 'a.log');
    const b = join(dir, 'b.log');
    await writeFile(a, lines(0, 10));
    await writeFile(b, lines(1000, 1010));
    const d = await Driver.open({ include: ['*.log'], max_open_files: 1, rotate_wait_ms: 100 }, dir);
    expect((await d.settle(200)).length).toBe(20);
    // One of the two has no handle now; rotate both, with lines written before the rename.
    await appendFile(a, lines(10, 20));
    await appendFile(b, lines(1010, 1020));
    await rename(a, join(dir, 'a.old'));
    await rename(b, join(dir, 'b.old'));
    const counts = countSeq(await d.settle(600));
    expect([...counts.keys()].sort((x, y) => x - y)).toEqual([...Array.from({ length: 10 }, (_, i) => i + 10), ...Array.from({ length: 10 }, (_, i) => i + 1010)]);
    expect([...counts.values()].every((c) => c === 1)).toBe(true);
    expect(entries(d.position)).toEqual([]);
    await d.close();
  });
});

describe('file source: copies and restarts across rotation', () => {
  it('a copy of a file being read (same first bytes) is not read twice', async () => {
    const dir = await tempDir();
    const file = join(dir, 'a.log');
    await writeFile(file, lines(0, 100));
    const d = await Driver.open({ include: ['a.log*'] }, dir);
    expect((await d.settle(200)).length).toBe(100);
    await copyFile(file, join(dir, 'a.log.bak'));
    await appendFile(file, lines(100, 110));
    const counts = countSeq(await d.settle(300));
    expect([...counts.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: 10 }, (_, i) => i + 100));
    expect([...counts.values()].every((c) => c === 1)).toBe(true);
    expect(d.source.stats.duplicates_ignored).toBe(1);
    await d.close();
  });

  it('a copy seen while still empty (cp creates the file, then writes it) is not read twice', async () => {
    const dir = await tempDir();
    const file = join(dir, 'a.log');
    await writeFile(file, lines(0, 100));
    const d = await Driver.open({ include: ['a.log*'] }, dir);
    expect((await d.settle(200)).length).toBe(100);
    await writeFile(join(dir, 'a.log.bak'), '');
    expect(await d.settle(200)).toEqual([]);
    await writeFile(join(dir, 'a.log.bak'), await readFile(file));
    await appendFile(file, lines(100, 110));
    const counts = countSeq(await d.settle(300));
    expect([...counts.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: 10 }, (_, i) => i + 100));
    expect([...counts.values()].every((c) => c === 1)).toBe(true);
    expect(d.source.stats.duplicates_ignored).toBe(1);
    await d.close();
  });

  it('rotated by rename while stopped: the rest of the renamed file is read from its saved offset', async () => {
    const dir = await tempDir();
    const file = join(dir, 'app.log');
    await writeFile(file, lines(0, 100));
    const cfg = { include: ['app.log'], rotate_wait_ms: 100 };
    const d = await Driver.open(cfg, dir);
    await d.settle(200);
    const pos = d.position;
    await d.close();
    await appendFile(file, lines(100, 150));
    await rename(file, `${file}.1`);
    await writeFile(file, lines(150, 170));
    const d2 = await Driver.open(cfg, dir, pos);
    const counts = countSeq(await d2.settle(500));
    expect([...counts.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: 70 }, (_, i) => i + 100));
    expect([...counts.values()].every((c) => c === 1)).toBe(true);
    // Once read to its end the rotated file is released.
    expect(entries(d2.position).map((e) => e.path)).toEqual([file]);
    await d2.close();
  });

  it('copytruncated while stopped: the copy continues from the saved offset', async () => {
    const dir = await tempDir();
    const file = join(dir, 'app.log');
    await writeFile(file, lines(0, 100));
    const cfg = { include: ['app.log*'] };
    const d = await Driver.open(cfg, dir);
    await d.settle(200);
    const pos = d.position;
    await d.close();
    await appendFile(file, lines(100, 150));
    await copyFile(file, `${file}.1`);
    await truncate(file, 0);
    await appendFile(file, lines(150, 170));
    const d2 = await Driver.open(cfg, dir, pos);
    const got = await d2.settle(400);
    expect(countSeq(got).size).toBe(70);
    expect([...countSeq(got).entries()].filter(([n, c]) => n < 100 || c !== 1)).toEqual([]);
    await d2.close();
  });

  it('restarting from every committed position during rotations loses and repeats nothing', async () => {
    const dir = await tempDir();
    const w = new LineWriter(join(dir, 'app.log'));
    const cfg = { include: ['app.log'], rotate_wait_ms: 100, batch_max_lines: 200 };
    let d = await Driver.open(cfg, dir);
    const committed: Event[] = [];
    w.start(10, 2);
    for (let round = 0; round < 8; round++) {
      const batches = [];
      for (let i = 0; i < 3; i++) {
        const b = await d.next(200);
        if (b !== null) batches.push(b);
        if (round % 2 === 0 && i === 1) w.rotateRename(15);
      }
      if (batches.length === 0) continue;
      // All but the last batch are committed: the crash comes before the last one's commit.
      const keep = batches.length > 1 ? batches.slice(0, -1) : batches;
      for (const b of keep) committed.push(...(b.records.map((r) => r.value) as Event[]));
      await d.close();
      d = await Driver.open(cfg, dir, keep.at(-1)!.position);
    }
    w.stop();
    await sleep(50);
    w.close();
    committed.push(...(await d.settle(600)));
    expect(exactlyOnce(countSeq(committed), w.next)).toEqual([]);
    await d.close();
  });
});
