import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AdminListenError } from './errors.js';
import { formatListenAddress, parseListenAddress } from './listen-address.js';
import type { Metrics } from './metrics.js';
import { STATUS_PAGE_CSP, STATUS_PAGE_HTML } from './status-page.js';

export type { AdminStatus } from './status.js';

/** The subset of a pino logger the server uses, so any pino `Logger` fits. */
export interface AdminLogger {
  warn(obj: object, msg: string): void;
}

export interface AdminServerOptions {
  /** `host:port` or `[ipv6]:port`; port 0 picks a free port (see the returned `port`). */
  listen: string;
  metrics: Metrics;
  /** The JSON document for `GET /api/status` (see {@link AdminStatus}). May be async. */
  status: () => Promise<unknown> | unknown;
  /** Whether `GET /ready` answers 200 (true) or 503 (false, or if it throws). */
  ready: () => boolean;
  /** A `status()` slower than this answers 503; default 5 000 ms. */
  statusTimeoutMs?: number;
  /** Where failures of `status()` and of the server itself are reported; the client gets them too. */
  logger?: AdminLogger;
}

export interface AdminServer {
  /** Base URL without a trailing slash, e.g. `http://127.0.0.1:7070`; an unspecified bind address is shown as loopback. */
  url: string;
  /** The bound port (the kernel's choice when `listen` said port 0). */
  port: number;
  /** Stops accepting, lets requests in flight finish (at most ~2 s), frees the port. Idempotent. */
  close(): Promise<void>;
}

const DEFAULT_STATUS_TIMEOUT_MS = 5_000;
/** How long close() lets requests in flight finish before cutting their connections. */
const CLOSE_GRACE_MS = 2_000;
const ALLOW = 'GET, HEAD';

type Handler = (res: ServerResponse) => Promise<void> | void;

/**
 * Starts the admin HTTP server (node:http only):
 *
 * - `GET /health`      200 `{"status":"ok"}` while the process serves requests at all
 * - `GET /ready`       200 `{"status":"ready"}` or 503 `{"status":"not_ready"}` per `ready()`
 * - `GET /metrics`     Prometheus text from `metrics.registry`
 * - `GET /api/status`  `status()` as JSON; 500 `{"error"}` if it throws, 503 if it times out
 * - `GET /`            the self-contained status page
 *
 * HEAD is answered like GET without a body (HTTP requires both); another method on a known path
 * is 405 with `Allow`; an unknown path is 404. Every error body is JSON `{"error": ...}`.
 * Rejects with {@link AdminListenError} when the address cannot be bound and with
 * InvalidListenAddressError when `listen` is malformed.
 */
