/**
 * The LevelDB engine of a partition log (the PartitionLog contract is in partition-log.ts): whole record batches
 * under `log | partitionKey | lastOffset`, the time index under `time | partitionKey | offset`, and one state record.
 *
 * - `append` assigns offsets synchronously (so appends keep arrival order), stamps baseOffset and the leader epoch
 *   into the batch, and queues it for the node's group commit; its promise resolves once the batch is written.
 * - The state record (log start, log end, high watermark, recovery point, leader-epoch cache, time index state,
 *   cleaner checkpoint) and the time index entries are written in the same LevelDB batch as the data they describe,
 *   so they never disagree with it. Every write of the log's keys goes through the group commit (appends,
 *   truncation, a new log start, rewrites), so a write that carries an older state cannot land after a newer one.
 *   Only the deletion of keys below a new log start runs outside it, after the state that makes them unreadable.
 * - The high watermark is set by the owner. A read stops at the caller's `upTo` (a consumer's: the high watermark)
 *   and at the log end; LevelDB is read only below the durable end, so a batch past it (appended, its write not yet
 *   done: what a follower's replica fetch may take) comes from the batch cache or not at all.
 * - Recent batches are served from the node's batch cache (batch-cache.ts) without touching LevelDB.
 * - On open, batches written since the last recovery point are checked (contiguous offsets, CRC) and anything after
 *   the first bad one is cut off, with its time index entries, so a torn write is never served. A log stored without
 *   a time index gets one built.
 * - Structural changes (truncation, a new log start, rewrites) run one at a time; `truncateTo` must not run
 *   concurrently with appends to the same log (a follower truncates before it fetches).
 *
 * How ListOffsets uses the time index (time-index.ts), with `T` the search timestamp:
 *
 *   binary search: last entry with maxTimestampSoFar < T  ->  every record before it is older than T
 *   -> blocks from there, skipping those whose blockMaxTimestamp < T without reading them
 *   -> the first block that may hold one: its batches, the first whose maxTimestamp >= T, its records
 *      (through the caller's RecordSearch: the first record at or above the log start with timestamp >= T)
 *
 * MAX_TIMESTAMP keeps the batch that holds the largest timestamp once it knows it (appends update it; a deletion,
 * truncation or rewrite of that batch forgets it). Finding it again reads the index entries and the batches of the
 * block whose blockMaxTimestamp is largest (more blocks only where compaction loosened the bounds).
 */
import { NodeDatabase, StorageError, packr, partitionKey, type WriteBatch } from './database.js'
import type { Flushable, GroupCommit } from './group-commit.js'
import type { BatchCache, CacheRun } from './batch-cache.js'
import { assignEpoch, epochsBelow, type EpochEntry } from './leader-epochs.js'
import {
  EMPTY_TIME_INDEX,
  NO_TIMESTAMP,
  TimeIndexReader,
  encodeEntry,
  indexAppend,
  indexStateAfter,
  type IndexedBatch,
  type TimeIndexEntry,
  type TimeIndexState,
} from './time-index.js'
import {
  NO_CLEANER_CHECKPOINT,
  storedBatch,
  type AppendOptions,
  type AppendResult,
  type CleanerCheckpoint,
  type PartitionLog,
  type ReadOptions,
  type Rewrite,
  type StoredBatch,
  type TimestampMatch,
  type TimestampSearch,
} from './partition-log.js'
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

/** The state record, msgpack-encoded under `partition | partitionKey`. */
export interface PartitionState {
  logStartOffset: bigint
  logEndOffset: bigint
  highWatermark: bigint
  /** Every batch below this offset was written by an earlier, completed write. */
  recoveryPoint: bigint
  epochs: readonly EpochEntry[]
  /** Bytes of the stored batches (retention.bytes). */
  sizeBytes: number
  /** Absent in a log stored before the time index existed: recovery builds one. */
  timeIndex?: TimeIndexState
  /** Absent in a log stored before the cleaner checkpoint existed. */
  cleaner?: CleanerCheckpoint
  /** The MAX_TIMESTAMP batch of the written log, when known (null: no batches); absent when not known. */
  maxTimestampBatch?: MaxTimestampBatch | null
}

/** The state a log opens with: everything the state record may lack is filled in, but MAX_TIMESTAMP may be unknown. */
type OpenState = Required<Omit<PartitionState, 'maxTimestampBatch'>> & Pick<PartitionState, 'maxTimestampBatch'>

/** What every log of a node shares. */
export interface LogContext {
  db: NodeDatabase
  commit: GroupCommit
  cache: BatchCache
}

interface Entry {
  baseOffset: bigint
  lastOffset: bigint
  maxTimestamp: bigint
  batch: Buffer
  /** The group-commit flush that writes it. */
  flush: number
  /** The batch of that flush's write it was put in when appended (GroupCommit.staging), if any. */
  staged: WriteBatch | null
  /** The time index entry this batch completes, written with it. */
  timeEntry: TimeIndexEntry | null
  /** The time index state once this batch is in. */
  timeState: TimeIndexState
}

/** A key to put (value) or delete (null) in the log's next write. */
interface KeyChange {
  key: Buffer
  value: Buffer | null
}

/** The batch that holds the first record with the log's largest timestamp. */
interface MaxTimestampBatch {
  maxTimestamp: bigint
  baseOffset: bigint
  lastOffset: bigint
}

const EMPTY_STATE: OpenState = {
  logStartOffset: 0n,
  logEndOffset: 0n,
  highWatermark: 0n,
  recoveryPoint: 0n,
  epochs: [],
  sizeBytes: 0,
  timeIndex: EMPTY_TIME_INDEX,
  cleaner: NO_CLEANER_CHECKPOINT,
  maxTimestampBatch: null,
}

