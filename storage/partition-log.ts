/**
 * What a partition's log is to the rest of Brook, whatever engine stores it: record batches at offsets, the state that
 * bounds them, and the operations Kafka's UnifiedLog offers the broker. `level-log.ts` implements it on LevelDB;
 * `test/storage/contract/` holds the scenarios any engine must pass (one call runs them).
 *
 *   logStartOffset <= highWatermark <= durableEndOffset <= logEndOffset
 *   |-- deleted --|-- readable --|-- written, not yet exposed --|-- queued for the next write --|
 *                 |<---------- what a follower's replica fetch may read (past the durable end: cached only) ---------->|
 *
 * - Offsets are assigned by `append`, synchronously, in call order; its promise resolves once the batch is durable.
 * - Batches are stored whole, as produced (only baseOffset and partitionLeaderEpoch are stamped, and maxTimestamp for
 *   LogAppendTime topics), and served whole: a read starts with the batch that holds the fetch offset.
 * - Structural changes (`truncateTo`, `deleteBefore`, `rewrite`) run one at a time per log.
 * - Nothing outside an engine sees its storage: callers get batches, their header facts (`BatchInfo`), offsets and
 *   timestamps.
 *
 * Where what comes next plugs in:
 * - Idempotent and transactional producers: `BatchInfo` carries each batch's producer id, epoch, base sequence and
 *   its transactional and control flags, so producer state is rebuilt by iterating `batches()` from the offset of the
 *   last producer-state snapshot (kept by the engine beside the log's state record); the aborted-transaction index is
 *   one more per-log index kept in the same writes as the batches, as the time index is (see level-log.ts).
 * - Replication: `truncateTo` is a follower's truncation, the leader-epoch cache (`epochCache`, leader-epochs.ts) is
 *   where OffsetForLeaderEpoch's end-offset lookup goes, and the high watermark is set by its owner.
 */
import { Attribute, readBatchHeader, type FoundRecord } from '../protocol/record-batch.js'
import type { EpochEntry } from './leader-epochs.js'
import type { CacheLease } from './batch-cache.js'

export type { EpochEntry } from './leader-epochs.js'

/** A stored batch's header facts (DefaultRecordBatch.java), read once from its first 61 bytes. */
export interface BatchInfo {
  readonly baseOffset: bigint
  readonly lastOffset: bigint
  /** The batch header's baseTimestamp: the first record's timestamp for CreateTime batches. */
  readonly baseTimestamp: bigint
  /** The largest record timestamp; for LogAppendTime batches, the time the broker stamped. */
  readonly maxTimestamp: bigint
  /** Bytes of the whole batch, header included. */
  readonly sizeBytes: number
  readonly recordCount: number
  /** partitionLeaderEpoch: the leader epoch the batch was appended in. */
  readonly leaderEpoch: number
  readonly isControl: boolean
  readonly isTransactional: boolean
  /** -1 for batches of producers without idempotence. */
  readonly producerId: bigint
  readonly producerEpoch: number
  readonly baseSequence: number
}

/** A batch read from a log: its facts and its bytes, as stored. */
export interface StoredBatch extends BatchInfo {
  readonly bytes: Buffer
}

/** The facts and bytes of one stored magic-2 batch. */
export function storedBatch(bytes: Buffer): StoredBatch {
  const header = readBatchHeader(bytes)
  return {
    baseOffset: header.baseOffset,
    lastOffset: header.baseOffset + BigInt(header.lastOffsetDelta),
    baseTimestamp: header.baseTimestamp,
    maxTimestamp: header.maxTimestamp,
    sizeBytes: bytes.length,
    recordCount: header.recordsCount,
    leaderEpoch: header.partitionLeaderEpoch,
    isControl: (header.attributes & Attribute.control) !== 0,
    isTransactional: (header.attributes & Attribute.transactional) !== 0,
    producerId: header.producerId,
    producerEpoch: header.producerEpoch,
    baseSequence: header.baseSequence,
    bytes,
  }
}

export interface AppendOptions {
  leaderEpoch: number
  /** Set for LogAppendTime topics: the broker's clock stamps the batch. */
  logAppendTime?: bigint
  /**
   * A follower's append: the offset the leader gave the batch, at or past the log end. It is past the end where the
   * leader's compaction removed every record of the batches between (a compacted log has offset gaps, and a follower
   * copies them, as UnifiedLog.appendAsFollower does). Absent for a leader's append: the log end.
   */
  baseOffset?: bigint
}

