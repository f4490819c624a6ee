export { Metrics } from './metrics.js';
export type { ErrorStage, InvalidAction } from './metrics.js';
export { startAdminServer } from './server.js';
export type { AdminServer, AdminServerOptions, AdminLogger } from './server.js';
export type { AdminStatus, PipelineStatus, SinkStatus, TopicStatus, PartitionStatus, JsonValue } from './status.js';
export { DEFAULT_ADMIN_PORT, DEFAULT_ADMIN_LISTEN, parseListenAddress, formatListenAddress } from './listen-address.js';
export type { ListenAddress } from './listen-address.js';
export * from './errors.js';
