import { isIPv6 } from 'node:net';
import { InvalidListenAddressError } from './errors.js';

/**
 * 7070 is not in this machine's /etc/services (checked when it was chosen), and it is what
 * pipelines.yaml shows. Loopback by default: the admin API is unauthenticated.
 */
export const DEFAULT_ADMIN_PORT = 7070;
export const DEFAULT_ADMIN_LISTEN = `127.0.0.1:${DEFAULT_ADMIN_PORT}`;

export interface ListenAddress {
  /** Host name or IP literal as given, without brackets ("127.0.0.1", "::1", "localhost"). */
  host: string;
  /** 0 asks the kernel for a free port. */
  port: number;
}

/**
 * Parses `host:port` or `[ipv6]:port`. The host is required: an empty one would mean "every
 * interface", and exposing the admin API that widely must be spelled out (`0.0.0.0:7070`).
 * Pure, so the config loader can report a bad address at load time with the rest.
 */
export function parseListenAddress(listen: string): ListenAddress {
  let host: string;
  let portText: string;
  if (listen.startsWith('[')) {
    const close = listen.indexOf(']');
    if (close < 0) throw new InvalidListenAddressError(listen, 'missing "]" after the IPv6 address');
    host = listen.slice(1, close);
    if (!isIPv6(host)) throw new InvalidListenAddressError(listen, `"${host}" is not an IPv6 address`);
    if (listen[close + 1] !== ':') {
      throw new InvalidListenAddressError(listen, 'expected ":port" after "]"');
    }
    portText = listen.slice(close + 2);
  } else {
    const colon = listen.lastIndexOf(':');
    if (colon < 0) {
      throw new InvalidListenAddressError(listen, 'expected host:port, e.g. 127.0.0.1:7070');
    }
    host = listen.slice(0, colon);
    portText = listen.slice(colon + 1);
    if (host.includes(':')) {
      throw new InvalidListenAddressError(listen, 'an IPv6 address must be in brackets, e.g. [::1]:7070');
    }
    if (host === '') {
      throw new InvalidListenAddressError(
        listen,
        'the host is missing; use 127.0.0.1:PORT for this machine only or 0.0.0.0:PORT for every interface',
      );
    }
  }
  if (!/^[0-9]{1,5}$/.test(portText) || Number(portText) > 65_535) {
    throw new InvalidListenAddressError(listen, `port "${portText}" is not a number from 0 to 65535`);
  }
  return { host, port: Number(portText) };
}

/** `host:port`, bracketing IPv6 literals, as used in URLs and messages. */
export function formatListenAddress(host: string, port: number): string {
  return isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}
