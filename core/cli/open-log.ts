/**
 * How a command finds and opens the log: `--data-dir DIR`, or `-c FILE` (its `log:` section), or
 * `./pipelines.yaml` when present, or `./data`. `withLog` opens it, turns SIGINT/SIGTERM into an
 * AbortSignal the command winds down on, and always closes the log (which flushes) before returning.
 */
import { access, readFile } from 'node:fs/promises';
import { dirname, relative, resolve } from 'node:path';

import { Option } from 'commander';
import type { Command } from 'commander';
import type { Document } from 'yaml';

import { openLog, type JetStreamBackendConfig } from '../log/open.js';
import type { Log } from '../log/types.js';
import { jetStreamConfig } from '../pipeline/config.js';
import { ConfigError } from './errors.js';

export const DEFAULT_CONFIG_FILE = 'pipelines.yaml';
export const DEFAULT_DATA_DIR = 'data';

/** The options `addLogOptions` declares, as commander hands them to the action. */
export interface LogLocationOptions {
  config?: string;
  dataDir?: string;
}

export interface LogLocation {
  backend: 'local' | 'jetstream';
  /** Absolute path of the data directory (local backend). */
  dir: string;
  /** Where the choice came from, for `--verbose` and error messages. */
  origin: string;
  /** The servers and options (jetstream backend). */
  jetstream?: JetStreamBackendConfig;
}

/** Adds `-c, --config FILE` and `--data-dir DIR` (mutually exclusive) to a command that opens the log. */
export function addLogOptions(command: Command): Command {
  return command
    .addOption(
      new Option('-c, --config <file>', `pipelines file whose log.data_dir to use (default: ./${DEFAULT_CONFIG_FILE} if present)`),
    )
    .addOption(
      new Option('--data-dir <dir>', `data directory of the log (default: ./${DEFAULT_DATA_DIR})`).conflicts('config'),
    );
}

export async function resolveLogLocation(options: LogLocationOptions, cwd = process.cwd()): Promise<LogLocation> {
  if (options.dataDir !== undefined) {
    return { backend: 'local', dir: resolve(cwd, options.dataDir), origin: '--data-dir' };
  }
  if (options.config !== undefined) return fromConfigFile(resolve(cwd, options.config), cwd);
  const implicit = resolve(cwd, DEFAULT_CONFIG_FILE);
  if (await exists(implicit)) return fromConfigFile(implicit, cwd);
  return { backend: 'local', dir: resolve(cwd, DEFAULT_DATA_DIR), origin: 'default' };
}

async function fromConfigFile(file: string, cwd: string): Promise<LogLocation> {
  const shown = relative(cwd, file) || file;
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'not found' : code === 'EISDIR' ? 'is a directory' : (err as Error).message;
    throw new ConfigError(`config file ${shown}: ${reason}`, { cause: err });
  }
  // Loaded on demand: most invocations name --data-dir, and every millisecond of startup shows.
  const { LineCounter, parseDocument } = await import('yaml');
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines });
  const syntax = doc.errors[0];
  if (syntax) {
    const pos = syntax.linePos?.[0];
    const message = syntax.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    throw new ConfigError(`${shown}${pos ? `:${pos.line}:${pos.col}` : ''}: ${message}`, { cause: syntax });
  }
  const at = (path: string[]) => {
    const node = doc.getIn(path, true) as { range?: [number, number, number] } | undefined;
    const pos = node?.range ? lines.linePos(node.range[0]) : undefined;
    return pos ? `${shown}:${pos.line}:${pos.col}` : shown;
  };

  const section = read(doc, ['log']);
  if (section !== undefined && (section === null || typeof section !== 'object' || Array.isArray(section))) {
    throw new ConfigError(`${at(['log'])}: log must be a mapping (backend, data_dir)`);
  }
  const backend = read(doc, ['log', 'backend']) ?? 'local';
  if (backend === 'jetstream') {
    return { backend: 'jetstream', dir: '', origin: shown, jetstream: readJetStream(doc, at, dirname(file)) };
  }
  if (backend !== 'local') {
    throw new ConfigError(`${at(['log', 'backend'])}: unknown log.backend ${JSON.stringify(backend)} (expected local or jetstream)`);
  }
  const raw = read(doc, ['log', 'data_dir']) ?? `./${DEFAULT_DATA_DIR}`;
  if (typeof raw !== 'string' || raw.trim() === '') {
    throw new ConfigError(`${at(['log', 'data_dir'])}: log.data_dir must be a non-empty path`);
  }
  const dataDir = expandEnv(raw, (name) => {
    throw new ConfigError(`${at(['log', 'data_dir'])}: log.data_dir uses \${${name}}, which is not set`);
  });
  return { backend: 'local', dir: resolve(dirname(file), dataDir), origin: shown };
}

