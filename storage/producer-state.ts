/**
 * Producer state of one partition (Kafka's ProducerStateManager, ProducerStateEntry and ProducerAppendInfo): for every
 * producer id that wrote to the partition, its epoch, the sequence ranges and offsets of its last five batches, the
 * coordinator epoch of its last transaction marker and the first offset of its open transaction. Everything here comes
 * from batch headers (and the one record of a control batch), so a follower that replicates the batches, or a node
 * that replays them after a crash, arrives at the same state.
 *
 *   producers:   producerId -> { epoch, coordinatorEpoch, lastTimestamp, currentTxnFirstOffset, last 5 batches }
 *   ongoing:     open transactions by first offset                 (their data is undecided)
 *   unreplicated: decided transactions whose marker is at or above the high watermark
 *
 *   firstUnstableOffset = min(first offset of ongoing, of unreplicated)      lastStableOffset = min(it, highWatermark)
 *
 * Checks on an append (the origin says which apply):
 * - client and coordinator: an epoch below the producer's is INVALID_PRODUCER_EPOCH (ProducerAppendInfo
 *   .checkProducerEpoch); a marker whose coordinator epoch is below the last one seen is TRANSACTION_COORDINATOR_FENCED.
 * - client: a batch whose sequence range equals one of the last five of the same epoch is a duplicate, answered with
 *   the original offsets and written nowhere; otherwise its first sequence must follow the last one (wrapping after
 *   Int32 max), a new epoch must start at 0, and a producer with no state may start anywhere (its batches were
 *   removed, or it is new): OUT_OF_ORDER_SEQUENCE_NUMBER otherwise (checkSequence).
 * - client and coordinator: a non-transactional batch while the producer has an open transaction is INVALID_TXN_STATE.
 * - replication (a follower, and the replay at load): nothing is checked; the leader did.
 * A check that fails changes nothing: `prepare` computes the update, `update` applies it once the batch has its offsets.
 *
 * Invariants: an entry keeps at most NUM_BATCHES_TO_RETAIN batches, all of its current epoch, in offset order;
 * `ongoing` holds exactly the entries with a currentTxnFirstOffset; mapEndOffset is the offset after the last batch
 * applied. Snapshots (`toSnapshot`/`restore`) hold the producers as of mapEndOffset; the open transactions follow from
 * them.
 */
import { ErrorCode, KafkaError } from '../protocol/errors.js'
import { At, Attribute, decodeRecords, decrementSequence, incrementSequence, lastOffsetOf } from '../protocol/record-batch.js'
import type { StoredBatch } from './partition-log.js'

/** ProducerStateEntry.NUM_BATCHES_TO_RETAIN: as many as a producer may have in flight (max.in.flight 5). */
export const NUM_BATCHES_TO_RETAIN = 5
/** RecordBatch.NO_PRODUCER_EPOCH / NO_SEQUENCE / NO_PRODUCER_ID. */
export const NO_PRODUCER_EPOCH = -1
export const NO_SEQUENCE = -1
export const NO_PRODUCER_ID = -1n
const INT32_MAX = 2147483647

/** Where an append comes from (Kafka's AppendOrigin), which decides what is checked. */
export const AppendOrigin = { CLIENT: 'client', COORDINATOR: 'coordinator', REPLICATION: 'replication' } as const
export type AppendOrigin = (typeof AppendOrigin)[keyof typeof AppendOrigin]

/** ControlRecordType: the marker types this broker writes and reads. */
export const ControlType = { ABORT: 0, COMMIT: 1 } as const
export type ControlType = (typeof ControlType)[keyof typeof ControlType]

/** One retained batch of a producer (Kafka's BatchMetadata). */
export interface BatchMetadata {
  readonly lastSeq: number
  readonly lastOffset: bigint
  /** lastOffset - firstOffset. */
  readonly offsetDelta: number
  /** The batch's maxTimestamp, ms. */
  readonly timestamp: bigint
}

