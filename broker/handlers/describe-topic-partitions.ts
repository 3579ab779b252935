/**
 * DescribeTopicPartitions: v0 (KIP-966; what Kafka 3.8+'s Admin.describeTopics and kafka-topics.sh --describe ask
 * first), answered from the node's metadata as Kafka's DescribeTopicPartitionsRequestHandler and
 * KRaftMetadataCache.describeTopicResponse do.
 *
 * Behaviour
 * - Topics: those named, or every topic when the list is empty; in name order, from the cursor's topic on (names that
 *   sort before it are skipped). A named topic the node does not know is answered UNKNOWN_TOPIC_OR_PARTITION
 *   (INVALID_TOPIC_EXCEPTION for an invalid name) with no partitions; with the empty list no such entries arise.
 *   Nothing is created.
 * - Partitions: from the cursor's partition index in the cursor's topic (0 in the others), at most
 *   `responsePartitionLimit` in all (at least 1, at most 2000: Kafka's max.request.partition.size.limit). Where the
 *   limit stops inside a topic, nextCursor names that topic and its next partition; where it stops between topics,
 *   the next topic and partition 0 (which need not exist: a named topic is checked when it is reached).
 * - Each partition as Metadata v12 gives it (leader, leader epoch, replicas, ISR, offline replicas), its errorCode
 *   NONE even without a leader (leader -1), as Kafka sets none; eligibleLeaderReplicas and lastKnownElr are empty:
 *   Brook has no eligible leader replicas (KIP-966's ELR), as a Kafka with the feature off answers.
 * - topicAuthorizedOperations: every topic operation, always (Kafka sets them on every topic it answers; Brook has
 *   no ACLs).
 * - A cursor whose topic is not among the named topics, or whose partition index is negative, is INVALID_REQUEST:
 *   every named topic answered with it and no partitions (the request's error response).
 */
import {
  describeTopicPartitions,
  type DescribeTopicPartitionsRequest,
  type DescribeTopicPartitionsResponse,
  type DescribeTopicPartitionsResponseTopic,
} from '../../protocol/messages/describe-topic-partitions.js'
import { ErrorCode } from '../../protocol/errors.js'
import { AuthorizedOperations, ZERO_UUID } from '../../protocol/constants.js'
import { defineHandler } from '../handler.js'
import { topicNameProblem } from '../topics.js'
import { describeKnownTopic, knownTopicNames } from './metadata.js'

/** Kafka's max.request.partition.size.limit default: the most partitions one answer carries. */
const MAX_PARTITIONS = 2000

export const describeTopicPartitionsHandler = defineHandler<DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse>(
  describeTopicPartitions,
  '0',
  (request, { services }) => {
    const all = request.topics.length === 0
    const cursor = request.cursor
    const from = cursor?.topicName ?? ''
    const names = [...new Set(all ? knownTopicNames(services) : request.topics.map((t) => t.name))].filter((name) => name >= from).sort()
    if ((cursor && !all && !names.includes(cursor.topicName)) || (cursor && cursor.partitionIndex < 0)) {
      return {
        throttleTimeMs: 0,
        topics: request.topics.map((t) => ({ errorCode: ErrorCode.INVALID_REQUEST, name: t.name, topicId: ZERO_UUID, isInternal: false, partitions: [] })),
        nextCursor: null,
      }
    }
    let remaining = Math.max(Math.min(MAX_PARTITIONS, request.responsePartitionLimit), 1)
    const topics: DescribeTopicPartitionsResponseTopic[] = []
    let nextCursor: DescribeTopicPartitionsResponse['nextCursor'] = null
    for (const name of names) {
      if (remaining === 0) {
        nextCursor = { topicName: name, partitionIndex: 0 }
        break
      }
      const described = describeKnownTopic(services, name)
      if (!described) {
        if (!all) topics.push({ errorCode: topicNameProblem(name) ? ErrorCode.INVALID_TOPIC_EXCEPTION : ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, name, topicId: ZERO_UUID, isInternal: false, partitions: [], topicAuthorizedOperations: AuthorizedOperations.TOPIC })
        continue
      }
      const start = name === cursor?.topicName ? cursor.partitionIndex : 0
      const end = Math.min(described.partitions.length, start + remaining)
      const partitions = described.partitions
        .filter((p) => p.partitionIndex >= start && p.partitionIndex < end)
        .sort((a, b) => a.partitionIndex - b.partitionIndex)
        .map((p) => ({ ...p, errorCode: ErrorCode.NONE, offlineReplicas: p.offlineReplicas ?? [], eligibleLeaderReplicas: [], lastKnownElr: [] }))
      topics.push({ errorCode: ErrorCode.NONE, name, topicId: described.topicId ?? ZERO_UUID, isInternal: described.isInternal, partitions, topicAuthorizedOperations: AuthorizedOperations.TOPIC })
      if (end < described.partitions.length) {
        nextCursor = { topicName: name, partitionIndex: end }
        break
      }
      remaining -= partitions.length
    }
    return { throttleTimeMs: 0, topics, nextCursor }
  },
)
