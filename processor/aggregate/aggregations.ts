/**
 * Mergeable aggregations for windowed and keyed state. An aggregation is declared by name in the DSL
 * (`{ count: count(), avg: avg('value'), p99: percentile('value', 0.99) }`) and compiled into one accumulator whose
 * parts are shared: avg, sum, variance and stddev of one field use one moments state; p50/p95/p99 of one field use
 * one sketch. Every part is mergeable, which is what lets hopping windows aggregate per slice and merge slices when
 * a window is emitted, and what makes a restored accumulator equal to an uninterrupted one.
 *
 *   part      state (slots of the numbers)  add            merge
 *   count     n (shared by every part)      n += 1         n += n'
 *   moments   sum, mean, m2                 Welford        Chan et al. (parallel variance)
 *   min/max   value (+/-Infinity if n = 0)  compare        compare
 *   first     ts, value (ts +Infinity)      earlier ts     earlier ts (ties: the accumulator merged into)
 *   last      ts, value (ts -Infinity)      later ts (>=)  later ts (ties: the one merged in)
 *   sketch    DDSketch (sketch.ts)          accept         bin counts add
 *
 * A percentile is the sketch's value clamped to the min and max of the same input (parts of their own, shared with
 * the min and max outputs of that input when the spec has them): the sketch answers with a bin's representative
 * value, up to 1% away from the values themselves, so unclamped it could fall below the smallest value or above the
 * largest, and a one-value window would not give that value back. The sketch's binary form keeps no min or max of
 * its own; these parts travel as numbers with the rest of the accumulator.
 *
 * An accumulator is one Float64Array of those numbers (slot 0 is n) and the sketches beside it: adding a record
 * allocates nothing and touches one small block of memory. Every record adds to every part (its inputs are all read
 * before any changes), so one n serves them all, and n = 0 is what "no value" means for min, max, first and last.
 *
 * Results: avg is sum / n (so a one-slice window gives exactly the naive average), or the value itself when all the
 * values are equal (sum / n may miss it by a unit in the last place); variance and stddev are the
 * sample statistics (n - 1 in the denominator, as SQL's STDDEV and Spark's stddev), null below two values.
 */
import { jsonOrText, ProcessorErrorCode, RecordError, TopologyError } from '../errors.js'
import { INTERNAL_VALUE_MAX_BYTES, keptCopy, packPlain, storedCopy, type ByteReader, type ByteWriter } from '../state/codec.js'
import { mergeSketch, newSketch, quantile, readSketch, writeSketch, type Sketch } from './sketch.js'

/**
 * Where a numeric input comes from: a field path of the value (`'value'`, `'reading.value'`) or a function returning
 * a number (null or undefined for none: the record is a MISSING_FIELD dead letter). A function returning anything else
 * (`(r: Reading) => r.deviceId`, a string) is a type error; one whose parameter has no type (`(r) => r.valeu`) takes
 * the value as `any`, unchecked, as a stream without a value type does.
 */
export type ValueSelector = string | NumberSelector

/** A value function of an aggregation: the record's number, or null or undefined when it has none. */
export type NumberSelector = (value: any) => number | null | undefined

export type AggregationKind = 'count' | 'sum' | 'avg' | 'min' | 'max' | 'variance' | 'stddev' | 'first' | 'last' | 'percentile'

/**
 * One named output of an aggregation; plain data, built by the helpers below. `Field` is the type of its field as
 * written (`'value'`, not string), so that an aggregate can check it against its stream's values (AggregationsOf);
 * count's is never (it reads no field). `Kind` is the helper's kind as written (`'avg'`), so that an aggregate's
 * results are typed output by output (AggregationResults).
 */
export interface AggregationSpec<Field extends ValueSelector = ValueSelector, Kind extends AggregationKind = AggregationKind> {
  readonly kind: Kind
  readonly field?: Field
  /** percentile only: the quantile in [0, 1]. */
  readonly quantile?: number
}

/** The outputs of an aggregate operator, by the field names they get in each result. */
export type AggregationsSpec = Readonly<Record<string, AggregationSpec>>

