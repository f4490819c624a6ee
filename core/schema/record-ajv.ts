/** The ajv used for record schemas: JSON Schema draft-07 with the standard formats (date-time, email, uri, ...). */
import { readFile } from 'node:fs/promises';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';

// ajv-formats is CommonJS: its default export arrives wrapped under NodeNext.
const addFormats = (addFormatsModule as unknown as { default?: typeof addFormatsModule }).default ?? addFormatsModule;

export function recordAjv(): Ajv {
  const ajv = new Ajv({ allErrors: true, strict: false });
  (addFormats as unknown as (a: Ajv) => Ajv)(ajv);
  return ajv;
}

/**
 * Record schema files, each read and compiled once however many topics use it (ajv refuses a
 * second schema with the same `$id`, so compiling a shared file per topic would fail).
 */
export class RecordSchemas {
  readonly ajv = recordAjv();
  private readonly byPath = new Map<string, Promise<ValidateFunction>>();

  load(path: string): Promise<ValidateFunction> {
    let v = this.byPath.get(path);
    if (v === undefined) {
      v = readFile(path, 'utf8').then((text) => this.ajv.compile(JSON.parse(text) as Record<string, unknown>));
      this.byPath.set(path, v);
    }
    return v;
  }
}
