/**
 * A file's content identity: a hash of its first bytes. With (device, inode) it tells a file that
 * was truncated, replaced or whose inode was reused from the file a position was saved for, and
 * it recognises a copy of a file (copytruncate) as the same stream.
 *
 * A fingerprint covers the first `min(size, fingerprint_bytes)` bytes and grows with the file up
 * to `fingerprint_bytes`, so short files have one too; a longer fingerprint of the same file
 * starts with the same bytes, so a saved shorter one still verifies.
 */
import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';

export interface Fingerprint {
  /** 16 hex digits of the SHA-256 of the first `bytes` bytes. */
  hash: string;
  bytes: number;
}

export function fingerprintOf(prefix: Buffer, bytes = prefix.length): Fingerprint {
  const n = Math.min(bytes, prefix.length);
  return { hash: createHash('sha256').update(prefix.subarray(0, n)).digest('hex').slice(0, 16), bytes: n };
}

/** Whether a file starting with `prefix` has the fingerprint `fp`. */
export function verifies(prefix: Buffer, fp: Fingerprint): boolean {
  return prefix.length >= fp.bytes && fingerprintOf(prefix, fp.bytes).hash === fp.hash;
}

/** Up to `n` bytes from the start of the file. */
export async function readPrefix(fh: FileHandle, n: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(n);
  let got = 0;
  while (got < n) {
    const { bytesRead } = await fh.read(buf, got, n - got, got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return buf.subarray(0, got);
}
