/**
 * The fluent DSL. Each call adds a node to a tree of plain data and returns a handle for the next call; nothing
 * connects until the built Topology is run. A handle used twice fans out (both branches see every record).
 *
 * ```ts
 * const builder = new TopologyBuilder()
 * builder
 *   .stream<Reading>('readings', { eventTime: eventTime.field('ts') })
 *   .filter((r) => r.sensor === 'temperature')
 *   .groupByKey({ fields: (r) => ({ deviceId: r.deviceId, sensor: r.sensor }) })
 *   .windowedBy(tumbling({ size: '1m', grace: '10s' }))
 *   .aggregate({ count: count(), avg: avg('value') }, { name: 'temperature-1m' })
 *   .to('temperature-1m')
 * export default builder.build()
 * ```
 *
 * Stateful operators (aggregate, reduce, updateStateByKey, detect) and keyBy take a required `name`: it names their
 * state in the store and the changelog, and keyBy's repartition topic, so it must stay the same across versions of
 * a pipeline for its state to be found again.
 */
import { count as countAggregation, type AggregationResults, type AggregationsOf, type AggregationsSpec } from '../aggregate/aggregations.js'
import type { Alert, DetectorSpec } from '../anomaly.js'
import { TopologyError } from '../errors.js'
import { json, type Deserializer, type Serializer } from '../serde.js'
import type { SessionWindowSpec, WindowSpec } from '../windows/spec.js'
import type { EmitMode } from '../windows/windowed-aggregate.js'
import { checkedTopic } from './plan.js'
import { STATEFUL_KINDS, type AnyNode, type EventTimeSpec, type GroupFields, type ProcessorNode, type RecordContext, type RecordKey, type SourceNode, type TableSpec, type Topology } from './topology.js'

/** A node without the fields the builder assigns (distributes over the union of node kinds). */
type NodeInit = ProcessorNode extends infer N ? (N extends ProcessorNode ? Omit<N, 'id' | 'children'> : never) : never

/**
 * What a flatMap's mapper may return besides being iterable: no string (nor String object), whose `charAt` does not
 * fit `never`. A string is an `Iterable<string>` of its characters; the error reads "Type 'string' is not assignable
 * to type 'NotText'".
 */
export interface NotText {
  readonly charAt?: never
}

/** An intersection written out as one object type (each member of a union on its own), as editors show it. */
type Flat<T> = T extends unknown ? { [Name in keyof T]: T[Name] } : never

/**
 * `A` with `B`'s fields over its own of the same names, as a result is assembled (task.ts `merged`: the group's fields,
 * then the window bounds, then the outputs): a group field named like an output is the output's.
 */
type Overwritten<A, B> = A extends unknown ? Omit<A, keyof B> & B : never

/**
 * A window result as it flows downstream and is written: group fields, window bounds, named aggregate fields. `F` is
 * the fields and outputs (a `reduce`'s `value`); without it, any fields. A field named `windowStart` or `windowEnd` is
 * the window's bound.
 */
export type WindowResultValue<F = Record<string, unknown>> = Flat<Overwritten<F, { windowStart: number; windowEnd: number }>>

/**
 * The fields of the results of a grouping without a fields function: the record key (null for a record without one;
 * a `bytes()` key as base64). After a `keyBy` or `groupBy` the key is the selector's string.
 */
export interface KeyField {
  key: string | null
}

/**
 * The results of a windowed aggregate or reduce, before the window bounds: `R` (the group's fields `F` and the
 * outputs). Session windows in emit mode update also retract a session written earlier that a record merged or grew:
 * the fields, `retracted: true`, no outputs. Neither kind is known from a `WindowSpec` that may be a session, or an
 * emit mode that may be update: then a result is either, told apart by `retracted`.
 */
export type WindowedResults<R, F, W extends WindowSpec, E extends EmitMode> = [W] extends [Exclude<WindowSpec, SessionWindowSpec>]
  ? R
  : 'update' extends E
    ? (R & { retracted?: undefined }) | (F & { retracted: true })
    : R

class BuildState {
  nextId = 0
  readonly names = new Set<string>()
  readonly sources: SourceNode[] = []
  readonly tables: TableSpec[] = []