export interface AppendResult {
  baseOffset: bigint
  lastOffset: bigint
}

export interface ReadOptions {
  /** Stop before the batches returned would pass this many bytes (but see minOneMessage). */
  maxBytes: number
  /**
   * Only batches that end below this offset: the high watermark or the last stable offset for a consumer; the log end
   * for a follower's replica fetch, the one reader that may see batches past the durable end (appended, not yet
   * written: served from the batch cache, and where it does not hold them, not until they are written).
   */
  upTo: bigint
  /** Return the first batch even when it alone is larger than maxBytes (Kafka's minOneMessage). */
  minOneMessage: boolean
  /**
   * For a read whose batches are sent and then dropped (a Fetch answer): batches served from the node's batch cache
   * come as views of it, held by this lease until it is released (`storage/batch-cache.ts`), instead of as copies.
   * Without a lease every batch returned is the caller's own to keep.
   */
  lease?: CacheLease
}

/**
 * Reads the records of one stored batch for a timestamp search: the first record at or above `minOffset` whose
 * timestamp is >= `timestamp`, or (without `timestamp`) the first record at or above `minOffset` with the batch's
 * largest timestamp; null when there is none. protocol/record-batch.ts `searchRecords` does it on the calling thread;
 * the broker passes one that reads large compressed batches in its worker pool. A rejection means the batch's records
 * cannot be read; the log then answers from the batch's header.
 */
export type RecordSearch = (batch: Buffer, query: { minOffset: bigint; timestamp?: bigint }) => Promise<FoundRecord | null>

export interface TimestampSearch {
  /** Answers at or above this offset are not given (Kafka's lastFetchableOffset: the high watermark or the LSO). */
  upTo: bigint
  search: RecordSearch
}

/** A record found by timestamp, and the leader epoch of its batch (-1 when the batch has none). */
export interface TimestampMatch {
  offset: bigint
  timestamp: bigint
  leaderEpoch: number
}

/** A stored batch replaced by a smaller one with the same offsets, or removed (null): what compaction does. */
export interface Rewrite {
  previous: BatchInfo
  replacement: Buffer | null
}

/** What the log cleaner keeps with a log, as Kafka's cleaner-offset-checkpoint does, written with its rewrites. */
export interface CleanerCheckpoint {
  /** Every offset below this has been compacted at least once; the cleaner's next map starts here. */
  cleanedUpTo: bigint
  /**
   * When the first tombstone or transaction marker the last compaction kept for its delete horizon may be dropped
   * (ms since the epoch), or null for none: the next compaction is due then, even in a log nobody writes to.
   */
  tombstonesExpireAtMs: number | null
  /**
   * When the tombstones of each compacted range may be dropped, ascending by `below`: a range's tombstones expire
   * delete.retention.ms after the pass that first compacted it (Kafka's delete horizon, KIP-534), whatever their
   * timestamps. Absent in a checkpoint stored before it existed; offsets no entry covers go by their timestamps.
   */
  tombstoneHorizons?: readonly TombstoneHorizon[]
}

/** The delete horizon of the tombstones below `below` and at or above the previous entry's `below`. */
export interface TombstoneHorizon {
  below: bigint
  expiresAtMs: number
}

export const NO_CLEANER_CHECKPOINT: CleanerCheckpoint = { cleanedUpTo: 0n, tombstonesExpireAtMs: null }

export interface PartitionLog {
  readonly topicId: string
  readonly partition: number
  /** The first offset clients may read; the batch that holds it may start below it. */
  readonly logStartOffset: bigint
  /** The next offset to assign. */
  readonly logEndOffset: bigint
  /** The end of what the engine has confirmed written. */
  readonly durableEndOffset: bigint
  /** The end of what readers may see; set by the owner, never past durableEndOffset. */
  readonly highWatermark: bigint
  /** Bytes of the stored batches, including those queued for the next write (retention.bytes). */
  readonly sizeBytes: number
  /** The epoch of the latest leader that appended, -1 before any. */
  readonly latestEpoch: number
  /** Each leader epoch with the first offset appended in it, oldest first (Kafka's leader-epoch-checkpoint). */
  readonly epochCache: readonly EpochEntry[]
  readonly cleanerCheckpoint: CleanerCheckpoint

