/**
 * A partition's log on LevelDB: whole record batches under `log | partitionKey | lastOffset`, plus one state record.
 *
 *   logStartOffset <= highWatermark <= durableEndOffset <= logEndOffset
 *   |-- deleted --|-- readable --|-- written, not yet exposed --|-- queued for the next write --|
 *
 * - `append` assigns offsets synchronously (so appends keep arrival order), stamps baseOffset and the leader epoch
 *   into the batch, and queues it for the node's group commit; its promise resolves once the batch is written.
 * - The state record (log start, log end, high watermark, recovery point, leader-epoch cache) is written in the same
 *   LevelDB batch as the data it describes, so the two never disagree. Every write of the log's keys goes through the
 *   group commit (appends, truncation, a new log start), so a write that carries an older state cannot land after
 *   one that carries a newer state.
 * - The high watermark is set by the owner (the broker: = durable end on one node, = what the ISR has with
 *   replication); reads never go past the bound the caller gives.
 * - Recent batches stay in memory (the tail cache) so consumers that keep up are served without touching LevelDB.
 * - On open, batches written since the last recovery point are checked (contiguous offsets, CRC) and anything after
 *   the first bad one is cut off, so a torn write is never served.
 * - `truncateTo` must not run concurrently with appends to the same log (a follower truncates before it fetches).
 */
import { NodeDatabase, partitionKey, packr, type WriteBatch } from './database.js'
import type { Flushable, GroupCommit } from './group-commit.js'
import {
  At,
  BATCH_HEADER_SIZE,
  LOG_OVERHEAD,
  MAGIC,
  computeCrc,
  lastOffsetOf,
  setBaseOffset,
  setLogAppendTime,
  setPartitionLeaderEpoch,
} from '../protocol/record-batch.js'

export interface EpochEntry {
  readonly epoch: number
  readonly startOffset: bigint
}

export interface PartitionState {
  logStartOffset: bigint
  logEndOffset: bigint
  highWatermark: bigint
  /** Every batch below this offset was written by an earlier, completed write. */
  recoveryPoint: bigint
  epochs: EpochEntry[]
  /** Bytes of the stored batches (retention.bytes). */
  sizeBytes: number
}

export interface AppendOptions {
  leaderEpoch: number
  /** Set for LogAppendTime topics: the broker's clock stamps the batch. */
  logAppendTime?: bigint
}

export interface AppendResult {
  baseOffset: bigint
  lastOffset: bigint
}

interface Entry {
  baseOffset: bigint
  lastOffset: bigint
  batch: Buffer
  /** The group-commit flush that writes it. */
  flush: number
}

export interface PartitionLogOptions {
  /** Bytes of recent batches kept in memory per partition. */
  tailCacheBytes: number
}

const EMPTY_STATE: PartitionState = {
  logStartOffset: 0n,
  logEndOffset: 0n,
  highWatermark: 0n,
  recoveryPoint: 0n,
  epochs: [],
  sizeBytes: 0,
}

/** A stored batch replaced by a smaller one, or removed (null): what compaction does. */
export interface Rewrite {
  previous: Buffer
  replacement: Buffer | null
}

export class PartitionLog implements Flushable {
  logStartOffset: bigint
  /** The next offset to assign. */
  logEndOffset: bigint
  /** End of what LevelDB has confirmed written. */
  durableEndOffset: bigint
  highWatermark: bigint
  /** Bytes of the stored batches, including queued ones. */
  sizeBytes: number
  private epochs: EpochEntry[]
  private readonly key: Buffer
  private readonly stateKey: Buffer
  private unflushed: Entry[] = []
  private unflushedBytes = 0
  /** Keys of batches removed by `truncateTo`, deleted by the next write. */
  private removed: Buffer[] = []
  /** Batches replaced by `rewrite`, written by the next write. */
  private rewritten: { key: Buffer; batch: Buffer | null }[] = []
  private tail: Entry[] = []
  private tailBytes = 0
  private deleted = false
  private maintenance: Promise<unknown> = Promise.resolve()

