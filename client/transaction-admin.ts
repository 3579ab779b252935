/**
 * Transaction administration on the wire, what kafka-transactions.sh does through the Admin client (KIP-664):
 * ListTransactions at every node, DescribeTransactions at the transactional id's coordinator (FindCoordinator key
 * type 1), DescribeProducers at the partition's leader.
 */
import type { ClusterClient, GroupCoordinator } from './cluster-client.js'
import { checkError, type KafkaClient } from './kafka-client.js'
import { NODE_LOSS } from './retry.js'
import { listTransactions as listTransactionsApi, type ListTransactionsRequest, type ListTransactionsResponse } from '../protocol/messages/list-transactions.js'
import { describeTransactions, type DescribeTransactionsRequest, type DescribeTransactionsResponse } from '../protocol/messages/describe-transactions.js'
import {
  describeProducers as describeProducersApi,
  type DescribeProducersRequest,
  type DescribeProducersResponse,
  type DescribeProducersResponsePartitionResponse,
} from '../protocol/messages/describe-producers.js'

export interface ListedTransaction {
  transactionalId: string
  /** The node that coordinates it. */
  coordinatorId: number
  producerId: bigint
  state: string
}

/**
 * ListTransactions at every node (each lists the ids it coordinates), merged and sorted by transactional id; a node
 * lost meanwhile is waited out as `ClusterClient.atEveryNode` says.
 */
export async function listTransactions(cluster: ClusterClient): Promise<ListedTransaction[]> {
  const perNode = await cluster.atEveryNode('cannot list transactions', async (client, nodeId) => {
    const version = client.version(listTransactionsApi, '0-1')
    const response = await client.request<ListTransactionsRequest, ListTransactionsResponse>(listTransactionsApi, version, {
      stateFilters: [],
      producerIdFilters: [],
      durationFilter: -1n,
    })
    checkError(response.errorCode, `listing the transactions of ${client.address}`)
    return response.transactionStates.map((t) => ({ transactionalId: t.transactionalId, coordinatorId: nodeId, producerId: t.producerId, state: t.transactionState }))
  })
  return perNode.flat().sort((a, b) => (a.transactionalId < b.transactionalId ? -1 : a.transactionalId > b.transactionalId ? 1 : 0))
}

export interface TransactionDescription {
  transactionalId: string
  coordinatorId: number
  producerId: bigint
  producerEpoch: number
  state: string
  transactionTimeoutMs: number
  /** ms since the epoch; -1 when no transaction has been open. */
  startTimeMs: bigint
  partitions: { topic: string; partition: number }[]
}

/** DescribeTransactions at the id's coordinator; an error (TRANSACTIONAL_ID_NOT_FOUND) for an id it does not know. */
export function describeTransaction(cluster: ClusterClient, transactionalId: string): Promise<TransactionDescription> {
  return cluster.atTransactionCoordinator(transactionalId, (coordinator) => describeAt(coordinator, transactionalId))
}

async function describeAt(coordinator: GroupCoordinator, transactionalId: string): Promise<TransactionDescription> {
  const response = await coordinator.client.request<DescribeTransactionsRequest, DescribeTransactionsResponse>(describeTransactions, coordinator.client.version(describeTransactions, '0'), {
    transactionalIds: [transactionalId],
  })
  const state = response.transactionStates.find((t) => t.transactionalId === transactionalId)
  if (!state) throw new Error(`the coordinator did not describe transactional id '${transactionalId}'`)
  checkError(state.errorCode, `transactional id '${transactionalId}'`)
  return {
    transactionalId,
    coordinatorId: coordinator.nodeId,
    producerId: state.producerId,
    producerEpoch: state.producerEpoch,
    state: state.transactionState,
    transactionTimeoutMs: state.transactionTimeoutMs,
    startTimeMs: state.transactionStartTimeMs,
    partitions: state.topics.flatMap((t) => t.partitions.map((partition) => ({ topic: t.topic, partition }))),
  }
}

export interface ProducerDescription {
  producerId: bigint
  producerEpoch: number
  coordinatorEpoch: number
  lastSequence: number
  lastTimestamp: bigint
  /** -1 when the producer has no open transaction in the partition. */
  currentTxnStartOffset: bigint
}

/**
 * DescribeProducers for one partition, at its leader, as Kafka's DescribeProducersHandler asks it: a leader that cannot
 * be reached (a dead node leads until the controller fences it and elects another from the ISR) or that answers a
 * retriable error is asked again through fresh Metadata, as NODE_LOSS says (`ClusterClient.atLeaders`, 250 ms apart,
 * up to 30 s). Errors: the topic's Metadata error, `topic 't' has no partition 9`, the leader's other error, and once
 * the time is spent `cannot describe the producers of t-0: ...; gave up after 30 s`.
 */
export async function describeProducers(cluster: ClusterClient, topic: string, partition: number): Promise<ProducerDescription[]> {
  const outcomes = await cluster.atLeaders(topic, [partition], (leader) => describeProducersAt(leader, topic, partition), {
    policy: NODE_LOSS,
    errorCode: (answer) => answer.errorCode,
    unreachable: 'wait',
  })
  const outcome = outcomes.get(partition)!
  if ('unavailable' in outcome) throw new Error(`cannot describe the producers of ${topic}-${partition}: ${outcome.unavailable}`)
  checkError(outcome.answer.errorCode, `${topic}-${partition}`, outcome.answer.errorMessage)
  return outcome.answer.activeProducers.map((p) => ({
    producerId: p.producerId,
    producerEpoch: p.producerEpoch,
    coordinatorEpoch: p.coordinatorEpoch,
    lastSequence: p.lastSequence ?? -1,
    lastTimestamp: p.lastTimestamp ?? -1n,
    currentTxnStartOffset: p.currentTxnStartOffset ?? -1n,
  }))
}

/** One DescribeProducers request at a leader: its answer for `partition`, by partition index. */
async function describeProducersAt(client: KafkaClient, topic: string, partition: number): Promise<Map<number, DescribeProducersResponsePartitionResponse>> {
  const response = await client.request<DescribeProducersRequest, DescribeProducersResponse>(describeProducersApi, client.version(describeProducersApi, '0'), {
    topics: [{ name: topic, partitionIndexes: [partition] }],
  })
  return new Map(response.topics.flatMap((t) => t.partitions).map((p) => [p.partitionIndex, p]))
}
