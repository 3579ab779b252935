/**
 * The transaction coordinator (Kafka's TransactionCoordinator and TransactionStateManager): producer ids and epochs
 * for idempotent and transactional producers, and the two-phase commit of transactions. The state of each
 * transactional id (metadata.ts, with the state diagram) lives in the compacted internal topic `__transaction_state`
 * (transaction-log.ts) and in memory; the coordinator loads it by replaying that topic, so another node can take over
 * a partition of it the same way.
 *
 *   InitProducerId ─┐                          ┌─> __transaction_state   (every transition, before it takes effect)
 *   AddPartitions  ─┼─> TransactionCoordinator ┤
 *   AddOffsets     ─┤     (one transactional   └─> TxnMarkerWriter      (COMMIT/ABORT markers to every partition of
 *   EndTxn         ─┘      id at a time)             (markers.ts)        the transaction, __consumer_offsets included)
 *
 * - The requests of one transactional id are handled one at a time (a per-id queue), so a transition is never raced.
 * - EndTxn writes PrepareCommit/PrepareAbort, then the markers, then CompleteCommit/CompleteAbort, and answers after
 *   that: a client that sees its commit answered can read its records read_committed at once.
 * - Loading replays __transaction_state (latest record per id wins, a tombstone removes it); an id left in
 *   PrepareCommit/PrepareAbort by a crash is completed right after: the markers are written again (by coordinator
 *   epoch they are idempotent) and Complete* is written.
 * - Transactions open longer than their transaction.timeout.ms are aborted with a bumped epoch, which fences the
 *   producer (checked every transaction.abort.timed.out.transaction.cleanup.interval.ms); ids idle (no transaction
 *   open) for transactional.id.expiration.ms are removed with a tombstone.
 * - The coordinator epoch is the leader epoch of the __transaction_state partition: 0 on one node.
 */
import { ErrorCode, KafkaError } from '../../protocol/errors.js'
import { encodeRecordBatch, decodeRecords } from '../../protocol/record-batch.js'
import { StorageError } from '../../storage/log-store.js'
import { AppendOrigin } from '../../storage/producer-state.js'
import { counted } from '../../client/wording.js'
import type { BrokerConfig } from '../config.js'
import type { Logger } from '../logger.js'
import type { Topic } from '../partition.js'
import type { TopicManager } from '../topics.js'
import type { ProducerIdManager } from './producer-id-manager.js'
import { MAX_PRODUCER_EPOCH, TransactionMetadata, TxnState, partitionKey, parsePartitionKey, type TopicPartitionRef } from './metadata.js'
import { TRANSACTION_STATE_TOPIC, decodeTransactionRecord, partitionForTransactionalId, transactionKey, transactionValue } from './transaction-log.js'
import type { TxnMarkerWriter } from './markers.js'
import { OFFSETS_TOPIC, partitionForGroup } from '../group/offsets-topic.js'

/** What InitProducerId answers: an error, or the producer id and epoch to write with. */
export interface InitProducerIdResult {
  errorCode: number
  producerId: bigint
  producerEpoch: number
}

/** The producer a transactional request names. */
export interface TxnProducer {
  transactionalId: string
  producerId: bigint
  producerEpoch: number
}

export type TransactionSettings = Pick<
  BrokerConfig,
  | 'transactionMaxTimeoutMs'
  | 'transactionalIdExpirationMs'
  | 'transactionStateLogNumPartitions'
  | 'transactionAbortTimedOutTransactionCleanupIntervalMs'
  | 'transactionRemoveExpiredTransactionCleanupIntervalMs'
  | 'offsetsTopicPartitions'
  | 'failpoint'
>

const COORDINATOR_EPOCH = 0

export class TransactionCoordinator {
  private readonly transactions = new Map<string, TransactionMetadata>()
  /** Per transactional id, the tail of its queue of operations. */
  private readonly queues = new Map<string, Promise<unknown>>()
  private stateTopic: Topic | null = null
  private creatingTopic: Promise<Topic> | null = null
  private readonly timers: NodeJS.Timeout[] = []

  constructor(
    private readonly producerIds: ProducerIdManager,
    private readonly topics: TopicManager,
    private readonly markers: TxnMarkerWriter,
    private readonly config: TransactionSettings,
    private readonly log: Logger,
  ) {}

