export type * from './types.js';
export * from './errors.js';
export { murmur2, partitionForKey, StickyPartitioner } from './partitioner.js';
export { checkTopicName } from './topic-name.js';
export { openLocalLog, LocalLog, isLocalLog, LOCAL_DEFAULTS } from './local/index.js';
export type { LocalLogOptions } from './local/index.js';
