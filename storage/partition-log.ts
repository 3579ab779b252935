/**
 * A partition's log on LevelDB: whole record batches under `log | partitionKey | lastOffset`, plus one state record.
 *
 *   logStartOffset <= highWatermark <= durableEndOffset <= logEndOffset
 *   |-- deleted --|-- readable --|-- written, not yet exposed --|-- queued for the next write --|
 *
 * - `append` assigns offsets synchronously (so appends keep arrival order), stamps baseOffset and the leader epoch
 *   into the batch, and queues it for the node's group commit; its promise resolves once the batch is written.
 * - The state record (log start, log end, high watermark, recovery point, leader-epoch cache) is written in the same
 *   LevelDB batch as the data it describes, so the two never disagree.
 * - The high watermark is set by the owner (the broker: = durable end on one node, = what the ISR has with
 *   replication); reads never go past the bound the caller gives.
 * - Recent batches stay in memory (the tail cache) so consumers that keep up are served without touching LevelDB.
 * - On open, batches written since the last recovery point are checked (contiguous offsets, CRC) and anything after
 *   the first bad one is cut off, so a torn write is never served.
 */
import { NodeDatabase, partitionKey, packr } from './database.js'
import type { Flushable, GroupCommit } from './group-commit.js'
import {
  At,
  BATCH_HEADER_SIZE,
  LOG_OVERHEAD,
  computeCrc,
  lastOffsetOf,
  setBaseOffset,
  setLogAppendTime,
  setPartitionLeaderEpoch,
} from '../protocol/record-batch.js'

type ChainedBatch = Parameters<Flushable['drainInto']>[0]

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
}

export class PartitionLog implements Flushable {
  logStartOffset: bigint
  /** The next offset to assign. */
  logEndOffset: bigint
  /** End of what LevelDB has confirmed written. */
  durableEndOffset: bigint
  highWatermark: bigint
  private epochs: EpochEntry[]
  private readonly key: Buffer
  private readonly stateKey: Buffer
  private unflushed: Entry[] = []
  private tail: Entry[] = []
  private tailBytes = 0

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

  /** Creates the state record of a new partition so that it exists before the first append. */
  static async create(
    db: NodeDatabase,
    commit: GroupCommit,
    topicId: string,
    partition: number,
    options: PartitionLogOptions,
  ): Promise<PartitionLog> {
    await db.partitions.put(partitionKey(topicId, partition), EMPTY_STATE)
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
    const baseOffset = this.logEndOffset
    const lastOffset = baseOffset + BigInt(batch.readInt32BE(At.lastOffsetDelta))
    setBaseOffset(batch, baseOffset)
    setPartitionLeaderEpoch(batch, options.leaderEpoch)
    if (options.logAppendTime !== undefined) setLogAppendTime(batch, options.logAppendTime)
    this.assignEpoch(options.leaderEpoch, baseOffset)
    this.queue({ baseOffset, lastOffset, batch })
    await this.commit.add(this)
    return { baseOffset, lastOffset }
  }

  private assignEpoch(epoch: number, startOffset: bigint): void {
    if (epoch >= 0 && epoch > this.latestEpoch) this.epochs = [...this.epochs, { epoch, startOffset }]
  }

  private queue(entry: Entry): void {
    this.logEndOffset = entry.lastOffset + 1n
    this.unflushed.push(entry)
    this.tail.push(entry)
    this.tailBytes += entry.batch.length
    while (this.tailBytes > this.options.tailCacheBytes && this.tail.length > 1) {
      this.tailBytes -= this.tail.shift()!.batch.length
    }
  }

  drainInto(batch: ChainedBatch): () => void {
    const entries = this.unflushed
    this.unflushed = []
    for (const entry of entries) batch.put(this.db.logKey(this.key, entry.lastOffset), entry.batch)
    const end = this.logEndOffset
    batch.put(this.stateKey, packr.pack(this.state({ logEndOffset: end, recoveryPoint: this.durableEndOffset })))
    return () => {
      if (end > this.durableEndOffset) this.durableEndOffset = end
    }
  }

