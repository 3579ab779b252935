/**
 * One task: one sub-topology applied to one partition of its source topic. The task compiles the sub-topology's
 * nodes into processors bound to its own store, processes records one at a time in offset order, and collects
 * what a commit must write: output records (sinks, repartition, late records, dead letters), the store's changes
 * and its position. It never talks to Kafka itself; the runner (runner.ts) feeds it and commits for it.
 *
 *   message ─▶ deserialize ─▶ event time ─▶ roots ─▶ ... ─▶ outputs (held until commit)
 *      └─ RecordError anywhere ─▶ dead-letter output (reason in headers), counted; the next record goes on
 */
import type { IHeaders, KafkaMessage } from 'kafkajs'
import { randomBytes } from 'node:crypto'
import { pathReader, type Accumulation } from '../aggregate/aggregations.js'
import { Detector, type DetectorState, type WindowedValue } from '../anomaly.js'
import { jsonOrText, ProcessorErrorCode, RecordError, TopologyError } from '../errors.js'
import type { Deserializer } from '../serde.js'
import { INTERNAL_VALUE_MAX_BYTES, keptCopy, packPlain, PLAIN_CODEC, storedCopy, unpackPlain, type EntryCodec } from '../state/codec.js'
import { COMMIT_ID_BYTES, encodeMarker, POSITION_KEY, RENAME_OR_RESET, type StateRecord, type TaskStore } from '../state/task-store.js'
import type { Plan, SubTopology } from '../topology/plan.js'
import { repartitionTopic } from '../topology/plan.js'
import type { GroupFields, ProcessorNode, RecordContext, RecordKey } from '../topology/topology.js'
import { WindowedAggregate, windowEntryCodec, type WindowInput, type WindowResult } from '../windows/windowed-aggregate.js'
import { stateLayout } from '../windows/spec.js'
import { formatMs } from '../time.js'
import { KeyedAggregate, keyedEntryCodec, type KeyedResult } from './keyed-operators.js'
import { checkGroupSize, groupKey, Groups, type Grouping } from './groups.js'
import { RecordKeys } from './record-keys.js'
import { accumulationOf, operatorLayout } from './topology-fingerprint.js'
import type { Metrics } from './metrics.js'
import type { TableLookup } from '../state/global-table-store.js'

/** A record on its way through the task's processors. */
interface Rec {
  key: string | null
  value: unknown
  /** Event time (ms). */
  ts: number
  headers: Record<string, string>
  /** Set on window and aggregate results: the group they belong to, and its fields. */
  group?: string
  fields?: Record<string, unknown>
  /** The input message this record came from (absent for results emitted on commit or idle advance). */
  input?: KafkaMessage
  /** The last grouping computed for this record (two aggregates of one groupByKey share it). */
  grouped?: Grouping
}

/** Returns a promise only when it had to wait (a window closed, or state was read from disk). */
type Processor = (rec: Rec) => void | Promise<void>

/**
 * Runs processors in order on one record, waiting only for those that return a promise.
 *
 * The per-record functions of this file (and of the operators they call) create no closure on their synchronous path:
 * a function whose locals an inner arrow captures allocates a context object at every call, whether or not the
 * arrow is ever made, so what continues after a promise lives in functions of its own (`runAfter` here).
 */
function runAll(processors: readonly Processor[], rec: Rec, from = 0): void | Promise<void> {
  for (let i = from; i < processors.length; i++) {
    const pending = processors[i]!(rec)
    if (pending) return runAfter(pending, processors, rec, i + 1)
  }
}

/** runAll from `from` on, once `pending` has settled. */
async function runAfter(pending: Promise<void>, processors: readonly Processor[], rec: Rec, from: number): Promise<void> {
  await pending
  return runAll(processors, rec, from)
}

/** What one commit writes: outputs, state changes and the marker with the task position, under one commit id. */
export interface PreparedCommit {
  outputs: OutputRecord[]
  console: string[]
  changes: StateRecord[]
  marker: StateRecord | null
  /** The commit's id, hex. */
  commit: string
}

/** A record the commit will produce. */
export interface OutputRecord {
  topic: string
  key: Buffer | string | null
  value: Buffer | string | null
  timestamp: string
  /** As kafkajs takes them: a value is bytes or text, or a list of them for a name the record repeats. */
  headers?: IHeaders
}

/** An input record's deserialized value and event time (ms), read ahead of processing (Task.peek). */
export interface PeekedRecord {
  value: unknown
  ts: number
}

/** What the runner needs from the instance: tables to enrich from and the counters. */
export interface TaskEnvironment {
  plan: Plan
  tables: ReadonlyMap<string, TableLookup>
  metrics: Metrics
}

/** Header names of dead letters and late records. */
export const HeaderNames = {
  errorCode: 'brook.error.code',
  errorReason: 'brook.error.reason',
  errorTopic: 'brook.error.topic',
  errorPartition: 'brook.error.partition',
  errorOffset: 'brook.error.offset',
  errorOperator: 'brook.error.operator',
  errorValueBytes: 'brook.error.value-bytes',
  lateOperator: 'brook.late.operator',
  lateEventTime: 'brook.late.event-time',
  lateStreamTime: 'brook.late.stream-time',
  lateValueBytes: 'brook.late.value-bytes',
} as const

const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({})

/**
 * The most of a value a dead letter or a late record holds (bytes). A record the input topic took whole, up to its
 * max.message.bytes (1 MiB by default), would not fit the dead-letter or late-records topic once the error or late
 * headers are added: the cluster would refuse it (MESSAGE_TOO_LARGE) at every retry, and one oversized reading would
 * stop the pipeline. A longer value is cut here, with its full size in `brook.error.value-bytes` (`brook.late.value-bytes`);
 * the input record itself stays where it was read.
 */
export const DEAD_LETTER_VALUE_MAX_BYTES = 512 * 1024

/**
 * The most of an error's message a dead letter's `brook.error.reason` holds (characters). A user function's message
 * may hold the whole record (`throw new Error(\`bad reading: ${JSON.stringify(r)}\`)`): beside the value's first
 * 512 KiB, a reason that size too would again make the dead letter too large for its topic.
 */
const DEAD_LETTER_REASON_MAX_CHARS = 1024

/** An error's message as a dead letter's reason: at most DEAD_LETTER_REASON_MAX_CHARS, then how long it was. */
function reasonOf(message: string): string {
  return message.length <= DEAD_LETTER_REASON_MAX_CHARS ? message : `${message.slice(0, DEAD_LETTER_REASON_MAX_CHARS)}… (${message.length} characters in all)`
}

