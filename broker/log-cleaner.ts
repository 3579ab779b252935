/**
 * Retention and compaction, run every log.retention.check.interval.ms over every partition, per its cleanup.policy.
 *
 * delete:  batches at the start of the log whose newest record is older than retention.ms are deleted whole, and so
 *          is each next oldest batch while the partition would still hold at least retention.bytes without it (Kafka's
 *          deleteRetentionSizeBreachedSegments: `size - retention.bytes - segment >= 0`, so retention.bytes=0 deletes
 *          everything); the log start offset moves to the first batch kept. A batch plays the part of Kafka's segment
 *          (UnifiedLog.deleteOldSegments): deletion stops at the first batch that must stay, and takes a batch only
 *          if it ends at or below the high watermark, the newest one included (Kafka rolls the active segment to
 *          delete it). A log whose every batch expired is left empty, its log start equal to its log end, and the
 *          next append continues at that offset.
 * compact: the latest record of each key is kept; older records of the key are removed from their batches, which
 *          are rewritten in place with their offsets unchanged (sparse offsets are legal in a batch, as after Kafka's
 *          cleaner). A tombstone (null value) is kept for delete.retention.ms after the pass that first compacted
 *          it, whatever its timestamp (Kafka's delete horizon, KIP-534), so a consumer that read the key's older value
 *          has that long to read its deletion too. A record without a key (written before the topic was switched to
 *          compaction; produce refuses them on a compacted topic) is dropped, as Kafka's cleaner does. Records
 *          newer than min.compaction.lag.ms (only when it is above 0: at 0 a record timestamped ahead of the clock
 *          is compacted as any other, LogCleanerManager.cleanableOffsets), the last batch, and anything at or above
 *          the last stable offset (the high watermark without open transactions) are left alone, as Kafka's cleaner
 *          stops at the first unstable offset: a record of an open transaction may yet be aborted, so it supersedes
 *          nothing. A partition is compacted when the share of not-yet-compacted bytes reaches
 *          min.cleanable.dirty.ratio, when its oldest uncompacted batch, dated by its newest record (Kafka dates a
 *          segment by its first batch's maxTimestamp), is older than max.compaction.lag.ms, or when a tombstone or
 *          marker it kept has since expired (KIP-534: a log nobody writes to still loses its tombstones).
 *
 * Producer state under compaction: the batch that holds an active producer's last sequence stays, emptied of its
 * records if none stay (a 61-byte header with its offset range, producer id, epoch and sequence range: Kafka's
 * BatchRetention.RETAIN_EMPTY), and so does the marker of a producer whose current epoch wrote no data; a batch kept
 * empty goes once its producer has a later one. Producer state rebuilt from the log (a restart after kill -9 past the
 * last producer-state checkpoint, a new or returning replica) then knows every producer the partition knew: a retry of
 * its last batch is still a duplicate, its next batch still in sequence. Consumers read past an empty batch as past a
 * gap (a kafkajs, librdkafka or Java consumer advances to the batch's end).
 *
 * Transactions under compaction (Kafka's CleanedTransactionMetadata), each pass reading from the log start:
 *
 *   offsets:  10    11    12    13       14    15       16    17
 *   batches:  P:a1  Q:b1  P:a2  P ABORT  Q:b2  Q COMMIT  R:c1  R COMMIT    (P's transaction aborted, in the index)
 *   pass 1:   --    b1    --    kept     b2    kept      --    kept        P's batches go whole; c1 superseded later
 *   pass 2:   --    b1    --    [h]      b2    kept      --    [h]         nothing of P's or R's transaction is read
 *   pass n:   --    b1    --    --       b2    kept      --    --          past the horizon [h]: the markers go
 *
 * - A batch of an aborted transaction (its producer's, from the transaction's first offset to its ABORT marker, as
 *   the aborted-transaction index says) supersedes nothing (it never enters the key map, so an aborted write never
 *   costs the committed record of its key) and goes whole in the first pass that reads it (shouldDiscardBatch).
 * - A marker stays while the pass reads batches of its transaction (before the pass's own removals, so a
 *   transaction's batches and its marker never go in one pass). Once a pass reads none, the marker is a tombstone of
 *   the transaction: kept until the delete horizon of its range (the tombstones' horizon below), then removed. So an
 *   ABORT marker goes after its transaction's batches, a COMMIT marker after every record of its transaction was
 *   superseded, and a marker of an empty transaction after the horizon alone. A pass that removes a transaction's
 *   last batches has the next pass come by the marker's horizon, also in a log nobody writes to.
 * - Only on a partition of one replica. A replica of a replicated partition that was away longer than the horizon
 *   resumes fetching at its own log end: holding an aborted transaction's batches but not its marker, it would never
 *   get a marker removed meanwhile, and would serve the aborted records to read_committed readers once it leads (a
 *   trial on three nodes did exactly that). Nothing yet tells a leader that every replica holds a marker, so the
 *   markers of a replicated partition stay; its aborted batches still go (a replica that lacks them gets the
 *   marker, which ends nothing it holds).
 * - An ABORT marker's index entry is removed in a write just before the marker's (never after:
 *   storage/transaction-index.ts says why), so read_committed fetches are told of exactly the aborted transactions
 *   whose markers are still there; before the marker goes, its entry points at batches that may be gone, which
 *   read_committed readers skip past harmlessly.
 *
 * Compaction works as Kafka's cleaner does, in bounded memory:
 *
 *   [ clean (compacted before) | dirty: map pass 1 | map pass 2 | ... | uncleanable tail ]
 *     ^ log start                 ^ cleanedUpTo (kept with the log: Kafka's cleaner-offset-checkpoint)
 *
 * A pass fills the key map (offset-map.ts, log.cleaner.dedupe.buffer.size) with the latest offset of each key of as
 * much of the dirty range as fits, whole batches at a time, then rewrites the log from its start up to there: a
 * record goes if the map holds a later offset for its key, or if it is a tombstone past its delete horizon; batches of
 * aborted transactions and markers go as above. The
 * checkpoint moves to the end of the pass in the same write as its last rewrite, and the next pass continues from it,
 * until the dirty range is done. Each pass only drops records a later record of their key supersedes, so several
 * passes end where one large pass would. Rewrites go to the log a megabyte at a time, so the cleaner holds one
 * batch's records and at most that much of rebuilt batches besides the map. The checkpoint survives restarts, so a
 * restarted node does not compact its logs all over again.
 *
 * Stopping (a node's clean stop) does not wait for a pass to finish: as Kafka's cleaner threads check at each step
 * whether they are shutting down (LogCleaningAbortedException), every loop over batches checks, and a pass stopped
 * halfway leaves its partition as a crash would there. Whatever was rewritten only dropped records that a later
 * record of their key supersedes (that record stays), and the checkpoint stays where the last completed pass put it,
 * so the next start compacts the rest.
 */
