/**
 * Mergeable aggregations for windowed and keyed state. An aggregation is declared by name in the DSL
 * (`{ count: count(), avg: avg('value'), p99: percentile('value', 0.99) }`) and compiled into one accumulator whose
 * parts are shared: avg, sum, variance and stddev of one field use one moments state; p50/p95/p99 of one field use
 * one sketch. Every part is mergeable, which is what lets hopping windows aggregate per slice and merge slices when
 * a window is emitted, and what makes a restored accumulator equal to an uninterrupted one.
 *
 *   part      state                         add            merge
 *   count     n                             n += 1         n += n'
 *   moments   [n, sum, mean, m2]            Welford        Chan et al. (parallel variance)
 *   min/max   value | null                  compare        compare
 *   first     [ts, value] | null            earlier ts     earlier ts (ties: the accumulator merged into)
 *   last      [ts, value] | null            later ts (>=)  later ts (ties: the one merged in)
 *   sketch    DDSketch (sketch.ts)          accept         bin counts add
 *
 * Results: avg is sum / n (so a one-slice window gives exactly the naive average); variance and stddev are the
 * sample statistics (n - 1 in the denominator, as SQL's STDDEV and Spark's stddev), null below two values.
 */
import { ProcessorErrorCode, RecordError, TopologyError } from '../errors.js'
import { decodeSketch, encodeSketch, mergeSketch, newSketch, quantile, type EncodedSketch, type Sketch } from './sketch.js'

/** Where a numeric input comes from: a field path of the value (`'value'`, `'reading.value'`) or a function. */
export type ValueSelector = string | ((value: any) => unknown)

export type AggregationKind = 'count' | 'sum' | 'avg' | 'min' | 'max' | 'variance' | 'stddev' | 'first' | 'last' | 'percentile'

/** One named output of an aggregation; plain data, built by the helpers below. */
export interface AggregationSpec {
  readonly kind: AggregationKind
  readonly field?: ValueSelector
  /** percentile only: the quantile in [0, 1]. */
  readonly quantile?: number
}

/** The outputs of an aggregate operator, by the field names they get in each result. */
export type AggregationsSpec = Readonly<Record<string, AggregationSpec>>

export const count = (): AggregationSpec => ({ kind: 'count' })
export const sum = (field: ValueSelector): AggregationSpec => ({ kind: 'sum', field })
export const avg = (field: ValueSelector): AggregationSpec => ({ kind: 'avg', field })
export const min = (field: ValueSelector): AggregationSpec => ({ kind: 'min', field })
export const max = (field: ValueSelector): AggregationSpec => ({ kind: 'max', field })
export const variance = (field: ValueSelector): AggregationSpec => ({ kind: 'variance', field })
export const stddev = (field: ValueSelector): AggregationSpec => ({ kind: 'stddev', field })
/** The value of the record with the earliest event time. */
export const first = (field: ValueSelector): AggregationSpec => ({ kind: 'first', field })
/** The value of the record with the latest event time. */
export const last = (field: ValueSelector): AggregationSpec => ({ kind: 'last', field })
/** The q-quantile (0 <= q <= 1) from a DDSketch with 1% relative accuracy. */
export function percentile(field: ValueSelector, q: number): AggregationSpec {
  if (!(q >= 0 && q <= 1)) throw new TopologyError(`percentile: quantile ${q} is not within [0, 1]`)
  return { kind: 'percentile', field, quantile: q }
}

/** Reads a field path of a value: `'a.b'` is value.a.b. Missing is a RecordError with code MISSING_FIELD. */
export function readPath(value: unknown, path: string): unknown {
  let at: unknown = value
  for (const part of path.split('.')) {
    if (at === null || typeof at !== 'object' || !(part in (at as object))) {
      throw new RecordError(ProcessorErrorCode.missingField, `value has no field '${path}'`)
    }
    at = (at as Record<string, unknown>)[part]
  }
  return at
}

/** A reader of a field path (a plain property access when the path has no dots). */
export function pathReader(path: string): (value: unknown) => unknown {
  if (path.includes('.')) return (value) => readPath(value, path)
  return (value) => {
    if (value === null || typeof value !== 'object' || !(path in (value as object))) throw new RecordError(ProcessorErrorCode.missingField, `value has no field '${path}'`)
    return (value as Record<string, unknown>)[path]
  }
}

