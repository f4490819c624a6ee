/**
 * One partition = one stream. Writes go through a per-partition chain of publishes whose offsets
 * are dense and computed here: a frame's base offset is the previous frame's base + count.
 *
 * That is safe with several writers (workers) on one partition because every publish states what
 * it expects the stream to end with: the first publish after a sync expects the last sequence read
 * from the server, every later one also the previous frame's Nats-Msg-Id. A publish whose
 * predecessor was not stored (or was stored by someone else in between) is refused by the server,
 * and so is every later one of the window; the writer then reads the tail again, recognises frames
 * of its own that did land (by their message id, whatever the duplicate window), and re-sends the
 * rest with fresh base offsets.
 */
import type { JetStreamClient, JetStreamManager, MsgHdrs, StoredMsg } from 'nats';

import { AppendFailedError, LogClosedError, UnknownTopicError, describe } from '../errors.js';
import type { LogRecord, ValueSpans } from '../types.js';
import { decodeFrame, decodeFrameValues, frameBuffer } from './frame.js';
import { SpanBuilder } from '../value-spans.js';
import type { NatsModule } from './connect.js';

export const H_BASE = 'Sluice-Base';
export const H_COUNT = 'Sluice-Count';
export const H_MAX_TS = 'Sluice-Max-Ts';
export const H_MSG_ID = 'Nats-Msg-Id';

export interface OutFrame {
  payload: Uint8Array;
  count: number;
  maxTs: number;
  msgId: string;
  /** Extra message headers (checkpoint, transaction). */
  headers: [string, string][];
  /** Global send order: frames re-sent after a refusal keep it. */
  order: number;
  resolve(base: number, seq: number): void;
  reject(err: unknown): void;
}

export interface FrameMeta {
  seq: number;
  base: number;
  count: number;
  maxTs: number;
  msgId: string;
  headers: MsgHdrs;
}

export interface PartitionContext {
  nats: NatsModule;
  js: JetStreamClient;
  jsm: JetStreamManager;
  maxInflight: number;
  publishRetryMs: number;
  isClosed(): boolean;
  warn(message: string): void;
}

const WRONG_LAST_SEQ = 10071;
const WRONG_LAST_MSG_ID = 10070;
const STREAM_NOT_FOUND = 10059;
const NO_MESSAGE = 10037;

export function isNotFound(err: unknown): boolean {
  const api = (err as { api_error?: { err_code?: number } }).api_error;
  const code = (err as { code?: string }).code;
  return api?.err_code === NO_MESSAGE || code === '404' || /no message found/i.test(describe(err));
}

export function isStreamNotFound(err: unknown): boolean {
  const api = (err as { api_error?: { err_code?: number } }).api_error;
  return api?.err_code === STREAM_NOT_FOUND || /stream not found/i.test(describe(err));
}

/** nats.js has direct gets on its JetStreamManager implementation, not on the interface. */
interface DirectGets {
  direct: { getMessage(stream: string, query: { seq: number }): Promise<StoredMsg> };
}

export class JsPartition {
  // ---- writer state (predicted while publishes are in flight) ----
  private synced = false;
  private predictedSeq = 0;
  private predictedMsgId: string | undefined;
  private predictedNext = 0;
  /** Highest sequence acknowledged to us (or found on sync). */
  private confirmedSeq = -1;
  private queue: OutFrame[] = [];
  private inflight = 0;
  private failed: OutFrame[] = [];
  private resyncing = false;
  private failingSince = 0;

  // ---- reader state ----
  /** End offset of what is stored, as last seen. */
  end = 0;
  start = 0;
  firstSeq = 1;
  lastSeq = 0;
  bytes = 0;
  private refreshedAt = -Infinity;
  private refreshing: Promise<unknown> = Promise.resolve();
  private readonly hints = new Map<number, number>();
  private readonly metas = new Map<number, FrameMeta>();
  private waiters = new Set<() => void>();

  constructor(
    private readonly ctx: PartitionContext,
    readonly topic: string,
    readonly index: number,
    readonly stream: string,
    readonly subject: string,
  ) {}

  // ---------------------------------------------------------------- writing

