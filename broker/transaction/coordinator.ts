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
 *   that: a client that sees its commit answered can read its records read_committed at once. A Complete* write
 *   refused (the ISR below min.insync.replicas, or slower than the append timeout) is made again while the node
 *   coordinates the id.
 * - Loading replays __transaction_state (latest record per id wins, a tombstone removes it); an id left in
 *   PrepareCommit/PrepareAbort by a crash is completed right after: the markers are written again (by coordinator
 *   epoch they are idempotent) and Complete* is written.
 * - Transactions open longer than their transaction.timeout.ms are aborted with a bumped epoch, which fences the
 *   producer (checked every transaction.abort.timed.out.transaction.cleanup.interval.ms); ids idle (no transaction
 *   open) for transactional.id.expiration.ms are removed with a tombstone.
 * - The coordinator epoch is the leader epoch of the __transaction_state partition: 0 on one node.
 * - A single node coordinates every transactional id; a cluster node those of the __transaction_state partitions it
 *   leads (coordinator-partitions.ts): every request for another id is NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS
 *   while its partition loads, and a write for a partition it stopped leading meanwhile is NOT_COORDINATOR.
 */
import { ErrorCode, KafkaError } from '../../protocol/errors.js'
import { encodeRecordBatch, decodeRecords } from '../../protocol/record-batch.js'
import { StorageError } from '../../storage/log-store.js'
import { counted } from '../../client/wording.js'
import type { BrokerConfig } from '../config.js'
import type { Logger } from '../logger.js'
import type { Partition } from '../partition.js'
import type { TopicManager } from '../topics.js'
import type { ProducerIdManager } from './producer-id-manager.js'
import { MAX_PRODUCER_EPOCH, TransactionMetadata, TxnState, partitionKey, parsePartitionKey, type TopicPartitionRef } from './metadata.js'
import { TRANSACTION_STATE_TOPIC, decodeTransactionRecord, partitionForTransactionalId, transactionKey, transactionValue } from './transaction-log.js'
import type { TxnMarkerChannel } from './marker-channel.js'
import type { CoordinatorPartitions, PartitionLoader } from '../coordinator-partitions.js'
import type { NodeChannels } from '../cluster/node-channels.js'
import { addPartitionsToTxn, type AddPartitionsToTxnRequest, type AddPartitionsToTxnResponse } from '../../protocol/messages/add-partitions-to-txn.js'

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
  | 'failpoint'
>


export class TransactionCoordinator implements PartitionLoader {
  private readonly transactions = new Map<string, TransactionMetadata>()
  /** Per transactional id, the tail of its queue of operations. */
  private readonly queues = new Map<string, Promise<unknown>>()
  private readonly timers: NodeJS.Timeout[] = []

