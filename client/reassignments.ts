/**
 * Partition reassignment on the wire, what kafka-reassign-partitions.sh does through the Admin client (KIP-455):
 * AlterPartitionReassignments v0 and ListPartitionReassignments v0, both at the active controller through
 * `ClusterClient.atController` (any node forwards a reassignment there; the listing is the answering node's view,
 * which includes every reassignment it has answered). Errors are thrown with Kafka's error name and the broker's
 * message, naming the first partition the cluster refused.
 */
import { CONTROLLER_REQUEST_TIMEOUT_MS, type ClusterClient } from './cluster-client.js'
import { checkError } from './kafka-client.js'
import {
  alterPartitionReassignments,
  type AlterPartitionReassignmentsRequest,
  type AlterPartitionReassignmentsResponse,
} from '../protocol/messages/alter-partition-reassignments.js'
import {
  listPartitionReassignments,
  type ListPartitionReassignmentsRequest,
  type ListPartitionReassignmentsResponse,
} from '../protocol/messages/list-partition-reassignments.js'

/** How long the broker may take; below the client's 30 s request timeout, so its answer arrives first. */
const TIMEOUT_MS = 15_000

/** A reassignment under way: the partition's replicas (the target first, then those being removed), and which are added and removed. */
export interface OngoingReassignment {
  readonly topic: string
  readonly partition: number
  readonly replicas: readonly number[]
  readonly addingReplicas: readonly number[]
  readonly removingReplicas: readonly number[]
}

/**
 * Starts moving partitions of `topic` to new replicas: `targets` maps a partition to its new broker ids (the first
 * the preferred leader), or to null to cancel the reassignment under way. Resolves once the controller has taken every
 * one (the data moves afterwards: `listReassignments` shows what is still under way). Errors: the first partition's
 * INVALID_REPLICA_ASSIGNMENT (an empty list, a broker named twice, a broker not registered),
 * UNKNOWN_TOPIC_OR_PARTITION, NO_REASSIGNMENT_IN_PROGRESS (a cancel with none under way); partitions answered NONE
 * are taken even then.
 */
export function reassignPartitions(cluster: ClusterClient, topic: string, targets: ReadonlyMap<number, readonly number[] | null>): Promise<void> {
  const context = `cannot reassign partitions of topic '${topic}'`
  return cluster.atController(context, async (client) => {
    const response = await client.request<AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse>(alterPartitionReassignments, client.version(alterPartitionReassignments), {
      timeoutMs: TIMEOUT_MS,
      topics: [{ name: topic, partitions: [...targets].map(([partitionIndex, replicas]) => ({ partitionIndex, replicas: replicas === null ? null : [...replicas] })) }],
    }, { timeoutMs: CONTROLLER_REQUEST_TIMEOUT_MS })
    checkError(response.errorCode, context, response.errorMessage)
    for (const answered of response.responses) {
      for (const partition of answered.partitions) checkError(partition.errorCode, `cannot reassign ${answered.name}-${partition.partitionIndex}`, partition.errorMessage)
    }
  })
}

/**
 * The reassignments under way, of `topics` or (null) of every topic, in topic and partition order. Errors:
 * UNKNOWN_TOPIC_OR_PARTITION for a topic that does not exist.
 */
export function listReassignments(cluster: ClusterClient, topics: readonly string[] | null): Promise<OngoingReassignment[]> {
  const context = 'cannot list partition reassignments'
  return cluster.atController(context, async (client) => {
    let named: ListPartitionReassignmentsRequest['topics'] = null
    if (topics !== null) {
      const metadata = await cluster.metadata(topics, { allowAutoTopicCreation: false })
      named = topics.map((name) => ({ name, partitionIndexes: metadata.topics.find((t) => t.name === name)?.partitions.map((p) => p.partitionIndex) ?? [] }))
    }
    const response = await client.request<ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse>(listPartitionReassignments, client.version(listPartitionReassignments), {
      timeoutMs: TIMEOUT_MS,
      topics: named,
    })
    checkError(response.errorCode, context, response.errorMessage)
    return response.topics
      .flatMap(({ name, partitions }) => partitions.map(({ partitionIndex, replicas, addingReplicas, removingReplicas }) => ({ topic: name, partition: partitionIndex, replicas, addingReplicas, removingReplicas })))
      .sort((a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition)
  })
}