  send(frame: OutFrame): void {
    this.queue.push(frame);
    this.pump();
  }

  /** Resolves once nothing of this partition is queued or in flight. */
  idle(): boolean {
    return this.queue.length === 0 && this.inflight === 0 && this.failed.length === 0 && !this.resyncing;
  }

  private pump(): void {
    if (this.resyncing) return;
    if (!this.synced) {
      if (this.inflight === 0 && (this.queue.length > 0 || this.failed.length > 0)) void this.resync();
      return;
    }
    const { js, nats } = this.ctx;
    while (this.queue.length > 0 && this.inflight < this.ctx.maxInflight) {
      const f = this.queue.shift()!;
      const base = this.predictedNext;
      const expectSeq = this.predictedSeq;
      const expectId = this.predictedMsgId;
      this.predictedNext += f.count;
      this.predictedSeq += 1;
      this.predictedMsgId = f.msgId;
      this.inflight++;
      const h = nats.headers();
      h.set(H_BASE, String(base));
      h.set(H_COUNT, String(f.count));
      h.set(H_MAX_TS, String(f.maxTs));
      for (const [k, v] of f.headers) h.set(k, v);
      js.publish(this.subject, f.payload, {
        msgID: f.msgId,
        headers: h,
        expect: expectId === undefined ? { lastSequence: expectSeq } : { lastSequence: expectSeq, lastMsgID: expectId },
      }).then(
        (ack) => this.acked(f, base, ack.seq, ack.duplicate),
        (err: unknown) => this.refused(f, err),
      );
    }
  }

  private acked(f: OutFrame, base: number, seq: number, duplicate: boolean): void {
    this.inflight--;
    if (duplicate) {
      // Stored before (a re-send after a lost ack): its offsets are those of the stored copy, and
      // the predictions made after it are wrong, so the later frames will be refused and re-sent.
      this.synced = false;
      this.failingSince ||= Date.now();
      this.inflight++;
      void this.meta(seq).then(
        (m) => {
          this.inflight--;
          if (m === null) f.reject(new AppendFailedError(new Error(`frame ${f.msgId} vanished from ${this.stream}`)));
          else f.resolve(m.base, seq);
          this.pump();
        },
        (err: unknown) => {
          this.inflight--;
          this.failed.push(f);
          this.ctx.warn(`reading back a duplicate frame of ${this.stream} failed: ${describe(err)}`);
          this.pump();
        },
      );
      return;
    }
    if (seq > this.confirmedSeq) this.confirmedSeq = seq;
    if (seq > this.lastSeq) {
      this.lastSeq = seq;
      this.end = base + f.count;
      this.bytes += f.payload.length;
    }
    this.hints.set(base, seq);
    this.failingSince = 0;
    f.resolve(base, seq);
    this.wake();
    this.pump();
  }

  private refused(f: OutFrame, err: unknown): void {
    this.inflight--;
    this.synced = false;
    this.failingSince ||= Date.now();
    this.failed.push(f);
    const code = (err as { api_error?: { err_code?: number } }).api_error?.err_code;
    if (code === WRONG_LAST_SEQ || code === WRONG_LAST_MSG_ID) {
      // Another writer got in between, or an earlier frame of the window was refused: re-sync now.
      this.pump();
      return;
    }
    if (isStreamNotFound(err)) {
      this.failAll(new UnknownTopicError(this.topic));
      return;
    }
    // Anything else (server restarting, storage full, timeout): retry with a pause, up to the limit.
    this.lastError = err;
    this.pauseUntil = Date.now() + 200;
    if (Date.now() - this.failingSince > this.ctx.publishRetryMs) {
      if (this.inflight === 0) this.failAll(new AppendFailedError(err));
      return;
    }
    this.pump();
  }

  private lastError: unknown;
  private pauseUntil = 0;

