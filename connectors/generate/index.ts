/**
 * `generate`: synthetic log events `{ id, timestamp, level, service, message }`. `id` starts at 0
 * and increases by one; every field but `timestamp` is a pure function of (seed, id), so a resumed
 * source re-creates exactly the records it would have made. Position: the next id.
 */
import type { ConnectorContext, Source, SourceBatch, SourceDeclaration } from '../sdk.js';

export interface GenerateConfig {
  count?: number;
  seed?: number;
  rate_per_sec?: number;
  batch_size?: number;
  services?: string[];
}

const LEVELS = ['debug', 'info', 'info', 'info', 'info', 'warn', 'error'];
const VERBS = ['GET', 'POST', 'PUT', 'DELETE'];
const PATHS = ['/api/orders', '/api/users', '/health', '/api/search', '/login', '/api/cart'];

/** A 32-bit mix of (seed, id): the same inputs always give the same event. */
function mix(seed: number, id: number): number {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(id | 0, 0xc2b2ae35) ^ Math.floor(id / 4294967296);
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b);
  return (h ^ (h >>> 16)) >>> 0;
}

export function generateEvent(seed: number, id: number, services: readonly string[], now: number) {
  const r = mix(seed, id);
  const verb = VERBS[r % VERBS.length]!;
  const path = PATHS[(r >>> 4) % PATHS.length]!;
  const status = [200, 200, 200, 201, 204, 400, 404, 500][(r >>> 8) % 8]!;
  return {
    id,
    timestamp: new Date(now).toISOString(),
    level: status >= 500 ? 'error' : status >= 400 ? 'warn' : LEVELS[(r >>> 12) % 5]!,
    service: services[(r >>> 16) % services.length]!,
    message: `${verb} ${path} ${status} ${(r >>> 20) % 900 + 5}ms`,
  };
}

class GenerateSource implements Source {
  private next = 0;
  private readonly seed: number;
  private readonly services: string[];
  private readonly batchSize: number;
  private started = 0;
  private emittedSinceStart = 0;

  constructor(
    private readonly config: GenerateConfig,
    private readonly ctx: ConnectorContext,
  ) {
    this.seed = config.seed ?? 1;
    this.services = config.services ?? ['api', 'web', 'worker', 'billing'];
    this.batchSize = config.batch_size ?? 1000;
  }

  async open(position: unknown): Promise<void> {
    this.next = typeof position === 'object' && position !== null ? Number((position as { next_id?: number }).next_id ?? 0) : 0;
    this.started = Date.now();
    this.emittedSinceStart = 0;
  }

  async read(): Promise<SourceBatch | null> {
    const { count, rate_per_sec: rate } = this.config;
    if (count !== undefined && this.next >= count) return null;
    let n = this.batchSize;
    if (count !== undefined) n = Math.min(n, count - this.next);
    if (rate !== undefined) {
      // Pace to the rate: wait until this batch is due, in batches of at most a tenth of a second.
      n = Math.max(1, Math.min(n, Math.ceil(rate / 10)));
      const due = this.started + (this.emittedSinceStart / rate) * 1000;
      const wait = due - Date.now();
      if (wait > 0) await sleep(wait, this.ctx.signal);
      if (this.ctx.signal.aborted) return null;
    }
    const now = Date.now();
    const records = [];
    for (let i = 0; i < n; i++) {
      const id = this.next + i;
      records.push({ key: null, value: generateEvent(this.seed, id, this.services, now), timestamp: now });
    }
    this.next += n;
    this.emittedSinceStart += n;
    return { records, position: { next_id: this.next } };
  }

  async close(): Promise<void> {}
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

export const generateSource: SourceDeclaration<GenerateConfig> = {
  kind: 'source',
  type: 'generate',
  summary: 'synthetic log events with unique increasing ids, deterministic by seed',
  replayable: true,
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      count: { type: 'integer', minimum: 0, description: 'events to generate; absent: endless' },
      seed: { type: 'integer', default: 1, description: 'same seed, same events' },
      rate_per_sec: { type: 'number', exclusiveMinimum: 0, description: 'events per second; absent: as fast as possible' },
      batch_size: { type: 'integer', minimum: 1, maximum: 100000, default: 1000 },
      services: { type: 'array', items: { type: 'string' }, minItems: 1 },
    },
  },
  create: (config, ctx) => new GenerateSource(config, ctx),
};
