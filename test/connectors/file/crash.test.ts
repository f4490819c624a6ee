/**
 * Crash loop: a child `sluice run` (file source → topic → file sink) is SIGKILLed again and again
 * while a writer appends lines and rotates the log both ways (rename+create, copytruncate) —
 * also while sluice is down. At the end the sink holds every line written exactly once.
 * Needs `npm run build` (dist/). More kills: SLUICE_FILE_CRASH_RUNS=50.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { removeTempDirs, sleep, tempDir } from './helpers.js';
import { LineWriter } from './writer.js';

const MAIN = join(process.cwd(), 'dist/core/cli/main.js');
const RUNS = Number(process.env.SLUICE_FILE_CRASH_RUNS ?? 10);

const CONFIG = `version: 1
log: { data_dir: ./data }
admin: { listen: "127.0.0.1:0" }
topics:
  logs: { partitions: 2 }
pipelines:
  tail:
    source:
      type: file
      include: ["./logs/app.log*"]
      poll_interval_ms: 50
      rotate_wait_ms: 300
      batch_max_lines: 400
    topic: logs
    sinks:
      out: { type: file, path: ./out }
`;

afterAll(removeTempDirs);

/** Line numbers in the sink's output, with how often each is there. */
async function sinkCounts(dir: string): Promise<Map<number, number>> {
  const counts = new Map<number, number>();
  let files: string[] = [];
  try {
    files = (await readdir(join(dir, 'out'))).filter((f) => f.endsWith('.ndjson'));
  } catch {
    return counts;
  }
  for (const f of files) {
    for (const line of (await readFile(join(dir, 'out', f), 'utf8')).split('\n')) {
      if (line === '') continue;
      const m = /^line-(\d+) /.exec((JSON.parse(line) as { message: string }).message);
      if (m === null) throw new Error(`unexpected record ${line}`);
      counts.set(Number(m[1]), (counts.get(Number(m[1])) ?? 0) + 1);
    }
  }
  return counts;
}

function start(dir: string, level = 'warn') {
  const child = spawn(process.execPath, [MAIN, 'run', '-c', join(dir, 'pipelines.yaml')], {
    cwd: dir,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, SLUICE_LOG_LEVEL: level },
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.on('exit', (code, signal) => r({ code, signal })));
  return { child, exited, stderr: () => stderr };
}

describe('crash: file source → topic → file sink, killed with SIGKILL during rotations', () => {
  it.skipIf(!existsSync(MAIN))(`every line exactly once after ${RUNS} kills`, async () => {
    const dir = await tempDir('sluice-file-crash-');
    await mkdir(join(dir, 'logs'));
    await writeFile(join(dir, 'pipelines.yaml'), CONFIG);
    const w = new LineWriter(join(dir, 'logs', 'app.log'), 60);
    w.start(10, 5); // ~2,000 lines/s
    let style = 0;
    const rotator = setInterval(() => {
      if (style++ % 2 === 0) w.rotateRename(30);
      else w.rotateCopyTruncate();
    }, 250);
    const progress: number[] = [];
    try {
      for (let i = 0; i < RUNS; i++) {
        const run = start(dir);
        await sleep(400 + Math.random() * 900);
        run.child.kill('SIGKILL');
        const { signal, code } = await run.exited;
        if (signal !== 'SIGKILL') expect.fail(`run ${i} ended by itself (code ${code}): ${run.stderr()}`);
        const counts = await sinkCounts(dir);
        const repeated = [...counts].filter(([, c]) => c > 1).map(([n]) => n);
        expect(repeated.slice(0, 10), `repeated after kill ${i}`).toEqual([]);
        progress.push(counts.size);
        // Down for a moment too: rotations happen while nothing reads.
        await sleep(Math.random() * 300);
      }
    } finally {
      clearInterval(rotator);
      w.close();
    }
    const total = w.next;
    // The kills landed while lines were flowing.
    expect(progress.filter((n) => n > 0 && n < total).length, `lines in the sink after each kill: ${progress.join(', ')}`).toBeGreaterThanOrEqual(Math.min(RUNS, 5));
    const last = start(dir, 'info');
    const deadline = Date.now() + 30_000;
    let counts = await sinkCounts(dir);
    while (counts.size < total && Date.now() < deadline) {
      await sleep(200);
      counts = await sinkCounts(dir);
    }
    last.child.kill('SIGTERM');
    const { code } = await last.exited;
    expect(code, last.stderr()).toBe(0);
    counts = await sinkCounts(dir);
    const problems: string[] = [];
    for (let n = 0; n < total && problems.length < 20; n++) {
      const c = counts.get(n) ?? 0;
      if (c !== 1) problems.push(`line-${n}: ${c}`);
    }
    expect(problems, `of ${total} lines written (${w.rotations} rotations); log:\n${last.stderr().slice(-3000)}`).toEqual([]);
    expect(counts.size).toBe(total);
  }, 120_000);
});
