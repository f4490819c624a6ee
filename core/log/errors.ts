/**
 * Errors of the log layer. Callers branch on the class or on `code`, never on the message.
 * `retriable` says whether trying the same call again later can succeed.
 */
export type LogErrorCode =
  | 'SLUICE_UNKNOWN_TOPIC'
  | 'SLUICE_TOPIC_EXISTS'
  | 'SLUICE_INVALID_TOPIC'
  | 'SLUICE_BAD_PARTITION'
  | 'SLUICE_OFFSET_OUT_OF_RANGE'
  | 'SLUICE_DIRECTORY_LOCKED'
  | 'SLUICE_RECORD_TOO_LARGE'
  | 'SLUICE_CORRUPT_RECORD'
  | 'SLUICE_LOG_CLOSED'
  | 'SLUICE_LOG_FAILED'
  | 'SLUICE_STORAGE_FULL'
  | 'SLUICE_INVALID_ARGUMENT'
  | 'SLUICE_UNKNOWN_GROUP'
  | 'SLUICE_APPEND_FAILED'
  | 'SLUICE_LOG_UNAVAILABLE';

export class LogError extends Error {
  readonly code: LogErrorCode;
  readonly retriable: boolean;
  constructor(code: LogErrorCode, message: string, options?: { cause?: unknown; retriable?: boolean }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retriable = options?.retriable ?? false;
  }
}

export class UnknownTopicError extends LogError {
  constructor(readonly topic: string) {
    super('SLUICE_UNKNOWN_TOPIC', `unknown topic "${topic}"`);
  }
}

export class TopicExistsError extends LogError {
  constructor(readonly topic: string) {
    super('SLUICE_TOPIC_EXISTS', `topic "${topic}" already exists`);
  }
}

export class InvalidTopicError extends LogError {
  constructor(readonly topic: string, reason: string) {
    super('SLUICE_INVALID_TOPIC', `invalid topic "${topic}": ${reason}`);
  }
}

export class BadPartitionError extends LogError {
  constructor(readonly topic: string, readonly partition: number, readonly partitions: number) {
    super(
      'SLUICE_BAD_PARTITION',
      `topic "${topic}" has no partition ${partition} (it has ${partitions}: 0..${partitions - 1})`,
    );
  }
}

export class OffsetOutOfRangeError extends LogError {
  constructor(
    readonly topic: string,
    readonly partition: number,
    readonly offset: number,
    readonly startOffset: number,
    readonly endOffset: number,
  ) {
    super(
      'SLUICE_OFFSET_OUT_OF_RANGE',
      `offset ${offset} is out of range for ${topic}/${partition} (valid: ${startOffset}..${endOffset})`,
    );
  }
}

export class DirectoryLockedError extends LogError {
  constructor(readonly dir: string, readonly pid: number | undefined, detail?: string) {
    super(
      'SLUICE_DIRECTORY_LOCKED',
      detail !== undefined
        ? `data directory ${dir} is in use: ${detail}`
        : `data directory ${dir} is in use by another sluice process` +
            (pid === undefined ? '' : ` (pid ${pid})`) +
            '; stop it or point this command at another --data-dir',
    );
  }
}

export class RecordTooLargeError extends LogError {
  constructor(readonly size: number, readonly max: number) {
    super('SLUICE_RECORD_TOO_LARGE', `record of ${size} bytes exceeds the maximum of ${max} bytes (max_record_bytes)`);
  }
}

export class CorruptRecordError extends LogError {
  constructor(readonly file: string, readonly position: number, detail: string) {
    super('SLUICE_CORRUPT_RECORD', `corrupt data in ${file} at byte ${position}: ${detail}`);
  }
}

export class LogClosedError extends LogError {
  constructor() {
    super('SLUICE_LOG_CLOSED', 'the log is closed');
  }
}

/** The log hit an I/O failure it cannot safely continue from (e.g. fsync failed); reopen it to recover. */
export class LogFailedError extends LogError {
  constructor(cause: unknown) {
    super('SLUICE_LOG_FAILED', `the log stopped after an I/O failure and must be reopened: ${describe(cause)}`, {
      cause,
    });
  }
}

export class StorageFullError extends LogError {
  constructor(readonly dir: string, cause: unknown) {
    super('SLUICE_STORAGE_FULL', `no space left on the device holding ${dir}; nothing of the failed append was kept`, {
      cause,
      retriable: true,
    });
  }
}

export class InvalidArgumentError extends LogError {
  constructor(message: string) {
    super('SLUICE_INVALID_ARGUMENT', message);
  }
}

export class UnknownGroupError extends LogError {
  constructor(readonly group: string) {
    super('SLUICE_UNKNOWN_GROUP', `unknown consumer group "${group}"`);
  }
}

/** A write failed; nothing of the append was kept and the log goes on. */
export class AppendFailedError extends LogError {
  constructor(cause: unknown) {
    super('SLUICE_APPEND_FAILED', `append failed and was undone: ${describe(cause)}`, { cause, retriable: true });
  }
}

/** The log's server (NATS JetStream) cannot be reached or refused us; nothing was changed. */
export class LogUnavailableError extends LogError {
  constructor(readonly servers: string, detail: string, cause?: unknown) {
    super('SLUICE_LOG_UNAVAILABLE', `the log at ${servers} is unavailable: ${detail}`, { cause, retriable: true });
  }
}

export function describe(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
