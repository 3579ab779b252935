/**
 * ListOffsets: v0-10.
 *
 * Behaviour
 * - timestamp -2 (earliest): the log start offset. -1 (latest): the high watermark, or the last stable offset for
 *   read_committed (v2+). -3 (max timestamp, v7+, KIP-734): the offset and timestamp of the first record with the
 *   largest timestamp at or above the log start; -1/-1 for a log without records, or when that record is not below
 *   the high watermark (or the last stable offset), as Kafka answers.
 * - timestamp >= 0: the first offset at or above the log start whose record timestamp is >= it, with that record's
 *   timestamp (UnifiedLog.fetchOffsetByTimestamp, FileRecords.searchForTimestamp); -1/-1 when there is none below
 *   the high watermark, or the last stable offset. Timestamps may be out of order inside and across batches.
 * - `currentLeaderEpoch` (v4+) is checked, before leadership (also at a follower, as in Kafka); the answer's leaderEpoch (v4+) is the epoch of the batch found, for
 *   earliest the epoch that appended the log start offset (from the leader-epoch cache: records written at epoch 0,
 *   some then removed by DeleteRecords, are answered 0 after a failover, not the new leader's epoch), for latest the
 *   current epoch, as UnifiedLog.fetchOffsetByTimestamp answers, and -1 for "none" (KAFKA-10613: only v4+ carries it).
 *   A log whose cache has no epoch at or below its start (a single node's empty log: its leader never appended) is
 *   answered the current epoch, as Kafka's leader, whose cache holds its epoch from the moment it leads, answers.
 * - -3 before v7 is UNSUPPORTED_VERSION. Brook keeps no tiered storage, so -4 (earliest local, KIP-405) is the log
 *   start offset, as -2 is, and -5 (latest tiered, KIP-1005) is -1/-1 with leader epoch -1, as Kafka answers both
 *   for a log without remote storage (UnifiedLog.fetchOffsetByTimestamp). Any other negative timestamp is searched
 *   like one >= 0, as Kafka does, so it finds the first record at or above the log start.
 * - A leader whose high watermark is still below the offset its leader epoch started at (a replica just elected
 *   learns it from its followers' next fetches) answers a consumer's latest, and a max-timestamp or timestamp lookup
 *   that finds nothing below it, with OFFSET_NOT_AVAILABLE (LEADER_NOT_AVAILABLE before v5), both retriable, as
 *   Kafka's Partition.fetchOffsetForTimestamp does: its older high watermark would send a consumer back before
 *   records already acknowledged.
 * - An unknown topic or partition is UNKNOWN_TOPIC_OR_PARTITION (KafkaApis checks its metadata cache first); a
 *   cluster node answers NOT_LEADER_OR_FOLLOWER for a partition its metadata image holds but it has no log of yet
 *   (a topic just created, in the moment after CreateTopics is answered), as Kafka's
 *   ReplicaManager.getPartitionOrError does, so clients refresh their metadata and retry (handler.ts
 *   `missingPartitionError`).
 * - A partition named more than once in one request is INVALID_REQUEST at each mention (ReplicaManager.fetchOffset),
 *   so one small request cannot make the node search the same batch over and over.
 * - The partition's time index finds the batch to read (storage/level-log.ts) without scanning the log; the records of
 *   that batch are read on the event loop when uncompressed or small, larger compressed ones in the worker pool
 *   (broker/batch-inflater.ts), inflated to at most 32x the topic's max.message.bytes, so a search never stalls
 *   other clients. A batch whose records cannot be read (stored before produce walked records) is answered at batch
 *   granularity.
 *
 * Version notes
 * - v0 answers in `oldStyleOffsets` (at most `maxNumOffsets`, here one offset); v1+ in `offset`/`timestamp`.
 * - v8 (KIP-405) and v9 (KIP-1005) only allow -4 and -5, which every version is answered as above. v10's `timeoutMs`
 *   (KIP-1075) bounds a lookup in remote storage; with none, every lookup is answered at once and it goes unused.
 */
import {
  listOffsets,
  type ListOffsetsRequest,
  type ListOffsetsResponse,
  type ListOffsetsResponseListOffsetsPartitionResponse,
} from '../../protocol/messages/list-offsets.js'
import { ErrorCode } from '../../protocol/errors.js'
import { IsolationLevel, OffsetSpec } from '../../protocol/constants.js'
import { inflationLimit } from '../../protocol/compression.js'
import type { RecordSearch, TimestampMatch } from '../../storage/partition-log.js'
import { defineHandler, leadershipError, missingPartitionError } from '../handler.js'
import { leaderEpochError, type Partition } from '../partition.js'
import { batchInflater } from '../batch-inflater.js'
import { repeated } from '../group-by.js'
import { epochOfOffset } from '../../storage/leader-epochs.js'

const NONE_FOUND: TimestampMatch = { offset: -1n, timestamp: -1n, leaderEpoch: -1 }

