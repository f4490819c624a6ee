export { fileSink } from './sink.js';
export type { FileSinkConfig } from './sink.js';
export { fileSource, FileSource } from './source.js';
export type { FileSourceConfig, FileSourceStats } from './source.js';
