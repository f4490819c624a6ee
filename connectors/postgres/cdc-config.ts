/**
 * The `postgres_cdc` source's configuration: its JSON Schema (the single source of truth, which
 * validates pipelines.yaml and documents the keys) and the derived names.
 */
export interface CdcConfig {
  url: string;
  tables?: string[];
  publication?: string;
  slot?: string;
  snapshot?: 'initial' | 'never' | 'initial_only';
  max_batch_records?: number;
  max_transaction_records?: number;
  status_interval_ms?: number;
  snapshot_fetch_rows?: number;
}

export const cdcConfigSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['url'],
  properties: {
    url: { type: 'string', minLength: 1, description: 'connection URL (postgres://user:password@host:port/database); the user needs REPLICATION' },
    tables: {
      type: 'array',
      minItems: 1,
      uniqueItems: true,
      items: { type: 'string', minLength: 1 },
      description: 'tables to capture, "schema.table" or "table" (schema public); absent: all tables (FOR ALL TABLES, needs a superuser to create the publication)',
    },
    publication: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]{0,62}$', description: 'publication name; default sluice_<pipeline>; created when missing' },
    slot: { type: 'string', pattern: '^[a-z0-9_]{1,63}$', description: 'replication slot name; default sluice_<pipeline>; created when missing' },
    snapshot: {
      type: 'string',
      enum: ['initial', 'never', 'initial_only'],
      default: 'initial',
      description: 'initial: existing rows (op r) then changes; never: changes only; initial_only: existing rows, then the source ends',
    },
    max_batch_records: { type: 'integer', minimum: 1, maximum: 1_000_000, default: 10_000, description: 'whole transactions are gathered into one batch up to this many changes' },
    max_transaction_records: {
      type: 'integer',
      minimum: 1,
      maximum: 10_000_000,
      default: 100_000,
      description: 'a transaction with more changes is committed to the log in parts of this size (resumes inside it after a crash)',
    },
    status_interval_ms: { type: 'integer', minimum: 100, maximum: 600_000, default: 10_000, description: 'how often the server hears from the source (standby status update)' },
    snapshot_fetch_rows: { type: 'integer', minimum: 1, maximum: 1_000_000, default: 10_000, description: 'rows fetched at a time during the snapshot' },
  },
} as const;

/** A name usable as a slot or publication: lowercase letters, digits and _, at most 63 characters. */
export function derivedName(pipeline: string): string {
  const base = `sluice_${pipeline.toLowerCase().replace(/[^a-z0-9_]/g, '_')}`;
  return base.length <= 63 ? base : base.slice(0, 63);
}

export interface ResolvedCdcConfig {
  url: string;
  tables: { schema: string; table: string }[] | null;
  publication: string;
  slot: string;
  snapshot: 'initial' | 'never' | 'initial_only';
  maxBatchRecords: number;
  maxTransactionRecords: number;
  statusIntervalMs: number;
  snapshotFetchRows: number;
}

/** "schema.table", "table", or quoted parts ("My Schema"."My.Table"). */
export function parseTableName(text: string): { schema: string; table: string } {
  const parts: string[] = [];
  let i = 0;
  while (i < text.length) {
    if (text[i] === '"') {
      let s = '';
      i++;
      for (;;) {
        if (i >= text.length) throw new Error(`table name ${JSON.stringify(text)}: unclosed quote`);
        if (text[i] === '"') {
          if (text[i + 1] === '"') {
            s += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        s += text[i++];
      }
      parts.push(s);
    } else {
      let j = text.indexOf('.', i);
      if (j < 0) j = text.length;
      parts.push(text.slice(i, j).toLowerCase());
      i = j;
    }
    if (i < text.length) {
      if (text[i] !== '.') throw new Error(`table name ${JSON.stringify(text)}: expected "." after a quoted part`);
      i++;
    }
  }
  if (parts.length === 1) return { schema: 'public', table: parts[0]! };
  if (parts.length === 2 && parts[0] !== '' && parts[1] !== '') return { schema: parts[0]!, table: parts[1]! };
  throw new Error(`table name ${JSON.stringify(text)} is not "schema.table" or "table"`);
}

export function resolveCdcConfig(config: CdcConfig, pipeline: string): ResolvedCdcConfig {
  return {
    url: config.url,
    tables: config.tables === undefined ? null : config.tables.map(parseTableName),
    publication: config.publication ?? derivedName(pipeline),
    slot: config.slot ?? derivedName(pipeline),
    snapshot: config.snapshot ?? 'initial',
    maxBatchRecords: config.max_batch_records ?? 10_000,
    maxTransactionRecords: config.max_transaction_records ?? 100_000,
    statusIntervalMs: config.status_interval_ms ?? 10_000,
    snapshotFetchRows: config.snapshot_fetch_rows ?? 10_000,
  };
}