  constructor(
    private readonly producerIds: ProducerIdManager,
    private readonly topics: TopicManager,
    private readonly partitions: CoordinatorPartitions,
    private readonly markers: TxnMarkerChannel,
    private readonly config: TransactionSettings,
    private readonly log: Logger,
    /** A cluster node's connections to the other nodes (verifications at another coordinator); closed with this. */
    private readonly remote?: NodeChannels,
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
    this.remote?.close()
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
   * A single node replays all of __transaction_state, if it exists (a cluster node loads the partitions it leads),
   * then completes the transactions a crash left in PrepareCommit or PrepareAbort.
   */
  async load(): Promise<void> {
    const topic = this.partitions.clustered ? undefined : this.topics.get(TRANSACTION_STATE_TOPIC)
    if (!topic) return
    let records = 0
    for (const partition of topic.partitions) records += await this.replay(partition)
    if (records > 0) this.log.info(`loaded ${counted(this.transactions.size, 'transactional id')} from ${counted(records, 'record')} of ${TRANSACTION_STATE_TOPIC}`)
    this.completeInterrupted([...this.transactions.values()])
  }

  /**
   * This node became the coordinator of a partition of __transaction_state (Kafka's
   * TransactionStateManager.loadTransactionsForTxnTopicPartition): its transactional ids are replayed, and the
   * transactions left in PrepareCommit or PrepareAbort are completed.
   */
  async loadPartition(partition: Partition): Promise<void> {
    const records = await this.replay(partition)
    const loaded = this.idsOf(partition.index)
    if (records > 0) this.log.info(`loaded ${counted(loaded.length, 'transactional id')} from ${counted(records, 'record')} of ${TRANSACTION_STATE_TOPIC}-${partition.index}`)
    this.completeInterrupted(loaded)
  }

  /** This node no longer coordinates a partition of __transaction_state: its transactional ids are forgotten here. */
  unloadPartition(index: number): void {
    for (const metadata of this.idsOf(index)) this.transactions.delete(metadata.transactionalId)
  }

  private idsOf(index: number): TransactionMetadata[] {
    return [...this.transactions.values()].filter((metadata) => this.partitions.partitionFor(metadata.transactionalId) === index)
  }

  /**
   * Replays one partition of __transaction_state into memory (latest record per id wins); answers the records read.
   * Up to the log end offset, as Kafka's loadTransactionMetadata: a new leader's high watermark can lag records the
   * old coordinator wrote to the whole ISR and answered (a follower learns the high watermark one fetch later), and
   * those are this leader's now; a transaction missing its last AddPartitionsToTxn would commit without a marker there.
   */
  private async replay(partition: Partition): Promise<number> {
    let records = 0
    for await (const batch of partition.log.batches(partition.logStartOffset, partition.logEndOffset)) {
      // A control batch (a COMMIT or ABORT marker, which WriteTxnMarkers can write to any partition) holds no
      // transaction state: its key is a ControlRecordKey, which read as a TransactionLogKey would stop the node loading.
      if (batch.isControl) continue
      for (const record of decodeRecords(batch.bytes)) {
        records++
        const decoded = record.key && decodeTransactionRecord(record.key, record.value)
        if (!decoded) continue
        if (decoded.value === null) this.transactions.delete(decoded.transactionalId)
        else this.transactions.set(decoded.transactionalId, TransactionMetadata.fromRecord(decoded.transactionalId, decoded.value))
      }
    }
    return records
  }

  /** Completes, in the background, the transactions a crash left prepared; their ids' requests wait for it. */
  private completeInterrupted(loaded: readonly TransactionMetadata[]): void {
    for (const metadata of loaded) {
      if (!metadata.isCompleting) continue
      this.log.info(`transaction '${metadata.transactionalId}' was interrupted in ${metadata.state === TxnState.PrepareCommit ? 'PrepareCommit' : 'PrepareAbort'}: completing it`)
      void this.serialized(metadata.transactionalId, () => this.complete(metadata)).catch((error: Error) => {
        this.log.error(`could not complete transaction '${metadata.transactionalId}': ${error.message}`)
      })
    }
  }

  /** NONE when this node coordinates the transactional id now; else NOT_COORDINATOR or COORDINATOR_LOAD_IN_PROGRESS. */
  coordinatorError(transactionalId: string): number {
    return this.partitions.errorFor(transactionalId)
  }

  /**
   * What a request naming `transactionalId` is answered before anything else: INVALID_REQUEST for the empty id, which
   * Kafka's TransactionCoordinator refuses in InitProducerId, AddPartitionsToTxn (verification too), AddOffsetsToTxn,
   * EndTxn and DescribeTransactions; else `coordinatorError`.
   */
  requestError(transactionalId: string): number {
    return transactionalId === '' ? ErrorCode.INVALID_REQUEST : this.coordinatorError(transactionalId)
  }

  /** Creates __transaction_state on first use (through the controller on a cluster node), compacted, as Kafka does. */
  ensureStateTopic(): Promise<void> {
    return this.partitions.ensureTopic()
  }

  /**
   * Writes a transactional id's state (or its tombstone) to its partition of __transaction_state. A partition this
   * node no longer coordinates is NOT_COORDINATOR (a KafkaError), and nothing is written.
   */
  private async persist(transactionalId: string, metadata: TransactionMetadata | null): Promise<void> {
    const topic = this.topics.get(TRANSACTION_STATE_TOPIC) ?? (await this.partitions.localTopic())
    const index = partitionForTransactionalId(transactionalId, topic.partitions.length)
    const notHere = this.partitions.errorForPartition(index)
    if (notHere !== ErrorCode.NONE) throw new KafkaError(notHere, `transactional id '${transactionalId}' is not coordinated here`)
    const partition = topic.partitions[index]!
    const batch = encodeRecordBatch([{ key: transactionKey(transactionalId), value: metadata && transactionValue(metadata.toRecord()) }])
    await this.partitions.append(partition, batch)
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
   * answer to a bump that named them was lost (that retry gets the same answer again), or it is PRODUCER_FENCED: a
   * bump without `resume` keeps no previous epoch, so the producer it fenced cannot pass for a retry.
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
    const notHere = this.requestError(transactionalId)
    if (notHere !== ErrorCode.NONE) return { errorCode: notHere, producerId: -1n, producerEpoch: -1 }
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
        // What a retry of this request, its answer lost, may name (TransactionMetadata.prepareIncrementProducerEpoch,
        // prepareProducerIdRotation): the id and epoch it named itself. A request naming none (a new instance of the
        // producer) leaves no last epoch, so the instance it fences is PRODUCER_FENCED, not taken for a retry.
        updated.lastProducerId = resume === null ? -1n : previousId
        updated.lastProducerEpoch = resume === null ? -1 : previousEpoch
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
      const notHere = this.requestError(producer.transactionalId)
      if (notHere !== ErrorCode.NONE) return notHere
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
        return failedWriteCode(error)
      }
      return ErrorCode.NONE
    })
  }

  /**
   * Whether `partition` is in the producer's ongoing transaction (KIP-890 part 1: the leader of a partition verifies
   * the first transactional batch of a transaction there): the error that batch gets, or NONE. Not in it:
   * INVALID_TXN_STATE; another producer id INVALID_PRODUCER_ID_MAPPING; an older epoch INVALID_PRODUCER_EPOCH. On a
   * cluster node whose transactional id another node coordinates, that coordinator is asked with AddPartitionsToTxn
   * v4 (verifyOnly), as Kafka's AddPartitionsToTxnManager does; a coordinator that cannot answer (none, not
   * reachable, loading, moved) is NOT_ENOUGH_REPLICAS, which producers retry (Kafka's
   * ReplicaManager maps those errors so, for clients that do not know them).
   */
  async verifyPartition(producer: TxnProducer, partition: TopicPartitionRef): Promise<number> {
    const notHere = this.requestError(producer.transactionalId)
    if (notHere === ErrorCode.NOT_COORDINATOR && this.remote) return this.verifyAtCoordinator(producer, partition)
    return retriableForProducers(this.verifyHere(producer, partition))
  }

  private async verifyAtCoordinator(producer: TxnProducer, partition: TopicPartitionRef): Promise<number> {
    const coordinator = this.partitions.leaderFor(producer.transactionalId)
    if (coordinator === null) return ErrorCode.NOT_ENOUGH_REPLICAS
    const request: Partial<AddPartitionsToTxnRequest> = {
      transactions: [
        {
          ...producer,
          verifyOnly: true,
          topics: [{ name: partition.topic, partitions: [partition.partition] }],
        },
      ],
    }
    let response: AddPartitionsToTxnResponse
    try {
      response = await this.remote!.request<AddPartitionsToTxnResponse>(coordinator, addPartitionsToTxn, 4, request)
    } catch (error) {
      this.log.debug(`verifying '${producer.transactionalId}' at node ${coordinator} failed: ${(error as Error).message}`)
      return ErrorCode.NOT_ENOUGH_REPLICAS
    }
    const code = response.errorCode || (response.resultsByTransaction?.[0]?.topicResults[0]?.resultsByPartition[0]?.partitionErrorCode ?? ErrorCode.UNKNOWN_SERVER_ERROR)
    return retriableForProducers(code === ErrorCode.PRODUCER_FENCED ? ErrorCode.INVALID_PRODUCER_EPOCH : code)
  }

  /**
   * The verification itself, for a transactional id this node coordinates (and AddPartitionsToTxn v4 verifyOnly, sent
   * by another node): as `verifyPartition`, with NOT_COORDINATOR or COORDINATOR_LOAD_IN_PROGRESS for an id this node
   * does not coordinate now.
   */
  verifyHere(producer: TxnProducer, partition: TopicPartitionRef): number {
    const notHere = this.requestError(producer.transactionalId)
    if (notHere !== ErrorCode.NONE) return notHere
    const metadata = this.transactions.get(producer.transactionalId)
    if (!metadata || metadata.producerId !== producer.producerId) return ErrorCode.INVALID_PRODUCER_ID_MAPPING
    // Any other epoch, a later one too (handleVerifyPartitionsInTransaction: PRODUCER_FENCED, which producers see as
    // INVALID_PRODUCER_EPOCH): a batch of an epoch this coordinator never gave must not join the transaction.
    if (metadata.producerEpoch !== producer.producerEpoch) return ErrorCode.INVALID_PRODUCER_EPOCH
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
      const notHere = this.requestError(producer.transactionalId)
      if (notHere !== ErrorCode.NONE) return notHere
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
        return failedWriteCode(error)
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
    const { transactionalId } = metadata
    await this.markers.send(
      { producerId: metadata.producerId, producerEpoch: metadata.producerEpoch, coordinatorEpoch: this.partitions.coordinatorEpoch(this.partitions.partitionFor(transactionalId)), committed },
      partitions,
      {
        afterFirst: () => this.failpoint('transaction-marker-written'),
        stillCoordinator: () => this.coordinatorError(transactionalId) !== ErrorCode.NOT_COORDINATOR,
      },
    )
    return this.writeComplete(metadata, committed)
  }

  /**
   * Writes Complete* once the markers are out, again after a refused write for as long as this node still coordinates
   * the id (Kafka's TransactionMarkerChannelManager puts a failed append of it back on txnLogAppendRetryQueue): the
   * decision is final, and an id left in Prepare* in memory would answer the producer's EndTxn CONCURRENT_TRANSACTIONS
   * until its partition moved. A write refused while the partition's ISR is below min.insync.replicas, or not
   * replicated in time (COORDINATOR_NOT_AVAILABLE), is retried; once the id is coordinated elsewhere or reloaded here
   * (NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS) the coordinator that loads the Prepare* record completes it.
   */
  private async writeComplete(metadata: TransactionMetadata, committed: boolean): Promise<TransactionMetadata> {
    for (let backoffMs = COMPLETE_RETRY_FIRST_BACKOFF_MS, warned = false; ; backoffMs = Math.min(backoffMs * 2, COMPLETE_RETRY_MAX_BACKOFF_MS)) {
      try {
        return await this.update(metadata, (next) => next.transition(committed ? TxnState.CompleteCommit : TxnState.CompleteAbort, Date.now()))
      } catch (error) {
        const refused = error instanceof KafkaError && error.code === ErrorCode.COORDINATOR_NOT_AVAILABLE
        if (!refused || this.coordinatorError(metadata.transactionalId) !== ErrorCode.NONE) throw error
        if (!warned) this.log.warn(`transaction '${metadata.transactionalId}' has its markers written, but its completion was not: ${error.message}; writing it again`)
        warned = true
      }
      await new Promise((resolve) => setTimeout(resolve, backoffMs))
    }
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
        if (!(error instanceof StorageError) && !(error instanceof KafkaError)) this.log.error(`could not abort transaction '${metadata.transactionalId}': ${error.message}`)
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
        if (!(error instanceof StorageError) && !(error instanceof KafkaError)) this.log.error(`could not expire transactional id '${metadata.transactionalId}': ${error.message}`)
      })
    }
  }
}