/** `log.jetstream` of a pipelines file, checked enough for the CLI (sluice validate checks it all). */
function readJetStream(doc: Document, at: (path: string[]) => string, baseDir: string): JetStreamBackendConfig {
  const raw = read(doc, ['log', 'jetstream']) ?? {};
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(`${at(['log', 'jetstream'])}: log.jetstream must be a mapping (servers, credentials, tls, ...)`);
  }
  const expand = (value: unknown, path: string[]): unknown => {
    if (typeof value === 'string') {
      return expandEnv(value, (name) => {
        throw new ConfigError(`${at(path)}: log.${path.slice(1).join('.')} uses \${${name}}, which is not set`);
      });
    }
    if (Array.isArray(value)) return value.map((v, i) => expand(v, [...path, String(i)]));
    if (value !== null && typeof value === 'object') {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, expand(v, [...path, k])]));
    }
    return value;
  };
  const section = expand(raw, ['log', 'jetstream']) as Record<string, unknown>;
  const servers = section.servers;
  if (servers !== undefined && typeof servers !== 'string' && !(Array.isArray(servers) && servers.length > 0 && servers.every((x) => typeof x === 'string' && x !== ''))) {
    throw new ConfigError(`${at(['log', 'jetstream', 'servers'])}: log.jetstream.servers must be a URL or a list of URLs`);
  }
  for (const key of ['replicas', 'duplicate_window_ms', 'lease_ttl_ms']) {
    const v = section[key];
    if (v !== undefined && !(Number.isInteger(v) && (v as number) > 0)) {
      throw new ConfigError(`${at(['log', 'jetstream', key])}: log.jetstream.${key} must be a positive integer`);
    }
  }
  if (section.prefix !== undefined && !(typeof section.prefix === 'string' && /^[A-Za-z0-9_-]{1,32}$/.test(section.prefix))) {
    throw new ConfigError(`${at(['log', 'jetstream', 'prefix'])}: log.jetstream.prefix must be 1..32 of [A-Za-z0-9_-]`);
  }
  return jetStreamConfig(section as Parameters<typeof jetStreamConfig>[0], baseDir);
}

function read(doc: Document, path: string[]): unknown {
  const value = doc.getIn(path) as unknown;
  return value !== null && typeof value === 'object' && 'toJSON' in value
    ? (value as { toJSON(): unknown }).toJSON()
    : value;
}

/**
 * `${VAR}` and `${VAR:-default}` as the pipelines file defines them (a set but empty variable takes
 * the default, as in the shell).
 * TODO: use the pipeline config loader's expansion once core/pipeline has it, so there is one.
 */
export function expandEnv(text: string, missing: (name: string) => never, env = process.env): string {
  return text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g, (_, name: string, fallback?: string) => {
    const value = env[name];
    if (value !== undefined && (value !== '' || fallback === undefined)) return value;
    if (fallback !== undefined) return fallback;
    return missing(name);
  });
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/** Whether the global `--verbose` was given (it may stand before or after the subcommand). */
export function verbose(command: Command): boolean {
  return Boolean(command.optsWithGlobals().verbose);
}

export interface LogSession {
  log: Log;
  /** Aborted by the first SIGINT/SIGTERM: stop taking new work, finish what is in hand, return. */
  signal: AbortSignal;
  /** The signal that aborted `signal`, if any. */
  interruptedBy(): NodeJS.Signals | undefined;
}

export interface WithLogOptions {
  /** Create the data directory when missing (commands that create things). Otherwise its absence is an error. */
  create?: boolean;
  /** Print which data directory is used, on stderr. */
  verbose?: boolean;
}

const SIGNAL_NUMBERS: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 2, SIGTERM: 15 };

/** The conventional exit status of a process stopped by `signal`: 128 + its number. */
export function signalExitCode(signal: NodeJS.Signals): number {
  return 128 + (SIGNAL_NUMBERS[signal] ?? 1);
}

/**
 * Runs `fn` with the log open and closes it afterwards, whatever happens. The first SIGINT or
 * SIGTERM aborts `session.signal` (the log is still closed cleanly); a second one exits at once.
 */
export async function withLog<T>(
  locationOptions: LogLocationOptions,
  fn: (session: LogSession) => Promise<T>,
  options: WithLogOptions = {},
): Promise<T> {
  const location = await resolveLogLocation(locationOptions);
  if (options.verbose) {
    process.stderr.write(
      location.backend === 'jetstream'
        ? `sluice: JetStream log at ${location.jetstream!.servers.join(',')}, prefix ${location.jetstream!.prefix} (${location.origin})\n`
        : `sluice: data directory ${location.dir} (${location.origin})\n`,
    );
  }
  if (location.backend === 'local' && !options.create && !(await exists(location.dir))) {
    throw new ConfigError(
      `data directory ${location.dir} does not exist (create a topic first, or point at the log with --data-dir or -c)`,
    );
  }

  const controller = new AbortController();
  let received: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (received !== undefined) process.exit(signalExitCode(signal));
    received = signal;
    controller.abort(new Error(`interrupted by ${signal}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    const log = await openLog(
      {
        backend: location.backend,
        dataDir: location.dir,
        acks: 'durable',
        retentionCheck: false,
        ...(location.jetstream === undefined ? {} : { jetstream: location.jetstream }),
      },
      // Recovery notices (a damaged tail cut, uncommitted bytes removed) must reach the user.
      { onWarning: (message) => process.stderr.write(`sluice: warning: ${message}\n`) },
    );
    let result: T;
    try {
      result = await fn({ log, signal: controller.signal, interruptedBy: () => received });
    } catch (err) {
      // The command's error is the one to report; a failure to close after it is secondary.
      await log.close().catch(() => undefined);
      throw err;
    }
    await log.close();
    return result;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