  private constructor(
    private readonly db: NodeDatabase,
    private readonly commit: GroupCommit,
    readonly topicId: string,
    readonly partition: number,
    state: PartitionState,
    private readonly options: PartitionLogOptions,
  ) {
    this.key = partitionKey(topicId, partition)
    this.stateKey = db.partitionStateKey(this.key)
    this.logStartOffset = state.logStartOffset
    this.logEndOffset = state.logEndOffset
    this.durableEndOffset = state.logEndOffset
    this.highWatermark = state.highWatermark
    this.epochs = state.epochs
    this.sizeBytes = state.sizeBytes
  }

  static async open(
    db: NodeDatabase,
    commit: GroupCommit,
    topicId: string,
    partition: number,
    options: PartitionLogOptions,
  ): Promise<PartitionLog> {
    const key = partitionKey(topicId, partition)
    const stored = (await db.partitions.get(key)) as PartitionState | undefined
    const state = await recover(db, key, stored ?? EMPTY_STATE)
    return new PartitionLog(db, commit, topicId, partition, state, options)
  }

  /**
   * Creates the state record of a new partition so that it exists before the first append. A partition that already
   * has one is opened instead: writing an empty state over it would restart its offsets at 0 over the old batches.
   */
  static async create(
    db: NodeDatabase,
    commit: GroupCommit,
    topicId: string,
    partition: number,
    options: PartitionLogOptions,
  ): Promise<PartitionLog> {
    db.checkWritable()
    const key = partitionKey(topicId, partition)
    if ((await db.partitions.get(key)) !== undefined) return PartitionLog.open(db, commit, topicId, partition, options)
    await db.write((batch) => void batch.put(db.partitionStateKey(key), packr.pack(EMPTY_STATE)))
    return new PartitionLog(db, commit, topicId, partition, { ...EMPTY_STATE, epochs: [] }, options)
  }

  get latestEpoch(): number {
    return this.epochs.at(-1)?.epoch ?? -1
  }

  get epochCache(): readonly EpochEntry[] {
    return this.epochs
  }

  /** Appends one batch as leader. Offsets are assigned before this returns its promise. */
  async append(batch: Buffer, options: AppendOptions): Promise<AppendResult> {
    this.checkWritable()
    const baseOffset = this.logEndOffset
    const lastOffset = baseOffset + BigInt(batch.readInt32BE(At.lastOffsetDelta))
    setBaseOffset(batch, baseOffset)
    setPartitionLeaderEpoch(batch, options.leaderEpoch)
    if (options.logAppendTime !== undefined) setLogAppendTime(batch, options.logAppendTime)
    this.assignEpoch(options.leaderEpoch, baseOffset)
    const ticket = this.commit.add(this, batch.length)
    this.queue({ baseOffset, lastOffset, batch, flush: ticket.seq })
    await ticket.done
    return { baseOffset, lastOffset }
  }

  /** A store whose write failed takes no more changes (nor offsets): they could never be written. */
  private checkWritable(): void {
    this.db.checkWritable()
    if (this.deleted) throw new Error(`partition ${this.partition} of topic ${this.topicId} was deleted`)
  }

  /**
   * Runs structural changes (truncation, a new log start, rewrites) one at a time: each reads what is stored and
   * adjusts the bookkeeping from it, so two at once could count a deleted batch twice or write one back.
   */
  private exclusive<T>(operation: () => Promise<T>): Promise<T> {
    const run = this.maintenance.then(operation, operation)
    this.maintenance = run.catch(() => undefined)
    return run
  }

  /** Refuses every later change: the partition's topic is being deleted. */
  markDeleted(): void {
    this.deleted = true
  }

  private assignEpoch(epoch: number, startOffset: bigint): void {
    if (epoch >= 0 && epoch > this.latestEpoch) this.epochs = [...this.epochs, { epoch, startOffset }]
  }

  private queue(entry: Entry): void {
    this.logEndOffset = entry.lastOffset + 1n
    this.sizeBytes += entry.batch.length
    this.unflushed.push(entry)
    this.unflushedBytes += entry.batch.length
    this.tail.push(entry)
    this.tailBytes += entry.batch.length
    while (this.tailBytes > this.options.tailCacheBytes && this.tail.length > 1) {
      this.tailBytes -= this.tail.shift()!.batch.length
    }
  }

