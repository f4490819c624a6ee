/**
 * Templates: literal text with `{{ path }}` placeholders, e.g. `cdc.{{ source.table }}`.
 * A path reads into the event's value (field-path syntax: `items.0.id`); `_key`, `_topic` and
 * `_timestamp` (ISO 8601, UTC) read the event itself and win over fields of the same name.
 * A missing field or null renders as "", strings as they are, numbers and booleans with String(),
 * objects and arrays as JSON. There is no escape for a literal `{{`.
 *
 * Templates are parsed once; rendering is a loop over the compiled parts.
 */
import { getPath, parseFieldPath, type FieldPath } from './transforms/field-path.js';
import type { PipelineEvent } from './transforms/types.js';

/** A template cannot be parsed. `code` is stable; `column` is the 1-based offset in the text. */
export class TemplateError extends Error {
  readonly code = 'SLUICE_BAD_TEMPLATE';
  readonly retriable = false;
  constructor(
    readonly template: string,
    readonly column: number,
    detail: string,
  ) {
    super(`template "${template}" at column ${column}: ${detail}`);
    this.name = new.target.name;
  }
}

/** The names that read the event rather than its value. */
export const TEMPLATE_VARIABLES = ['_key', '_topic', '_timestamp'] as const;

type Part = string | ((event: PipelineEvent) => string);

interface Placeholder {
  /** The text between the braces, trimmed. */
  name: string;
  column: number;
}

function scan(text: string): (string | Placeholder)[] {
  const parts: (string | Placeholder)[] = [];
  let pos = 0;
  while (pos < text.length) {
    const open = text.indexOf('{{', pos);
    if (open < 0) break;
    const close = text.indexOf('}}', open + 2);
    if (close < 0) throw new TemplateError(text, open + 1, '"{{" is not closed by "}}"');
    const name = text.slice(open + 2, close).trim();
    if (name === '') throw new TemplateError(text, open + 1, 'empty placeholder');
    if (name.includes('{{')) throw new TemplateError(text, open + 1, 'placeholders cannot nest');
    if (open > pos) parts.push(text.slice(pos, open));
    parts.push({ name, column: open + 1 });
    pos = close + 2;
  }
  if (pos < text.length) parts.push(text.slice(pos));
  return parts;
}

function parsePath(text: string, p: Placeholder): FieldPath {
  if (/\s/.test(p.name)) throw new TemplateError(text, p.column, `"${p.name}" is not a field path`);
  try {
    return parseFieldPath(p.name);
  } catch (err) {
    throw new TemplateError(text, p.column, (err as Error).message);
  }
}

/** The text a value renders as. */
export function renderValue(v: unknown): string {
  switch (typeof v) {
    case 'string':
      return v;
    case 'number':
    case 'boolean':
    case 'bigint':
      return String(v);
    case 'object':
      return v === null ? '' : JSON.stringify(v);
    default:
      return '';
  }
}

function isoTime(ms: number): string {
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? '' : d.toISOString();
}

function compilePart(text: string, p: Placeholder): Part {
  switch (p.name) {
    case '_key':
      return (e) => e.key ?? '';
    case '_topic':
      return (e) => e.topic;
    case '_timestamp':
      return (e) => isoTime(e.timestamp);
  }
  const path = parsePath(text, p);
  if (path.keys.length === 1) {
    const key = path.keys[0]!;
    const index = path.indexes[0]!;
    // The common case, `{{ host }}`, without the generic walk.
    return (e) => {
      const v = e.value;
      if (typeof v !== 'object' || v === null) return '';
      if (Array.isArray(v)) return renderValue(index >= 0 ? v[index] : undefined);
      return Object.hasOwn(v, key) ? renderValue((v as Record<string, unknown>)[key]) : '';
    };
  }
  return (e) => renderValue(getPath(e.value, path));
}

/** Compiles a template; throws TemplateError when it is malformed. */
export function compileTemplate(text: string): (event: PipelineEvent) => string {
  const parts = scan(text).map((p) => (typeof p === 'string' ? p : compilePart(text, p)));
  if (parts.length === 0) return () => '';
  if (parts.length === 1) {
    const only = parts[0]!;
    if (typeof only === 'string') return () => only;
    return only;
  }
  if (parts.length === 2) {
    const [a, b] = parts as [Part, Part];
    if (typeof a === 'string' && typeof b !== 'string') return (e) => a + b(e);
    if (typeof a !== 'string' && typeof b === 'string') return (e) => a(e) + b;
  }
  return (e) => {
    let out = '';
    for (const p of parts) out += typeof p === 'string' ? p : p(e);
    return out;
  };
}

/**
 * The value paths a template reads, in order of first use, without duplicates and without the
 * event variables (`_key`, `_topic`, `_timestamp`). Throws TemplateError like compileTemplate.
 */
export function templateFields(text: string): string[] {
  const fields: string[] = [];
  for (const p of scan(text)) {
    if (typeof p === 'string' || (TEMPLATE_VARIABLES as readonly string[]).includes(p.name)) continue;
    parsePath(text, p);
    if (!fields.includes(p.name)) fields.push(p.name);
  }
  return fields;
}

/** True when the template has no placeholders (it renders the same text for every event). */
export function isConstantTemplate(text: string): boolean {
  return scan(text).every((p) => typeof p === 'string');
}