  /** Starts the timers that abort timed-out transactions and remove expired transactional ids. */
  startTimers(): void {
    const abort = setInterval(() => void this.abortTimedOutTransactions(), this.config.transactionAbortTimedOutTransactionCleanupIntervalMs)
    const expire = setInterval(() => void this.removeExpiredTransactionalIds(), this.config.transactionRemoveExpiredTransactionCleanupIntervalMs)
    abort.unref()
    expire.unref()
    this.timers.push(abort, expire)
  }

  close(): void {
    for (const timer of this.timers) clearInterval(timer)
  }

  /** Every transactional id this node coordinates (ListTransactions, DescribeTransactions, tests). */
  list(): readonly TransactionMetadata[] {
    return [...this.transactions.values()]
  }

  get(transactionalId: string): TransactionMetadata | undefined {
    return this.transactions.get(transactionalId)
  }

  /** Runs `operation` after every earlier operation of the same transactional id. */
  private serialized<T>(transactionalId: string, operation: () => Promise<T>): Promise<T> {
    const run = (this.queues.get(transactionalId) ?? Promise.resolve()).then(operation)
    const tail = run.catch(() => undefined)
    this.queues.set(transactionalId, tail)
    void tail.then(() => {
      if (this.queues.get(transactionalId) === tail) this.queues.delete(transactionalId)
    })
    return run
  }

  /**
   * Replays __transaction_state if it exists, then completes the transactions a crash left in PrepareCommit or
   * PrepareAbort (in the background; their ids' requests wait for it).
   */
  async load(): Promise<void> {
    const topic = this.topics.get(TRANSACTION_STATE_TOPIC)
    if (!topic) return
    this.stateTopic = topic
    let records = 0
    for (const partition of topic.partitions) {
      for await (const batch of partition.log.batches(partition.logStartOffset, partition.highWatermark)) {
        for (const record of decodeRecords(batch.bytes)) {
          records++
          const decoded = record.key && decodeTransactionRecord(record.key, record.value)
          if (!decoded) continue
          if (decoded.value === null) this.transactions.delete(decoded.transactionalId)
          else this.transactions.set(decoded.transactionalId, TransactionMetadata.fromRecord(decoded.transactionalId, decoded.value))
        }
      }
    }
    if (records > 0) this.log.info(`loaded ${counted(this.transactions.size, 'transactional id')} from ${counted(records, 'record')} of ${TRANSACTION_STATE_TOPIC}`)
    for (const metadata of this.transactions.values()) {
      if (!metadata.isCompleting) continue
      this.log.info(`transaction '${metadata.transactionalId}' was interrupted in ${metadata.state === TxnState.PrepareCommit ? 'PrepareCommit' : 'PrepareAbort'}: completing it`)
      void this.serialized(metadata.transactionalId, () => this.complete(metadata)).catch((error: Error) => {
        this.log.error(`could not complete transaction '${metadata.transactionalId}': ${error.message}`)
      })
    }
  }

  /** Creates __transaction_state on first use, compacted, as Kafka does; rejects with a StorageError if it cannot. */
  async ensureStateTopic(): Promise<Topic> {
    if (this.stateTopic) return this.stateTopic
    this.creatingTopic ??= this.topics
      .getOrCreate({
        name: TRANSACTION_STATE_TOPIC,
        partitions: this.config.transactionStateLogNumPartitions,
        replicationFactor: 1,
        config: this.topics.parseConfig({ 'cleanup.policy': 'compact' }),
      })
      .then(({ topic, created }) => {
        if (created) this.log.info(`created ${TRANSACTION_STATE_TOPIC} with ${counted(topic.partitions.length, 'partition')}`)
        this.stateTopic = topic
        return topic
      })
      .finally(() => (this.creatingTopic = null))
    return this.creatingTopic
  }

  /** Writes a transactional id's state (or its tombstone) to its partition of __transaction_state. */
  private async persist(transactionalId: string, metadata: TransactionMetadata | null): Promise<void> {
    const topic = this.stateTopic ?? (await this.ensureStateTopic())
    const partition = topic.partitions[partitionForTransactionalId(transactionalId, topic.partitions.length)]!
    const batch = encodeRecordBatch([{ key: transactionKey(transactionalId), value: metadata && transactionValue(metadata.toRecord()) }])
    await partition.appendAsLeader(batch, { origin: AppendOrigin.COORDINATOR })
  }

