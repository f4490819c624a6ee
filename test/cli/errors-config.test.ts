/** Errors, exit statuses and how commands find the data directory, as real processes. */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { lines, sluice, useDataDir } from './run-sluice.js';

const fx = useDataDir();

describe('errors and the data directory', () => {
  it('prints one line without a stack, and the stack under --verbose', async () => {
    await fx.createTopic('t');
    const plain = await fx.run(['consume', 'missing']);
    expect(plain.code).toBe(1);
    expect(plain.stderr).toBe('sluice: unknown topic "missing"\n');

    const verbose = await fx.run(['consume', 'missing', '--verbose']);
    expect(verbose.code).toBe(1);
    expect(verbose.stderr).toContain('sluice: unknown topic "missing"\n');
    expect(verbose.stderr).toMatch(/UnknownTopicError: unknown topic "missing"\n\s+at /);
    expect(verbose.stderr).toContain('code: SLUICE_UNKNOWN_TOPIC');

    const before = await sluice(['--verbose', 'topics', 'describe', 'missing', '--data-dir', fx.dataDir]);
    expect(before.stderr).toMatch(/\n\s+at /);
  });

  it('exits 2 on usage errors, with one line', async () => {
    const usage = async (args: string[], message: string | RegExp) => {
      const r = await sluice(args);
      expect(r.code, args.join(' ')).toBe(2);
      if (typeof message === 'string') expect(r.stderr).toBe(`sluice: ${message}\n`);
      else expect(r.stderr).toMatch(message);
    };
    await usage(['topicz'], "unknown command 'topicz' (Did you mean topics?)");
    await usage(['produce'], "missing required argument 'topic'");
    await usage(['consume', 't', '--bogus'], "unknown option '--bogus'");
    await usage(['consume', 't', '--limit', '0'], "option '--limit <n>' argument '0' is invalid. must be at least 1");
    await usage(
      ['consume', 't', '--from', 'yesterday'],
      /^sluice: option '--from <position>' argument 'yesterday' is invalid\. expected earliest, latest, [^\n]+\n$/,
    );
    await usage(['produce', 't', '--acks', 'maybe'], /^sluice: option '--acks <level>' argument 'maybe' is invalid\. [^\n]+\n$/);
    await usage(['groups', 'reset', 'g', '--to', 'earliest'], "required option '--topic <topic>' not specified");
    expect((await sluice(['--help'])).code).toBe(0);
    expect((await sluice(['--version'])).stdout).toMatch(/^\d+\.\d+\.\d+\n$/);

    const conflict = await sluice(['topics', 'list', '-c', 'x.yaml', '--data-dir', 'y']);
    expect(conflict.code).toBe(2);
    expect(conflict.stderr).toBe("sluice: option '--data-dir <dir>' cannot be used with option '-c, --config <file>'\n");

    const badName = await fx.run(['topics', 'create', 'no spaces', '--partitions', '1']);
    expect(badName.code).toBe(2);
    expect(lines(badName.stderr)).toHaveLength(1);
  });

  it('does not create a missing data directory for commands that only read', async () => {
    const r = await fx.run(['topics', 'list']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^sluice: data directory .*data does not exist/);
  });

  it('takes log.data_dir from -c FILE, relative to the file, and ./pipelines.yaml by default', async () => {
    const confDir = join(fx.root, 'conf');
    await mkdir(confDir);
    await writeFile(join(confDir, 'p.yaml'), 'version: 1\nlog:\n  backend: local\n  data_dir: ./store\n');
    let r = await sluice(['topics', 'create', 'a', '--partitions', '1', '-c', join(confDir, 'p.yaml')], { cwd: fx.root });
    expect(r.code, r.stderr).toBe(0);
    r = await sluice(['topics', 'list', '--data-dir', join(confDir, 'store')]);
    expect(r.stdout).toBe('a\n');

    // Without -c or --data-dir: ./pipelines.yaml of the working directory (data_dir defaults to ./data).
    await writeFile(join(confDir, 'pipelines.yaml'), 'version: 1\n');
    r = await sluice(['topics', 'create', 'b', '--partitions', '1'], { cwd: confDir });
    expect(r.code, r.stderr).toBe(0);
    r = await sluice(['topics', 'list', '--data-dir', join(confDir, 'data')]);
    expect(r.stdout).toBe('b\n');

    await writeFile(join(confDir, 'env.yaml'), 'log:\n  data_dir: ${SLUICE_TEST_UNSET_DIR:-./store}\n');
    r = await sluice(['topics', 'list', '-c', join(confDir, 'env.yaml')]);
    expect(r.stdout).toBe('a\n');
  });

  it('explains config files it cannot use, with file:line:column', async () => {
    await writeFile(join(fx.root, 'js.yaml'), 'version: 1\nlog:\n  backend: jetstream\n  jetstream:\n    prefix: "a b"\n');
    let r = await sluice(['topics', 'list', '-c', 'js.yaml'], { cwd: fx.root });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('sluice: js.yaml:5:13: log.jetstream.prefix must be 1..32 of [A-Za-z0-9_-]\n');

    await writeFile(join(fx.root, 'broken.yaml'), 'log:\n  data_dir: [unclosed\n');
    r = await sluice(['topics', 'list', '-c', 'broken.yaml'], { cwd: fx.root });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^sluice: broken\.yaml:\d+:\d+: .+\n$/);

    r = await sluice(['topics', 'list', '-c', 'nope.yaml'], { cwd: fx.root });
    expect(r.stderr).toBe('sluice: config file nope.yaml: not found\n');

    await writeFile(join(fx.root, 'num.yaml'), 'log:\n  data_dir: 5\n');
    r = await sluice(['topics', 'list', '-c', 'num.yaml'], { cwd: fx.root });
    expect(r.stderr).toBe('sluice: num.yaml:2:13: log.data_dir must be a non-empty path\n');
  });
});