/**
 * The most a dead letter's or late record's key and value hold together (bytes), below the 1 MiB of a topic's default
 * max.message.bytes with room for the headers: a key of 600 KB beside the first 512 KiB of the value would not fit.
 */
const DEAD_LETTER_KEY_AND_VALUE_MAX_BYTES = 960 * 1024

/**
 * `value` cut to DEAD_LETTER_VALUE_MAX_BYTES, or shorter beside a long key (the two together within
 * DEAD_LETTER_KEY_AND_VALUE_MAX_BYTES; the key is kept whole, as it says which record this was), its full size then
 * set in `headers[sizeHeader]`.
 */
function cutToFit(key: Buffer | string | null, value: Buffer | string | null, headers: IHeaders, sizeHeader: string): Buffer | string | null {
  const bytes = value === null ? 0 : Buffer.byteLength(value)
  const keyBytes = key === null ? 0 : Buffer.byteLength(key)
  const room = Math.max(0, Math.min(DEAD_LETTER_VALUE_MAX_BYTES, DEAD_LETTER_KEY_AND_VALUE_MAX_BYTES - keyBytes))
  if (bytes <= room) return value
  headers[sizeHeader] = String(bytes)
  return (typeof value === 'string' ? Buffer.from(value) : value!).subarray(0, room)
}

/**
 * A dead letter as the dead-letter topic gets it: the record's key, its value (cut to fit, cutToFit), stamped with the
 * time it is written, with the error's code and reason (reasonOf) beside `origin`'s headers (where it was read). A
 * task's dead letters and a global table's rows that cannot be read (global-tables.ts) are made here alike.
 */
export function deadLetterMessage(
  key: Buffer | string | null,
  value: Buffer | string | null,
  error: RecordError,
  origin: Record<string, string>,
  recordHeaders: IHeaders = NO_HEADERS,
): { key: Buffer | string | null; value: Buffer | string | null; timestamp: string; headers: IHeaders } {
  // The record's own headers too, as read (bytes, and every value of a name it repeats), as KIP-1034's dead letters
  // keep them; the brook.error ones win a clash of names.
  const headers: IHeaders = { ...recordHeaders, ...origin, [HeaderNames.errorCode]: error.code, [HeaderNames.errorReason]: reasonOf(error.message) }
  return { key, value: cutToFit(key, value, headers, HeaderNames.errorValueBytes), timestamp: String(Date.now()), headers }
}

/** The counters of outputs that count when their commit is durable (metrics.ts). */
const COMMITTED_COUNTERS = ['late', 'deadLetters', 'windowsEmitted', 'alerts'] as const

/** A commit with this many changed groups, or records for topics, is due at once (Task.commitIsLarge). */
const MAX_DIRTY_ENTRIES = 20_000
const MAX_PENDING_OUTPUTS = 40_000
type CommittedCounter = (typeof COMMITTED_COUNTERS)[number]

function headersOf(message: KafkaMessage): Record<string, string> {
  if (message.headers === undefined) return NO_HEADERS
  let out: Record<string, string> | undefined
  for (const name in message.headers) {
    const value = message.headers[name]
    if (value !== undefined) (out ??= {})[name] = Array.isArray(value) ? String(value[0]) : String(value)
  }
  return out ?? NO_HEADERS
}

/**
 * Calls user code with its arguments; anything it throws becomes a RecordError naming the operator (or `node` itself,
 * when a string: how the source's event-time function and deserializer are named). The function
 * and its arguments are passed apart, not as a closure, so the per-record path allocates no function for the call.
 */
function user<T, A, B, C = undefined>(node: ProcessorNode | string, fn: (a: A, b: B, c: C) => T, a: A, b: B, c?: C): T {
  let result: T
  try {
    result = fn(a, b, c as C)
  } catch (error) {
    if (error instanceof RecordError) throw error
    throw new RecordError(ProcessorErrorCode.userFunction, `${userFunctionName(node)} threw: ${(error as Error)?.message ?? String(error)}`)
  }
  // An async function (a pipeline run without type checks): its Promise would be written as {}, or, from a filter,
  // let every record through. Its rejection is caught here, or it would be one no one handles, which ends the process.
  if (typeof (result as { then?: unknown } | null)?.then === 'function') {
    void (result as PromiseLike<unknown>).then(undefined, () => {})
    throw new RecordError(ProcessorErrorCode.userFunction, `${userFunctionName(node)} returned a Promise: user functions run synchronously (an async one would write {} and let every record through a filter)`)
  }
  return result
}

/**
 * What an aggregate's fields function returns for a record, or a RecordError (USER_FUNCTION_FAILED) when it is not an
 * object: null would fail the task when the group's window is emitted (its fields are spread into the result), long
 * after the record, and undefined would put the record in the group of its key alone.
 */
function groupFields(node: ProcessorNode, fields: GroupFields, value: unknown, context: RecordContext<RecordKey>): Record<string, unknown> {
  const returned: unknown = user(node, fields, value, context)
  if (typeof returned !== 'object' || returned === null) throw new RecordError(ProcessorErrorCode.userFunction, `the fields function of ${userFunctionName(node)} returned ${returned === null ? 'null' : describeType(returned)}, not an object of fields`)
  return returned as Record<string, unknown>
}

/**
 * How an error names the user function of `node`: its kind and name, or, for a node the DSL made as a part of an
 * operator the user wrote, that operator's (`the selector of countByValue kinds`, never `keyBy kinds-by-value`).
 */
function userFunctionName(node: ProcessorNode | string): string {
  if (typeof node === 'string') return node
  if (node.partOf !== undefined && node.kind === 'keyBy') return `the selector of ${node.partOf}`
  return operatorName(node)
}

/** An operator as errors name it: `aggregate stats`, or the operator the user wrote for a node the DSL made (partOf). */
function operatorName(node: ProcessorNode): string {
  return node.partOf ?? `${node.kind} ${node.name}`
}

/**
 * A new object with the own enumerable string-keyed properties of each source in turn, as `{ ...a, ...b }` makes it
 * (a later source's value wins, in the place the key first took). V8 (Node 20) takes a slow path for an object
 * spread followed by properties the spread did not copy: `{ ...fields, windowStart, windowEnd, ...values }` cost
 * 15 µs per window result, this about 0.2 µs. The sources are plain data (group fields, aggregate values, headers),
 * whose symbols neither JSON nor the state's msgpack would keep anyway.
 */
