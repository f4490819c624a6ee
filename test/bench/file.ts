/**
 * File-tail benchmark: a file of ~100-byte text lines → `file` source → topic (1 partition, durable
 * commits) → `file` sink, lines/s until the sink holds every line, beside syslog-ng (Debian package
 * `syslog-ng-core`) following the same file into another file, in the same run. Then a latency run:
 * a writer thread appends 100,000 lines/s for 10 s, each carrying its write time, and a small
 * in-process sink records now − write time per record.
 *
 *   npm run bench -- file [--mbytes 1024] [--rounds 1] [--memory warm|cold|as-is] [--latency-seconds 10] [--latency-rate 100000]
 *
 * `--memory` sets the state of the machine's free memory at the start of each case, the same for
 * both (docs/performance.md, "the order effect was fresh pages"): on a VM whose host takes back free memory (free page
 * reporting), a page the VM has not touched for a while costs about ten times as much to write
 * the first time, and the log and sink write 4–5 bytes per input byte into new page-cache pages.
 * - warm (default): a child process touches and frees WARM_GIB (6) first, as a long-running
 *   server whose memory is full of page cache reuses its pages;
 * - cold: wait COLD_MS first, so every new page is fresh from the host;
 * - as-is: neither (the result then depends on what ran just before).
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, statSync, writeFileSync, writeSync, readSync } from 'node:fs';
import { freemem } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { openLocalLog } from '../../core/log/local/index.js';
import { parsePipelines } from '../../core/pipeline/config.js';
import { PipelineRuntime } from '../../core/pipeline/runtime.js';
import { pipelinesSchema } from '../../core/pipeline/setup.js';
import { builtinSinks, builtinSources } from '../../connectors/registry.js';
import type { Sink, SinkBatch, SinkDeclaration } from '../../connectors/sdk.js';
import { arg, fmt, machine, peakRssMiB, rate, row, tempDir, type Figure } from './util.js';

const LINE = 100; // bytes, LF included
const SHARED_CONF = '/work/shared/bench/syslog-ng-file-to-file.conf';
const quiet = { info: () => undefined, warn: (m: string) => console.error(m), error: (m: string) => console.error(m) };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** GiB touched and freed for `--memory warm`: 6, or half the free memory if that is less. */
const WARM_GIB = Math.max(1, Math.min(6, Math.floor(freemem() / 2 / 2 ** 30)));
/** How long this kind of VM takes to hand freed memory back to its host (measured: ~30 s). */
const COLD_MS = 45_000;
type Memory = 'warm' | 'cold' | 'as-is';

/** Brings free memory to the state `memory` names (see the top of this file). */
async function settleMemory(memory: Memory): Promise<void> {
  if (memory === 'cold') await sleep(COLD_MS);
  if (memory !== 'warm') return;
  const touch = `const b = []; for (let i = 0; i < ${WARM_GIB * 4}; i++) b.push(Buffer.alloc(256 << 20, 1));`;
  const r = spawnSync(process.execPath, ['-e', touch], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`warming memory failed (exit ${r.status})`);
}

/** A figure with the CPU time (user + system, every thread) the work took. */
type CpuFigure = Figure & { cpuSeconds: number };