export interface ProducerStateEntry {
  readonly producerId: bigint
  producerEpoch: number
  /** The coordinator epoch of the last marker; -1 before any. */
  coordinatorEpoch: number
  /** The last batch's maxTimestamp (or marker's timestamp), ms: producer.id.expiration.ms counts from it. */
  lastTimestamp: bigint
  /** First offset of the open transaction, null when none. */
  currentTxnFirstOffset: bigint | null
  batches: BatchMetadata[]
}

/** What the producer state reads of a batch: its header, and for a control batch its marker. */
export interface ProducerBatch {
  producerId: bigint
  producerEpoch: number
  baseSequence: number
  baseOffset: bigint
  lastOffset: bigint
  maxTimestamp: bigint
  transactional: boolean
  /** Set for a control batch (a transaction marker). */
  marker: { type: ControlType; coordinatorEpoch: number } | null
}

/** Where an active producer's last record is (Kafka's LastRecord): its last data batch's last offset, or null. */
export interface LastRecord {
  readonly lastDataOffset: bigint | null
  readonly producerEpoch: number
}

/** A decided transaction: its producer, first data offset, and the offset of its marker. */
export interface CompletedTxn {
  producerId: bigint
  firstOffset: bigint
  lastOffset: bigint
  aborted: boolean
}

/** The answer of `prepare`: the producer's entry once the batch is applied, and the transaction it opens or decides. */
export interface Prepared {
  entry: ProducerStateEntry
  startsTxn: boolean
  completed: CompletedTxn | null
}

/** A producer-state snapshot as stored: the producers as of `offset` (the offset after the last batch applied). */
export interface ProducerSnapshot {
  offset: bigint
  producers: ProducerStateEntry[]
}

export function firstSeqOf(batch: BatchMetadata): number {
  return decrementSequence(batch.lastSeq, batch.offsetDelta)
}

/**
 * The producer fields of a stored or produced batch (offsets as they are in it), or null when it has no producer id.
 * A control batch's one record is decoded for its marker (EndTransactionMarker: key = version, type; value = version,
 * coordinator epoch); a control batch with no record (cleaned) or of another type has no marker.
 */
export function producerBatchOf(batch: Buffer): ProducerBatch | null {
  const producerId = batch.readBigInt64BE(At.producerId)
  if (producerId < 0n) return null
  const attributes = batch.readInt16BE(At.attributes)
  return {
    producerId,
    producerEpoch: batch.readInt16BE(At.producerEpoch),
    baseSequence: batch.readInt32BE(At.baseSequence),
    baseOffset: batch.readBigInt64BE(At.baseOffset),
    lastOffset: lastOffsetOf(batch),
    maxTimestamp: batch.readBigInt64BE(At.maxTimestamp),
    transactional: (attributes & Attribute.transactional) !== 0,
    marker: attributes & Attribute.control ? markerOf(batch) : null,
  }
}

/** The same fields from a stored batch's header facts (PartitionLog.batches); only a control batch's record is read. */
export function producerBatchOfStored(batch: StoredBatch): ProducerBatch | null {
  if (batch.producerId < 0n) return null
  return {
    producerId: batch.producerId,
    producerEpoch: batch.producerEpoch,
    baseSequence: batch.baseSequence,
    baseOffset: batch.baseOffset,
    lastOffset: batch.lastOffset,
    maxTimestamp: batch.maxTimestamp,
    transactional: batch.isTransactional,
    marker: batch.isControl ? markerOf(batch.bytes) : null,
  }
}

/** A control batch's EndTransactionMarker, or null (no record left, or a type this broker does not write). */
function markerOf(batch: Buffer): ProducerBatch['marker'] {
  const record = batch.readInt32BE(At.recordsCount) > 0 ? decodeRecords(batch)[0] : undefined
  if (!record?.key || record.key.length < 4 || !record.value || record.value.length < 6) return null
  const type = record.key.readInt16BE(2)
  if (type !== ControlType.ABORT && type !== ControlType.COMMIT) return null
  return { type, coordinatorEpoch: record.value.readInt32BE(2) }
}

export interface ProducerStateOptions {
  /** producer.id.expiration.ms: a producer with no open transaction and no batch for this long is forgotten. */
  producerIdExpirationMs: number
}

interface TxnRange {
  producerId: bigint
  firstOffset: bigint
  lastOffset: bigint | null
}

