import { describe, expect, it } from 'vitest';
import { register as globalRegistry } from 'prom-client';
import { Metrics } from '../../core/admin/metrics.js';

/** The value of one sample line, e.g. `sluice_records_in_total{pipeline="a"}`. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('Metrics', () => {
  it('exports every sluice metric with its labels after calls', async () => {
    const m = new Metrics();
    m.recordsIn('app-logs', 10, 1_000);
    m.recordsIn('app-logs', 5, 500);
    m.recordsOut('app-logs', 'archive', 7, 700);
    m.error('app-logs', 'sink');
    m.invalid('app-logs', 'app-logs', 'dlq', 3);
    m.restart('app-logs');
    m.lag('app-logs.archive', 'app-logs', 2, 42);
    m.commitLatency(0.003);
    m.sinkLatency('app-logs', 'archive', 0.2);
    const text = await m.registry.metrics();

    expect(sample(text, 'sluice_records_in_total{pipeline="app-logs"}')).toBe(15);
    expect(sample(text, 'sluice_bytes_in_total{pipeline="app-logs"}')).toBe(1_500);
    expect(sample(text, 'sluice_records_out_total{pipeline="app-logs",sink="archive"}')).toBe(7);
    expect(sample(text, 'sluice_bytes_out_total{pipeline="app-logs",sink="archive"}')).toBe(700);
    expect(sample(text, 'sluice_errors_total{pipeline="app-logs",stage="sink"}')).toBe(1);
    expect(sample(text, 'sluice_invalid_records_total{pipeline="app-logs",topic="app-logs",action="dlq"}')).toBe(3);
    expect(sample(text, 'sluice_pipeline_restarts_total{pipeline="app-logs"}')).toBe(1);
    expect(sample(text, 'sluice_consumer_lag_records{group="app-logs.archive",topic="app-logs",partition="2"}')).toBe(42);
    expect(sample(text, 'sluice_commit_latency_seconds_count')).toBe(1);
    expect(sample(text, 'sluice_commit_latency_seconds_bucket{le="0.0005"}')).toBe(0);
    expect(sample(text, 'sluice_commit_latency_seconds_bucket{le="0.005"}')).toBe(1);
    expect(sample(text, 'sluice_commit_latency_seconds_bucket{le="5"}')).toBe(1);
    expect(sample(text, 'sluice_sink_write_seconds_count{pipeline="app-logs",sink="archive"}')).toBe(1);
    for (const type of [
      '# TYPE sluice_records_in_total counter',
      '# TYPE sluice_consumer_lag_records gauge',
      '# TYPE sluice_commit_latency_seconds histogram',
      '# TYPE sluice_sink_write_seconds histogram',
    ]) {
      expect(text).toContain(type);
    }
  });

  it('commit latency buckets run from 0.0005 to 5 seconds', async () => {
    const m = new Metrics();
    m.commitLatency(0);
    const text = await m.registry.metrics();
    const les = [...text.matchAll(/^sluice_commit_latency_seconds_bucket\{le="([^"]+)"\}/gm)].map((x) => x[1]);
    expect(les[0]).toBe('0.0005');
    expect(les.at(-2)).toBe('5');
    expect(les.at(-1)).toBe('+Inf');
  });

  it('lag is a gauge (latest value wins) and forgetLag drops the series', async () => {
    const m = new Metrics();
    m.lag('g', 't', 0, 100);
    m.lag('g', 't', 0, 3);
    m.lag('g', 't', 1, 9);
    let text = await m.registry.metrics();
    expect(sample(text, 'sluice_consumer_lag_records{group="g",topic="t",partition="0"}')).toBe(3);
    m.forgetLag('g', 't', 0);
    text = await m.registry.metrics();
    expect(sample(text, 'sluice_consumer_lag_records{group="g",topic="t",partition="0"}')).toBeUndefined();
    expect(sample(text, 'sluice_consumer_lag_records{group="g",topic="t",partition="1"}')).toBe(9);
  });

  it('includes the default process metrics', async () => {
    const text = await new Metrics().registry.metrics();
    expect(text).toContain('process_cpu_user_seconds_total');
    expect(text).toContain('nodejs_heap_size_total_bytes');
  });

  it('uses a private registry per instance, not the global one', async () => {
    const a = new Metrics();
    const b = new Metrics();
    a.recordsIn('only-a', 1, 1);
    expect(a.registry).not.toBe(b.registry);
    expect(a.registry).not.toBe(globalRegistry);
    expect(await b.registry.metrics()).not.toContain('only-a');
    expect(await globalRegistry.metrics()).not.toContain('sluice_');
  });

  it('escapes label values', async () => {
    const m = new Metrics();
    m.recordsIn('we"ird\\name', 1, 1);
    expect(await m.registry.metrics()).toContain('sluice_records_in_total{pipeline="we\\"ird\\\\name"} 1');
  });

  it('rejects negative and non-finite amounts instead of poisoning a series', async () => {
    const m = new Metrics();
    expect(() => m.recordsIn('p', -1, 0)).toThrow(RangeError);
    expect(() => m.recordsOut('p', 's', 1, Number.NaN)).toThrow(RangeError);
    expect(() => m.commitLatency(Number.POSITIVE_INFINITY)).toThrow(RangeError);
    expect(() => m.lag('g', 't', 0, -5)).toThrow(RangeError);
    m.recordsIn('p', 0, 0);
    expect(sample(await m.registry.metrics(), 'sluice_records_in_total{pipeline="p"}')).toBe(0);
  });
});
