/**
 * A partition as the broker sees it: its log, who leads it and in which epoch, the waiters that long-polling fetches
 * park on, and the state its idempotent and transactional producers leave (storage/producer-state.ts): sequences,
 * epochs, open transactions, the last stable offset and the aborted-transaction index. On a single node this broker
 * leads every partition in epoch 0, the ISR is this broker alone, and the high watermark follows the durable log end.
 * On a cluster node the partition's replica (cluster/replica-manager.ts) owns the replicas, the ISR and the high
 * watermark (`highWatermarkOwner`): the leader's HW is the least log end of its ISR, a follower's the leader's, and a
 * follower appends the leader's batches as they are (`appendAsFollower`).
 *
 *   logStartOffset <= lastStableOffset <= highWatermark <= logEndOffset
 *
 * Every append goes through here (UnifiedLog.append's order): the producer state checks the batch, the batch takes
 * its offsets, the producer state is updated at once (so the next batch of the same producer is checked against it,
 * whether or not this one is written yet), and the answer goes out once the batch is written. An ABORT marker's index
 * entry is written before the marker is queued. Producer-state snapshots are taken every PRODUCER_SNAPSHOT_INTERVAL_BYTES
 * of appends and on a clean stop, so a restart replays a bounded tail (storage/producer-state-store.ts).
 */
import type { PartitionLog } from '../storage/partition-log.js'
import { ErrorCode, KafkaError } from '../protocol/errors.js'
import { encodeRecordBatch, readBatchHeader, Attribute, At } from '../protocol/record-batch.js'
import {
  AppendOrigin,
  ControlType,
  ProducerStateManager,
  producerBatchOf,
  type BatchMetadata,
  type Prepared,
  type ProducerBatch,
} from '../storage/producer-state.js'
import { loadProducerState, type ProducerSnapshotStore } from '../storage/producer-state-store.js'
import type { AbortedTxn, TransactionIndex } from '../storage/transaction-index.js'
import type { TopicConfig } from './topic-configs.js'

export interface Topic {
  readonly name: string
  readonly topicId: string
  readonly isInternal: boolean
  /** Parsed when set (create, alter, load); replaced whole when the configs change. */
  config: TopicConfig
  partitions: Partition[]
  readonly replicationFactor: number
}

/**
 * Bytes appended between two producer-state snapshots: a restart after kill -9 replays at most about this much of
 * the partition's tail (batch headers only), which takes tens of milliseconds; a snapshot costs one small write.
 */
export const PRODUCER_SNAPSHOT_INTERVAL_BYTES = 16 * 1024 * 1024

export interface PartitionOptions {
  readonly leaderId: number
  /** The partition's producer-state snapshots and aborted-transaction index (LogStore.transactionStores). */
  readonly stores: { snapshots: ProducerSnapshotStore; abortedIndex: TransactionIndex }
  /** producer.id.expiration.ms */
  readonly producerIdExpirationMs: number
}

export interface AppendOptions {
  origin: AppendOrigin
  /** Set for LogAppendTime topics: the broker's clock stamps the batch. */
  logAppendTime?: bigint
  /** For a transactional batch that starts a transaction here: the guard `startVerification` gave (KIP-890). */
  verification?: VerificationGuard
}

export interface AppendResult {
  baseOffset: bigint
  lastOffset: bigint
  /** The batch repeated one already written (a producer's retry): these are the original offsets, nothing was written. */
  duplicate: boolean
  /**
   * For a duplicate: the original's maxTimestamp as stored (ms), the time the broker stamped on a LogAppendTime
   * topic, the largest record timestamp on a CreateTime one; returned as the retry's logAppendTime whatever the topic's
   * timestamp type (Kafka's UnifiedLog.append, duplicate branch).
   */
  duplicateOfMaxTimestamp?: bigint
}

/** A transaction marker to write (WriteTxnMarkers' WritableTxnMarker, for one partition). */
export interface TxnMarker {
  producerId: bigint
  producerEpoch: number
  coordinatorEpoch: number
  committed: boolean
}

/**
 * Proof that the transaction coordinator was asked whether this partition is in a producer's transaction (Kafka's
 * VerificationGuard): one object per verification, dropped when the producer's next transactional batch or marker is
 * written, so a stale answer cannot let a batch into a transaction that has ended since (the ABA case of KIP-890).
 */
export type VerificationGuard = object

