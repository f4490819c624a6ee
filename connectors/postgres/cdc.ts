/** The `postgres_cdc` source declaration (docs/connectors/postgres-cdc.md). */
import type { SourceDeclaration } from '../sdk.js';
import { connectQueryClient, dropPublication, dropSlot, slotFacts } from './cdc-catalog.js';
import { cdcConfigSchema, resolveCdcConfig, type CdcConfig } from './cdc-config.js';
import { SlotInUseError } from './cdc-errors.js';
import { CdcSource } from './cdc-source.js';

export const postgresCdcSource: SourceDeclaration<CdcConfig> = {
  kind: 'source',
  type: 'postgres_cdc',
  summary: 'change data capture from PostgreSQL: a consistent snapshot, then every committed change (logical replication, pgoutput)',
  replayable: true,
  schema: cdcConfigSchema,
  create: (config, ctx) => new CdcSource(resolveCdcConfig(config, ctx.pipeline), ctx),
  async drop(config, ctx) {
    const cfg = resolveCdcConfig(config, ctx.pipeline);
    const client = await connectQueryClient(cfg.url, () => undefined);
    try {
      const done: string[] = [];
      const slot = await slotFacts(client, cfg.slot);
      if (slot?.active === true) throw new SlotInUseError(cfg.slot, slot.activePid);
      if (await dropSlot(client, cfg.slot)) done.push(`dropped replication slot "${cfg.slot}"`);
      if (await dropPublication(client, cfg.publication)) done.push(`dropped publication "${cfg.publication}"`);
      return done;
    } finally {
      await client.end().catch(() => undefined);
    }
  },
};
