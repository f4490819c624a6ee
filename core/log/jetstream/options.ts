import type { Acks } from '../types.js';

/** How to reach the NATS servers; shared by the log and by the workers' lease coordinator. */
export interface NatsConnectionOptions {
  /** One or more `nats://host:port` URLs. */
  servers: string[];
  /** A `.creds` file (JWT + NKey seed). */
  credentials?: string;
  tls?: { caFile?: string; certFile?: string; keyFile?: string };
  /** How long the first connection may take. Default 5 000 ms. */
  connectTimeoutMs?: number;
  /** Shown by `nats server report connections`. */
  name?: string;
}

export interface JetStreamLogOptions extends NatsConnectionOptions {
  /** Prefix of every stream, subject and bucket; `[A-Za-z0-9_-]+`. Default `sluice`. */
  prefix?: string;
  /** Replicas of each partition's stream and of the buckets. Default 1. */
  replicas?: number;
  /** The streams' duplicate window (Nats-Msg-Id). Default 120 000 ms. */
  duplicateWindowMs?: number;
  /** Acks used when an append does not say. Default 'durable'. */
  defaultAcks?: Acks;
  /** Publishes awaiting their ack, per partition. Default 1 000 (the fastest window measured). */
  maxInflight?: number;
  /** Largest frame payload; capped by the server's max_payload. Default 1 MiB. */
  maxFrameBytes?: number;
  /** How long an append keeps retrying through a server restart before it fails. Default 30 000 ms. */
  publishRetryMs?: number;
  /**
   * How long ensureTopic waits for the streams of a topic another process is creating before it
   * adds the missing ones itself (their creator died). Default 15 000 ms.
   */
  topicCreationWaitMs?: number;
  onWarning?: (message: string) => void;
}

export const JETSTREAM_DEFAULTS = {
  prefix: 'sluice',
  replicas: 1,
  duplicateWindowMs: 120_000,
  defaultAcks: 'durable' as Acks,
  maxInflight: 1000,
  maxFrameBytes: 1024 * 1024,
  publishRetryMs: 30_000,
  topicCreationWaitMs: 15_000,
  connectTimeoutMs: 5_000,
  leaseTtlMs: 10_000,
};