  /**
   * Changes a transactional id's state: the change is applied to a copy, written, and only then made the state, so a
   * failed write leaves memory as the log is.
   */
  private async update(current: TransactionMetadata, change: (next: TransactionMetadata) => void): Promise<TransactionMetadata> {
    const next = TransactionMetadata.fromRecord(current.transactionalId, current.toRecord())
    next.lastProducerId = current.lastProducerId
    next.lastProducerEpoch = current.lastProducerEpoch
    change(next)
    await this.persist(next.transactionalId, next)
    this.transactions.set(next.transactionalId, next)
    return next
  }

  /**
   * InitProducerId (TransactionCoordinator.handleInitProducerId). Without a transactional id (an idempotent producer)
   * the answer is always a new producer id with epoch 0, whatever id and epoch the producer names (KIP-360: a producer
   * that lost its state starts over with a new id). With one: INVALID_TRANSACTION_TIMEOUT above
   * transaction.max.timeout.ms; an id seen before gets its epoch bumped (fencing the previous producer), after its open
   * transaction is aborted; `resume` (KIP-360) must name the current id and epoch, or the previous ones when the
   * answer to a bump was lost, or it is PRODUCER_FENCED.
   */
  async initProducerId(
    transactionalId: string | null,
    options: { transactionTimeoutMs: number; resume: { producerId: bigint; producerEpoch: number } | null },
  ): Promise<InitProducerIdResult> {
    if (transactionalId === null) {
      try {
        return { errorCode: ErrorCode.NONE, producerId: await this.producerIds.generateProducerId(), producerEpoch: 0 }
      } catch (error) {
        return this.failedInit(error)
      }
    }
    if (options.transactionTimeoutMs <= 0 || options.transactionTimeoutMs > this.config.transactionMaxTimeoutMs) {
      return { errorCode: ErrorCode.INVALID_TRANSACTION_TIMEOUT, producerId: -1n, producerEpoch: -1 }
    }
    return this.serialized(transactionalId, async () => {
      try {
        let metadata = this.transactions.get(transactionalId)
        const now = Date.now()
        if (!metadata) {
          const producerId = await this.producerIds.generateProducerId()
          const created = new TransactionMetadata(transactionalId)
          created.producerId = producerId
          created.producerEpoch = 0
          created.txnTimeoutMs = options.transactionTimeoutMs
          created.txnLastUpdateTimestamp = now
          await this.persist(transactionalId, created)
          this.transactions.set(transactionalId, created)
          return { errorCode: ErrorCode.NONE, producerId, producerEpoch: 0 }
        }
        const resume = options.resume
        if (resume !== null) {
          const isCurrent = resume.producerId === metadata.producerId && resume.producerEpoch === metadata.producerEpoch
          const isRetry = resume.producerId === metadata.lastProducerId && resume.producerEpoch === metadata.lastProducerEpoch
          if (isRetry && metadata.state === TxnState.Empty) return { errorCode: ErrorCode.NONE, producerId: metadata.producerId, producerEpoch: metadata.producerEpoch }
          if (!isCurrent) return { errorCode: ErrorCode.PRODUCER_FENCED, producerId: -1n, producerEpoch: -1 }
        }
        if (metadata.state === TxnState.Ongoing) metadata = await this.endTransaction(metadata, { committed: false, bumpEpoch: true })
        const previousId = metadata.producerId
        const previousEpoch = metadata.producerEpoch
        const newId = metadata.producerEpoch >= MAX_PRODUCER_EPOCH - 1 ? await this.producerIds.generateProducerId() : null
        const updated = await this.update(metadata, (next) => {
          next.transition(TxnState.Empty, now)
          next.producerId = newId ?? next.producerId
          next.producerEpoch = newId === null ? next.producerEpoch + 1 : 0
          next.txnTimeoutMs = options.transactionTimeoutMs
        })
        updated.lastProducerId = previousId
        updated.lastProducerEpoch = previousEpoch
        return { errorCode: ErrorCode.NONE, producerId: updated.producerId, producerEpoch: updated.producerEpoch }
      } catch (error) {
        return this.failedInit(error)
      }
    })
  }

  /** A storage failure moves the client to another coordinator; no producer-id block yet (a cluster node) is the block source's retriable code. */
  private failedInit(error: unknown): InitProducerIdResult {
    if (error instanceof KafkaError) {
      this.log.debug(`InitProducerId failed: ${error.message}`)
      return { errorCode: error.code, producerId: -1n, producerEpoch: -1 }
    }
    if (!(error instanceof StorageError)) throw error
    this.log.debug(`InitProducerId failed: ${error.message}`)
    return { errorCode: ErrorCode.NOT_COORDINATOR, producerId: -1n, producerEpoch: -1 }
  }