function merged(...sources: readonly object[]): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const source of sources) {
    for (const name of Object.keys(source)) {
      const value = (source as Record<string, unknown>)[name]
      // An assignment to __proto__ would set the prototype; a spread makes it a property.
      if (name === '__proto__') Object.defineProperty(out, name, { value, enumerable: true, writable: true, configurable: true })
      else out[name] = value
    }
  }
  return out
}

/** What a user function returned, for an error message: `null`, `undefined`, or its type and (short) value: `number 42`. */
function returnedOf(value: unknown): string {
  if (value === null || value === undefined) return String(value)
  if (typeof value === 'object' || typeof value === 'function') return describeType(value)
  const text = typeof value === 'symbol' ? value.toString() : typeof value === 'bigint' ? `${value}n` : String(value)
  return `${typeof value} ${text.length <= 40 ? text : `${text.slice(0, 40)}…`}`
}

/** What a value is, for an error message: its type, or its class for objects. */
function describeType(value: unknown): string {
  if (typeof value !== 'object') return typeof value
  return Array.isArray(value) ? 'an array' : `an object (${value!.constructor?.name ?? 'no prototype'})`
}

/**
 * A keyBy's record as its repartition topic holds it (msgpack). A value msgpack cannot write is that record's fault,
 * not the task's: a reading nested deeper than the encoder's recursion can go (JSON.parse takes 20,000 nested arrays,
 * msgpack overflows the stack on them) failed the task at the same offset three times and stopped the pipeline. So
 * it is a RecordError (SERIALIZATION_FAILED), and the record a dead letter, as a sink's serializer failing makes it.
 */
function repartitionValue(operator: string, topic: string, value: unknown): Buffer {
  let packed: Buffer
  try {
    packed = packPlain(value)
  } catch (error) {
    throw new RecordError(ProcessorErrorCode.serializationFailed, `${operator} cannot encode the value for ${topic}: ${error instanceof Error ? error.message : String(error)}`)
  }
  if (packed.length > INTERNAL_VALUE_MAX_BYTES) throw new RecordError(ProcessorErrorCode.serializationFailed, `${operator} would write ${packed.length} bytes of msgpack to ${topic}, above the ${INTERNAL_VALUE_MAX_BYTES} an internal topic's record may take`)
  return packed
}

/** The copy of `value` an operator keeps as its state for `group` (keptCopy), its reasons naming the operator. */
function keptState<T>(node: ProcessorNode, group: string, value: T): T {
  const returned = `${userFunctionName(node)} returned state for group ${JSON.stringify(group)}`
  return keptCopy(value, {
    unstorable: (why) => `${returned} that cannot be stored: ${why}`,
    tooLarge: (bytes) => `${returned} of ${bytes} bytes of msgpack, above the ${INTERNAL_VALUE_MAX_BYTES} a changelog record may take`,
  }).copy
}

/** The dead-letter headers naming the input record a record came from (none for results made at commit or idle time). */
function inputOrigin(topic: string, partition: number, input: KafkaMessage | undefined): Record<string, string> {
  if (input === undefined) return {}
  return { [HeaderNames.errorTopic]: topic, [HeaderNames.errorPartition]: String(partition), [HeaderNames.errorOffset]: input.offset }
}

/** A source's deserializer applied to a value, as a function `user` can call (a custom one may throw anything). */
function deserialize(deserializer: Deserializer<unknown>, bytes: Buffer | null): unknown {
  return deserializer.deserialize(bytes)
}

export class Task {
  readonly id: string
  /** The next offset of the source partition to process; null until known (then the group's committed offset rules). */
  get position(): bigint | null {
    if (this.nextOffset === null) this.nextOffset = this.lastOffset === null ? null : BigInt(this.lastOffset) + 1n
    return this.nextOffset
  }
  private lastOffset: string | null = null
  private nextOffset: bigint | null = null
  lastCommitMs = Date.now()
  /** Event time (ms) of the last input record processed whose event time could be read; -Infinity before the first. */
  lastEventTime = Number.NEGATIVE_INFINITY
  /** Wall-clock time (ms) the last batch of records arrived. */
  lastRecordWallMs = Date.now()
  /** Start of the current quiet stretch: the last records, or the first look at the cluster after an unconfirmed gap. */
  private quietSinceMs = Date.now()
  /** When the cluster last confirmed the partition had nothing beyond what the task had read. */
  private confirmedMs = Date.now()
  private outputs: OutputRecord[] = []
  private console: string[] = []
  private committedPosition: bigint | null = null
  /** The position of the last commit (or of the state loaded): where the task starts again after a failure. */
  get committedAt(): bigint | null {
    return this.committedPosition
  }
  private readonly roots: Processor[]
  /** The windowed operators by name; `layout`: what their state depends on of their window spec (spec.ts stateLayout). */
  private readonly windowOps = new Map<string, { op: WindowedAggregate; drain: () => Promise<void>; idleBase: number; layout: string | null }>()
  /**
   * What each stateful operator keeps, by operator name: its kind, windowed or running, and an aggregate's accumulator
   * layout (topology-fingerprint.ts operatorLayout). Saved in each commit's marker, checked at each start (checkLayouts).
   */
  private readonly stateLayouts = new Map<string, string>()
  /**
   * The stateful operators the last commit's marker names that this task no longer has (removed from the pipeline
   * since, or renamed): their entries are dropped as the task reads its groups. Set by `load`.
   */
  operatorsDropped: readonly string[] = []
  /** The operators of windowOps, for `hasDue`, asked after every record. */
  private readonly windowed: WindowedAggregate[] = []
  private readonly keyedOps: { op: KeyedAggregate; forward: (results: KeyedResult[]) => Promise<void> }[] = []
  private readonly resets: (() => void)[] = []
  /** The last late record written to each late-records topic since the last commit, and the input record it holds. */
  private readonly lateOutputs = new Map<string, { input: KafkaMessage; output: OutputRecord }>()
  /**
   * Late records, dead letters, window results and alerts among the outputs of the next commit: they join `metrics`
   * when it is durable, so the counters are what the topics hold, even after work dropped and redone (a failed commit,
   * a restart, a task that moved).
   */
  private readonly sinceCommit: Record<CommittedCounter, number> = { late: 0, deadLetters: 0, windowsEmitted: 0, alerts: 0 }
  /**
   * The id (hex) of the commit last prepared: should its answer be lost (a connection closed mid-commit) while it went
   * through, the task restarts from it, and `load` finds it in the store and counts `sinceCommit` as committed.
   */
  private preparedCommit: string | null = null
  /** The input records' keys as strings, one per distinct key. */
  private readonly keys = new RecordKeys()
  /**
   * Whether the source reads keys as bytes (`key: bytes()`): `Rec.key` then holds them as latin1 text (one character
   * per byte, any bytes there and back unchanged), and user code, sinks, dead letters and late records get Buffers.
   */
  private readonly bytesKeys: boolean
  /** The reader of the event-time field, compiled on first use. */
  private eventTimeField?: (value: unknown) => unknown

