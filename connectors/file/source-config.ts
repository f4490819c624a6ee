/**
 * The `file` source's config: its JSON Schema (the spec: it validates pipelines.yaml and is what
 * docs/connectors/file-source.md describes), the TypeScript shape of a validated config, and
 * defaults applied once.
 */
import { COMPRESSED, compileGlob, PathFilter, type CompiledGlob } from './glob.js';
import { FileConfigError } from './errors.js';
import type { FileFormat } from './format.js';
import type { MultilineRule } from './multiline.js';
import type { ConfigProblem } from '../sdk.js';

export interface FileSourceConfig {
  include: string[];
  exclude?: string[];
  exclude_compressed?: boolean;
  start_at?: 'beginning' | 'end';
  ignore_older_ms?: number;
  format?: FileFormat;
  on_parse_error?: 'keep' | 'dlq';
  fingerprint_bytes?: number;
  max_line_bytes?: number;
  multiline?: { start_pattern?: string; continuation_pattern?: string; timeout_ms?: number };
  partial_line_timeout_ms?: number;
  rotate_wait_ms?: number;
  poll_interval_ms?: number;
  max_open_files?: number;
  close_inactive_ms?: number;
  read_buffer_bytes?: number;
  batch_max_lines?: number;
  batch_max_bytes?: number;
}

export const DEFAULTS = {
  fingerprint_bytes: 256,
  max_line_bytes: 102_400,
  multiline_timeout_ms: 1000,
  partial_line_timeout_ms: 5000,
  rotate_wait_ms: 5000,
  poll_interval_ms: 1000,
  max_open_files: 256,
  close_inactive_ms: 300_000,
  read_buffer_bytes: 1024 * 1024,
  batch_max_lines: 10_000,
  batch_max_bytes: 2 * 1024 * 1024,
} as const;

export const fileSourceSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['include'],
  properties: {
    include: {
      type: 'array',
      minItems: 1,
      items: { type: 'string', minLength: 1 },
      description: 'globs of the files to tail (* ? ** [..] {a,b}); relative ones resolve against the pipelines file',
    },
    exclude: {
      type: 'array',
      items: { type: 'string', minLength: 1 },
      description: 'globs of files to leave out: with a "/" matched against the whole path, without against the file name',
    },
    exclude_compressed: {
      type: 'boolean',
      default: true,
      description: `leave out compressed files (${COMPRESSED.join(' ')}), e.g. rotated logs gzipped by logrotate`,
    },
    start_at: {
      enum: ['beginning', 'end'],
      default: 'beginning',
      description: 'where to start in files found at the very first start (no committed position); files that appear later are read from the beginning, and a committed position always wins',
    },
    ignore_older_ms: {
      type: 'integer',
      minimum: 1,
      description: 'a newly found file last modified longer ago than this starts at its end (its old content is not read; what is appended is)',
    },
    format: {
      enum: ['text', 'json', 'logfmt'],
      default: 'text',
      description: 'text: the line in `message`; json: one JSON object a line; logfmt: key=value pairs',
    },
    on_parse_error: {
      enum: ['keep', 'dlq'],
      default: 'keep',
      description: 'json/logfmt lines that do not parse. keep: the event is { timestamp, host, file, message: <line>, parse_error: <why> }; dlq: { error, topic, original: { timestamp, host, file, message } } goes to <topic>.dlq instead, in the same commit',
    },
    fingerprint_bytes: {
      type: 'integer',
      minimum: 16,
      maximum: 65536,
      default: DEFAULTS.fingerprint_bytes,
      description: 'how many first bytes identify a file beside its device and inode; shorter files use what they have',
    },
    max_line_bytes: {
      type: 'integer',
      minimum: 16,
      maximum: 64 * 1024 * 1024,
      default: DEFAULTS.max_line_bytes,
      description: 'a longer line (or multiline event) is cut to this many bytes and counted',
    },
    multiline: {
      type: 'object',
      additionalProperties: false,
      description: 'join lines into events: give start_pattern (a line matching it begins an event) or continuation_pattern (a line matching it continues the previous one)',
      properties: {
        start_pattern: { type: 'string', minLength: 1, description: 'JavaScript regular expression' },
        continuation_pattern: { type: 'string', minLength: 1, description: 'JavaScript regular expression' },
        timeout_ms: {
          type: 'integer',
          minimum: 1,
          default: DEFAULTS.multiline_timeout_ms,
          description: 'an event is complete when this long passes with no new line at the end of its file',
        },
      },
      oneOf: [{ required: ['start_pattern'] }, { required: ['continuation_pattern'] }],
    },
    partial_line_timeout_ms: {
      type: 'integer',
      minimum: 0,
      default: DEFAULTS.partial_line_timeout_ms,
      description: 'a last line without its newline is emitted after this long with no new data; 0 waits for the newline forever (it is still emitted when the file is rotated away or deleted)',
    },
    rotate_wait_ms: {
      type: 'integer',
      minimum: 0,
      default: DEFAULTS.rotate_wait_ms,
      description: 'a file rotated away or deleted is read to its end, then released once it has not grown for this long',
    },
    poll_interval_ms: {
      type: 'integer',
      minimum: 10,
      default: DEFAULTS.poll_interval_ms,
      description: 'how often files are looked for and checked for growth, truncation and rotation (file events wake the source sooner)',
    },
    max_open_files: {
      type: 'integer',
      minimum: 1,
      default: DEFAULTS.max_open_files,
      description: 'file handles kept open; past it the least recently read files are closed and reopened when they grow',
    },
    close_inactive_ms: {
      type: 'integer',
      minimum: 0,
      default: DEFAULTS.close_inactive_ms,
      description: 'a file read to its end that has not grown for this long has its handle closed (reopened when it grows); 0 keeps handles open',
    },
    read_buffer_bytes: {
      type: 'integer',
      minimum: 64,
      maximum: 64 * 1024 * 1024,
      default: DEFAULTS.read_buffer_bytes,
      description: 'bytes read from a file at once',
    },
    batch_max_lines: {
      type: 'integer',
      minimum: 1,
      maximum: 1_000_000,
      default: DEFAULTS.batch_max_lines,
      description: 'events in one batch (one atomic append with its position)',
    },
    batch_max_bytes: {
      type: 'integer',
      minimum: 1,
      default: DEFAULTS.batch_max_bytes,
      description: 'line bytes in one batch',
    },
  },
} as const;