  name(kind: string, name: string | undefined, required: boolean): string {
    if (name === undefined) {
      if (required) throw new TopologyError(`${kind} needs a name (it names the operator's state and topics)`)
      return `${kind}-${this.nextId}`
    }
    if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new TopologyError(`operator name '${name}' may only hold letters, digits, '.', '_' and '-' (it is part of topic names)`)
    if (this.names.has(name)) throw new TopologyError(`two operators are named '${name}'`)
    this.names.add(name)
    return name
  }
}

/**
 * The options of an operator that needs a name, checked: a caller the compiler does not check (plain JavaScript, a
 * pipeline module run without type-checking) gets a TopologyError instead of a TypeError when it leaves them out.
 */
function withName<T extends { name: string }>(kind: string, options: T | undefined): T {
  if (options === null || typeof options !== 'object') throw new TopologyError(`${kind} needs options with a name, as in ${kind}(..., { name: 'my-${kind}' }): it names the operator's state and topics`)
  return options
}

/** Builds a Topology. */
export class TopologyBuilder {
  private readonly state = new BuildState()

  /**
   * A stream of the records of `topic`. Values are read as JSON unless `value` says otherwise; event time is the
   * record timestamp unless `eventTime` says otherwise. Errors: a TopologyError when `topic` is not a Kafka topic
   * name, or is a source already.
   */
  stream<V = any>(topic: string, options: { key: Deserializer<Buffer | null>; value?: Deserializer<V>; eventTime?: EventTimeSpec; name?: string }): Stream<V, Buffer>
  stream<V = any>(topic: string, options?: { key?: Deserializer<string | null>; value?: Deserializer<V>; eventTime?: EventTimeSpec; name?: string }): Stream<V>
  /** Options whose key deserializer is typed as either kind (a helper that passes one on): keys are `RecordKey`. */
  stream<V = any>(topic: string, options: { key?: Deserializer<RecordKey | null>; value?: Deserializer<V>; eventTime?: EventTimeSpec; name?: string }): Stream<V, RecordKey>
  stream<V = any>(topic: string, options: { key?: Deserializer<RecordKey | null>; value?: Deserializer<V>; eventTime?: EventTimeSpec; name?: string } = {}): Stream<V, any> {
    checkedTopic('source', topic)
    const key = options.key?.name ?? 'string'
    if (key !== 'string' && key !== 'bytes') throw new TopologyError(`the keys of ${topic} are read with string() (UTF-8 text, the default) or bytes() (raw Buffers), not with ${key}`)
    if (this.state.sources.some((s) => s.topic === topic)) throw new TopologyError(`topic ${topic} is already a source: branch the existing stream instead`)
    const node: SourceNode = {
      kind: 'source',
      id: this.state.nextId++,
      name: this.state.name('source', options.name ?? topic, false),
      topic,
      key,
      value: (options.value ?? json()) as Deserializer<unknown>,
      eventTime: options.eventTime ?? { from: 'timestamp' },
      children: [],
    }
    this.state.sources.push(node)
    return new Stream<V, any>(this.state, node)
  }

  /**
   * A table holding the latest value per key of a topic (normally compacted), kept up to date while the pipeline
   * runs. Every instance reads all of its partitions (Kafka Streams' GlobalKTable), so no co-partitioning is
   * needed; it is meant for dimension data (device metadata, thresholds) that fits in memory. A row whose value
   * `value` cannot read leaves the key's previous value in the table (Kafka Streams' LogAndContinue for global
   * stores) and goes to the dead-letter topic, counted. Errors: a TopologyError when `topic` is not a Kafka topic name.
   */
  globalTable<V = any>(topic: string, options: { value?: Deserializer<V> } = {}): TableSpec<V> {
    checkedTopic('global table', topic)
    const table: TableSpec<V> = { kind: 'topic', name: topic, topic, value: (options.value ?? json()) as Deserializer<unknown> }
    this.state.tables.push(table)
    return table
  }

  build(): Topology {
    if (this.state.sources.length === 0) throw new TopologyError('a topology needs at least one stream')
    return { kind: 'brook-topology', sources: [...this.state.sources], tables: [...this.state.tables] }
  }
}

