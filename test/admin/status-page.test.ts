import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import vm from 'node:vm';
import { STATUS_PAGE_CSP, STATUS_PAGE_HTML } from '../../core/admin/status-page.js';

/**
 * Runs the page's inline script against a minimal fake DOM, so its rendering of odd or
 * hostile status documents is tested without a browser. Only what the script uses exists.
 */
class FakeNode {
  className = '';
  textContent = '';
  title = '';
  colSpan = 1;
  children: FakeNode[] = [];
  constructor(readonly tagName: string) {}
  appendChild(child: FakeNode): FakeNode {
    this.children.push(child);
    return child;
  }
  replaceChildren(...children: FakeNode[]): void {
    this.children = children;
  }
  /** The text of each cell of each row of a tbody. */
  rows(): string[][] {
    return this.children.map((tr) => tr.children.map((td) => td.textContent || td.children.map((c) => c.textContent).join('')));
  }
}

function script(): string {
  const match = /<script>([\s\S]*)<\/script>/.exec(STATUS_PAGE_HTML);
  if (match?.[1] === undefined) throw new Error('no inline script');
  return match[1];
}

interface Page {
  byId(id: string): FakeNode;
  /** Runs the poll the script scheduled next, with the clock at `now`, and lets it settle. */
  pollAgain(now: number): Promise<void>;
  respond(fn: () => Promise<FakeResponse>): void;
}
interface FakeResponse {
  ok: boolean;
  status: number;
  json(): Promise<unknown>;
}

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

async function load(initial: unknown): Promise<Page> {
  const nodes = new Map<string, FakeNode>();
  const timers: Array<{ fn: () => void; ms: number }> = [];
  let respond = async (): Promise<FakeResponse> => ({ ok: true, status: 200, json: async () => initial });
  const context = vm.createContext({
    document: {
      getElementById(id: string) {
        let node = nodes.get(id);
        if (node === undefined) nodes.set(id, (node = new FakeNode('div')));
        return node;
      },
      createElement: (tag: string) => new FakeNode(tag),
    },
    fetch: (url: string) => {
      expect(url).toBe('api/status');
      return respond();
    },
    setTimeout: (fn: () => void, ms: number) => timers.push({ fn, ms }),
    clearTimeout: () => undefined,
    AbortController,
    __now: 1_000_000,
  });
  vm.runInContext('Date.now = () => globalThis.__now;', context);
  vm.runInContext(script(), context);
  await settle();
  return {
    byId: (id) => nodes.get(id) ?? new FakeNode('missing'),
    async pollAgain(now) {
      const next = timers.filter((t) => t.ms === 2000).pop();
      if (next === undefined) throw new Error('no poll scheduled');
      timers.length = 0;
      context.__now = now;
      next.fn();
      await settle();
    },
    respond(fn) {
      respond = fn;
    },
  };
}

const STATUS = {
  pipelines: [
    {
      name: 'app-logs',
      state: 'running',
      source: { type: 'file', position: { 'a.log': 120 } },
      topic: 'app-logs',
      records_in: 1500,
      sinks: [
        { name: 'archive', type: 'file', delivery: 'idempotent', records_out: 1000, lag: 500 },
        { name: 'hook', type: 'webhook', delivery: 'at-least-once', records_out: 0, lag: null },
      ],
    },
    { name: 'replay', state: 'failed', topic: 'app-logs', records_in: 0, sinks: [], last_error: 'connection refused' },
  ],
  topics: [
    {
      name: 'app-logs',
      partitions: [
        { partition: 0, start_offset: 0, end_offset: 1000 },
        { partition: 1, start_offset: 200, end_offset: 500 },
      ],
    },
  ],
  started_at: '2024-01-01T00:00:00.000Z',
};

