/**
 * Errors of the `postgres` sink, and how a Postgres error is classified. Callers branch on the
 * class or on `code`, never on the message (docs/errors.md).
 *
 * `retriable: false` means "this data cannot be written as it is": the runtime then writes the
 * batch record by record and dead-letters the records that fail. `retriable: true` means the
 * server or the connection failed: the runtime retries the batch with backoff.
 */
export type PgSinkErrorCode =
  | 'SLUICE_PG_DATA'
  | 'SLUICE_PG_CONNECTION'
  | 'SLUICE_PG_NEW_FIELDS'
  | 'SLUICE_PG_NO_TABLE'
  | 'SLUICE_PG_BAD_RECORD'
  | 'SLUICE_PG_CONFIG';

export class PgSinkError extends Error {
  readonly code: PgSinkErrorCode;
  readonly retriable: boolean;
  /** The SQLSTATE of the server error behind it, when there is one. */
  readonly sqlState: string | undefined;
  constructor(code: PgSinkErrorCode, message: string, options: { cause?: unknown; retriable?: boolean; sqlState?: string } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retriable = options.retriable ?? false;
    this.sqlState = options.sqlState;
  }
}

/**
 * SQLSTATE classes (the first two characters) that say the data or the statement is wrong, not
 * the server: 22 data exception (bad value, out of range, invalid text for the type), 23
 * integrity constraint (not null, unique, check, foreign key), 42 syntax error or access rule
 * (undefined column, datatype mismatch, insufficient privilege), 2F/38/39 routine exceptions,
 * 44 WITH CHECK OPTION, 54 program limit (row too big), 0A feature not supported.
 * Everything else (08 connection, 40 rollback/deadlock, 53 resources, 57 shutdown, 58 system,
 * 55 lock not available, XX internal, network errors without a SQLSTATE) is retriable.
 */
const DATA_CLASSES = new Set(['22', '23', '42', '2F', '38', '39', '44', '54', '0A', '21', '27']);

export function isDataSqlState(state: string | undefined): boolean {
  return state !== undefined && DATA_CLASSES.has(state.slice(0, 2));
}

/** Wraps any error from `pg` as a PgSinkError with the right `retriable`; keeps ours as they are. */
export function classifyPgError(err: unknown, what: string): PgSinkError {
  if (err instanceof PgSinkError) return err;
  const e = err as { code?: unknown; message?: unknown; detail?: unknown; where?: unknown };
  const state = typeof e?.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code) ? e.code : undefined;
  const message = typeof e?.message === 'string' ? e.message : String(err);
  // `where` names the COPY line and column of a bad value: what an operator reading a dead letter needs.
  const detail = [e?.detail, e?.where].filter((x) => typeof x === 'string').map((x) => ` (${x as string})`).join('');
  if (isDataSqlState(state)) {
    return new PgSinkError('SLUICE_PG_DATA', `${what}: ${message}${detail} [SQLSTATE ${state}]`, { cause: err, sqlState: state });
  }
  return new PgSinkError('SLUICE_PG_CONNECTION', `${what}: ${message}${state === undefined ? '' : ` [SQLSTATE ${state}]`}`, {
    cause: err,
    retriable: true,
    sqlState: state,
  });
}

/** A URL with its password replaced, for messages: secrets in `url` are never logged. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    u.searchParams.forEach((_v, k) => {
      if (/pass|secret|key|token/i.test(k)) u.searchParams.set(k, '***');
    });
    return u.toString();
  } catch {
    return '(unparseable url)';
  }
}
