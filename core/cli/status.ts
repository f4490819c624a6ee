/**
 * `sluice status [-c FILE] [--url URL] [--json] [--watch]`: a live view of a running `sluice run`
 * from its admin API: pipelines, sinks with records and lag, topics with their offsets.
 */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { parseDocument } from 'yaml';
import { DEFAULT_ADMIN_LISTEN } from '../admin/listen-address.js';
import { CliError, ConfigError } from './errors.js';
import { DEFAULT_CONFIG_FILE } from './open-log.js';
import { formatTable, print, printJson } from './output.js';

interface StatusOptions {
  config: string;
  url?: string;
  json?: boolean;
  watch?: boolean;
}

interface Status {
  started_at?: string;
  pipelines?: {
    name: string;
    state?: string;
    topic?: string;
    records_in?: number;
    source?: { type?: string; state?: string; last_error?: string } | null;
    sinks?: { name: string; type?: string; delivery?: string; state?: string; records_out?: number; offsets?: Record<string, number>; last_error?: string }[];
  }[];
  topics?: { name: string; partitions?: { partition: number; start_offset: number; end_offset: number }[] }[];
}

async function adminUrl(options: StatusOptions): Promise<string> {
  if (options.url !== undefined) return options.url.replace(/\/$/, '');
  let listen = DEFAULT_ADMIN_LISTEN;
  try {
    const doc = parseDocument(await readFile(options.config, 'utf8'));
    const v = doc.getIn(['admin', 'listen']);
    if (typeof v === 'string') listen = v;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new ConfigError(`cannot read ${options.config}: ${(err as Error).message}`);
  }
  return `http://${listen}`;
}

function render(s: Status): string {
  const endOf = new Map<string, number>();
  for (const t of s.topics ?? []) for (const p of t.partitions ?? []) endOf.set(`${t.name}/${p.partition}`, p.end_offset);
  const rows: string[][] = [];
  for (const p of s.pipelines ?? []) {
    rows.push([p.name, p.source?.type ?? '-', p.source?.state ?? p.state ?? '-', p.topic ?? '-', String(p.records_in ?? 0), '', '']);
    for (const k of p.sinks ?? []) {
      let lag = 0;
      for (const [tp, off] of Object.entries(k.offsets ?? {})) lag += Math.max(0, (endOf.get(tp) ?? off) - off);
      rows.push([`  └ ${k.name}`, k.type ?? '-', k.state ?? '-', k.delivery ?? '-', '', String(k.records_out ?? 0), String(lag)]);
    }
  }
  const topics = (s.topics ?? []).map((t) => [
    t.name,
    String(t.partitions?.length ?? 0),
    String((t.partitions ?? []).reduce((a, p) => a + (p.end_offset - p.start_offset), 0)),
  ]);
  return [
    `running since ${s.started_at ?? '?'}`,
    formatTable(['PIPELINE / SINK', 'TYPE', 'STATE', 'TOPIC / DELIVERY', 'IN', 'OUT', 'LAG'], rows),
    '',
    formatTable(['TOPIC', 'PARTITIONS', 'RECORDS'], topics),
  ].join('\n');
}

export function registerStatusCommand(program: Command): void {
  program
    .command('status')
    .description('live view of a running `sluice run`: pipelines, throughput and lag (from its admin API)')
    .option('-c, --config <file>', 'pipelines file whose admin.listen to use', DEFAULT_CONFIG_FILE)
    .option('--url <url>', 'admin URL, e.g. http://127.0.0.1:7070')
    .option('--json', 'print the raw status JSON')
    .option('--watch', 'refresh every 2 seconds until interrupted')
    .action(async (options: StatusOptions) => {
      const base = await adminUrl(options);
      for (;;) {
        let status: Status;
        try {
          const res = await fetch(`${base}/api/status`);
          if (!res.ok) throw new Error(`HTTP ${res.status}`);
          status = (await res.json()) as Status;
        } catch (err) {
          throw new CliError('SLUICE_BAD_INPUT', `no sluice answers at ${base} (${(err as Error).message}); is \`sluice run\` running?`);
        }
        if (options.json) printJson(status);
        else {
          if (options.watch) process.stdout.write('\x1b[2J\x1b[H');
          print(render(status));
        }
        if (!options.watch) return;
        await new Promise((r) => setTimeout(r, 2000));
      }
    });
}