function emptyEntry(producerId: bigint): ProducerStateEntry {
  return { producerId, producerEpoch: NO_PRODUCER_EPOCH, coordinatorEpoch: -1, lastTimestamp: -1n, currentTxnFirstOffset: null, batches: [] }
}

function copyEntry(entry: ProducerStateEntry): ProducerStateEntry {
  return { ...entry, batches: [...entry.batches] }
}

export class ProducerStateManager {
  private readonly producers = new Map<bigint, ProducerStateEntry>()
  /** Open transactions, by first offset (appends come in offset order, so pushing keeps it sorted). */
  private ongoing: TxnRange[] = []
  /** Decided transactions whose marker the high watermark has not passed, by first offset. */
  private unreplicated: TxnRange[] = []
  /** The offset after the last batch applied. */
  mapEndOffset = 0n

  constructor(private readonly options: ProducerStateOptions) {}

  /** Producer ids with state, for DescribeProducers. */
  activeProducers(): readonly ProducerStateEntry[] {
    return [...this.producers.values()]
  }

  /**
   * Per producer with state, the offset of its last data batch, or null when its current epoch wrote none (its last
   * record is a marker), and its epoch (UnifiedLog.lastRecordsOfActiveProducers): the batches compaction keeps, emptied
   * if none of their records stay, so that producer state rebuilt from the log (a restart past the last snapshot, a
   * new or returning replica) still holds every producer this state holds.
   */
  lastRecordsOfActiveProducers(): Map<bigint, LastRecord> {
    const out = new Map<bigint, LastRecord>()
    for (const entry of this.producers.values()) {
      out.set(entry.producerId, { lastDataOffset: entry.batches.at(-1)?.lastOffset ?? null, producerEpoch: entry.producerEpoch })
    }
    return out
  }

  lastEntry(producerId: bigint): ProducerStateEntry | undefined {
    return this.producers.get(producerId)
  }

  /**
   * Whether the producer has a transaction open here at `producerEpoch` (UnifiedLog.hasOngoingTransaction): a batch of
   * another epoch, a later one included, is verified with the coordinator before it may join or open one.
   */
  hasOngoingTransaction(producerId: bigint, producerEpoch: number): boolean {
    const entry = this.producers.get(producerId)
    return entry?.currentTxnFirstOffset != null && entry.producerEpoch === producerEpoch
  }

  /**
   * The retained batch `batch` repeats (ProducerStateEntry.findDuplicateBatch: the same epoch and exactly the sequence
   * range of one of the producer's last five batches), if any: a client's retry, answered with the original offsets.
   */
  findDuplicate(batch: ProducerBatch): BatchMetadata | undefined {
    const entry = this.producers.get(batch.producerId)
    if (!entry || batch.marker !== null || batch.producerEpoch !== entry.producerEpoch) return undefined
    const lastSeq = incrementSequence(batch.baseSequence, Number(batch.lastOffset - batch.baseOffset))
    return entry.batches.find((b) => b.lastSeq === lastSeq && firstSeqOf(b) === batch.baseSequence)
  }

