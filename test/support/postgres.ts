import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { appendFile, chown, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import pg from 'pg';
import { freePort, onProcessExit, waitFor } from './ports.js';

export interface StartPostgresOptions {
  /** Directory holding initdb, pg_ctl and postgres; found automatically when absent. */
  binDir?: string;
  /** Extra postgresql.conf settings; they override the harness defaults. */
  settings?: Record<string, string | number | boolean>;
  /** How long start (and restart) may take before failing; default 60 000 ms. */
  startTimeoutMs?: number;
}

/** A private, throw-away PostgreSQL cluster owned by the calling test file. */
export interface PgServer {
  readonly host: string;
  readonly port: number;
  /** The cluster's data directory: the temp dir, also holding the unix socket and server.log. */
  readonly dataDir: string;
  /** Connection URL for superuser `postgres` (trust auth, no password). */
  url(database?: string): string;
  /** Creates a database and returns its URL. */
  createDatabase(name: string): Promise<string>;
  /** Fast shutdown, then removes the data dir. Idempotent; always cleans up. */
  stop(): Promise<void>;
  /** Fast shutdown and start again on the same port and data. */
  restart(): Promise<void>;
}

const HOST = '127.0.0.1';
const SUPERUSER = 'postgres';
/** Postgres refuses to run as root; as root we become this OS user instead. */
const OS_USER = 'postgres';
const LOG_FILE = 'server.log';

/**
 * Defaults for a disposable cluster: logical decoding for the CDC source, and
 * durability switched off because a test cluster never survives a host crash.
 */
const DEFAULT_SETTINGS: Record<string, string | number | boolean> = {
  listen_addresses: HOST,
  wal_level: 'logical',
  max_replication_slots: 20,
  max_wal_senders: 20,
  fsync: false,
  synchronous_commit: false,
  full_page_writes: false,
};

export async function startPostgres(options: StartPostgresOptions = {}): Promise<PgServer> {
  const binDir = options.binDir ?? (await findPgBinDir());
  const startTimeoutMs = options.startTimeoutMs ?? 60_000;
  const asRoot = process.getuid?.() === 0;
  // The data dir is the temp dir itself: one thing to remove, and the socket
  // path stays far below the 107-byte unix socket limit.
  const dataDir = await mkdtemp(join(tmpdir(), 'sluice-pg-'));
  const logFile = join(dataDir, LOG_FILE);
  const unregisterExit = onProcessExit(() => emergencyStop(dataDir));

  const tool = (name: string, args: string[], timeoutMs: number): Promise<RunResult> => {
    const bin = join(binDir, name);
    return asRoot
      ? run('runuser', ['-u', OS_USER, '--', bin, ...args], dataDir, timeoutMs)
      : run(bin, args, dataDir, timeoutMs);
  };

  let port = 0;
  let stopping: Promise<void> | undefined;

  const url = (database = 'postgres'): string =>
    `postgres://${SUPERUSER}@${HOST}:${port}/${encodeURIComponent(database)}`;

  /** pg_ctl start, then a real query: pg_ctl -w only means the postmaster accepts. */
  const start = async (): Promise<void> => {
    const seconds = String(Math.ceil(startTimeoutMs / 1000));
    const result = await tool(
      'pg_ctl',
      ['-D', dataDir, '-l', logFile, '-w', '-t', seconds, '-o', `-p ${port}`, 'start'],
      startTimeoutMs + 5_000,
    );
    if (result.code !== 0) {
      throw new PostgresStartError(
        `pg_ctl start failed on port ${port} (exit ${result.code})`,
        result,
        await logTail(logFile),
      );
    }
    try {
      await waitFor(() => ping(url()), {
        timeoutMs: startTimeoutMs,
        intervalMs: 100,
        what: `postgres on ${HOST}:${port} to answer SELECT 1`,
      });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      throw new Error(`${message}\n${await logTail(logFile)}`, { cause: error });
    }
  };

  /** Resolves undefined when no postmaster is running: there was nothing to stop. */
  const shutdown = async (mode: 'fast' | 'immediate'): Promise<RunResult | undefined> => {
    if (!existsSync(join(dataDir, 'postmaster.pid'))) return undefined;
    return tool('pg_ctl', ['-D', dataDir, '-m', mode, '-w', '-t', '30', 'stop'], 40_000);
  };

  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      let failure: Error | undefined;
      try {
        const fast = await shutdown('fast');
        if (fast !== undefined && fast.code !== 0) {
          const immediate = await shutdown('immediate');
          if (immediate !== undefined && immediate.code !== 0) {
            signalPostmaster(dataDir, 'SIGKILL');
            failure = new Error(
              `pg_ctl stop failed; postmaster killed\n${formatRun(fast)}\n${await logTail(logFile)}`,
            );
          }
        }
      } finally {
        await rm(dataDir, { recursive: true, force: true, maxRetries: 3 });
        unregisterExit();
      }
      if (failure) throw failure;
    })());

  const restart = async (): Promise<void> => {
    if (stopping) throw new Error(`postgres on port ${port} was stopped; it cannot restart`);
    const result = await shutdown('fast');
    if (result !== undefined && result.code !== 0) {
      throw new PostgresStartError('pg_ctl stop failed during restart', result, await logTail(logFile));
    }
    await start();
  };

  const createDatabase = async (name: string): Promise<string> => {
    await withClient(url(), (client) => client.query(`CREATE DATABASE ${client.escapeIdentifier(name)}`));
    return url(name);
  };

  try {
    if (asRoot) {
      const { uid, gid } = await osUserIds(OS_USER);
      await chown(dataDir, uid, gid);
    }
    const init = await tool(
      'initdb',
      ['-D', dataDir, '-U', SUPERUSER, '--auth=trust', '--encoding=UTF8', '--locale=C', '--no-sync'],
      120_000,
    );
    if (init.code !== 0) throw new Error(`initdb failed (exit ${init.code})\n${formatRun(init)}`);
    const settings = { ...DEFAULT_SETTINGS, unix_socket_directories: dataDir, ...options.settings };
    // Appending keeps the file's postgres ownership; the last occurrence of a setting wins.
    await appendFile(join(dataDir, 'postgresql.conf'), renderSettings(settings));

    // freePort can race with other processes; a lost race shows up as a bind error.
    for (let attempt = 1; ; attempt++) {
      port = await freePort(HOST);
      try {
        await start();
        break;
      } catch (error) {
        if (attempt >= 5 || !(error instanceof PostgresStartError) || !isBindError(error.logTail)) {
          throw error;
        }
      }
    }
  } catch (error) {
    await stop().catch(() => undefined);
    throw error;
  }

  return {
    host: HOST,
    port,
    dataDir,
    url,
    createDatabase,
    stop,
    restart,
  };
}