  /** Reads the tail, settles frames that landed after all, re-queues the rest in order. */
  private async resync(): Promise<void> {
    this.resyncing = true;
    try {
      for (let attempt = 0; ; attempt++) {
        if (this.ctx.isClosed() && this.failed.length === 0 && this.queue.length === 0) return;
        const pause = this.pauseUntil - Date.now();
        if (pause > 0) await new Promise((r) => setTimeout(r, pause));
        if (this.failingSince > 0 && Date.now() - this.failingSince > this.ctx.publishRetryMs) {
          return this.failAll(new AppendFailedError(this.lastError ?? new Error('publishing kept failing')));
        }
        try {
          await this.syncTail();
          break;
        } catch (err) {
          if (isStreamNotFound(err)) return this.failAll(new UnknownTopicError(this.topic));
          const since = this.failingSince || Date.now();
          this.failingSince = since;
          if (Date.now() - since > this.ctx.publishRetryMs) return this.failAll(new AppendFailedError(err));
          await new Promise((r) => setTimeout(r, Math.min(50 * 2 ** attempt, 1000)));
        }
      }
    } finally {
      this.resyncing = false;
    }
    this.pump();
  }

  private async syncTail(): Promise<void> {
    const info = await this.ctx.jsm.streams.info(this.stream);
    const { first_seq: firstSeq, last_seq: lastSeq, messages, bytes } = info.state;
    let lastMsgIdOnServer: string | undefined;
    let next = 0;
    if (messages > 0) {
      const last = await this.meta(lastSeq);
      if (last === null) throw new Error(`the last message of ${this.stream} vanished`);
      next = last.base + last.count;
      lastMsgIdOnServer = last.msgId;
    } else if (lastSeq > 0) {
      // Retention removed every frame: offsets go on from the last end this process knew.
      next = Math.max(this.end, this.predictedNext);
      if (next === 0) this.ctx.warn(`${this.stream} is empty after retention; its offsets restart at 0`);
    }
    // Frames refused or unanswered may have landed anyway: find them among the new messages.
    if (this.failed.length > 0) {
      const wanted = new Map(this.failed.map((f) => [f.msgId, f]));
      const from = Math.max(this.confirmedSeq + 1, firstSeq);
      for (let seq = from; seq <= lastSeq && wanted.size > 0; seq++) {
        const m = await this.meta(seq);
        const f = m === null ? undefined : wanted.get(m.msgId);
        if (m !== null && f !== undefined) {
          wanted.delete(m.msgId);
          this.hints.set(m.base, seq);
          f.resolve(m.base, seq);
        }
      }
      const rest = [...wanted.values()].sort((a, b) => a.order - b.order);
      this.failed = [];
      this.queue.unshift(...rest);
    }
    this.predictedSeq = lastSeq;
    this.predictedNext = next;
    // The server's memory of the last id does not survive its restart: expect only the sequence first.
    this.predictedMsgId = undefined;
    void lastMsgIdOnServer;
    this.confirmedSeq = lastSeq;
    this.firstSeq = firstSeq;
    this.lastSeq = lastSeq;
    this.end = next;
    this.bytes = bytes;
    this.synced = true;
    this.wake();
  }

  private failAll(err: unknown): void {
    const all = [...this.failed, ...this.queue];
    this.failed = [];
    this.queue = [];
    this.synced = false;
    for (const f of all) f.reject(err);
  }

  /** Fails whatever is still queued (close with the server gone). */
  abandon(err: unknown): void {
    this.failAll(err);
  }

  // ---------------------------------------------------------------- reading

  /** The stored frame at `seq`, null when there is none (removed or never written). */
  async meta(seq: number): Promise<FrameMeta | null> {
    const cached = this.metas.get(seq);
    if (cached !== undefined) return cached;
    const m = await this.get(seq);
    if (m === null) return null;
    return this.remember(m);
  }

  /**
   * Direct get (the stream allows it): the payload comes back as is, where the STREAM.MSG.GET API
   * wraps it in base64 JSON — ten times slower to read frames of 1 KiB records that way.
   */
  async get(seq: number): Promise<StoredMsg | null> {
    try {
      return await (this.ctx.jsm as unknown as DirectGets).direct.getMessage(this.stream, { seq });
    } catch (err) {
      if (isNotFound(err)) return null;
      if (isStreamNotFound(err)) throw new UnknownTopicError(this.topic);
      const code = (err as { code?: string }).code;
      if (code === '503' || code === 'TIMEOUT') {
        // Nobody answers direct gets for a stream that is gone (or not yet up after a restart).
        await this.ctx.jsm.streams.info(this.stream).catch((e: unknown) => {
          throw isStreamNotFound(e) ? new UnknownTopicError(this.topic) : e;
        });
        return this.ctx.jsm.streams.getMessage(this.stream, { seq }).catch((e: unknown) => {
          if (isNotFound(e)) return null;
          throw e;
        });
      }
      throw err;
    }
  }