/** A config with every default applied and every pattern compiled. */
export interface ResolvedConfig {
  include: CompiledGlob[];
  exclude: PathFilter;
  startAt: 'beginning' | 'end';
  ignoreOlderMs: number | null;
  format: FileFormat;
  onParseError: 'keep' | 'dlq';
  fingerprintBytes: number;
  maxLineBytes: number;
  multiline: MultilineRule | null;
  multilineTimeoutMs: number;
  partialLineTimeoutMs: number;
  rotateWaitMs: number;
  pollIntervalMs: number;
  maxOpenFiles: number;
  closeInactiveMs: number;
  readBufferBytes: number;
  batchMaxLines: number;
  batchMaxBytes: number;
}

function regex(source: string, key: string): RegExp {
  try {
    return new RegExp(source);
  } catch (err) {
    throw new FileConfigError(`multiline.${key} is not a valid regular expression: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * What the schema cannot check: globs that do not compile (an unclosed `{`, a bad character
 * range) and multiline patterns that are not regular expressions; each at its key path.
 */
export function validateConfig(c: FileSourceConfig, baseDir: string): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const globs = (key: 'include' | 'exclude'): void => {
    for (const [i, g] of (c[key] ?? []).entries()) {
      try {
        compileGlob(g, baseDir);
      } catch (err) {
        problems.push({ path: `${key}.${i}`, message: `not a valid glob: ${(err as Error).message}` });
      }
    }
  };
  globs('include');
  globs('exclude');
  for (const key of ['start_pattern', 'continuation_pattern'] as const) {
    const source = c.multiline?.[key];
    if (source === undefined) continue;
    try {
      new RegExp(source);
    } catch (err) {
      problems.push({ path: `multiline.${key}`, message: `not a valid regular expression: ${(err as Error).message}`, hint: 'JavaScript syntax; escape a literal ( [ { . * + ? with a backslash' });
    }
  }
  return problems;
}

export function resolveConfig(c: FileSourceConfig, baseDir: string): ResolvedConfig {
  let include: CompiledGlob[];
  let exclude: PathFilter;
  try {
    include = c.include.map((g) => compileGlob(g, baseDir));
    exclude = new PathFilter([...(c.exclude ?? []), ...(c.exclude_compressed === false ? [] : COMPRESSED)], baseDir);
  } catch (err) {
    throw new FileConfigError((err as Error).message, { cause: err });
  }
  let multiline: MultilineRule | null = null;
  if (c.multiline?.start_pattern !== undefined) multiline = { mode: 'start', pattern: regex(c.multiline.start_pattern, 'start_pattern') };
  else if (c.multiline?.continuation_pattern !== undefined) {
    multiline = { mode: 'continuation', pattern: regex(c.multiline.continuation_pattern, 'continuation_pattern') };
  }
  return {
    include,
    exclude,
    startAt: c.start_at ?? 'beginning',
    ignoreOlderMs: c.ignore_older_ms ?? null,
    format: c.format ?? 'text',
    onParseError: c.on_parse_error ?? 'keep',
    fingerprintBytes: c.fingerprint_bytes ?? DEFAULTS.fingerprint_bytes,
    maxLineBytes: c.max_line_bytes ?? DEFAULTS.max_line_bytes,
    multiline,
    multilineTimeoutMs: c.multiline?.timeout_ms ?? DEFAULTS.multiline_timeout_ms,
    partialLineTimeoutMs: c.partial_line_timeout_ms ?? DEFAULTS.partial_line_timeout_ms,
    rotateWaitMs: c.rotate_wait_ms ?? DEFAULTS.rotate_wait_ms,
    pollIntervalMs: c.poll_interval_ms ?? DEFAULTS.poll_interval_ms,
    maxOpenFiles: c.max_open_files ?? DEFAULTS.max_open_files,
    closeInactiveMs: c.close_inactive_ms ?? DEFAULTS.close_inactive_ms,
    readBufferBytes: c.read_buffer_bytes ?? DEFAULTS.read_buffer_bytes,
    batchMaxLines: c.batch_max_lines ?? DEFAULTS.batch_max_lines,
    batchMaxBytes: c.batch_max_bytes ?? DEFAULTS.batch_max_bytes,
  };
}