import { emptyBatchOf, type Record } from '../protocol/record-batch.js'
import { inflationLimit } from '../protocol/compression.js'
import { batchInflater } from './batch-inflater.js'
import type { BrokerConfig } from './config.js'
import type { Logger } from './logger.js'
import type { Partition } from './partition.js'
import type { TopicManager } from './topics.js'
import type { BatchInfo, CleanerCheckpoint, Rewrite, StoredBatch, TombstoneHorizon } from '../storage/partition-log.js'
import type { AbortedTxn } from '../storage/transaction-index.js'
import { ControlType, producerBatchOfStored, type LastRecord } from '../storage/producer-state.js'
import { StorageError } from '../storage/log-store.js'
import { counted } from '../client/wording.js'
import { BYTES_PER_ENTRY, LOAD_FACTOR, OffsetMap, keyHash } from './offset-map.js'

/** Bytes of rewritten batches handed to the log at a time (storage/group-commit.ts writes about that much at once). */
const REWRITE_CHUNK_BYTES = 1024 * 1024
/**
 * Batches changed (rewritten or removed) handed to the log at a time: a removed batch adds no bytes, so without this
 * a pass that removes most of a log of small batches gathered every one of them into a single write.
 */
const REWRITE_CHUNK_BATCHES = 4096
/**
 * The most delete horizons a partition's cleaner checkpoint keeps. The checkpoint is part of the partition's state
 * record, written with every append, so the list must not grow with each pass that keeps a new tombstone.
 */