  private state(overrides: Partial<PartitionState> = {}): PartitionState {
    return {
      logStartOffset: this.logStartOffset,
      logEndOffset: this.logEndOffset,
      highWatermark: this.highWatermark,
      recoveryPoint: this.durableEndOffset,
      epochs: this.epochs,
      ...overrides,
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
      for (;;) {
        const values = await iterator.nextv(256)
        if (values.length === 0) break
        for (const value of values) {
          if (limit(batches.length, bytes, value.length)) return batches
          batches.push(value)
          bytes += value.length
        }
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
   * of the first removed batch, so the log always ends on a batch boundary.
   */
  async truncateTo(offset: bigint): Promise<void> {
    if (offset >= this.logEndOffset) return
    await this.commit.settle()
    const range = this.db.logRange(this.key)
    const keys: Buffer[] = []
    let newEnd = offset
    for await (const [key, batch] of this.db.db.iterator({ gte: this.db.logKey(this.key, offset), lt: range.lt })) {
      keys.push(key)
      const base = batch.readBigInt64BE(At.baseOffset)
      if (base < newEnd) newEnd = base
    }
    this.logEndOffset = newEnd
    this.durableEndOffset = newEnd
    if (this.highWatermark > newEnd) this.highWatermark = newEnd
    this.epochs = this.epochs.filter((e) => e.startOffset < newEnd)
    this.tail = this.tail.filter((e) => e.lastOffset < newEnd)
    this.tailBytes = this.tail.reduce((sum, e) => sum + e.batch.length, 0)
    const batch = this.db.db.batch()
    for (const key of keys) batch.del(key)
    batch.put(this.stateKey, packr.pack(this.state()))
    await batch.write()
  }

  /**
   * Moves the log start to `offset` (retention, DeleteRecords) and deletes the batches wholly below it. The batch
   * that holds `offset` stays; reads below the log start are refused by the caller.
   */
  async deleteBefore(offset: bigint): Promise<void> {
    if (offset <= this.logStartOffset) return
    this.logStartOffset = offset > this.highWatermark ? this.highWatermark : offset
    await this.db.db.put(this.stateKey, packr.pack(this.state()))
    const range = this.db.logRange(this.key)
    const end = this.db.logKey(this.key, this.logStartOffset)
    await this.db.db.clear({ gte: range.gte, lt: end })
    // Deleted keys are tombstones until compaction reaches them, and seeks over many tombstones are slow.
    await this.db.compactRange(range.gte, end)
    this.tail = this.tail.filter((e) => e.lastOffset >= this.logStartOffset)
    this.tailBytes = this.tail.reduce((sum, e) => sum + e.batch.length, 0)
  }
}

/** Checks what the last write may have left half-done and cuts the log after the last good batch. */
async function recover(db: NodeDatabase, key: Buffer, stored: PartitionState): Promise<PartitionState> {
  const range = db.logRange(key)
  let end = stored.recoveryPoint > stored.logStartOffset ? stored.recoveryPoint : stored.logStartOffset
  const bad: Buffer[] = []
  // The batch that ends just below the recovery point sets where the next batch must start.
  for await (const [entryKey, batch] of db.db.iterator({ gte: db.logKey(key, end), lt: range.lt })) {
    const ok =
      bad.length === 0 &&
      batch.length >= BATCH_HEADER_SIZE &&
      batch.readInt32BE(At.batchLength) + LOG_OVERHEAD === batch.length &&
      entryKey.readBigInt64BE(entryKey.length - 8) === lastOffsetOf(batch) &&
      (batch.readBigInt64BE(At.baseOffset) === end || (batch.readBigInt64BE(At.baseOffset) < end && lastOffsetOf(batch) >= end)) &&
      computeCrc(batch) === batch.readUInt32BE(At.crc)
    if (ok) end = lastOffsetOf(batch) + 1n
    else bad.push(entryKey)
  }
  if (bad.length > 0) {
    const batch = db.db.batch()
    for (const entryKey of bad) batch.del(entryKey)
    await batch.write()
  }
  const logEndOffset = end
  return {
    logStartOffset: stored.logStartOffset,
    logEndOffset,
    highWatermark: stored.highWatermark < logEndOffset ? stored.highWatermark : logEndOffset,
    recoveryPoint: logEndOffset,
    epochs: stored.epochs.filter((e) => e.startOffset < logEndOffset),
  }
}
