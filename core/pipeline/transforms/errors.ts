/**
 * Errors of the transforms. Only configuration is an error: data a transform cannot handle is
 * dealt with by the transform's `on_error` (or passes through unchanged), never thrown.
 */

export type TransformErrorCode = 'SLUICE_BAD_TRANSFORM';

/**
 * A transform's configuration cannot be compiled (unknown type, bad regex, bad template, unknown
 * strftime directive, unknown time zone, anything the schema rejects).
 * `index` is the transform's position in the list; `path` is a JSON Pointer into the list
 * (`/2/condition/and/0/matches`) so the config loader can map it to a file, line and column.
 */
export class TransformConfigError extends Error {
  readonly code: TransformErrorCode = 'SLUICE_BAD_TRANSFORM';
  readonly retriable = false;
  constructor(
    readonly index: number,
    readonly path: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(`transforms${path}: ${detail}`, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
  }
}

/**
 * Thrown by the compilers of single transforms with a pointer relative to the transform;
 * compileTransforms turns it into a TransformConfigError that knows the transform's index.
 */
export class SpecError extends Error {
  constructor(
    readonly pointer: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
  }
}