/** Whether T is `any`. */
type IsAny<T> = 0 extends 1 & T ? true : false
/** One less than each index: how deep NumericPath may still go (field paths of up to five names). */
type Shallower = [never, 0, 1, 2, 3, 4]

/**
 * The field paths of values of type V that hold numbers, as an aggregation's field names them (`'value'`,
 * `'reading.value'`; a number that may be null or undefined too: such a record is a dead letter, MISSING_FIELD).
 * Loose where the type says nothing: any string for a V that is any or unknown (a stream of a JavaScript pipeline,
 * `stream('topic')` without a type), and any path below a field that is any or unknown or under an index signature.
 */
export type NumericPath<V> = IsAny<V> extends true ? string : unknown extends V ? string : PathsBelow<V, 4>

type PathsBelow<V, Depth extends number> = [Depth] extends [never]
  ? never
  : V extends (...args: never[]) => unknown
    ? never
    : V extends object
      ? { [K in keyof V & string]-?: PathTo<K, V[K], Depth> }[keyof V & string]
      : never

type PathTo<K extends string, T, Depth extends number> =
  IsAny<T> extends true
    ? K | `${K}.${string}`
    : unknown extends T
      ? K | `${K}.${string}`
      : [NonNullable<T>] extends [number]
        ? K
        : `${K}.${PathsBelow<NonNullable<T>, Shallower[Depth]>}`

/**
 * The aggregations an aggregate of values of type V takes: each field-based one (sum, avg, min, max, variance,
 * stddev, first, last, percentile) names a numeric field of V (NumericPath) or selects its input with a function;
 * count reads no field. `sum('unknown')` on values without a numeric `unknown` is a type error in the pipeline.
 */
export type AggregationsOf<V> = Readonly<Record<string, AggregationSpec<NumericPath<V> | NumberSelector>>>

/**
 * The type an output has in a result: a number, and for variance and stddev null below two values (n - 1 is 0). Every
 * result holds at least one record (a group or window exists from its first record; a session's retraction holds no
 * outputs at all), so no other output is null. A kind that is not known as written (a spec typed AggregationSpec)
 * may be null.
 */
export type AggregationOutput<Kind extends AggregationKind> = Kind extends 'variance' | 'stddev' ? number | null : number

/**
 * The outputs an aggregate's results carry, by name, for the aggregations as written:
 * `{ n: count(), p99: percentile('value', 0.99), sd: stddev('value') }` gives `{ n: number; p99: number; sd: number | null }`.
 */
export type AggregationResults<A> = {
  -readonly [Name in keyof A & string]: A[Name] extends { readonly kind: infer Kind extends AggregationKind } ? AggregationOutput<Kind> : never
}

export const count = (): AggregationSpec<never, 'count'> => ({ kind: 'count' })
export const sum = <F extends ValueSelector>(field: F): AggregationSpec<F, 'sum'> => ({ kind: 'sum', field })
export const avg = <F extends ValueSelector>(field: F): AggregationSpec<F, 'avg'> => ({ kind: 'avg', field })
export const min = <F extends ValueSelector>(field: F): AggregationSpec<F, 'min'> => ({ kind: 'min', field })
export const max = <F extends ValueSelector>(field: F): AggregationSpec<F, 'max'> => ({ kind: 'max', field })
export const variance = <F extends ValueSelector>(field: F): AggregationSpec<F, 'variance'> => ({ kind: 'variance', field })
export const stddev = <F extends ValueSelector>(field: F): AggregationSpec<F, 'stddev'> => ({ kind: 'stddev', field })
/** The value of the record with the earliest event time. */
export const first = <F extends ValueSelector>(field: F): AggregationSpec<F, 'first'> => ({ kind: 'first', field })
/** The value of the record with the latest event time. */
export const last = <F extends ValueSelector>(field: F): AggregationSpec<F, 'last'> => ({ kind: 'last', field })
/** The q-quantile (0 <= q <= 1) from a DDSketch with 1% relative accuracy. */
export function percentile<F extends ValueSelector>(field: F, q: number): AggregationSpec<F, 'percentile'> {
  if (!(q >= 0 && q <= 1)) throw new TopologyError(`percentile: quantile ${q} is not within [0, 1]`)
  return { kind: 'percentile', field, quantile: q }
}