export const MAX_TOMBSTONE_HORIZONS = 8

/** Thrown inside a pass once the cleaner is stopping; the pass ends there (LogCleaner.stop). */
class CleaningStopped extends Error {}

interface CompactionSettings {
  now: number
  deleteRetentionMs: number
  minCompactionLagMs: number
  maxCompactionLagMs: number
  minCleanableDirtyRatio: number
  maxMessageBytes: number
}

/**
 * The one of `transactions` (aborted transactions from the partition's index) a batch belongs to: a transactional
 * data batch of the same producer between the transaction's first offset and its ABORT marker. A producer has one
 * transaction open at a time, so its aborted transactions' ranges do not overlap.
 */
function abortedTxnOf(transactions: readonly AbortedTxn[], batch: BatchInfo): AbortedTxn | undefined {
  if (!batch.isTransactional || batch.isControl) return undefined
  return transactions.find((t) => t.producerId === batch.producerId && t.firstOffset <= batch.baseOffset && batch.baseOffset <= t.lastOffset)
}

/**
 * Whether `batch` holds an active producer's last record, so compaction keeps it, emptied if none of its records stay
 * (Kafka's Cleaner.isBatchLastRecordOfProducer -> BatchRetention.RETAIN_EMPTY, "to preserve the state of active
 * producers"): the data batch that ends at the producer's last data offset, or, when its current epoch wrote no data,
 * a marker of that epoch. Without it, state rebuilt from the log would not know the producer, or know an older
 * sequence: its next batch would be refused as out of order, and a retry of its last batch written a second time.
 */
function isLastOfProducer(batch: BatchInfo, lastRecords: ReadonlyMap<bigint, LastRecord>): boolean {
  const last = batch.producerId < 0n ? undefined : lastRecords.get(batch.producerId)
  if (!last) return false
  if (last.lastDataOffset !== null) return !batch.isControl && batch.lastOffset === last.lastDataOffset
  return batch.isControl && batch.producerEpoch === last.producerEpoch
}

/** What a transaction marker is to a clean pass, from what the pass read of its transaction before it. */
const MarkerUse = {
  /** Batches of its transaction stay in the log: the marker stays. */
  NEEDED: 'needed',
  /** This pass removes the last batches of its transaction: the marker stays now and may go from the next pass on. */
  LAST_NEEDED: 'last-needed',
  /** The pass read nothing of its transaction: the marker goes once its delete horizon has passed. */
  DISCARDABLE: 'discardable',
} as const
type MarkerUse = (typeof MarkerUse)[keyof typeof MarkerUse]

/**
 * The transactions of one clean pass, read in offset order from the log start (Kafka's CleanedTransactionMetadata):
 * which data batches belong to aborted transactions, and what each marker is still needed for. A marker is judged by
 * what the pass read of its transaction, before the pass's own removals (as Kafka's onBatchRead and
 * onControlBatchRead), so a transaction's batches and its marker never go in the same pass.
 */
class CleanedTransactions {
  /** ABORT marker offsets of the aborted transactions this pass read batches of (and removes). */
  private readonly abortedRead = new Set<bigint>()
  /** Per producer, whether any transactional batch read since its last marker keeps a record. */
  private readonly openKept = new Map<bigint, boolean>()

  constructor(private readonly aborted: readonly AbortedTxn[]) {}

  /** Reads a data batch; true if it belongs to an aborted transaction, so it goes whole. */
  readAborted(batch: BatchInfo): boolean {
    const txn = abortedTxnOf(this.aborted, batch)
    if (txn) this.abortedRead.add(txn.lastOffset)
    return txn !== undefined
  }

