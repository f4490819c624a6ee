/**
 * The `file` source's position: what it committed with a batch, and resumes from.
 *
 * ```json
 * { "version": 1,
 *   "files": { "<dev>:<ino>:<fingerprint>": { "path": "/var/log/app.log", "offset": 8191, "fp_bytes": 256 } } }
 * ```
 *
 * One entry per file (stream) identity. `offset` is the byte offset after the last complete line
 * (or multiline event) that went into a batch: reopening resumes there, so no line is lost or
 * repeated. `skip: true` says the bytes from `offset` up to the next LF are the cut-off rest of an
 * over-long line already emitted, to discard. `gone: true` marks a stream whose file was truncated
 * or vanished, kept a while so that a copy of it (copytruncate) continues it. Entries of rotated
 * files stay until the file is read to its end; entries of files gone and fully read are pruned.
 */
import { FilePositionError } from './errors.js';

export interface PositionEntry {
  path: string;
  offset: number;
  fp_bytes: number;
  skip?: true;
  gone?: true;
}

export interface FilePosition {
  version: 1;
  files: Record<string, PositionEntry>;
}

/** A position entry with its identity split out. */
export interface StreamState {
  dev: string;
  ino: string;
  fp: { hash: string; bytes: number };
  path: string;
  offset: number;
  skip: boolean;
  gone: boolean;
}

export function identity(dev: string, ino: string, hash: string): string {
  return `${dev}:${ino}:${hash}`;
}

export function toEntry(s: StreamState): PositionEntry {
  const e: PositionEntry = { path: s.path, offset: s.offset, fp_bytes: s.fp.bytes };
  if (s.skip) e.skip = true;
  if (s.gone) e.gone = true;
  return e;
}

/** The streams of a committed position; undefined (first start) gives none. */
export function parsePosition(position: unknown): StreamState[] {
  if (position === undefined || position === null) return [];
  const p = position as Partial<FilePosition>;
  if (typeof p !== 'object' || p.version !== 1 || typeof p.files !== 'object' || p.files === null) {
    throw new FilePositionError(`not a file source position (version 1): ${JSON.stringify(position).slice(0, 200)}`);
  }
  const out: StreamState[] = [];
  for (const [key, e] of Object.entries(p.files)) {
    const m = /^(\d+):(\d+):([0-9a-f]{16})$/.exec(key);
    if (m === null || typeof e !== 'object' || e === null || !Number.isSafeInteger(e.offset) || e.offset < 0 || !Number.isSafeInteger(e.fp_bytes) || typeof e.path !== 'string') {
      throw new FilePositionError(`invalid entry ${JSON.stringify(key)} in a file source position`);
    }
    out.push({ dev: m[1]!, ino: m[2]!, fp: { hash: m[3]!, bytes: e.fp_bytes }, path: e.path, offset: e.offset, skip: e.skip === true, gone: e.gone === true });
  }
  return out;
}