/**
 * The MISSING_FIELD RecordError for a value without the field `path`; a null value (a tombstone, which Kafka Streams'
 * aggregations skip) says so.
 */
function missingField(value: unknown, path: string): RecordError {
  return new RecordError(ProcessorErrorCode.missingField, value === null ? `value is null (a tombstone), so it has no field '${path}'` : `value has no field '${path}'`)
}

/** Reads a field path of a value: `'a.b'` is value.a.b. Missing is a RecordError with code MISSING_FIELD. */
export function readPath(value: unknown, path: string): unknown {
  let at: unknown = value
  for (const part of path.split('.')) {
    if (at === null || typeof at !== 'object' || !(part in (at as object))) throw missingField(value, path)
    at = (at as Record<string, unknown>)[part]
  }
  return at
}

/** A reader of a field path (a plain property access when the path has no dots). */
export function pathReader(path: string): (value: unknown) => unknown {
  if (path.includes('.')) return (value) => readPath(value, path)
  return (value) => {
    if (value === null || typeof value !== 'object' || !(path in (value as object))) throw missingField(value, path)
    return (value as Record<string, unknown>)[path]
  }
}

/**
 * A value function of the DSL (`sum((r) => r.reading.value)`); whatever it throws becomes a RecordError
 * (USER_FUNCTION_FAILED) naming the output that first used it, so the record is dead-lettered before state changes.
 */
function functionReader(selector: (value: any) => unknown, output: string): (value: unknown) => unknown {
  return (value) => {
    try {
      return selector(value)
    } catch (error) {
      if (error instanceof RecordError) throw error
      throw new RecordError(ProcessorErrorCode.userFunction, `the value function of '${output}' threw: ${(error as Error)?.message ?? String(error)}`)
    }
  }
}

/** A finite number, or a RecordError (MISSING_FIELD or NOT_NUMERIC) naming what was read. */
function checkNumber(raw: unknown, describe: string): number {
  if (typeof raw === 'number' && Number.isFinite(raw)) return raw
  if (raw === undefined) throw new RecordError(ProcessorErrorCode.missingField, `value has no ${describe}`)
  if (raw === null) throw new RecordError(ProcessorErrorCode.missingField, `${describe} is null`)
  throw new RecordError(ProcessorErrorCode.notNumeric, notNumberReason(describe, raw, 80))
}

/**
 * Why `raw` (not a finite number) is refused, showing it: "<describe> is not a number: "hot"", or "... is not a
 * finite number: Infinity" for what JSON.parse makes of 1e400 (which JSON.stringify would show as null).
 */
export function notNumberReason(describe: string, raw: unknown, maxChars: number): string {
  return typeof raw === 'number' ? `${describe} is not a finite number: ${raw}` : `${describe} is not a number: ${jsonOrText(raw).slice(0, maxChars)}`
}

const PartKind = { count: 0, moments: 1, min: 2, max: 3, first: 4, last: 5, sketch: 6 } as const
type PartKind = (typeof PartKind)[keyof typeof PartKind]
/** A part's kind in an accumulator's layout (Accumulation.layout). */
const PART_NAMES: Record<PartKind, string> = { 0: 'count', 1: 'moments', 2: 'min', 3: 'max', 4: 'first', 5: 'last', 6: 'sketch' }

interface Part {
  kind: PartKind
  /** Index into the extracted values; -1 for count. */
  input: number
  /** The part's first slot among the accumulator's numbers (moments: sum, mean, m2), or its sketch's index. */
  at: number
}

/** One accumulator of compiled aggregations: its numbers (slot 0 is n) and its sketches, in part order. */
export interface Accumulator {
  readonly v: Float64Array
  readonly sketches: Sketch[]
}

