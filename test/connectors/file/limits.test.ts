/** The `file` source with many files and few handles, and with files it may not read. */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { appendFile, chmod, chown, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Driver, countSeq, exactlyOnce, messages, removeTempDirs, tempDir, type Event } from './helpers.js';

afterAll(removeTempDirs);

describe('file source: many files, few handles', () => {
  it('tails 1,000 files through 50 handles', async () => {
    const dir = await tempDir();
    for (let f = 0; f < 1000; f++) await writeFile(join(dir, `f${f}.log`), `line-${f} first\n`);
    const t0 = Date.now();
    const d = await Driver.open({ include: ['*.log'], max_open_files: 50, batch_max_lines: 5000 }, dir);
    const got = await d.collect(1000, 20_000);
    for (let f = 0; f < 1000; f += 10) await appendFile(join(dir, `f${f}.log`), `line-${1000 + f / 10} more\n`);
    for (const e of await d.collect(100, 20_000)) got.push(e);
    expect(exactlyOnce(countSeq(got), 1100)).toEqual([]);
    expect(d.source.openFileCount).toBeLessThanOrEqual(50);
    expect(Date.now() - t0).toBeLessThan(15_000);
    await d.close();
  });

  it('closes idle files after close_inactive_ms and reopens them when they grow', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'a.log'), 'line-0 a\nline-1 a\n');
    await writeFile(join(dir, 'b.log'), 'line-2 b\n');
    const d = await Driver.open({ include: ['*.log'], close_inactive_ms: 300, poll_interval_ms: 50 }, dir);
    const got = await d.collect(3);
    expect(d.source.openFileCount).toBe(2);
    for (const e of await d.settle(700)) got.push(e);
    expect(d.source.openFileCount).toBe(0);
    expect(d.source.stats.files_closed_inactive).toBe(2);
    await appendFile(join(dir, 'a.log'), 'line-3 a\n');
    for (const e of await d.collect(1)) got.push(e);
    expect(d.source.openFileCount).toBe(1);
    expect(exactlyOnce(countSeq(got), 4)).toEqual([]);
    await d.close();
  });

  it('new files stay tracked with rotate_wait_ms: 0 (they are not mistaken for rotated ones)', async () => {
    const dir = await tempDir();
    const d = await Driver.open({ include: ['*.log'], rotate_wait_ms: 0 }, dir);
    await writeFile(join(dir, 'a.log'), 'line-0 a\nline-1 a\n');
    const got = await d.settle(400);
    expect(exactlyOnce(countSeq(got), 2)).toEqual([]);
    expect(d.source.fileCount).toBe(1);
    await d.close();
  });

  it('reads 40 files through 3 open handles, including files growing while closed', async () => {
    const dir = await tempDir();
    let n = 0;
    const write = async (f: number, count: number): Promise<void> => {
      let s = '';
      for (let i = 0; i < count; i++) s += `line-${n++} file ${f}\n`;
      await appendFile(join(dir, `f${f}.log`), s);
    };
    for (let f = 0; f < 40; f++) await write(f, 50);
    const d = await Driver.open({ include: ['*.log'], max_open_files: 3, batch_max_lines: 70 }, dir);
    const got: Event[] = [];
    let maxOpen = 0;
    for (let round = 0; round < 3; round++) {
      for (;;) {
        const b = await d.next(300);
        maxOpen = Math.max(maxOpen, d.source.openFileCount);
        if (b === null) break;
        for (const r of b.records) got.push(r.value as Event);
      }
      if (round < 2) for (let f = 0; f < 40; f += 3) await write(f, 7);
    }
    expect(exactlyOnce(countSeq(got), n)).toEqual([]);
    expect(maxOpen).toBeLessThanOrEqual(3);
    expect(d.source.fileCount).toBe(40);
    await d.close();
  });
});

/**
 * The permission scenario; run as a user chmod can stop (not root). Self-contained: as root it is
 * sent, as text, to a child process running as `nobody`.
 */