/** A static dataset to enrich from (Spark's `transform` with a static RDD): key -> value. */
export function staticTable<V>(name: string, entries: ReadonlyMap<string, V> | Readonly<Record<string, V>>): TableSpec<V> {
  const map = entries instanceof Map ? entries : new Map(Object.entries(entries as Record<string, V>))
  return { kind: 'static', name, entries: map }
}

abstract class Handle {
  constructor(
    protected readonly state: BuildState,
    protected readonly node: AnyNode,
  ) {}

  protected add(node: NodeInit): ProcessorNode {
    const full = { ...node, id: this.state.nextId++, children: [] } as ProcessorNode
    ;(this.node.children as ProcessorNode[]).push(full)
    return full
  }

  protected named(kind: ProcessorNode['kind'], name: string | undefined): string {
    return this.state.name(kind, name, STATEFUL_KINDS.has(kind) || kind === 'keyBy')
  }
}

/** A stream of records with values of type V and keys of type K (RecordKey: text, or bytes for a `key: bytes()` source). */
export class Stream<V, K extends RecordKey = string> extends Handle {
  /** Keeps the records for which `predicate` is true (Spark's filter). */
  filter(predicate: (value: V, context: RecordContext<K>) => boolean, options: { name?: string } = {}): Stream<V, K> {
    return new Stream<V, K>(this.state, this.add({ kind: 'filter', name: this.named('filter', options.name), predicate }))
  }

  /** One value for each value (Spark's map). */
  map<W>(mapper: (value: V, context: RecordContext<K>) => W, options: { name?: string } = {}): Stream<W, K> {
    return new Stream<W, K>(this.state, this.add({ kind: 'map', name: this.named('map', options.name), mapper }))
  }

  /**
   * Zero or more values for each value (Spark's flatMap). The mapper returns an array or another iterable, never a
   * string: a string is an iterable of its characters, so `flatMap((v) => v.name)` would make one record per
   * character. Its type refuses one (NotText); a pipeline the compiler does not check gets a dead letter
   * (USER_FUNCTION_FAILED) for a record whose mapper returns a string.
   */
  flatMap<W>(mapper: (value: V, context: RecordContext<K>) => Iterable<W> & NotText, options: { name?: string } = {}): Stream<W, K> {
    return new Stream<W, K>(this.state, this.add({ kind: 'flatMap', name: this.named('flatMap', options.name), mapper }))
  }

  /**
   * Gives each record a new key. The records go through the internal topic `<applicationId>-<name>-repartition`
   * (partitioned by the new key, `partitions` of them, the source's count by default), so that every record of a
   * key reaches the same task whatever instance reads it, and keyed state stays correct with several instances.
   */
  keyBy(selector: (value: V, context: RecordContext<K>) => string, options: { name: string; partitions?: number }): Stream<V> {
    options = withName('keyBy', options)
    return this.repartitioned(selector, options.name, options.partitions, `keyBy ${options.name}`)
  }

  /**
   * The keyBy node of `keyBy`, or of an operator made of one (countByValue, which `partOf` names): `operator` is
   * what a TopologyError about `partitions` names.
   */
  private repartitioned(selector: (value: V, context: RecordContext<K>) => string, name: string, partitions: number | undefined, operator: string, partOf?: string): Stream<V> {
    if (partitions !== undefined && !(Number.isInteger(partitions) && partitions > 0)) throw new TopologyError(`${operator}: partitions must be a positive integer`)
    return new Stream<V>(this.state, this.add({ kind: 'keyBy', name: this.named('keyBy', name), selector, partitions, partOf }))
  }

  /**
   * Joins each record with a table entry (Spark's transform with a static dataset; Kafka Streams' stream-table
   * join). The lookup key is the record key unless `key` says otherwise. `join: 'left'` (default) calls `joiner`
   * with undefined when the table has no entry; `'inner'` drops such records.
   */
  enrich<T, W>(table: TableSpec<T>, joiner: (value: V, tableValue: T) => W, options: { key?: (value: V, context: RecordContext<K>) => string | null; join: 'inner'; name?: string }): Stream<W, K>
  enrich<T, W>(table: TableSpec<T>, joiner: (value: V, tableValue: T | undefined) => W, options?: { key?: (value: V, context: RecordContext<K>) => string | null; join?: 'left'; name?: string }): Stream<W, K>
  enrich<T, W>(table: TableSpec<T>, joiner: (value: V, tableValue: T | undefined) => W, options: { key?: (value: V, context: RecordContext<K>) => string | null; join?: 'inner' | 'left'; name?: string } = {}): Stream<W, K> {
    return new Stream<W, K>(
      this.state,
      this.add({ kind: 'enrich', name: this.named('enrich', options.name), table, lookup: options.key ?? ((_v: V, c: RecordContext<K>) => c.key as string | null), joiner, join: options.join ?? 'left' }),
    )
  }

