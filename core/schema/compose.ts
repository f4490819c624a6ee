/**
 * Composes the JSON Schema of pipelines.yaml from the connectors' own config schemas, so each
 * connector's schema is written once. schemas/pipelines.schema.json is this function's output
 * (`npm run schema` rewrites it; a test checks it is current).
 */
import type { SinkDeclaration, SourceDeclaration, TransformDeclaration } from '../../connectors/sdk.js';

type Schema = Record<string, unknown>;

const SIZE = { description: 'bytes, or a size like 512MiB / 10GiB', oneOf: [{ type: 'integer', minimum: 1 }, { type: 'string', pattern: '^\\s*\\d+(\\.\\d+)?\\s*[a-zA-Z]*\\s*$' }] };
const DURATION = { description: 'milliseconds, or a duration like 30s / 12h / 7d', oneOf: [{ type: 'integer', minimum: 1 }, { type: 'string', pattern: '^\\s*(\\d+(\\.\\d+)?(ms|s|m|h|d|w))+\\s*$' }] };

/** A connector's schema with its `type` key added, selected by `if type == X`. */
function variants(decls: readonly { type: string; schema: unknown; summary: string }[]): Schema {
  return {
    type: 'object',
    required: ['type'],
    properties: {
      type: { enum: decls.map((d) => d.type), description: decls.map((d) => `${d.type}: ${d.summary}`).join('; ') },
    },
    allOf: decls.map((d) => {
      const s = d.schema as Schema;
      return {
        if: { properties: { type: { const: d.type } }, required: ['type'] },
        then: { ...s, properties: { type: { const: d.type }, ...(s.properties as Schema) } },
      };
    }),
  };
}

export function composePipelinesSchema(
  sources: readonly SourceDeclaration<never>[],
  sinks: readonly SinkDeclaration<never>[],
  transformSchema: Schema,
  customTransforms: readonly TransformDeclaration<never>[] = [],
): Schema {
  // Custom transform types take their own schema; everything else is a built-in transform.
  const transformItem =
    customTransforms.length === 0
      ? transformSchema
      : {
          if: { properties: { type: { enum: customTransforms.map((t) => t.type) } }, required: ['type'] },
          then: variants(customTransforms),
          else: transformSchema,
        };
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    $id: 'https://sluice.dev/schemas/pipelines.schema.json',
    title: 'Sluice pipelines file',
    type: 'object',
    additionalProperties: false,
    required: ['version', 'pipelines'],
    properties: {
      version: { const: 1 },
      plugins: {
        type: 'array',
        items: { type: 'string', minLength: 1 },
        description: 'JavaScript modules (paths relative to this file) exporting `sources`, `sinks` and/or `transforms` declarations',
      },
      log: {
        type: 'object',
        additionalProperties: false,
        properties: {
          backend: {
            enum: ['local', 'jetstream'],
            default: 'local',
            description: 'local: the embedded log in data_dir; jetstream: NATS JetStream (log.jetstream), for several workers and replication',
          },
          jetstream: {
            type: 'object',
            additionalProperties: false,
            description: 'where and how the JetStream backend keeps the log (used when backend is jetstream)',
            properties: {
              servers: {
                oneOf: [
                  { type: 'string', minLength: 1 },
                  { type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1 },
                ],
                default: 'nats://127.0.0.1:4222',
                description: 'NATS server URL(s)',
              },
              credentials: { type: 'string', minLength: 1, description: 'a .creds file (JWT + NKey seed), relative to this file' },
              tls: {
                type: 'object',
                additionalProperties: false,
                properties: {
                  ca_file: { type: 'string', minLength: 1 },
                  cert_file: { type: 'string', minLength: 1 },
                  key_file: { type: 'string', minLength: 1 },
                },
              },
              replicas: { type: 'integer', minimum: 1, maximum: 5, default: 1, description: 'copies of each partition stream and bucket (3 on a 3-node cluster)' },
              duplicate_window_ms: { type: 'integer', minimum: 1000, default: 120000, description: 'the streams\' Nats-Msg-Id duplicate window' },
              prefix: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,32}$', default: 'sluice', description: 'prefix of every stream, subject and bucket' },
              lease_ttl_ms: { type: 'integer', minimum: 1000, default: 10000, description: 'workers: a dead worker\'s work is taken over after this long' },
            },
          },
          data_dir: { type: 'string', minLength: 1, default: './data' },
          acks: {
            enum: ['durable', 'written'],
            default: 'durable',
            description: 'durable: fsync before a batch counts as committed; written: survives a killed process, not a power cut',
          },
          segment_bytes: SIZE,
          retention_check: { type: 'string', description: 'node-cron expression for retention sweeps', default: '* * * * *' },
        },
      },
      admin: {
        type: 'object',
        additionalProperties: false,
        properties: { listen: { type: 'string', description: 'host:port of the admin HTTP server; port 0 picks a free one' } },
      },
      topics: {
        type: 'object',
        additionalProperties: {
          type: 'object',
          additionalProperties: false,
          properties: {
            partitions: { type: 'integer', minimum: 1, maximum: 10000, default: 1 },
            retention: {
              type: 'object',
              additionalProperties: false,
              properties: { max_age: DURATION, max_bytes: SIZE },
            },
            schema: { type: 'string', description: 'path of a JSON Schema every record value must match' },
            on_invalid: { enum: ['dlq', 'reject', 'drop'], default: 'dlq' },
          },
        },
      },
      pipelines: {
        type: 'object',
        minProperties: 1,
        additionalProperties: {
          type: 'object',
          additionalProperties: false,
          required: ['topic'],
          properties: {
            source: variants(sources),
            transforms: { type: 'array', items: transformItem },
            topic: { type: 'string', minLength: 1, description: 'target topic; may be a template like cdc.{{ source.table }}' },
            key: { type: 'string', description: 'record key template, e.g. "{{ host }}"' },
            delivery: {
              enum: ['exactly_once', 'at_least_once'],
              description: 'exactly_once: refuse to start unless every hop gives it',
            },
            sinks: { type: 'object', additionalProperties: variants(sinks) },
          },
        },
      },
    },
  };
}
