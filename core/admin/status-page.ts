import { createHash } from 'node:crypto';

/**
 * The status page: one self-contained HTML document (no external assets, no build step) that
 * polls ./api/status every 2 s and renders it. Everything from the status JSON goes into the
 * DOM through textContent, never innerHTML, and every field is checked before use, so an
 * unexpected or hostile value can neither break the page nor inject markup. The inline
 * script and style are allowed by hash in a strict Content-Security-Policy.
 */

const STYLE = `
:root { color-scheme: light dark; --fg: #1d232a; --muted: #6a737d; --line: #d8dee4; --bg: #fff;
  --head: #f3f5f7; --ok: #1a7f37; --warn: #9a6700; --bad: #cf222e; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6edf3; --muted: #8d96a0; --line: #30363d;
  --bg: #0d1117; --head: #161b22; --ok: #3fb950; --warn: #d29922; --bad: #f85149; } }
* { box-sizing: border-box; }
body { margin: 0; padding: 1.25rem 1.5rem; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif;
  color: var(--fg); background: var(--bg); }
header { display: flex; flex-wrap: wrap; align-items: baseline; gap: .5rem 1.5rem; margin-bottom: 1rem; }
h1 { font-size: 1.3rem; margin: 0; }
h2 { font-size: 1.05rem; margin: 1.5rem 0 .5rem; }
.meta { color: var(--muted); }
#banner { display: none; padding: .5rem .75rem; border: 1px solid var(--bad); color: var(--bad);
  border-radius: 6px; margin-bottom: 1rem; }
#banner.shown { display: block; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: var(--head); font-weight: 600; white-space: nowrap; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
code { font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, monospace; word-break: break-all; }
.state { font-weight: 600; }
.ok { color: var(--ok); } .warn { color: var(--warn); } .bad { color: var(--bad); }
.empty { color: var(--muted); font-style: italic; }
details { margin-top: 1.5rem; } pre { overflow: auto; padding: .75rem; background: var(--head); border-radius: 6px; }
`;