  /** How errors name the source's user code. */
  private readonly eventTimeFunction: string
  private readonly deserializer: string

  constructor(
    readonly sub: SubTopology,
    readonly partition: number,
    readonly store: TaskStore,
    private readonly env: TaskEnvironment,
  ) {
    this.id = `${sub.index}_${partition}`
    this.eventTimeFunction = `the event time function of ${sub.sourceTopic}`
    this.deserializer = `the deserializer of ${sub.sourceTopic}`
    this.bytesKeys = sub.source.kind === 'source' && sub.source.key === 'bytes'
    this.roots = sub.roots.map((node) => this.compile(node))
  }

  /**
   * The context user functions get: one object per task, updated before each call (functions are synchronous, so
   * no two calls see it at once); a function that keeps it past its call sees later records' values.
   */
  private readonly shared: { -readonly [K in keyof RecordContext<RecordKey>]: RecordContext<RecordKey>[K] } = { key: null, timestamp: 0, topic: '', partition: 0, offset: '', headers: {} }

  private context(rec: Rec): RecordContext<RecordKey> {
    const c = this.shared
    c.key = this.outputKey(rec.key)
    c.timestamp = rec.ts
    c.topic = this.sub.sourceTopic
    c.partition = this.partition
    c.offset = rec.input?.offset ?? ''
    c.headers = rec.headers
    return c
  }

  private forwardTo(children: readonly ProcessorNode[]): Processor {
    const processors = children.map((child) => this.compile(child))
    if (processors.length === 1) return processors[0]!
    return (rec) => this.branches(processors, rec)
  }

  /**
   * Runs each branch of a fan-out on the record, in order, waiting only for those that return a promise. A RecordError
   * in one branch makes a dead letter of the record for that branch alone: the branches after it still get the record
   * (as Kafka Streams' processing-exception handler set to CONTINUE drops a record at the failing node only), so
   * `stream.to(copy)` declared after an aggregation that cannot read a field still copies every record.
   */
  private branches(processors: readonly Processor[], rec: Rec, from = 0): void | Promise<void> {
    for (let i = from; i < processors.length; i++) {
      let pending: void | Promise<void>
      try {
        pending = processors[i]!(rec)
      } catch (error) {
        this.branchFailed(rec, error)
        continue
      }
      if (pending) return this.branchesAfter(pending, processors, rec, i + 1)
    }
  }

  /** branches from `from` on, once `pending` (the branch before) has settled or failed. */
  private async branchesAfter(pending: Promise<void>, processors: readonly Processor[], rec: Rec, from: number): Promise<void> {
    try {
      await pending
    } catch (error) {
      this.branchFailed(rec, error)
    }
    return this.branches(processors, rec, from)
  }

  /** A branch's RecordError: the dead letter holds the input record (or, for a result emitted on a commit, the result). */
  private branchFailed(rec: Rec, error: unknown): void {
    if (!(error instanceof RecordError)) throw error
    const input = rec.input
    if (input) this.deadLetter(input.key, this.inputValue(input), error, inputOrigin(this.sub.sourceTopic, this.partition, input), input.headers)
    else this.deadLetter(this.outputKey(rec.key), jsonOrText(rec.value), error, {})
  }

  /**
   * An operator's state layout as its commits name it, saying when its groups hold bytes keys: those are held as latin1
   * text and text keys as their UTF-8 decoding, so a key past ASCII (`é`) is another group in each, and a source
   * switched between `key: string()` and `key: bytes()` is refused at the start (`load`, as for another layout)
   * instead of splitting such keys' state in two.
   */
  private keyedLayout(layout: string): string {
    return this.bytesKeys ? `${layout} keyed by the bytes of each record key` : layout
  }

  /** A record's key as user code and the topics written get it: a bytes key (`bytesKeys`) as a Buffer of its bytes. */
  private outputKey(key: string | null): RecordKey | null {
    return this.bytesKeys && key !== null ? Buffer.from(key, 'latin1') : key
  }

