/**
 * Line framing over Buffers, pure and I/O-free: LF ends a line, a CR before it is dropped (CRLF),
 * a line longer than `maxLineBytes` is cut (at a UTF-8 character boundary) and the rest of it,
 * up to its LF, is discarded — even when that rest arrives in later reads (`skipping`).
 */

const LF = 0x0a;
const CR = 0x0d;

/**
 * Receives one line: `buf[start, end)` without its LF (and without a CR before it). `next` is the
 * index in `buf` after what the line consumed: after its LF, or `buf.length` for the head of an
 * over-long line whose end has not been read yet (then `skipAfter` is true: the bytes up to the
 * next LF belong to this line and are discarded). Returns false to stop framing after this line.
 */
export type LineHandler = (start: number, end: number, next: number, truncated: boolean, skipAfter: boolean) => boolean;

export interface FrameResult {
  /** Index in `buf` after the last byte consumed; the bytes after it wait for more data. */
  pos: number;
  /** Whether the framer is inside an over-long line when it stopped. */
  skipping: boolean;
  /** True when the handler asked to stop (more complete lines may follow `pos`). */
  stopped: boolean;
}

/** Frames the complete lines of `buf` from `pos`. A trailing partial line is left unconsumed. */
export function frameLines(buf: Buffer, pos: number, skipping: boolean, maxLineBytes: number, onLine: LineHandler): FrameResult {
  const n = buf.length;
  while (pos < n) {
    const nl = buf.indexOf(LF, pos);
    if (skipping) {
      if (nl < 0) return { pos: n, skipping: true, stopped: false };
      pos = nl + 1;
      skipping = false;
      continue;
    }
    if (nl < 0) {
      // Up to maxLineBytes (plus a CR that its LF may follow) can still become a whole line.
      const have = n - pos;
      if (have <= maxLineBytes || (have === maxLineBytes + 1 && buf[n - 1] === CR)) break;
      // No LF within maxLineBytes: emit the head now and discard the rest as it arrives.
      const cut = charBoundary(buf, pos, pos + maxLineBytes);
      const more = onLine(pos, cut, n, true, true);
      return { pos: n, skipping: true, stopped: !more };
    }
    let end = nl;
    if (end > pos && buf[end - 1] === CR) end--;
    let truncated = false;
    if (end - pos > maxLineBytes) {
      end = charBoundary(buf, pos, pos + maxLineBytes);
      truncated = true;
    }
    const more = onLine(pos, end, nl + 1, truncated, false);
    pos = nl + 1;
    if (!more) return { pos, skipping: false, stopped: true };
  }
  return { pos, skipping, stopped: false };
}

/**
 * The end of a partial last line (no LF yet) flushed as it is: `buf[pos, end)` with a trailing CR
 * dropped. The caller has framed everything before `pos` and is not skipping.
 */
export function partialLineEnd(buf: Buffer, pos: number): number {
  let end = buf.length;
  if (end > pos && buf[end - 1] === CR) end--;
  return end;
}

/** `cut`, moved back so that it does not split a UTF-8 sequence (at most 3 bytes back). */
export function charBoundary(buf: Buffer, start: number, cut: number): number {
  if (cut >= buf.length) return buf.length;
  let c = cut;
  for (let k = 0; k < 3 && c > start && (buf[c]! & 0xc0) === 0x80; k++) c--;
  // Not a sequence after all (invalid bytes): cut where asked.
  return (buf[c]! & 0xc0) === 0xc0 ? c : cut;
}
