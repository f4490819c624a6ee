import { afterEach, describe, expect, it } from 'vitest';
import net from 'node:net';
import { request } from 'node:http';
import { pino } from 'pino';
import { Metrics } from '../../core/admin/metrics.js';
import { startAdminServer } from '../../core/admin/server.js';
import type { AdminLogger, AdminServer, AdminServerOptions } from '../../core/admin/server.js';
import { AdminListenError, InvalidListenAddressError } from '../../core/admin/errors.js';
import type { AdminStatus } from '../../core/admin/status.js';

const servers: AdminServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function start(overrides: Partial<AdminServerOptions> = {}): Promise<AdminServer & { metrics: Metrics }> {
  const metrics = overrides.metrics ?? new Metrics();
  const server = await startAdminServer({
    listen: '127.0.0.1:0',
    metrics,
    status: () => SAMPLE_STATUS,
    ready: () => true,
    ...overrides,
  });
  servers.push(server);
  return { ...server, metrics };
}

const SAMPLE_STATUS: AdminStatus = {
  pipelines: [
    {
      name: 'app-logs',
      state: 'running',
      source: { type: 'file', position: { files: { abc: 120 } } },
      topic: 'app-logs',
      records_in: 15,
      sinks: [{ name: 'archive', type: 'file', delivery: 'idempotent', records_out: 12, lag: 3 }],
    },
  ],
  topics: [{ name: 'app-logs', partitions: [{ partition: 0, start_offset: 0, end_offset: 15 }] }],
  started_at: '2024-01-01T00:00:00.000Z',
};

/** A raw request, for methods and cases fetch would not send as is. */
function raw(url: string, method: string, path: string): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, { method, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(method === 'POST' ? '{"x":1}' : undefined);
  });
}

function listenError(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected the server not to start');
    },
    (error: unknown) => error,
  );
}

