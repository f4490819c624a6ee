/**
 * Errors of the `postgres_cdc` source. Callers branch on the class or on `code`, never on the
 * message (docs/errors.md, "Postgres CDC errors"). `retriable` errors make the runtime restart the
 * source with backoff; the others need the operator.
 */
export type CdcErrorCode =
  | 'SLUICE_PG_WAL_LEVEL'
  | 'SLUICE_PG_NOT_REPLICATION'
  | 'SLUICE_PG_NO_REPLICA_IDENTITY'
  | 'SLUICE_PG_SLOT_IN_USE'
  | 'SLUICE_PG_SLOT_MISSING'
  | 'SLUICE_PG_UNKNOWN_TABLE'
  | 'SLUICE_PG_POSITION_INVALID'
  | 'SLUICE_PG_CONNECTION'
  | 'SLUICE_PG_REPLICATION';

export class CdcError extends Error {
  readonly code: CdcErrorCode;
  readonly retriable: boolean;
  constructor(code: CdcErrorCode, message: string, options?: { cause?: unknown; retriable?: boolean }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retriable = options?.retriable ?? false;
  }
}

/** `wal_level` is not `logical`: logical decoding is off on the server. */
export class WalLevelError extends CdcError {
  constructor(readonly walLevel: string) {
    super(
      'SLUICE_PG_WAL_LEVEL',
      `postgres_cdc needs wal_level = logical, the server has wal_level = ${walLevel}: set it in postgresql.conf (ALTER SYSTEM SET wal_level = logical) and restart the server`,
    );
  }
}

/** The user may not use replication. */
export class ReplicationPrivilegeError extends CdcError {
  constructor(readonly user: string, options?: { cause?: unknown }) {
    super(
      'SLUICE_PG_NOT_REPLICATION',
      `user "${user}" lacks the REPLICATION attribute needed for logical replication: ALTER ROLE ${JSON.stringify(user)} WITH REPLICATION (or connect as a role that has it)`,
      options,
    );
  }
}

/** A captured table cannot publish updates and deletes: no primary key and no replica identity. */
export class NoReplicaIdentityError extends CdcError {
  constructor(readonly tables: string[]) {
    super(
      'SLUICE_PG_NO_REPLICA_IDENTITY',
      `table${tables.length === 1 ? '' : 's'} ${tables.join(', ')} ha${tables.length === 1 ? 's' : 've'} no primary key and no replica identity, so updates and deletes cannot be captured (Postgres would even refuse them once published): add a primary key, or ALTER TABLE ... REPLICA IDENTITY FULL (or USING INDEX a unique index)`,
    );
  }
}

/** Another connection (another sluice worker, pg_recvlogical ...) streams from the slot. */
export class SlotInUseError extends CdcError {
  constructor(readonly slot: string, readonly pid: number | null, options?: { cause?: unknown }) {
    super(
      'SLUICE_PG_SLOT_IN_USE',
      `replication slot "${slot}" is in use${pid === null ? '' : ` by server process ${pid}`}: another reader streams from it (two pipelines with the same slot name, or a second worker); give each pipeline its own slot`,
      { ...options, retriable: true },
    );
  }
}

/** The slot is gone while the pipeline has a committed streaming position: changes may be lost. */
export class SlotMissingError extends CdcError {
  constructor(readonly slot: string, readonly lsn: string) {
    super(
      'SLUICE_PG_SLOT_MISSING',
      `replication slot "${slot}" does not exist, but the pipeline had streamed up to LSN ${lsn}: the changes since then can no longer be read. To start over with a fresh snapshot, run \`sluice pipelines drop <pipeline>\` (it resets the pipeline's position) and start again`,
    );
  }
}

export class UnknownTableError extends CdcError {
  constructor(readonly tables: string[]) {
    super('SLUICE_PG_UNKNOWN_TABLE', `table${tables.length === 1 ? '' : 's'} not found: ${tables.join(', ')}`);
  }
}

export class CdcPositionError extends CdcError {
  constructor(message: string) {
    super('SLUICE_PG_POSITION_INVALID', message);
  }
}

/** The connection failed or the server went away: the runtime reconnects with backoff. */
export class CdcConnectionError extends CdcError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('SLUICE_PG_CONNECTION', message, { ...options, retriable: true });
  }
}