  /**
   * Checks a batch about to be appended (Kafka's analyzeAndValidateProducerState and ProducerAppendInfo.append, after
   * the duplicate lookup) and returns what to apply with `update` once the batch has its offsets. Throws a KafkaError
   * when the batch must be refused; nothing changes then. `batch.baseOffset` is the offset the batch will get.
   */
  prepare(batch: ProducerBatch, origin: AppendOrigin): Prepared {
    const current = this.producers.get(batch.producerId)
    const entry = current ? copyEntry(current) : emptyEntry(batch.producerId)
    const validate = origin !== AppendOrigin.REPLICATION
    if (validate && batch.producerEpoch < entry.producerEpoch) {
      throw new KafkaError(
        ErrorCode.INVALID_PRODUCER_EPOCH,
        `producer ${batch.producerId} has epoch ${batch.producerEpoch}, older than the last seen epoch ${entry.producerEpoch}`,
      )
    }
    if (batch.marker !== null) {
      if (validate && entry.coordinatorEpoch > batch.marker.coordinatorEpoch) {
        throw new KafkaError(
          ErrorCode.TRANSACTION_COORDINATOR_FENCED,
          `marker for producer ${batch.producerId} has coordinator epoch ${batch.marker.coordinatorEpoch}, older than ${entry.coordinatorEpoch}`,
        )
      }
      const completed =
        entry.currentTxnFirstOffset === null
          ? null
          : { producerId: batch.producerId, firstOffset: entry.currentTxnFirstOffset, lastOffset: batch.baseOffset, aborted: batch.marker.type === ControlType.ABORT }
      if (entry.producerEpoch !== batch.producerEpoch) {
        entry.producerEpoch = batch.producerEpoch
        entry.batches = []
      }
      entry.coordinatorEpoch = batch.marker.coordinatorEpoch
      entry.currentTxnFirstOffset = null
      entry.lastTimestamp = batch.maxTimestamp
      return { entry, startsTxn: false, completed }
    }
    if (origin === AppendOrigin.CLIENT) checkSequence(entry, batch)
    const lastSeq = incrementSequence(batch.baseSequence, Number(batch.lastOffset - batch.baseOffset))
    if (entry.producerEpoch !== batch.producerEpoch) {
      entry.producerEpoch = batch.producerEpoch
      entry.batches = []
    }
    entry.batches.push({ lastSeq, lastOffset: batch.lastOffset, offsetDelta: Number(batch.lastOffset - batch.baseOffset), timestamp: batch.maxTimestamp })
    if (entry.batches.length > NUM_BATCHES_TO_RETAIN) entry.batches.shift()
    entry.lastTimestamp = batch.maxTimestamp
    let startsTxn = false
    if (entry.currentTxnFirstOffset !== null && !batch.transactional) {
      if (validate) {
        throw new KafkaError(ErrorCode.INVALID_TXN_STATE, `producer ${batch.producerId} wrote a non-transactional batch while its transaction is open`)
      }
    } else if (entry.currentTxnFirstOffset === null && batch.transactional) {
      entry.currentTxnFirstOffset = batch.baseOffset
      startsTxn = true
    }
    return { entry, startsTxn, completed: null }
  }

  /**
   * Applies a prepared update (ProducerStateManager.update). A completed transaction stays unstable until the high
   * watermark passes its marker (`onHighWatermarkUpdated`); `lastStableOffsetOf` gives the value the aborted
   * transaction index records for it, and must be read before this is called.
   */
  update(prepared: Prepared, endOffset: bigint): void {
    const { entry, completed } = prepared
    this.producers.set(entry.producerId, entry)
    if (prepared.startsTxn) this.ongoing.push({ producerId: entry.producerId, firstOffset: entry.currentTxnFirstOffset!, lastOffset: null })
    if (completed) {
      this.ongoing = this.ongoing.filter((txn) => txn.firstOffset !== completed.firstOffset)
      insertByFirstOffset(this.unreplicated, { producerId: completed.producerId, firstOffset: completed.firstOffset, lastOffset: completed.lastOffset })
    }
    if (endOffset > this.mapEndOffset) this.mapEndOffset = endOffset
  }

  /**
   * The last stable offset once `completed` is decided (ProducerStateManager.lastStableOffset): the first offset of
   * the next open transaction of another producer, or the offset after the marker. The aborted transaction index
   * keeps it with each entry, so a reader can stop looking once an entry's value is past the range it reads.
   */
  lastStableOffsetOf(completed: CompletedTxn): bigint {
    const next = this.ongoing.find((txn) => txn.producerId !== completed.producerId)
    return next ? next.firstOffset : completed.lastOffset + 1n
  }

  /** The first offset that is undecided, or decided by a marker the high watermark has not passed; null if none. */
  firstUnstableOffset(): bigint | null {
    const undecided = this.ongoing[0]?.firstOffset
    const unreplicated = this.unreplicated[0]?.firstOffset
    if (undecided === undefined) return unreplicated ?? null
    if (unreplicated === undefined) return undecided
    return undecided < unreplicated ? undecided : unreplicated
  }

  /** Transactions whose marker is below the high watermark are stable from now on. */
  onHighWatermarkUpdated(highWatermark: bigint): void {
    if (this.unreplicated.length === 0) return
    this.unreplicated = this.unreplicated.filter((txn) => txn.lastOffset! >= highWatermark)
  }

