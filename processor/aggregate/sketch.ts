/**
 * Percentiles from DDSketch (npm `@datadog/sketches-js`, Datadog's implementation of the DDSketch paper): a
 * quantile sketch with a relative-error guarantee (1% by default) whose merge is exact — the bin counts of two
 * sketches add up — so merging the slices of a hopping window, or the state restored after a crash, gives exactly
 * the sketch of all the values. Two gaps of the library are closed here:
 *
 * - Its `merge` forgets the negative-value store (DataDog/sketches-js#22): `mergeSketch` merges both stores.
 * - Its `toProto` needs protobufjs, which it does not declare, and drops min/max: state is written here as the
 *   sketch's own content, per store the first key and the counts of its contiguous bins, plus the zero count.
 * - Its DenseStore re-centres its bins (two array copies and a shift) whenever a key falls below the smallest key
 *   so far, even when the bins already cover it: a fresh sketch does that a handful of times (each new minimum of
 *   its values), which made the sketches the largest source of garbage of the iot pipeline. And its range
 *   extension takes a second key of 0 for "none" (`secondKey || key`), so merging a store whose largest key is 0
 *   (values just below 1) into one whose keys are all negative loses that bin. `BinStore` extends a store only
 *   when a key falls outside its bins, centring the bins once, and takes both ends of the range as given.
 *
 * Binary form (state/codec.ts): `varuint zeroCount`, then the positive and the negative store, each
 * `varuint bins` (0 for an empty store) `varint firstKey` `varuint count` × bins.
 */
import sketches from '@datadog/sketches-js'
import denseStore from '@datadog/sketches-js/dist/ddsketch/store/DenseStore.js'
import type { ByteReader, ByteWriter } from '../state/codec.js'

const { DDSketch } = sketches
const { DenseStore } = denseStore
type LibrarySketch = InstanceType<typeof DDSketch>
type Store = LibrarySketch['store']

/**
 * A DDSketch as the rest of the processor, and the package's type declarations, see it: the library's own types stay
 * inside this module, since they name protobufjs, which the library does not install, and a project that
 * type-checks its libraries (`skipLibCheck: false`) would fail on them.
 */
export interface Sketch {
  /** Adds one value. */
  accept(value: number): void
  /** How many values it holds. */
  readonly count: number
}

/** The library's sketch behind a Sketch (every Sketch is made by newSketch). */
function library(sketch: Sketch): LibrarySketch {
  return sketch as LibrarySketch
}

/** DenseStore whose bins move only when a key falls outside them (see the top of this file). */
class BinStore extends DenseStore {
  override _extendRange(key: number, secondKey: number = key): void {
    const minKey = Math.min(key, secondKey, this.minKey)
    const maxKey = Math.max(key, secondKey, this.maxKey)
    const length = this.bins.length
    if (length === 0 || minKey < this.offset || maxKey >= this.offset + length) {
      const grown = Math.max(length, this._getNewLength(minKey, maxKey))
      const bins: number[] = new Array<number>(grown).fill(0)
      const offset = minKey - Math.floor((grown - (maxKey - minKey + 1)) / 2)
      for (let k = this.minKey; k <= this.maxKey; k++) bins[k - offset] = this.bins[k - this.offset]!
      this.bins = bins
      this.offset = offset
    }
    this.minKey = minKey
    this.maxKey = maxKey
  }
}

/** The relative accuracy of every sketch of the processor: p99 of values around 80 is within ±0.8. */
export const SKETCH_RELATIVE_ACCURACY = 0.01

/**
 * Bins a store grows by. The library's 128 makes every sketch hold 128 bins (half a KiB) from its first value,
 * while a window's readings of one sensor span a few dozen keys at most (1% apart each): with tens of thousands of
 * open windows, that is megabytes of zeros between the bins the hot path touches. Counts and results do not depend
 * on it.
 */
const BIN_CHUNK = 32

/**
 * The key mapping every sketch shares: it is configuration only (gamma, multiplier, bounds), which the library
 * would otherwise allocate for each sketch, and merges require equal gammas anyway.
 */
const MAPPING = new DDSketch({ relativeAccuracy: SKETCH_RELATIVE_ACCURACY }).mapping

export function newSketch(): Sketch {
  return makeSketch()
}

function makeSketch(): LibrarySketch {
  const sketch = new DDSketch({ relativeAccuracy: SKETCH_RELATIVE_ACCURACY })
  sketch.mapping = MAPPING
  sketch.store = new BinStore(BIN_CHUNK)
  sketch.negativeStore = new BinStore(BIN_CHUNK)
  return sketch
}

export function mergeSketch(sketch: Sketch, other: Sketch): void {
  if (other.count === 0) return
  const into = library(sketch)
  const from = library(other)
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
  return sketch.count === 0 ? null : library(sketch).getValueAtQuantile(q)
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
  const { zeroCount, store, negativeStore } = library(sketch)
  out.varuint(zeroCount)
  writeStore(out, store)
  writeStore(out, negativeStore)
}

export function readSketch(from: ByteReader): Sketch {
  const sketch = makeSketch()
  sketch.zeroCount = from.varuint()
  readStore(from, sketch.store)
  readStore(from, sketch.negativeStore)
  sketch.count = sketch.store.count + sketch.negativeStore.count + sketch.zeroCount
  return sketch
}

