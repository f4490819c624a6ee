/**
 * The coordinator `sluice run` uses: on JetStream, KV leases on a connection of their own (so lease
 * renewals never queue behind a burst of appends) in the bucket `<prefix>_leases`; on the local
 * backend, one process owns everything.
 */
import type { LogBackendConfig } from '../log/open.js';
import { natsConnectionOf } from '../log/open.js';
import { LocalCoordinator, type Coordinator } from './coordinator.js';

export interface OpenedCoordinator {
  coordinator: Coordinator;
  /** Releases the leases, then closes the coordinator's own connection. */
  close(): Promise<void>;
}

export async function openCoordinator(
  log: LogBackendConfig,
  onLost?: (unit: string, reason: string) => void,
): Promise<OpenedCoordinator> {
  if (log.backend !== 'jetstream' || log.jetstream === undefined) {
    const coordinator = new LocalCoordinator();
    return { coordinator, close: () => coordinator.close() };
  }
  const js = log.jetstream;
  const [{ connectNats }, { KvCoordinator }] = await Promise.all([import('../log/jetstream/connect.js'), import('./kv-coordinator.js')]);
  const session = await connectNats({ ...natsConnectionOf(js), name: 'sluice-leases' });
  try {
    const coordinator = await KvCoordinator.open(session.js, {
      bucket: `${js.prefix}_leases`,
      ttlMs: js.leaseTtlMs,
      replicas: js.replicas,
      ...(onLost === undefined ? {} : { onLost }),
    });
    return {
      coordinator,
      close: async () => {
        try {
          await coordinator.close();
        } finally {
          await session.nc.drain().catch(() => session.nc.close());
        }
      },
    };
  } catch (err) {
    await session.nc.close().catch(() => undefined);
    throw err;
  }
}
