/**
 * OffsetForLeaderEpoch: v0-4 (KIP-101, KIP-279, KIP-320), on a cluster node's client listener.
 *
 * Behaviour
 * - Per partition: the largest epoch at or below the requested one and the offset where this log leaves it, from
 *   the log's leader-epoch cache (Kafka's LeaderEpochFileCache.endOffsetFor, shared with the replication core:
 *   cluster/replication/log.ts `endOffsetForEpoch`): the log end offset for the latest epoch, the start of the next
 *   epoch otherwise; UNDEFINED (-1, -1) for an epoch newer than every one the log holds.
 * - Answered by the partition's leader only (NOT_LEADER_OR_FOLLOWER elsewhere, also to a follower asking with its
 *   replica id, v3+, as Kafka's leader answers it); currentLeaderEpoch (v2+) is checked first: FENCED_LEADER_EPOCH
 *   for an older one, UNKNOWN_LEADER_EPOCH for a newer one. Unknown topics and partitions are
 *   UNKNOWN_TOPIC_OR_PARTITION, but one the node's metadata image holds before the node has its log is
 *   NOT_LEADER_OR_FOLLOWER (ReplicaManager.getPartitionOrError, handler.ts `missingPartitionError`).
 */
import {
  offsetForLeaderEpoch,
  type OffsetForLeaderEpochRequest,
  type OffsetForLeaderEpochResponse,
} from '../../protocol/messages/offset-for-leader-epoch.js'
import { ErrorCode } from '../../protocol/errors.js'
import { defineHandler, leadershipError, missingPartitionError } from '../handler.js'
import { leaderEpochError } from '../partition.js'
import { endOffsetForEpoch } from '../cluster/replication/log.js'

export const offsetForLeaderEpochHandler = defineHandler<OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse>(
  offsetForLeaderEpoch,
  '0-4',
  (request, { services }) => ({
    throttleTimeMs: 0,
    topics: request.topics.map((target) => {
      const topic = services.topics.get(target.topic)
      return {
        topic: target.topic,
        partitions: target.partitions.map((wanted) => {
          const failed = (errorCode: number) => ({ errorCode, partition: wanted.partition, leaderEpoch: -1, endOffset: -1n })
          const partition = topic?.partitions[wanted.partition]
          if (!topic || !partition) return failed(missingPartitionError(services, { topic: target.topic }, wanted.partition))
          const epochError = leaderEpochError(partition, wanted.currentLeaderEpoch)
          if (epochError !== ErrorCode.NONE) return failed(epochError)
          const notLeader = leadershipError(services, topic, wanted.partition)
          if (notLeader !== ErrorCode.NONE) return failed(notLeader)
          const answer = endOffsetForEpoch(partition.log.epochCache, partition.log.logEndOffset, wanted.leaderEpoch)
          return { errorCode: ErrorCode.NONE, partition: wanted.partition, leaderEpoch: answer.epoch, endOffset: answer.endOffset }
        }),
      }
    }),
  }),
)