  /** Reads a data batch of no aborted transaction, of which this pass keeps `keptRecords` records. */
  readKept(batch: BatchInfo, keptRecords: number): void {
    if (batch.isTransactional) this.openKept.set(batch.producerId, keptRecords > 0 || this.openKept.get(batch.producerId) === true)
  }

  /** Reads a marker of `type` (null: not a COMMIT or ABORT marker, which stays). */
  readMarker(batch: BatchInfo, type: ControlType | null): MarkerUse {
    const kept = this.openKept.get(batch.producerId)
    this.openKept.delete(batch.producerId)
    if (type === ControlType.ABORT) return this.abortedRead.delete(batch.baseOffset) ? MarkerUse.LAST_NEEDED : MarkerUse.DISCARDABLE
    if (type === ControlType.COMMIT) return kept === undefined ? MarkerUse.DISCARDABLE : kept ? MarkerUse.NEEDED : MarkerUse.LAST_NEEDED
    return MarkerUse.NEEDED
  }
}

/** A batch's facts without its bytes, so a list of rewrites does not keep the batches it replaces alive. */
function factsOf({ bytes: _bytes, ...facts }: StoredBatch): BatchInfo {
  return facts
}

/** Kafka's LogManager.InitialTaskDelayMs: how long after a node's start its first retention and compaction pass waits. */
export const INITIAL_PASS_DELAY_MS = 30_000

export class LogCleaner {
  private timer: NodeJS.Timeout | null = null
  private running: Promise<void> | null = null
  private stopping = false
  /**
   * Partitions (`topicId/index`) whose compaction failed for a reason of their own (a batch with more keys than the key
   * map holds, a batch that cannot be read): later passes skip their compaction until the node restarts, as Kafka's
   * cleaner marks such a partition uncleanable (LogCleanerManager.markPartitionUncleanable), so the failure is logged
   * once rather than at every check interval. Retention still applies to them.
   */
  private readonly uncleanable = new Set<string>()

  constructor(
    private readonly topics: TopicManager,
    private readonly config: BrokerConfig,
    private readonly log: Logger,
  ) {}

  /**
   * The first pass comes INITIAL_PASS_DELAY_MS after the start (or one interval, if that is shorter), then one every
   * log.retention.check.interval.ms, as Kafka's LogManager schedules kafka-log-retention and kafka-log-cleaner: a node
   * restarted more often than the interval (5 minutes by default) still applies retention and compaction.
   */
  start(): void {
    const interval = this.config.logRetentionCheckIntervalMs
    this.timer = setTimeout(() => {
      if (this.stopping) return
      this.timer = setInterval(() => void this.runOnce(), interval)
      this.timer.unref()
      void this.runOnce()
    }, Math.min(INITIAL_PASS_DELAY_MS, interval))
    this.timer.unref()
  }

  /**
   * Stops the cleaner: no pass starts any more, and the one running (if any) stops at its next batch, leaving its
   * partition as a crash there would (see above); resolves once it has.
   */
  async stop(): Promise<void> {
    this.stopping = true
    // clearInterval clears the first pass's timeout too (Node's timers share one kind of handle).
    if (this.timer) clearInterval(this.timer)
    this.timer = null
    await this.running
  }

  /** One pass over every partition; passes never overlap, and none starts once the cleaner is stopping. */
  runOnce(now = Date.now()): Promise<void> {
    if (this.stopping) return this.running ?? Promise.resolve()
    this.running ??= this.pass(now).finally(() => (this.running = null))
    return this.running
  }

  /** Throws CleaningStopped once the cleaner is stopping: called for each batch a pass reads. */
  private checkStopping(): void {
    if (this.stopping) throw new CleaningStopped()
  }