  /** The error for a request naming `producer` against the id's state, or NONE (TransactionCoordinator's checks). */
  private producerError(metadata: TransactionMetadata | undefined, producer: TxnProducer): number {
    if (!metadata || metadata.producerId !== producer.producerId) return ErrorCode.INVALID_PRODUCER_ID_MAPPING
    if (metadata.producerEpoch !== producer.producerEpoch) return ErrorCode.PRODUCER_FENCED
    if (metadata.isCompleting) return ErrorCode.CONCURRENT_TRANSACTIONS
    return ErrorCode.NONE
  }

  /**
   * AddPartitionsToTxn (handleAddPartitionsToTransaction): adds partitions to the producer's transaction, which
   * becomes Ongoing. Answers one error for all of them: INVALID_PRODUCER_ID_MAPPING, PRODUCER_FENCED,
   * CONCURRENT_TRANSACTIONS (the previous transaction is completing), or a failed write's NOT_COORDINATOR.
   */
  addPartitions(producer: TxnProducer, partitions: readonly TopicPartitionRef[]): Promise<number> {
    return this.serialized(producer.transactionalId, async () => {
      const metadata = this.transactions.get(producer.transactionalId)
      const error = this.producerError(metadata, producer)
      if (error !== ErrorCode.NONE) return error
      const added = partitions.map(partitionKey).filter((key) => !metadata!.partitions.has(key))
      if (added.length === 0 && metadata!.state === TxnState.Ongoing) return ErrorCode.NONE
      try {
        await this.update(metadata!, (next) => {
          next.transition(TxnState.Ongoing, Date.now())
          for (const key of added) next.partitions.add(key)
        })
      } catch (error) {
        if (!(error instanceof StorageError)) throw error
        return ErrorCode.NOT_COORDINATOR
      }
      return ErrorCode.NONE
    })
  }

  /** The __consumer_offsets partition of a group, which AddOffsetsToTxn adds to the transaction. */
  offsetsPartitionOf(groupId: string): TopicPartitionRef {
    const topic = this.topics.get(OFFSETS_TOPIC)
    const partitions = topic?.partitions.length ?? this.config.offsetsTopicPartitions
    return { topic: OFFSETS_TOPIC, partition: partitionForGroup(groupId, partitions) }
  }

  /**
   * Whether `partition` is in the producer's ongoing transaction (KIP-890's verification, AddPartitionsToTxn with
   * verifyOnly): the error a transactional batch for it gets, or NONE. Not in it: INVALID_TXN_STATE.
   */
  verifyPartition(producer: TxnProducer, partition: TopicPartitionRef): number {
    const metadata = this.transactions.get(producer.transactionalId)
    if (!metadata || metadata.producerId !== producer.producerId) return ErrorCode.INVALID_PRODUCER_ID_MAPPING
    if (metadata.producerEpoch > producer.producerEpoch) return ErrorCode.INVALID_PRODUCER_EPOCH
    if (metadata.state !== TxnState.Ongoing || !metadata.partitions.has(partitionKey(partition))) return ErrorCode.INVALID_TXN_STATE
    return ErrorCode.NONE
  }

  /**
   * EndTxn (handleEndTransaction): commits or aborts the producer's transaction. An id this node does not know is
   * INVALID_PRODUCER_ID_MAPPING (TRANSACTIONAL_ID_NOT_FOUND is only for the describe APIs), a wrong epoch
   * PRODUCER_FENCED; a commit of a transaction not Ongoing is INVALID_TXN_STATE, except that repeating the decision
   * just made (CompleteCommit then commit, CompleteAbort then abort) is answered NONE, as a retry; ending nothing
   * (Empty) is INVALID_TXN_STATE too.
   */
  endTxn(producer: TxnProducer, committed: boolean): Promise<number> {
    return this.serialized(producer.transactionalId, async () => {
      const metadata = this.transactions.get(producer.transactionalId)
      const error = this.producerError(metadata, producer)
      if (error !== ErrorCode.NONE) return error
      const state = metadata!.state
      if (state === TxnState.CompleteCommit) return committed ? ErrorCode.NONE : ErrorCode.INVALID_TXN_STATE
      if (state === TxnState.CompleteAbort) return committed ? ErrorCode.INVALID_TXN_STATE : ErrorCode.NONE
      if (state !== TxnState.Ongoing) return ErrorCode.INVALID_TXN_STATE
      try {
        await this.endTransaction(metadata!, { committed, bumpEpoch: false })
      } catch (error) {
        if (!(error instanceof StorageError)) throw error
        return ErrorCode.NOT_COORDINATOR
      }
      return ErrorCode.NONE
    })
  }