  drainInto(batch: WriteBatch, seq: number): () => void {
    // Removals first: a batch appended after a truncation may reuse the key of a removed one.
    for (const key of this.removed) batch.del(key)
    this.removed = []
    for (const { key, batch: value } of this.rewritten) {
      if (value === null) batch.del(key)
      else batch.put(key, value)
    }
    this.rewritten = []
    let taken = 0
    for (; taken < this.unflushed.length && this.unflushed[taken]!.flush <= seq; taken++) {
      const entry = this.unflushed[taken]!
      batch.put(this.db.logKey(this.key, entry.lastOffset), entry.batch)
      this.unflushedBytes -= entry.batch.length
    }
    this.unflushed = taken === this.unflushed.length ? [] : this.unflushed.slice(taken)
    // What this write makes durable ends where the entries left for a later write begin.
    const end = this.unflushed[0]?.baseOffset ?? this.logEndOffset
    batch.put(this.stateKey, packr.pack(this.state(end)))
    return () => {
      if (end > this.durableEndOffset) this.durableEndOffset = end
    }
  }

  /**
   * The state record as of a write that ends at `end`: entries past it are not in that write, so neither are their
   * offsets, bytes or epochs. Its recovery point is the end of what earlier (completed) writes hold.
   */
  private state(end: bigint): PartitionState {
    return {
      logStartOffset: this.logStartOffset,
      logEndOffset: end,
      highWatermark: this.highWatermark,
      recoveryPoint: this.durableEndOffset,
      epochs: end === this.logEndOffset ? this.epochs : this.epochs.filter((e) => e.startOffset < end),
      sizeBytes: this.sizeBytes - this.unflushedBytes,
    }
  }

  setHighWatermark(offset: bigint): void {
    this.highWatermark = offset < this.durableEndOffset ? offset : this.durableEndOffset
  }

  /**
   * Whole batches from the one holding `fetchOffset`, up to (not including) offset `upTo`, stopping before
   * `maxBytes` would be passed; with `minOne` the first batch is returned even when it alone is larger (Kafka's
   * minOneMessage).
   */
  async read(fetchOffset: bigint, maxBytes: number, upTo: bigint, minOne = true): Promise<Buffer[]> {
    if (fetchOffset >= upTo) return []
    const limit = (taken: number, bytes: number, next: number): boolean =>
      (taken > 0 || !minOne) && bytes + next > maxBytes
    const tail = this.tail
    if (tail.length > 0 && fetchOffset >= tail[0]!.baseOffset) return this.readTail(fetchOffset, upTo, limit)
    const batches: Buffer[] = []
    let bytes = 0
    const iterator = this.db.db.values({
      gte: this.db.logKey(this.key, fetchOffset),
      lt: this.db.logKey(this.key, upTo),
      fillCache: false,
      highWaterMarkBytes: Math.min(Math.max(maxBytes, 64 * 1024), 64 * 1024 * 1024),
    })
    try {
      // Ask LevelDB for about as many values as the budget still holds (by the average size so far): each value it
      // hands over is copied into a JS buffer, so over-asking costs as much as reading.
      let wanted = 1024
      for (;;) {
        const values = await iterator.nextv(wanted)
        if (values.length === 0) break
        for (const value of values) {
          if (limit(batches.length, bytes, value.length)) return batches
          batches.push(value)
          bytes += value.length
        }
        wanted = Math.max(1, Math.min(1024, Math.ceil((maxBytes - bytes) / (bytes / batches.length)) + 1))
      }
    } finally {
      await iterator.close()
    }
    return batches
  }

  private readTail(
    fetchOffset: bigint,
    upTo: bigint,
    limit: (taken: number, bytes: number, next: number) => boolean,
  ): Buffer[] {
    const tail = this.tail
    let low = 0
    let high = tail.length
    while (low < high) {
      const mid = (low + high) >>> 1
      if (tail[mid]!.lastOffset < fetchOffset) low = mid + 1
      else high = mid
    }
    const batches: Buffer[] = []
    let bytes = 0
    for (let i = low; i < tail.length; i++) {
      const entry = tail[i]!
      if (entry.lastOffset >= upTo) break
      if (limit(batches.length, bytes, entry.batch.length)) break
      batches.push(entry.batch)
      bytes += entry.batch.length
    }
    return batches
  }

