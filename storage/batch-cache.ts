/**
 * The node's cache of recently appended batches: one budget for every partition (`--cache-max-bytes`,
 * `log.cache.max.bytes`), so a node's memory does not grow with its partition count. Consumers that keep up are
 * served from here without touching LevelDB, and without the copies a LevelDB read makes.
 *
 *   partition run (offset order):  [ 40-49 | 50-59 | 60-69 ]      [ 7-7 | 8-9 ]       one run per partition log
 *   recency list (node-wide):      LRU  7-7 · 40-49 · 8-9 · 50-59 · 60-69  MRU
 *
 * - A run is a contiguous suffix of its log: appends join its end; eviction, a new log start and truncation cut it.
 * - Every append and every batch a read serves moves to the most recently used end.
 * - While the cached bytes exceed the budget, the least recently used batch goes, and with it the batches of its run
 *   below it (so a run stays contiguous and a read from the cache never skips a batch). Usually they are older anyway:
 *   batches are appended, and read, in offset order.
 * - The budget counts the bytes of the batches. A batch that is a small view of a larger buffer (a socket chunk
 *   holding other requests) is copied when it is cached, so the budget bounds what the cache keeps alive.
 *
 * Only appended batches are cached: a batch read from LevelDB belongs to a consumer that is behind, and caching it
 * would evict what consumers at the tail need (LevelDB and the page cache serve re-reads).
 */

/** One cached batch. */
export interface CachedBatch {
  readonly baseOffset: bigint
  readonly lastOffset: bigint
  readonly bytes: Buffer
}

interface Node extends CachedBatch {
  readonly run: CacheRun
  older: Node | null
  newer: Node | null
}

/** One partition's cached batches: a contiguous run that ends at its log end, in offset order. */
export class CacheRun {
  /** items[first..] are the cached batches; the slots before `first` are emptied as their batches leave. */
  private items: (Node | undefined)[] = []
  private first = 0

  constructor(private readonly cache: BatchCache) {}

  /** Batches cached. */
  get length(): number {
    return this.items.length - this.first
  }

  /** The base offset of the first cached batch, or null when none is. */
  get baseOffset(): bigint | null {
    return this.length > 0 ? this.items[this.first]!.baseOffset : null
  }

  /** The i-th cached batch (0 is the oldest). */
  at(i: number): CachedBatch {
    return this.items[this.first + i]!
  }

  /** Index of the first cached batch whose last offset is >= `offset` (`length` when there is none). */
  indexOf(offset: bigint): number {
    let low = this.first
    let high = this.items.length
    while (low < high) {
      const mid = (low + high) >>> 1
      if (this.items[mid]!.lastOffset < offset) low = mid + 1
      else high = mid
    }
    return low - this.first
  }

  /** Moves batches [from, to) of the run to the most recently used end: a read served them. */
  touch(from: number, to: number): void {
    for (let i = from; i < to; i++) this.cache.touch(this.items[this.first + i]!)
  }

  append(batch: CachedBatch): void {
    // A budget of 0 caches nothing: not even the copy a cached view would need.
    if (this.cache.maxBytes === 0) return
    const last = this.items.at(-1)
    if (this.length > 0 && last!.lastOffset >= batch.baseOffset) throw new RangeError(`batch at ${batch.baseOffset} does not follow the cached ${last!.lastOffset}`)
    const node: Node = { ...batch, bytes: compact(batch.bytes), run: this, older: null, newer: null }
    this.items.push(node)
    this.cache.admit(node)
  }

  /** Drops the cached batches that end at or after `offset` (truncation). */
  dropFrom(offset: bigint): void {
    const keep = this.first + this.indexOf(offset)
    for (const node of this.items.splice(keep)) this.cache.forget(node!)
  }

  /** Drops the cached batches that end below `offset` (a new log start). */
  dropBefore(offset: bigint): void {
    this.dropFirst(this.indexOf(offset))
  }

  /** Replaces the cached batch ending at `lastOffset` with `bytes`, or drops it (null); does nothing if none is cached. */
  replace(lastOffset: bigint, bytes: Buffer | null): void {
    const i = this.first + this.indexOf(lastOffset)
    const node = this.items[i]
    if (!node || node.lastOffset !== lastOffset) return
    this.cache.forget(node)
    if (bytes === null) {
      this.items.splice(i, 1)
      return
    }
    const replacement: Node = { baseOffset: node.baseOffset, lastOffset, bytes: compact(bytes), run: this, older: null, newer: null }
    this.items[i] = replacement
    this.cache.admit(replacement)
  }

  /** Drops every cached batch of the run. */
  clear(): void {
    this.dropFirst(this.length)
  }

  /** Called by the cache when it evicts `node`: drops it and the batches of the run below it. */
  evict(node: Node): void {
    this.dropFirst(this.indexOf(node.lastOffset) + 1)
  }

  private dropFirst(count: number): void {
    for (let i = this.first; i < this.first + count; i++) {
      this.cache.forget(this.items[i]!)
      // The slot lets go of the batch at once: an evicted batch must not stay alive until the run is compacted.
      this.items[i] = undefined
    }
    this.first += count
    // Compacted now and then, so a long-lived run neither grows without bound nor is copied on every drop.
    if (this.first === this.items.length) {
      this.items = []
      this.first = 0
    } else if (this.first > 64 && this.first * 2 > this.items.length) {
      this.items = this.items.slice(this.first)
      this.first = 0
    }
  }
}

export class BatchCache {
  /** Bytes of the cached batches. */
  private cachedBytes = 0
  private cachedCount = 0
  private lru: Node | null = null
  private mru: Node | null = null

  /** `maxBytes`: the node's budget; 0 caches nothing. */
  constructor(readonly maxBytes: number) {}

  /** A new, empty run for one partition log. */
  run(): CacheRun {
    return new CacheRun(this)
  }

  get bytes(): number {
    return this.cachedBytes
  }

  get count(): number {
    return this.cachedCount
  }

  /** Links a new node at the most recently used end and evicts down to the budget. */
  admit(node: Node): void {
    this.link(node)
    this.cachedBytes += node.bytes.length
    this.cachedCount++
    while (this.cachedBytes > this.maxBytes && this.lru !== null) this.lru.run.evict(this.lru)
  }

  /** Unlinks a node its run dropped. */
  forget(node: Node): void {
    this.unlink(node)
    this.cachedBytes -= node.bytes.length
    this.cachedCount--
  }

  touch(node: Node): void {
    if (this.mru === node) return
    this.unlink(node)
    this.link(node)
  }

  private link(node: Node): void {
    node.older = this.mru
    node.newer = null
    if (this.mru) this.mru.newer = node
    this.mru = node
    this.lru ??= node
  }

  private unlink(node: Node): void {
    if (node.older) node.older.newer = node.newer
    else this.lru = node.newer
    if (node.newer) node.newer.older = node.older
    else this.mru = node.older
    node.older = null
    node.newer = null
  }
}

/**
 * `bytes`, or a copy of it in a buffer of its own when it is less than half of the memory it keeps alive (a view of a
 * socket chunk or of a larger request).
 */
function compact(bytes: Buffer): Buffer {
  if (bytes.buffer.byteLength < 2 * bytes.length) return bytes
  const copy = Buffer.allocUnsafeSlow(bytes.length)
  bytes.copy(copy)
  return copy
}