/**
 * The most a LevelDB iterator reads ahead in one `nextv` (its highWaterMarkBytes) when batches are read. The native
 * iterator gathers that many bytes of values in a libuv thread before they are copied into JS buffers and freed; when
 * a chunk is large (a fetch's 8 MiB), the allocator hands the freed memory back to the kernel and the next chunk
 * takes fresh pages again, a page fault per 4 KiB on both sides of the copy. Chunks of 1 MiB are reused instead:
 * reading 256 MB back in 8 MiB reads costs 3.6 ms of CPU and 143 page faults per MB with a 1 MiB read-ahead, 5.3 ms
 * and 266 faults with 8 MiB (`node dist/bench/read-ahead.js`, storage/README.md "Reading from LevelDB"). Below
 * 512 KiB the thread-pool round trips of more `nextv` calls cost more than the faults they save.
 */
const READ_AHEAD_BYTES = 1024 * 1024

/** How many blocks MAX_TIMESTAMP keeps as candidates while it reads the index (see findMaxTimestampBatch). */
const MAX_TIMESTAMP_CANDIDATES = 8

const min = (a: bigint, b: bigint): bigint => (a < b ? a : b)
const max = (a: bigint, b: bigint): bigint => (a > b ? a : b)

/**
 * Appends `items` to `target` one by one: `target.push(...items)` passes every item as an argument, and V8 throws
 * RangeError (Maximum call stack size exceeded) from about 125,000 of them, which one truncation, one fresh start or
 * one compaction rewrite of that many batches reaches (a compacted partition of single-record batches did, and was
 * then left uncleanable until the node restarted).
 */
function appendAll<T>(target: T[], items: readonly T[]): void {
  for (const item of items) target.push(item)
}

export class LevelPartitionLog implements PartitionLog, Flushable {
  private start: bigint
  private end: bigint
  private durableEnd: bigint
  private watermark: bigint
  /** The high watermark of the last state record drained into a write: what a crash now would recover. */
  private storedWatermark: bigint
  private bytes: number
  private epochs: readonly EpochEntry[]
  private checkpoint: CleanerCheckpoint
  /** The time index state at the log end (queued batches included). */
  private timeState: TimeIndexState
  /** The time index state as of everything drained into a write so far. */
  private writtenTimeState: TimeIndexState
  /** The MAX_TIMESTAMP batch among the written batches: undefined until known, null for a log without batches. */
  private maxBatch: MaxTimestampBatch | null | undefined = undefined
  /** Bumped by every structural change (truncation, a new log start, a rewrite), so a lookup that raced one does not keep its answer. */
  private generation = 0
  private readonly key: Buffer
  private readonly stateKey: Buffer
  private readonly index: TimeIndexReader
  private readonly run: CacheRun
  private unflushed: Entry[] = []
  private unflushedBytes = 0
  /** Keys changed by truncation and rewrites, written by the next write before any queued batch. */
  private changes: KeyChange[] = []
  private deleted = false
  private maintenance: Promise<unknown> = Promise.resolve()
  /** Offsets below which a read found gaps between batches and LevelDB reported no corruption (checkGap). */
  private gapsCheckedUpTo = 0n

  private constructor(
    private readonly context: LogContext,
    readonly topicId: string,
    readonly partition: number,
    state: OpenState,
  ) {
    this.key = partitionKey(topicId, partition)
    this.stateKey = context.db.partitionStateKey(this.key)
    this.index = new TimeIndexReader(context.db, this.key)
    this.run = context.cache.run()
    this.start = state.logStartOffset
    this.end = state.logEndOffset
    this.durableEnd = state.logEndOffset
    this.watermark = state.highWatermark
    this.storedWatermark = state.highWatermark
    this.epochs = state.epochs
    this.bytes = state.sizeBytes
    this.checkpoint = state.cleaner
    this.timeState = state.timeIndex
    this.writtenTimeState = state.timeIndex
    this.maxBatch = state.maxTimestampBatch
  }

  static async open(context: LogContext, topicId: string, partition: number): Promise<LevelPartitionLog> {
    const key = partitionKey(topicId, partition)
    const stored = (await context.db.partitions.get(key)) as PartitionState | undefined
    const state = await recover(context.db, key, stored ?? EMPTY_STATE)
    return new LevelPartitionLog(context, topicId, partition, state)
  }

  /**
   * Creates the state record of a new partition so that it exists before the first append. A partition that already
   * has one is opened instead: writing an empty state over it would restart its offsets at 0 over the old batches.
   */
  static async create(context: LogContext, topicId: string, partition: number): Promise<LevelPartitionLog> {
    const db = context.db
    db.checkWritable()
    const key = partitionKey(topicId, partition)
    if ((await db.partitions.get(key)) !== undefined) return LevelPartitionLog.open(context, topicId, partition)
    await db.write((batch) => void batch.put(db.partitionStateKey(key), packr.pack(EMPTY_STATE)))
    return new LevelPartitionLog(context, topicId, partition, EMPTY_STATE)
  }

  get logStartOffset(): bigint {
    return this.start
  }

  get logEndOffset(): bigint {
    return this.end
  }

  get durableEndOffset(): bigint {
    return this.durableEnd
  }

  get highWatermark(): bigint {
    return this.watermark
  }

  get sizeBytes(): number {
    return this.bytes
  }

  get latestEpoch(): number {
    return this.epochs.at(-1)?.epoch ?? -1
  }

  get epochCache(): readonly EpochEntry[] {
    return this.epochs
  }

  assignEpochStartOffset(epoch: number): void {
    this.epochs = assignEpoch(this.epochs, epoch, this.end)
  }