/**
 * What a stateful operator needs from an aggregation: read a record's inputs once (throwing RecordError before any
 * state changes), fold them into an accumulator, merge accumulators (associatively: slices and restored state rely
 * on it), read the named results, and write an accumulator in binary (state/codec.ts) and read it back.
 */
export interface Accumulation<I = any, A = any> {
  extract(value: unknown): I
  create(): A
  /** Returns the new accumulator (it may be the same object, mutated). */
  add(acc: A, input: I, ts: number): A
  /** Returns the merge (it may be `into`, mutated); `from` is not changed. */
  merge(into: A, from: A): A
  result(acc: A): Record<string, unknown>
  write(out: ByteWriter, acc: A): void
  read(from: ByteReader): A
  /** The oldest state format whose accumulators `read` takes (their layout changed then); absent: every format. */
  readonly oldestFormat?: number
  /**
   * What `write` lays out, in words (`moments of field 'value', max of field 'value'`), saved with each commit (the
   * marker's `operators`): accumulators written for one layout do not read as another's, so a start whose operator
   * has another is refused (runtime/task.ts). Absent where `read` takes whatever was written (a reduce's values).
   */
  readonly layout?: string
  /**
   * Present where an accumulator grows with what it takes (a reduce's value may be a collection): the bytes of msgpack
   * an accumulator keeps (`ofState`) and that an extracted input adds (`ofInput`), so that a windowed aggregation can
   * refuse a record that would take its group's open windows past what one changelog record holds
   * (windows/windowed-aggregate.ts). Absent where accumulators are bounded (CompiledAggregations).
   */
  readonly sizes?: { readonly ofState: (acc: A) => number; readonly ofInput: (input: I) => number }
}

/** Merges accumulators into a fresh one (none of them is changed). */
export function mergeAll<A>(accumulation: Accumulation<unknown, A>, accs: Iterable<A>): A {
  let out = accumulation.create()
  for (const acc of accs) out = accumulation.merge(out, acc)
  return out
}

/**
 * Spark's reduce: an associative (and, as hopping slices merge in time order while restores do not care, better
 * commutative) function of two values. The result field is `value`.
 *
 * The state never shares an object with user code (storedCopy, as for updateStateByKey): the accumulator keeps a
 * copy of each input (a branch beside the reduce that changes the record changes nothing here), the function gets a
 * copy of the accumulated value (one that changes its first argument in place and then throws leaves the state as it
 * was; a hopping window's slices stay their own when merged), and each result is a copy (an operator after the
 * reduce that changes it changes no state). An input, or a reduced value, that cannot be stored, or whose msgpack
 * is above INTERNAL_VALUE_MAX_BYTES, is a dead letter (SERIALIZATION_FAILED) before state changes.
 */