  private compile(node: ProcessorNode): Processor {
    const next = node.kind === 'keyBy' ? () => {} : this.forwardTo(node.children)
    switch (node.kind) {
      case 'filter':
        return (rec) => (user(node, node.predicate, rec.value, this.context(rec)) ? next(rec) : undefined)
      case 'map':
        return (rec) => {
          const value = user(node, node.mapper, rec.value, this.context(rec))
          // A mapper that returns its input (a validation) leaves the record as it is: no copy.
          return next(value === rec.value ? rec : { ...rec, value, grouped: undefined })
        }
      case 'flatMap': {
        // Spread inside the call: a generator that throws while it is iterated is the user function failing.
        const all = (value: unknown, context: RecordContext<RecordKey>) => {
          const values = node.mapper(value, context) as Iterable<unknown> | null | undefined
          if (typeof values?.[Symbol.iterator] !== 'function') {
            throw new RecordError(ProcessorErrorCode.userFunction, `flatMap ${node.name} returned ${values === null ? 'null' : describeType(values)}, not an array or another iterable`)
          }
          // A string is iterable, by character: a mapper that returns one (a pipeline the compiler does not check;
          // the DSL's type refuses it) most likely meant one record, not one per character.
          if (typeof values === 'string' || values instanceof String) {
            throw new RecordError(ProcessorErrorCode.userFunction, `flatMap ${node.name} returned ${returnedOf(String(values))}, not an array or another iterable: a string would give one record per character (return [text] for one record)`)
          }
          return [...values]
        }
        return (rec) => {
          const values = user(node, all, rec.value, this.context(rec))
          return runAll(values.map((value) => () => next({ ...rec, value, grouped: undefined })), rec)
        }
      }
      case 'keyBy': {
        const topic = repartitionTopic(this.env.plan.applicationId, node.name)
        // Made once: a template literal in the call would concatenate a new string at every record.
        const operator = operatorName(node)
        return (rec) => {
          const key = user(node, node.selector, rec.value, this.context(rec))
          if (typeof key !== 'string') throw new RecordError(ProcessorErrorCode.userFunction, `${userFunctionName(node)} returned ${returnedOf(key)}, not a string${node.partOf === undefined ? '' : `: ${node.partOf} counts the strings its selector returns (String(...) a value to count it)`}`)
          this.outputs.push({ topic, key, value: repartitionValue(operator, topic, rec.value), timestamp: String(rec.ts), headers: rec.input?.headers })
        }
      }
      case 'enrich':
        return (rec) => {
          const key = user(node, node.lookup, rec.value, this.context(rec))
          const table = node.table.kind === 'static' ? node.table.entries : this.env.tables.get(node.table.name)
          // Table keys are text: a bytes key (the default lookup of a `key: bytes()` source) is looked up as its UTF-8 text.
          const found = key === null ? undefined : table?.get(typeof key === 'string' ? key : String(key))
          if (found === undefined && node.join === 'inner') return
          return next({ ...rec, value: user(node, node.joiner, rec.value, found), grouped: undefined })
        }
      case 'aggregate':
      case 'reduce': {
        const accumulation = accumulationOf(node)
        // Made once: a template literal in the call would concatenate a new string at every record.
        const operator = operatorName(node)
        const groups = new Groups(node.fields, operator, this.bytesKeys ? (key) => (key === null ? null : Buffer.from(key, 'latin1').toString('base64')) : undefined)
        this.stateLayouts.set(node.name, this.keyedLayout(operatorLayout(node, accumulation)))
        const grouping = (rec: Rec): Grouping => {
          if (rec.grouped !== undefined && rec.grouped.by === node.fields) return rec.grouped
          const grouped = groups.of(rec.key, node.fields ? groupFields(node, node.fields, rec.value, this.context(rec)) : undefined)
          checkGroupSize(grouped.group, operator)
          rec.grouped = grouped
          return grouped
        }
        if (node.window) return this.compileWindowed(node, accumulation, grouping, next)
        const op = new KeyedAggregate(accumulation, this.store.register(node.name, keyedEntryCodec(accumulation)))
        this.resets.push(() => op.reset())
        this.keyedOps.push({
          op,
          forward: async (results) => {
            for (const r of results) await this.guarded(node, { key: r.key, value: merged(r.fields, r.values), ts: Date.now(), headers: {}, group: r.group, fields: r.fields }, next)
          },
        })
        return (rec) => {
          const { group, fields } = grouping(rec)
          return op.process(rec.key, group, fields, accumulation.extract(rec.value), rec.ts)
        }
      }
      case 'updateState': {
        this.stateLayouts.set(node.name, this.keyedLayout(operatorLayout(node)))
        const state = this.store.register(node.name, PLAIN_CODEC)
        // The function gets a copy of the state and the state keeps a copy of what it returns (keptState): a function
        // that changes its argument and throws, or an operator further on that changes the value, changes no state.
        const apply = (rec: Rec, key: string, current: unknown): void | Promise<void> => {
          const updated = user(node, node.update, current === undefined ? undefined : storedCopy(current).copy, rec.value, this.context(rec))
          if (updated === undefined) {
            state.delete(key)
            return
          }
          state.put(key, keptState(node, key, updated))
          return next({ ...rec, value: updated, grouped: undefined })
        }
        const operator = operatorName(node)
        return (rec) => {
          const key = groupKey(rec.key)
          // The key names the group's changelog record, beside the state: a record whose key alone is too large for one
          // is a dead letter, as for an aggregation.
          checkGroupSize(key, operator)
          const current = state.get(key)
          return current instanceof Promise ? current.then((loaded) => apply(rec, key, loaded)) : apply(rec, key, current)
        }
      }
      case 'detect': {
        this.stateLayouts.set(node.name, this.keyedLayout(operatorLayout(node)))
        const detector = new Detector(node.detector, this.store.register(node.name, PLAIN_CODEC as EntryCodec<DetectorState>))
        return async (rec) => {
          const alert = await detector.check(rec.group ?? groupKey(rec.key), rec.value as WindowedValue, rec.fields ?? {})
          if (alert) {
            this.sinceCommit.alerts++
            await next({ ...rec, value: alert, grouped: undefined })
          }
        }
      }
      case 'sink': {
        const serializer = `the serializer of ${node.topic} (${node.value.name})`
        return (rec) => {
          let value: unknown
          let problem: string | null = null
          try {
            value = node.value.serialize(rec.value)
          } catch (error) {
            problem = `${serializer} threw: ${(error as Error)?.message ?? String(error)}`
          }
          // undefined too: a tombstone is asked for with null; undefined is most often a map that returned nothing, and
          // written as a tombstone it would delete the key from a compacted topic.
          if (problem === null && value !== null && typeof value !== 'string' && !Buffer.isBuffer(value)) {
            problem = `${serializer} returned ${describeType(value)}, not a Buffer, a string or null`
          }
          if (problem !== null) {
            // Output that cannot be written is a dead letter like bad input: left in the commit, it would fail it,
            // and the task would redo the same work forever.
            const origin = { ...inputOrigin(this.sub.sourceTopic, this.partition, rec.input), [HeaderNames.errorOperator]: node.name }
            this.deadLetter(this.outputKey(rec.key), jsonOrText(rec.value), new RecordError(ProcessorErrorCode.serializationFailed, problem), origin)
            return
          }
          // The input record's headers go with it as read (bytes, a repeated name's every value), as Kafka Streams
          // forwards them to its sinks (KIP-244); a window's or an aggregate's result comes from no one record and has none.
          this.outputs.push({ topic: node.topic, key: this.outputKey(rec.key), value: value as Buffer | string | null, timestamp: String(node.timestamp === 'event' ? rec.ts : Date.now()), headers: rec.input?.headers })
        }
      }
      case 'console':
        return (rec) => {
          this.console.push(user(node, node.format, rec.value, this.context(rec)))
        }
    }
  }

