/**
 * `format: text` events encoded as JSON straight from the line's bytes — no string, object or
 * JSON.stringify per line. The output is byte for byte what
 * `JSON.stringify({ timestamp, host, file, message })` gives for a valid UTF-8 line (the caller
 * sends lines with invalid UTF-8 down the string path, which replaces them). Pure, no I/O.
 */
import type { SlabPool } from '../sdk.js';

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const HEX = '0123456789abcdef';
/** JSON.stringify's short escapes for control characters; the others are \u00XX. */
const SHORT: Record<number, number> = { 0x08: 0x62, 0x09: 0x74, 0x0a: 0x6e, 0x0c: 0x66, 0x0d: 0x72 };
/** Chunk size, and the size of the slabs of a pool (textChunkPool). */
export const CHUNK = 1024 * 1024;
/** 1 for the bytes JSON escapes (control characters, quote, backslash): one load per byte. */
const ESCAPED = new Uint8Array(256);
for (let c = 0; c < 0x20; c++) ESCAPED[c] = 1;
ESCAPED[QUOTE] = 1;
ESCAPED[BACKSLASH] = 1;

/**
 * Encodes lines of one batch into shared chunks; each record is a view of its JSON. Plain
 * Uint8Arrays, not Buffers: a view of one costs about a third of a Buffer#subarray.
 */
export class TextJsonEncoder {
  private chunk: Uint8Array = new Uint8Array(0);
  private pos = 0;
  private prefixPath = '';
  private prefix = new Uint8Array(0);
  private input: Uint8Array | null = null;
  private plain: Uint8Array = new Uint8Array(0);
  /** The fields every event of the current file shares, for topic templates. */
  view: Record<string, unknown> = {};

  /** The pool's slabs this encoder's chunks were cut from (to give back once the batch is durable). */
  readonly slabs: Buffer[] = [];

  constructor(
    private readonly host: string,
    private readonly iso: string,
    private readonly pool?: SlabPool,
  ) {}

  /** The JSON of `{ timestamp, host, file, message: buf[start, end) }`. */
  encode(file: string, buf: Uint8Array, start: number, end: number): Uint8Array {
    const first = this.write(file, buf, start, end);
    return this.chunk.subarray(first, this.pos);
  }

  /** The chunk the last write went to; its JSON is `current[first, end)` (write's result, `end`). */
  get current(): Uint8Array {
    return this.chunk;
  }

  /** Where the last write ended in `current`. */
  get end(): number {
    return this.pos;
  }

  /**
   * Writes the JSON of `{ timestamp, host, file, message: buf[start, end) }` after the previous
   * one in the current chunk (or at the start of a new chunk); returns where it starts.
   */
  write(file: string, given: Uint8Array, start: number, end: number): number {
    // Indexing a Buffer (a Uint8Array subclass) in the byte loop below costs about a third more
    // than indexing a plain Uint8Array: make one view per input buffer, not per line.
    if (given !== this.input) {
      this.input = given;
      this.plain = given.constructor === Uint8Array ? given : new Uint8Array(given.buffer, given.byteOffset, given.byteLength);
    }
    const buf = this.plain;
    if (file !== this.prefixPath || this.prefix.length === 0) {
      this.prefixPath = file;
      this.view = { timestamp: this.iso, host: this.host, file };
      this.prefix = new TextEncoder().encode(`{"timestamp":${JSON.stringify(this.iso)},"host":${JSON.stringify(this.host)},"file":${JSON.stringify(file)},"message":"`);
    }
    const prefix = this.prefix;
    // Worst case: every byte escaped as \u00XX.
    const worst = prefix.length + 6 * (end - start) + 2;
    if (this.chunk.length - this.pos < worst) {
      // Not zero-filled: every byte of a view is written before it is handed out.
      const size = Math.max(CHUNK, worst);
      let fresh: Buffer;
      if (this.pool !== undefined && size <= this.pool.slabBytes) {
        const { buf, slab } = this.pool.take(this.pool.slabBytes);
        fresh = buf;
        if (slab !== undefined) this.slabs.push(slab);
      } else {
        fresh = Buffer.allocUnsafeSlow(size);
      }
      this.chunk = new Uint8Array(fresh.buffer, fresh.byteOffset, fresh.length);
      this.pos = 0;
    }
    const out = this.chunk;
    const first = this.pos;
    out.set(prefix, first);
    let o = first + prefix.length;
    // A byte loop: for lines of ~100 bytes it beats Buffer#copy, whose argument checks cost more.
    for (let i = start; i < end; i++) {
      const c = buf[i]!;
      if (ESCAPED[c] === 0) {
        out[o++] = c;
        continue;
      }
      out[o++] = BACKSLASH;
      if (c === QUOTE || c === BACKSLASH) out[o++] = c;
      else if (SHORT[c] !== undefined) out[o++] = SHORT[c]!;
      else {
        out[o++] = 0x75; // u
        out[o++] = 0x30;
        out[o++] = 0x30;
        out[o++] = HEX.charCodeAt(c >> 4);
        out[o++] = HEX.charCodeAt(c & 15);
      }
    }
    out[o++] = QUOTE;
    out[o++] = 0x7d; // }
    this.pos = o;
    return first;
  }
}
