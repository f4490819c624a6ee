/**
 * `timestamp`: set the event's timestamp from a field, as ISO 8601, seconds or milliseconds
 * since the epoch, or a strftime-like pattern (time-format.ts). Times without an offset are in
 * `timezone` (UTC by default). On error, `keep` leaves the timestamp and sets `_timestamp_error`
 * at the root; `drop` drops the event.
 */
import { SpecError } from './errors.js';
import { getPath, parseFieldPath } from './field-path.js';
import { errorMessage, fieldPathAt, type Step } from './step.js';
import type { TimestampTransform } from './spec.js';
import { isoParser, strftimeParser, unixParser } from './time-format.js';
import { resolveTimeZone, type TimeZone } from './time-zone.js';

export const TIMESTAMP_ERROR_FIELD = '_timestamp_error';
const TIMESTAMP_ERROR = parseFieldPath(TIMESTAMP_ERROR_FIELD);

type Reader = (value: unknown, referenceMs: number) => number;

function textReader(parse: (text: string, referenceMs: number) => number): Reader {
  return (value, referenceMs) => {
    if (typeof value !== 'string') throw new Error(`expected a string, got ${value === null ? 'null' : typeof value}`);
    return parse(value, referenceMs);
  };
}

function readerFor(spec: TimestampTransform, zone: TimeZone): Reader {
  switch (spec.format) {
    case 'iso8601':
      return textReader(isoParser(zone));
    case 'unix_s':
      return unixParser(1000);
    case 'unix_ms':
      return unixParser(1);
  }
  if (typeof spec.format !== 'string' || !spec.format.includes('%')) {
    throw new SpecError('/format', `format must be iso8601, unix_s, unix_ms or a strftime pattern with % directives, not ${JSON.stringify(spec.format)}`);
  }
  try {
    return textReader(strftimeParser(spec.format, zone));
  } catch (err) {
    throw new SpecError('/format', errorMessage(err), { cause: err });
  }
}

export function compileTimestamp(spec: TimestampTransform): Step {
  const field = fieldPathAt(spec.field, '/field');
  let zone: TimeZone;
  try {
    zone = resolveTimeZone(spec.timezone ?? 'UTC');
  } catch (err) {
    throw new SpecError('/timezone', errorMessage(err), { cause: err });
  }
  if (spec.timezone !== undefined && (spec.format === 'unix_s' || spec.format === 'unix_ms')) {
    throw new SpecError('/timezone', `timezone has no meaning for ${spec.format}`);
  }
  const read = readerFor(spec, zone);
  const drop = spec.on_error === 'drop';
  return (draft) => {
    const event = draft.event;
    const value = getPath(event.value, field);
    let message: string;
    if (value === undefined) {
      message = `field ${field.text} is missing`;
    } else {
      try {
        event.timestamp = read(value, event.timestamp);
        return true;
      } catch (err) {
        message = `field ${field.text}: ${errorMessage(err)}`;
      }
    }
    if (drop) return false;
    draft.set(TIMESTAMP_ERROR, message);
    return true;
  };
}
