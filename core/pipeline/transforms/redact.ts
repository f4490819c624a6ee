/**
 * `redact`: replace sensitive text inside string fields.
 *
 * Built-in patterns: `email`; `bearer_token` (the token after "Bearer ", which stays, so the
 * text still says what was there); `credit_card` (13 to 19 digits, optionally grouped by single
 * spaces or dashes, replaced only when they start like a card network's numbers and the Luhn
 * checksum holds, so order numbers and timestamps survive). Any other string is a regex; every match is replaced.
 * Without `fields`, every string in the value is redacted, at any depth, including a value
 * that is itself a string. Keys, the event key and headers are left alone.
 */
import { SpecError } from './errors.js';
import { getPath, setOwn } from './field-path.js';
import { fieldPathAt, regexAt, type Step } from './step.js';
import type { RedactTransform } from './spec.js';

type Redactor = (text: string, replacement: string) => string;

/** True when the digits (a string of 0-9 only) pass the Luhn checksum. */
export function luhnValid(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

const EMAIL = /[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/g;
const BEARER = /\b(Bearer\s+)[A-Za-z0-9\-._~+/]+=*/gi;
// Digit groups joined by single spaces or dashes; the lookarounds keep a match from starting or
// ending inside a longer run of digits.
const CARD = /(?<!\d[ -]?)\d(?:[ -]?\d){12,18}(?!\d)/g;
// Prefixes of the card networks (Visa, Mastercard, Amex, Diners, JCB, Discover, UnionPay): with
// Luhn alone, one in ten 13-digit millisecond timestamps would be taken for a card.
const CARD_PREFIX = /^(?:4|5[1-5]|2[2-7]|3[0478]|3[56]|6(?:011|5|4[4-9]|2))/;

const BEARER_HINT = /bearer\s/i;

/** Whether the text has 13 digits in a row, allowing single spaces or dashes between them. */
function mayHoldCard(text: string): boolean {
  if (text.length < 13) return false;
  let run = 0;
  let afterSeparator = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (++run >= 13) return true;
      afterSeparator = false;
    } else if ((c === 32 || c === 45) && run > 0 && !afterSeparator) {
      afterSeparator = true;
    } else {
      run = 0;
      afterSeparator = false;
    }
  }
  return false;
}

// Each redactor first checks cheaply whether a match is possible: replace() with a global regex
// costs far more than a test(), and most strings hold nothing to redact.
const BUILT_IN: Record<string, Redactor> = {
  email: (text, r) => (text.includes('@') ? text.replace(EMAIL, r) : text),
  bearer_token: (text, r) => (BEARER_HINT.test(text) ? text.replace(BEARER, (_m, prefix: string) => prefix + r) : text),
  credit_card: (text, r) =>
    !mayHoldCard(text) ? text : text.replace(CARD, (m) => {
      const digits = m.replace(/[ -]/g, '');
      return CARD_PREFIX.test(digits) && luhnValid(digits) ? r : m;
    }),
};

export const BUILT_IN_PATTERNS = Object.keys(BUILT_IN);

function redactorFor(pattern: string, pointer: string): Redactor {
  const builtIn = BUILT_IN[pattern];
  if (builtIn !== undefined) return builtIn;
  const re = regexAt(pattern, pointer, 'g');
  if (re.test('')) throw new SpecError(pointer, `the regex ${JSON.stringify(pattern)} matches the empty string`);
  // A replacement is literal text: "$&" or "$1" in it are not expanded.
  return (text, r) => text.replace(re, () => r);
}

export function compileRedact(spec: RedactTransform): Step {
  if (!Array.isArray(spec.patterns) || spec.patterns.length === 0) throw new SpecError('/patterns', 'redact needs at least one pattern');
  const redactors = spec.patterns.map((p, i) => redactorFor(p, `/patterns/${i}`));
  const replacement = spec.replacement ?? '[REDACTED]';
  if (typeof replacement !== 'string') throw new SpecError('/replacement', 'the replacement must be a string');
  const fields = spec.fields?.map((f, i) => fieldPathAt(f, `/fields/${i}`));

  const redactText = (text: string): string => {
    let out = text;
    for (const r of redactors) out = r(out, replacement);
    return out;
  };

  /** The value with its strings redacted; the same object when nothing changed (nothing is copied then). */
  const redactDeep = (v: unknown): unknown => {
    if (typeof v === 'string') return redactText(v);
    if (typeof v !== 'object' || v === null) return v;
    if (Array.isArray(v)) {
      let copy: unknown[] | null = null;
      for (let i = 0; i < v.length; i++) {
        const r = redactDeep(v[i]);
        if (r !== v[i]) (copy ??= v.slice())[i] = r;
      }
      return copy ?? v;
    }
    const obj = v as Record<string, unknown>;
    let copy: Record<string, unknown> | null = null;
    for (const k of Object.keys(obj)) {
      const r = redactDeep(obj[k]);
      if (r !== obj[k]) setOwn((copy ??= { ...obj }), k, r);
    }
    return copy ?? v;
  };

  if (fields === undefined) {
    return (draft) => {
      const v = draft.event.value;
      const r = redactDeep(v);
      if (r !== v) draft.replaceRoot(r);
      return true;
    };
  }
  return (draft) => {
    for (const f of fields) {
      const v = getPath(draft.event.value, f);
      if (v === undefined) continue;
      const r = redactDeep(v);
      if (r !== v) draft.set(f, r);
    }
    return true;
  };
}