  /**
   * The two-phase commit of an Ongoing transaction (call inside the id's queue): Prepare* is written, then the
   * markers, then Complete*. `bumpEpoch` aborts it under the next epoch (a timeout, or a new producer of the id),
   * fencing the producer that opened it.
   */
  private async endTransaction(metadata: TransactionMetadata, options: { committed: boolean; bumpEpoch: boolean }): Promise<TransactionMetadata> {
    const prepared = await this.update(metadata, (next) => {
      if (options.bumpEpoch) next.producerEpoch++
      next.transition(options.committed ? TxnState.PrepareCommit : TxnState.PrepareAbort, Date.now())
    })
    this.failpoint('transaction-prepared')
    return this.complete(prepared)
  }

  /** Writes the markers of a prepared transaction, then Complete* (call inside the id's queue). */
  private async complete(metadata: TransactionMetadata): Promise<TransactionMetadata> {
    const committed = metadata.state === TxnState.PrepareCommit
    const partitions = [...metadata.partitions].map(parsePartitionKey)
    await this.markers.write(
      { producerId: metadata.producerId, producerEpoch: metadata.producerEpoch, coordinatorEpoch: COORDINATOR_EPOCH, committed },
      partitions,
      { afterFirst: () => this.failpoint('transaction-marker-written') },
    )
    return this.update(metadata, (next) => next.transition(committed ? TxnState.CompleteCommit : TxnState.CompleteAbort, Date.now()))
  }

  /** The node kills itself here when the failpoint setting names this point (recovery tests only; config.ts). */
  private failpoint(point: NonNullable<TransactionSettings['failpoint']>): void {
    if (this.config.failpoint !== point) return
    this.log.warn(`failpoint '${point}' reached: killing the node`)
    process.kill(process.pid, 'SIGKILL')
  }

  /** Aborts, under a bumped epoch, every transaction open longer than its timeout (abortTimedOutTransactions). */
  async abortTimedOutTransactions(now = Date.now()): Promise<void> {
    for (const metadata of [...this.transactions.values()]) {
      if (metadata.state !== TxnState.Ongoing || metadata.txnStartTimestamp + metadata.txnTimeoutMs > now) continue
      await this.serialized(metadata.transactionalId, async () => {
        const current = this.transactions.get(metadata.transactionalId)
        if (current !== metadata || current.state !== TxnState.Ongoing) return
        this.log.info(`transaction '${metadata.transactionalId}' open longer than ${metadata.txnTimeoutMs} ms: aborting it and fencing its producer`)
        await this.endTransaction(current, { committed: false, bumpEpoch: true })
      }).catch((error: Error) => {
        if (!(error instanceof StorageError)) this.log.error(`could not abort transaction '${metadata.transactionalId}': ${error.message}`)
      })
    }
  }

  /** Removes transactional ids idle (no transaction open) for transactional.id.expiration.ms, with a tombstone. */
  async removeExpiredTransactionalIds(now = Date.now()): Promise<void> {
    for (const metadata of [...this.transactions.values()]) {
      const idle = metadata.state === TxnState.Empty || metadata.state === TxnState.CompleteCommit || metadata.state === TxnState.CompleteAbort
      if (!idle || metadata.txnLastUpdateTimestamp + this.config.transactionalIdExpirationMs > now) continue
      await this.serialized(metadata.transactionalId, async () => {
        if (this.transactions.get(metadata.transactionalId) !== metadata) return
        await this.persist(metadata.transactionalId, null)
        this.transactions.delete(metadata.transactionalId)
        this.log.info(`transactional id '${metadata.transactionalId}' expired after transactional.id.expiration.ms`)
      }).catch((error: Error) => {
        if (!(error instanceof StorageError)) this.log.error(`could not expire transactional id '${metadata.transactionalId}': ${error.message}`)
      })
    }
  }
}