export class Partition {
  /** 0 on a single node; on a cluster node the metadata image's, set as the node applies it (cluster/local-logs.ts). */
  leaderEpoch = 0
  readonly leaderId: number
  /** This broker on a single node; on a cluster node the metadata image's (set by the partition's replica). */
  replicas: readonly number[]
  isr: readonly number[]
  /**
   * Null on a single node (the HW follows the durable log end); on a cluster node the partition's replica, told of
   * every local append, which sets the HW with `setHighWatermark`.
   */
  highWatermarkOwner: { appended(): void } | null = null
  /** The high watermark the log recovered with (its last stored one), before this partition moved it. */
  readonly recoveredHighWatermark: bigint
  private readonly waiters = new Set<() => void>()
  private readonly appendWaiters = new Set<() => void>()
  readonly producers: ProducerStateManager
  private readonly snapshots: ProducerSnapshotStore
  private readonly abortedIndex: TransactionIndex
  private readonly verifications = new Map<bigint, VerificationGuard>()
  /** The last append's write: a duplicate of a batch not yet written is answered once it is. */
  private lastWrite: Promise<unknown> = Promise.resolve()
  private bytesSinceSnapshot = 0
  /** Batches replayed to rebuild the producer state when the partition was opened (after a crash: since its last snapshot). */
  batchesReplayedAtOpen = 0
  private snapshotting: Promise<bigint> | null = null

  private constructor(
    readonly topic: Topic,
    readonly index: number,
    readonly log: PartitionLog,
    options: PartitionOptions,
  ) {
    this.leaderId = options.leaderId
    this.replicas = [options.leaderId]
    this.isr = [options.leaderId]
    this.recoveredHighWatermark = log.highWatermark
    this.producers = new ProducerStateManager({ producerIdExpirationMs: options.producerIdExpirationMs })
    this.snapshots = options.stores.snapshots
    this.abortedIndex = options.stores.abortedIndex
    // The stored high watermark is saved with each write as it stood before that write, so after a restart it lags
    // the recovered log by the last write, whose records were acknowledged. With the ISR this broker alone, the
    // leader's HW is its durable log end, as Kafka's leader advances it on taking over (Partition.maybeIncrementLeaderHW).
    log.setHighWatermark(log.durableEndOffset)
  }

  /**
   * Opens a partition over its (recovered) log: index entries past the log end are dropped and the producer state is
   * rebuilt from the newest snapshot and the batches after it.
   */
  static async open(topic: Topic, index: number, log: PartitionLog, options: PartitionOptions): Promise<Partition> {
    const partition = new Partition(topic, index, log, options)
    await partition.abortedIndex.truncateFrom(log.logEndOffset)
    await partition.abortedIndex.open()
    partition.batchesReplayedAtOpen = await loadProducerState(partition.producers, partition.snapshots, log, Date.now())
    return partition
  }

  get highWatermark(): bigint {
    return this.log.highWatermark
  }

  /**
   * The offset below which every transaction is decided and its marker is below the high watermark (UnifiedLog
   * .lastStableOffset): read_committed consumers read up to here. Without open transactions it is the high watermark.
   */
  get lastStableOffset(): bigint {
    const unstable = this.producers.firstUnstableOffset()
    if (unstable === null) return this.log.highWatermark
    const bounded = unstable < this.log.logStartOffset ? this.log.logStartOffset : unstable
    return bounded < this.log.highWatermark ? bounded : this.log.highWatermark
  }

  get logStartOffset(): bigint {
    return this.log.logStartOffset
  }

  get logEndOffset(): bigint {
    return this.log.logEndOffset
  }

  /**
   * Appends one batch as leader (UnifiedLog.appendAsLeader), after the producer-state checks its origin calls for;
   * throws a KafkaError (INVALID_PRODUCER_EPOCH, OUT_OF_ORDER_SEQUENCE_NUMBER, INVALID_TXN_STATE) when the batch is
   * refused, with nothing written and nothing changed. A retried batch (the same producer, epoch and sequences as one
   * of its last five) is answered with the original offsets, or KAFKA_STORAGE_ERROR when the original's write failed.
   */
  async appendAsLeader(batch: Buffer, options: AppendOptions): Promise<AppendResult> {
    const fields = producerBatchOf(batch)
    if (!fields) return this.write(batch, null, null, { leaderEpoch: this.leaderEpoch, logAppendTime: options.logAppendTime })
    fields.baseOffset = this.log.logEndOffset
    fields.lastOffset = fields.baseOffset + BigInt(batch.readInt32BE(At.lastOffsetDelta))
    if (options.logAppendTime !== undefined) fields.maxTimestamp = options.logAppendTime
    if (options.origin === AppendOrigin.CLIENT) {
      const duplicate = this.producers.findDuplicate(fields)
      if (duplicate) return this.answerDuplicate(duplicate)
      if (fields.transactional) this.checkVerified(fields, options.verification)
    }
    return this.write(batch, fields, this.producers.prepare(fields, options.origin), { leaderEpoch: this.leaderEpoch, logAppendTime: options.logAppendTime })
  }

