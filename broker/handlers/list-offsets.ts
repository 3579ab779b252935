/**
 * ListOffsets: v0-7.
 *
 * Behaviour
 * - timestamp -2 (earliest): the log start offset. -1 (latest): the high watermark, or the last stable offset for
 *   read_committed (v2+). -3 (max timestamp, v7+, KIP-734): the offset and timestamp of the record with the
 *   largest timestamp.
 * - timestamp >= 0: the first offset whose record timestamp is >= it (searched below the high watermark, or the
 *   last stable offset), with that record's timestamp; -1/-1 when there is none.
 * - `currentLeaderEpoch` (v4+) is checked; the answer's leaderEpoch (v4+) is the epoch of the batch found, or the
 *   current epoch for earliest/latest, and -1 for "none" (KAFKA-10613: only v4+ carries it).
 * - -3 before v7 is UNSUPPORTED_VERSION; other negative timestamps are INVALID_REQUEST.
 * - A partition named more than once in one request is INVALID_REQUEST at each mention (ReplicaManager.fetchOffset),
 *   so one small request cannot make the node search the same batch over and over.
 * - A search reads the records of one batch (the one found by its header's maxTimestamp); uncompressed and small
 *   compressed batches on the event loop, larger ones in the worker pool (broker/batch-inflater.ts), inflated to at
 *   most 32x the topic's max.message.bytes, so a search never stalls other clients. A batch whose records cannot be
 *   read (stored before produce walked records) is answered at batch granularity.
 *
 * Version notes
 * - v0 answers in `oldStyleOffsets` (at most `maxNumOffsets`, here one offset); v1+ in `offset`/`timestamp`.
 * - A timestamp search reads the partition's batch headers from its start; Brook keeps no time index yet.
 */
import {
  listOffsets,
  type ListOffsetsRequest,
  type ListOffsetsResponse,
  type ListOffsetsResponseListOffsetsPartitionResponse,
} from '../../protocol/messages/list-offsets.js'
import { ErrorCode } from '../../protocol/errors.js'
import { IsolationLevel, OffsetSpec } from '../../protocol/constants.js'
import { At, type FoundRecord } from '../../protocol/record-batch.js'
import { inflationLimit } from '../../protocol/compression.js'
import { defineHandler } from '../handler.js'
import { leaderEpochError, type Partition } from '../partition.js'
import { batchInflater } from '../batch-inflater.js'

interface Found {
  offset: bigint
  timestamp: bigint
  leaderEpoch: number
}

const NONE_FOUND: Found = { offset: -1n, timestamp: -1n, leaderEpoch: -1 }

/**
 * The record of `batch` that answers the search (see SearchQuery), or null when none does. A batch whose records
 * cannot be read is answered with its first offset and its maxTimestamp.
 */
async function searchBatch(partition: Partition, batch: Buffer, timestamp?: bigint): Promise<Found> {
  const leaderEpoch = batch.readInt32BE(At.partitionLeaderEpoch)
  let record: FoundRecord | null
  try {
    record = await batchInflater.search(batch, {
      // The batch holding the log start may begin below it: those records are gone as far as clients are concerned.
      minOffset: partition.logStartOffset,
      timestamp,
      maxInflatedBytes: inflationLimit(Math.max(partition.topic.config.maxMessageBytes, batch.length)),
    })
  } catch {
    return { offset: batch.readBigInt64BE(At.baseOffset), timestamp: batch.readBigInt64BE(At.maxTimestamp), leaderEpoch }
  }
  return record ? { ...record, leaderEpoch } : NONE_FOUND
}

async function byTimestamp(partition: Partition, timestamp: bigint, upTo: bigint): Promise<Found> {
  const batch = await partition.log.findBatchByTimestamp(timestamp, upTo)
  return batch ? searchBatch(partition, batch, timestamp) : NONE_FOUND
}

async function maxTimestamp(partition: Partition, upTo: bigint): Promise<Found> {
  let best: Buffer | null = null
  for await (const batch of partition.log.scan(partition.logStartOffset, upTo)) {
    if (!best || batch.readBigInt64BE(At.maxTimestamp) > best.readBigInt64BE(At.maxTimestamp)) best = batch
  }
  return best ? searchBatch(partition, best) : NONE_FOUND
}

export const listOffsetsHandler = defineHandler<ListOffsetsRequest, ListOffsetsResponse>(
  listOffsets,
  '0-7',
  async (request, { services, apiVersion }) => {
    const readCommitted = apiVersion >= 2 && request.isolationLevel === IsolationLevel.READ_COMMITTED
    const key = (topic: string, partition: number): string => `${topic}\0${partition}`
    const mentions = new Map<string, number>()
    for (const topic of request.topics) {
      for (const p of topic.partitions) mentions.set(key(topic.name, p.partitionIndex), (mentions.get(key(topic.name, p.partitionIndex)) ?? 0) + 1)
    }
    const topics = await Promise.all(
      request.topics.map(async (wanted) => {
        const topic = services.topics.get(wanted.name)
        const partitions = await Promise.all(
          wanted.partitions.map(async (p): Promise<ListOffsetsResponseListOffsetsPartitionResponse> => {
            const answer = (errorCode: number, found: Found = NONE_FOUND): ListOffsetsResponseListOffsetsPartitionResponse => ({
              partitionIndex: p.partitionIndex,
              errorCode,
              oldStyleOffsets: found.offset >= 0n ? [found.offset] : [],
              timestamp: found.timestamp,
              offset: found.offset,
              leaderEpoch: found.leaderEpoch,
            })
            if (mentions.get(key(wanted.name, p.partitionIndex))! > 1) return answer(ErrorCode.INVALID_REQUEST)
            const partition = topic?.partitions[p.partitionIndex]
            if (!partition) return answer(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
            const epochError = leaderEpochError(partition, p.currentLeaderEpoch)
            if (epochError !== ErrorCode.NONE) return answer(epochError)
            const upTo = readCommitted ? partition.lastStableOffset : partition.highWatermark
            const current = partition.leaderEpoch
            if (p.timestamp === OffsetSpec.EARLIEST) return answer(ErrorCode.NONE, { offset: partition.logStartOffset, timestamp: -1n, leaderEpoch: current })
            if (p.timestamp === OffsetSpec.LATEST) return answer(ErrorCode.NONE, { offset: upTo, timestamp: -1n, leaderEpoch: current })
            if (p.timestamp === OffsetSpec.MAX_TIMESTAMP) {
              if (apiVersion < 7) return answer(ErrorCode.UNSUPPORTED_VERSION)
              return answer(ErrorCode.NONE, await maxTimestamp(partition, upTo))
            }
            if (p.timestamp < 0n) return answer(ErrorCode.INVALID_REQUEST)
            return answer(ErrorCode.NONE, await byTimestamp(partition, p.timestamp, upTo))
          }),
        )
        return { name: wanted.name, partitions }
      }),
    )
    return { throttleTimeMs: 0, topics }
  },
)