/** Reads a stored batch's records through the batch inflater, bounded by the topic's max.message.bytes. */
function recordSearch(partition: Partition): RecordSearch {
  const maxMessageBytes = partition.topic.config.maxMessageBytes
  return (batch, query) => batchInflater.search(batch, { ...query, maxInflatedBytes: inflationLimit(Math.max(maxMessageBytes, batch.length)) })
}

/** ListOffsets' replicaId of a consumer (Kafka's ListOffsetsRequest.CONSUMER_REPLICA_ID); -2 is a debugging replica. */
const CONSUMER_REPLICA_ID = -1

/**
 * Whether the high watermark of a partition this node leads is below the offset its current leader epoch started
 * at (Kafka's leaderEpochStartOffsetOpt > highWatermark): a leader just elected has not yet learned how far its
 * followers are, so its high watermark is an older one. A single node's epoch starts at or below it.
 */
function highWatermarkLags(partition: Partition): boolean {
  const epochStart = partition.log.epochCache.find((entry) => entry.epoch === partition.leaderEpoch)?.startOffset
  return epochStart !== undefined && epochStart > partition.highWatermark
}

export const listOffsetsHandler = defineHandler<ListOffsetsRequest, ListOffsetsResponse>(
  listOffsets,
  '0-10',
  async (request, { services, apiVersion }) => {
    const readCommitted = apiVersion >= 2 && request.isolationLevel === IsolationLevel.READ_COMMITTED
    const key = (topic: string, partition: number): string => `${topic}\0${partition}`
    const twice = repeated(request.topics.flatMap((topic) => topic.partitions.map((p) => key(topic.name, p.partitionIndex))))
    const topics = await Promise.all(
      request.topics.map(async (wanted) => {
        const topic = services.topics.get(wanted.name)
        const partitions = await Promise.all(
          wanted.partitions.map(async (p): Promise<ListOffsetsResponseListOffsetsPartitionResponse> => {
            const answer = (errorCode: number, found: TimestampMatch = NONE_FOUND): ListOffsetsResponseListOffsetsPartitionResponse => ({
              partitionIndex: p.partitionIndex,
              errorCode,
              oldStyleOffsets: found.offset >= 0n ? [found.offset] : [],
              timestamp: found.timestamp,
              offset: found.offset,
              leaderEpoch: found.leaderEpoch,
            })
            if (twice.has(key(wanted.name, p.partitionIndex))) return answer(ErrorCode.INVALID_REQUEST)
            const partition = topic?.partitions[p.partitionIndex]
            if (!partition) return answer(missingPartitionError(services, { topic: wanted.name }, p.partitionIndex))
            // The leader epoch before leadership, as Kafka's Partition.getLocalLog (fetch.ts).
            const epochError = leaderEpochError(partition, p.currentLeaderEpoch)
            if (epochError !== ErrorCode.NONE) return answer(epochError)
            const notLeader = leadershipError(services, topic!, p.partitionIndex)
            if (notLeader !== ErrorCode.NONE) return answer(notLeader)
            const upTo = readCommitted ? partition.lastStableOffset : partition.highWatermark
            const current = partition.leaderEpoch
            const lagging = request.replicaId === CONSUMER_REPLICA_ID && highWatermarkLags(partition)
            const notYet = apiVersion >= 5 ? ErrorCode.OFFSET_NOT_AVAILABLE : ErrorCode.LEADER_NOT_AVAILABLE
            /** A lookup's answer; none found below `upTo` waits, as "latest" does, for a lagging high watermark. */
            const found = (match: TimestampMatch | null) => (match === null && lagging ? answer(notYet) : answer(ErrorCode.NONE, match ?? NONE_FOUND))
            if (p.timestamp === OffsetSpec.EARLIEST || p.timestamp === OffsetSpec.EARLIEST_LOCAL) {
              const start = partition.logStartOffset
              const appendedBy = epochOfOffset(partition.log.epochCache, start)
              return answer(ErrorCode.NONE, { offset: start, timestamp: -1n, leaderEpoch: appendedBy >= 0 ? appendedBy : current })
            }
            if (p.timestamp === OffsetSpec.LATEST) return lagging ? answer(notYet) : answer(ErrorCode.NONE, { offset: upTo, timestamp: -1n, leaderEpoch: current })
            const search = { upTo, search: recordSearch(partition) }
            if (p.timestamp === OffsetSpec.MAX_TIMESTAMP) {
              if (apiVersion < 7) return answer(ErrorCode.UNSUPPORTED_VERSION)
              return found(await partition.log.offsetOfMaxTimestamp(search))
            }
            if (p.timestamp === OffsetSpec.LATEST_TIERED) return answer(ErrorCode.NONE, NONE_FOUND)
            return found(await partition.log.offsetForTimestamp(p.timestamp, search))
          }),
        )
        return { name: wanted.name, partitions }
      }),
    )
    return { throttleTimeMs: 0, topics }
  },
)