  /**
   * Appends a batch fetched from the partition's leader (UnifiedLog.appendAsFollower): stored as it is, at the offset
   * and leader epoch the leader gave it, which must be at or past this log's end (past it when the leader's
   * compaction emptied the batches between: the follower's log keeps the same gap, as Kafka's does); the producer
   * state follows it unchecked (origin REPLICATION), so a follower that becomes leader knows every idempotent
   * producer's sequences. Throws (nothing written) for a batch that starts below the log end, as Kafka's
   * UnexpectedAppendOffsetException.
   */
  async appendAsFollower(batch: Buffer): Promise<AppendResult> {
    const header = readBatchHeader(batch)
    if (header.baseOffset < this.log.logEndOffset) {
      throw new Error(`a batch of the leader at offset ${header.baseOffset} starts below this log's end ${this.log.logEndOffset}`)
    }
    const stamp = { leaderEpoch: header.partitionLeaderEpoch, baseOffset: header.baseOffset }
    const fields = producerBatchOf(batch)
    if (!fields) return this.write(batch, null, null, stamp)
    fields.baseOffset = header.baseOffset
    fields.lastOffset = header.baseOffset + BigInt(header.lastOffsetDelta)
    return this.write(batch, fields, this.producers.prepare(fields, AppendOrigin.REPLICATION), stamp)
  }

  /**
   * Sets the high watermark (a cluster node's replica, which owns it; lower only on a restart from the stored one or a
   * truncation below it): readers see up to it, and transactions decided below it become stable. Never past the
   * durable log end.
   */
  setHighWatermark(offset: bigint): void {
    this.log.setHighWatermark(offset)
    this.producers.onHighWatermarkUpdated(this.log.highWatermark)
    this.wake()
  }

  /** Resolves once the appends queued so far are written (or failed): a truncation must not overlap them. */
  async appendsSettled(): Promise<void> {
    await this.lastWrite
  }

  /**
   * Writes a COMMIT or ABORT marker for a producer (WriteTxnMarkers, ReplicaManager.appendRecords with origin
   * COORDINATOR): a control batch of one record. A marker with an older producer epoch is INVALID_PRODUCER_EPOCH, one
   * with an older coordinator epoch TRANSACTION_COORDINATOR_FENCED; writing the same marker again is harmless (it
   * decides nothing the second time), which is what makes the coordinator's retries after a restart safe.
   */
  async appendMarker(marker: TxnMarker): Promise<AppendResult> {
    // A marker names a producer: one without (a negative id, as no coordinator sends) is refused, not written.
    if (marker.producerId < 0n) throw new KafkaError(ErrorCode.INVALID_REQUEST, `a transaction marker needs a producer id, not ${marker.producerId}`)
    const batch = encodeMarker(marker)
    const fields = producerBatchOf(batch)!
    fields.baseOffset = this.log.logEndOffset
    fields.lastOffset = fields.baseOffset
    // On a LogAppendTime topic a marker is stamped as every other batch is (Kafka's LogValidator sees markers too).
    const logAppendTime = this.topic.config.messageTimestampType === 'LogAppendTime' ? BigInt(Date.now()) : undefined
    if (logAppendTime !== undefined) fields.maxTimestamp = logAppendTime
    return this.write(batch, fields, this.producers.prepare(fields, AppendOrigin.COORDINATOR), { leaderEpoch: this.leaderEpoch, logAppendTime })
  }

  private checkVerified(fields: ProducerBatch, guard: VerificationGuard | undefined): void {
    if (this.producers.hasOngoingTransaction(fields.producerId, fields.producerEpoch)) return
    if (guard === undefined || this.verifications.get(fields.producerId) !== guard) {
      throw new KafkaError(ErrorCode.INVALID_TXN_STATE, `the batch of producer ${fields.producerId} is not part of an ongoing transaction`)
    }
  }

  /**
   * Starts a verification for a producer whose transactional batch would open a transaction here (Kafka's
   * maybeStartTransactionVerification): returns the guard to append with once the coordinator has confirmed, or
   * undefined when the producer's transaction is already open here at the batch's epoch (no verification needed). A
   * batch of another epoch is verified, so one of an epoch the coordinator never gave is refused rather than taking
   * over the open transaction, whose marker the partition would then refuse as older.
   */
  startVerification(producerId: bigint, producerEpoch: number): VerificationGuard | undefined {
    if (this.producers.hasOngoingTransaction(producerId, producerEpoch)) return undefined
    const guard: VerificationGuard = {}
    this.verifications.set(producerId, guard)
    return guard
  }