export function reduction<V>(reducer: (a: V, b: V) => V): Accumulation<{ v: V; bytes: number }, { v: V } | null> {
  // An async reducer (a pipeline run without type checks) would make its Promise the group's state, and one that
  // rejects a rejection no one handles, which ends the process: it is caught, and the task fails as for a throw.
  const reduce = (a: V, b: V): V => {
    const reduced = reducer(a, b)
    if (typeof (reduced as { then?: unknown } | null)?.then === 'function') {
      void (reduced as PromiseLike<unknown>).then(undefined, () => {})
      throw new Error('the reduce function returned a Promise: user functions run synchronously')
    }
    return reduced
  }
  const copy = (value: V): V => storedCopy(value).copy
  /**
   * A copy of `value` to keep as the state (keptCopy), and its msgpack size. Errors: RecordError SERIALIZATION_FAILED,
   * before the state changes.
   */
  const kept = (value: V, what: string): { copy: V; bytes: number } =>
    keptCopy(value, {
      unstorable: (why) => `${what} cannot be kept as the reduce's state: ${why}`,
      tooLarge: (bytes) => `${what} takes ${bytes} bytes of msgpack, above the ${INTERNAL_VALUE_MAX_BYTES} a changelog record may take as the reduce's state`,
    })
  /** The msgpack size of each accumulator made or read here, as far as known (merges and restored ones are weighed when asked). */
  const sizeOf = new WeakMap<{ v: V }, number>()
  const made = (value: V, bytes: number): { v: V } => {
    const acc = { v: value }
    sizeOf.set(acc, bytes)
    return acc
  }
  return {
    extract: (value) => {
      const input = kept(value as V, 'the value')
      return { v: input.copy, bytes: input.bytes }
    },
    create: () => null,
    // The reduced value is checked as the input is: one that grows past the limit, or that the store cannot keep (a
    // Map, a BigInt past 64 bits), is the record's dead letter, and the state stays as it was.
    add: (acc, input) => {
      if (acc === null) return made(input.v, input.bytes)
      const reduced = kept(reduce(copy(acc.v), input.v), 'the reduced value')
      return made(reduced.copy, reduced.bytes)
    },
    // `into` is the merge's own accumulator (made by create, as `add` and `merge` mutate the first): only `from`, a
    // window's slice, is copied.
    merge: (into, from) => (from === null ? into : into === null ? { v: copy(from.v) } : { v: reduce(into.v, copy(from.v)) }),
    result: (acc) => ({ value: acc === null ? null : copy(acc.v) }),
    write: (out, acc) => out.plain(acc),
    read: (from) => from.plain() as { v: V } | null,
    sizes: {
      ofState: (acc) => {
        if (acc === null) return 0
        let bytes = sizeOf.get(acc)
        if (bytes === undefined) sizeOf.set(acc, (bytes = packPlain(acc.v).length))
        return bytes
      },
      ofInput: (input) => input.bytes,
    },
  }
}

const PART_OF: Record<AggregationKind, PartKind> = {
  count: PartKind.count,
  sum: PartKind.moments,
  avg: PartKind.moments,
  variance: PartKind.moments,
  stddev: PartKind.moments,
  min: PartKind.min,
  max: PartKind.max,
  first: PartKind.first,
  last: PartKind.last,
  percentile: PartKind.sketch,
}

const selectorIds = new WeakMap<(value: any) => unknown, number>()
let nextSelectorId = 0
function selectorKey(selector: ValueSelector): string {
  if (typeof selector === 'string') return `field:${selector}`
  let id = selectorIds.get(selector)
  if (id === undefined) selectorIds.set(selector, (id = nextSelectorId++))
  return `fn:${id}`
}

/** How many numbers a part keeps in the accumulator. */
const SLOTS: Record<PartKind, number> = { [PartKind.count]: 0, [PartKind.moments]: 3, [PartKind.min]: 1, [PartKind.max]: 1, [PartKind.first]: 2, [PartKind.last]: 2, [PartKind.sketch]: 0 }

/**
 * An aggregations spec compiled into shared parts. `extract` reads every input a record needs once (throwing
 * RecordError for a bad record, before any state changes); `add` and `merge` mutate the first accumulator.
 */
export class CompiledAggregations implements Accumulation<number[], Accumulator> {
  private readonly selectors: ValueSelector[] = []
  private readonly readers: ((value: unknown) => unknown)[] = []
  private readonly described: string[] = []
  private readonly scratch: number[] = []
  private readonly parts: Part[] = []
  /**
   * The parts that read an input (all but count, whose n every record adds to anyway): `add` walks these, as
   * `inputs[-1]` is no array element but a property lookup, which takes V8 off its fast path at every record.
   */
  private readonly inputParts: Part[]
  private readonly outputs: { name: string; kind: AggregationKind; part: Part; quantile: number; bounds: { min: Part; max: Part } | null }[] = []
  /** Numbers per accumulator, n included; and what a fresh accumulator holds. */
  private readonly slots: number
  readonly oldestFormat: number
  readonly layout: string
  private readonly initial: Float64Array
  private readonly sketchCount: number