  /**
   * Groups by the record key, refined by `fields` (e.g. the sensor of a device keyed by device id). The key does not
   * change, so no repartition is needed: every record of a group is in the same partition already. Results carry
   * the fields by name (or `key` when there are none).
   */
  groupByKey<F extends object = KeyField>(options: { fields?: (value: V, context: RecordContext<K>) => F } = {}): GroupedStream<V, K, F> {
    return new GroupedStream<V, K, F>(this.state, this.node, options.fields)
  }

  /** Groups by a new key: keyBy (through a repartition topic) then groupByKey. Results without `fields` carry `{ key }`. */
  groupBy<F extends object = { key: string }>(selector: (value: V, context: RecordContext<K>) => string, options: { name: string; partitions?: number; fields?: (value: V, context: RecordContext) => F }): GroupedStream<V, string, F> {
    options = withName('groupBy', options)
    return this.keyBy(selector, { name: options.name, partitions: options.partitions }).groupByKey<F>({ fields: options.fields })
  }

  /**
   * Spark's countByValue: the number of records per distinct `selector(value)`, keyed and partitioned by it
   * (through a repartition topic named after the operator, `<applicationId>-<name>-by-value-repartition`), in a
   * window or running. Results: `{ value, count }` (plus windowStart and windowEnd when windowed). The selector must
   * return a string (the value becomes the record key); a record for which it returns anything else (a number, null,
   * undefined) or throws is a dead letter (USER_FUNCTION_FAILED) whose reason names this countByValue and what the
   * selector returned, and the others are counted.
   */
  countByValue<W extends WindowSpec, E extends EmitMode = 'final'>(
    selector: (value: V, context: RecordContext<K>) => string,
    options: { name: string; window: W; emit?: E; partitions?: number },
  ): Stream<WindowResultValue<WindowedResults<{ value: string; count: number }, { value: string }, W, E>>>
  countByValue(selector: (value: V, context: RecordContext<K>) => string, options: { name: string; window?: undefined; emit?: EmitMode; partitions?: number }): Stream<{ value: string; count: number }>
  countByValue(selector: (value: V, context: RecordContext<K>) => string, options: { name: string; window?: WindowSpec; emit?: EmitMode; partitions?: number }): Stream<any> {
    options = withName('countByValue', options)
    const partOf = `countByValue ${options.name}`
    const byValue = this.repartitioned(selector, `${options.name}-by-value`, options.partitions, partOf, partOf)
    // The value counted is the record key after the repartition: the selector runs once per record, so one that reads
    // its context (the topic, the partition) counts what it returned for the record as read.
    const grouped = new GroupedStream<V, string, { value: string }>(this.state, byValue.node, (_v, c) => ({ value: c.key as string }), partOf)
    const counts = { count: countAggregation() }
    if (options.window === undefined) return grouped.aggregate(counts, { name: options.name, emit: options.emit })
    return grouped.windowedBy(options.window).aggregate(counts, { name: options.name, emit: options.emit })
  }

  /**
   * Writes the values to `topic` (JSON unless `value` says otherwise), keyed by the record key. Records are stamped
   * with the time they are written (`timestamp: 'wallclock'`, the default) so that the topic's retention counts from
   * then whatever event times they carry; `'event'` stamps them with their event time instead. Errors: a
   * TopologyError when `topic` is not a Kafka topic name.
   */
  to(topic: string, options: { value?: Serializer<V>; timestamp?: 'wallclock' | 'event'; name?: string } = {}): void {
    checkedTopic('sink', topic)
    this.add({ kind: 'sink', name: this.named('sink', options.name), topic, value: options.value ?? json(), timestamp: options.timestamp ?? 'wallclock' })
  }

