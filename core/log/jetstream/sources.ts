/**
 * Source checkpoints on JetStream. The truth travels in the frames: every frame of an append that
 * carries a checkpoint holds, in its headers, the source, the position (base64 JSON), the
 * transaction id, the frame's index and the transaction's frame count, and a per-source counter.
 * The KV bucket `<prefix>_sources` is a cache: the last position it saw, and for every stream the
 * source writes, the sequence up to which that stream was looked at.
 *
 * Recovery (first use of a source in a process): start from the cached entry, read every frame the
 * source's streams got after the cached sequences, group the source's frames by transaction, and
 * take the complete transaction with the highest counter. A transaction cut by a crash (some of its
 * frames stored, not all) does not count; its stored frames are remembered by message id, so when
 * the source re-sends that batch from the previous position (same position → same transaction id
 * → same message ids) those frames are recognised and not written twice, however long ago the
 * crash was. Before a source first writes to a stream, the stream is registered in the cache
 * (awaited), so recovery always knows every stream to look at.
 */
import type { KV } from 'nats';

import { b64, hash } from './names.js';
import type { FrameMeta, JsPartition } from './partition.js';

export const H_SOURCE = 'Sluice-Source';
export const H_POSITION = 'Sluice-Position';
export const H_TXN = 'Sluice-Txn';
export const H_FRAME = 'Sluice-Frame';
export const H_COUNTER = 'Sluice-Counter';

interface CacheEntry {
  /** Present once a position was committed. */
  position?: unknown;
  counter: number;
  /** stream → sequence up to which it was read for this source (or its last frame). */
  seqs: Record<string, number>;
}

export interface SourceState {
  source: string;
  hasPosition: boolean;
  position: unknown;
  positionJson: string;
  /** Position of the last transaction started (the previous position of the next one). */
  issuedJson: string;
  /** Last counter handed out; the next transaction gets counter + 1. */
  counter: number;
  /** Counter of the last committed transaction (what the cache records). */
  committed: number;
  seqs: Record<string, number>;
  /** Frames of a transaction cut by a crash, by message id: their stored base offsets. */
  stored: Map<string, { base: number; seq: number }>;
  /** The previous transaction, for ordering (see JetStreamLog.appendAll). */
  tail: { stream: string | null; done: Promise<void> };
  writing: Promise<void> | null;
  dirty: boolean;
}

export function txnId(source: string, previousJson: string, positionJson: string): string {
  return hash(`${source}\0${previousJson}\0${positionJson}`, 24);
}

export function sourceKey(source: string): string {
  return `s${b64(source)}`;
}

export function checkpointHeaders(
  state: SourceState,
  txn: string,
  counter: number,
  positionJson: string,
  index: number,
  frames: number,
): [string, string][] {
  return [
    [H_SOURCE, b64(state.source)],
    [H_TXN, txn],
    [H_COUNTER, String(counter)],
    [H_FRAME, `${index}/${frames}`],
    [H_POSITION, Buffer.from(positionJson, 'utf8').toString('base64')],
  ];
}

interface Txn {
  counter: number;
  frames: number;
  positionJson: string;
  stored: Map<string, { base: number; seq: number }>;
}

/** Rebuilds a source's state from the cache and the frames stored after it. */
export async function recoverSource(
  kv: KV,
  source: string,
  partitionOf: (stream: string) => Promise<JsPartition | null>,
): Promise<SourceState> {
  const entry = await kv.get(sourceKey(source));
  let cache: CacheEntry = { counter: -1, seqs: {} };
  if (entry !== null && entry.operation === 'PUT' && entry.value.length > 0) cache = JSON.parse(entry.string()) as CacheEntry;
  const encoded = b64(source);
  const txns = new Map<string, Txn>();
  const seqs: Record<string, number> = { ...cache.seqs };
  for (const [stream, after] of Object.entries(cache.seqs)) {
    const part = await partitionOf(stream);
    if (part === null) {
      delete seqs[stream];
      continue;
    }
    await part.scanHeaders(after + 1, (m: FrameMeta) => {
      if (m.headers.get(H_SOURCE) !== encoded) return;
      const seq = m.seq;
      const id = m.headers.get(H_TXN);
      const [, n] = m.headers.get(H_FRAME).split('/');
      const counter = Number(m.headers.get(H_COUNTER));
      let t = txns.get(id);
      if (t === undefined) {
        t = {
          counter,
          frames: Number(n),
          positionJson: Buffer.from(m.headers.get(H_POSITION), 'base64').toString('utf8'),
          stored: new Map(),
        };
        txns.set(id, t);
      }
      t.counter = Math.max(t.counter, counter);
      t.stored.set(m.msgId, { base: m.base, seq });
      seqs[stream] = seq;
    });
  }
  let best: Txn | undefined;
  let maxCounter = cache.counter;
  for (const t of txns.values()) {
    maxCounter = Math.max(maxCounter, t.counter);
    if (t.stored.size === t.frames && t.counter > cache.counter && (best === undefined || t.counter > best.counter)) best = t;
  }
  const stored = new Map<string, { base: number; seq: number }>();
  for (const t of txns.values()) {
    if (t.stored.size < t.frames && (best === undefined || t.counter > best.counter)) {
      for (const [id, at] of t.stored) stored.set(id, at);
    }
  }
  const hasPosition = best !== undefined || 'position' in cache;
  const positionJson = best !== undefined ? best.positionJson : hasPosition ? JSON.stringify(cache.position) : '';
  return {
    source,
    hasPosition,
    position: hasPosition ? (JSON.parse(positionJson) as unknown) : undefined,
    positionJson,
    issuedJson: positionJson,
    counter: maxCounter,
    committed: best !== undefined ? best.counter : cache.counter,
    seqs,
    stored,
    tail: { stream: null, done: Promise.resolve() },
    writing: null,
    dirty: best !== undefined,
  };
}

/** Writes the cache entry (awaited when a new stream is registered, else in the background). */
export async function writeCache(kv: KV, state: SourceState): Promise<void> {
  const entry: CacheEntry = { counter: state.committed, seqs: state.seqs };
  if (state.hasPosition) entry.position = state.position;
  state.dirty = false;
  await kv.put(sourceKey(state.source), JSON.stringify(entry));
}