  private remember(m: StoredMsg): FrameMeta {
    const meta = this.metaOf(m.seq, m.header);
    if (this.metas.size > 4096) this.metas.clear();
    this.metas.set(m.seq, meta);
    return meta;
  }

  private metaOf(seq: number, h: MsgHdrs): FrameMeta {
    const base = Number(h.get(H_BASE));
    const count = Number(h.get(H_COUNT));
    if (!Number.isSafeInteger(base) || !Number.isSafeInteger(count)) {
      throw new AppendFailedError(new Error(`message ${seq} of ${this.stream} is not a sluice frame`));
    }
    return { seq, base, count, maxTs: Number(h.get(H_MAX_TS)), msgId: h.get(H_MSG_ID), headers: h };
  }

  /**
   * The frames' headers from `from` to the stream's end, without their payloads (an ordered
   * consumer with headers_only): for recovery scans over frames written by everyone.
   */
  async scanHeaders(from: number, visit: (meta: FrameMeta) => void): Promise<void> {
    await this.refresh(true);
    if (from > this.lastSeq) return;
    const to = this.lastSeq;
    const consumer = await this.ctx.js.consumers.get(this.stream, {
      deliver_policy: this.ctx.nats.DeliverPolicy.StartSequence,
      opt_start_seq: Math.max(from, this.firstSeq),
      headers_only: true,
    });
    const messages = await consumer.consume({ max_messages: 1000 });
    try {
      for await (const m of messages) {
        if (m.seq > to) break;
        if (m.headers !== undefined) visit(this.metaOf(m.seq, m.headers));
        if (m.seq >= to || m.info.pending === 0) break;
      }
    } finally {
      await messages.close().catch(() => undefined);
    }
  }

  /** Brings start/end up to date with the server (other writers, retention). */
  async refresh(force = false): Promise<void> {
    if (!force && performance.now() - this.refreshedAt < 0) return;
    // One at a time: an older stream info applied after a newer one would move the state back.
    const run = this.refreshing.then(() => this.refreshNow());
    this.refreshing = run.catch(() => undefined);
    return run;
  }

  private async refreshNow(): Promise<void> {
    let info;
    try {
      info = await this.ctx.jsm.streams.info(this.stream);
    } catch (err) {
      if (isStreamNotFound(err)) throw new UnknownTopicError(this.topic);
      throw err;
    }
    const { first_seq: firstSeq, last_seq: lastSeq, messages, bytes } = info.state;
    // Info fetched before an append this process has since seen acknowledged: it would move the
    // end back and, showing no messages yet, the start past the appended records. The next
    // refresh brings newer info.
    if (lastSeq < this.lastSeq) return;
    this.bytes = bytes;
    if (lastSeq !== this.lastSeq || this.end === 0) {
      if (messages > 0) {
        const last = await this.meta(lastSeq);
        if (last !== null && lastSeq >= this.lastSeq) {
          this.end = last.base + last.count;
          this.lastSeq = lastSeq;
        }
      } else {
        this.lastSeq = lastSeq;
      }
    }
    if (messages === 0) {
      this.start = this.end;
      this.firstSeq = lastSeq + 1;
    } else if (firstSeq !== this.firstSeq || this.start === 0) {
      const first = await this.meta(firstSeq);
      this.firstSeq = firstSeq;
      this.start = first === null ? this.end : first.base;
    }
    this.refreshedAt = performance.now();
  }

