/**
 * DeleteRecords: v0-2.
 *
 * Behaviour
 * - Moves each partition's log start offset up to the offset given (-1: the high watermark) and deletes the
 *   batches wholly below it; the answer's lowWatermark is the new log start. Reads below it are then
 *   OFFSET_OUT_OF_RANGE, and ListOffsets earliest returns it.
 * - An offset above the high watermark (or below -1) is OFFSET_OUT_OF_RANGE; one at or below the current log start
 *   changes nothing. Unknown partitions: UNKNOWN_TOPIC_OR_PARTITION; a cluster node answers NOT_LEADER_OR_FOLLOWER
 *   for a partition its metadata image holds but it has no log of yet (a topic just created), as Kafka's
 *   ReplicaManager.getPartitionOrError does (handler.ts `missingPartitionError`).
 * - Internal topics (__consumer_offsets, __transaction_state) refuse with INVALID_TOPIC_EXCEPTION whatever their
 *   cleanup.policy, as Kafka's ReplicaManager.deleteRecordsOnLocalLog does ("Cannot delete records of internal
 *   topic"): their records are the coordinators' state.
 * - Topics whose cleanup.policy lacks `delete` (compacted topics) refuse with POLICY_VIOLATION, as Kafka's
 *   Partition.deleteRecordsOnLeader does: their records are removed only by compaction.
 * - A storage failure is KAFKA_STORAGE_ERROR for that partition (ReplicaManager.deleteRecordsOnLocalLog).
 * - On a cluster node, answered by the partition's leader only (NOT_LEADER_OR_FOLLOWER elsewhere), and only once every
 *   replica on a live broker has moved its log start that far too (Kafka's DelayedDeleteRecords): followers move
 *   theirs to the leader's at their next fetch and report it in the one after (Fetch v5+ logStartOffset). The answer's
 *   lowWatermark is then the lowest log start of those replicas (Partition.lowWatermarkIfLeader), so a leader elected
 *   after the answer never serves the deleted records again. REQUEST_TIMED_OUT when that takes longer than the
 *   request's timeoutMs (a live follower not fetching); the leader's records stay deleted.
 * - A partition the request names twice is deleted up to its later entry's offset and answered once, as Kafka's
 *   KafkaApis.handleDeleteRecordsRequest keys the request by partition (handler.ts `partitionsNamedOnce`).
 */
import {
  deleteRecords,
  type DeleteRecordsRequest,
  type DeleteRecordsResponse,
} from '../../protocol/messages/delete-records.js'
import { ErrorCode } from '../../protocol/errors.js'
import { defineHandler, leadershipError, missingPartitionError, partitionsNamedOnce } from '../handler.js'
import { StorageError } from '../../storage/log-store.js'

const HIGH_WATERMARK = -1n

export const deleteRecordsHandler = defineHandler<DeleteRecordsRequest, DeleteRecordsResponse>(
  deleteRecords,
  '0-2',
  async (request, { services }) => ({
    throttleTimeMs: 0,
    topics: await Promise.all(
      partitionsNamedOnce(request.topics, (t) => t.partitions, (t, p) => `${t.name}\0${p.partitionIndex}`, (t, partitions) => ({ ...t, partitions })).map(async (wanted) => ({
        name: wanted.name,
        partitions: await Promise.all(
          wanted.partitions.map(async ({ partitionIndex, offset }) => {
            const partition = services.topics.partition(wanted.name, partitionIndex)
            if (!partition) return { partitionIndex, lowWatermark: -1n, errorCode: missingPartitionError(services, { topic: wanted.name }, partitionIndex) }
            if (partition.topic.isInternal) return { partitionIndex, lowWatermark: -1n, errorCode: ErrorCode.INVALID_TOPIC_EXCEPTION }
            const notLeader = leadershipError(services, partition.topic, partitionIndex)
            if (notLeader !== ErrorCode.NONE) return { partitionIndex, lowWatermark: -1n, errorCode: notLeader }
            if (!partition.topic.config.cleanupPolicy.delete) return { partitionIndex, lowWatermark: -1n, errorCode: ErrorCode.POLICY_VIOLATION }
            const target = offset === HIGH_WATERMARK ? partition.highWatermark : offset
            if (target < 0n || target > partition.highWatermark) {
              return { partitionIndex, lowWatermark: -1n, errorCode: ErrorCode.OFFSET_OUT_OF_RANGE }
            }
            if (target > partition.logStartOffset) {
              try {
                await partition.deleteBefore(target)
              } catch (error) {
                if (!(error instanceof StorageError)) throw error
                return { partitionIndex, lowWatermark: -1n, errorCode: ErrorCode.KAFKA_STORAGE_ERROR }
              }
              services.log.info(`${wanted.name}-${partitionIndex}: records before ${target} deleted`)
            }
            if (services.replicas) {
              const { errorCode, lowWatermark } = await services.replicas.awaitLowWatermark(partition.topic.topicId, partitionIndex, target, request.timeoutMs)
              return { partitionIndex, lowWatermark, errorCode }
            }
            return { partitionIndex, lowWatermark: partition.logStartOffset, errorCode: ErrorCode.NONE }
          }),
        ),
      })),
    ),
  }),
)