describe('status page', () => {
  it("allows exactly its own inline script and style by hash", () => {
    const hash = (text: string): string => createHash('sha256').update(text).digest('base64');
    const style = /<style>([\s\S]*)<\/style>/.exec(STATUS_PAGE_HTML)?.[1] ?? '';
    expect(STATUS_PAGE_CSP).toContain(`script-src 'sha256-${hash(script())}'`);
    expect(STATUS_PAGE_CSP).toContain(`style-src 'sha256-${hash(style)}'`);
  });

  it('renders pipelines, sinks with lag, and topics with offsets', async () => {
    const page = await load(STATUS);
    expect(page.byId('pipelines').rows()).toEqual([
      ['app-logs', 'running', 'file', '{"a.log":120}', 'app-logs', '1,500', '\u2014', ''],
      ['replay', 'failed', '(none)', '\u2014', 'app-logs', '0', '\u2014', 'connection refused'],
    ]);
    expect(page.byId('pipelines').children[1]?.children[1]?.className).toBe('state bad');
    expect(page.byId('sinks').rows()).toEqual([
      ['app-logs', 'archive', 'file', 'idempotent', '1,000', '\u2014', '500'],
      ['app-logs', 'hook', 'webhook', 'at-least-once', '0', '\u2014', 'unknown'],
    ]);
    expect(page.byId('topics').rows()).toEqual([
      ['app-logs', '0', '0', '1,000', '1,000'],
      ['', '1', '200', '500', '300'],
    ]);
    expect(page.byId('started').textContent).toContain('started 2024-01-01T00:00:00.000Z');
    expect(page.byId('banner').className).toBe('');
    expect(page.byId('raw').textContent).toBe(JSON.stringify(STATUS, null, 2));
  });

  it('computes throughput from one poll to the next', async () => {
    const page = await load(STATUS);
    const later = structuredClone(STATUS);
    later.pipelines[0]!.records_in = 1700;
    later.pipelines[0]!.sinks[0]!.records_out = 1100;
    page.respond(async () => ({ ok: true, status: 200, json: async () => later }));
    await page.pollAgain(1_002_000);
    expect(page.byId('pipelines').rows()[0]?.[6]).toBe('100');
    expect(page.byId('sinks').rows()[0]?.[5]).toBe('50.0');
  });

  it.each([
    ['null', null],
    ['an array', []],
    ['a string', 'hello'],
    ['wrong types everywhere', { pipelines: {}, topics: 'x', started_at: { y: 1 } }],
  ])('survives a status that is %s', async (_what, status) => {
    const page = await load(status);
    expect(page.byId('banner').className).toBe('');
    expect(page.byId('pipelines').rows()).toEqual([['No pipelines.']]);
    expect(page.byId('sinks').rows()).toEqual([['No sinks.']]);
    expect(page.byId('topics').rows()).toEqual([['No topics.']]);
  });

  it('renders broken entries and markup as plain text', async () => {
    const page = await load({
      pipelines: [
        null,
        7,
        { name: '<img src=x onerror=alert(1)>', state: { odd: true }, source: 'file', records_in: 'many', sinks: [null, { lag: -1 }] },
      ],
      topics: [{ name: 't', partitions: [null, { partition: 0, end_offset: 'x' }] }, { name: 'empty' }, 3],
      started_at: 'not a date',
      extra_field: { future: true },
    });
    expect(page.byId('banner').className).toBe('');
    const rows = page.byId('pipelines').rows();
    expect(rows).toHaveLength(3);
    expect(rows[2]?.[0]).toBe('<img src=x onerror=alert(1)>');
    expect(rows[2]?.[1]).toBe('{"odd":true}');
    expect(rows[2]?.[5]).toBe('many');
    expect(page.byId('sinks').rows()).toHaveLength(2);
    expect(page.byId('topics').rows()).toEqual([
      ['t', '\u2014', '\u2014', '\u2014', '\u2014'],
      ['', '0', '\u2014', 'x', '\u2014'],
      ['empty', 'no partitions', '', '', ''],
      ['\u2014', 'no partitions', '', '', ''],
    ]);
  });

  it('shows a banner when /api/status fails, and clears it when it recovers', async () => {
    const page = await load(STATUS);
    page.respond(async () => ({ ok: false, status: 500, json: async () => ({ error: 'log is closed' }) }));
    await page.pollAgain(1_002_000);
    expect(page.byId('banner').className).toBe('shown');
    expect(page.byId('banner').textContent).toContain('log is closed');
    // The last good data stays on screen.
    expect(page.byId('pipelines').rows()).toHaveLength(2);

    page.respond(() => Promise.reject(new TypeError('fetch failed')));
    await page.pollAgain(1_004_000);
    expect(page.byId('banner').textContent).toContain('fetch failed');

    page.respond(async () => ({ ok: true, status: 200, json: async () => STATUS }));
    await page.pollAgain(1_006_000);
    expect(page.byId('banner').className).toBe('');
  });
});