  /** The first batch whose max timestamp is >= `timestamp`, searched from the log start; null if none. */
  async findBatchByTimestamp(timestamp: bigint, upTo: bigint): Promise<Buffer | null> {
    for await (const batch of this.scan(this.logStartOffset, upTo)) {
      if (batch.readBigInt64BE(At.maxTimestamp) >= timestamp) return batch
    }
    return null
  }

  /** Every batch in [from, upTo), in offset order. */
  async *scan(from: bigint, upTo: bigint): AsyncGenerator<Buffer> {
    const iterator = this.db.db.values({
      gte: this.db.logKey(this.key, from),
      lt: this.db.logKey(this.key, upTo),
      fillCache: false,
      highWaterMarkBytes: 4 * 1024 * 1024,
    })
    try {
      for (;;) {
        const values = await iterator.nextv(256)
        if (values.length === 0) return
        yield* values
      }
    } finally {
      await iterator.close()
    }
  }

  /**
   * Removes every batch at or above `offset` (a follower truncating to its leader). The log end becomes the start
   * of the first removed batch, so the log always ends on a batch boundary; a log cut below its start is left empty,
   * starting where it ends.
   */
  truncateTo(offset: bigint): Promise<void> {
    return this.exclusive(() => this.truncate(offset))
  }

  private async truncate(offset: bigint): Promise<void> {
    this.checkWritable()
    if (offset >= this.logEndOffset) return
    // The batch that holds `offset` is looked up in LevelDB, so everything appended so far must be there first.
    await this.commit.settle()
    this.checkWritable()
    const removed: Buffer[] = []
    let newEnd = offset
    const range = this.db.logRange(this.key)
    for await (const [key, batch] of this.db.db.iterator({ gte: this.db.logKey(this.key, offset), lt: range.lt })) {
      removed.push(key)
      this.sizeBytes -= batch.length
      const base = batch.readBigInt64BE(At.baseOffset)
      if (base < newEnd) newEnd = base
    }
    this.logEndOffset = newEnd
    this.durableEndOffset = newEnd
    if (this.highWatermark > newEnd) this.highWatermark = newEnd
    if (this.logStartOffset > newEnd) this.logStartOffset = newEnd
    this.epochs = this.epochs.filter((e) => e.startOffset < newEnd)
    this.tail = this.tail.filter((e) => e.lastOffset < newEnd)
    this.tailBytes = this.tail.reduce((sum, e) => sum + e.batch.length, 0)
    this.removed.push(...removed)
    await this.commit.add(this).done
  }

  /**
   * Moves the log start to `offset` (retention, DeleteRecords), never past the high watermark, and deletes the
   * batches wholly below it. The batch that holds `offset` stays; reads below the log start are refused by the caller.
   */
  deleteBefore(offset: bigint): Promise<void> {
    return this.exclusive(() => this.moveLogStart(offset))
  }

  private async moveLogStart(offset: bigint): Promise<void> {
    this.checkWritable()
    const logStartOffset = offset < this.highWatermark ? offset : this.highWatermark
    if (logStartOffset <= this.logStartOffset) return
    const range = this.db.logRange(this.key)
    const end = this.db.logKey(this.key, logStartOffset)
    let deletedBytes = 0
    for await (const batch of this.db.db.values({ gte: range.gte, lt: end, fillCache: false })) deletedBytes += batch.length
    this.logStartOffset = logStartOffset
    this.sizeBytes -= deletedBytes
    this.tail = this.tail.filter((e) => e.lastOffset >= logStartOffset)
    this.tailBytes = this.tail.reduce((sum, e) => sum + e.batch.length, 0)
    // The new log start is recorded before any batch goes, so a crash in between leaves batches nobody reads
    // rather than a log start pointing at deleted batches.
    await this.commit.add(this).done
    await this.db.clear({ gte: range.gte, lt: end })
    // Deleted keys are tombstones until compaction reaches them, and seeks over many tombstones are slow.
    await this.db.compactRange(range.gte, end)
  }