  private async pass(now: number): Promise<void> {
    for (const topic of this.topics.list()) {
      const { config } = topic
      for (const partition of topic.partitions) {
        // A topic deleted during the pass: its logs refuse changes, and there is nothing left to clean.
        if (this.topics.getById(topic.topicId) !== topic) break
        const id = `${topic.topicId}/${partition.index}`
        let compacting = false
        try {
          if (config.cleanupPolicy.delete) await this.applyRetention(partition, config.retentionMs, config.retentionBytes, now)
          if (config.cleanupPolicy.compact && !this.uncleanable.has(id)) {
            compacting = true
            await this.compact(partition, {
              now,
              deleteRetentionMs: config.deleteRetentionMs,
              minCompactionLagMs: config.minCompactionLagMs,
              maxCompactionLagMs: config.maxCompactionLagMs,
              minCleanableDirtyRatio: config.minCleanableDirtyRatio,
              maxMessageBytes: config.maxMessageBytes,
            })
          }
        } catch (error) {
          if (error instanceof CleaningStopped) {
            this.log.info(`${topic.name}-${partition.index}: cleaning stopped halfway for the node's stop; its next start goes on from offset ${partition.log.cleanerCheckpoint.cleanedUpTo}`)
            return
          }
          // Storage refuses writes (the node logged why, once): every other partition would be refused too.
          if (error instanceof StorageError) return
          if (this.topics.getById(topic.topicId) !== topic) break
          if (!compacting) {
            this.log.error(`cleaning ${topic.name}-${partition.index} failed: ${(error as Error).message}`)
            continue
          }
          this.uncleanable.add(id)
          this.log.error(`cleaning ${topic.name}-${partition.index} failed: ${(error as Error).message}; the partition is marked uncleanable: its compaction is skipped until the node restarts`)
        }
      }
    }
  }

  private async applyRetention(partition: Partition, retentionMs: number, retentionBytes: number, now: number): Promise<void> {
    const log = partition.log
    let newStart: bigint | null = null
    // How far the partition is above retention.bytes; a batch goes for size only if the rest still reaches the limit.
    let excess = retentionBytes >= 0 ? log.sizeBytes - retentionBytes : -Infinity
    // Kafka deletes a segment only when its upper bound (here: the offset after the batch's last record) is at or
    // below the high watermark, so the log start never passes it: the scan yields exactly those batches.
    // Batches without a timestamp (-1: no record has one) waiting for the next batch that has one: Kafka dates a
    // segment without timestamps by the file's last modification, its last append; Brook keeps no append time, so
    // such a batch expires with the first later batch that expires (appended after it), and never before.
    let undatedBytes = 0
    for await (const batch of log.batches(log.logStartOffset, partition.highWatermark)) {
      this.checkStopping()
      const undated = batch.maxTimestamp < 0n
      const expired = retentionMs >= 0 && !undated && Number(batch.maxTimestamp) < now - retentionMs
      if (undated && retentionMs >= 0 && excess - undatedBytes - batch.sizeBytes < 0) {
        undatedBytes += batch.sizeBytes
        continue
      }
      if (!expired && excess - undatedBytes - batch.sizeBytes < 0) break
      excess -= undatedBytes + batch.sizeBytes
      undatedBytes = 0
      newStart = batch.lastOffset + 1n
    }
    if (newStart !== null && newStart > log.logStartOffset) {
      await partition.deleteBefore(newStart)
      this.log.info(`${partition.topic.name}-${partition.index}: retention moved the log start to ${newStart}`)
    }
  }

