/**
 * Opens the log a configuration names: the embedded local log, or JetStream. Used by `sluice run`
 * and by every CLI command that opens the log, so both read the same `log:` section the same way.
 * The JetStream backend (and the `nats` package) is loaded only when it is chosen.
 */
import type { Acks, Log } from './types.js';

export interface JetStreamBackendConfig {
  servers: string[];
  /** Absolute path of a .creds file. */
  credentials?: string;
  tls?: { caFile?: string; certFile?: string; keyFile?: string };
  replicas: number;
  duplicateWindowMs: number;
  prefix: string;
  leaseTtlMs: number;
}

export interface LogBackendConfig {
  backend: 'local' | 'jetstream';
  /** Absolute path of the data directory (local backend). */
  dataDir: string;
  acks: Acks;
  segmentBytes?: number;
  retentionCheck: string | false;
  /** Present when backend is jetstream. */
  jetstream?: JetStreamBackendConfig;
}

export interface OpenLogOptions {
  onWarning?: (message: string) => void;
}

export async function openLog(config: LogBackendConfig, options: OpenLogOptions = {}): Promise<Log> {
  const onWarning = options.onWarning ?? (() => undefined);
  if (config.backend === 'jetstream') {
    const js = config.jetstream;
    if (js === undefined) throw new Error('log.backend is jetstream but log.jetstream is missing');
    const { openJetStreamLog } = await import('./jetstream/index.js');
    return openJetStreamLog({ ...natsConnectionOf(js), replicas: js.replicas, duplicateWindowMs: js.duplicateWindowMs, prefix: js.prefix, defaultAcks: config.acks, onWarning });
  }
  const { openLocalLog } = await import('./local/index.js');
  return openLocalLog({
    dir: config.dataDir,
    defaultAcks: config.acks,
    retentionSchedule: config.retentionCheck,
    ...(config.segmentBytes === undefined ? {} : { segmentBytes: config.segmentBytes }),
    onWarning,
  });
}

/** The connection options of the backend config, for the log and for the lease coordinator. */
export function natsConnectionOf(js: JetStreamBackendConfig): import('./jetstream/options.js').NatsConnectionOptions {
  return {
    servers: js.servers,
    ...(js.credentials === undefined ? {} : { credentials: js.credentials }),
    ...(js.tls === undefined ? {} : { tls: js.tls }),
  };
}

/** Defaults of `log.jetstream`, in one place for the config loader, the CLI and the docs. */
export const JETSTREAM_CONFIG_DEFAULTS = {
  servers: ['nats://127.0.0.1:4222'],
  replicas: 1,
  duplicateWindowMs: 120_000,
  prefix: 'sluice',
  leaseTtlMs: 10_000,
};
