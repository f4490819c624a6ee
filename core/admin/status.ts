/**
 * The JSON document `GET /api/status` serves and the status page and `sluice status` read.
 * The runtime builds it; the server only serialises what `status()` returns, so this is the
 * contract between them. Readers must tolerate fields they do not know and missing optional
 * ones: the page renders defensively, and new fields are added, never renamed.
 */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export interface AdminStatus {
  pipelines: PipelineStatus[];
  topics: TopicStatus[];
  /** When this process started running pipelines, ISO-8601 (UTC). */
  started_at: string;
}

export interface PipelineStatus {
  name: string;
  /** e.g. starting | running | restarting | failed | stopping | stopped */
  state: string;
  /** Absent for a pipeline that only reads a topic another pipeline fills. */
  source?: {
    type: string;
    /** The last committed source position (file offsets, LSN, ...), as the source reports it. */
    position?: JsonValue;
  };
  topic: string;
  records_in: number;
  sinks: SinkStatus[];
  /** Message of the most recent error, if the pipeline has had one. Never holds secrets. */
  last_error?: string;
}

export interface SinkStatus {
  name: string;
  type: string;
  delivery: 'transactional' | 'idempotent' | 'at-least-once';
  records_out: number;
  /** Records in the topic not yet committed by this sink's group; null while unknown. */
  lag: number | null;
}

export interface TopicStatus {
  name: string;
  partitions: PartitionStatus[];
}

export interface PartitionStatus {
  partition: number;
  /** First offset still retained. */
  start_offset: number;
  /** Committed end: the offset the next record will get. */
  end_offset: number;
}
