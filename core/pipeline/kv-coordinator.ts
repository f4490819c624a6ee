/**
 * Leases in a JetStream KV bucket, so several `sluice run` workers share the units of work.
 *
 *  - A lease is a key `lease.<unit>`. Taking it is `create` (fails while the key exists); keeping it
 *    is `update` with the revision last written (compare-and-set), every `renewMs`; giving it up is
 *    a delete conditional on that revision.
 *  - The bucket's max age is the TTL: a worker that stops renewing (killed, partitioned) loses its
 *    keys to the server's expiry after at most `ttlMs`, and the survivors take them on their next
 *    scan. A worker that cannot renew within `ttlMs - renewMs` of its last successful renewal
 *    considers the lease lost and stops the work itself, before the server frees the key.
 *  - The fence of a lease is the KV revision of the `create` that took it: revisions only grow, so a
 *    later holder of a unit always has a larger fence than every earlier one. Transactional sinks
 *    store it with their offsets and refuse writes carrying a smaller one.
 *  - Live workers announce themselves under `worker.<id>` (same TTL), so each can compute its fair
 *    share of the units.
 */
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import type { JetStreamClient, JetStreamManager, KV } from 'nats';

import { liveKeys } from '../log/jetstream/kv-keys.js';
import type { Coordinator, WorkLease } from './coordinator.js';

export interface KvCoordinatorOptions {
  /** Bucket holding leases and worker registrations. Default `sluice_leases`. */
  bucket?: string;
  /** A worker's leases expire this long after its last renewal. Default 10 000 ms. */
  ttlMs?: number;
  /** Renewal period. Default a third of the TTL. */
  renewMs?: number;
  /** Replicas of the bucket's stream. Default 1. */
  replicas?: number;
  /** Unique per process; default host-pid-random. */
  workerId?: string;
  onLost?: (unit: string, reason: string) => void;
}

interface Held {
  lease: WorkLease;
  key: string;
  revision: number;
  /** performance.now() when the last successful renewal was sent. */
  renewedAt: number;
  lost: AbortController;
}

/** KV keys allow `[-/=.\w]`, with `.` separating tokens: everything else (and `.`) is escaped as =XX. */
export function leaseKey(unit: string): string {
  return `lease.${unit.replace(/[^-/\w]/g, (c) => `=${c.codePointAt(0)!.toString(16).padStart(2, '0')}`)}`;
}

export class KvCoordinator implements Coordinator {
  readonly id: string;
  readonly failoverMs: number;
  private readonly held = new Map<string, Held>();
  private readonly workerKey: string;
  private liveWorkers = 1;
  private timer: NodeJS.Timeout | undefined;
  private renewing: Promise<void> = Promise.resolve();
  private closed = false;

  private constructor(
    private readonly kv: KV,
    private readonly jsm: JetStreamManager,
    private readonly bucket: string,
    private readonly workerId: string,
    private readonly ttlMs: number,
    private readonly renewMs: number,
    private readonly onLost: (unit: string, reason: string) => void,
  ) {
    this.id = `kv:${workerId}`;
    this.workerKey = `worker.${workerId.replace(/[^-\w]/g, '_')}`;
    // Expiry on the server, then the survivors' next scan (the runtime scans every second).
    this.failoverMs = ttlMs + 1000;
  }

