import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect } from 'nats';
import { freePort, onProcessExit, waitFor } from './ports.js';

export interface StartNatsOptions {
  /** nats-server binary; found automatically when absent. */
  binary?: string;
  /** Extra command-line arguments, appended after the harness's own. */
  args?: string[];
  /** How long start (and restart) may take before failing; default 30 000 ms. */
  startTimeoutMs?: number;
  /** Grace period between SIGTERM and SIGKILL on stop; default 5 000 ms. */
  stopTimeoutMs?: number;
}

/** A private nats-server with JetStream (file storage) owned by the calling test file. */
export interface NatsServer {
  readonly host: string;
  readonly port: number;
  /** `nats://127.0.0.1:<port>` */
  readonly url: string;
  /** JetStream store dir (-sd): the temp dir, removed by stop(). */
  readonly storeDir: string;
  /** SIGTERM, SIGKILL after the grace period, then removes the store dir. Idempotent. */
  stop(): Promise<void>;
  /** Stops the process and starts it again on the same port and store dir. */
  restart(): Promise<void>;
}

const HOST = '127.0.0.1';
const OUTPUT_LINES = 40;

export async function startNats(options: StartNatsOptions = {}): Promise<NatsServer> {
  const binary = options.binary ?? findNatsServer();
  const startTimeoutMs = options.startTimeoutMs ?? 30_000;
  const stopTimeoutMs = options.stopTimeoutMs ?? 5_000;
  const storeDir = await mkdtemp(join(tmpdir(), 'sluice-nats-'));

  let port = 0;
  let proc: Launched | undefined;
  let stopping: Promise<void> | undefined;
  const unregisterExit = onProcessExit(() => {
    proc?.child.kill('SIGKILL');
    rmSync(storeDir, { recursive: true, force: true });
  });

  const start = async (): Promise<void> => {
    const url = `nats://${HOST}:${port}`;
    const launched = launch(binary, ['-js', '-a', HOST, '-p', String(port), '-sd', storeDir, ...(options.args ?? [])]);
    proc = launched;
    const ready = waitFor(() => jetStreamAnswers(url), {
      timeoutMs: startTimeoutMs,
      intervalMs: 50,
      what: `nats-server on ${HOST}:${port} to answer JetStream requests`,
    });
    // An early exit (bad flag, port taken) must fail now, not at the timeout.
    const died = launched.exited.then(() => {
      throw new NatsStartError(`nats-server exited during start (${launched.describeExit()})`, launched.output());
    });
    try {
      await Promise.race([ready, died]);
    } catch (error) {
      await terminate(launched, stopTimeoutMs);
      if (error instanceof NatsStartError) throw error;
      throw new NatsStartError(String(error instanceof Error ? error.message : error), launched.output(), error);
    } finally {
      died.catch(() => undefined);
      ready.catch(() => undefined);
    }
  };

  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      try {
        if (proc) await terminate(proc, stopTimeoutMs);
      } finally {
        await rm(storeDir, { recursive: true, force: true, maxRetries: 3 });
        unregisterExit();
      }
    })());

  const restart = async (): Promise<void> => {
    if (stopping) throw new Error(`nats-server on port ${port} was stopped; it cannot restart`);
    if (proc) await terminate(proc, stopTimeoutMs);
    await start();
  };

  try {
    // freePort can race with other processes; a lost race shows up as a bind error.
    for (let attempt = 1; ; attempt++) {
      port = await freePort(HOST);
      try {
        await start();
        break;
      } catch (error) {
        const bindError = error instanceof NatsStartError && /address already in use/i.test(error.output);
        if (attempt >= 5 || !bindError) throw error;
      }
    }
  } catch (error) {
    await stop().catch(() => undefined);
    throw error;
  }

  return { host: HOST, port, url: `nats://${HOST}:${port}`, storeDir, stop, restart };
}

/** Carries the server's own output: the only place a failed start explains itself. */
class NatsStartError extends Error {
  override readonly name = 'NatsStartError';
  constructor(
    summary: string,
    readonly output: string,
    cause?: unknown,
  ) {
    super(`${summary}\nnats-server output (last ${OUTPUT_LINES} lines):\n${output || '(none)'}`, { cause });
  }
}

export function findNatsServer(): string {
  const candidates = ['/usr/sbin/nats-server', '/usr/local/bin/nats-server'];
  for (const dir of (process.env.PATH ?? '').split(delimiter).filter(Boolean)) {
    candidates.push(join(dir, 'nats-server'));
  }
  const found = candidates.find((path) => existsSync(path));
  if (found === undefined) {
    throw new Error(
      'nats-server not found in /usr/sbin, /usr/local/bin or PATH. ' +
        'Install the "nats-server" package (Debian: apt-get install -y nats-server).',
    );
  }
  return found;
}

/** jetstreamManager() asks for account info, so it fails until JetStream itself is up, not just the port. */
async function jetStreamAnswers(servers: string): Promise<boolean> {
  const nc = await connect({ servers, reconnect: false, timeout: 1_000 });
  try {
    await nc.jetstreamManager();
    return true;
  } finally {
    await nc.close();
  }
}

interface Launched {
  child: ChildProcess;
  /** Resolves once the process has exited, however it ended. */
  exited: Promise<void>;
  describeExit(): string;
  output(): string;
}

function launch(binary: string, args: string[]): Launched {
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const collect = (chunk: string): void => {
    lines.push(...chunk.split('\n').filter(Boolean));
    lines.splice(0, Math.max(0, lines.length - OUTPUT_LINES));
  };
  child.stdout?.setEncoding('utf8').on('data', collect);
  child.stderr?.setEncoding('utf8').on('data', collect);
  let spawnError: Error | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('error', (error) => {
      spawnError = error;
      resolve();
    });
    child.once('exit', () => resolve());
  });
  return {
    child,
    exited,
    describeExit: () =>
      spawnError ? `spawn failed: ${spawnError.message}` : `code ${child.exitCode}, signal ${child.signalCode}`,
    output: () => lines.join('\n'),
  };
}

async function terminate(proc: Launched, graceMs: number): Promise<void> {
  if (hasExited(proc.child)) return;
  proc.child.kill('SIGTERM');
  // Aborting the timer matters: a pending grace timer would keep the test worker alive.
  const grace = new AbortController();
  const graceful = await Promise.race([
    proc.exited.then(() => true),
    sleep(graceMs, false, { signal: grace.signal }).catch(() => false),
  ]);
  grace.abort();
  if (!graceful) {
    proc.child.kill('SIGKILL');
    await proc.exited;
  }
}

function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null || child.pid === undefined;
}
