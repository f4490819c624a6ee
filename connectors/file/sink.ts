/**
 * `file` sink: NDJSON files below `path`, one per topic-partition (`<topic>-<partition>.ndjson`),
 * one record value a line. Exactly-once: after each batch is written and fsynced, a small state
 * file records the data file's committed length and the next offset together. On open, the data
 * file is cut back to the committed length and reading resumes at the stored offset, so a crash
 * anywhere leaves neither a lost nor a repeated line.
 *
 * The state is one fixed 128-byte record (JSON padded with spaces), rewritten in place by one
 * positioned write per batch — no temporary file, rename or fsync: it is written only after the
 * data it counts is fdatasynced, so whatever state survives a crash or a power cut never counts
 * more than the data file holds; an older one only makes the sink cut back and write again the
 * same lines. A 128-byte write at offset 0 never straddles a sector, so it is not torn.
 */
import { mkdir, open, readFile, type FileHandle } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { isErrno, writeFileAtomic } from '../sdk.js';
import type { ConnectorContext, Sink, SinkBatch, SinkDeclaration, SinkValuesBatch } from '../sdk.js';

export interface FileSinkConfig {
  path: string;
}

const LF = 0x0a;

interface PartitionFile {
  handle: FileHandle;
  length: number;
  next: number | undefined;
  statePath: string;
  /** Open for in-place rewrites once this run has written the state durably (atomically) once. */
  state: FileHandle | null;
}

const STATE_BYTES = 128;

/** The state record: `{"length":…,"next_offset":…}` padded with spaces to 127 bytes, then LF. */
function stateRecord(length: number, next: number): Buffer {
  const buf = Buffer.alloc(STATE_BYTES, 0x20);
  buf.write(JSON.stringify({ length, next_offset: next }), 0, 'latin1');
  buf[STATE_BYTES - 1] = 0x0a;
  return buf;
}

class FileSink implements Sink {
  private readonly dir: string;
  private readonly files = new Map<string, PartitionFile>();
  private scratch = new Uint8Array(0);

  constructor(config: FileSinkConfig, ctx: ConnectorContext) {
    this.dir = resolve(ctx.baseDir, config.path);
  }

  async open(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
  }

  private async file(topic: string, partition: number): Promise<PartitionFile> {
    const name = `${topic}-${partition}`;
    let f = this.files.get(name);
    if (f !== undefined) return f;
    const statePath = join(this.dir, `.${name}.state.json`);
    let state: { length: number; next_offset: number } | undefined;
    try {
      // Earlier versions wrote the JSON unpadded (by rename): it parses the same.
      state = JSON.parse(await readFile(statePath, 'utf8')) as { length: number; next_offset: number };
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err;
    }
    const handle = await openRw(join(this.dir, `${name}.ndjson`));
    const length = state?.length ?? 0;
    // Anything past the committed length was written by a run that died before committing it.
    await handle.truncate(length);
    f = { handle, length, next: state?.next_offset, statePath, state: null };
    this.files.set(name, f);
    return f;
  }

  async committedOffset(topic: string, partition: number): Promise<number | undefined> {
    return (await this.file(topic, partition)).next;
  }

  async write(batch: SinkBatch): Promise<void> {
    if (batch.records.length === 0) return;
    const f = await this.file(batch.topic, batch.partition);
    // The stored bytes are the value's JSON text already: no parse and re-stringify per record,
    // copied into one buffer kept from write to write (writes never overlap).
    const records = batch.records;
    let size = 0;
    for (let i = 0; i < records.length; i++) size += records[i]!.raw.length + 1;
    const out = this.room(size);
    let pos = 0;
    for (let i = 0; i < records.length; i++) {
      const raw = records[i]!.raw;
      out.set(raw, pos);
      pos += raw.length;
      out[pos++] = LF;
    }
    await this.commit(f, size, batch.nextOffset);
  }

  /**
   * The same lines from the log's read buffers: each buffer's stretch from its first value to its
   * last is copied as one block, then every value is moved down over the record framing before it
   * (copyWithin: no object per value) and followed by a newline.
   */
  async writeValues(batch: SinkValuesBatch): Promise<void> {
    if (batch.nextOffset === batch.firstOffset) return;
    const f = await this.file(batch.topic, batch.partition);
    let size = 0;
    let block = 0;
    for (const sp of batch.spans) {
      if (sp.count === 0) continue;
      size += sp.count;
      block = Math.max(block, sp.ends[sp.count - 1]! - sp.starts[0]!);
    }
    size += batch.bytes;
    // Room for the lines, and for the largest block copied in just after them.
    const out = this.room(size + block);
    let pos = 0;
    for (const sp of batch.spans) {
      const { starts, ends, count } = sp;
      if (count === 0) continue;
      const first = starts[0]!;
      const at = size;
      out.set(sp.buf.subarray(first, ends[count - 1]!), at);
      for (let i = 0; i < count; i++) {
        const s = starts[i]! - first + at;
        const e = ends[i]! - first + at;
        out.copyWithin(pos, s, e);
        pos += e - s;
        out[pos++] = LF;
      }
    }
    await this.commit(f, size, batch.nextOffset);
  }

  /** The scratch buffer, at least `size` bytes. */
  private room(size: number): Uint8Array {
    if (this.scratch.length < size) this.scratch = new Uint8Array(Math.max(size, 2 * this.scratch.length));
    return this.scratch;
  }

  /** Appends the first `size` bytes of the scratch buffer, fdatasyncs, then records the new state. */
  private async commit(f: PartitionFile, size: number, nextOffset: number): Promise<void> {
    await f.handle.write(this.scratch, 0, size, f.length);
    await f.handle.datasync();
    const length = f.length + size;
    const record = stateRecord(length, nextOffset);
    if (f.state !== null) await f.state.write(record, 0, STATE_BYTES, 0);
    else {
      // The first state of a run is made durable (a new file: its directory entry too): from then
      // on a state is always there, and an older one is safe; without one the sink would fall
      // back to the group's offset and cut the data file to 0.
      await writeFileAtomic(f.statePath, record);
      f.state = await open(f.statePath, 'r+');
    }
    f.length = length;
    f.next = nextOffset;
  }

  async close(): Promise<void> {
    for (const f of this.files.values()) {
      await f.handle.close();
      await f.state?.close();
    }
    this.files.clear();
  }
}

/** Opens a file for positioned reads and writes, creating it if needed. */
async function openRw(path: string): Promise<FileHandle> {
  try {
    return await open(path, 'r+');
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err;
    return open(path, 'w+');
  }
}

export const fileSink: SinkDeclaration<FileSinkConfig> = {
  kind: 'sink',
  type: 'file',
  summary: 'NDJSON files, one per topic-partition, exactly-once by committed length',
  delivery: 'idempotent',
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['path'],
    properties: { path: { type: 'string', minLength: 1, description: 'directory for the output files' } },
  },
  create: (config, ctx) => new FileSink(config, ctx),
};