  static async open(js: JetStreamClient, options: KvCoordinatorOptions = {}): Promise<KvCoordinator> {
    const ttlMs = options.ttlMs ?? 10_000;
    const renewMs = options.renewMs ?? Math.floor(ttlMs / 3);
    if (!(renewMs > 0 && renewMs < ttlMs / 2)) {
      throw new RangeError(`lease renewal every ${renewMs} ms must be under half the TTL (${ttlMs} ms)`);
    }
    const bucket = options.bucket ?? 'sluice_leases';
    const kv = await js.views.kv(bucket, { history: 1, ttl: ttlMs, replicas: options.replicas ?? 1 });
    const status = await kv.status();
    if (status.ttl !== ttlMs) {
      throw new RangeError(
        `KV bucket ${status.bucket} expires entries after ${status.ttl} ms, but this worker was configured with a lease TTL of ${ttlMs} ms; use the same TTL on every worker (or delete the bucket)`,
      );
    }
    const workerId = options.workerId ?? `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
    const c = new KvCoordinator(kv, await js.jetstreamManager(), bucket, workerId, ttlMs, renewMs, options.onLost ?? (() => undefined));
    await c.announce();
    c.timer = setInterval(() => {
      c.renewing = c.renewing.then(() => c.renewAll());
    }, renewMs);
    c.timer.unref?.();
    return c;
  }

  async tryAcquire(unit: string): Promise<WorkLease | null> {
    if (this.closed) return null;
    const existing = this.held.get(unit);
    if (existing !== undefined && !existing.lost.signal.aborted) return existing.lease;
    const key = leaseKey(unit);
    const sentAt = performance.now();
    let revision: number;
    try {
      revision = await this.kv.create(key, this.value());
    } catch (err) {
      if (isWrongLastSequence(err)) return null;
      throw err;
    }
    const lost = new AbortController();
    const held: Held = {
      key,
      revision,
      renewedAt: sentAt,
      lost,
      lease: {
        unit,
        fence: revision,
        lost: lost.signal,
        release: () => this.release(unit, held),
      },
    };
    this.held.set(unit, held);
    return held.lease;
  }

  fairShare(total: number): number {
    return Math.ceil(total / Math.max(1, this.liveWorkers));
  }

  /** Units this worker holds now. */
  holding(): string[] {
    return [...this.held.keys()];
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    await this.renewing;
    await Promise.allSettled([...this.held.entries()].map(([unit, h]) => this.release(unit, h)));
    // Our own key: nobody else writes it, so a plain delete (a renewal may have moved its revision).
    await this.kv.delete(this.workerKey).catch(() => undefined);
  }

  private value(): string {
    return JSON.stringify({ worker: this.workerId, host: hostname(), pid: process.pid, at: new Date().toISOString() });
  }

  private async announce(): Promise<void> {
    await this.kv.put(this.workerKey, this.value());
    await this.countWorkers();
  }

  private async countWorkers(): Promise<void> {
    this.liveWorkers = Math.max(1, (await liveKeys(this.jsm, this.kv, this.bucket, 'worker.>')).length);
  }


  private async release(unit: string, h: Held): Promise<void> {
    if (this.held.get(unit) !== h) return;
    this.held.delete(unit);
    h.lost.abort(new Error('released'));
    await this.kv.delete(h.key, { previousSeq: h.revision }).catch(() => undefined);
  }

  private lose(unit: string, h: Held, reason: string): void {
    if (this.held.get(unit) !== h) return;
    this.held.delete(unit);
    h.lost.abort(new Error(reason));
    this.onLost(unit, reason);
  }

  private async renewAll(): Promise<void> {
    if (this.closed) return;
    try {
      await this.kv.put(this.workerKey, this.value());
      await this.countWorkers();
    } catch {
      // Counted again on the next round; the leases below decide for themselves.
    }
    await Promise.all(
      [...this.held.entries()].map(async ([unit, h]) => {
        const sentAt = performance.now();
        // A stalled event loop can outlive the lease: stop before the server may hand it out.
        if (sentAt - h.renewedAt > this.ttlMs - this.renewMs) {
          this.lose(unit, h, `not renewed for ${Math.round(sentAt - h.renewedAt)} ms (this process was stalled)`);
          return;
        }
        try {
          h.revision = await this.kv.update(h.key, this.value(), h.revision);
          h.renewedAt = sentAt;
        } catch (err) {
          if (isWrongLastSequence(err)) {
            this.lose(unit, h, 'another worker took it over (it expired before it was renewed)');
          } else if (performance.now() - h.renewedAt > this.ttlMs - this.renewMs) {
            this.lose(unit, h, `not renewed for ${Math.round(performance.now() - h.renewedAt)} ms: ${(err as Error).message}`);
          }
        }
      }),
    );
  }
}

/** The server's answer to a create/update whose expected revision did not match (JetStream err_code 10071). */
function isWrongLastSequence(err: unknown): boolean {
  const e = err as { api_error?: { err_code?: number }; message?: string };
  return e?.api_error?.err_code === 10071 || /wrong last sequence/i.test(e?.message ?? '');
}