  /**
   * Replaces stored batches below the high watermark with smaller ones, or removes them, keeping every offset where
   * it was (compaction). It goes through the group commit, so the state written with it carries a recovery point past
   * every rewritten batch and recovery never mistakes a removed batch for a gap.
   */
  rewrite(changes: readonly Rewrite[]): Promise<void> {
    return this.exclusive(() => this.replace(changes))
  }

  private async replace(changes: readonly Rewrite[]): Promise<void> {
    this.checkWritable()
    let bytes = 0
    for (const { previous, replacement } of changes) {
      const lastOffset = lastOffsetOf(previous)
      // Deleted by retention or DeleteRecords since the caller read it: writing it back would resurrect it.
      if (lastOffset < this.logStartOffset) continue
      if (lastOffset >= this.highWatermark) throw new RangeError(`batch ending at ${lastOffset} is not below the high watermark`)
      this.rewritten.push({ key: this.db.logKey(this.key, lastOffset), batch: replacement })
      bytes += replacement?.length ?? 0
      this.sizeBytes += (replacement?.length ?? 0) - previous.length
      const at = this.tail.findIndex((e) => e.lastOffset === lastOffset)
      if (at >= 0) {
        this.tailBytes += (replacement?.length ?? 0) - this.tail[at]!.batch.length
        if (replacement) this.tail[at] = { ...this.tail[at]!, batch: replacement }
        else this.tail.splice(at, 1)
      }
    }
    await this.commit.add(this, bytes).done
  }
}

/**
 * Checks what the last write may have left half-done and cuts the log after the last good batch. Batches below the
 * recovery point were written by completed writes; from there on, each batch must be whole and valid on its own
 * and continue the offsets exactly:
 *
 *   ... | recovery point | base = end | base = previous last + 1 | ... | first bad entry -> cut, with all after it
 *
 * The first batch checked may start before `end` only when `end` is a log start inside that batch (the batches
 * below it were deleted).
 */
async function recover(db: NodeDatabase, key: Buffer, stored: PartitionState): Promise<PartitionState> {
  const range = db.logRange(key)
  let end = stored.recoveryPoint > stored.logStartOffset ? stored.recoveryPoint : stored.logStartOffset
  const bad: Buffer[] = []
  let badBytes = 0
  for await (const [entryKey, batch] of db.db.iterator({ gte: db.logKey(key, end), lt: range.lt })) {
    const base = batch.length >= BATCH_HEADER_SIZE ? batch.readBigInt64BE(At.baseOffset) : -1n
    const continues = base === end || (end === stored.logStartOffset && base >= 0n && base < end)
    const ok = bad.length === 0 && isWholeBatch(entryKey, batch) && continues
    if (ok) end = lastOffsetOf(batch) + 1n
    else {
      bad.push(entryKey)
      badBytes += batch.length
    }
  }
  const recovered: PartitionState = {
    logStartOffset: stored.logStartOffset,
    logEndOffset: end,
    highWatermark: stored.highWatermark < end ? stored.highWatermark : end,
    recoveryPoint: end,
    epochs: stored.epochs.filter((e) => e.startOffset < end),
    sizeBytes: Math.max(0, stored.sizeBytes - badBytes),
  }
  if (bad.length > 0) {
    // The cut and the state that describes it go together, so the state record never claims what was cut.
    await db.write((batch) => {
      for (const entryKey of bad) batch.del(entryKey)
      batch.put(db.partitionStateKey(key), packr.pack(recovered))
    })
  }
  return recovered
}

/** A complete, intact magic-2 batch stored under its own last offset. */
function isWholeBatch(entryKey: Buffer, batch: Buffer): boolean {
  return (
    batch.length >= BATCH_HEADER_SIZE &&
    batch.readInt32BE(At.batchLength) + LOG_OVERHEAD === batch.length &&
    batch.readInt8(At.magic) === MAGIC &&
    batch.readInt32BE(At.lastOffsetDelta) >= 0 &&
    entryKey.readBigInt64BE(entryKey.length - 8) === lastOffsetOf(batch) &&
    computeCrc(batch) === batch.readUInt32BE(At.crc)
  )
}
