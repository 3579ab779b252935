/**
 * A Topology is plain data: a forest of nodes, one tree per source topic, built by the DSL (builder.ts) before
 * anything connects. `describeTopology` renders it; the runtime plans it into sub-topologies (plan.ts) and runs one
 * task per sub-topology and input partition. Functions inside nodes (predicates, mappers) are the user's code; the
 * rest is data that can be inspected and printed.
 *
 *   source(topic) ─▶ filter | map | flatMap | enrich ─▶ ... ─▶ sink(topic) | console
 *                                  │
 *                                  ├─▶ keyBy ══ <applicationId>-<name>-repartition ══▶ (a new sub-topology)
 *                                  └─▶ aggregate (windowed or not) | reduce | updateStateByKey ─▶ detect ─▶ ...
 */
import type { AggregationsSpec } from '../aggregate/aggregations.js'
import type { Deserializer, Serializer } from '../serde.js'
import type { WindowSpec } from '../windows/spec.js'
import type { EmitMode } from '../windows/windowed-aggregate.js'
import type { DetectorSpec } from '../anomaly.js'

/**
 * A record key as user code sees it: UTF-8 text (a source's default, `key: string()`), or the raw bytes for a source
 * read with `key: bytes()` (Kafka Streams' `Serdes.ByteArray()` for keys).
 */
export type RecordKey = string | Buffer

/** What a user function sees besides the value; `K` is the key's type (RecordKey). */
export interface RecordContext<K extends RecordKey = string> {
  readonly key: K | null
  /** Event time, ms since the epoch. */
  readonly timestamp: number
  readonly topic: string
  readonly partition: number
  readonly offset: string
  readonly headers: Readonly<Record<string, string>>
}

/** Where a source's event time comes from. */
export type EventTimeSpec =
  | { readonly from: 'timestamp' }
  | { readonly from: 'field'; readonly field: string }
  | { readonly from: 'function'; readonly extract: (value: any, context: Omit<RecordContext<RecordKey>, 'timestamp'> & { recordTimestamp: number }) => number }

export const eventTime = {
  /** The Kafka record's timestamp (CreateTime or LogAppendTime). */
  recordTimestamp: (): EventTimeSpec => ({ from: 'timestamp' }),
  /** A numeric field of the value, ms since the epoch (e.g. `'ts'`). */
  field: (field: string): EventTimeSpec => ({ from: 'field', field }),
  /** A function of the value. */
  of: (extract: Extract<EventTimeSpec, { from: 'function' }>['extract']): EventTimeSpec => ({ from: 'function', extract }),
}

/**
 * A lookup table for enrichment: a static dataset, or the latest value per key of a (compacted) topic. `Row` is the
 * type of its values, as `enrich`'s joiner gets them (a type only: nothing at run time holds it).
 */
export type TableSpec<Row = unknown> = (
  | { readonly kind: 'static'; readonly name: string; readonly entries: ReadonlyMap<string, unknown> }
  | { readonly kind: 'topic'; readonly name: string; readonly topic: string; readonly value: Deserializer<unknown> }
) & { readonly rowType?: Row }

/** The identity of an aggregation group: the record key plus the fields this function returns. */
export type GroupFields = (value: any, context: RecordContext<any>) => Record<string, unknown>

interface Base {
  readonly id: number
  readonly name: string
  readonly children: ProcessorNode[]
  /**
   * The operator the user wrote when the DSL made this node as a part of it (`countByValue kinds` for the keyBy and
   * the aggregate countByValue is made of): what dead letters name, since the user never wrote a `keyBy kinds-by-value`.
   */
  readonly partOf?: string
}

export interface SourceNode extends Base {
  readonly kind: 'source'
  readonly topic: string
  /**
   * How keys are read: UTF-8 text, or raw bytes. Bytes keys are held inside the task as their latin1 text (one
   * character per byte, so any bytes go there and back unchanged) for groups, state and changelogs, and are given to
   * user code, sinks, dead letters and late records as Buffers holding the bytes as read.
   */
  readonly key: 'string' | 'bytes'
  readonly value: Deserializer<unknown>
  readonly eventTime: EventTimeSpec
}

export type ProcessorNode =
  | (Base & { readonly kind: 'filter'; readonly predicate: (value: any, context: RecordContext<any>) => boolean })
  | (Base & { readonly kind: 'map'; readonly mapper: (value: any, context: RecordContext<any>) => unknown })
  | (Base & { readonly kind: 'flatMap'; readonly mapper: (value: any, context: RecordContext<any>) => Iterable<unknown> })
  | (Base & { readonly kind: 'keyBy'; readonly selector: (value: any, context: RecordContext<any>) => string; readonly partitions?: number })
  | (Base & {
      readonly kind: 'enrich'
      readonly table: TableSpec
      readonly lookup: (value: any, context: RecordContext<any>) => string | null
      readonly joiner: (value: any, tableValue: any) => unknown
      readonly join: 'inner' | 'left'
    })
  | (Base & {
      readonly kind: 'aggregate'
      readonly fields?: GroupFields
      readonly window?: WindowSpec
      readonly aggregations: AggregationsSpec
      readonly emit: EmitMode
      readonly lateTopic?: string
    })
  | (Base & {
      readonly kind: 'reduce'
      readonly fields?: GroupFields
      readonly window?: WindowSpec
      readonly reducer: (a: any, b: any) => unknown
      readonly emit: EmitMode
      readonly lateTopic?: string
    })
  | (Base & { readonly kind: 'updateState'; readonly update: (state: any, value: any, context: RecordContext<any>) => unknown })
  | (Base & { readonly kind: 'detect'; readonly detector: DetectorSpec })
  | (Base & { readonly kind: 'sink'; readonly topic: string; readonly value: Serializer<any>; readonly timestamp: 'wallclock' | 'event' })
  | (Base & { readonly kind: 'console'; readonly format: (value: any, context: RecordContext<any>) => string })

export type NodeKind = ProcessorNode['kind']
export type AnyNode = SourceNode | ProcessorNode

/** The stateful node kinds: each keeps its state in the task's store under its (required, stable) name. */
export const STATEFUL_KINDS: ReadonlySet<NodeKind> = new Set(['aggregate', 'reduce', 'updateState', 'detect'])

export interface Topology {
  readonly kind: 'brook-topology'
  readonly sources: readonly SourceNode[]
  readonly tables: readonly TableSpec[]
}

/** Whether a module export is a Topology (the CLI loads pipelines as modules). */
export function isTopology(value: unknown): value is Topology {
  return typeof value === 'object' && value !== null && (value as Topology).kind === 'brook-topology'
}