  constructor(readonly spec: AggregationsSpec) {
    const inputIndex = new Map<string, number>()
    const partIndex = new Map<string, Part>()
    if (Object.keys(spec).length === 0) throw new TopologyError('an aggregation needs at least one output')
    let slots = 1
    let sketchCount = 0
    /** The part of `kind` over `input`, shared by every output that needs it. */
    const partOf = (kind: PartKind, input: number): Part => {
      const key = `${kind}:${input}`
      let part = partIndex.get(key)
      if (part === undefined) {
        part = { kind, input, at: kind === PartKind.sketch ? sketchCount++ : slots }
        slots += SLOTS[kind]
        this.parts.push(part)
        partIndex.set(key, part)
      }
      return part
    }
    for (const [name, output] of Object.entries(spec)) {
      let input = -1
      if (output.kind !== 'count') {
        if (output.field === undefined) throw new TopologyError(`aggregation '${name}' (${output.kind}) needs a field`)
        const key = selectorKey(output.field)
        input = inputIndex.get(key) ?? -1
        if (input < 0) {
          input = this.selectors.push(output.field) - 1
          const selector = output.field
          this.readers.push(typeof selector === 'string' ? pathReader(selector) : functionReader(selector, name))
          this.described.push(typeof selector === 'string' ? `field '${selector}'` : 'selected value')
          inputIndex.set(key, input)
        }
      }
      this.outputs.push({ name, kind: output.kind, part: partOf(PART_OF[output.kind], input), quantile: output.quantile ?? 0, bounds: null })
    }
    const declaredParts = this.parts.length
    // After every declared part, so that the bounds of percentiles change the layout only of specs without them.
    for (const output of this.outputs) {
      if (output.kind === 'percentile') output.bounds = { min: partOf(PartKind.min, output.part.input), max: partOf(PartKind.max, output.part.input) }
    }
    this.slots = slots
    this.inputParts = this.parts.filter((part) => part.input >= 0)
    // Format 2 gave percentiles min and max parts; a spec that had them anyway reads format-1 accumulators as they are.
    this.oldestFormat = this.parts.length > declaredParts ? 2 : 1
    // A count part takes no slot of its own (n is every accumulator's first number): outputs of count come and go freely.
    const kept = this.parts.filter((part) => part.kind !== PartKind.count)
    this.layout = kept.length === 0 ? 'the count only' : kept.map((part) => `${PART_NAMES[part.kind]} of ${this.described[part.input]}`).join(', ')
    this.sketchCount = sketchCount
    this.initial = new Float64Array(slots)
    for (const part of this.parts) {
      if (part.kind === PartKind.min || part.kind === PartKind.first) this.initial[part.at] = Number.POSITIVE_INFINITY
      if (part.kind === PartKind.max || part.kind === PartKind.last) this.initial[part.at] = Number.NEGATIVE_INFINITY
    }
  }

  /**
   * The numeric inputs of one record value, in selector order. The array is reused by the next call: callers fold
   * it into an accumulator before they extract the next record's inputs.
   */
  extract(value: unknown): number[] {
    const values = this.scratch
    for (let i = 0; i < this.readers.length; i++) values[i] = checkNumber(this.readers[i]!(value), this.described[i]!)
    return values
  }

  create(): Accumulator {
    const sketches: Sketch[] = []
    for (let i = 0; i < this.sketchCount; i++) sketches.push(newSketch())
    return { v: this.initial.slice(), sketches }
  }