  private compileWindowed(
    node: Extract<ProcessorNode, { kind: 'aggregate' | 'reduce' }>,
    accumulation: Accumulation,
    group: (rec: Rec) => Grouping,
    next: Processor,
  ): Processor {
    const results: WindowResult[] = []
    const state = this.store.register(node.name, windowEntryCodec(node.window!, accumulation))
    const op = new WindowedAggregate({ window: node.window!, aggregations: accumulation, emit: node.emit }, state, (r) => results.push(r))
    // Read by index and cut once at the end: a window boundary closes the windows of every group at once, and taking
    // them one by one off the front (`shift`) moved the rest each time, quadratic in their number (minutes for the
    // 200,000 groups of 50,000 simulated devices, with the event loop never free).
    const drain = async () => {
      let taken = 0
      try {
        while (taken < results.length) {
          const r = results[taken++]!
          // A retraction (a session of emit mode update that a merge removed) names the window it takes back.
          const value = r.retracted
            ? merged(r.fields, { windowStart: r.windowStart, windowEnd: r.windowEnd, retracted: true })
            : merged(r.fields, { windowStart: r.windowStart, windowEnd: r.windowEnd }, r.values)
          if (!r.retracted) this.sinceCommit.windowsEmitted++
          await this.guarded(node, { key: r.key, value, ts: r.windowEnd - 1, headers: {}, group: r.group, fields: r.fields }, next)
        }
      } finally {
        results.splice(0, taken)
      }
    }
    const lateTopic = node.lateTopic ?? this.env.plan.lateTopic
    this.windowOps.set(node.name, { op, drain, idleBase: Number.NEGATIVE_INFINITY, layout: stateLayout(node.window!, formatMs) })
    this.windowed.push(op)
    this.resets.push(() => op.reset())
    const after = (rec: Rec, accepted: boolean): void | Promise<void> => {
      if (!accepted) this.late(rec, node.name, lateTopic, op.streamTime)
      if (results.length > 0) return drain()
    }
    const afterPending = async (rec: Rec, accepted: Promise<boolean>): Promise<void> => after(rec, await accepted)
    // One input object per operator, refilled for each record: a task handles one record at a time, and the
    // operator keeps nothing of it but the key and fields it stores.
    const input: WindowInput = { key: null, group: '', fields: {}, ts: 0, inputs: null }
    return (rec) => {
      const grouped = group(rec)
      input.key = rec.key
      input.group = grouped.group
      input.fields = grouped.fields
      input.ts = rec.ts
      input.inputs = accumulation.extract(rec.value)
      const accepted = op.process(input)
      return accepted instanceof Promise ? afterPending(rec, accepted) : after(rec, accepted)
    }
  }

  /**
   * A record refused by the windowed operator `operator` as late. The late-records topic gets one record per input
   * record: one late for several windowed operators (the iot pipeline's stats and averages) goes out once, its
   * `brook.late.operator` and `brook.late.stream-time` headers listing each operator and its stream time, comma-
   * separated in the order they refused it (operator names hold no comma). Records made inside the pipeline (a
   * window's results aggregated again) hold no input record, and go out each on its own.
   */
  private late(rec: Rec, operator: string, topic: string, streamTime: number): void {
    const previous = rec.input === undefined ? undefined : this.lateOutputs.get(topic)
    if (previous !== undefined && previous.input === rec.input) {
      const headers = previous.output.headers!
      if (!(headers[HeaderNames.lateOperator] as string).split(',').includes(operator)) {
        headers[HeaderNames.lateOperator] += `,${operator}`
        headers[HeaderNames.lateStreamTime] += `,${streamTime}`
      }
      return
    }
    this.sinceCommit.late++
    const headers: IHeaders = { ...rec.input?.headers, [HeaderNames.lateOperator]: operator, [HeaderNames.lateEventTime]: String(rec.ts), [HeaderNames.lateStreamTime]: String(streamTime) }
    const key = this.outputKey(rec.key)
    const value = cutToFit(key, rec.input ? this.inputValue(rec.input) : jsonOrText(rec.value), headers, HeaderNames.lateValueBytes)
    const output: OutputRecord = { topic, key, value, timestamp: String(Date.now()), headers }
    this.outputs.push(output)
    if (rec.input !== undefined) this.lateOutputs.set(topic, { input: rec.input, output })
  }

  /** Runs a result through downstream processors; a RecordError there becomes a dead letter holding the result. */
  private async guarded(node: ProcessorNode, rec: Rec, next: Processor): Promise<void> {
    try {
      await next(rec)
    } catch (error) {
      if (!(error instanceof RecordError)) throw error
      this.deadLetter(this.outputKey(rec.key), jsonOrText(rec.value), error, { [HeaderNames.errorOperator]: node.name })
    }
  }

  private deadLetter(key: Buffer | string | null, value: Buffer | string | null, error: RecordError, origin: Record<string, string>, recordHeaders?: IHeaders): void {
    this.sinceCommit.deadLetters++
    this.outputs.push({ topic: this.env.plan.deadLetterTopic, ...deadLetterMessage(key, value, error, origin, recordHeaders) })
  }

  private eventTime(value: unknown, message: KafkaMessage): number {
    const spec = this.sub.eventTime
    let ts: unknown
    if (spec.from === 'timestamp') ts = Number(message.timestamp)
    else if (spec.from === 'field') ts = (this.eventTimeField ??= pathReader(spec.field))(value)
    else ts = user(this.eventTimeFunction, spec.extract, value, { key: this.bytesKeys ? message.key : (message.key?.toString() ?? null), topic: this.sub.sourceTopic, partition: this.partition, offset: message.offset, headers: headersOf(message), recordTimestamp: Number(message.timestamp) })
    return checkedEventTime(ts)
  }

  private deserialized(message: KafkaMessage): unknown {
    const source = this.sub.source
    return source.kind === 'source' ? user(this.deserializer, deserialize, source.value, message.value) : message.value === null ? null : unpackPlain(message.value)
  }

  /**
   * An input record's value and event time (ms), read before processing it (event-time alignment looks at a record's
   * time before letting it through); null when either cannot be read, which processing then makes a dead letter.
   * Hand the result to `process`, so that the record is deserialized once.
   */
  peek(message: KafkaMessage): PeekedRecord | null {
    try {
      const value = this.deserialized(message)
      return { value, ts: this.eventTime(value, message) }
    } catch {
      return null
    }
  }

