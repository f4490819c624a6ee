/**
 * A line (or multiline event) → the record value, for `format: text | json | logfmt`.
 *
 * Every value carries `file` (the path it was read from), `host` and `timestamp` (the ingest time,
 * ISO 8601) — for json and logfmt only where the line has no field of that name: the
 * application's own fields win. The record's timestamp is always the ingest time.
 * A line that does not parse keeps its text in `message` and says why in `parse_error`.
 */
// The connector SDK does not re-export the logfmt codec yet; this is its one import from core
// besides sdk.ts, kept here so the day sdk.ts exports it only this line changes.
import { parseLogfmt } from '../sdk.js';

export type FileFormat = 'text' | 'json' | 'logfmt';

export interface FormattedValue {
  value: Record<string, unknown>;
  parseError: boolean;
  /** Why the line did not parse (set with parseError). */
  error?: string;
}

const hasOwn = Object.prototype.hasOwnProperty;

function withMeta(obj: Record<string, unknown>, file: string, host: string, timestamp: string): Record<string, unknown> {
  if (!hasOwn.call(obj, 'timestamp')) obj.timestamp = timestamp;
  if (!hasOwn.call(obj, 'host')) obj.host = host;
  if (!hasOwn.call(obj, 'file')) obj.file = file;
  return obj;
}

function failed(text: string, file: string, host: string, timestamp: string, error: string): FormattedValue {
  return { value: { timestamp, host, file, message: text, parse_error: error }, parseError: true, error };
}

/** `timestamp` is the ingest time, ISO 8601; `file` the path the line was read from. */
export function formatLine(format: FileFormat, text: string, file: string, host: string, timestamp: string): FormattedValue {
  if (format === 'text') return { value: { timestamp, host, file, message: text }, parseError: false };
  if (format === 'json') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      return failed(text, file, host, timestamp, `invalid JSON: ${(err as Error).message}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return failed(text, file, host, timestamp, 'not a JSON object');
    return { value: withMeta(parsed as Record<string, unknown>, file, host, timestamp), parseError: false };
  }
  try {
    return { value: withMeta(parseLogfmt(text), file, host, timestamp), parseError: false };
  } catch (err) {
    return failed(text, file, host, timestamp, `invalid logfmt: ${(err as Error).message}`);
  }
}