/** A finite number, or a RecordError (MISSING_FIELD or NOT_NUMERIC) naming what was read. */
function checkNumber(raw: unknown, describe: string): number {
  if (typeof raw === 'number' && Number.isFinite(raw)) return raw
  if (raw === undefined || raw === null) throw new RecordError(ProcessorErrorCode.missingField, `value has no ${describe}`)
  if (typeof raw !== 'number' || !Number.isFinite(raw)) {
    throw new RecordError(ProcessorErrorCode.notNumeric, `${describe} is not a number: ${JSON.stringify(raw)?.slice(0, 80)}`)
  }
  return raw
}

const PartKind = { count: 0, moments: 1, min: 2, max: 3, first: 4, last: 5, sketch: 6 } as const
type PartKind = (typeof PartKind)[keyof typeof PartKind]

interface Part {
  kind: PartKind
  /** Index into the extracted values; -1 for count. */
  input: number
}

type Moments = [n: number, sum: number, mean: number, m2: number]
type Stamped = [ts: number, value: number] | null
/** One accumulator: one state per part, in part order. */
export type Accumulator = unknown[]

/**
 * What a stateful operator needs from an aggregation: read a record's inputs once (throwing RecordError before any
 * state changes), fold them into an accumulator, merge accumulators (associatively: slices and restored state rely
 * on it), read the named results, and encode an accumulator as plain data for msgpack.
 */
export interface Accumulation<I = any, A = any> {
  extract(value: unknown): I
  create(): A
  /** Returns the new accumulator (it may be the same object, mutated). */
  add(acc: A, input: I, ts: number): A
  /** Returns the merge (it may be `into`, mutated); `from` is not changed. */
  merge(into: A, from: A): A
  result(acc: A): Record<string, unknown>
  encode(acc: A): unknown
  decode(plain: unknown): A
}

/** Merges accumulators into a fresh one (none of them is changed). */
export function mergeAll<A>(accumulation: Accumulation<unknown, A>, accs: readonly A[]): A {
  let out = accumulation.create()
  for (const acc of accs) out = accumulation.merge(out, acc)
  return out
}

/**
 * Spark's reduce: an associative (and, as hopping slices merge in time order while restores do not care, better
 * commutative) function of two values. The result field is `value`.
 */
