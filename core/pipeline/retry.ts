/**
 * The one retry module: exponential backoff with full jitter. Connectors do not nest their own
 * retries; the runtime wraps sink writes and pipeline restarts with this.
 */
export interface RetryPolicy {
  initialMs: number;
  maxMs: number;
  multiplier: number;
  /** Attempts in all, the first included; Infinity retries until aborted. */
  maxAttempts: number;
}

export const SINK_RETRY: RetryPolicy = { initialMs: 100, maxMs: 5000, multiplier: 2, maxAttempts: 6 };
export const RESTART_RETRY: RetryPolicy = { initialMs: 500, maxMs: 30000, multiplier: 2, maxAttempts: Infinity };

/** Delay before retry number `attempt` (1 = the first retry): uniform in [0, min(max, initial·m^(attempt-1))]. */
export function backoffDelay(attempt: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const cap = Math.min(policy.maxMs, policy.initialMs * policy.multiplier ** Math.max(0, attempt - 1));
  return Math.round(cap * (0.5 + random() / 2));
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

export interface RetryOptions {
  policy: RetryPolicy;
  signal?: AbortSignal;
  /** False stops retrying at once. Default: every error is retried. */
  isRetriable?: (err: unknown) => boolean;
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
  random?: () => number;
}

/** Calls `fn` until it succeeds, the policy's attempts run out, or the signal aborts. */
export async function retry<T>(fn: (attempt: number) => Promise<T>, o: RetryOptions): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      const retriable = o.isRetriable?.(err) ?? true;
      if (!retriable || attempt >= o.policy.maxAttempts || o.signal?.aborted) throw err;
      const delay = backoffDelay(attempt, o.policy, o.random);
      o.onRetry?.(err, attempt, delay);
      await sleep(delay, o.signal);
      if (o.signal?.aborted) throw err;
    }
  }
}
