/**
 * Who does which work. A unit of work is a pipeline's source (`source/<pipeline>`: one reader per
 * file tree, replication slot, ...) or one partition of a sink's input
 * (`sink/<pipeline>/<sink>/<topic>/<partition>`). A worker runs a unit only while it holds its lease.
 *
 * On the local backend one process owns the data directory, so it owns every unit (LocalCoordinator).
 * On JetStream several workers share the units through leases in a KV bucket (kv-coordinator.ts).
 */

export interface WorkLease {
  readonly unit: string;
  /**
   * Grows with every new holder of any unit: a write carrying it is refused by a target that has
   * already seen a newer holder's fence (transactional sinks check it in their transaction).
   */
  readonly fence: number;
  /** Aborted when the lease is lost (not renewed in time, or taken over): stop the work at once. */
  readonly lost: AbortSignal;
  /** Gives the unit up (after the work on it has stopped). Idempotent. */
  release(): Promise<void>;
}

export interface Coordinator {
  /** A short name for logs and status: `local` or `kv:<worker id>`. */
  readonly id: string;
  /** Takes the unit when no live worker holds it; null otherwise. */
  tryAcquire(unit: string): Promise<WorkLease | null>;
  /**
   * How many of `total` units of one kind this worker should hold so the live workers share them
   * evenly (every unit is held when each worker takes its share).
   */
  fairShare(total: number): number;
  /** How long until a dead worker's units can be taken over, for logs and docs. */
  readonly failoverMs: number;
  /** Releases every lease and stops renewing. */
  close(): Promise<void>;
}

const NEVER = new AbortController().signal;

/** One process owns everything: every unit is granted at once and never lost. */
export class LocalCoordinator implements Coordinator {
  readonly id = 'local';
  readonly failoverMs = 0;

  tryAcquire(unit: string): Promise<WorkLease> {
    return Promise.resolve({ unit, fence: 0, lost: NEVER, release: () => Promise.resolve() });
  }

  fairShare(total: number): number {
    return total;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

export class LeaseLostError extends Error {
  readonly code = 'LEASE_LOST';
  readonly retriable = true;
  constructor(unit: string, reason: string) {
    super(`lease on ${unit} lost: ${reason}`);
    this.name = 'LeaseLostError';
  }
}

/** Unit names, in one place so status, docs and tests agree. */
export const units = {
  source: (pipeline: string): string => `source/${pipeline}`,
  sinkPartition: (pipeline: string, sink: string, topic: string, partition: number): string =>
    `sink/${pipeline}/${sink}/${topic}/${partition}`,
};