  /** Prints each record on stdout (one line each: key, then the JSON value, unless `format` says otherwise). */
  print(options: { format?: (value: V, context: RecordContext<K>) => string; name?: string } = {}): void {
    this.add({ kind: 'console', name: this.named('console', options.name), format: options.format ?? ((v: V, c: RecordContext<K>) => `${c.key ?? ''}\t${JSON.stringify(v)}`) })
  }
}

/** The result stream of a windowed aggregation in emit mode final: anomaly detectors read it. */
export class WindowResultStream<F, K extends RecordKey = string> extends Stream<WindowResultValue<F>, K> {
  /**
   * Alerts for anomalous window results (anomaly.ts), keyed like the results. Errors: a TopologyError after an
   * aggregation in emit mode update, whose results are a window's content so far, several per window: a detector
   * would alert on a window before it closed and count each of its updates as a window of the baseline.
   */
  detect(detector: DetectorSpec, options: { name: string }): Stream<Alert, K> {
    options = withName('detect', options)
    const source = this.node as Extract<ProcessorNode, { kind: 'aggregate' | 'reduce' }>
    if (source.emit === 'update') throw new TopologyError(`detect ${options.name} reads final window results, but ${source.kind} ${source.name} emits 'update' (each window's content so far, at every commit): detect on an aggregation with emit 'final'`)
    return new Stream<Alert, K>(this.state, this.add({ kind: 'detect', name: this.named('detect', options.name), detector }))
  }
}

/**
 * A grouped stream: aggregate (Spark's reduceByKey / aggregateByKey), reduce, updateStateByKey, or window it. `F` is
 * the fields its results carry (what the fields function returns, or KeyField).
 */
export class GroupedStream<V, K extends RecordKey = string, F extends object = KeyField> extends Handle {
  constructor(
    state: BuildState,
    node: AnyNode,
    protected readonly fields: ((value: V, context: RecordContext<K>) => F) | undefined,
    /** The operator the user wrote, when the DSL groups for it (countByValue): the aggregate's `partOf`. */
    private readonly partOf?: string,
  ) {
    super(state, node)
  }

  windowedBy<W extends WindowSpec>(window: W): WindowedStream<V, K, F, W> {
    return new WindowedStream<V, K, F, W>(this.state, this.node, this.fields, window, this.partOf)
  }

  /**
   * A running (not windowed) aggregation per group; emits the changed groups' results at each commit: the group's
   * fields and the outputs by name (`{ key, n, avg }` for `{ n: count(), avg: avg('value') }`, AggregationResults).
   */
  aggregate<A extends AggregationsOf<V>>(aggregations: A, options: { name: string; emit?: EmitMode }): Stream<Flat<Overwritten<F, AggregationResults<A>>>, K> {
    options = withName('aggregate', options)
    checkOutputs(options.name, aggregations, this.fields === undefined ? ['key'] : [])
    if (options.emit === 'final') throw new TopologyError(`aggregate ${options.name}: emit 'final' needs a window (a running aggregate never closes)`)
    return new Stream(this.state, this.add({ kind: 'aggregate', name: this.named('aggregate', options.name), fields: this.fields as GroupFields | undefined, aggregations, emit: 'update', partOf: this.partOf }))
  }

  /** Spark's reduceByKey: an associative function folds the values of each group; results `{ ...fields, value }`. */
  reduce(reducer: (a: V, b: V) => V, options: { name: string }): Stream<Flat<Overwritten<F, { value: V }>>, K> {
    options = withName('reduce', options)
    return new Stream(this.state, this.add({ kind: 'reduce', name: this.named('reduce', options.name), fields: this.fields as GroupFields | undefined, reducer, emit: 'update' }))
  }

  /**
   * Spark's updateStateByKey: `update(state, value)` returns the group's new state; the new state is emitted
   * downstream at once, keyed like the input. An update that returns undefined deletes the key's state, as Spark
   * removes a key whose update function returns None: the next record of the key sees no state, nothing is emitted
   * for the deletion (write a value of your own first if a consumer must hear of it), and the key's changelog record
   * becomes a tombstone at the next commit, so a restore does not bring the state back.
   */
  updateStateByKey<S>(update: (state: S | undefined, value: V, context: RecordContext<K>) => S | undefined, options: { name: string }): Stream<S, K> {
    options = withName('updateStateByKey', options)
    if (this.fields !== undefined) throw new TopologyError(`updateStateByKey ${options.name}: state is per record key; use keyBy for another key`)
    return new Stream<S, K>(this.state, this.add({ kind: 'updateState', name: this.named('updateState', options.name), update }))
  }
}