/** Carries pg_ctl's output and the server log tail, the two places a failed start explains itself. */
class PostgresStartError extends Error {
  override readonly name = 'PostgresStartError';
  constructor(
    summary: string,
    readonly result: RunResult,
    readonly logTail: string,
  ) {
    super(`${summary}\n${formatRun(result)}\n${logTail}`);
  }
}

function isBindError(log: string): boolean {
  return /could not bind|address already in use|could not create any TCP\/IP sockets/i.test(log);
}

/**
 * initdb, pg_ctl and postgres must come from one installation. pg_config can
 * belong to a libpq-only install without a server, so every candidate is
 * checked for initdb before it is trusted.
 */
let binDirCache: Promise<string> | undefined;

export function findPgBinDir(): Promise<string> {
  binDirCache ??= (async () => {
    const candidates: string[] = [];
    const pgConfig = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' });
    if (pgConfig.status === 0) candidates.push(pgConfig.stdout.trim());
    const versions = await readdir('/usr/lib/postgresql').catch(() => [] as string[]);
    versions
      .filter((v) => /^\d+(\.\d+)?$/.test(v))
      .sort((a, b) => Number(b) - Number(a))
      .forEach((v) => candidates.push(`/usr/lib/postgresql/${v}/bin`));
    candidates.push(...(process.env.PATH ?? '').split(delimiter).filter(Boolean));
    const found = candidates.find((dir) =>
      ['initdb', 'pg_ctl', 'postgres'].every((bin) => existsSync(join(dir, bin))),
    );
    if (found === undefined) {
      throw new Error(
        `PostgreSQL server binaries (initdb, pg_ctl, postgres) not found in: ${candidates.join(', ')}. ` +
          'Install the "postgresql" package (Debian: apt-get install -y postgresql).',
      );
    }
    return found;
  })();
  return binDirCache;
}