describe('admin server routes', () => {
  it('starts on a free port and reports its url', async () => {
    const s = await start();
    expect(s.port).toBeGreaterThan(0);
    expect(s.url).toBe(`http://127.0.0.1:${s.port}`);
  });

  it('GET /health → 200 {"status":"ok"}', async () => {
    const s = await start({ ready: () => false });
    const res = await fetch(`${s.url}/health`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  it('GET /ready follows ready() and treats a throwing ready() as not ready', async () => {
    let isReady = false;
    let fail = false;
    const s = await start({
      ready: () => {
        if (fail) throw new Error('log not open');
        return isReady;
      },
    });
    let res = await fetch(`${s.url}/ready`);
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ status: 'not_ready' });
    isReady = true;
    res = await fetch(`${s.url}/ready`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ready' });
    isReady = false;
    expect((await fetch(`${s.url}/ready`)).status).toBe(503);
    fail = true;
    res = await fetch(`${s.url}/ready`);
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ status: 'not_ready', error: 'log not open' });
  });

  it('GET /metrics → Prometheus text with the metrics recorded so far', async () => {
    const s = await start();
    s.metrics.recordsIn('app-logs', 10, 1_000);
    s.metrics.recordsOut('app-logs', 'archive', 9, 900);
    s.metrics.error('app-logs', 'source');
    s.metrics.invalid('app-logs', 'app-logs', 'drop', 1);
    s.metrics.restart('app-logs');
    s.metrics.lag('app-logs.archive', 'app-logs', 0, 1);
    s.metrics.commitLatency(0.001);
    s.metrics.sinkLatency('app-logs', 'archive', 0.01);
    const res = await fetch(`${s.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(s.metrics.registry.contentType);
    const text = await res.text();
    for (const line of [
      'sluice_records_in_total{pipeline="app-logs"} 10',
      'sluice_bytes_in_total{pipeline="app-logs"} 1000',
      'sluice_records_out_total{pipeline="app-logs",sink="archive"} 9',
      'sluice_bytes_out_total{pipeline="app-logs",sink="archive"} 900',
      'sluice_errors_total{pipeline="app-logs",stage="source"} 1',
      'sluice_invalid_records_total{pipeline="app-logs",topic="app-logs",action="drop"} 1',
      'sluice_pipeline_restarts_total{pipeline="app-logs"} 1',
      'sluice_consumer_lag_records{group="app-logs.archive",topic="app-logs",partition="0"} 1',
      'sluice_commit_latency_seconds_count 1',
      'sluice_sink_write_seconds_count{pipeline="app-logs",sink="archive"} 1',
      'process_cpu_user_seconds_total',
    ]) {
      expect(text).toContain(line);
    }
    s.metrics.recordsIn('app-logs', 5, 10);
    expect(await (await fetch(`${s.url}/metrics`)).text()).toContain('sluice_records_in_total{pipeline="app-logs"} 15');
  });

  it('GET /api/status → the JSON status() returns, sync or async', async () => {
    let s = await start();
    let res = await fetch(`${s.url}/api/status`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(await res.json()).toEqual(SAMPLE_STATUS);

    let calls = 0;
    s = await start({
      status: async () => {
        await new Promise((r) => setTimeout(r, 10));
        return { calls: ++calls };
      },
    });
    expect(await (await fetch(`${s.url}/api/status`)).json()).toEqual({ calls: 1 });
    expect(await (await fetch(`${s.url}/api/status?pretty=1`)).json()).toEqual({ calls: 2 });
  });

  it('status() throwing or rejecting → 500 with the message, logged once', async () => {
    const warnings: Array<{ obj: object; msg: string }> = [];
    const logger: AdminLogger = { warn: (obj, msg) => warnings.push({ obj, msg }) };
    let s = await start({
      logger,
      status: () => {
        throw new Error('log is closed');
      },
    });
    let res = await fetch(`${s.url}/api/status`);
    expect(res.status).toBe(500);
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(await res.json()).toEqual({ error: 'log is closed' });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.msg).toBe('admin: status() failed');

    s = await start({ status: () => Promise.reject(new Error('describe failed')) });
    res = await fetch(`${s.url}/api/status`);
    expect(res.status).toBe(500);
    expect(await res.json()).toEqual({ error: 'describe failed' });

    // The server survives and keeps serving.
    expect((await fetch(`${s.url}/health`)).status).toBe(200);
  });

  it('status() that cannot be serialised → 500; one that hangs → 503 after the timeout', async () => {
    let s = await start({ status: () => ({ big: 1n }) });
    let res = await fetch(`${s.url}/api/status`);
    expect(res.status).toBe(500);
    expect(((await res.json()) as { error: string }).error).toMatch(/^status is not JSON: /);

    s = await start({ status: () => undefined });
    res = await fetch(`${s.url}/api/status`);
    expect(res.status).toBe(500);

    s = await start({ status: () => new Promise(() => undefined), statusTimeoutMs: 50 });
    res = await fetch(`${s.url}/api/status`);
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ error: 'status did not answer within 50 ms' });
  });

  it('GET / → a self-contained HTML status page that polls /api/status', async () => {
    const s = await start();
    const res = await fetch(`${s.url}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("connect-src 'self'");
    const html = await res.text();
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).toContain("fetch('api/status'");
    expect(html).toContain('POLL_MS = 2000');
    // No external assets: no src= attributes, no stylesheet links, no absolute URLs.
    expect(html).not.toMatch(/\ssrc=/);
    expect(html).not.toMatch(/rel="stylesheet"/);
    expect(html).not.toMatch(/https?:\/\//);
  });

  it('unknown route → 404 JSON', async () => {
    const s = await start();
    for (const path of ['/nope', '/health/', '/api', '/api/status/x', '/index.html']) {
      const res = await fetch(`${s.url}${path}`);
      expect(res.status, path).toBe(404);
      expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
      expect(await res.json()).toEqual({ error: 'not found', path });
    }
  });

  it('non-GET on a route → 405 with Allow; HEAD is answered without a body', async () => {
    const s = await start();
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
      for (const path of ['/health', '/ready', '/metrics', '/api/status', '/']) {
        const res = await raw(s.url, method, path);
        expect(res.status, `${method} ${path}`).toBe(405);
        expect(res.headers['allow']).toBe('GET, HEAD');
        expect(JSON.parse(res.body)).toEqual({ error: `method ${method} not allowed`, allow: 'GET, HEAD' });
      }
    }
    const head = await raw(s.url, 'HEAD', '/health');
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
    expect(head.headers['content-length']).toBe(String('{"status":"ok"}'.length));
  });
});

