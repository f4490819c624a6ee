export { fileSink } from './sink.js';
export type { FileSinkConfig } from './sink.js';