async function ping(connectionString: string): Promise<boolean> {
  await withClient(connectionString, (client) => client.query('SELECT 1'));
  return true;
}

async function withClient<T>(connectionString: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString, connectionTimeoutMillis: 2_000 });
  // A server shutting down mid-query emits 'error'; unhandled, it would crash the worker.
  client.on('error', () => undefined);
  try {
    await client.connect();
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

function renderSettings(settings: Record<string, string | number | boolean>): string {
  const lines = Object.entries(settings).map(([key, value]) => {
    const text = typeof value === 'boolean' ? (value ? 'on' : 'off') : String(value);
    return `${key} = '${text.replaceAll("'", "''")}'`;
  });
  return `\n# test/support/postgres.ts\n${lines.join('\n')}\n`;
}

async function osUserIds(user: string): Promise<{ uid: number; gid: number }> {
  const uid = await run('id', ['-u', user], tmpdir(), 5_000);
  const gid = await run('id', ['-g', user], tmpdir(), 5_000);
  if (uid.code !== 0 || gid.code !== 0) {
    throw new Error(
      `running as root, but there is no "${user}" OS user to run PostgreSQL as ` +
        `(install the "postgresql" package or create the user): ${uid.stderr.trim()}`,
    );
  }
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

/**
 * Synchronous because it runs from process 'exit' or a signal, where nothing
 * async completes and vitest allows one second before SIGKILL: SIGQUIT is
 * Postgres's immediate shutdown, sent directly instead of through pg_ctl.
 */
function emergencyStop(dataDir: string): void {
  signalPostmaster(dataDir, 'SIGQUIT');
  rmSync(dataDir, { recursive: true, force: true });
}

function signalPostmaster(dataDir: string, signal: NodeJS.Signals): void {
  try {
    const pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n', 1)[0]);
    if (Number.isInteger(pid) && pid > 0) process.kill(pid, signal);
  } catch {
    // No pid file or no such process: nothing is running.
  }
}

async function logTail(logFile: string, lines = 30): Promise<string> {
  const text = await readFile(logFile, 'utf8').catch(() => '');
  if (text === '') return '(server log empty or missing)';
  return `server log (last ${lines} lines):\n${text.trimEnd().split('\n').slice(-lines).join('\n')}`;
}

interface RunResult {
  command: string;
  code: number | null;
  stdout: string;
  stderr: string;
}

function formatRun(result: RunResult): string {
  const parts = [`$ ${result.command}`];
  if (result.stdout.trim()) parts.push(`stdout:\n${result.stdout.trimEnd()}`);
  if (result.stderr.trim()) parts.push(`stderr:\n${result.stderr.trimEnd()}`);
  return parts.join('\n');
}

/** Runs a command to completion; never rejects on exit status, so callers decide and explain. */
function run(file: string, args: string[], cwd: string, timeoutMs: number): Promise<RunResult> {
  const command = [file, ...args].join(' ');
  return new Promise((resolve) => {
    // cwd matters as root: the postgres user cannot enter the test runner's directory.
    const child = spawn(file, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.once('error', (error) => resolve({ command, code: null, stdout, stderr: `${stderr}${error.message}` }));
    child.once('close', (code, signal) =>
      resolve({ command, code, stdout, stderr: signal ? `${stderr}(killed by ${signal})` : stderr }),
    );
  });
}
