/**
 * The event transforms work on: one record on its way from a source to a topic. The runtime
 * builds it from a source record and appends whatever the transforms return.
 */
export interface PipelineEvent {
  /** Usually a JSON object; a raw line is a string. */
  value: unknown;
  key: string | null;
  headers: Record<string, string>;
  /** ms since the epoch. */
  timestamp: number;
  /** The topic the event goes to; `route` changes it. */
  topic: string;
}

/**
 * A compiled transform chain. It never mutates the event it is given (nor anything reachable from
 * it): changed objects are copied on first write, so the caller may keep the original, e.g. for a
 * dead letter. `[]` means dropped; more than one event is allowed by the signature for future
 * transforms that split events, none of today's do.
 */
export type TransformFn = (event: PipelineEvent) => PipelineEvent[];
