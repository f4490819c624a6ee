import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { openLocalLog } from '../../core/log/local/index.js';
import { runLogContract } from './log-contract.js';

runLogContract('local', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-contract-'));
  return {
    open: () => openLocalLog({ dir, retentionSchedule: false }),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});
