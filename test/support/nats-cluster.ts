/**
 * A private three-node JetStream cluster started from the configuration files documented in
 * docs/nats-cluster/ (so the documented config is the tested one): each file is copied with its
 * hosts and ports rewritten to free local ones, then every node starts through startNats().
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { startNats, type NatsServer } from './nats.js';
import { freePort } from './ports.js';

export interface NatsCluster {
  readonly nodes: NatsServer[];
  /** Client URLs of every node. */
  readonly servers: string[];
  stop(): Promise<void>;
}

/** docs/nats-cluster of this checkout, from the source (test/support) or the build (dist/test/support). */
export function clusterConfigDir(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); dir !== dirname(dir); dir = dirname(dir)) {
    const candidate = join(dir, 'docs', 'nats-cluster');
    if (existsSync(candidate)) return candidate;
  }
  throw new Error('docs/nats-cluster not found above ' + fileURLToPath(import.meta.url));
}

export async function startNatsCluster(dir: string = clusterConfigDir()): Promise<NatsCluster> {
  const confDir = await mkdtemp(join(tmpdir(), 'sluice-nats-cluster-'));
  const names = ['n1.conf', 'n2.conf', 'n3.conf'];
  const routePorts = [await freePort('127.0.0.1'), await freePort('127.0.0.1'), await freePort('127.0.0.1')];
  const files: string[] = [];
  for (const [i, name] of names.entries()) {
    let text = await readFile(join(dir, name), 'utf8');
    // nats-N:630N in routes, 0.0.0.0:630N as the cluster listen address.
    text = text.replace(/nats-([123]):630[123]/g, (_, n: string) => `127.0.0.1:${routePorts[Number(n) - 1]}`);
    text = text.replace(/listen: 0\.0\.0\.0:630[123]/, `listen: 127.0.0.1:${routePorts[i]}`);
    // startNats gives each node its own temporary store (-sd), which may not be set twice.
    text = text.replace(/^\s*store_dir:.*$/m, '');
    const file = join(confDir, name);
    await writeFile(file, text);
    files.push(file);
  }
  // All at once: JetStream answers only when a quorum of the cluster is up.
  const started = await Promise.allSettled(files.map((file) => startNats({ args: ['-c', file], startTimeoutMs: 60_000 })));
  const nodes = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const stop = async (): Promise<void> => {
    await Promise.allSettled(nodes.map((n) => n.stop()));
    await rm(confDir, { recursive: true, force: true });
  };
  const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    await stop();
    throw failed.reason;
  }
  return { nodes, servers: nodes.map((n) => n.url), stop };
}
