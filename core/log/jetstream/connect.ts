/**
 * Opening a NATS connection with the log's options. `nats` is imported here, on demand, so the
 * local backend (and every CLI command on it) never loads it.
 */
import { readFileSync } from 'node:fs';
import type { JetStreamClient, JetStreamManager, NatsConnection } from 'nats';

import { LogUnavailableError, describe } from '../errors.js';
import { JETSTREAM_DEFAULTS, type NatsConnectionOptions } from './options.js';

export type NatsModule = typeof import('nats');

let loaded: Promise<NatsModule> | undefined;

export function loadNats(): Promise<NatsModule> {
  return (loaded ??= import('nats'));
}

export interface NatsSession {
  nats: NatsModule;
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
}

/** Connects and checks JetStream answers; any failure is a LogUnavailableError naming the servers. */
export async function connectNats(options: NatsConnectionOptions): Promise<NatsSession> {
  const nats = await loadNats();
  const shown = options.servers.join(',');
  let authenticator;
  if (options.credentials !== undefined) {
    let creds: Uint8Array;
    try {
      creds = readFileSync(options.credentials);
    } catch (err) {
      throw new LogUnavailableError(shown, `cannot read credentials file ${options.credentials}: ${describe(err)}`, err);
    }
    authenticator = nats.credsAuthenticator(creds);
  }
  const tls = options.tls;
  let nc: NatsConnection;
  try {
    nc = await nats.connect({
      servers: options.servers,
      name: options.name ?? 'sluice',
      timeout: options.connectTimeoutMs ?? JETSTREAM_DEFAULTS.connectTimeoutMs,
      // A server restart must not end the process: keep reconnecting, appends wait and retry.
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      ...(authenticator ? { authenticator } : {}),
      ...(tls ? { tls: { caFile: tls.caFile, certFile: tls.certFile, keyFile: tls.keyFile } } : {}),
    });
  } catch (err) {
    throw new LogUnavailableError(shown, connectReason(err), err);
  }
  try {
    const jsm = await nc.jetstreamManager({ timeout: options.connectTimeoutMs ?? JETSTREAM_DEFAULTS.connectTimeoutMs });
    return { nats, nc, js: nc.jetstream(), jsm };
  } catch (err) {
    await nc.close().catch(() => undefined);
    const code = (err as { code?: string }).code;
    const detail = code === '503' ? 'JetStream is not enabled on the server (start nats-server with -js)' : describe(err);
    throw new LogUnavailableError(shown, detail, err);
  }
}

function connectReason(err: unknown): string {
  const code = (err as { code?: string }).code;
  if (code === 'CONNECTION_REFUSED') return 'connection refused (is nats-server running there?)';
  if (code === 'CONNECTION_TIMEOUT' || code === 'TIMEOUT') return 'connection timed out';
  if (code === 'AUTHORIZATION_VIOLATION') return 'authorization failed (check log.jetstream.credentials)';
  return describe(err);
}
