import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import {
  DEFAULT_ADMIN_LISTEN,
  DEFAULT_ADMIN_PORT,
  formatListenAddress,
  parseListenAddress,
} from '../../core/admin/listen-address.js';
import { InvalidListenAddressError } from '../../core/admin/errors.js';

describe('parseListenAddress', () => {
  it.each([
    ['127.0.0.1:7070', '127.0.0.1', 7070],
    ['0.0.0.0:0', '0.0.0.0', 0],
    ['localhost:65535', 'localhost', 65_535],
    ['[::1]:7070', '::1', 7070],
    ['[::]:9000', '::', 9000],
  ])('%s', (listen, host, port) => {
    expect(parseListenAddress(listen)).toEqual({ host, port });
  });

  it.each([
    ['7070', 'host:port'],
    [':7070', 'host is missing'],
    ['::1:7070', 'brackets'],
    ['[::1]7070', 'after "]"'],
    ['[::1:7070', 'missing "]"'],
    ['[nope]:7070', 'not an IPv6'],
    ['127.0.0.1:', 'port ""'],
    ['127.0.0.1:65536', 'port "65536"'],
    ['127.0.0.1:-1', 'port "-1"'],
    ['127.0.0.1:80x', 'port "80x"'],
  ])('rejects %s', (listen, reason) => {
    let error: unknown;
    try {
      parseListenAddress(listen);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InvalidListenAddressError);
    expect(error).toMatchObject({ code: 'SLUICE_ADMIN_INVALID_LISTEN', listen, retriable: false });
    expect((error as Error).message).toContain(reason);
  });

  it('formats IPv6 in brackets', () => {
    expect(formatListenAddress('::1', 80)).toBe('[::1]:80');
    expect(formatListenAddress('127.0.0.1', 80)).toBe('127.0.0.1:80');
  });
});

describe('default admin address', () => {
  it('is loopback on a port /etc/services does not assign', () => {
    expect(DEFAULT_ADMIN_LISTEN).toBe(`127.0.0.1:${DEFAULT_ADMIN_PORT}`);
    let services = '';
    try {
      services = readFileSync('/etc/services', 'utf8');
    } catch {
      return; // no services database on this machine: nothing to collide with
    }
    const taken = new RegExp(`^[^#\\s]+\\s+${DEFAULT_ADMIN_PORT}/(tcp|udp)\\b`, 'm');
    expect(services).not.toMatch(taken);
  });
});
