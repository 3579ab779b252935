/**
 * The node's cache of recently appended batches: one budget for every partition (`--cache-max-bytes`,
 * `log.cache.max.bytes`), so a node's memory does not grow with its partition count. Consumers that keep up are
 * served from here without touching LevelDB.
 *
 * The memory is a ring of slabs (4 MiB each, or a quarter of a smaller budget), allocated as the cache fills and then
 * reused, oldest first, for as long as the node runs:
 *
 *   ring (append order):     [ slab 0: a 40-49 · b 7-7 ][ slab 1: a 50-59 · b 8-9 ][ slab 2: a 60-69 ·      ]
 *                              oldest: reused next                                   being filled
 *   partition runs:          a [ 40-49 | 50-59 | 60-69 ]      b [ 7-7 | 8-9 ]          one run per partition log
 *
 * - A run is a contiguous suffix of its log: appends join its end; eviction, a new log start and truncation cut it.
 * - An appended batch is copied into the slab being filled (the next one when it does not fit). Reusing the oldest
 *   slab evicts every batch still cached in it, and with each the batches of its run below it, so a run stays
 *   contiguous and a read from the cache never skips a batch. Runs are appended in offset order, so those are in
 *   older slabs already: eviction is first in, first out.
 * - A Fetch answer sends views of the slabs, not copies: its `CacheLease` holds every slab it reads from until the
 *   answer has left the socket (or will never be sent), and a slab that is held is never written again. When the ring
 *   comes round to a slab still held (an answer stuck behind a slow socket while the whole ring was appended), the
 *   slab leaves the ring to that answer, freed with it, and a fresh one takes its place. At most MAX_LENT_SLABS
 *   slabs are lent at once; a read that would lend one more gets a copy, so answers that clients never read (held
 *   until connections.max.idle.ms closes them) keep no more than that many slabs alive beside the budget. The node's
 *   own reads (a coordinator loading its state, the log cleaner) take no lease and get copies, which they may keep.
 * - A batch larger than a slab is not cached, and its run is cleared (the run must end at the log end).
 * - The ring grows only while readers need it: it starts at MIN_SLABS, and a new slab is taken, up to the budget,
 *   only when the oldest slab, about to be reused, was read once two newer slabs had been started (a reader a whole
 *   slab or more behind the log end, which would otherwise lose it). Readers at the tail (followers, consumers that
 *   keep up) read the slab being filled, or the one before it just after the log end moved on, so a node whose
 *   readers keep up keeps MIN_SLABS and reuses them.
 *
 * Why slabs rather than a buffer per batch: memory that the cache keeps for a while and then lets go is freed only
 * by a full garbage collection, so with a buffer per batch the process keeps taking fresh pages from the kernel
 * while the dead ones wait; with a 256 MiB budget that doubled the CPU a megabyte of produce costs
 * (`node dist/bench/cache-memory.js`, storage/README.md). Slabs are taken once and reused, and a produce request's
 * buffer is no longer kept by the cache, so it dies young. Why the ring grows on demand rather than to the budget: the
 * first write into fresh memory costs a page fault per 4 KiB (on a virtual machine, 10-15 µs each: fresh pages take
 * a 16 KiB batch at about 300 MB/s against 11-16 GB/s for reused ones), which a cache filled to 256 MiB paid for every
 * one of its first 256 MiB of appends, although readers that keep up never read past the newest slabs.
 *
 * Only appended batches are cached: a batch read from LevelDB belongs to a consumer that is behind, and caching it
 * would evict what consumers at the tail need (LevelDB and the page cache serve re-reads).
 */

/** One cached batch: offsets and bytes (a batch to append, or a cached one: a copy, or a view under a lease). */
export interface CachedBatch {
  readonly baseOffset: bigint
  readonly lastOffset: bigint
  readonly bytes: Buffer
}

/** A slab of the ring and the batches copied into it, in append order. */
interface Slab {
  readonly memory: Buffer
  used: number
  nodes: Node[]
  /** Which slab to be filled it was, the last time it became the one filled: 0, 1, 2, ... across the ring. */
  serial: number
  /** Whether a batch was read from it once two newer slabs had become the one filled (since it was last emptied). */
  readBehind: boolean
  /** Leases holding it: answers not yet sent that hold views of its bytes. */
  lent: number
  /** Its cache's count of slabs lent, shared by all its slabs (kept when the slab leaves the ring). */
  readonly lending: { slabs: number }
}

/**
 * The slabs of the cache one answer sends views of (`CacheRun.at` with a lease), so that none of them is written again
 * before the answer has left: `release()` once the socket has taken it, or once it will never be sent. A lease
 * never released costs memory, not data: the ring replaces a slab still held instead of reusing it.
 */
export class CacheLease {
  private readonly held: Slab[] = []