/** CPU seconds a child process has used so far (utime + stime from /proc), or NaN. */
function childCpuSeconds(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14 and 15 of stat (utime, stime), counted from the state field (3) on.
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

function linesPerCpuSecond(f: CpuFigure): string {
  return `${fmt(f.records / f.cpuSeconds)} lines per CPU-second (${f.cpuSeconds.toFixed(1)} CPU-s)`;
}

function median<T extends Figure>(figs: T[]): T {
  return [...figs].sort((a, b) => a.seconds - b.seconds)[Math.floor(figs.length / 2)]!;
}

/** Line `id` as exactly LINE bytes: `{"id":…,"level":…,"service":…,"msg":"…"}` padded, then LF. */
function makeLine(id: number): string {
  const services = ['api', 'web', 'worker', 'billing'];
  const head = `{"id":${String(id).padStart(10, '0')},"level":"info","service":"${services[id % 4]}","msg":"request handled `;
  const tail = `"}`;
  return head + 'x'.repeat(LINE - 1 - head.length - tail.length) + tail + '\n';
}

function writeInput(path: string, lines: number): void {
  const fd = openSync(path, 'w');
  const perChunk = 10_000;
  for (let i = 0; i < lines; i += perChunk) {
    let s = '';
    for (let id = i; id < Math.min(lines, i + perChunk); id++) s += makeLine(id);
    writeSync(fd, s);
  }
  closeSync(fd);
}

/** Counts LF bytes of a file in 4 MiB reads. */
function countLines(path: string): number {
  const fd = openSync(path, 'r');
  const buf = Buffer.allocUnsafe(4 * 1024 * 1024);
  let n = 0;
  for (;;) {
    const got = readSync(fd, buf, 0, buf.length, null);
    if (got === 0) break;
    let i = -1;
    for (;;) {
      i = buf.indexOf(10, i + 1);
      if (i < 0 || i >= got) break;
      n++;
    }
  }
  closeSync(fd);
  return n;
}

function sinkDone(runtime: PipelineRuntime): number {
  const s = runtime.status() as { pipelines: { sinks: { offsets: Record<string, number> }[] }[] };
  return Object.values(s.pipelines[0]!.sinks[0]!.offsets).reduce((a, b) => a + b, 0);
}

async function sluice(dir: string, input: string, lines: number): Promise<CpuFigure> {
  const text = `version: 1
log: { data_dir: ./data }
topics:
  lines: { partitions: 1 }
pipelines:
  tail:
    source: { type: file, include: [${JSON.stringify(input)}], format: text, start_at: beginning }
    topic: lines
    sinks:
      out: { type: file, path: ./out }
`;
  const config = parsePipelines(text, 'bench.yaml', dir, pipelinesSchema({ sources: builtinSources, sinks: builtinSinks }));
  const log = await openLocalLog({ dir: config.log.dataDir, retentionSchedule: false });
  const runtime = new PipelineRuntime(config, { log, sources: builtinSources, sinks: builtinSinks, logger: quiet });
  const t0 = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  await runtime.start();
  while (sinkDone(runtime) < lines) await sleep(5);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const delivered = sinkDone(runtime);
  await runtime.stop(5000);
  await log.close();
  if (delivered !== lines) throw new Error(`sluice delivered ${delivered} lines, expected ${lines}`);
  return { name: 'sluice: file → log (durable) → file sink', records: lines, bytes: lines * LINE, seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
}

function ensureSyslogNg(): string | undefined {
  const which = (): string | undefined => {
    const r = spawnSync('sh', ['-c', 'command -v syslog-ng'], { encoding: 'utf8' });
    return r.status === 0 ? r.stdout.trim() : undefined;
  };
  let bin = which();
  if (bin !== undefined) return bin;
  console.error('syslog-ng not found: apt-get install -y syslog-ng-core');
  spawnSync('sh', ['-c', 'apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y syslog-ng-core'], { stdio: 'inherit' });
  bin = which();
  return bin;
}

async function syslogNg(bin: string, dir: string, input: string, lines: number): Promise<CpuFigure> {
  const out = join(dir, 'sng.out');
  const conf = join(dir, 'sng.conf');
  writeFileSync(conf, readFileSync(SHARED_CONF, 'utf8').replace('"IN"', JSON.stringify(input)).replace('"OUT"', JSON.stringify(out)));
  const want = lines * LINE;
  const t0 = process.hrtime.bigint();
  const child = spawn(bin, ['-F', '-f', conf, '-R', join(dir, 'sng.persist'), '-p', join(dir, 'sng.pid'), '-c', join(dir, 'sng.ctl')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  let exited = false;
  child.on('exit', () => (exited = true));
  // Lines are all LINE bytes, so the size tells the count; the count is checked once it is reached.
  while (!(existsSync(out) && statSync(out).size >= want)) {
    if (exited) throw new Error(`syslog-ng exited: ${stderr}`);
    await sleep(5);
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpuSeconds = childCpuSeconds(child.pid);
  child.kill('SIGTERM');
  await new Promise((r) => (exited ? r(undefined) : child.on('exit', r)));
  const got = countLines(out);
  if (got !== lines) throw new Error(`syslog-ng wrote ${got} lines, expected ${lines}`);
  return { name: 'syslog-ng 3.38: file → file', records: lines, bytes: want, seconds, cpuSeconds };
}

// ---- latency ----

const latencies: number[] = [];

class LatencySink implements Sink {
  async open(): Promise<void> {}
  async write(batch: SinkBatch): Promise<void> {
    const now = Date.now();
    for (const r of batch.records) {
      const m = /"t":(\d+)/.exec((r.value as { message: string }).message);
      if (m !== null) latencies.push(now - Number(m[1]));
    }
  }
  async close(): Promise<void> {}
}

const latencySink: SinkDeclaration<Record<string, never>> = {
  kind: 'sink',
  type: 'latency',
  summary: 'records now − write time of each line (benchmark only)',
  delivery: 'at-least-once',
  schema: { type: 'object', additionalProperties: false, properties: {} },
  create: () => new LatencySink(),
};

/** The writer runs in a worker thread: every 10 ms it appends the lines due by then, each stamped. */
const WRITER = `
const { workerData, parentPort } = require('node:worker_threads');
const fs = require('node:fs');
const { path, perSec, seconds } = workerData;
const fd = fs.openSync(path, 'a');
const total = perSec * seconds;
const t0 = Date.now();
let id = 0;
function tick() {
  const now = Date.now();
  const due = Math.min(total, Math.floor(((now - t0) / 1000) * perSec));
  let s = '';
  for (; id < due; id++) {
    const head = '{"id":' + id + ',"t":' + now + ',"level":"info","msg":"';
    s += head + 'x'.repeat(${LINE} - 3 - head.length) + '"}\\n';
  }
  if (s.length > 0) fs.writeSync(fd, s);
  if (id < total) setTimeout(tick, 10);
  else { fs.closeSync(fd); parentPort.postMessage(id); }
}
tick();
`;

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function latencyRun(dir: string, perSec: number, seconds: number): Promise<string[]> {
  latencies.length = 0;
  const input = join(dir, 'live.log');
  writeFileSync(input, '');
  const sinks = [...builtinSinks, latencySink];
  const text = `version: 1
log: { data_dir: ./data-latency }
topics:
  live: { partitions: 1 }
pipelines:
  live:
    source: { type: file, include: [${JSON.stringify(input)}], format: text, start_at: beginning }
    topic: live
    sinks:
      lat: { type: latency }
`;
  const config = parsePipelines(text, 'bench.yaml', dir, pipelinesSchema({ sources: builtinSources, sinks }));
  const log = await openLocalLog({ dir: config.log.dataDir, retentionSchedule: false });
  const runtime = new PipelineRuntime(config, { log, sources: builtinSources, sinks, logger: quiet });
  await runtime.start();
  await sleep(1000);
  const written = await new Promise<number>((resolve, reject) => {
    const w = new Worker(WRITER, { eval: true, workerData: { path: input, perSec, seconds } });
    w.once('message', resolve);
    w.once('error', reject);
  });
  const deadline = Date.now() + 30_000;
  while (sinkDone(runtime) < written && Date.now() < deadline) await sleep(20);
  const delivered = sinkDone(runtime);
  await runtime.stop(5000);
  await log.close();
  const sorted = Float64Array.from(latencies).sort();
  const arr = Array.from(sorted);
  return [
    `latency: writer ${perSec} lines/s for ${seconds} s (${written} lines), delivered ${delivered}, measured ${arr.length}`,
    `  end-to-end (write → latency sink): p50 ${pct(arr, 50)} ms, p99 ${pct(arr, 99)} ms, max ${arr[arr.length - 1]} ms`,
  ];
}

export async function benchFile(args: string[]): Promise<string[]> {
  const mbytes = Number(arg(args, 'mbytes', '1024'));
  const rounds = Number(arg(args, 'rounds', '1'));
  const memory = arg(args, 'memory', 'warm') as Memory;
  if (!['warm', 'cold', 'as-is'].includes(memory)) throw new Error(`--memory must be warm, cold or as-is, not ${memory}`);
  const latSeconds = Number(arg(args, 'latency-seconds', '10'));
  const latRate = Number(arg(args, 'latency-rate', '100000'));
  const lines = Math.floor((mbytes * 1024 * 1024) / LINE);
  const out = [`machine: ${machine()}`, `${lines} lines of ${LINE} B (${mbytes} MiB), median of ${rounds} round(s), memory ${memory} at the start of each case`];
  const bin = ensureSyslogNg();
  if (bin === undefined) out.push('syslog-ng could not be installed: peer skipped');
  const sl: CpuFigure[] = [];
  const sn: CpuFigure[] = [];
  for (let i = 0; i < rounds; i++) {
    const { dir, remove } = tempDir('sluice-bench-file');
    try {
      const input = join(dir, 'in.log');
      writeInput(input, lines);
      // Each case starts with no dirty pages left by the one before (the input just written, the
      // other's gigabytes of output), which the kernel would otherwise write back on the same two
      // cores while it runs; and the order alternates from round to round (syslog-ng first in round 1).
      const peer = async (): Promise<void> => {
        if (bin === undefined) return;
        spawnSync('sync');
        await settleMemory(memory);
        sn.push(await syslogNg(bin, dir, input, lines));
      };
      const ours = async (): Promise<void> => {
        spawnSync('sync');
        await settleMemory(memory);
        sl.push(await sluice(dir, input, lines));
      };
      if (i % 2 === 0) {
        await peer();
        await ours();
      } else {
        await ours();
        await peer();
      }
      console.error(`round ${i + 1}: ${row(sl[sl.length - 1]!)}, ${linesPerCpuSecond(sl[sl.length - 1]!)}${sn.length > 0 ? ` | ${row(sn[sn.length - 1]!)}, ${linesPerCpuSecond(sn[sn.length - 1]!)}` : ''}`);
    } finally {
      remove();
    }
  }
  const s = median(sl);
  if (sn.length > 0) {
    const p = median(sn);
    out.push(row(p), `  ${linesPerCpuSecond(p)}`, row(s, p), `  ${linesPerCpuSecond(s)}`);
    out.push(`  → sluice / syslog-ng = ${(rate(s).recPerSec / rate(p).recPerSec).toFixed(2)}× (target ≥ 2.5×)`);
    // Less sensitive to other work on the machine than the wall-clock ratio.
    out.push(`  → per CPU-second: sluice / syslog-ng = ${(p.cpuSeconds / s.cpuSeconds).toFixed(2)}×`);
  } else out.push(row(s), `  ${linesPerCpuSecond(s)}`);
  const { dir, remove } = tempDir('sluice-bench-file-latency');
  try {
    out.push(...(await latencyRun(dir, latRate, latSeconds)));
  } finally {
    remove();
  }
  out.push(`peak RSS: ${peakRssMiB().toFixed(0)} MiB`);
  return out;
}
