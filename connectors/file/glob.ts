/**
 * Path globs for the `file` source, compiled once to regular expressions. Pure and I/O-free.
 *
 * Syntax (the common subset of bash, Vector and Fluent Bit): `*` any run of characters but `/`,
 * `?` one character but `/`, `**` any run of path segments (`a/**\/b` also matches `a/b`),
 * `[abc]` / `[a-z]` / `[!abc]` a character class, `{x,y}` alternatives (not nested). A backslash
 * escapes the next character.
 */
import { isAbsolute, resolve, sep } from 'node:path';

export interface CompiledGlob {
  /** The pattern as an absolute path. */
  pattern: string;
  /** The longest directory prefix without glob characters: where a walk starts. */
  base: string;
  /** Directory levels below `base` a match can be at (1: files directly in base); Infinity with `**`. */
  depth: number;
  regex: RegExp;
}

const SPECIAL = /[*?[{]/;

function hasGlob(segment: string): boolean {
  for (let i = 0; i < segment.length; i++) {
    const c = segment[i]!;
    if (c === '\\') i++;
    else if (SPECIAL.test(c)) return true;
  }
  return false;
}

function unescape(segment: string): string {
  return segment.replace(/\\(.)/g, '$1');
}

/** Translates a glob (or a part of one) to a regular-expression source, anchored by the caller. */
export function globToRegexSource(glob: string): string {
  let out = '';
  let inBraces = false;
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    switch (c) {
      case '\\':
        if (i + 1 < glob.length) out += escapeChar(glob[++i]!);
        break;
      case '*':
        if (glob[i + 1] === '*') {
          const atSegmentStart = i === 0 || glob[i - 1] === '/';
          i++;
          if (atSegmentStart && glob[i + 1] === '/') {
            i++;
            out += '(?:[^/]*/)*'; // `**/`: zero or more whole segments
          } else {
            out += '.*';
          }
        } else {
          out += '[^/]*';
        }
        break;
      case '?':
        out += '[^/]';
        break;
      case '[': {
        const close = glob.indexOf(']', i + 2);
        if (close < 0) {
          out += '\\[';
          break;
        }
        let body = glob.slice(i + 1, close);
        const negate = body.startsWith('!') || body.startsWith('^');
        if (negate) body = body.slice(1);
        out += `[${negate ? '^/' : ''}${body.replace(/\\/g, '\\\\').replace(/]/g, '\\]')}]`;
        i = close;
        break;
      }
      case '{':
        if (inBraces) out += '\\{';
        else {
          inBraces = true;
          out += '(?:';
        }
        break;
      case '}':
        if (inBraces) {
          inBraces = false;
          out += ')';
        } else out += '\\}';
        break;
      case ',':
        out += inBraces ? '|' : ',';
        break;
      default:
        out += escapeChar(c);
    }
  }
  if (inBraces) throw new Error(`unclosed "{" in glob ${JSON.stringify(glob)}`);
  return out;
}

function escapeChar(c: string): string {
  return /[.*+?^${}()|[\]\\/]/.test(c) ? `\\${c}` : c;
}

/** Compiles an include glob; a relative one is resolved against `baseDir`. */
export function compileGlob(glob: string, baseDir: string): CompiledGlob {
  const pattern = isAbsolute(glob) ? glob : resolve(baseDir, glob);
  const posix = sep === '/' ? pattern : pattern.split(sep).join('/');
  const segments = posix.split('/');
  let firstGlob = segments.findIndex(hasGlob);
  if (firstGlob < 0) firstGlob = segments.length - 1; // a plain path: its directory is the base
  const base = unescape(segments.slice(0, firstGlob).join('/')) || '/';
  const rest = segments.slice(firstGlob);
  const depth = rest.some((s) => s.includes('**')) ? Infinity : rest.length;
  return { pattern, base, depth, regex: new RegExp(`^${globToRegexSource(posix)}$`) };
}

/**
 * Exclude patterns: one with a `/` is matched against the whole absolute path (relative ones
 * resolved against `baseDir`), one without against the file name alone — so `*.gz` excludes
 * every gzip file wherever it is.
 */
export class PathFilter {
  private readonly full: RegExp[] = [];
  private readonly names: RegExp[] = [];

  constructor(patterns: readonly string[], baseDir: string) {
    for (const p of patterns) {
      if (p.includes('/')) this.full.push(compileGlob(p, baseDir).regex);
      else this.names.push(new RegExp(`^${globToRegexSource(p)}$`));
    }
  }

  matches(path: string): boolean {
    if (this.full.some((r) => r.test(path))) return true;
    if (this.names.length === 0) return false;
    const name = path.slice(path.lastIndexOf('/') + 1);
    return this.names.some((r) => r.test(name));
  }
}

/** File names of compressed files, skipped unless `exclude_compressed: false`. */
export const COMPRESSED = ['*.gz', '*.bz2', '*.xz', '*.zst', '*.lz4', '*.zip', '*.Z'];