  /** Sequence of the frame holding `offset` (start <= offset < end). */
  private async locate(offset: number): Promise<number | null> {
    const hinted = this.hints.get(offset);
    if (hinted !== undefined) return hinted;
    let lo = this.firstSeq;
    let hi = this.lastSeq;
    while (lo <= hi) {
      const mid = Math.floor((lo + hi) / 2);
      const m = await this.meta(mid);
      if (m === null) {
        // Removed by retention meanwhile.
        lo = mid + 1;
        continue;
      }
      if (offset < m.base) hi = mid - 1;
      else if (offset >= m.base + m.count) lo = mid + 1;
      else return mid;
    }
    return null;
  }

  /** Records from `from` (start <= from < end), about maxBytes of values, whole frames. */
  async read(from: number, maxBytes: number): Promise<LogRecord[]> {
    const out: LogRecord[] = [];
    await this.scan(from, maxBytes, (data, base, _count, next, where) => decodeFrame(data, base, next, where, out));
    return out;
  }

  /** Like read, the values only (one span per frame); resolves to them and the offset after the last. */
  async readValues(from: number, maxBytes: number): Promise<{ spans: ValueSpans[]; bytes: number; nextOffset: number }> {
    const spans: ValueSpans[] = [];
    let bytes = 0;
    const nextOffset = await this.scan(from, maxBytes, (data, base, count, next, where) => {
      const b = new SpanBuilder(frameBuffer(data), base + count - next);
      const n = decodeFrameValues(data, base, next, where, b);
      if (b.count > 0) spans.push(b.spans());
      bytes += n;
      return n;
    });
    return { spans, bytes, nextOffset };
  }

  /**
   * Fetches the frames from the one holding `from` on, until about maxBytes of values; `decode`
   * (which checks the frame) takes its records from `next` and returns their value bytes; `count`
   * is the record count its headers give. Resolves to the offset after
   * the last frame taken (`from` when none).
   */
  private async scan(from: number, maxBytes: number, decode: (data: Uint8Array, base: number, count: number, next: number, where: string) => number): Promise<number> {
    let seq = await this.locate(from);
    if (seq === null) return from;
    let bytes = 0;
    let next = from;
    let taken = 0;
    while (seq <= this.lastSeq && (taken === 0 || bytes < maxBytes)) {
      const m = await this.get(seq);
      if (m === null) break;
      const meta = this.remember(m);
      bytes += decode(m.data, meta.base, meta.count, next, `${this.stream}#${seq}`);
      taken += meta.base + meta.count - next;
      next = meta.base + meta.count;
      seq++;
      if (bytes >= maxBytes) break;
    }
    if (this.hints.size > 10_000) this.hints.clear();
    this.hints.set(next, seq);
    return next;
  }

  async offsetForTimestamp(timestamp: number): Promise<number | null> {
    await this.refresh(true);
    for (let seq = this.firstSeq; seq <= this.lastSeq; seq++) {
      const meta = await this.meta(seq);
      if (meta === null || meta.maxTs < timestamp) continue;
      const m = await this.get(seq);
      if (m === null) continue;
      const records: LogRecord[] = [];
      decodeFrame(m.data, meta.base, meta.base, `${this.stream}#${seq}`, records);
      const hit = records.find((r) => r.timestamp >= timestamp);
      if (hit !== undefined) return hit.offset;
    }
    return null;
  }

  /** Waits until the end passes `offset`, the time is up, or the signal/close ends it. */
  async waitBeyond(offset: number, maxWaitMs: number, signal: AbortSignal | undefined): Promise<void> {
    const deadline = Date.now() + maxWaitMs;
    while (this.end <= offset && Date.now() < deadline && !signal?.aborted && !this.ctx.isClosed()) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          this.waiters.delete(done);
          signal?.removeEventListener('abort', done);
          resolve();
        };
        // Other writers' appends are seen by polling the stream's state.
        const timer = setTimeout(done, Math.min(100, Math.max(0, deadline - Date.now())));
        this.waiters.add(done);
        signal?.addEventListener('abort', done, { once: true });
      });
      if (this.end <= offset && !this.ctx.isClosed() && !signal?.aborted) await this.refresh(true);
    }
    if (this.ctx.isClosed()) throw new LogClosedError();
  }

  wake(): void {
    for (const w of [...this.waiters]) w();
  }
}