  get cleanerCheckpoint(): CleanerCheckpoint {
    return this.checkpoint
  }

  async append(batch: Buffer, options: AppendOptions): Promise<AppendResult> {
    this.checkWritable()
    const baseOffset = options.baseOffset ?? this.end
    if (baseOffset < this.end) throw new RangeError(`a batch at offset ${baseOffset} cannot be appended below the log end ${this.end}`)
    const lastOffset = baseOffset + BigInt(batch.readInt32BE(At.lastOffsetDelta))
    setBaseOffset(batch, baseOffset)
    setPartitionLeaderEpoch(batch, options.leaderEpoch)
    if (options.logAppendTime !== undefined) setLogAppendTime(batch, options.logAppendTime)
    this.epochs = assignEpoch(this.epochs, options.leaderEpoch, baseOffset)
    const maxTimestamp = batch.readBigInt64BE(At.maxTimestamp)
    const indexed = indexAppend(this.timeState, { lastOffset, maxTimestamp, sizeBytes: batch.length })
    this.timeState = indexed.state
    const ticket = this.context.commit.add(this, batch.length)
    const staged = this.context.commit.staging(ticket)
    if (staged) this.put(staged, lastOffset, batch, indexed.entry)
    this.end = lastOffset + 1n
    this.bytes += batch.length
    this.unflushed.push({ baseOffset, lastOffset, maxTimestamp, batch, flush: ticket.seq, staged, timeEntry: indexed.entry, timeState: indexed.state })
    this.unflushedBytes += batch.length
    this.run.append({ baseOffset, lastOffset, bytes: batch })
    await ticket.done
    return { baseOffset, lastOffset }
  }

