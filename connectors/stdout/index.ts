/** `stdout` sink: one record value a line (NDJSON). At-least-once: a restart may repeat lines. */
import type { Sink, SinkBatch, SinkDeclaration } from '../sdk.js';

const NEWLINE = Buffer.from('\n');

class StdoutSink implements Sink {
  async open(): Promise<void> {}

  async write(batch: SinkBatch): Promise<void> {
    const parts: Buffer[] = [];
    for (const r of batch.records) parts.push(r.raw, NEWLINE);
    if (!process.stdout.write(Buffer.concat(parts))) {
      // A closed pipe (`| head`) never drains: fail the write instead of waiting forever.
      await new Promise<void>((resolve, reject) => {
        const done = (err?: Error): void => {
          process.stdout.off('drain', onDrain);
          process.stdout.off('error', done);
          process.stdout.off('close', onClose);
          if (err) reject(err);
          else resolve();
        };
        const onDrain = (): void => done();
        const onClose = (): void => done(new Error('stdout was closed'));
        process.stdout.once('drain', onDrain);
        process.stdout.once('error', done);
        process.stdout.once('close', onClose);
      });
    }
  }

  async close(): Promise<void> {}
}

export const stdoutSink: SinkDeclaration<Record<string, never>> = {
  kind: 'sink',
  type: 'stdout',
  summary: 'prints each record value as a line of JSON',
  delivery: 'at-least-once',
  deliveryNote: 'lines after the last commit may print again after a restart',
  schema: { type: 'object', additionalProperties: false, properties: {} },
  create: () => new StdoutSink(),
};
