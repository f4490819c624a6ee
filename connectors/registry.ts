/** Every built-in connector, listed explicitly (no registration by import side effect). */
import type { SinkDeclaration, SourceDeclaration } from './sdk.js';
import { generateSource } from './generate/index.js';
import { postgresSink } from './postgres/sink.js';
import { fileSink, fileSource } from './file/index.js';
import { stdoutSink } from './stdout/index.js';
import { postgresCdcSource } from './postgres/cdc.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const builtinSources: readonly SourceDeclaration<any>[] = [generateSource, fileSource, postgresCdcSource];
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const builtinSinks: readonly SinkDeclaration<any>[] = [fileSink, stdoutSink, postgresSink];
