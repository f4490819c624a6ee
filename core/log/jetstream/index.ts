import { JetStreamLog } from './jetstream-log.js';
import type { JetStreamLogOptions } from './options.js';

export { JetStreamLog, isJetStreamLog } from './jetstream-log.js';
export { connectNats, loadNats } from './connect.js';
export type { NatsSession } from './connect.js';
export type { JetStreamLogOptions, NatsConnectionOptions } from './options.js';
export { JETSTREAM_DEFAULTS } from './options.js';

/** Connects to NATS and opens the log there; an unreachable server is a LogUnavailableError. */
export function openJetStreamLog(options: JetStreamLogOptions): Promise<JetStreamLog> {
  return JetStreamLog.open(options);
}