  /**
   * Appends one batch: stamps baseOffset (the log end, or `options.baseOffset` for a follower) and
   * partitionLeaderEpoch, and for LogAppendTime the broker's time; the batch buffer is changed in place. Offsets are
   * assigned before this returns its promise, which resolves once the batch is durable. Rejects with a StorageError
   * when the engine refuses writes, and with a RangeError, nothing written, when `options.baseOffset` is below the
   * log end.
   */
  append(batch: Buffer, options: AppendOptions): Promise<AppendResult>

  /** Moves the high watermark, never past durableEndOffset. */
  setHighWatermark(offset: bigint): void

  /**
   * Whole batches from the one holding `fetchOffset`, up to `options.upTo` (never past the log end), stopping before
   * `options.maxBytes` would be passed. The buffers are the stored bytes; callers must not change them.
   */
  read(fetchOffset: bigint, options: ReadOptions): Promise<Buffer[]>

  /**
   * Every batch that ends below `upTo`, in offset order, from the one that holds `from` (or the first after it), with
   * its header facts. What a caller does between two steps does not change what the iteration sees.
   */
  batches(from: bigint, upTo: bigint): AsyncIterable<StoredBatch>

  /**
   * Kafka's ListOffsets by timestamp (UnifiedLog.fetchOffsetByTimestamp): the first record, in offset order, at or
   * above the log start whose timestamp is >= `timestamp`, searched with the log's time index, not from the start.
   * Null when there is none, or when it is at or above `options.upTo` (Kafka answers -1 then, not an earlier record).
   */
  offsetForTimestamp(timestamp: bigint, options: TimestampSearch): Promise<TimestampMatch | null>

  /**
   * ListOffsets MAX_TIMESTAMP (KIP-734): the first record, in offset order, with the largest timestamp among the
   * records at or above the log start. Null for a log without records, or when that record is at or above
   * `options.upTo`.
   */
  offsetOfMaxTimestamp(options: TimestampSearch): Promise<TimestampMatch | null>

  /**
   * Records that leader epoch `epoch` starts at the log end, before anything is appended in it (Kafka's
   * UnifiedLog.maybeAssignEpochStartOffset, which Partition.makeLeader calls), so OffsetForLeaderEpoch answers the
   * epoch at once. Ignored unless newer than the latest epoch. The entry is kept in memory and written with the
   * first batch of the epoch; a restarted node leads again only through its metadata, which assigns it again.
   */
  assignEpochStartOffset(epoch: number): void

  /**
   * Removes every batch at or above `offset` (a follower truncating to its leader). The log end becomes the start of
   * the first removed batch; a log cut below its start is left empty, starting where it ends. A cut at or past the log
   * end removes no batch but still drops the epochs that start at or after it (an epoch this replica led without
   * appending, which its new leader's log does not hold), as UnifiedLog.truncateTo does. Must not run concurrently
   * with appends to the same log.
   */
  truncateTo(offset: bigint): Promise<void>

  /**
   * Removes every batch and starts the log afresh at `offset`: log start, log end and high watermark all `offset`, the
   * epoch cache empty (UnifiedLog.truncateFullyAndStartAt, for a follower whose log end is below its leader's log
   * start). Must not run concurrently with appends to the same log.
   */
  truncateFullyAndStartAt(offset: bigint): Promise<void>

  /**
   * Moves the log start to `offset` (retention, DeleteRecords), never past the high watermark nor backwards, and
   * deletes the batches wholly below it. The batch that holds `offset` stays.
   */
  deleteBefore(offset: bigint): Promise<void>

  /**
   * Replaces batches below the high watermark with smaller ones of the same offsets, or removes them (compaction),
   * and records `options.checkpoint` in the same write. A batch deleted meanwhile (below the log start) is skipped.
   */
  rewrite(changes: readonly Rewrite[], options?: { checkpoint?: CleanerCheckpoint }): Promise<void>

  /** Refuses every later change: the partition's topic is being deleted. */
  markDeleted(): void
}