  private async answerDuplicate(duplicate: BatchMetadata): Promise<AppendResult> {
    // The original may still be on its way to the database: answer only once it is there.
    if (duplicate.lastOffset >= this.log.durableEndOffset) await this.lastWrite
    // Its write failed (the producer state took it at the append; the storage refuses every write since): the retry
    // is refused as the original was, never acknowledged for records that are not there.
    if (duplicate.lastOffset >= this.log.durableEndOffset) {
      throw new KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, `the batch at offsets ${duplicate.lastOffset - BigInt(duplicate.offsetDelta)}-${duplicate.lastOffset} was not written: its write failed`)
    }
    return { baseOffset: duplicate.lastOffset - BigInt(duplicate.offsetDelta), lastOffset: duplicate.lastOffset, duplicate: true, duplicateOfMaxTimestamp: duplicate.timestamp }
  }

  private async write(
    batch: Buffer,
    fields: ProducerBatch | null,
    prepared: Prepared | null,
    stamp: { leaderEpoch: number; logAppendTime?: bigint; baseOffset?: bigint },
  ): Promise<AppendResult> {
    const baseOffset = stamp.baseOffset ?? this.log.logEndOffset
    const lastOffset = baseOffset + BigInt(batch.readInt32BE(At.lastOffsetDelta))
    let indexed: Promise<void> | undefined
    if (prepared?.completed?.aborted) {
      const completed = prepared.completed
      indexed = this.abortedIndex.append({
        producerId: completed.producerId,
        firstOffset: completed.firstOffset,
        lastOffset: completed.lastOffset,
        lastStableOffset: this.producers.lastStableOffsetOf(completed),
      })
      indexed.catch(() => undefined)
    }
    const appended = this.log.append(batch, stamp)
    this.lastWrite = appended.catch(() => undefined)
    // A log that refuses writes takes no offsets (the promise rejects): the producer state must not move either.
    if (this.log.logEndOffset === lastOffset + 1n) {
      if (prepared) this.producers.update(prepared, lastOffset + 1n)
      else this.producers.mapEndOffset = lastOffset + 1n
      if (fields?.transactional) this.verifications.delete(fields.producerId)
      // Followers take the batch now, while it is being written (cluster/replica-manager.ts says why that is safe).
      wakeAll(this.appendWaiters)
    }
    await indexed
    const result = await appended
    if (this.highWatermarkOwner) {
      this.highWatermarkOwner.appended()
      this.wake()
    } else {
      this.setHighWatermark(this.log.durableEndOffset)
    }
    this.bytesSinceSnapshot += batch.length
    if (this.bytesSinceSnapshot >= PRODUCER_SNAPSHOT_INTERVAL_BYTES) void this.takeSnapshot().catch(() => undefined)
    return { ...result, duplicate: false }
  }

  /** The aborted transactions a read_committed fetch of [fetchOffset, upperBound) must be told of. */
  abortedTransactions(fetchOffset: bigint, upperBound: bigint): Promise<AbortedTxn[]> {
    return this.abortedIndex.collect(fetchOffset, upperBound)
  }

  /**
   * Removes the aborted-transaction index entries of the ABORT markers at `markerOffsets`: the log cleaner's, before
   * it removes those markers (storage/transaction-index.ts says why not after).
   */
  forgetAbortedTransactions(markerOffsets: readonly bigint[]): Promise<void> {
    return this.abortedIndex.remove(markerOffsets)
  }

  /** Whether batches were appended since the last producer-state snapshot. */
  get appendedSinceSnapshot(): boolean {
    return this.bytesSinceSnapshot > 0
  }

  /**
   * Writes a snapshot of the producer state as it is now and resolves to its offset (the offset after the last batch
   * applied); one at a time. A storage that refuses writes refuses it too (rejects with its StorageError).
   */
  takeSnapshot(): Promise<bigint> {
    if (this.snapshotting) return this.snapshotting
    this.bytesSinceSnapshot = 0
    const snapshot = this.producers.toSnapshot()
    this.snapshotting = this.snapshots
      .write(snapshot)
      .then(() => snapshot.offset)
      .finally(() => (this.snapshotting = null))
    return this.snapshotting
  }

  /**
   * Removes every batch at or above `offset` (a follower truncating to its leader, UnifiedLog.truncateTo), with the
   * index entries and snapshots above the new log end, and rebuilds the producer state from what is left.
   */
  async truncateTo(offset: bigint): Promise<void> {
    // At or past the log end nothing but the epochs there goes: the producer state and the index stay as they are.
    if (offset >= this.log.logEndOffset) return this.log.truncateTo(offset)
    await this.snapshotting
    await this.log.truncateTo(offset)
    await this.abortedIndex.truncateFrom(this.log.logEndOffset)
    this.verifications.clear()
    await loadProducerState(this.producers, this.snapshots, this.log, Date.now())
  }

  /**
   * Empties the log and starts it at `offset` (a follower below its leader's log start, UnifiedLog.truncateFullyAndStartAt):
   * the aborted-transaction index and every producer-state snapshot go, and the producer state starts empty, to be
   * rebuilt from the batches fetched from here on.
   */
  async truncateFullyAndStartAt(offset: bigint): Promise<void> {
    await this.snapshotting
    await this.log.truncateFullyAndStartAt(offset)
    await this.abortedIndex.truncateFrom(0n)
    await this.snapshots.deleteAbove(-1n)
    this.verifications.clear()
    await loadProducerState(this.producers, this.snapshots, this.log, Date.now())
  }

  /**
   * Moves the log start to `offset` (retention, DeleteRecords), never past the high watermark, and drops the index
   * entries of transactions wholly below it (UnifiedLog.maybeIncrementLogStartOffset).
   */
  async deleteBefore(offset: bigint): Promise<void> {
    await this.log.deleteBefore(offset)
    await this.abortedIndex.deleteBefore(this.log.logStartOffset)
    this.producers.onLogStartOffsetIncremented(this.log.logStartOffset)
  }

  /** Forgets producers idle for producer.id.expiration.ms, and their pending verifications; returns how many. */
  removeExpiredProducers(nowMs: number): number {
    for (const producerId of this.verifications.keys()) if (!this.producers.lastEntry(producerId)) this.verifications.delete(producerId)
    return this.producers.removeExpiredProducers(nowMs)
  }

  /** Calls `waiter` once, the next time data becomes readable; returns a function that cancels the wait. */
  onData(waiter: () => void): () => void {
    this.waiters.add(waiter)
    return () => this.waiters.delete(waiter)
  }

  /**
   * Calls `waiter` once, at the next append, as soon as the batch has its offsets and before it is written: what a
   * follower's replica fetch parked at the log end waits for (Kafka's leader completes its delayed follower fetches
   * right after the append). Returns a function that cancels the wait.
   */
  onAppend(waiter: () => void): () => void {
    this.appendWaiters.add(waiter)
    return () => this.appendWaiters.delete(waiter)
  }

  /**
   * Wakes every `onData` waiter; also used when the partition goes away, or this node stops leading it
   * (cluster/replica-manager.ts `stopLeading`), so that parked fetches answer at once.
   */
  wake(): void {
    wakeAll(this.waiters)
  }
}

