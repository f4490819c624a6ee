/**
 * Runs the built `sluice` (dist/core/cli/main.js) as a real process. `npm test` builds first;
 * when iterating on the CLI alone, run `npm run build` before `vitest`.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterEach, beforeEach, expect } from 'vitest';

import { openLocalLog } from '../../core/log/local/index.js';
import type { Log } from '../../core/log/types.js';

export const BIN = fileURLToPath(new URL('../../dist/core/cli/main.js', import.meta.url));

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  input?: string | Buffer;
  cwd?: string;
  timeoutMs?: number;
}

export function start(args: readonly string[], options: { cwd?: string } = {}): ChildProcess {
  if (!existsSync(BIN)) throw new Error(`${BIN} is missing: run \`npm run build\` first`);
  return spawn(process.execPath, [BIN, ...args], { cwd: options.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
}

/** Collects a started process's output until it exits. */
export function finish(child: ChildProcess, timeoutMs = 20_000): Promise<RunResult> {
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  child.stdout!.on('data', (chunk: Buffer) => stdout.push(chunk));
  child.stderr!.on('data', (chunk: Buffer) => stderr.push(chunk));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`sluice ${child.spawnargs.slice(2).join(' ')} did not exit within ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        code,
        signal,
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8'),
      });
    });
  });
}

/** Runs `sluice ...args` to completion, with `input` on stdin (closed right away otherwise). */
export function sluice(args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const child = start(args, options);
  const done = finish(child, options.timeoutMs);
  // The process may exit before reading all of its input (a bad line): that is not our error.
  child.stdin!.on('error', () => undefined);
  child.stdin!.end(options.input ?? '');
  return done;
}

/** A fresh temporary directory and its removal. */
export async function tempDir(prefix = 'sluice-cli-'): Promise<{ path: string; remove(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

/** NDJSON text of the given values, one a line. */
export function ndjson(values: readonly unknown[]): string {
  return values.map((v) => `${JSON.stringify(v)}\n`).join('');
}

export function lines(text: string): string[] {
  return text.split('\n').filter((line) => line !== '');
}

export interface Envelope {
  topic: string;
  partition: number;
  offset: number;
  timestamp: string;
  key: string | null;
  headers: Record<string, string>;
  value: unknown;
}

export function envelopes(stdout: string): Envelope[] {
  return lines(stdout).map((line) => JSON.parse(line) as Envelope);
}

export interface DataDirFixture {
  /** The temporary directory of the current test; the data directory is `data` inside it. */
  readonly root: string;
  readonly dataDir: string;
  /** `sluice ARGS --data-dir <data directory>`. */
  run(args: readonly string[], input?: string): Promise<RunResult>;
  createTopic(name: string, partitions?: number): Promise<void>;
  /** `sluice produce TOPIC ...extra` with `input`, expecting success. */
  produce(topic: string, input: string, extra?: readonly string[]): Promise<RunResult>;
  /** Opens the data directory's log in this process for `fn` (fixtures without a process start each). */
  withLog<T>(fn: (log: Log) => Promise<T>): Promise<T>;
}

/** A fresh temporary data directory per test (registers beforeEach/afterEach). */
export function useDataDir(): DataDirFixture {
  let dir: { path: string; remove(): Promise<void> } | undefined;
  beforeEach(async () => {
    dir = await tempDir();
  });
  afterEach(async () => {
    await dir?.remove();
    dir = undefined;
  });
  const fixture: DataDirFixture = {
    get root() {
      if (!dir) throw new Error('useDataDir: only inside a test');
      return dir.path;
    },
    get dataDir() {
      return join(fixture.root, 'data');
    },
    run: (args, input) => sluice([...args, '--data-dir', fixture.dataDir], { input }),
    async createTopic(name, partitions = 1) {
      const r = await fixture.run(['topics', 'create', name, '--partitions', String(partitions)]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
    },
    async produce(topic, input, extra = []) {
      const r = await fixture.run(['produce', topic, ...extra], input);
      expect(r.code, r.stderr).toBe(0);
      return r;
    },
    async withLog(fn) {
      const log = await openLocalLog({ dir: fixture.dataDir, retentionSchedule: false });
      try {
        return await fn(log);
      } finally {
        await log.close();
      }
    },
  };
  return fixture;
}
