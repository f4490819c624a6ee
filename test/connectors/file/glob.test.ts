import { describe, expect, it } from 'vitest';
import { compileGlob, PathFilter, COMPRESSED } from '../../../connectors/file/glob.js';

describe('compileGlob', () => {
  it('finds the base directory and the depth', () => {
    expect(compileGlob('/var/log/*.log', '/x')).toMatchObject({ base: '/var/log', depth: 1 });
    expect(compileGlob('logs/app-*/out.log', '/srv')).toMatchObject({ base: '/srv/logs', depth: 2, pattern: '/srv/logs/app-*/out.log' });
    expect(compileGlob('/var/log/**/*.log', '/')).toMatchObject({ base: '/var/log', depth: Infinity });
    expect(compileGlob('/var/log/syslog', '/')).toMatchObject({ base: '/var/log', depth: 1 });
  });

  it.each([
    ['/l/*.log', '/l/a.log', true],
    ['/l/*.log', '/l/sub/a.log', false],
    ['/l/*.log', '/l/a.log.1', false],
    ['/l/a.log*', '/l/a.log.1', true],
    ['/l/?.log', '/l/ab.log', false],
    ['/l/[ab].log', '/l/b.log', true],
    ['/l/[!ab].log', '/l/b.log', false],
    ['/l/[!ab].log', '/l/c.log', true],
    ['/l/*.{log,txt}', '/l/x.txt', true],
    ['/l/*.{log,txt}', '/l/x.csv', false],
    ['/l/**/*.log', '/l/x.log', true],
    ['/l/**/*.log', '/l/a/b/x.log', true],
    ['/l/**', '/l/a/b/x.log', true],
    ['/l/a.b', '/l/axb', false],
    ['/l/a\\*b', '/l/a*b', true],
    ['/l/a\\*b', '/l/axb', false],
  ])('%s matches %s: %s', (glob, path, expected) => {
    expect(compileGlob(glob, '/').regex.test(path)).toBe(expected);
  });

  it('rejects an unclosed brace', () => {
    expect(() => compileGlob('/l/{a,b', '/')).toThrow(/unclosed/);
  });
});

describe('PathFilter', () => {
  it('matches names without a slash against the file name, others against the path', () => {
    const f = new PathFilter(['*.gz', 'old/*.log'], '/srv');
    expect(f.matches('/var/log/app.log.1.gz')).toBe(true);
    expect(f.matches('/var/log/app.log.1')).toBe(false);
    expect(f.matches('/srv/old/a.log')).toBe(true);
    expect(f.matches('/srv/new/a.log')).toBe(false);
  });

  it('knows compressed names', () => {
    const f = new PathFilter(COMPRESSED, '/');
    for (const n of ['a.gz', 'a.bz2', 'a.xz', 'a.zst', 'a.zip']) expect(f.matches(`/l/${n}`)).toBe(true);
    expect(f.matches('/l/a.log')).toBe(false);
  });
});
