/**
 * Reusable slabs of one size. A fresh megabyte from the allocator costs page faults on first touch
 * and garbage collection later (V8 counts it as external memory, and enough of it starts a full
 * collection): at 1-KiB records that was most of the encode time on the append path. A slab that
 * is never given back is simply collected.
 */
export class SlabPool {
  private readonly free: Buffer[] = [];

  constructor(
    readonly slabBytes: number,
    private readonly maxFree: number,
    /** Buffers smaller than this come from Buffer.allocUnsafe (Node's own small-buffer pool). */
    private readonly minPooled = 64 * 1024,
  ) {}

  /** A buffer of `bytes` bytes; `slab` is set when it should be handed back with give(). */
  take(bytes: number): { buf: Buffer; slab?: Buffer } {
    if (bytes < this.minPooled || bytes > this.slabBytes) return { buf: Buffer.allocUnsafe(bytes) };
    const slab = this.free.pop() ?? Buffer.allocUnsafeSlow(this.slabBytes);
    return { buf: slab.subarray(0, bytes), slab };
  }

  /** Hands a slab back; nothing cut from it may be used after this. */
  give(slab: Buffer): void {
    if (this.free.length < this.maxFree) this.free.push(slab);
  }
}