  /**
   * Holds `slab` until release (once, however many batches the answer reads from it); false, holding nothing, when
   * that would lend more than MAX_LENT_SLABS slabs of its cache at once.
   */
  hold(slab: Slab): boolean {
    if (this.held.includes(slab)) return true
    if (slab.lent === 0) {
      if (slab.lending.slabs >= MAX_LENT_SLABS) return false
      slab.lending.slabs++
    }
    slab.lent++
    this.held.push(slab)
    return true
  }

  /** Gives back every slab held; the views handed out must no longer be sent. */
  release(): void {
    for (const slab of this.held) if (--slab.lent === 0) slab.lending.slabs--
    this.held.length = 0
  }
}

/** Where one cached batch lives; `cached` turns false when its run drops it (its bytes stay until the slab is reused). */
interface Node {
  readonly baseOffset: bigint
  readonly lastOffset: bigint
  readonly slab: Slab
  readonly start: number
  readonly size: number
  readonly run: CacheRun
  cached: boolean
}

const MAX_SLAB_BYTES = 4 * 1024 * 1024
/**
 * Slabs lent to answers at once. Readers at the tail read the slab being filled and the one before it, so four leave
 * room for readers behind; a stuck answer past that gets copies, and at most four slabs (16 MiB) live on outside the
 * ring for answers clients do not read.
 */
