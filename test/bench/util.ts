/** Small helpers shared by the benchmarks: argument parsing, timing, figures. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, cpus, totalmem } from 'node:os';
import { join } from 'node:path';

export function arg(args: string[], name: string, fallback: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1]! : fallback;
}

export function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|KB|MB|GB)?$/i.exec(text.trim());
  if (m === null) throw new Error(`not a size: ${text}`);
  const units: Record<string, number> = { b: 1, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3, kb: 1e3, mb: 1e6, gb: 1e9 };
  return Math.round(Number(m[1]) * units[(m[2] ?? 'b').toLowerCase()]!);
}

export function tempDir(prefix: string): { dir: string; remove: () => void } {
  const base = process.env.SLUICE_BENCH_DIR ?? tmpdir();
  const dir = mkdtempSync(join(base, `${prefix}-`));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface Figure {
  name: string;
  records: number;
  bytes: number;
  seconds: number;
}

export async function timed(name: string, records: number, bytes: number, fn: () => Promise<void> | void): Promise<Figure> {
  const t0 = process.hrtime.bigint();
  await fn();
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return { name, records, bytes, seconds };
}

export function rate(f: Figure): { recPerSec: number; mbPerSec: number } {
  return { recPerSec: f.records / f.seconds, mbPerSec: f.bytes / f.seconds / 1e6 };
}

export function fmt(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} k` : n.toFixed(0);
}

export function row(f: Figure, baseline?: Figure): string {
  const r = rate(f);
  const ratio = baseline === undefined ? '' : `  ${(r.mbPerSec / rate(baseline).mbPerSec).toFixed(2)}× baseline`;
  return `${f.name.padEnd(44)} ${fmt(r.recPerSec).padStart(9)} rec/s ${r.mbPerSec.toFixed(1).padStart(8)} MB/s${ratio}`;
}

export function machine(): string {
  const c = cpus();
  return `${c.length} × ${c[0]?.model ?? 'cpu'}, ${(totalmem() / 1024 ** 3).toFixed(0)} GiB, Node ${process.version}, ${process.platform}`;
}

export function peakRssMiB(): number {
  return process.resourceUsage().maxRSS / 1024;
}
