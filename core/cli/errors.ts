/**
 * Errors of the command line. Like the log's errors they carry a stable `code`; main.ts turns any
 * error into one line on stderr and an exit status: 2 for a `UsageError`, 1 for everything else.
 */
import { InvalidArgumentError as CommanderInvalidArgumentError } from 'commander';

export type CliErrorCode = 'SLUICE_USAGE' | 'SLUICE_CONFIG' | 'SLUICE_BAD_INPUT' | 'SLUICE_OUTPUT';

export class CliError extends Error {
  readonly code: CliErrorCode;
  readonly retriable = false;
  constructor(code: CliErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
  }
}

/** The command line itself is wrong (bad option value, conflicting options): exit status 2. */
export class UsageError extends CliError {
  constructor(message: string) {
    super('SLUICE_USAGE', message);
  }
}

/** The configuration file cannot be used: missing, unreadable, bad YAML, unsupported backend. */
export class ConfigError extends CliError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('SLUICE_CONFIG', message, options);
  }
}

/** A line of input (e.g. NDJSON on stdin) is unusable; `line` is 1-based. */
export class BadInputError extends CliError {
  constructor(readonly line: number, detail: string, options?: { cause?: unknown }) {
    super('SLUICE_BAD_INPUT', `line ${line}: ${detail}`, options);
  }
}

/** Writing the output failed for a reason other than the reader going away (EPIPE is not an error). */
export class OutputError extends CliError {
  constructor(cause: unknown) {
    super('SLUICE_OUTPUT', `cannot write to stdout: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
    });
  }
}

/**
 * Wraps a parser (units.ts, offset-spec.ts) for commander's `argParser`, so a bad value becomes
 * commander's usage error: "option '--partitions <n>' argument 'x' is invalid. expected ...".
 * Commander already quotes the value, so the parser's own `invalid <what> "<value>": ` is dropped.
 */
export function optionParser<T>(parse: (text: string) => T): (text: string) => T {
  return (text) => {
    try {
      return parse(text);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      throw new CommanderInvalidArgumentError(message.replace(/^invalid [^"]*"[^"]*": /, ''));
    }
  };
}