const MAX_LENT_SLABS = 4
/** Slabs the ring starts with and never goes below (all of a budget of fewer). */
const MIN_SLABS = 4

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

  /**
   * The i-th cached batch (0 is the oldest). With a `lease`, its bytes are a view of the cache, valid until the lease is
   * released; without one, a copy. `fetched` (the default) marks a read that answers a Fetch: one from a slab behind
   * the log end lets the ring grow; the node's own reads (loading a coordinator's state, the log cleaner) pass false.
   */
  at(i: number, { fetched = true, lease }: { fetched?: boolean; lease?: CacheLease } = {}): CachedBatch {
    const node = this.items[this.first + i]!
    if (fetched) this.cache.noteRead(node.slab)
    const view = node.slab.memory.subarray(node.start, node.start + node.size)
    return { baseOffset: node.baseOffset, lastOffset: node.lastOffset, bytes: lease?.hold(node.slab) ? view : Buffer.from(view) }
  }

  /** The last offset of the i-th cached batch. */
  lastOffsetAt(i: number): bigint {
    return this.items[this.first + i]!.lastOffset
  }

  /** The size in bytes of the i-th cached batch. */
  sizeAt(i: number): number {
    return this.items[this.first + i]!.size
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

  /** Copies `batch` into the cache at the end of the run; a batch larger than a slab clears the run instead. */
  append(batch: CachedBatch): void {
    const last = this.items.at(-1)
    if (this.length > 0 && last!.lastOffset >= batch.baseOffset) throw new RangeError(`batch at ${batch.baseOffset} does not follow the cached ${last!.lastOffset}`)
    if (!this.cache.holds(batch.bytes.length)) {
      this.clear()
      return
    }
    // Placing it may evict batches of this very run (and compact `items`); the new one joins whatever is left.
    const node = this.cache.place(this, batch)
    this.items.push(node)
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

  /**
   * Replaces the cached batch ending at `lastOffset` with `bytes`; does nothing if none is cached. A replacement larger
   * than a slab drops the batch and the ones below it.
   */
  private replace(lastOffset: bigint, bytes: Buffer): void {
    const index = this.indexOf(lastOffset)
    const node = this.items[this.first + index]
    if (!node || node.lastOffset !== lastOffset) return
    if (!this.cache.holds(bytes.length)) {
      this.dropFirst(index + 1)
      return
    }
    const replacement = this.cache.place(this, { baseOffset: node.baseOffset, lastOffset, bytes })
    // Placing it may have evicted the batch it replaces.
    const i = this.first + this.indexOf(lastOffset)
    const current = this.items[i]
    if (!current || current.lastOffset !== lastOffset) {
      this.cache.forget(replacement)
      return
    }
    this.cache.forget(current)
    this.items[i] = replacement
  }

  /**
   * A log cleaner pass's rewrites: each replaces the cached batch ending at `lastOffset` with `bytes`, or drops it
   * (null); offsets the run does not hold are ignored. The dropped batches leave the run in one pass: a pass that
   * removes most of a run of n batches costs O(n log n), where one `splice` per batch cost O(n²) (150,000 removals
   * held the node's event loop for about 12 s).
   */
  replaceAll(changes: readonly { readonly lastOffset: bigint; readonly bytes: Buffer | null }[]): void {
    const dropped = new Set<Node>()
    for (const { lastOffset, bytes } of changes) {
      if (bytes !== null) continue
      const node = this.items[this.first + this.indexOf(lastOffset)]
      if (node === undefined || node.lastOffset !== lastOffset) continue
      this.cache.forget(node)
      dropped.add(node)
    }
    if (dropped.size > 0) {
      this.items = this.items.slice(this.first).filter((node) => !dropped.has(node!))
      this.first = 0
    }
    for (const { lastOffset, bytes } of changes) if (bytes !== null) this.replace(lastOffset, bytes)
  }

  /** Drops every cached batch of the run. */
  clear(): void {
    this.dropFirst(this.length)
  }

  /** Called by the cache when it reuses the slab holding `node`: drops it and the batches of the run below it. */
  evict(node: Node): void {
    if (node.cached) this.dropFirst(this.indexOf(node.lastOffset) + 1)
  }

  private dropFirst(count: number): void {
    for (let i = this.first; i < this.first + count; i++) {
      this.cache.forget(this.items[i]!)
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
  private readonly slabBytes: number
  private readonly slabCount: number
  private readonly slabs: Slab[] = []
  /** The slab being filled: its index in `slabs`. */
  private current = -1
  private replaced = 0
  private readonly lending = { slabs: 0 }

  /** `maxBytes`: the node's budget; 0 caches nothing. */
  constructor(readonly maxBytes: number) {
    this.slabBytes = Math.min(MAX_SLAB_BYTES, Math.floor(maxBytes / 4))
    this.slabCount = this.slabBytes > 0 ? Math.floor(maxBytes / this.slabBytes) : 0
  }

  /** A new, empty run for one partition log. */
  run(): CacheRun {
    return new CacheRun(this)
  }

  /** Bytes of the cached batches (the slabs taken may hold more: space of dropped batches, until reused). */
  get bytes(): number {
    return this.cachedBytes
  }

  get count(): number {
    return this.cachedCount
  }

  /**
   * Bytes of the slabs of the ring: the memory the cache holds, never more than `maxBytes` (slabs it replaced while
   * leases held them live on until those answers are sent, and are not counted).
   */
  get reservedBytes(): number {
    return this.slabs.length * this.slabBytes
  }

  /** Slabs the ring replaced because a lease still held them when it came round to them, since the node started. */
  get replacedSlabs(): number {
    return this.replaced
  }

  /** Slabs lent to answers now, in the ring or replaced (at most MAX_LENT_SLABS). */
  get lentSlabs(): number {
    return this.lending.slabs
  }

  /** Whether a batch of `size` bytes can be cached at all (it fits in a slab). */
  holds(size: number): boolean {
    return size > 0 && size <= this.slabBytes
  }

  /** Copies `batch` into the slab being filled, or the next one (evicting what that one holds); `holds` must be true. */
  place(run: CacheRun, batch: CachedBatch): Node {
    const size = batch.bytes.length
    let slab = this.slabs[this.current]
    if (slab === undefined || slab.used + size > this.slabBytes) slab = this.nextSlab()
    const node: Node = { baseOffset: batch.baseOffset, lastOffset: batch.lastOffset, slab, start: slab.used, size, run, cached: true }
    batch.bytes.copy(slab.memory, slab.used)
    slab.used += size
    slab.nodes.push(node)
    this.cachedBytes += size
    this.cachedCount++
    return node
  }

  /**
   * Records a read from `slab`. One from a slab at least two behind the slab being filled (a reader a whole slab or
   * more behind the log end) tells the ring to grow rather than reuse it. A read from the slab just before the one
   * being filled is a reader at the tail: a follower or consumer a few batches behind reads it whenever the log end
   * has just moved into a new slab, and growing for it would take a fresh slab at every turn of the ring.
   */
  noteRead(slab: Slab): void {
    if (this.slabs[this.current]!.serial - slab.serial >= 2) slab.readBehind = true
  }

  /** Accounts for a node its run dropped. */
  forget(node: Node): void {
    if (!node.cached) return
    node.cached = false
    this.cachedBytes -= node.size
    this.cachedCount--
  }

  /**
   * The slab to fill next: a new one while the ring is below MIN_SLABS, or while the budget allows one and the oldest
   * slab was read behind the log end; else the oldest, emptied (its batches are evicted), or replaced by a new one while a
   * lease holds it. A new slab goes right after the current one, so the ring stays in append order (the oldest is
   * still next).
   */
  private nextSlab(): Slab {
    const oldest = this.slabs[(this.current + 1) % this.slabs.length]
    const serial = (this.slabs[this.current]?.serial ?? -1) + 1
    if (this.slabs.length < Math.min(MIN_SLABS, this.slabCount) || (this.slabs.length < this.slabCount && oldest!.readBehind)) {
      this.current++
      this.slabs.splice(this.current, 0, this.newSlab(serial))
      return this.slabs[this.current]!
    }
    this.current = (this.current + 1) % this.slabs.length
    const slab = this.slabs[this.current]!
    for (const node of slab.nodes) node.run.evict(node)
    if (slab.lent > 0) {
      // An answer still sends views of it: it stays theirs, to be freed with them, and is never written again.
      this.replaced++
      this.slabs[this.current] = this.newSlab(serial)
      return this.slabs[this.current]!
    }
    slab.nodes = []
    slab.used = 0
    slab.serial = serial
    slab.readBehind = false
    return slab
  }

  private newSlab(serial: number): Slab {
    return { memory: Buffer.allocUnsafeSlow(this.slabBytes), used: 0, nodes: [], serial, readBehind: false, lent: 0, lending: this.lending }
  }
}
