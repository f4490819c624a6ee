import type { Acks } from '../types.js';

export interface LocalLogOptions {
  /** The data directory; created when missing. One process at a time owns it. */
  dir: string;
  /** Acks used when an append does not say. Default 'durable'. */
  defaultAcks?: Acks;
  /** Default segment size for new topics. Default 128 MiB. */
  segmentBytes?: number;
  /** Default segment age for new topics. Default 7 days. */
  segmentMs?: number;
  /** Bytes of log between two sparse index entries. Default 4 KiB. */
  indexIntervalBytes?: number;
  /** Largest record accepted (key + value + headers). Default 16 MiB. */
  maxRecordBytes?: number;
  /** node-cron expression for retention sweeps; false disables the schedule. Default every minute. */
  retentionSchedule?: string | false;
  /** Wait this long after the first queued append before committing, to gather more. Default 0. */
  lingerMs?: number;
  /** Appends wait (backpressure) while more than this many bytes are queued and not yet written. Default 64 MiB. */
  maxPendingBytes?: number;
  /** With acks below 'durable', fsync at least this often anyway. Default 1000 ms. */
  fsyncIntervalMs?: number;
  /**
   * Bytes of recently written batches kept in memory, for readers that keep up with the writers
   * (BatchCache). 0 turns the cache off. Default 64 MiB.
   */
  batchCacheBytes?: number;
  /** Receives recovery and retention notices. Default: silent. */
  onWarning?: (message: string) => void;
}

export const LOCAL_DEFAULTS = {
  defaultAcks: 'durable' as Acks,
  segmentBytes: 128 * 1024 * 1024,
  segmentMs: 7 * 24 * 3600 * 1000,
  indexIntervalBytes: 4096,
  maxRecordBytes: 16 * 1024 * 1024,
  retentionSchedule: '* * * * *',
  lingerMs: 0,
  maxPendingBytes: 64 * 1024 * 1024,
  fsyncIntervalMs: 1000,
  batchCacheBytes: 64 * 1024 * 1024,
};
