/**
 * Errors of the admin HTTP server. Like the log's errors they carry a stable `code` and a
 * `retriable` flag; callers branch on the class or the code, never on the message.
 */
export type AdminErrorCode = 'SLUICE_ADMIN_LISTEN' | 'SLUICE_ADMIN_INVALID_LISTEN';

export class AdminError extends Error {
  readonly code: AdminErrorCode;
  readonly retriable: boolean;
  constructor(code: AdminErrorCode, message: string, options?: { cause?: unknown; retriable?: boolean }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retriable = options?.retriable ?? false;
  }
}

/** `admin.listen` is not of the form `host:port` / `[ipv6]:port`; a configuration error. */
export class InvalidListenAddressError extends AdminError {
  constructor(readonly listen: string, reason: string) {
    super('SLUICE_ADMIN_INVALID_LISTEN', `invalid admin listen address "${listen}": ${reason}`);
  }
}

const REASONS: Readonly<Record<string, string>> = {
  EADDRINUSE: 'address already in use (another sluice or another program holds the port; choose another admin.listen)',
  EACCES: 'permission denied (ports below 1024 need privileges)',
  EADDRNOTAVAIL: 'address not available (no interface of this machine has that address)',
  ENOTFOUND: 'host name does not resolve',
  EAI_AGAIN: 'host name lookup failed temporarily',
};

/**
 * The admin server could not bind `address`. `errno` is the system's code (EADDRINUSE, EACCES,
 * ...), also kept on `cause`. Only a port in use can free up later, so only it is retriable.
 */
export class AdminListenError extends AdminError {
  readonly errno: string | undefined;
  constructor(readonly address: string, cause: unknown) {
    const errno = systemCode(cause);
    const reason =
      (errno === undefined ? undefined : REASONS[errno]) ??
      (cause instanceof Error ? cause.message : String(cause));
    super('SLUICE_ADMIN_LISTEN', `admin server cannot listen on ${address}: ${reason}`, {
      cause,
      retriable: errno === 'EADDRINUSE',
    });
    this.errno = errno;
  }
}

function systemCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null || !('code' in error)) return undefined;
  const code = (error as { code: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}
