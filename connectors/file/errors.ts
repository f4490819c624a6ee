/**
 * Errors of the `file` source. Callers branch on the class or on `code`, never on the message.
 * Codes follow the `SLUICE_*` convention of docs/errors.md.
 */
export type FileSourceErrorCode = 'SLUICE_FILE_POSITION_INVALID' | 'SLUICE_FILE_CONFIG_INVALID';

export class FileSourceError extends Error {
  readonly code: FileSourceErrorCode;
  readonly retriable: boolean;
  constructor(code: FileSourceErrorCode, message: string, options?: { cause?: unknown; retriable?: boolean }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retriable = options?.retriable ?? false;
  }
}

/** A committed position this source cannot read (not written by it, or by a newer version). */
export class FilePositionError extends FileSourceError {
  constructor(message: string) {
    super('SLUICE_FILE_POSITION_INVALID', message);
  }
}

/** A config value the schema cannot check, e.g. a multiline pattern that is not a valid regex. */
export class FileConfigError extends FileSourceError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('SLUICE_FILE_CONFIG_INVALID', message, options);
  }
}