  private async compact(partition: Partition, settings: CompactionSettings): Promise<void> {
    const log = partition.log
    const checkpoint = log.cleanerCheckpoint
    const firstDirty = checkpoint.cleanedUpTo > log.logStartOffset ? checkpoint.cleanedUpTo : log.logStartOffset
    // The dirty range, from its batch headers: where cleaning must stop, how big it is, and how old.
    let cleanableEnd = firstDirty
    let dirtyBytes = 0
    let dirtyRecords = 0
    let uncleanableBytes = 0
    let oldestDirty = Infinity
    // Under min.compaction.lag.ms, batches without a timestamp wait for the next batch that has one, as in
    // applyRetention: Kafka dates them by their segment's last append, which Brook does not keep.
    const undated = { bytes: 0, records: 0 }
    for await (const batch of log.batches(firstDirty, log.logEndOffset)) {
      this.checkStopping()
      // min.compaction.lag.ms applies only when it is above 0 (LogCleanerManager.cleanableOffsets): at 0 a batch whose
      // CreateTime lies ahead of the clock (message.timestamp.after.max.ms allows an hour by default) is cleanable as
      // any other; above 0 it and every batch after it wait until the clock passes its timestamp by the lag.
      const lagged = settings.minCompactionLagMs > 0
      const waitsForDated = lagged && batch.maxTimestamp < 0n
      const cleanable =
        uncleanableBytes === 0 &&
        batch.lastOffset < partition.lastStableOffset &&
        batch.lastOffset + 1n < log.logEndOffset &&
        (!lagged || waitsForDated || Number(batch.maxTimestamp) <= settings.now - settings.minCompactionLagMs)
      if (!cleanable) {
        uncleanableBytes += undated.bytes + batch.sizeBytes
        undated.bytes = 0
        undated.records = 0
        continue
      }
      if (waitsForDated) {
        undated.bytes += batch.sizeBytes
        undated.records += batch.recordCount
        continue
      }
      dirtyBytes += undated.bytes + batch.sizeBytes
      dirtyRecords += undated.records + batch.recordCount
      undated.bytes = 0
      undated.records = 0
      // max.compaction.lag.ms dates a dirty batch by its newest record, as Kafka dates a dirty segment by its first
      // batch's maxTimestamp, above 0 only (LogCleanerManager.maxCompactionDelay, LogSegment.getFirstBatchTimestamp).
      if (batch.maxTimestamp > 0n) oldestDirty = Math.min(oldestDirty, Number(batch.maxTimestamp))
      cleanableEnd = batch.lastOffset + 1n
    }
    uncleanableBytes += undated.bytes
    const totalBytes = log.sizeBytes - uncleanableBytes
    const dueByLag = oldestDirty < settings.now - settings.maxCompactionLagMs
    const tombstonesDue = (checkpoint.tombstonesExpireAtMs ?? Infinity) <= settings.now
    if (totalBytes <= 0 || (dirtyBytes / totalBytes < settings.minCleanableDirtyRatio && !dueByLag && !tombstonesDue)) return
    const mapBytes = Math.min(this.config.logCleanerDedupeBufferSize, Math.ceil(dirtyRecords / LOAD_FACTOR + 1) * BYTES_PER_ENTRY)
    const aborted = await partition.abortedTransactions(log.logStartOffset, cleanableEnd)
    let removed = 0
    let passes = 0
    let mapStart = firstDirty
    do {
      const map = new OffsetMap(mapBytes)
      const mapEnd = await this.fillMap(partition, map, mapStart, cleanableEnd, aborted, settings)
      removed += await this.clean(partition, map, mapEnd, aborted, settings)
      passes++
      mapStart = mapEnd
    } while (mapStart < cleanableEnd)
    if (removed > 0) {
      const howMany = passes > 1 ? ` in ${passes} passes` : ''
      this.log.info(`${partition.topic.name}-${partition.index}: compaction removed ${counted(removed, 'record')} below offset ${mapStart}${howMany}`)
    }
  }

  /** The bound a batch of the partition is inflated to at most (32x max.message.bytes). */
  private inflationBound(batch: StoredBatch, settings: CompactionSettings): number {
    return inflationLimit(Math.max(settings.maxMessageBytes, batch.sizeBytes))
  }