async function permissionScenario(
  dir: string,
  FileSourceImpl: typeof import('../../../connectors/file/index.js').FileSource,
  chmodSecret: (mode: number) => Promise<void>,
  appendSecret: (text: string) => Promise<void>,
) {
  const logs: string[] = [];
  const config = { include: ['*.log'], poll_interval_ms: 20, rotate_wait_ms: 50 };
  const start = async (position: unknown) => {
    const ac = new AbortController();
    const src = new FileSourceImpl(config, { pipeline: 't', baseDir: dir, signal: ac.signal, log: (l, m) => logs.push(`${l}: ${m}`) });
    await src.open(position);
    let position2 = position;
    const out: string[] = [];
    const take = (b: Awaited<ReturnType<typeof src.read>>) => {
      position2 = b!.position;
      for (const r of b!.records) out.push((r.value as { message: string }).message);
    };
    const readUntil = async (n: number, ms: number, pending?: ReturnType<typeof src.read>) => {
      out.length = 0;
      if (pending !== undefined) take(await pending);
      const deadline = Date.now() + ms;
      while (out.length < n && Date.now() < deadline) take(await src.read());
      return [...out];
    };
    return { src, readUntil, take, position: () => position2, stop: async () => (ac.abort(), await src.close()) };
  };
  const a = await start(undefined);
  const first = await a.readUntil(1, 2000);
  const unreadable = a.src.stats.unreadable_files;
  const metric = a.src.metrics().find((m) => m.name === 'errors_total' && m.labels?.reason === 'permission')?.value;
  await chmodSecret(0o644);
  const later = await a.readUntil(1, 5000);
  await a.stop();
  // Unreadable when the source restarts, for longer than rotate_wait_ms: its offset is kept.
  await appendSecret('secret-2\n');
  await chmodSecret(0o000);
  const b = await start(a.position());
  b.take(await b.src.read()); // the batch that commits the start
  const pending = b.src.read(); // waits: the only file with news cannot be read
  await new Promise((r) => setTimeout(r, 300));
  await chmodSecret(0o644);
  const afterRestart = await b.readUntil(1, 5000, pending);
  await b.stop();
  return { first, later, unreadable, metric, afterRestart, logs };
}

describe('file source: unreadable files', () => {
  it('logs a file it may not read, counts it, goes on with the others, and reads it once it may', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'ok.log'), 'readable\n');
    await writeFile(join(dir, 'secret.log'), 'secret\n');
    await chmod(join(dir, 'secret.log'), 0o000);
    if (process.getuid?.() !== 0) {
      const { FileSource } = await import('../../../connectors/file/index.js');
      const secret = join(dir, 'secret.log');
      const r = await permissionScenario(dir, FileSource, (mode) => chmod(secret, mode), (text) => appendFile(secret, text));
      expect(r.first).toEqual(['readable']);
      expect(r.unreadable).toBe(1);
      expect(r.metric).toBe(1);
      expect(r.logs.join('\n')).toMatch(/secret\.log: permission denied/);
      expect(r.later).toEqual(['secret']);
      expect(r.afterRestart).toEqual(['secret-2']);
      return;
    }
    // As root chmod 000 does not stop reads: run the scenario in a child as `nobody`, on the
    // compiled source (npm run build). Without it, or without that user, there is no test.
    const dist = join(process.cwd(), 'dist/connectors/file/index.js');
    if (!existsSync(dist)) return expect.soft(existsSync(dist), 'run `npm run build` first: the permission test runs the compiled source as nobody').toBe(true);
    await chmod(dir, 0o777);
    for (const f of ['ok.log', 'secret.log']) await chown(join(dir, f), 65534, 65534);
    const script = `
      import { appendFile, chmod } from 'node:fs/promises';
      const { FileSource } = await import(${JSON.stringify(dist)});
      const scenario = ${permissionScenario.toString()};
      const secret = ${JSON.stringify(join(dir, 'secret.log'))};
      const r = await scenario(${JSON.stringify(dir)}, FileSource, (mode) => chmod(secret, mode), (text) => appendFile(secret, text));
      process.stdout.write(JSON.stringify(r));
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { uid: 65534, gid: 65534, cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((r) => child.on('exit', r));
    expect(code, err).toBe(0);
    const r = JSON.parse(out) as Awaited<ReturnType<typeof permissionScenario>>;
    expect(r.first).toEqual(['readable']);
    expect(r.unreadable).toBe(1);
    expect(r.metric).toBe(1);
    expect(r.logs.join('\n')).toMatch(/secret\.log: permission denied \(EACCES\)/);
    expect(r.later).toEqual(['secret']);
    expect(r.afterRestart).toEqual(['secret-2']);
  });

  it('a file that vanishes before it is read is forgotten without an error', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'a.log'), 'a\n');
    const d = await Driver.open({ include: ['*.log'] }, dir);
    expect(messages(await d.settle(200))).toEqual(['a']);
    const { unlink } = await import('node:fs/promises');
    await writeFile(join(dir, 'b.log'), 'b\n');
    await unlink(join(dir, 'b.log'));
    await writeFile(join(dir, 'c.log'), 'c\n');
    // b.log may have been opened before it was deleted: then its line is read through the handle.
    expect(messages(await d.settle(300)).filter((m) => m !== 'b')).toEqual(['c']);
    expect(d.logs.filter((l) => !l.startsWith('info'))).toEqual([]);
    await d.close();
  });
});