/** Calls each of `waiters` once and forgets them all (a waiter may add itself again). */
function wakeAll(waiters: Set<() => void>): void {
  if (waiters.size === 0) return
  const woken = [...waiters]
  waiters.clear()
  for (const waiter of woken) waiter()
}

/**
 * A transaction marker as Kafka writes it (MemoryRecords.withEndTransactionMarker): a transactional control batch
 * of the producer's id and epoch holding one record, key = version 0 and the type (0 ABORT, 1 COMMIT), value =
 * version 0 and the coordinator epoch (EndTransactionMarker).
 */
export function encodeMarker(marker: TxnMarker): Buffer {
  const key = Buffer.alloc(4)
  key.writeInt16BE(0, 0)
  key.writeInt16BE(marker.committed ? ControlType.COMMIT : ControlType.ABORT, 2)
  const value = Buffer.alloc(6)
  value.writeInt16BE(0, 0)
  value.writeInt32BE(marker.coordinatorEpoch, 2)
  return encodeRecordBatch([{ key, value }], {
    flags: Attribute.control | Attribute.transactional,
    producerId: marker.producerId,
    producerEpoch: marker.producerEpoch,
  })
}

/**
 * Kafka's checkCurrentLeaderEpoch: -1 skips the check, an older epoch is fenced, a newer one is unknown to us yet
 * (the client saw a leader change this broker has not applied).
 */
export function leaderEpochError(partition: Partition, requested: number): number {
  if (requested === -1 || requested === partition.leaderEpoch) return ErrorCode.NONE
  return requested < partition.leaderEpoch ? ErrorCode.FENCED_LEADER_EPOCH : ErrorCode.UNKNOWN_LEADER_EPOCH
}
