import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Ports the machine's own services hold (PostgreSQL, NATS). The kernel never
 * hands them out as ephemeral ports, but a test that talked to the system
 * server by accident would pass for the wrong reason, so refuse them outright.
 */
const RESERVED_PORTS: ReadonlySet<number> = new Set([4222, 5432, 6222, 8222]);

/**
 * A TCP port that was free a moment ago on `host`. Another process may still
 * take it before the caller binds it, so launchers retry on "address in use".
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = net.createServer();
      server.unref();
      server.once('error', reject);
      server.listen({ port: 0, host, exclusive: true }, () => {
        const address = server.address();
        server.close(() => {
          if (address !== null && typeof address === 'object') resolve(address.port);
          else reject(new Error(`freePort: unexpected listen address ${String(address)}`));
        });
      });
    });
    if (!RESERVED_PORTS.has(port)) return port;
  }
}

/** True when something accepts TCP connections on host:port within `timeoutMs`. */
export function canConnect(port: number, host = '127.0.0.1', timeoutMs = 1_000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

export interface WaitForOptions {
  /** Give up after this long; default 10 000 ms. */
  timeoutMs?: number;
  /** Pause between attempts; default 50 ms. */
  intervalMs?: number;
  /** What is awaited, for the timeout message ("postgres on port 40123 to answer"). */
  what?: string;
}

/** Thrown by {@link waitFor}; `cause` is the last attempt's error, if any. */
export class WaitTimeoutError extends Error {
  override readonly name = 'WaitTimeoutError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

type Falsy = false | null | undefined;

/**
 * Polls `fn` until it returns a value other than false/null/undefined and
 * returns that value. A throwing attempt counts as "not yet"; its error is
 * kept so the timeout explains what was still failing. An attempt that hangs
 * is abandoned at the deadline rather than holding the caller past it.
 */
export async function waitFor<T>(
  fn: () => T | Promise<T>,
  options: WaitForOptions = {},
): Promise<Exclude<T, Falsy>> {
  const { timeoutMs = 10_000, intervalMs = 50, what = 'condition' } = options;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  let attempts = 0;
  for (;;) {
    attempts += 1;
    const remaining = deadline - Date.now();
    try {
      const value = await withDeadline(Promise.resolve().then(fn), remaining);
      if (value !== false && value !== null && value !== undefined) {
        return value as Exclude<T, Falsy>;
      }
      lastError = undefined;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() + intervalMs > deadline) {
      const last =
        lastError === undefined
          ? ''
          : `; last error: ${lastError instanceof Error ? lastError.message : String(lastError)}`;
      throw new WaitTimeoutError(
        `timed out after ${timeoutMs} ms (${attempts} attempts) waiting for ${what}${last}`,
        { cause: lastError },
      );
    }
    await sleep(intervalMs);
  }
}

const DEADLINE = Symbol('deadline');

async function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<typeof DEADLINE>((resolve) => {
    timer = setTimeout(() => resolve(DEADLINE), Math.max(ms, 0));
  });
  try {
    const winner = await Promise.race([promise, expired]);
    if (winner === DEADLINE) throw new Error('attempt still running at the deadline');
    return winner;
  } finally {
    clearTimeout(timer);
    // The abandoned attempt may still reject later; that must not surface as unhandled.
    promise.catch(() => undefined);
  }
}

const exitCleanups = new Set<() => void>();
let exitHookInstalled = false;
/**
 * Vitest's forks pool ends every worker with SIGTERM (SIGKILL a second later),
 * and 'exit' never fires on a signal, so the signals must run cleanups too.
 */
const EXIT_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;

function runExitCleanups(): void {
  for (const fn of [...exitCleanups]) {
    exitCleanups.delete(fn);
    try {
      fn();
    } catch {
      // Exiting anyway; one failed cleanup must not skip the others.
    }
  }
}

/**
 * Runs `cleanup` synchronously when the process exits or is told to
 * (SIGTERM/SIGINT/SIGHUP), so a test that never reaches its afterAll does not
 * leave servers and temp dirs behind. Best effort: SIGKILL runs nothing.
 * Returns a function that unregisters it, for when the resource is released
 * normally. One shared set of listeners keeps Node's max-listeners warning
 * away however many servers a file starts.
 */
export function onProcessExit(cleanup: () => void): () => void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', runExitCleanups);
    for (const signal of EXIT_SIGNALS) {
      const onSignal = (): void => {
        runExitCleanups();
        process.off(signal, onSignal);
        // Our listener suppressed the default action; re-raise so the process
        // still dies of the signal, unless someone else has taken charge of it.
        if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
      };
      process.on(signal, onSignal);
    }
  }
  exitCleanups.add(cleanup);
  return () => {
    exitCleanups.delete(cleanup);
  };
}