/**
 * An aggregate computes at least one output. Its outputs sit beside the group's fields (`key` after groupByKey) and
 * the window's bounds in one result: an output of one of those names would overwrite it, so it is refused when the
 * topology is built.
 */
function checkOutputs(name: string, aggregations: AggregationsSpec, reserved: readonly string[]): void {
  if (Object.keys(aggregations).length === 0) throw new TopologyError(`aggregate ${name}: no aggregation to compute: name at least one, as in { count: count() }`)
  const taken = Object.keys(aggregations).filter((output) => reserved.includes(output))
  if (taken.length > 0) throw new TopologyError(`aggregate ${name}: ${taken.map((t) => `'${t}'`).join(', ')} would overwrite the result's own field${taken.length > 1 ? 's' : ''} (${reserved.join(', ')}): name the output otherwise`)
}

/** A grouped stream with a window (of type `W`): aggregate or reduce per group and window. */
export class WindowedStream<V, K extends RecordKey = string, F extends object = KeyField, W extends WindowSpec = WindowSpec> extends Handle {
  constructor(
    state: BuildState,
    node: AnyNode,
    private readonly fields: ((value: V, context: RecordContext<K>) => F) | undefined,
    private readonly window: W,
    private readonly partOf?: string,
  ) {
    super(state, node)
  }

  /**
   * Aggregates per group and window (Spark's reduceByKeyAndWindow / window + aggregate). `emit: 'final'` (default)
   * writes each window once, when it closes; `'update'` writes changed windows at each commit, and, with session
   * windows, a retraction (`{ ...fields, windowStart, windowEnd, retracted: true }`, no values) for a session written
   * earlier that a record then merged with another or grew, as Kafka Streams forwards a tombstone for it. Late records
   * go to `lateTopic` (the pipeline's late-records topic by default). Results: the group's fields, `windowStart`,
   * `windowEnd` and the outputs by name (AggregationResults), or a retraction (WindowedResults).
   */
  aggregate<A extends AggregationsOf<V>, E extends EmitMode = 'final'>(aggregations: A, options: { name: string; emit?: E; lateTopic?: string }): WindowResultStream<WindowedResults<Overwritten<F, AggregationResults<A>>, F, W, E>, K> {
    options = withName('aggregate', options)
    const retracting = this.window.type === 'session' && options.emit === 'update'
    checkOutputs(options.name, aggregations, ['windowStart', 'windowEnd', ...(this.fields === undefined ? ['key'] : []), ...(retracting ? ['retracted'] : [])])
    if (options.lateTopic !== undefined) checkedTopic('late-records', options.lateTopic)
    const node = this.add({ kind: 'aggregate', name: this.named('aggregate', options.name), fields: this.fields as GroupFields | undefined, window: this.window, aggregations, emit: options.emit ?? 'final', lateTopic: options.lateTopic, partOf: this.partOf })
    return new WindowResultStream(this.state, node)
  }

  /**
   * An associative reducer per group and window (Spark's reduceByKeyAndWindow); results `{ ...fields, windowStart,
   * windowEnd, value }`, or a retraction (WindowedResults).
   */
  reduce<E extends EmitMode = 'final'>(reducer: (a: V, b: V) => V, options: { name: string; emit?: E; lateTopic?: string }): WindowResultStream<WindowedResults<Overwritten<F, { value: V }>, F, W, E>, K> {
    options = withName('reduce', options)
    if (options.lateTopic !== undefined) checkedTopic('late-records', options.lateTopic)
    const node = this.add({ kind: 'reduce', name: this.named('reduce', options.name), fields: this.fields as GroupFields | undefined, window: this.window, reducer, emit: options.emit ?? 'final', lateTopic: options.lateTopic })
    return new WindowResultStream(this.state, node)
  }
}