const SCRIPT = `
'use strict';
const POLL_MS = 2000;
const TIMEOUT_MS = 5000;
let previous = null;

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}
function arr(v) { return Array.isArray(v) ? v : []; }
function obj(v) { return v !== null && typeof v === 'object' && !Array.isArray(v) ? v : {}; }
function isNum(v) { return typeof v === 'number' && isFinite(v); }
function str(v) {
  if (v === null || v === undefined || v === '') return '\\u2014';
  if (typeof v === 'object') { try { return JSON.stringify(v); } catch (e) { return '?'; } }
  return String(v);
}
function num(v) { return isNum(v) ? v.toLocaleString('en-US') : str(v); }
function rate(now, before, seconds) {
  if (!isNum(now) || !isNum(before) || !(seconds > 0) || now < before) return '\\u2014';
  const r = (now - before) / seconds;
  return r >= 100 ? Math.round(r).toLocaleString('en-US') : r.toFixed(1);
}
function stateClass(state) {
  const s = String(state).toLowerCase();
  if (s === 'running' || s === 'ok' || s === 'ready') return 'state ok';
  if (s === 'failed' || s === 'error' || s === 'crashed') return 'state bad';
  return 'state warn';
}
function cell(row, text, className) { row.appendChild(el('td', className, text)); return row; }
function codeCell(row, value) {
  const td = el('td');
  if (value === undefined || value === null) td.textContent = '\\u2014';
  else { const full = str(value); const c = el('code', '', full.length > 160 ? full.slice(0, 157) + '...' : full); c.title = full; td.appendChild(c); }
  row.appendChild(td);
}
function fill(tbodyId, rows, columns, emptyText) {
  const tbody = document.getElementById(tbodyId);
  if (rows.length === 0) {
    const tr = el('tr'); const td = el('td', 'empty', emptyText); td.colSpan = columns; tr.appendChild(td);
    tbody.replaceChildren(tr);
  } else tbody.replaceChildren.apply(tbody, rows);
}
function uptime(startedAt) {
  const t = typeof startedAt === 'number' ? startedAt : Date.parse(String(startedAt));
  if (!isFinite(t)) return '';
  let s = Math.max(0, Math.floor((Date.now() - t) / 1000));
  const d = Math.floor(s / 86400); s -= d * 86400;
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  return 'up ' + (d ? d + 'd ' : '') + (d || h ? h + 'h ' : '') + m + 'm ' + s + 's';
}

function render(status) {
  const at = Date.now();
  const root = obj(status);
  const seconds = previous ? (at - previous.at) / 1000 : 0;
  const next = { at: at, inputs: {}, outputs: {} };
  const pipelineRows = [];
  const sinkRows = [];
  for (const raw of arr(root.pipelines)) {
    const p = obj(raw);
    const name = str(p.name);
    const source = p.source === undefined || p.source === null ? null : obj(p.source);
    next.inputs[name] = p.records_in;
    const tr = el('tr');
    cell(tr, name);
    cell(tr, str(p.state), stateClass(p.state));
    cell(tr, source ? str(source.type) : '(none)', source ? '' : 'empty');
    codeCell(tr, source ? source.position : undefined);
    cell(tr, str(p.topic));
    cell(tr, num(p.records_in), 'n');
    cell(tr, previous ? rate(p.records_in, previous.inputs[name], seconds) : '\\u2014', 'n');
    cell(tr, p.last_error === undefined || p.last_error === null ? '' : str(p.last_error), 'bad');
    pipelineRows.push(tr);
    for (const rawSink of arr(p.sinks)) {
      const s = obj(rawSink);
      const key = name + '\\u0000' + str(s.name);
      next.outputs[key] = s.records_out;
      const sr = el('tr');
      cell(sr, name);
      cell(sr, str(s.name));
      cell(sr, str(s.type));
      cell(sr, str(s.delivery));
      cell(sr, num(s.records_out), 'n');
      cell(sr, previous ? rate(s.records_out, previous.outputs[key], seconds) : '\\u2014', 'n');
      cell(sr, s.lag === null || s.lag === undefined ? 'unknown' : num(s.lag), isNum(s.lag) && s.lag > 0 ? 'n warn' : 'n');
      sinkRows.push(sr);
    }
  }
  const topicRows = [];
  for (const rawTopic of arr(root.topics)) {
    const t = obj(rawTopic);
    const partitions = arr(t.partitions);
    if (partitions.length === 0) {
      const tr = el('tr'); cell(tr, str(t.name)); cell(tr, 'no partitions', 'empty'); cell(tr, ''); cell(tr, ''); cell(tr, '');
      topicRows.push(tr);
    }
    partitions.forEach(function (rawPartition, i) {
      const q = obj(rawPartition);
      const tr = el('tr');
      cell(tr, i === 0 ? str(t.name) : '');
      cell(tr, str(q.partition), 'n');
      cell(tr, num(q.start_offset), 'n');
      cell(tr, num(q.end_offset), 'n');
      cell(tr, isNum(q.start_offset) && isNum(q.end_offset) ? num(q.end_offset - q.start_offset) : '\\u2014', 'n');
      topicRows.push(tr);
    });
  }
  fill('pipelines', pipelineRows, 8, 'No pipelines.');
  fill('sinks', sinkRows, 7, 'No sinks.');
  fill('topics', topicRows, 5, 'No topics.');
  document.getElementById('started').textContent =
    root.started_at === undefined ? '' : 'started ' + str(root.started_at) + ' \\u00b7 ' + uptime(root.started_at);
  document.getElementById('updated').textContent = 'updated ' + new Date(at).toLocaleTimeString();
  let raw;
  try { raw = JSON.stringify(status, null, 2); } catch (e) { raw = String(status); }
  document.getElementById('raw').textContent = raw;
  previous = next;
}

function banner(message) {
  const b = document.getElementById('banner');
  b.textContent = message || '';
  b.className = message ? 'shown' : '';
}

async function poll() {
  const controller = new AbortController();
  const timer = setTimeout(function () { controller.abort(); }, TIMEOUT_MS);
  try {
    const res = await fetch('api/status', { cache: 'no-store', signal: controller.signal, headers: { accept: 'application/json' } });
    const body = await res.json().catch(function () { return null; });
    if (!res.ok) throw new Error(body && typeof body.error === 'string' ? body.error : 'HTTP ' + res.status);
    render(body);
    banner('');
  } catch (e) {
    const message = e && e.name === 'AbortError' ? 'no answer within ' + TIMEOUT_MS / 1000 + ' s' : (e && e.message) || String(e);
    banner('Cannot load /api/status: ' + message + ' (retrying every ' + POLL_MS / 1000 + ' s)');
  } finally {
    clearTimeout(timer);
    setTimeout(poll, POLL_MS);
  }
}
poll();
`;

function sha256(text: string): string {
  return `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
}

export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sluice status</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body>
<header><h1>Sluice</h1><span class="meta" id="started"></span><span class="meta" id="updated">loading\u2026</span></header>
<div id="banner" role="alert"></div>
<h2>Pipelines</h2>
<table>
<thead><tr><th>Pipeline</th><th>State</th><th>Source</th><th>Position</th><th>Topic</th><th class="n">Records in</th><th class="n">In/s</th><th>Last error</th></tr></thead>
<tbody id="pipelines"></tbody>
</table>
<h2>Sinks</h2>
<table>
<thead><tr><th>Pipeline</th><th>Sink</th><th>Type</th><th>Delivery</th><th class="n">Records out</th><th class="n">Out/s</th><th class="n">Lag</th></tr></thead>
<tbody id="sinks"></tbody>
</table>
<h2>Topics</h2>
<table>
<thead><tr><th>Topic</th><th class="n">Partition</th><th class="n">Start offset</th><th class="n">End offset</th><th class="n">Records</th></tr></thead>
<tbody id="topics"></tbody>
</table>
<details><summary>Raw status JSON</summary><pre id="raw"></pre></details>
<script>${SCRIPT}</script>
</body>
</html>
`;

/** Allows exactly the page's own inline script and style, and fetches to this origin only. */
export const STATUS_PAGE_CSP = [
  "default-src 'none'",
  `script-src ${sha256(SCRIPT)}`,
  `style-src ${sha256(STYLE)}`,
  "connect-src 'self'",
  'img-src data:',
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');
