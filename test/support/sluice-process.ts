/** A `sluice run` child process for crash tests: started, watched and killed like a real deployment. */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

export const SLUICE_MAIN = join(process.cwd(), 'dist/core/cli/main.js');

export interface SluiceProcess {
  name: string;
  child: ChildProcess;
  /** Resolves with the exit code (null when killed by a signal). */
  exited: Promise<number | null>;
  /** The last part of what it wrote on stderr. */
  stderr(): string;
}

export function startSluice(name: string, configFile: string, cwd: string, env: Record<string, string> = {}): SluiceProcess {
  const child = spawn(process.execPath, [SLUICE_MAIN, 'run', '-c', configFile], {
    cwd,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, SLUICE_LOG_LEVEL: 'warn', ...env },
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-100_000);
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { name, child, exited, stderr: () => stderr };
}

/** SIGKILL and wait until it is gone. */
export async function killHard(p: SluiceProcess): Promise<void> {
  if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  await p.exited;
}

/** What several processes wrote on stderr, for a failure message. */
export function stderrOf(ps: SluiceProcess[]): string {
  return ps.map((p) => `--- ${p.name}\n${p.stderr().slice(-3000)}`).join('\n');
}

/**
 * The `id` of every line a `file` sink committed below `outDir` (all partitions), in file order:
 * each file up to the length its state file records. Past it may lie the start of a batch a
 * killed run was writing (a write cut by SIGKILL can end mid-line); the next run cuts it off.
 */
export async function fileSinkIds(outDir: string): Promise<number[]> {
  const ids: number[] = [];
  const files = (await readdir(outDir).catch(() => [] as string[])).filter((f) => f.endsWith('.ndjson'));
  for (const f of files) {
    const state = await readFile(join(outDir, `.${f.slice(0, -'.ndjson'.length)}.state.json`), 'utf8').catch(() => null);
    const length = state === null ? 0 : (JSON.parse(state) as { length: number }).length;
    const committed = (await readFile(join(outDir, f))).subarray(0, length).toString('utf8');
    for (const line of committed.split('\n')) {
      if (line !== '') ids.push((JSON.parse(line) as { id: number }).id);
    }
  }
  return ids;
}