  /**
   * Processes one input record (at offset `message.offset`), with what `peek` read of it if it was peeked at; bad
   * input becomes a dead letter. Returns a promise only when processing had to wait.
   */
  process(message: KafkaMessage, peeked?: PeekedRecord): void | Promise<void> {
    this.env.metrics.recordsIn++
    // The BigInt is made only when asked for (at commits), not for every record.
    this.lastOffset = message.offset
    this.nextOffset = null
    try {
      const value = peeked ? peeked.value : this.deserialized(message)
      const ts = peeked ? peeked.ts : this.eventTime(value, message)
      this.lastEventTime = ts
      // Every property a record may get is there from the start: grouping sets `grouped` without changing its shape.
      const rec: Rec = { key: message.key === null ? null : this.bytesKeys ? message.key.toString('latin1') : this.keys.of(message.key), value, ts, headers: headersOf(message), input: message, grouped: undefined }
      const pending = this.roots.length === 1 ? this.roots[0]!(rec) : this.branches(this.roots, rec)
      if (pending) return this.settle(pending, message)
    } catch (error) {
      this.failed(message, error)
    }
  }

  /** A record whose processing had to wait: its failure is handled as `process` handles a synchronous one. */
  private async settle(pending: Promise<void>, message: KafkaMessage): Promise<void> {
    try {
      await pending
    } catch (error) {
      this.failed(message, error)
    }
  }

  private failed(message: KafkaMessage, error: unknown): void {
    if (!(error instanceof RecordError)) throw error
    // The key as read: bytes that are no UTF-8 text (refused as a key, RecordKeys) stay as they were.
    this.deadLetter(message.key, this.inputValue(message), error, inputOrigin(this.sub.sourceTopic, this.partition, message), message.headers)
  }

  /**
   * An input record's value as a late record or a dead letter holds it: the bytes as read from a source topic, and
   * from a repartition topic (whose values are the processor's internal msgpack) the value as JSON, so that every
   * record of the late-records and dead-letter topics is readable as its source wrote it.
   */
  private inputValue(message: KafkaMessage): Buffer | string | null {
    if (this.sub.source.kind === 'source' || message.value === null) return message.value
    try {
      return jsonOrText(unpackPlain(message.value))
    } catch {
      return message.value
    }
  }

  /** Called after each batch: remembers where stream time stood when records last arrived (for idle advancement). */
  markActive(now: number): void {
    this.lastRecordWallMs = now
    this.quietSinceMs = now
    this.confirmedMs = now
    for (const entry of this.windowOps.values()) entry.idleBase = entry.op.streamTime
  }

  /** Whether the task has windowed operators (only they have a stream time to advance). */
  get hasWindows(): boolean {
    return this.windowOps.size > 0
  }

  /**
   * Idle partitions: once the partition has been quiet for `idleTimeoutMs`, every windowed operator's stream time
   * becomes (its stream time when the last record arrived) + (the length of the quiet stretch), so windows become
   * due (`closeDue` closes them), and their alerts fire, although the partition is quiet. It never moves back when
   * records come again.
   *
   * Quiet means confirmed by the cluster, not merely that no record arrived: `look` is one look at the partition's
   * end offset (taken at `at`, wall-clock ms; null when the cluster could not be asked). A stretch counts only while
   * the looks keep saying the task has read everything, at most `maxGapMs` apart; a failed look, or a longer gap
   * (the cluster unreachable, a commit stuck in retries), starts the stretch again at the next good look. Records
   * that could not reach the partition, or this task, while the cluster was unreachable are thus never made late
   * by the outage's wall-clock time (Kafka Streams advances stream time from consumed records only).
   */
  advanceIdle(look: { at: number; caughtUp: boolean } | null, idleTimeoutMs: number, maxGapMs: number): void {
    if (look === null || !look.caughtUp) {
      this.confirmedMs = Number.NEGATIVE_INFINITY
      return
    }
    // Records arrived while the look was under way: they started a new stretch already.
    if (look.at < this.lastRecordWallMs) return
    if (look.at - this.confirmedMs > maxGapMs) this.quietSinceMs = look.at
    this.confirmedMs = look.at
    const quietFor = look.at - this.quietSinceMs
    if (quietFor < idleTimeoutMs) return
    for (const { op, idleBase } of this.windowOps.values()) {
      if (idleBase !== Number.NEGATIVE_INFINITY && idleBase + quietFor > op.streamTime) op.streamTime = idleBase + quietFor
    }
  }

  /** Whether a windowed operator has windows due at its stream time: `closeDue` has work (the runner calls it between records). */
  get hasDue(): boolean {
    for (let i = 0; i < this.windowed.length; i++) if (this.windowed[i]!.hasDue) return true
    return false
  }

  /**
   * Closes the due windows of at most `maxGroups` groups of one windowed operator that has some, and runs their
   * results downstream, where they may make a downstream operator's windows due in turn (the runner calls this until
   * `hasDue` is false).
   */
  async closeDue(maxGroups: number): Promise<void> {
    for (const { op, drain } of this.windowOps.values()) {
      if (!op.hasDue) continue
      await op.closeDue(maxGroups)
      await drain()
      return
    }
  }

  /**
   * Whether the next commit should come now rather than at the commit interval: it holds MAX_DIRTY_ENTRIES changed
   * groups or MAX_PENDING_OUTPUTS records for topics, so that a commit (and a restore's buffer of one) stays small.
   */
  get commitIsLarge(): boolean {
    return this.store.dirtyCount >= MAX_DIRTY_ENTRIES || this.outputs.length >= MAX_PENDING_OUTPUTS
  }

  /** Emit-mode update results and running aggregates: emitted at each commit. */
  private async emitUpdates(): Promise<void> {
    for (const { op, drain } of this.windowOps.values()) {
      await op.emitUpdates()
      await drain()
    }
    for (const { op, forward } of this.keyedOps) await forward(await op.changedResults())
  }

  /** Whether a commit would write anything. */
  get hasWork(): boolean {
    return this.outputs.length > 0 || this.console.length > 0 || this.store.dirtyCount > 0 || this.position !== this.committedPosition
  }

  /**
   * Takes the outputs to `topics` (repartition topics only: late records and dead letters stay, their counts go with
   * the commit) out of the next commit, for the runner to write ahead of it into the commit's transaction
   * (runtime/alignment.ts). Work dropped before the commit drops them with the transaction.
   */
  takeOutputs(topics: readonly string[]): OutputRecord[] {
    const taken: OutputRecord[] = []
    const kept: OutputRecord[] = []
    for (const o of this.outputs) (topics.includes(o.topic) ? taken : kept).push(o)
    if (taken.length > 0) this.outputs = kept
    return taken
  }