  /**
   * Adds the latest offset of every key in whole batches from `from` until the next batch's new keys would not fit
   * the map, or `to`; returns where the map ends. Control batches and batches of aborted transactions add nothing.
   * Records are read through the batch inflater (a large compressed batch in a worker).
   */
  private async fillMap(
    partition: Partition,
    map: OffsetMap,
    from: bigint,
    to: bigint,
    aborted: readonly AbortedTxn[],
    settings: CompactionSettings,
  ): Promise<bigint> {
    let end = from
    for await (const batch of partition.log.batches(from, to)) {
      this.checkStopping()
      if (!batch.isControl && !abortedTxnOf(aborted, batch)) {
        const hashed = (await batchInflater.decode(batch.bytes, this.inflationBound(batch, settings)))
          .filter((record) => record.key !== null && record.offset >= from)
          .map((record) => ({ hash: keyHash(record.key!), offset: record.offset }))
        const newKeys = hashed.filter(({ hash }) => map.get(hash) < 0n).length
        if (map.size + newKeys > map.capacity) {
          if (map.size > 0) return end
          throw new Error(`a batch of ${newKeys} keys at offset ${batch.baseOffset} does not fit the cleaner's map (log.cleaner.dedupe.buffer.size)`)
        }
        for (const { hash, offset } of hashed) map.put(hash, offset)
      }
      end = batch.lastOffset + 1n
    }
    return to
  }

