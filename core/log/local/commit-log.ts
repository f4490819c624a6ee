/**
 * The commit log: the one file whose last valid record says what is committed. Every flush cycle
 * appends one record holding, for every partition it touched, the new end offset and where that
 * end lies on disk, plus the source checkpoints and group offsets committed with it. Recovery
 * replays it; a torn or damaged tail record is the end of the log (nothing it covered was acked).
 *
 * Framing: uint32 payload length · uint32 CRC-32 of the payload · payload (UTF-8 JSON).
 * When the file grows past `compactBytes`, the whole state is written as one snapshot record to a
 * new file that atomically replaces the old one.
 */
import { open, rename, type FileHandle } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import { join } from 'node:path';
import { fsyncDir } from './fs-util.js';

/** [topicId, partition, endOffset, activeSegmentBase, activeSegmentBytes] */
export type PartitionCommit = [string, number, number, number, number];
/** [group, topic, partition, offset]; offset null removes the entry. */
export type GroupCommit = [string, string, number, number | null];

export interface CommitRecord {
  seq: number;
  /** A snapshot replaces the whole state instead of updating it. */
  snapshot?: boolean;
  parts?: PartitionCommit[];
  checkpoints?: Record<string, unknown>;
  groups?: GroupCommit[];
  /** Topic ids whose partition entries are dropped (topic deleted). */
  dropTopicIds?: string[];
  /** Topic names whose group offsets are dropped (topic deleted). */
  dropGroupTopics?: string[];
  dropGroups?: string[];
}

export interface PartitionPoint {
  end: number;
  segBase: number;
  segBytes: number;
}

export class CommitState {
  readonly parts = new Map<string, PartitionPoint>();
  readonly checkpoints = new Map<string, unknown>();
  /** group -> "topic\0partition" -> offset */
  readonly groups = new Map<string, Map<string, number>>();
  seq = 0;

  static partKey(topicId: string, partition: number): string {
    return `${topicId}/${partition}`;
  }

  static groupKey(topic: string, partition: number): string {
    return `${topic}\u0000${partition}`;
  }

  apply(r: CommitRecord): void {
    if (r.snapshot) {
      this.parts.clear();
      this.checkpoints.clear();
      this.groups.clear();
    }
    this.seq = r.seq;
    for (const [id, p, end, segBase, segBytes] of r.parts ?? []) {
      this.parts.set(CommitState.partKey(id, p), { end, segBase, segBytes });
    }
    for (const [source, position] of Object.entries(r.checkpoints ?? {})) this.checkpoints.set(source, position);
    for (const [group, topic, partition, offset] of r.groups ?? []) {
      let offsets = this.groups.get(group);
      if (offsets === undefined) this.groups.set(group, (offsets = new Map()));
      if (offset === null) offsets.delete(CommitState.groupKey(topic, partition));
      else offsets.set(CommitState.groupKey(topic, partition), offset);
    }
    // Drops last: a cycle may carry a topic's final writes together with its deletion.
    for (const id of r.dropTopicIds ?? []) {
      for (const k of [...this.parts.keys()]) if (k.startsWith(`${id}/`)) this.parts.delete(k);
    }
    for (const name of r.dropGroupTopics ?? []) {
      for (const offsets of this.groups.values()) {
        for (const k of [...offsets.keys()]) if (k.startsWith(`${name}\u0000`)) offsets.delete(k);
      }
    }
    for (const g of r.dropGroups ?? []) this.groups.delete(g);
  }

  toSnapshot(): CommitRecord {
    const parts: PartitionCommit[] = [];
    for (const [k, v] of this.parts) {
      const slash = k.lastIndexOf('/');
      parts.push([k.slice(0, slash), Number(k.slice(slash + 1)), v.end, v.segBase, v.segBytes]);
    }
    const groups: GroupCommit[] = [];
    for (const [group, offsets] of this.groups) {
      for (const [k, offset] of offsets) {
        const sep = k.lastIndexOf('\u0000');
        groups.push([group, k.slice(0, sep), Number(k.slice(sep + 1)), offset]);
      }
    }
    return { seq: this.seq, snapshot: true, parts, checkpoints: Object.fromEntries(this.checkpoints), groups };
  }
}

