/**
 * What Kafka's kafka-transactions.sh asks (KIP-664): DescribeProducers v0, DescribeTransactions v0, ListTransactions
 * v0-1.
 *
 * Behaviour
 * - DescribeProducers: per partition, the producers its producer state holds (storage/producer-state.ts): id, epoch,
 *   the last sequence written (-1 when only markers are known), the last timestamp, the coordinator epoch of its last
 *   marker and the first offset of its open transaction (-1 when none). UNKNOWN_TOPIC_OR_PARTITION for a partition
 *   that does not exist; on a cluster node NOT_LEADER_OR_FOLLOWER for one it does not lead (or has not opened yet),
 *   as Kafka's ReplicaManager.activeProducerState answers from the leader's log only.
 * - DescribeTransactions: a transactional id's state under Kafka's names (Empty, Ongoing, PrepareCommit, ...), its
 *   timeout, start time, producer id and epoch and partitions; TRANSACTIONAL_ID_NOT_FOUND for an id the coordinator
 *   does not know; NOT_COORDINATOR (COORDINATOR_LOAD_IN_PROGRESS while loading) for an id another node coordinates;
 *   INVALID_REQUEST for the empty id (TransactionCoordinator.handleDescribeTransactions).
 * - ListTransactions: every transactional id this node coordinates, filtered by state names (unknown names are
 *   echoed in unknownStateFilters, as Kafka does), producer ids, and (v1) transactions running longer than
 *   durationFilter ms.
 */
import { describeProducers, type DescribeProducersRequest, type DescribeProducersResponse } from '../../protocol/messages/describe-producers.js'
import { describeTransactions, type DescribeTransactionsRequest, type DescribeTransactionsResponse } from '../../protocol/messages/describe-transactions.js'
import { listTransactions, type ListTransactionsRequest, type ListTransactionsResponse } from '../../protocol/messages/list-transactions.js'
import { ErrorCode } from '../../protocol/errors.js'
import { defineHandler, leadershipError, missingPartitionError } from '../handler.js'
import { TXN_STATE_NAMES, TxnState, parsePartitionKey } from '../transaction/metadata.js'

export const describeProducersHandler = defineHandler<DescribeProducersRequest, DescribeProducersResponse>(
  describeProducers,
  '0',
  (request, { services }) => ({
    throttleTimeMs: 0,
    topics: request.topics.map((t) => ({
      name: t.name,
      partitions: t.partitionIndexes.map((partitionIndex) => {
        const partition = services.topics.partition(t.name, partitionIndex)
        const errorCode = partition ? leadershipError(services, partition.topic, partitionIndex) : missingPartitionError(services, { topic: t.name }, partitionIndex)
        if (!partition || errorCode !== ErrorCode.NONE) return { partitionIndex, errorCode, errorMessage: null, activeProducers: [] }
        return {
          partitionIndex,
          errorCode: ErrorCode.NONE,
          errorMessage: null,
          activeProducers: partition.producers.activeProducers().map((entry) => ({
            producerId: entry.producerId,
            producerEpoch: entry.producerEpoch,
            lastSequence: entry.batches.at(-1)?.lastSeq ?? -1,
            lastTimestamp: entry.lastTimestamp,
            coordinatorEpoch: entry.coordinatorEpoch,
            currentTxnStartOffset: entry.currentTxnFirstOffset ?? -1n,
          })),
        }
      }),
    })),
  }),
)

export const describeTransactionsHandler = defineHandler<DescribeTransactionsRequest, DescribeTransactionsResponse>(
  describeTransactions,
  '0',
  (request, { services }) => ({
    throttleTimeMs: 0,
    transactionStates: request.transactionalIds.map((transactionalId) => {
      const notHere = services.transactions.requestError(transactionalId)
      if (notHere !== ErrorCode.NONE) {
        return { errorCode: notHere, transactionalId, transactionState: '', transactionTimeoutMs: 0, transactionStartTimeMs: -1n, producerId: -1n, producerEpoch: -1, topics: [] }
      }
      const metadata = services.transactions.get(transactionalId)
      if (!metadata) {
        return { errorCode: ErrorCode.TRANSACTIONAL_ID_NOT_FOUND, transactionalId, transactionState: '', transactionTimeoutMs: 0, transactionStartTimeMs: -1n, producerId: -1n, producerEpoch: -1, topics: [] }
      }
      const byTopic = new Map<string, number[]>()
      for (const key of metadata.partitions) {
        const { topic, partition } = parsePartitionKey(key)
        byTopic.set(topic, [...(byTopic.get(topic) ?? []), partition].sort((a, b) => a - b))
      }
      return {
        errorCode: ErrorCode.NONE,
        transactionalId,
        transactionState: TXN_STATE_NAMES[metadata.state],
        transactionTimeoutMs: metadata.txnTimeoutMs,
        transactionStartTimeMs: BigInt(metadata.txnStartTimestamp),
        producerId: metadata.producerId,
        producerEpoch: metadata.producerEpoch,
        topics: [...byTopic].map(([topic, partitions]) => ({ topic, partitions })),
      }
    }),
  }),
)

const STATE_BY_NAME = new Map(Object.entries(TXN_STATE_NAMES).map(([state, name]) => [name, Number(state) as TxnState]))

export const listTransactionsHandler = defineHandler<ListTransactionsRequest, ListTransactionsResponse>(
  listTransactions,
  '0-1',
  (request, { services, apiVersion }) => {
    const states = new Set(request.stateFilters.flatMap((name) => (STATE_BY_NAME.has(name) ? [STATE_BY_NAME.get(name)!] : [])))
    const producerIds = new Set(request.producerIdFilters)
    const minDurationMs = apiVersion >= 1 ? Number(request.durationFilter) : -1
    const now = Date.now()
    return {
      throttleTimeMs: 0,
      errorCode: ErrorCode.NONE,
      unknownStateFilters: request.stateFilters.filter((name) => !STATE_BY_NAME.has(name)),
      transactionStates: services.transactions
        .list()
        .filter((m) => states.size === 0 || states.has(m.state))
        .filter((m) => producerIds.size === 0 || producerIds.has(m.producerId))
        .filter((m) => minDurationMs < 0 || (m.state === TxnState.Ongoing && now - m.txnStartTimestamp > minDurationMs))
        .map((m) => ({ transactionalId: m.transactionalId, producerId: m.producerId, transactionState: TXN_STATE_NAMES[m.state] })),
    }
  },
)
