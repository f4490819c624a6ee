import { LocalLog } from './local-log.js';
import type { LocalLogOptions } from './options.js';

export { LocalLog, isLocalLog } from './local-log.js';
export type { LocalLogOptions } from './options.js';
export { LOCAL_DEFAULTS } from './options.js';

/** Opens (creating when missing) the embedded log in `options.dir`, recovering it to its last commit. */
export function openLocalLog(options: LocalLogOptions): Promise<LocalLog> {
  return LocalLog.open(options);
}