  /** Open transactions (DescribeProducers' currentTxnStartOffset, and tests). */
  ongoingTransactions(): readonly { producerId: bigint; firstOffset: bigint }[] {
    return this.ongoing
  }

  /**
   * Forgets producers with no open transaction whose last batch is older than producer.id.expiration.ms
   * (removeExpiredProducers); returns how many went.
   */
  removeExpiredProducers(nowMs: number): number {
    let removed = 0
    for (const [producerId, entry] of this.producers) {
      if (this.isExpired(entry, nowMs)) {
        this.producers.delete(producerId)
        removed++
      }
    }
    return removed
  }

  private isExpired(entry: ProducerStateEntry, nowMs: number): boolean {
    return entry.currentTxnFirstOffset === null && nowMs - Number(entry.lastTimestamp) >= this.options.producerIdExpirationMs
  }

  /** The state to store: every producer as of mapEndOffset. */
  toSnapshot(): ProducerSnapshot {
    return { offset: this.mapEndOffset, producers: [...this.producers.values()].map(copyEntry) }
  }

  /**
   * Starts over from a snapshot (or from nothing at `offset`), as a load or a truncation does (truncateAndReload);
   * expired producers are left out, open transactions rebuilt from the entries.
   */
  restore(snapshot: ProducerSnapshot | null, offset: bigint, nowMs: number): void {
    this.producers.clear()
    this.ongoing = []
    this.unreplicated = []
    this.mapEndOffset = snapshot?.offset ?? offset
    for (const entry of snapshot?.producers ?? []) {
      if (this.isExpired(entry, nowMs)) continue
      this.producers.set(entry.producerId, copyEntry(entry))
      if (entry.currentTxnFirstOffset !== null) {
        insertByFirstOffset(this.ongoing, { producerId: entry.producerId, firstOffset: entry.currentTxnFirstOffset, lastOffset: null })
      }
    }
  }

  /** Applies a stored batch without checks (replay at load, and replication); returns the transaction it decides. */
  replay(batch: ProducerBatch): CompletedTxn | null {
    const prepared = this.prepare(batch, AppendOrigin.REPLICATION)
    this.update(prepared, batch.lastOffset + 1n)
    return prepared.completed
  }

  /** After the log start moved: decided transactions wholly below it are gone, and so is their instability. */
  onLogStartOffsetIncremented(logStartOffset: bigint): void {
    this.unreplicated = this.unreplicated.filter((txn) => txn.lastOffset! >= logStartOffset)
    if (this.mapEndOffset < logStartOffset) this.mapEndOffset = logStartOffset
  }
}

/** ProducerAppendInfo.checkSequence, for a data batch from a client. */
function checkSequence(entry: ProducerStateEntry, batch: ProducerBatch): void {
  const firstSeq = batch.baseSequence
  if (batch.producerEpoch !== entry.producerEpoch) {
    if (firstSeq !== 0 && entry.producerEpoch !== NO_PRODUCER_EPOCH) {
      throw new KafkaError(
        ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
        `producer ${batch.producerId} started epoch ${batch.producerEpoch} at sequence ${firstSeq}; a new epoch starts at 0`,
      )
    }
    return
  }
  // No state (its batches were removed by retention or DeleteRecords, or it expired): any sequence is accepted.
  if (entry.producerEpoch === NO_PRODUCER_EPOCH) return
  const lastSeq = entry.batches.at(-1)?.lastSeq ?? NO_SEQUENCE
  const inSequence = firstSeq === lastSeq + 1 || (firstSeq === 0 && lastSeq === INT32_MAX)
  if (!inSequence) {
    throw new KafkaError(
      ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
      `producer ${batch.producerId} sent sequence ${firstSeq} after ${lastSeq} (epoch ${batch.producerEpoch})`,
    )
  }
}

function insertByFirstOffset(list: TxnRange[], txn: TxnRange): void {
  let at = list.length
  while (at > 0 && list[at - 1]!.firstOffset > txn.firstOffset) at--
  list.splice(at, 0, txn)
}
