/**
 * Percentiles from DDSketch (npm `@datadog/sketches-js`, Datadog's implementation of the DDSketch paper): a
 * quantile sketch with a relative-error guarantee (1% by default) whose merge is exact — the bin counts of two
 * sketches add up — so merging the slices of a hopping window, or the state restored after a crash, gives exactly
 * the sketch of all the values. Two gaps of the library are closed here:
 *
 * - Its `merge` forgets the negative-value store (DataDog/sketches-js#22): `mergeSketch` merges both stores.
 * - Its `toProto` needs protobufjs, which it does not declare, and drops min/max: state is written here as the
 *   sketch's own content, per store the first key and the counts of its contiguous bins, plus the zero count.
 *
 * Binary form (state/codec.ts): `varuint zeroCount`, then the positive and the negative store, each
 * `varuint bins` (0 for an empty store) `varint firstKey` `varuint count` × bins.
 */
import sketches from '@datadog/sketches-js'
import type { ByteReader, ByteWriter } from '../state/codec.js'

const { DDSketch } = sketches
type Sketch = InstanceType<typeof DDSketch>
type Store = Sketch['store']

/** The relative accuracy of every sketch of the processor: p99 of values around 80 is within ±0.8. */
export const SKETCH_RELATIVE_ACCURACY = 0.01

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

function writeStore(out: ByteWriter, store: Store): void {
  if (store.count === 0) return out.varuint(0)
  const { minKey, maxKey, offset, bins } = store
  out.varuint(maxKey - minKey + 1)
  out.varint(minKey)
  for (let i = minKey - offset; i <= maxKey - offset; i++) out.varuint(bins[i] ?? 0)
}

function readStore(from: ByteReader, store: Store): void {
  const bins = from.varuint()
  if (bins === 0) return
  const first = from.varint()
  for (let i = 0; i < bins; i++) {
    const count = from.varuint()
    if (count > 0) store.add(first + i, count)
  }
}

export function writeSketch(out: ByteWriter, sketch: Sketch): void {
  out.varuint(sketch.zeroCount)
  writeStore(out, sketch.store)
  writeStore(out, sketch.negativeStore)
}

export function readSketch(from: ByteReader): Sketch {
  const sketch = newSketch()
  sketch.zeroCount = from.varuint()
  readStore(from, sketch.store)
  readStore(from, sketch.negativeStore)
  sketch.count = sketch.store.count + sketch.negativeStore.count + sketch.zeroCount
  return sketch
}

export type { Sketch }