  /** A store whose write failed takes no more changes (nor offsets): they could never be written. */
  private checkWritable(): void {
    this.context.db.checkWritable()
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

  markDeleted(): void {
    this.deleted = true
    this.run.clear()
  }

  drainInto(batch: WriteBatch, seq: number): () => void {
    // Changed keys first: a batch appended after a truncation may reuse the key of a removed one.
    // Entries staged in this batch are put again after changes, which they must follow (group-commit.ts, "Staging").
    const restage = this.changes.length > 0
    for (const { key, value } of this.changes) {
      if (value === null) batch.del(key)
      else batch.put(key, value)
    }
    this.changes = []
    let taken = 0
    for (; taken < this.unflushed.length && this.unflushed[taken]!.flush <= seq; taken++) {
      const entry = this.unflushed[taken]!
      if (restage || entry.staged !== batch) this.put(batch, entry.lastOffset, entry.batch, entry.timeEntry)
      entry.staged = null
      this.unflushedBytes -= entry.batch.length
      this.writtenTimeState = entry.timeState
    }
    const drained = this.unflushed.slice(0, taken)
    this.unflushed = taken === this.unflushed.length ? [] : this.unflushed.slice(taken)
    // What this write makes durable ends where the entries left for a later write begin. The write before this one
    // has completed (writes run one at a time), so maxBatch covers everything written before it.
    const end = this.unflushed[0]?.baseOffset ?? this.end
    const maxBatch = withWritten(this.maxBatch, drained)
    batch.put(this.stateKey, packr.pack(this.state(end, maxBatch)))
    this.storedWatermark = this.watermark
    return () => {
      if (end > this.durableEnd) this.durableEnd = end
      this.maxBatch = withWritten(this.maxBatch, drained)
    }
  }

  /** Puts an appended batch, and the time index entry it completes, into `batch`. */
  private put(batch: WriteBatch, lastOffset: bigint, bytes: Buffer, timeEntry: TimeIndexEntry | null): void {
    batch.put(this.context.db.logKey(this.key, lastOffset), bytes)
    if (timeEntry) batch.put(this.index.key(timeEntry.offset), encodeEntry(timeEntry))
  }

  /**
   * The state record as of a write that ends at `end`: entries past it are not in that write, so neither are their
   * offsets, bytes or epochs. Its recovery point is the end of what earlier (completed) writes hold.
   */
  private state(end: bigint, maxBatch: MaxTimestampBatch | null | undefined): PartitionState {
    const state: PartitionState = {
      logStartOffset: this.start,
      logEndOffset: end,
      highWatermark: this.watermark,
      recoveryPoint: this.durableEnd,
      epochs: epochsBelow(this.epochs, end),
      sizeBytes: this.bytes - this.unflushedBytes,
      timeIndex: this.writtenTimeState,
      cleaner: this.checkpoint,
    }
    // Added after, not spread in first: V8 builds a literal that opens with a spread on a slow path, and this record
    // is built at every write (10-13 µs against 0.3 µs, and msgpack packs the result in 3.5 µs instead of about 6).
    if (maxBatch !== undefined) state.maxTimestampBatch = maxBatch
    return state
  }

  /**
   * Whether the high watermark moved since the last write of the state record, so a crash now would bring back an
   * older one (LogStore.checkpointHighWatermarks writes it then). A deleted log never needs it.
   */
  get highWatermarkUnstored(): boolean {
    return !this.deleted && this.watermark !== this.storedWatermark
  }

  setHighWatermark(offset: bigint): void {
    this.watermark = offset < this.durableEnd ? offset : this.durableEnd
  }

  async read(fetchOffset: bigint, options: ReadOptions): Promise<Buffer[]> {
    // Past the durable end only the batch cache holds batches (LevelDB does not have them yet); see ReadOptions.upTo.
    const upTo = min(options.upTo, this.end)
    const batches: Buffer[] = []
    let bytes = 0
    const fits = (size: number): boolean => (batches.length === 0 && options.minOneMessage) || bytes + size <= options.maxBytes
    /** Adds `batch` if it fits the budget; false when it does not (the read is done). */
    const take = (batch: Buffer): boolean => {
      if (!fits(batch.length)) return false
      batches.push(batch)
      bytes += batch.length
      return true
    }
    let next = fetchOffset
    while (next < upTo) {
      const cachedFrom = this.run.baseOffset
      if (cachedFrom !== null && next >= cachedFrom) {
        // Sizes are looked at before any batch is taken out of the cache (a copy, or a view under the read's lease).
        for (let i = this.run.indexOf(next); i < this.run.length && this.run.lastOffsetAt(i) < upTo && fits(this.run.sizeAt(i)); i++) {
          take(this.run.at(i, { lease: options.lease }).bytes)
        }
        return batches
      }
      // From LevelDB up to where the cache begins, never past what LevelDB holds (a batch past the durable end that is
      // not cached is read once it is written); by then the cache may have moved on, so look again.
      const storedUpTo = min(cachedFrom !== null && cachedFrom < upTo ? cachedFrom : upTo, this.durableEnd)
      if (next >= storedUpTo) return batches
      if (await this.readStored(next, storedUpTo, options.maxBytes - bytes, take)) return batches
      next = storedUpTo
    }
    return batches
  }

  /**
   * Hands `take` the batches LevelDB holds from the one holding `from`, ending below `upTo`, until it refuses one;
   * true if it did. LevelDB is asked for about as many values as `budget` bytes still hold (by the average size so
   * far): each value it hands over is copied into a JS buffer, so over-asking costs as much as reading. Each `nextv`
   * brings at most READ_AHEAD_BYTES, however large the budget.
   */
  private async readStored(from: bigint, upTo: bigint, budget: number, take: (batch: Buffer) => boolean): Promise<boolean> {
    const db = this.context.db
    let count = 0
    let bytes = 0
    let expected = from
    const iterator = db.db.values({
      gte: db.logKey(this.key, from),
      lt: db.logKey(this.key, upTo),
      fillCache: false,
      highWaterMarkBytes: Math.min(Math.max(budget, 64 * 1024), READ_AHEAD_BYTES),
    })
    try {
      let wanted = 1024
      for (;;) {
        const values = await this.readCorruptionChecked(iterator.nextv(wanted), from, upTo)
        if (values.length === 0) return false
        for (const value of values) {
          const baseOffset = value.readBigInt64BE(At.baseOffset)
          if (baseOffset > expected) {
            try {
              await this.checkGap(expected, baseOffset, upTo)
            } catch (error) {
              // A read that reaches a corrupt block answers the batches before it; the next read, starting there, fails.
              if (count > 0 && error instanceof StorageError) return true
              throw error
            }
          }
          if (!take(value)) return true
          expected = lastOffsetOf(value) + 1n
          count++
          bytes += value.length
        }
        wanted = Math.max(1, Math.min(1024, Math.ceil((budget - bytes) / (bytes / count)) + 1))
      }
    } finally {
      await iterator.close()
    }
  }

  /**
   * Offsets `[expected, baseOffset)` are missing between two stored batches. Compaction leaves such gaps below its
   * cleaned-up-to offset; anywhere else (or in a log compacted before that offset was kept) they may be a corrupt
   * LevelDB block, which LevelDB's iterator steps over without a word, keeping the error for the end of the
   * iteration. So the range is read to its end once: a corruption is a StorageError (the Fetch answers
   * KAFKA_STORAGE_ERROR for the partition once a read starts at the gap) rather than records silently skipped; a clean
   * read clears gaps below `upTo`.
   */
  private async checkGap(expected: bigint, baseOffset: bigint, upTo: bigint): Promise<void> {
    if (baseOffset <= this.checkpoint.cleanedUpTo || baseOffset <= this.gapsCheckedUpTo) return
    const db = this.context.db
    const iterator = db.db.keys({ gte: db.logKey(this.key, expected), lt: db.logKey(this.key, upTo), fillCache: false })
    try {
      while ((await this.readCorruptionChecked(iterator.nextv(1024), expected, upTo)).length > 0);
    } finally {
      await iterator.close()
    }
    if (upTo > this.gapsCheckedUpTo) this.gapsCheckedUpTo = upTo
  }

  /** `read`, with LevelDB's corruption error (LEVEL_CORRUPTION) as a StorageError naming the partition and offsets. */
  private async readCorruptionChecked<T>(read: Promise<T>, from: bigint, upTo: bigint): Promise<T> {
    try {
      return await read
    } catch (error) {
      if ((error as { code?: string }).code !== 'LEVEL_CORRUPTION') throw error
      throw new StorageError(`partition ${this.partition} of topic ${this.topicId}: LevelDB cannot read every batch of offsets ${from} to ${upTo - 1n}: ${(error as Error).message}`, { cause: error })
    }
  }

  async *batches(from: bigint, upTo: bigint): AsyncGenerator<StoredBatch> {
    const db = this.context.db
    let next = from
    for (;;) {
      const end = min(upTo, this.durableEnd)
      if (next >= end) return
      const cachedFrom = this.run.baseOffset
      if (cachedFrom !== null && next >= cachedFrom) {
        const i = this.run.indexOf(next)
        if (i >= this.run.length) return
        const cached = this.run.at(i, { fetched: false })
        if (cached.lastOffset >= end) return
        next = cached.lastOffset + 1n
        yield storedBatch(cached.bytes)
        continue
      }
      const storedUpTo = cachedFrom !== null && cachedFrom < end ? cachedFrom : end
      const iterator = db.db.values({ gte: db.logKey(this.key, next), lt: db.logKey(this.key, storedUpTo), fillCache: false, highWaterMarkBytes: READ_AHEAD_BYTES })
      try {
        for (;;) {
          const values = await iterator.nextv(256)
          if (values.length === 0) break
          for (const value of values) yield storedBatch(value)
        }
      } finally {
        await iterator.close()
      }
      next = storedUpTo
    }
  }

  /** The answer from one batch's records, or from its header when they cannot be read. */
  private async searchBatch(batch: StoredBatch, search: TimestampSearch['search'], timestamp?: bigint): Promise<TimestampMatch | null> {
    const leaderEpoch = batch.leaderEpoch >= 0 ? batch.leaderEpoch : -1
    try {
      const record = await search(batch.bytes, { minOffset: this.start, timestamp })
      return record && { offset: record.offset, timestamp: record.timestamp, leaderEpoch }
    } catch {
      return { offset: max(batch.baseOffset, this.start), timestamp: batch.maxTimestamp, leaderEpoch }
    }
  }

  async offsetForTimestamp(timestamp: bigint, options: TimestampSearch): Promise<TimestampMatch | null> {
    const logStart = this.start
    const end = this.durableEnd
    if (logStart >= min(options.upTo, end) || timestamp > this.timeState.maxTimestamp) return null
    // Every record below `from` is older than the target.
    const from = (await this.index.lastBefore(timestamp, logStart + 1n, end + 1n, this.timeState.maxTimestamp))?.offset ?? logStart
    let blockStart = from
    for await (const entries of this.index.entries(from, end)) {
      for (const entry of entries) {
        if (blockStart >= options.upTo) return null
        if (entry.blockMaxTimestamp >= timestamp) {
          const found = await this.searchBlock(blockStart, entry.offset, timestamp, options)
          if (found !== undefined) return found
        }
        blockStart = entry.offset
      }
    }
    return (await this.searchBlock(blockStart, end, timestamp, options)) ?? null
  }

  /**
   * The first record at or after `timestamp` in the batches of [from, to): the match, null when the first match is at
   * or above `options.upTo` (so it is no answer), undefined when the block holds none.
   */
  private async searchBlock(from: bigint, to: bigint, timestamp: bigint, options: TimestampSearch): Promise<TimestampMatch | null | undefined> {
    for await (const batch of this.batches(max(from, this.start), to)) {
      if (batch.baseOffset >= options.upTo) return null
      if (batch.maxTimestamp < timestamp) continue
      const found = await this.searchBatch(batch, options.search, timestamp)
      if (found) return found.offset < options.upTo ? found : null
    }
    return undefined
  }

  async offsetOfMaxTimestamp(options: TimestampSearch): Promise<TimestampMatch | null> {
    // A retention pass may delete the batch between finding it and reading it; then it is found again.
    for (let attempt = 0; attempt < 3; attempt++) {
      const known = this.maxBatch === undefined ? await this.findMaxTimestampBatch(options) : this.maxBatch
      if (known === null || known.baseOffset >= options.upTo) return null
      for await (const batch of this.batches(known.baseOffset, known.lastOffset + 1n)) {
        if (batch.lastOffset !== known.lastOffset) break
        const found = await this.searchBatch(batch, options.search)
        return found && found.offset < options.upTo ? found : null
      }
      this.maxBatch = undefined
    }
    return null
  }

  /**
   * Finds the batch with the first record of the largest timestamp among the written records at or above the log
   * start. Blocks are candidates in order of their blockMaxTimestamp (an upper bound); a candidate's batches are read
   * to learn its true maximum, and candidates stop once none left could beat or tie an earlier one. The log start's
   * block and the open block are always read (their bounds count deleted or unindexed records). If more candidates
   * than were kept could still win, every batch is read.
   */
  private async findMaxTimestampBatch(options: TimestampSearch): Promise<MaxTimestampBatch | null> {
    const generation = this.generation
    const logStart = this.start
    const end = this.durableEnd
    type Candidate = { from: bigint; to: bigint; bound: bigint }
    const before = (a: Candidate, b: Candidate): number => (a.bound === b.bound ? (a.from < b.from ? -1 : 1) : a.bound > b.bound ? -1 : 1)
    const kept: Candidate[] = []
    /** The highest bound of the candidates not kept, and the first block with it. */
    let dropped: { bound: bigint; from: bigint } | null = null
    const drop = (out: Candidate): void => {
      if (!dropped || out.bound > dropped.bound) dropped = { bound: out.bound, from: out.from }
      else if (out.bound === dropped.bound && out.from < dropped.from) dropped.from = out.from
    }
    const consider = (candidate: Candidate): void => {
      // Blocks come in offset order, so one that does not beat the last kept one is out at once.
      if (kept.length === MAX_TIMESTAMP_CANDIDATES && before(candidate, kept.at(-1)!) > 0) return drop(candidate)
      kept.push(candidate)
      kept.sort(before)
      if (kept.length > MAX_TIMESTAMP_CANDIDATES) drop(kept.pop()!)
    }
    let blockStart = logStart
    for await (const entries of this.index.entries(logStart, end)) {
      for (const entry of entries) {
        consider({ from: blockStart, to: entry.offset, bound: entry.blockMaxTimestamp })
        blockStart = entry.offset
      }
    }
    // The written part of the open block has no entry; the log's largest timestamp bounds it.
    if (blockStart < end) consider({ from: blockStart, to: end, bound: this.timeState.maxTimestamp })
    let best: MaxTimestampBatch | null = null
    const better = (found: MaxTimestampBatch | null): void => {
      if (found && (!best || found.maxTimestamp > best.maxTimestamp || (found.maxTimestamp === best.maxTimestamp && found.baseOffset < best.baseOffset))) best = found
    }
    for (const candidate of kept) {
      const leader = best as MaxTimestampBatch | null
      if (leader && (candidate.bound < leader.maxTimestamp || (candidate.bound === leader.maxTimestamp && candidate.from > leader.baseOffset))) break
      better(await this.maxTimestampBatchIn(candidate.from, candidate.to, options))
    }
    const winner = best as MaxTimestampBatch | null
    const lost = dropped as { bound: bigint; from: bigint } | null
    if (lost && (!winner || lost.bound > winner.maxTimestamp || (lost.bound === winner.maxTimestamp && lost.from < winner.baseOffset))) {
      best = await this.maxTimestampBatchIn(logStart, end, options)
    }
    // Batches written meanwhile are read too, so the answer covers the log up to its durable end and can be kept.
    let covered = end
    while (covered < this.durableEnd) {
      const upTo = this.durableEnd
      better(await this.maxTimestampBatchIn(covered, upTo, options))
      covered = upTo
    }
    if (this.generation === generation) this.maxBatch = best
    return best
  }

  /** The batch in [from, to) with the first record of their largest timestamp (at or above the log start), or null. */
  private async maxTimestampBatchIn(from: bigint, to: bigint, options: TimestampSearch): Promise<MaxTimestampBatch | null> {
    let best: MaxTimestampBatch | null = null
    for await (const batch of this.batches(max(from, this.start), to)) {
      // A batch compaction emptied (kept for its producer's state) keeps its old maxTimestamp but has no record to answer.
      if (batch.recordCount === 0) continue
      // A batch that holds the log start counts only its records at or above it.
      const timestamp = batch.baseOffset < this.start ? (await this.searchBatch(batch, options.search))?.timestamp : batch.maxTimestamp
      if (timestamp !== undefined && (best === null || timestamp > best.maxTimestamp)) {
        best = { maxTimestamp: timestamp, baseOffset: batch.baseOffset, lastOffset: batch.lastOffset }
      }
    }
    return best
  }

  truncateTo(offset: bigint): Promise<void> {
    return this.exclusive(() => this.truncate(offset))
  }

  private async truncate(offset: bigint): Promise<void> {
    this.checkWritable()
    if (offset >= this.end) {
      // No batch to remove; an epoch assigned at the log end without batches is only in memory.
      this.epochs = epochsBelow(this.epochs, offset)
      return
    }
    // The batch that holds `offset` is looked up in LevelDB, so everything appended so far must be there first.
    await this.context.commit.settle()
    this.checkWritable()
    const db = this.context.db
    const changes: KeyChange[] = []
    let newEnd = offset
    let removedBytes = 0
    for await (const [key, batch] of db.db.iterator({ gte: db.logKey(this.key, offset), lt: db.logRange(this.key).lt })) {
      changes.push({ key, value: null })
      removedBytes += batch.length
      const base = batch.readBigInt64BE(At.baseOffset)
      if (base < newEnd) newEnd = base
    }
    for await (const entries of this.index.entries(newEnd)) for (const entry of entries) changes.push({ key: this.index.key(entry.offset), value: null })
    const timeState = await this.indexStateAt(newEnd)
    this.bytes -= removedBytes
    this.end = newEnd
    this.durableEnd = newEnd
    if (this.watermark > newEnd) this.watermark = newEnd
    if (this.start > newEnd) this.start = newEnd
    this.epochs = epochsBelow(this.epochs, newEnd)
    if (this.checkpoint.cleanedUpTo > newEnd) this.checkpoint = { ...this.checkpoint, cleanedUpTo: newEnd }
    this.timeState = timeState
    this.writtenTimeState = timeState
    if (this.maxBatch && this.maxBatch.lastOffset >= newEnd) this.maxBatch = undefined
    this.generation++
    this.run.dropFrom(newEnd)
    appendAll(this.changes, changes)
    await this.context.commit.add(this).done
  }

  truncateFullyAndStartAt(offset: bigint): Promise<void> {
    return this.exclusive(() => this.startAfresh(offset))
  }

  private async startAfresh(offset: bigint): Promise<void> {
    this.checkWritable()
    // Every key is looked up in LevelDB, so everything appended so far must be there first.
    await this.context.commit.settle()
    this.checkWritable()
    const db = this.context.db
    const changes: KeyChange[] = []
    for await (const key of db.db.keys(db.logRange(this.key))) changes.push({ key, value: null })
    for await (const entries of this.index.entries(0n)) for (const entry of entries) changes.push({ key: this.index.key(entry.offset), value: null })
    this.bytes = 0
    this.start = offset
    this.end = offset
    this.durableEnd = offset
    this.watermark = offset
    this.epochs = []
    this.checkpoint = { ...NO_CLEANER_CHECKPOINT, cleanedUpTo: offset }
    this.timeState = EMPTY_TIME_INDEX
    this.writtenTimeState = EMPTY_TIME_INDEX
    this.maxBatch = null
    this.generation++
    this.run.clear()
    appendAll(this.changes, changes)
    await this.context.commit.add(this).done
  }

  /** The time index state of the written log cut at `end`: its last entry at or below it, and the batches after that. */
  private async indexStateAt(end: bigint): Promise<TimeIndexState> {
    return indexStateOf(this.context.db, this.key, this.index, end)
  }

  deleteBefore(offset: bigint): Promise<void> {
    return this.exclusive(() => this.moveLogStart(offset))
  }

  private async moveLogStart(offset: bigint): Promise<void> {
    this.checkWritable()
    const logStartOffset = offset < this.watermark ? offset : this.watermark
    if (logStartOffset <= this.start) return
    const db = this.context.db
    const range = db.logRange(this.key)
    const end = db.logKey(this.key, logStartOffset)
    let deletedBytes = 0
    for await (const batch of db.db.values({ gte: range.gte, lt: end, fillCache: false })) deletedBytes += batch.length
    this.start = logStartOffset
    this.bytes -= deletedBytes
    this.run.dropBefore(logStartOffset)
    if (this.maxBatch && this.maxBatch.baseOffset < logStartOffset) this.maxBatch = undefined
    this.generation++
    // The new log start is recorded before any key goes, so a crash in between leaves keys nobody reads rather than
    // a log start pointing at deleted batches. Index entries at or below it close blocks wholly below it.
    await this.context.commit.add(this).done
    const time = { gte: db.timeRange(this.key).gte, lt: this.index.key(logStartOffset + 1n) }
    await db.clear({ gte: range.gte, lt: end })
    await db.clear(time)
    // Deleted keys are tombstones until compaction reaches them, and seeks over many tombstones are slow.
    await db.compactRange(range.gte, end)
    await db.compactRange(time.gte, time.lt)
  }

  rewrite(changes: readonly Rewrite[], options: { checkpoint?: CleanerCheckpoint } = {}): Promise<void> {
    return this.exclusive(() => this.replace(changes, options.checkpoint))
  }

  private async replace(rewrites: readonly Rewrite[], checkpoint: CleanerCheckpoint | undefined): Promise<void> {
    this.checkWritable()
    const db = this.context.db
    // Deleted by retention or DeleteRecords since the caller read it: writing it back would resurrect it.
    const live = rewrites.filter(({ previous }) => previous.lastOffset >= this.start)
    for (const { previous } of live) {
      if (previous.lastOffset >= this.watermark) throw new RangeError(`batch ending at ${previous.lastOffset} is not below the high watermark`)
    }
    const changes: KeyChange[] = live.map(({ previous, replacement }) => ({ key: db.logKey(this.key, previous.lastOffset), value: replacement }))
    appendAll(changes, await this.rewrittenBlocks(live))
    let bytes = 0
    for (const { previous, replacement } of live) {
      bytes += replacement?.length ?? 0
      this.bytes += (replacement?.length ?? 0) - previous.sizeBytes
      if (this.maxBatch && this.maxBatch.lastOffset === previous.lastOffset) this.maxBatch = undefined
    }
    this.run.replaceAll(live.map(({ previous, replacement }) => ({ lastOffset: previous.lastOffset, bytes: replacement })))
    if (checkpoint) this.checkpoint = checkpoint
    this.generation++
    appendAll(this.changes, changes)
    await this.context.commit.add(this, bytes).done
  }

  /**
   * The index entries of the closed blocks that `rewrites` change, with blockMaxTimestamp recomputed from what the
   * blocks will hold (an emptied block loses its entry; the next block's bound covers the gap). Closed blocks are
   * written and change only here, one structural change at a time, so reading them now is exact. The open block
   * keeps its bound, which can only be too high.
   */
  private async rewrittenBlocks(rewrites: readonly Rewrite[]): Promise<KeyChange[]> {
    const replaced = new Map(rewrites.map(({ previous, replacement }) => [previous.lastOffset, replacement]))
    const changes: KeyChange[] = []
    const seen = new Set<bigint>()
    // The entry found last closes the block of every offset from the one it was looked up for to its own (null: no
    // entry is above that offset): the rewrites of one block, which a pass gives in a row, share one lookup.
    let found: { readonly from: bigint; readonly entry: TimeIndexEntry | null } | null = null
    for (const { previous } of rewrites) {
      const offset = previous.lastOffset
      if (found !== null && offset >= found.from && (found.entry === null || offset < found.entry.offset)) continue
      const entry = await this.index.firstAbove(offset)
      found = { from: offset, entry }
      if (!entry || seen.has(entry.offset)) continue
      seen.add(entry.offset)
      const blockStart = (await this.index.lastAtOrBelow(previous.lastOffset))?.offset ?? 0n
      let blockMax = NO_TIMESTAMP
      let batches = 0
      for await (const batch of this.storedBatches(max(blockStart, this.start), entry.offset)) {
        const replacement = replaced.get(batch.lastOffset)
        if (replacement === null) continue
        const timestamp = replacement === undefined ? batch.maxTimestamp : storedBatch(replacement).maxTimestamp
        blockMax = max(blockMax, timestamp)
        batches++
      }
      changes.push({ key: this.index.key(entry.offset), value: batches === 0 ? null : encodeEntry({ ...entry, blockMaxTimestamp: blockMax }) })
    }
    return changes
  }

  /** The batches LevelDB holds in [from, upTo), whatever the cache holds. */
  private async *storedBatches(from: bigint, upTo: bigint): AsyncGenerator<StoredBatch> {
    const db = this.context.db
    for await (const value of db.db.values({ gte: db.logKey(this.key, from), lt: db.logKey(this.key, upTo), fillCache: false })) yield storedBatch(value)
  }
}

/** `known` (the MAX_TIMESTAMP batch so far, if known) once `written` are written too; the first of equal timestamps wins. */
function withWritten(known: MaxTimestampBatch | null | undefined, written: readonly Entry[]): MaxTimestampBatch | null | undefined {
  let best = known
  if (best === undefined) return undefined
  for (const entry of written) {
    if (best === null || entry.maxTimestamp > best.maxTimestamp) best = { maxTimestamp: entry.maxTimestamp, baseOffset: entry.baseOffset, lastOffset: entry.lastOffset }
  }
  return best
}

/** The time index state of the written log of `key` cut at `end`. */
async function indexStateOf(db: NodeDatabase, key: Buffer, index: TimeIndexReader, end: bigint): Promise<TimeIndexState> {
  const last = await index.lastAtOrBelow(end)
  const open: IndexedBatch[] = []
  for await (const batch of db.db.values({ gte: db.logKey(key, last?.offset ?? 0n), lt: db.logKey(key, end), fillCache: false })) {
    const info = storedBatch(batch)
    open.push({ lastOffset: info.lastOffset, maxTimestamp: info.maxTimestamp, sizeBytes: info.sizeBytes })
  }
  return indexStateAfter(last, open)
}

/** Entries written per LevelDB write while an index is rebuilt. */
const REBUILD_CHUNK_ENTRIES = 1024

/**
 * Checks what the last write may have left half-done and cuts the log after the last good batch. Batches below the
 * recovery point were written by completed writes; from there on, each batch must be whole and valid on its own
 * and continue the offsets exactly, or past a gap below the log end of the state record (a follower copies the gaps
 * of its leader's compacted log, and the state record written with them counts them):
 *
 *   ... | recovery point | base = end | base = previous last + 1 | ... | first bad entry -> cut, with all after it
 *
 * The first batch checked may start before `end` only when `end` is a log start inside that batch (the batches
 * below it were deleted). Time index entries past the recovered end go with the cut; a log stored without a time
 * index gets one, built from its batches.
 */
async function recover(db: NodeDatabase, key: Buffer, stored: PartitionState): Promise<OpenState> {
  const range = db.logRange(key)
  const index = new TimeIndexReader(db, key)
  let end = stored.recoveryPoint > stored.logStartOffset ? stored.recoveryPoint : stored.logStartOffset
  const bad: Buffer[] = []
  let badBytes = 0
  for await (const [entryKey, batch] of db.db.iterator({ gte: db.logKey(key, end), lt: range.lt })) {
    const base = batch.length >= BATCH_HEADER_SIZE ? batch.readBigInt64BE(At.baseOffset) : -1n
    const whole = bad.length === 0 && isWholeBatch(entryKey, batch)
    // A gap is a follower's copy of its leader's compacted log only where the state record, written in the same
    // LevelDB batch as the entries it counts, says the log reaches past it.
    const gapCounted = whole && base > end && storedBatch(batch).lastOffset < stored.logEndOffset
    const continues = base === end || gapCounted || (end === stored.logStartOffset && base >= 0n && base < end)
    const ok = whole && continues
    if (ok) end = storedBatch(batch).lastOffset + 1n
    else {
      bad.push(entryKey)
      badBytes += batch.length
    }
  }
  const cutEntries: Buffer[] = []
  for await (const entries of index.entries(end)) for (const entry of entries) cutEntries.push(index.key(entry.offset))
  if (bad.length > 0 || cutEntries.length > 0) {
    await db.write((batch) => {
      for (const entryKey of [...bad, ...cutEntries]) batch.del(entryKey)
    })
  }
  const unchanged = stored.timeIndex !== undefined && end === stored.logEndOffset && cutEntries.length === 0
  const timeIndex = stored.timeIndex === undefined ? await rebuildIndex(db, key, index, end) : unchanged ? stored.timeIndex : await indexStateOf(db, key, index, end)
  const recovered: OpenState = {
    ...(unchanged && stored.maxTimestampBatch !== undefined ? { maxTimestampBatch: stored.maxTimestampBatch } : {}),
    logStartOffset: stored.logStartOffset,
    logEndOffset: end,
    highWatermark: stored.highWatermark < end ? stored.highWatermark : end,
    recoveryPoint: end,
    epochs: epochsBelow(stored.epochs, end),
    sizeBytes: Math.max(0, stored.sizeBytes - badBytes),
    timeIndex,
    cleaner: stored.cleaner ?? NO_CLEANER_CHECKPOINT,
  }
  // The state that describes the cut (or the new index) is written once the keys it describes are, so the state
  // record never claims what is not there; a crash before it repeats the recovery.
  if (bad.length > 0 || cutEntries.length > 0 || stored.timeIndex === undefined) {
    await db.write((batch) => void batch.put(db.partitionStateKey(key), packr.pack(recovered)))
  }
  return recovered
}

/** Builds the time index of a log stored without one, from its batches below `end`; returns the index state. */
async function rebuildIndex(db: NodeDatabase, key: Buffer, index: TimeIndexReader, end: bigint): Promise<TimeIndexState> {
  let state = EMPTY_TIME_INDEX
  let entries: TimeIndexEntry[] = []
  const flush = async (): Promise<void> => {
    const chunk = entries
    entries = []
    if (chunk.length > 0) await db.write((batch) => void chunk.forEach((entry) => batch.put(index.key(entry.offset), encodeEntry(entry))))
  }
  for await (const value of db.db.values({ gte: db.logKey(key, 0n), lt: db.logKey(key, end), fillCache: false })) {
    const info = storedBatch(value)
    const indexed = indexAppend(state, { lastOffset: info.lastOffset, maxTimestamp: info.maxTimestamp, sizeBytes: info.sizeBytes })
    state = indexed.state
    if (indexed.entry) entries.push(indexed.entry)
    if (entries.length >= REBUILD_CHUNK_ENTRIES) await flush()
  }
  await flush()
  return state
}

/** A complete, intact magic-2 batch stored under its own last offset. */
function isWholeBatch(entryKey: Buffer, batch: Buffer): boolean {
  return (
    batch.length >= BATCH_HEADER_SIZE &&
    batch.readInt32BE(At.batchLength) + LOG_OVERHEAD === batch.length &&
    batch.readInt8(At.magic) === MAGIC &&
    batch.readInt32BE(At.lastOffsetDelta) >= 0 &&
    entryKey.readBigInt64BE(entryKey.length - 8) === storedBatch(batch).lastOffset &&
    computeCrc(batch) === batch.readUInt32BE(At.crc)
  )
}