/** The pause before Complete* is written again after a refused write, doubling up to the most. */
const COMPLETE_RETRY_FIRST_BACKOFF_MS = 100
const COMPLETE_RETRY_MAX_BACKOFF_MS = 1000

/** The coordinator's own errors become NOT_ENOUGH_REPLICAS for a producer (Kafka's ReplicaManager, KIP-890). */
function retriableForProducers(code: number): number {
  return COORDINATOR_ERRORS.has(code) ? ErrorCode.NOT_ENOUGH_REPLICAS : code
}

const COORDINATOR_ERRORS: ReadonlySet<number> = new Set([
  ErrorCode.NOT_COORDINATOR,
  ErrorCode.COORDINATOR_NOT_AVAILABLE,
  ErrorCode.COORDINATOR_LOAD_IN_PROGRESS,
  ErrorCode.CONCURRENT_TRANSACTIONS,
])

/**
 * The error code of a write to __transaction_state that failed: a storage failure is NOT_COORDINATOR (the client
 * looks the coordinator up again), a Kafka error (NOT_COORDINATOR: the partition moved meanwhile) is its own code.
 */
function failedWriteCode(error: unknown): number {
  if (error instanceof KafkaError) return error.code
  if (error instanceof StorageError) return ErrorCode.NOT_COORDINATOR
  throw error
}