  /**
   * Everything the next commit writes; the task keeps it until `committed` (or drops it on `reset`). The state
   * changes and the marker (null before the task knows its position) carry the commit's id (runtime/changelog.ts).
   */
  async prepareCommit(): Promise<PreparedCommit> {
    await this.emitUpdates()
    const commit = randomBytes(COMMIT_ID_BYTES)
    const changes = await this.store.dirtyRecords(commit)
    let marker: StateRecord | null = null
    if (this.position !== null) {
      const streamTimes: Record<string, number> = {}
      const windows: Record<string, string> = {}
      for (const [name, { op, layout }] of this.windowOps) {
        streamTimes[name] = op.streamTime
        if (layout !== null) windows[name] = layout
      }
      const operators = Object.fromEntries(this.stateLayouts)
      marker = { key: POSITION_KEY, value: encodeMarker({ position: String(this.position), streamTimes, records: changes.length, windows, operators }, commit) }
    }
    this.preparedCommit = commit.toString('hex')
    return { outputs: this.outputs, console: this.console, changes, marker, commit: this.preparedCommit }
  }

  /** Adds the counts of the outputs just committed to the metrics. */
  private countCommitted(): void {
    for (const counter of COMMITTED_COUNTERS) this.env.metrics[counter] += this.sinceCommit[counter]
    this.preparedCommit = null
  }

  /** The commit is durable: forget its outputs, write the store locally. */
  async committed(prepared: PreparedCommit, checkpoint: number | null): Promise<void> {
    this.outputs = []
    this.lateOutputs.clear()
    this.countCommitted()
    this.dropUncommittedCounts()
    this.console = []
    if (prepared.marker !== null && checkpoint !== null) await this.store.commitLocal([...prepared.changes, prepared.marker], checkpoint)
    this.committedPosition = this.position
    this.lastCommitMs = Date.now()
  }

  private dropUncommittedCounts(): void {
    for (const counter of COMMITTED_COUNTERS) this.sinceCommit[counter] = 0
  }

  /**
   * Throws a TopologyError (BAD_STATE, `mismatch` saying why) when an operator's state was written for another layout
   * than it has now (`saved`: the layouts in the last commit's marker; `current`: each operator's now, null for none).
   * Two kinds are checked at each start: a windowed operator's window size or advance (its slices would be read as
   * windows of the new size, and counted wrong; Kafka Streams, likewise, needs an application reset for such a
   * change), and what a stateful operator keeps (another kind of operator of its name, or an aggregate's other
   * aggregations: a `max` added before a `sum` read the sum's numbers as the max; outputs that keep the layout, an
   * `avg` beside a `sum` of the same field or a `count`, go on).
   */
  private checkLayouts(saved: Record<string, string> | undefined, current: Iterable<readonly [string, string | null]>, mismatch: (name: string, before: string, now: string) => string): void {
    if (saved === undefined) return
    for (const [name, layout] of current) {
      const before = saved[name]
      if (layout === null || before === undefined || before === layout) continue
      throw new TopologyError(`task ${this.id}: ${mismatch(name, before, layout)}. ${RENAME_OR_RESET}`, ProcessorErrorCode.badState)
    }
  }

  /** Restores in-memory state from the store (after open or restore): position, stream times, the cache. */
  async load(): Promise<void> {
    for (const reset of this.resets) reset()
    this.outputs = []
    this.lateOutputs.clear()
    this.console = []
    this.store.discardCache()
    const saved = await this.store.position()
    // A hopping window that advances by its size was saved under its own name before it took the tumbling one's.
    const savedWindows = saved?.windows && Object.fromEntries(Object.entries(saved.windows).map(([name, layout]) => [name, layout.replace(/^hopping (.+) every \1$/, 'tumbling $1')]))
    this.checkLayouts(
      savedWindows,
      [...this.windowOps].map(([name, { layout }]) => [name, layout] as const),
      (name, before, now) => `operator ${name} holds state for windows ${before}, but its window is now ${now}: state kept in slices of one size does not make windows of another`,
    )
    this.checkLayouts(saved?.operators, this.stateLayouts, (name, before, now) => `operator ${name} holds the state of ${before}, but is now ${now}: the state of one would be read as the other's`)
    // A marker written before the operators were named in it names its windowed ones (`windows`) only.
    this.operatorsDropped = Object.keys(saved?.operators ?? savedWindows ?? {}).filter((name) => !this.stateLayouts.has(name))
    // A commit whose answer was lost but which went through is where the task restarts: its outputs are in the topics.
    if (saved !== undefined && saved.commit === this.preparedCommit) this.countCommitted()
    this.preparedCommit = null
    this.dropUncommittedCounts()
    this.lastOffset = saved ? (BigInt(saved.position) - 1n).toString() : null
    this.nextOffset = null
    this.committedPosition = this.position
    for (const [name, windowed] of this.windowOps) {
      windowed.op.streamTime = saved?.streamTimes[name] ?? Number.NEGATIVE_INFINITY
      windowed.idleBase = windowed.op.streamTime
    }
    // The windowed operators' close-time indexes are in the store, which rebuilds them if a restore made them stale.
    await this.store.warm()
    this.lastRecordWallMs = Date.now()
    this.quietSinceMs = this.lastRecordWallMs
    this.confirmedMs = this.lastRecordWallMs
    this.lastCommitMs = Date.now()
  }
}

/**
 * The latest event time taken: Date's own limit (8.64e15 ms, the year 275760). Window arithmetic on doubles stays
 * exact up to 2^53, which its windows' ends and close times stay under; a larger number (a timestamp in ns, 1e300)
 * would move stream time where every later record, and the record itself, is late.
 */
export const MAX_EVENT_TIME_MS = 8_640_000_000_000_000

/** `ts` as an event time in whole ms; a RecordError (BAD_TIMESTAMP) for anything but a number from 0 to MAX_EVENT_TIME_MS. */
export function checkedEventTime(ts: unknown): number {
  if (typeof ts !== 'number' || !Number.isFinite(ts) || ts < 0 || ts > MAX_EVENT_TIME_MS) {
    // A number as itself: JSON.stringify shows NaN and Infinity (JSON.parse's 1e400) as null.
    const shown = typeof ts === 'number' ? String(ts) : jsonOrText(ts).slice(0, 40)
    throw new RecordError(ProcessorErrorCode.badTimestamp, `event time ${shown} is not a timestamp in ms since the epoch`)
  }
  return Math.floor(ts)
}