export async function startAdminServer(opts: AdminServerOptions): Promise<AdminServer> {
  const { host, port } = parseListenAddress(opts.listen);
  const statusTimeoutMs = opts.statusTimeoutMs ?? DEFAULT_STATUS_TIMEOUT_MS;
  const logger = opts.logger;

  const routes = new Map<string, Handler>([
    ['/health', (res) => sendJson(res, 200, { status: 'ok' })],
    ['/ready', (res) => ready(res, opts.ready)],
    ['/metrics', (res) => metrics(res, opts.metrics, logger)],
    ['/api/status', (res) => status(res, opts.status, statusTimeoutMs, logger)],
    ['/', (res) => page(res)],
  ]);

  const server = createServer(
    // Bounded so a stuck or slow client cannot hold a connection of the admin port for long.
    { requestTimeout: 30_000, headersTimeout: 10_000, keepAliveTimeout: 5_000 },
    (req, res) => {
      handle(req, res, routes).catch((error: unknown) => {
        logger?.warn({ err: error, method: req.method, url: req.url }, 'admin: request failed');
        if (!res.headersSent) sendJson(res, 500, { error: messageOf(error) });
        else res.destroy();
      });
    },
  );

  await listen(server, host, port);
  server.on('error', (error) => logger?.warn({ err: error }, 'admin: server error'));

  const bound = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${formatListenAddress(reachableHost(bound.address), bound.port)}`,
    port: bound.port,
    close() {
      closing ??= new Promise<void>((resolve, reject) => {
        const force = setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS);
        server.close((error) => {
          clearTimeout(force);
          if (error) reject(error);
          else resolve();
        });
        server.closeIdleConnections();
      });
      return closing;
    },
  };
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error): void => {
      server.off('listening', onListening);
      reject(new AdminListenError(formatListenAddress(host, port), error));
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    // exclusive: never share the port with cluster workers; a second sluice must fail loudly.
    server.listen({ host, port, exclusive: true });
  });
}

async function handle(req: IncomingMessage, res: ServerResponse, routes: ReadonlyMap<string, Handler>): Promise<void> {
  const path = pathOf(req.url);
  const route = path === undefined ? undefined : routes.get(path);
  if (route === undefined) {
    sendJson(res, 404, { error: 'not found', path: path ?? req.url ?? '' });
    return;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('allow', ALLOW);
    sendJson(res, 405, { error: `method ${req.method ?? ''} not allowed`, allow: ALLOW });
    return;
  }
  await route(res);
}

function ready(res: ServerResponse, isReady: () => boolean): void {
  let ok: boolean;
  try {
    ok = isReady() === true;
  } catch (error) {
    sendJson(res, 503, { status: 'not_ready', error: messageOf(error) });
    return;
  }
  if (ok) sendJson(res, 200, { status: 'ready' });
  else sendJson(res, 503, { status: 'not_ready' });
}

async function metrics(res: ServerResponse, source: Metrics, logger: AdminLogger | undefined): Promise<void> {
  let text: string;
  try {
    text = await source.registry.metrics();
  } catch (error) {
    logger?.warn({ err: error }, 'admin: collecting metrics failed');
    sendJson(res, 500, { error: `collecting metrics failed: ${messageOf(error)}` });
    return;
  }
  send(res, 200, source.registry.contentType, text);
}

const TIMED_OUT = Symbol('timed out');

async function status(
  res: ServerResponse,
  produce: () => unknown,
  timeoutMs: number,
  logger: AdminLogger | undefined,
): Promise<void> {
  let value: unknown;
  let timer: NodeJS.Timeout | undefined;
  try {
    const attempt = Promise.resolve().then(produce);
    // The abandoned attempt may still reject after a timeout; that must not go unhandled.
    attempt.catch(() => undefined);
    const deadline = new Promise<typeof TIMED_OUT>((resolve) => {
      timer = setTimeout(() => resolve(TIMED_OUT), timeoutMs);
    });
    value = await Promise.race([attempt, deadline]);
  } catch (error) {
    logger?.warn({ err: error }, 'admin: status() failed');
    sendJson(res, 500, { error: messageOf(error) });
    return;
  } finally {
    clearTimeout(timer);
  }
  if (value === TIMED_OUT) {
    logger?.warn({ timeout_ms: timeoutMs }, 'admin: status() timed out');
    sendJson(res, 503, { error: `status did not answer within ${timeoutMs} ms` });
    return;
  }
  let body: string | undefined;
  try {
    body = JSON.stringify(value);
  } catch (error) {
    sendJson(res, 500, { error: `status is not JSON: ${messageOf(error)}` });
    return;
  }
  if (body === undefined) {
    sendJson(res, 500, { error: 'status is not JSON: status() returned no value' });
    return;
  }
  send(res, 200, 'application/json; charset=utf-8', body);
}

function page(res: ServerResponse): void {
  res.setHeader('content-security-policy', STATUS_PAGE_CSP);
  res.setHeader('referrer-policy', 'no-referrer');
  send(res, 200, 'text/html; charset=utf-8', STATUS_PAGE_HTML);
}

function sendJson(res: ServerResponse, code: number, value: unknown): void {
  send(res, code, 'application/json; charset=utf-8', JSON.stringify(value));
}

function send(res: ServerResponse, code: number, contentType: string, body: string): void {
  res.statusCode = code;
  res.setHeader('content-type', contentType);
  res.setHeader('content-length', Buffer.byteLength(body));
  // Live data: a cached answer would show a healthy process after it died.
  res.setHeader('cache-control', 'no-store');
  res.setHeader('x-content-type-options', 'nosniff');
  res.end(body);
}

function pathOf(url: string | undefined): string | undefined {
  try {
    return new URL(url ?? '/', 'http://admin.invalid').pathname;
  } catch {
    return undefined;
  }
}

/** 0.0.0.0 / :: are bind addresses, not places to connect to; show loopback instead. */
function reachableHost(address: string): string {
  if (address === '0.0.0.0') return '127.0.0.1';
  if (address === '::') return '::1';
  return address;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
