import { describe, expect, it } from 'vitest';
import { compileTemplate, isConstantTemplate, TemplateError, templateFields } from '../../core/pipeline/template.js';
import type { PipelineEvent } from '../../core/pipeline/transforms/index.js';

const ev = (value: unknown, extra: Partial<PipelineEvent> = {}): PipelineEvent => ({
  value,
  key: 'k1',
  headers: {},
  timestamp: Date.UTC(2024, 0, 2, 3, 4, 5, 678),
  topic: 'app-logs',
  ...extra,
});

describe('compileTemplate', () => {
  it('renders literal text as is', () => {
    expect(compileTemplate('plain')(ev({}))).toBe('plain');
    expect(compileTemplate('')(ev({}))).toBe('');
    expect(compileTemplate('a } b { c }}')(ev({}))).toBe('a } b { c }}');
  });

  it('renders fields with and without spaces inside the braces', () => {
    const v = { host: 'web-1', source: { table: 'orders' } };
    expect(compileTemplate('{{ host }}')(ev(v))).toBe('web-1');
    expect(compileTemplate('{{host}}')(ev(v))).toBe('web-1');
    expect(compileTemplate('cdc.{{ source.table }}')(ev(v))).toBe('cdc.orders');
    expect(compileTemplate('{{ host }}/{{ source.table }}!')(ev(v))).toBe('web-1/orders!');
    expect(compileTemplate('{{ source.table }}.x')(ev(v))).toBe('orders.x');
  });

  it('indexes arrays', () => {
    const v = { items: [{ id: 7 }, { id: 8 }] };
    expect(compileTemplate('{{ items.1.id }}')(ev(v))).toBe('8');
    expect(compileTemplate('{{ items.5.id }}')(ev(v))).toBe('');
    expect(compileTemplate('{{ 0 }}')(ev(['first']))).toBe('first');
  });

  it('renders missing and null as "", scalars with String, objects as JSON', () => {
    const v = { n: 1.5, t: true, z: null, o: { a: [1, 'x'] }, s: '' };
    const t = (x: string): string => compileTemplate(x)(ev(v));
    expect(t('[{{ missing }}]')).toBe('[]');
    expect(t('[{{ missing.deeper }}]')).toBe('[]');
    expect(t('{{ n }}')).toBe('1.5');
    expect(t('{{ t }}')).toBe('true');
    expect(t('[{{ z }}]')).toBe('[]');
    expect(t('{{ o }}')).toBe('{"a":[1,"x"]}');
    expect(t('[{{ s }}]')).toBe('[]');
  });

  it('reads nothing from values that are not objects', () => {
    expect(compileTemplate('[{{ host }}]')(ev('a raw line'))).toBe('[]');
    expect(compileTemplate('[{{ a.b }}]')(ev(42))).toBe('[]');
    expect(compileTemplate('[{{ host }}]')(ev(null))).toBe('[]');
  });

  it('has the event variables _key, _topic and _timestamp', () => {
    const t = (x: string, e: PipelineEvent): string => compileTemplate(x)(e);
    expect(t('{{ _key }}', ev({}))).toBe('k1');
    expect(t('[{{ _key }}]', ev({}, { key: null }))).toBe('[]');
    expect(t('{{ _topic }}.dlq', ev({}))).toBe('app-logs.dlq');
    expect(t('{{ _timestamp }}', ev({}))).toBe('2024-01-02T03:04:05.678Z');
    expect(t('[{{ _timestamp }}]', ev({}, { timestamp: Number.NaN }))).toBe('[]');
    // The variables win over fields of the same name.
    expect(t('{{ _key }}', ev({ _key: 'field' }))).toBe('k1');
  });

  it('never reads inherited properties', () => {
    expect(compileTemplate('[{{ constructor }}]')(ev({}))).toBe('[]');
    expect(compileTemplate('[{{ __proto__ }}]')(ev({}))).toBe('[]');
    expect(compileTemplate('[{{ a.toString }}]')(ev({ a: {} }))).toBe('[]');
    expect(compileTemplate('[{{ items.length }}]')(ev({ items: [1] }))).toBe('[]');
  });

  it('reads keys with escaped dots', () => {
    const v = { labels: { 'app.kubernetes.io/name': 'api' } };
    expect(compileTemplate('{{ labels.app\\.kubernetes\\.io/name }}')(ev(v))).toBe('api');
  });

  it('rejects malformed templates with TemplateError', () => {
    for (const bad of ['{{ host', 'a {{ }} b', '{{ a..b }}', '{{ a b }}', '{{ .a }}', '{{ a {{ b }}']) {
      expect(() => compileTemplate(bad), bad).toThrow(TemplateError);
    }
    try {
      compileTemplate('logs.{{ level');
    } catch (err) {
      expect(err).toBeInstanceOf(TemplateError);
      expect((err as TemplateError).code).toBe('SLUICE_BAD_TEMPLATE');
      expect((err as TemplateError).column).toBe(6);
    }
  });
});

describe('templateFields', () => {
  it('lists the value paths in order, once, without the event variables', () => {
    expect(templateFields('cdc.{{ source.table }}')).toEqual(['source.table']);
    expect(templateFields('{{ a }}-{{ b.c }}-{{a}}-{{ _key }}-{{ _topic }}-{{ _timestamp }}')).toEqual(['a', 'b.c']);
    expect(templateFields('literal')).toEqual([]);
  });

  it('throws like compileTemplate', () => {
    expect(() => templateFields('{{ a')).toThrow(TemplateError);
    expect(() => templateFields('{{ a..b }}')).toThrow(TemplateError);
  });

  it('isConstantTemplate tells literal text apart', () => {
    expect(isConstantTemplate('abc')).toBe(true);
    expect(isConstantTemplate('a{{b}}')).toBe(false);
  });
});