describe('admin server lifecycle', () => {
  it('a port in use → AdminListenError naming the address', async () => {
    const first = await start();
    const error = await listenError(start({ listen: `127.0.0.1:${first.port}` }));
    expect(error).toBeInstanceOf(AdminListenError);
    expect(error).toMatchObject({
      name: 'AdminListenError',
      code: 'SLUICE_ADMIN_LISTEN',
      errno: 'EADDRINUSE',
      address: `127.0.0.1:${first.port}`,
      retriable: true,
    });
    expect((error as Error).message).toBe(
      `admin server cannot listen on 127.0.0.1:${first.port}: address already in use ` +
        '(another sluice or another program holds the port; choose another admin.listen)',
    );
    expect((error as Error).cause).toMatchObject({ code: 'EADDRINUSE' });
    // The first server is unaffected.
    expect((await fetch(`${first.url}/health`)).status).toBe(200);
  });

  it('a port held by another program → AdminListenError', async () => {
    const other = net.createServer();
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
    const port = (other.address() as net.AddressInfo).port;
    try {
      const error = await listenError(start({ listen: `127.0.0.1:${port}` }));
      expect(error).toMatchObject({ code: 'SLUICE_ADMIN_LISTEN', errno: 'EADDRINUSE' });
    } finally {
      await new Promise((r) => other.close(r));
    }
  });

  it('an address not on this machine → AdminListenError (not retriable)', async () => {
    // 192.0.2.0/24 is TEST-NET-1: documentation only, never assigned to an interface.
    const error = await listenError(start({ listen: '192.0.2.1:0' }));
    expect(error).toBeInstanceOf(AdminListenError);
    expect(error).toMatchObject({ code: 'SLUICE_ADMIN_LISTEN', errno: 'EADDRNOTAVAIL', retriable: false });
    expect((error as Error).message).toContain('192.0.2.1:0');
  });

  it('a malformed listen address → InvalidListenAddressError before binding', async () => {
    const error = await listenError(start({ listen: '7070' }));
    expect(error).toBeInstanceOf(InvalidListenAddressError);
    expect(error).toMatchObject({ code: 'SLUICE_ADMIN_INVALID_LISTEN' });
  });

  it('close() releases the port, even with a keep-alive connection open, and is idempotent', async () => {
    const metrics = new Metrics();
    const server = await startAdminServer({ listen: '127.0.0.1:0', metrics, status: () => ({}), ready: () => true });
    // fetch keeps its connection alive in a pool: close() must not wait for it.
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
    const began = Date.now();
    await Promise.all([server.close(), server.close()]);
    await server.close();
    expect(Date.now() - began).toBeLessThan(1_000);
    const again = await start({ listen: `127.0.0.1:${server.port}`, metrics });
    expect(again.port).toBe(server.port);
    expect((await fetch(`${again.url}/health`)).status).toBe(200);
  });

  it('close() lets a request in flight finish', async () => {
    let release: (() => void) | undefined;
    const server = await startAdminServer({
      listen: '127.0.0.1:0',
      metrics: new Metrics(),
      status: () => new Promise((r) => (release = () => r({ done: true }))),
      ready: () => true,
    });
    const pending = raw(server.url, 'GET', '/api/status');
    await expect.poll(() => release !== undefined).toBe(true);
    const closed = server.close();
    release?.();
    const res = await pending;
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ done: true });
    await closed;
  });

  it('close() cuts a request that outlives the grace period', async () => {
    const server = await startAdminServer({
      listen: '127.0.0.1:0',
      metrics: new Metrics(),
      status: () => new Promise(() => undefined),
      statusTimeoutMs: 60_000,
      ready: () => true,
    });
    const pending = raw(server.url, 'GET', '/api/status').then(
      () => 'answered',
      () => 'cut',
    );
    await new Promise((r) => setTimeout(r, 50));
    const began = Date.now();
    await server.close();
    expect(Date.now() - began).toBeLessThan(5_000);
    expect(await pending).toBe('cut');
  });

  it('listens on IPv6 loopback with a bracketed url', async (ctx) => {
    const probe = net.createServer();
    const hasV6 = await new Promise<boolean>((resolve) => {
      probe.once('error', () => resolve(false));
      probe.listen(0, '::1', () => probe.close(() => resolve(true)));
    });
    if (!hasV6) ctx.skip();
    const s = await start({ listen: '[::1]:0' });
    expect(s.url).toBe(`http://[::1]:${s.port}`);
    expect(await (await fetch(`${s.url}/health`)).json()).toEqual({ status: 'ok' });
  });

  it('0.0.0.0 binds every interface and reports a loopback url', async () => {
    const s = await start({ listen: '0.0.0.0:0' });
    expect(s.url).toBe(`http://127.0.0.1:${s.port}`);
    expect((await fetch(`${s.url}/health`)).status).toBe(200);
  });

  it('accepts a pino logger', async () => {
    const s = await start({ logger: pino({ level: 'silent' }), status: () => Promise.reject(new Error('x')) });
    expect((await fetch(`${s.url}/api/status`)).status).toBe(500);
  });
});