  add(acc: Accumulator, inputs: readonly number[], ts: number): Accumulator {
    const v = acc.v
    const n = v[0]! + 1
    v[0] = n
    const parts = this.inputParts
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i]!
      const at = part.at
      const x = inputs[part.input]!
      switch (part.kind) {
        case PartKind.moments: {
          v[at] += x
          const delta = x - v[at + 1]!
          v[at + 1] += delta / n
          v[at + 2] += delta * (x - v[at + 1]!)
          break
        }
        case PartKind.min:
          if (x < v[at]!) v[at] = x
          break
        case PartKind.max:
          if (x > v[at]!) v[at] = x
          break
        case PartKind.first:
          if (ts < v[at]!) {
            v[at] = ts
            v[at + 1] = x
          }
          break
        case PartKind.last:
          if (ts >= v[at]!) {
            v[at] = ts
            v[at + 1] = x
          }
          break
        case PartKind.sketch:
          acc.sketches[at]!.accept(x)
          break
      }
    }
    return acc
  }

  merge(into: Accumulator, from: Accumulator): Accumulator {
    const a = into.v
    const b = from.v
    const na = a[0]!
    const nb = b[0]!
    if (nb === 0) return into
    const n = na + nb
    for (const part of this.parts) {
      const at = part.at
      switch (part.kind) {
        case PartKind.moments: {
          if (na === 0) {
            a[at] = b[at]!
            a[at + 1] = b[at + 1]!
            a[at + 2] = b[at + 2]!
            break
          }
          const delta = b[at + 1]! - a[at + 1]!
          a[at] = a[at]! + b[at]!
          a[at + 1] = a[at + 1]! + (delta * nb) / n
          a[at + 2] = a[at + 2]! + b[at + 2]! + (delta * delta * na * nb) / n
          break
        }
        case PartKind.min:
          if (b[at]! < a[at]!) a[at] = b[at]!
          break
        case PartKind.max:
          if (b[at]! > a[at]!) a[at] = b[at]!
          break
        case PartKind.first:
          if (b[at]! < a[at]!) {
            a[at] = b[at]!
            a[at + 1] = b[at + 1]!
          }
          break
        case PartKind.last:
          if (b[at]! >= a[at]!) {
            a[at] = b[at]!
            a[at + 1] = b[at + 1]!
          }
          break
        case PartKind.sketch:
          mergeSketch(into.sketches[at]!, from.sketches[at]!)
          break
      }
    }
    a[0] = n
    return into
  }

  /** The named outputs of an accumulator. */
  result(acc: Accumulator): Record<string, number | null> {
    const out: Record<string, number | null> = {}
    const v = acc.v
    const n = v[0]!
    for (const { name, kind, part, quantile: q, bounds } of this.outputs) {
      const at = part.at
      switch (kind) {
        case 'count':
          out[name] = n
          break
        case 'sum':
          out[name] = v[at]!
          break
        case 'avg':
          // Values all equal (no spread): their running mean is that value exactly, where sum / n can miss it by a
          // unit in the last place and fall outside [min, max] (three of 1019.7 sum to 3059.1000000000004).
          out[name] = n === 0 ? null : v[at + 2] === 0 ? v[at + 1]! : v[at]! / n
          break
        case 'variance':
        case 'stddev': {
          if (n < 2) {
            out[name] = null
            break
          }
          const sampleVariance = v[at + 2]! / (n - 1)
          out[name] = kind === 'variance' ? sampleVariance : Math.sqrt(sampleVariance)
          break
        }
        case 'min':
        case 'max':
          out[name] = n === 0 ? null : v[at]!
          break
        case 'first':
        case 'last':
          out[name] = n === 0 ? null : v[at + 1]!
          break
        case 'percentile': {
          const value = quantile(acc.sketches[at]!, q)
          const lowest = v[bounds!.min.at]!
          const highest = v[bounds!.max.at]!
          // The ends are the min and max themselves, exact (the sketch would be up to 1% off them).
          out[name] = value === null ? null : q === 0 ? lowest : q === 1 ? highest : Math.min(Math.max(value, lowest), highest)
          break
        }
      }
    }
    return out
  }

  /** The numbers as doubles (n first), then each sketch. */
  write(out: ByteWriter, acc: Accumulator): void {
    const v = acc.v
    for (let i = 0; i < v.length; i++) out.f64(v[i]!)
    const sketches = acc.sketches
    for (let i = 0; i < sketches.length; i++) writeSketch(out, sketches[i]!)
  }

  read(from: ByteReader): Accumulator {
    const v = new Float64Array(this.slots)
    for (let i = 0; i < this.slots; i++) v[i] = from.f64()
    const sketches: Sketch[] = []
    for (let i = 0; i < this.sketchCount; i++) sketches.push(readSketch(from))
    return { v, sketches }
  }
}
