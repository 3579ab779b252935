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
 *
 * Version notes
 * - v0 answers in `oldStyleOffsets` (at most `maxNumOffsets`, here one offset); v1+ in `offset`/`timestamp`.
 * - A timestamp search reads the partition's batches from its start; Brook keeps no time index yet.
 */
import {
  listOffsets,
  type ListOffsetsRequest,
  type ListOffsetsResponse,
  type ListOffsetsResponseListOffsetsPartitionResponse,
} from '../../protocol/messages/list-offsets.js'
import { ErrorCode } from '../../protocol/errors.js'
import { At, decodeRecords, type Record } from '../../protocol/record-batch.js'
import { defineHandler } from '../handler.js'
import { leaderEpochError, type Partition } from '../partition.js'

const EARLIEST = -2n
const LATEST = -1n
const MAX_TIMESTAMP = -3n
const READ_COMMITTED = 1

interface Found {
  offset: bigint
  timestamp: bigint
  leaderEpoch: number
}

const NONE_FOUND: Found = { offset: -1n, timestamp: -1n, leaderEpoch: -1 }

/**
 * The records of a stored batch, or null when they do not parse. Produce checks a batch's header and CRC but does not
 * walk its records, so a client could have stored one whose records are malformed; searches then answer at batch
 * granularity instead of failing.
 */
function recordsOf(batch: Buffer): Record[] | null {
  try {
    return decodeRecords(batch)
  } catch {
    return null
  }
}

async function byTimestamp(partition: Partition, timestamp: bigint, upTo: bigint): Promise<Found> {
  const batch = await partition.log.findBatchByTimestamp(timestamp, upTo)
  if (!batch) return NONE_FOUND
  const leaderEpoch = batch.readInt32BE(At.partitionLeaderEpoch)
  const records = recordsOf(batch)
  if (!records) return { offset: batch.readBigInt64BE(At.baseOffset), timestamp: batch.readBigInt64BE(At.maxTimestamp), leaderEpoch }
  // The batch holding the log start may begin below it: those records are gone as far as clients are concerned.
  const record = records.find((r) => r.timestamp >= timestamp && r.offset >= partition.logStartOffset)
  if (!record) return NONE_FOUND
  return { offset: record.offset, timestamp: record.timestamp, leaderEpoch }
}

async function maxTimestamp(partition: Partition, upTo: bigint): Promise<Found> {
  let best: Buffer | null = null
  for await (const batch of partition.log.scan(partition.logStartOffset, upTo)) {
    if (!best || batch.readBigInt64BE(At.maxTimestamp) > best.readBigInt64BE(At.maxTimestamp)) best = batch
  }
  if (!best) return NONE_FOUND
  const leaderEpoch = best.readInt32BE(At.partitionLeaderEpoch)
  const records = recordsOf(best)?.filter((r) => r.offset >= partition.logStartOffset)
  if (!records?.length) return { offset: best.readBigInt64BE(At.baseOffset), timestamp: best.readBigInt64BE(At.maxTimestamp), leaderEpoch }
  const record = records.reduce((a, b) => (b.timestamp > a.timestamp ? b : a))
  return { offset: record.offset, timestamp: record.timestamp, leaderEpoch }
}

export const listOffsetsHandler = defineHandler<ListOffsetsRequest, ListOffsetsResponse>(
  listOffsets,
  '0-7',
  async (request, { broker, apiVersion }) => {
    const readCommitted = apiVersion >= 2 && request.isolationLevel === READ_COMMITTED
    const topics = await Promise.all(
      request.topics.map(async (wanted) => {
        const topic = broker.topics.get(wanted.name)
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
            const partition = topic?.partitions[p.partitionIndex]
            if (!partition) return answer(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
            const epochError = leaderEpochError(partition, p.currentLeaderEpoch)
            if (epochError !== ErrorCode.NONE) return answer(epochError)
            const upTo = readCommitted ? partition.lastStableOffset : partition.highWatermark
            const current = partition.leaderEpoch
            if (p.timestamp === EARLIEST) return answer(ErrorCode.NONE, { offset: partition.logStartOffset, timestamp: -1n, leaderEpoch: current })
            if (p.timestamp === LATEST) return answer(ErrorCode.NONE, { offset: upTo, timestamp: -1n, leaderEpoch: current })
            if (p.timestamp === MAX_TIMESTAMP) {
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