export function encodeCommit(r: CommitRecord): Buffer {
  const payload = Buffer.from(JSON.stringify(r), 'utf8');
  const buf = Buffer.allocUnsafe(8 + payload.length);
  buf.writeUInt32LE(payload.length, 0);
  buf.writeUInt32LE(crc32(payload), 4);
  payload.copy(buf, 8);
  return buf;
}

/** Decodes the valid prefix of a commit log: its records and the byte length they span. */
export function decodeCommits(buf: Buffer): { records: CommitRecord[]; validBytes: number; damage?: string } {
  const records: CommitRecord[] = [];
  let pos = 0;
  while (pos < buf.length) {
    if (pos + 8 > buf.length) return { records, validBytes: pos, damage: `torn record header at byte ${pos}` };
    const len = buf.readUInt32LE(pos);
    const crc = buf.readUInt32LE(pos + 4);
    if (pos + 8 + len > buf.length) return { records, validBytes: pos, damage: `torn record at byte ${pos}` };
    const payload = buf.subarray(pos + 8, pos + 8 + len);
    if (crc32(payload) !== crc) return { records, validBytes: pos, damage: `checksum mismatch at byte ${pos}` };
    let rec: CommitRecord;
    try {
      rec = JSON.parse(payload.toString('utf8')) as CommitRecord;
    } catch {
      return { records, validBytes: pos, damage: `unreadable record at byte ${pos}` };
    }
    records.push(rec);
    pos += 8 + len;
  }
  return { records, validBytes: pos };
}

export class CommitLog {
  private constructor(
    private readonly path: string,
    private handle: FileHandle,
    private size: number,
    readonly state: CommitState,
    private readonly compactBytes: number,
    private readonly warn: (m: string) => void,
  ) {}

  /** Opens (or creates) the commit log in `dir`, replays it and cuts any damaged tail. */
  static async open(
    dir: string,
    compactBytes: number,
    warn: (m: string) => void,
  ): Promise<CommitLog> {
    const path = join(dir, 'commit.log');
    const handle = await open(path, 'a+');
    const { size } = await handle.stat();
    const buf = Buffer.allocUnsafe(size);
    if (size > 0) await handle.read(buf, 0, size, 0);
    await handle.close();
    const { records, validBytes, damage } = decodeCommits(buf);
    const state = new CommitState();
    for (const r of records) state.apply(r);
    const rw = await open(path, 'r+');
    if (damage !== undefined) {
      warn(`commit log ${path}: ${damage}; ${size - validBytes} bytes after the last valid commit were discarded`);
      await rw.truncate(validBytes);
      await rw.datasync();
    }
    return new CommitLog(path, rw, validBytes, state, compactBytes, warn);
  }

  /** Writes a record (and applies it to the state once written); with `sync`, fsyncs it too. */
  async append(rec: Omit<CommitRecord, 'seq'>, sync: boolean): Promise<void> {
    const full: CommitRecord = { seq: this.state.seq + 1, ...rec };
    const buf = encodeCommit(full);
    try {
      await this.handle.write(buf, 0, buf.length, this.size);
    } catch (err) {
      // Leave no partial record behind: the next append would otherwise follow garbage.
      await this.handle.truncate(this.size).catch(() => undefined);
      throw err;
    }
    if (sync) await this.handle.datasync();
    this.size += buf.length;
    this.state.apply(full);
    if (sync && this.size > this.compactBytes) {
      // The record is committed already: a failed compaction must not fail the appends it covers.
      await this.compact().catch((err: unknown) => this.warn(`commit log compaction failed, will retry: ${(err as Error).message}`));
    }
  }

  async sync(): Promise<void> {
    await this.handle.datasync();
  }

  /** Rewrites the state as one snapshot record into a new file that replaces the old one. */
  private async compact(): Promise<void> {
    const tmp = `${this.path}.compact`;
    const snap = encodeCommit({ ...this.state.toSnapshot(), seq: this.state.seq });
    const h = await open(tmp, 'w');
    try {
      await h.write(snap, 0, snap.length, 0);
      await h.datasync();
    } finally {
      await h.close();
    }
    await rename(tmp, this.path);
    await fsyncDir(join(this.path, '..'));
    await this.handle.close();
    this.handle = await open(this.path, 'r+');
    this.size = snap.length;
  }

  async close(): Promise<void> {
    await this.handle.datasync();
    await this.handle.close();
  }
}
