/**
 * Percentiles from DDSketch (npm `@datadog/sketches-js`, Datadog's implementation of the DDSketch paper): a
 * quantile sketch with a relative-error guarantee (1% by default) whose merge is exact — the bin counts of two
 * sketches add up — so merging the slices of a hopping window, or the state restored after a crash, gives exactly
 * the sketch of all the values. Two gaps of the library are closed here:
 *
 * - Its `merge` forgets the negative-value store (DataDog/sketches-js#22): `mergeSketch` merges both stores.
 * - Its `toProto` needs protobufjs, which it does not declare, and drops min/max: state is encoded here as the
 *   sketch's own content, the first key and the counts of the contiguous bins of each store, plus the zero count.
 *
 * Encoded form (msgpack-ready): `[zeroCount, positiveOffset, positiveCounts[], negativeOffset, negativeCounts[]]`.
 */
import sketches from '@datadog/sketches-js'

const { DDSketch } = sketches
type Sketch = InstanceType<typeof DDSketch>
type Store = Sketch['store']

/** The relative accuracy of every sketch of the processor: p99 of values around 80 is within ±0.8. */
export const SKETCH_RELATIVE_ACCURACY = 0.01

export type EncodedSketch = [number, number, number[], number, number[]]

export function newSketch(): Sketch {
  return new DDSketch({ relativeAccuracy: SKETCH_RELATIVE_ACCURACY })
}

export function mergeSketch(into: Sketch, from: Sketch): void {
  if (from.count === 0) return
  into.store.merge(from.store)
  into.negativeStore.merge(from.negativeStore)
  into.zeroCount += from.zeroCount
  into.count += from.count
  into.sum += from.sum
  if (from.min < into.min) into.min = from.min
  if (from.max > into.max) into.max = from.max
}

/** The value at quantile q in [0, 1], or null for an empty sketch. */
export function quantile(sketch: Sketch, q: number): number | null {
  return sketch.count === 0 ? null : sketch.getValueAtQuantile(q)
}

function encodeStore(store: Store): [number, number[]] {
  if (store.count === 0) return [0, []]
  const counts: number[] = []
  for (let key = store.minKey; key <= store.maxKey; key++) counts.push(store.bins[key - store.offset] ?? 0)
  return [store.minKey, counts]
}

function decodeStore(store: Store, first: number, counts: readonly number[]): void {
  for (let i = 0; i < counts.length; i++) if (counts[i]! > 0) store.add(first + i, counts[i])
}

export function encodeSketch(sketch: Sketch): EncodedSketch {
  const [positiveOffset, positive] = encodeStore(sketch.store)
  const [negativeOffset, negative] = encodeStore(sketch.negativeStore)
  return [sketch.zeroCount, positiveOffset, positive, negativeOffset, negative]
}

export function decodeSketch(encoded: EncodedSketch): Sketch {
  const sketch = newSketch()
  const [zeroCount, positiveOffset, positive, negativeOffset, negative] = encoded
  decodeStore(sketch.store, positiveOffset, positive)
  decodeStore(sketch.negativeStore, negativeOffset, negative)
  sketch.zeroCount = zeroCount
  sketch.count = sketch.store.count + sketch.negativeStore.count + zeroCount
  return sketch
}

export type { Sketch }
