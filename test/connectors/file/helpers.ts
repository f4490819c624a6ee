/** Drives a `file` source directly (open / read / close), as the runtime does, for tests. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileSource, type FileSourceConfig } from '../../../connectors/file/index.js';
import type { SourceBatch } from '../../../connectors/sdk.js';

const dirs: string[] = [];

export async function tempDir(prefix = 'sluice-file-'): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

export async function removeTempDirs(): Promise<void> {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const TIMEOUT = Symbol('timeout');

/** Fast defaults for tests: polling and waits in tens of milliseconds. */
export const FAST: Partial<FileSourceConfig> = { poll_interval_ms: 20, rotate_wait_ms: 200, partial_line_timeout_ms: 0 };

export interface Event {
  message?: string;
  file?: string;
  [k: string]: unknown;
}

/**
 * A source under test. read() calls never overlap: a read that outlives `next`'s timeout is kept
 * and awaited by the following call, as the runtime would.
 */
export class Driver {
  readonly source: FileSource;
  readonly logs: string[] = [];
  readonly batches: SourceBatch[] = [];
  private readonly abort = new AbortController();
  private pending: Promise<SourceBatch | null> | null = null;

  constructor(config: FileSourceConfig, baseDir: string) {
    this.source = new FileSource({ ...FAST, ...config }, {
      pipeline: 'test',
      baseDir,
      signal: this.abort.signal,
      log: (level, message) => this.logs.push(`${level}: ${message}`),
    });
  }

  static async open(config: FileSourceConfig, baseDir: string, position?: unknown): Promise<Driver> {
    const d = new Driver(config, baseDir);
    await d.source.open(position);
    return d;
  }

  /** The next batch, or null if none comes within `timeoutMs`. */
  async next(timeoutMs = 1000): Promise<SourceBatch | null> {
    this.pending ??= this.source.read();
    let timer: NodeJS.Timeout | undefined;
    const r = await Promise.race([this.pending, new Promise<typeof TIMEOUT>((res) => (timer = setTimeout(() => res(TIMEOUT), timeoutMs)))]);
    clearTimeout(timer);
    if (r === TIMEOUT) return null;
    this.pending = null;
    if (r !== null) this.batches.push(r);
    return r;
  }

  /** Reads until `n` events arrived (or `timeoutMs` passed); returns the events read by this call. */
  async collect(n: number, timeoutMs = 10_000): Promise<Event[]> {
    const out: Event[] = [];
    const deadline = Date.now() + timeoutMs;
    while (out.length < n && Date.now() < deadline) {
      const b = await this.next(Math.max(1, deadline - Date.now()));
      if (b !== null) out.push(...(b.records.map((r) => r.value) as Event[]));
    }
    return out;
  }

  /** Reads until nothing comes for `quietMs`; returns the events. */
  async settle(quietMs = 400, maxMs = 15_000): Promise<Event[]> {
    const out: Event[] = [];
    const deadline = Date.now() + maxMs;
    while (Date.now() < deadline) {
      const b = await this.next(quietMs);
      if (b === null) break;
      out.push(...(b.records.map((r) => r.value) as Event[]));
    }
    return out;
  }

  /** The position of the last batch read. */
  get position(): unknown {
    return this.batches.at(-1)?.position;
  }

  async close(): Promise<void> {
    this.abort.abort();
    if (this.pending !== null) await this.pending.catch(() => null);
    this.pending = null;
    await this.source.close();
  }
}

export function messages(events: readonly Event[]): string[] {
  return events.map((e) => e.message ?? '');
}

/** Numbers of lines written as `<prefix><n> ...`; checks each appears exactly once. */
export function countSeq(events: readonly Event[], re = /^line-(\d+)\b/): Map<number, number> {
  const counts = new Map<number, number>();
  for (const e of events) {
    const m = re.exec(e.message ?? '');
    if (m !== null) counts.set(Number(m[1]), (counts.get(Number(m[1])) ?? 0) + 1);
  }
  return counts;
}

export function exactlyOnce(counts: Map<number, number>, total: number): string[] {
  const problems: string[] = [];
  for (let i = 0; i < total; i++) {
    const c = counts.get(i) ?? 0;
    if (c !== 1) problems.push(`line-${i} seen ${c} times`);
    if (problems.length > 20) break;
  }
  for (const k of counts.keys()) if (k >= total) problems.push(`unexpected line-${k}`);
  return problems;
}