export function reduction<V>(reducer: (a: V, b: V) => V): Accumulation<V, { v: V } | null> {
  return {
    extract: (value) => value as V,
    create: () => null,
    add: (acc, input) => ({ v: acc === null ? input : reducer(acc.v, input) }),
    merge: (into, from) => (from === null ? into : into === null ? { v: from.v } : { v: reducer(into.v, from.v) }),
    result: (acc) => ({ value: acc === null ? null : acc.v }),
    encode: (acc) => acc,
    decode: (plain) => plain as { v: V } | null,
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

function derive(kind: AggregationKind, state: unknown, q: number | undefined): number | null {
  switch (kind) {
    case 'count':
      return state as number
    case 'sum':
      return (state as Moments)[1]
    case 'avg': {
      const [n, total] = state as Moments
      return n === 0 ? null : total / n
    }
    case 'variance':
    case 'stddev': {
      const [n, , , m2] = state as Moments
      if (n < 2) return null
      const sampleVariance = m2 / (n - 1)
      return kind === 'variance' ? sampleVariance : Math.sqrt(sampleVariance)
    }
    case 'min':
    case 'max':
      return state as number | null
    case 'first':
    case 'last':
      return state === null ? null : (state as [number, number])[1]
    case 'percentile':
      return quantile(state as Sketch, q!)
  }
}

const selectorIds = new WeakMap<(value: any) => unknown, number>()
let nextSelectorId = 0
function selectorKey(selector: ValueSelector): string {
  if (typeof selector === 'string') return `field:${selector}`
  let id = selectorIds.get(selector)
  if (id === undefined) selectorIds.set(selector, (id = nextSelectorId++))
  return `fn:${id}`
}

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
  private readonly outputs: { name: string; kind: AggregationKind; part: number; quantile?: number }[] = []

  constructor(readonly spec: AggregationsSpec) {
    const inputIndex = new Map<string, number>()
    const partIndex = new Map<string, number>()
    if (Object.keys(spec).length === 0) throw new TopologyError('an aggregation needs at least one output')
    for (const [name, output] of Object.entries(spec)) {
      let input = -1
      if (output.kind !== 'count') {
        if (output.field === undefined) throw new TopologyError(`aggregation '${name}' (${output.kind}) needs a field`)
        const key = selectorKey(output.field)
        input = inputIndex.get(key) ?? -1
        if (input < 0) {
          input = this.selectors.push(output.field) - 1
          const selector = output.field
          this.readers.push(typeof selector === 'string' ? pathReader(selector) : (value) => selector(value))
          this.described.push(typeof selector === 'string' ? `field '${selector}'` : 'selected value')
          inputIndex.set(key, input)
        }
      }
      const kind = PART_OF[output.kind]
      const key = `${kind}:${input}`
      let part = partIndex.get(key)
      if (part === undefined) {
        part = this.parts.push({ kind, input }) - 1
        partIndex.set(key, part)
      }
      this.outputs.push({ name, kind: output.kind, part, quantile: output.quantile })
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
    return this.parts.map((part): unknown => {
      switch (part.kind) {
        case PartKind.count:
          return 0
        case PartKind.moments:
          return [0, 0, 0, 0]
        case PartKind.sketch:
          return newSketch()
        default:
          return null
      }
    })
  }

  add(acc: Accumulator, inputs: readonly number[], ts: number): Accumulator {
    for (let i = 0; i < this.parts.length; i++) {
      const part = this.parts[i]!
      const x = inputs[part.input]!
      switch (part.kind) {
        case PartKind.count:
          acc[i] = (acc[i] as number) + 1
          break
        case PartKind.moments: {
          const m = acc[i] as Moments
          m[0] += 1
          m[1] += x
          const delta = x - m[2]
          m[2] += delta / m[0]
          m[3] += delta * (x - m[2])
          break
        }
        case PartKind.min:
          if (acc[i] === null || x < (acc[i] as number)) acc[i] = x
          break
        case PartKind.max:
          if (acc[i] === null || x > (acc[i] as number)) acc[i] = x
          break
        case PartKind.first:
          if (acc[i] === null || ts < (acc[i] as [number, number])[0]) acc[i] = [ts, x]
          break
        case PartKind.last:
          if (acc[i] === null || ts >= (acc[i] as [number, number])[0]) acc[i] = [ts, x]
          break
        case PartKind.sketch:
          ;(acc[i] as Sketch).accept(x)
          break
      }
    }
    return acc
  }

  merge(into: Accumulator, from: Accumulator): Accumulator {
    for (let i = 0; i < this.parts.length; i++) {
      const b = from[i]
      switch (this.parts[i]!.kind) {
        case PartKind.count:
          into[i] = (into[i] as number) + (b as number)
          break
        case PartKind.moments: {
          const ma = into[i] as Moments
          const mb = b as Moments
          if (mb[0] === 0) break
          if (ma[0] === 0) {
            into[i] = [...mb]
            break
          }
          const n = ma[0] + mb[0]
          const delta = mb[2] - ma[2]
          into[i] = [n, ma[1] + mb[1], ma[2] + (delta * mb[0]) / n, ma[3] + mb[3] + (delta * delta * ma[0] * mb[0]) / n]
          break
        }
        case PartKind.min:
          if (b !== null && (into[i] === null || (b as number) < (into[i] as number))) into[i] = b
          break
        case PartKind.max:
          if (b !== null && (into[i] === null || (b as number) > (into[i] as number))) into[i] = b
          break
        case PartKind.first:
          if (b !== null && (into[i] === null || (b as Stamped)![0] < (into[i] as Stamped)![0])) into[i] = b
          break
        case PartKind.last:
          if (b !== null && (into[i] === null || (b as Stamped)![0] >= (into[i] as Stamped)![0])) into[i] = b
          break
        case PartKind.sketch:
          mergeSketch(into[i] as Sketch, b as Sketch)
          break
      }
    }
    return into
  }

  /** The named outputs of an accumulator. */
  result(acc: Accumulator): Record<string, number | null> {
    const out: Record<string, number | null> = {}
    for (const output of this.outputs) out[output.name] = derive(output.kind, acc[output.part], output.quantile)
    return out
  }

  /** Plain data for msgpack (sketches become their encoded form). */
  encode(acc: Accumulator): unknown[] {
    return acc.map((state, i) => (this.parts[i]!.kind === PartKind.sketch ? encodeSketch(state as Sketch) : state))
  }

  decode(plain: unknown): Accumulator {
    return (plain as unknown[]).map((state, i) => (this.parts[i]!.kind === PartKind.sketch ? decodeSketch(state as EncodedSketch) : state))
  }
}
