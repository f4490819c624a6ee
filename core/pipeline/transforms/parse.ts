/**
 * `parse`: turn a text field into fields (JSON, logfmt, or a regex with named groups).
 *
 * Source: `field`, or by default the value itself when it is a string, else `message`.
 * Result: at `target`, or by default merged into the root of the value (parsed keys overwrite
 * existing ones; the source field stays). Parsing the whole string value without a target
 * makes the parsed result the value.
 * A JSON result that is not an object cannot be merged into the root: that is a parse error
 * unless a target is given (or the whole value was parsed, when it becomes the value).
 * On error: `keep` leaves the event and sets `_parse_error` at the root (a string value becomes
 * `{ message: value, _parse_error }`); `drop` drops the event.
 */
import type { Draft } from './draft.js';
import { SpecError } from './errors.js';
import { getPath, isPlainObject, parseFieldPath, setOwn, type FieldPath } from './field-path.js';
import { parseLogfmt } from './logfmt.js';
import { errorMessage, fieldPathAt, regexAt, type Step } from './step.js';
import type { ParseTransform } from './spec.js';

export const PARSE_ERROR_FIELD = '_parse_error';
const MESSAGE = parseFieldPath('message');
const PARSE_ERROR = parseFieldPath(PARSE_ERROR_FIELD);

type Parser = (text: string) => unknown;

function regexParser(spec: ParseTransform): Parser {
  if (spec.pattern === undefined) throw new SpecError('/pattern', 'format regex needs a pattern');
  const re = regexAt(spec.pattern, '/pattern');
  const names = namedGroups(re);
  if (names.length === 0) throw new SpecError('/pattern', 'the pattern has no named groups ((?<name>...))');
  return (text) => {
    const m = re.exec(text);
    if (m === null) throw new Error('the pattern does not match');
    const out: Record<string, unknown> = {};
    const groups = m.groups!;
    for (const name of names) {
      const v = groups[name];
      if (v !== undefined) setOwn(out, name, v);
    }
    return out;
  };
}

/**
 * Group names in source order. Matching the empty string against `(?:pattern)|` always succeeds
 * through the empty alternative, and `groups` then lists every name (with undefined values).
 */
function namedGroups(re: RegExp): string[] {
  return Object.keys(new RegExp(`(?:${re.source})|`, re.flags).exec('')?.groups ?? {});
}

function parserFor(spec: ParseTransform): Parser {
  switch (spec.format) {
    case 'json':
      return (text) => {
        try {
          return JSON.parse(text) as unknown;
        } catch (err) {
          throw new Error(`invalid JSON: ${errorMessage(err)}`);
        }
      };
    case 'logfmt':
      return parseLogfmt;
    case 'regex':
      return regexParser(spec);
    default:
      throw new SpecError('/format', `unknown format ${JSON.stringify(spec.format)}`);
  }
}

export function compileParse(spec: ParseTransform): Step {
  if (spec.format !== 'regex' && spec.pattern !== undefined) {
    throw new SpecError('/pattern', `pattern is only for format regex, not ${spec.format}`);
  }
  const parser = parserFor(spec);
  const field: FieldPath | null = spec.field === undefined ? null : fieldPathAt(spec.field, '/field');
  const target: FieldPath | null = spec.target === undefined ? null : fieldPathAt(spec.target, '/target');
  const drop = spec.on_error === 'drop';

  const fail = (draft: Draft, message: string): boolean => {
    if (drop) return false;
    draft.set(PARSE_ERROR, message);
    return true;
  };

  return (draft) => {
    const value = draft.event.value;
    let text: unknown;
    let whole = false;
    if (field === null && typeof value === 'string') {
      text = value;
      whole = true;
    } else {
      text = getPath(value, field ?? MESSAGE);
    }
    const name = field?.text ?? 'message';
    if (text === undefined) return fail(draft, `field ${name} is missing`);
    if (typeof text !== 'string') return fail(draft, `field ${name} is not a string`);
    let parsed: unknown;
    try {
      parsed = parser(text);
    } catch (err) {
      return fail(draft, errorMessage(err));
    }
    if (target !== null) {
      if (typeof parsed === 'object' && parsed !== null) draft.adopt(parsed);
      draft.set(target, parsed);
    } else if (whole) {
      draft.replaceRoot(parsed);
    } else if (isPlainObject(parsed)) {
      const root = draft.root();
      for (const key of Object.keys(parsed)) setOwn(root, key, parsed[key]);
    } else {
      return fail(draft, 'the parsed JSON is not an object, so it cannot be merged into the root; set target');
    }
    return true;
  };
}
