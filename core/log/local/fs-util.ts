import { open, readFile, writeFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { DirectoryLockedError } from '../errors.js';

/** Makes a directory's entries (created, renamed, deleted files) durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const h = await open(dir, 'r');
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

/** Writes a file so that after a crash it holds either the old or the new content. */
export async function writeFileAtomic(path: string, data: string | Buffer): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  const h = await open(tmp, 'w');
  try {
    await h.writeFile(data);
    await h.datasync();
  } finally {
    await h.close();
  }
  await rename(tmp, path);
  await fsyncDir(join(path, '..'));
}

export function isErrno(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as NodeJS.ErrnoException).code === code;
}

const heldLocks = new Set<string>();

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return isErrno(err, 'EPERM');
  }
}

/**
 * Takes the data directory's lock: a LOCK file holding the owner's pid. A lock left by a dead
 * process (kill -9, power cut) is taken over; a live owner gives DirectoryLockedError.
 */
export async function acquireLock(dir: string): Promise<() => Promise<void>> {
  const path = join(dir, 'LOCK');
  if (heldLocks.has(path)) throw new DirectoryLockedError(dir, process.pid, 'this process has it open already');
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await writeFile(path, `${process.pid}\n`, { flag: 'wx' });
      heldLocks.add(path);
      return async () => {
        heldLocks.delete(path);
        await unlink(path).catch(() => undefined);
      };
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err;
    }
    const pid = Number.parseInt(await readFile(path, 'utf8').catch(() => ''), 10);
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
      throw new DirectoryLockedError(dir, pid);
    }
    // Stale: its owner is gone. Remove it and race for it again.
    await unlink(path).catch(() => undefined);
  }
  throw new DirectoryLockedError(dir, undefined);
}