  /**
   * Rewrites the batches from the log start up to `end` without the batches of aborted transactions, the records
   * `map` supersedes, the expired tombstones and the expired markers nothing needs any more; moves the cleaner
   * checkpoint to `end` with the last rewrite. Returns how many records went.
   */
  private async clean(partition: Partition, map: OffsetMap, end: bigint, aborted: readonly AbortedTxn[], settings: CompactionSettings): Promise<number> {
    const log = partition.log
    const previous = log.cleanerCheckpoint
    // Offsets from here on are compacted for the first time: their tombstones expire delete.retention.ms from now.
    const firstDirty = previous.cleanedUpTo > log.logStartOffset ? previous.cleanedUpTo : log.logStartOffset
    const horizon = settings.now + settings.deleteRetentionMs
    // Ranges compacted before keep the horizon of their first pass (a log truncated since holds less of them).
    const horizons = (previous.tombstoneHorizons ?? []).map((h) => ({ below: h.below < firstDirty ? h.below : firstDirty, expiresAtMs: h.expiresAtMs }))
    const expiryOf = (offset: bigint, timestamp: bigint): number => {
      if (offset >= firstDirty) return horizon
      const covering = horizons.find((h) => offset < h.below)
      // A range compacted before horizons were kept: its tombstones go by their timestamps, as they did then.
      return covering?.expiresAtMs ?? Number(timestamp) + settings.deleteRetentionMs
    }
    let tombstonesExpireAt = Infinity
    let keptNewTombstone = false
    /** Whether a tombstone, or a marker nothing needs any more, stays: until its delete horizon (KIP-534). */
    const beforeHorizon = (offset: bigint, timestamp: bigint): boolean => {
      const expiresAt = expiryOf(offset, timestamp)
      if (expiresAt <= settings.now) return false
      tombstonesExpireAt = Math.min(tombstonesExpireAt, expiresAt)
      if (offset >= firstDirty) keptNewTombstone = true
      return true
    }
    const keep = (record: Record): boolean => {
      // A record without a key has nothing to be the latest of (a topic switched to compaction holds them): Kafka's
      // cleaner drops it (LogCleaner.shouldRetainRecord), and produce refuses new ones on a compacted topic.
      if (!record.key) return false
      if (map.get(keyHash(record.key)) > record.offset) return false
      return record.value !== null || beforeHorizon(record.offset, record.timestamp)
    }
    const transactions = new CleanedTransactions(aborted)
    // A replica that was away longer than the horizon resumes fetching at its own log end: had it the batches of an
    // aborted transaction but not the marker, a marker removed meanwhile would never reach it, and it would serve
    // the aborted records to read_committed readers once it leads. Markers of a replicated partition stay.
    const markersStay = partition.topic.replicationFactor > 1
    const lastRecords = partition.producers.lastRecordsOfActiveProducers()
    const changes: Rewrite[] = []
    // The ABORT markers among `changes`: their index entries go in a write before theirs (transaction-index.ts).
    const forgotten: bigint[] = []
    let chunkBytes = 0
    let removed = 0
    const write = async (options: { checkpoint?: CleanerCheckpoint } = {}): Promise<void> => {
      if (forgotten.length > 0) await partition.forgetAbortedTransactions(forgotten.splice(0))
      await log.rewrite(changes.splice(0), options)
      chunkBytes = 0
    }
    for await (const batch of log.batches(log.logStartOffset, end)) {
      // Stopped here, the changes gathered since the last write are dropped: they were only ever dropping records.
      this.checkStopping()
      let replacement: Buffer | null = null
      const retainEmpty = isLastOfProducer(batch, lastRecords)
      if (batch.isControl) {
        const type = producerBatchOfStored(batch)?.marker?.type ?? null
        const use = transactions.readMarker(batch, type)
        if (use === MarkerUse.NEEDED || markersStay || retainEmpty) continue
        if (use === MarkerUse.LAST_NEEDED) {
          // Nothing may remove it before the next pass: have that pass come once it may (now, if its horizon passed).
          if (!beforeHorizon(batch.baseOffset, batch.maxTimestamp)) tombstonesExpireAt = Math.min(tombstonesExpireAt, settings.now)
          continue
        }
        if (beforeHorizon(batch.baseOffset, batch.maxTimestamp)) continue
        if (type === ControlType.ABORT) forgotten.push(batch.baseOffset)
        removed += batch.recordCount
      } else if (transactions.readAborted(batch)) {
        // An aborted transaction's batch goes whole (Kafka's LogCleaner.shouldDiscardBatch): no reader may see it. Its
        // header stays if it is its producer's last batch (an empty batch, read again by later passes, so the ABORT
        // marker stays as long as it does).
        if (retainEmpty && batch.recordCount === 0) continue
        removed += batch.recordCount
        if (retainEmpty) replacement = emptyBatchOf(batch.bytes)
      } else {
        const bound = this.inflationBound(batch, settings)
        const records = await batchInflater.decode(batch.bytes, bound)
        const kept = records.filter(keep)
        transactions.readKept(batch, kept.length)
        // A batch kept empty before goes once it is no longer its producer's last (BatchRetention.DELETE_EMPTY).
        if (kept.length === records.length && (records.length > 0 || retainEmpty)) continue
        removed += records.length - kept.length
        if (kept.length > 0) replacement = await batchInflater.rebuild(batch.bytes, kept.map((r) => r.offset), bound)
        else if (retainEmpty) replacement = emptyBatchOf(batch.bytes)
      }
      changes.push({ previous: factsOf(batch), replacement })
      chunkBytes += replacement?.length ?? 0
      if (chunkBytes >= REWRITE_CHUNK_BYTES || changes.length >= REWRITE_CHUNK_BATCHES) await write()
    }
    // A range past its horizon has just lost its tombstones, and nothing is ever added below the checkpoint again.
    const live = horizons.filter((h) => h.expiresAtMs > settings.now)
    const tombstoneHorizons = bounded(keptNewTombstone ? [...live, { below: end, expiresAtMs: horizon }] : live)
    await write({
      checkpoint: {
        cleanedUpTo: end,
        tombstonesExpireAtMs: tombstonesExpireAt === Infinity ? null : tombstonesExpireAt,
        tombstoneHorizons,
      },
    })
    return removed
  }
}

/**
 * `horizons` (ascending by `below`, and by expiry: each pass's horizon is later than the ones before) cut to
 * MAX_TOMBSTONE_HORIZONS: the two neighbouring ranges whose horizons are closest become one range under the later
 * horizon, which keeps every tombstone in them at least as long as its own horizon asks.
 */
function bounded(horizons: TombstoneHorizon[]): TombstoneHorizon[] {
  const out = [...horizons]
  while (out.length > MAX_TOMBSTONE_HORIZONS) {
    let closest = 0
    for (let i = 1; i + 1 < out.length; i++) {
      if (out[i + 1]!.expiresAtMs - out[i]!.expiresAtMs < out[closest + 1]!.expiresAtMs - out[closest]!.expiresAtMs) closest = i
    }
    const [lower, upper] = [out[closest]!, out[closest + 1]!]
    out.splice(closest, 2, { below: upper.below, expiresAtMs: Math.max(lower.expiresAtMs, upper.expiresAtMs) })
  }
  return out
}
