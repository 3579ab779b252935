/**
 * The ListOffsets handler in process, over real services on a real LevelDB database (test/helpers/in-process-node.ts),
 * on a log whose record timestamps are out of order inside and across batches: earliest, latest, max timestamp and
 * timestamp searches give Kafka's answers, also after the log start moved into a batch. The expected offsets are
 * worked out by hand from the timestamps below, as Kafka defines the answer: the first offset at or after the log
 * start whose record timestamp is at least the one asked for. test/broker/topics.test.ts and the client tests show
 * ListOffsets through real clients.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { listOffsetsHandler } from '../../../broker/handlers/list-offsets.js'
import { produceHandler } from '../../../broker/handlers/produce.js'
import type {
  ListOffsetsRequest,
  ListOffsetsResponse,
  ListOffsetsResponseListOffsetsPartitionResponse,
} from '../../../protocol/messages/list-offsets.js'
import type { ProduceRequest, ProduceResponse } from '../../../protocol/messages/produce.js'
import { batchBytes, recordBytes } from '../../helpers/wire.js'
import { openNode, type InProcessNode } from '../../helpers/in-process-node.js'

const Err = { NONE: 0, UNKNOWN_TOPIC_OR_PARTITION: 3, LEADER_NOT_AVAILABLE: 5, UNSUPPORTED_VERSION: 35, INVALID_REQUEST: 42, UNKNOWN_LEADER_EPOCH: 75, OFFSET_NOT_AVAILABLE: 78 } as const
const EARLIEST = -2n
const LATEST = -1n
const MAX_TIMESTAMP = -3n

/**
 * The log, three batches:
 *   offset     0     1     2  |  3     4  |  5
 *   timestamp  1000  3000  2000 | 1500  4500 | 4000
 */
const BATCHES = [
  [1000, 3000, 2000],
  [1500, 4500],
  [4000],
]

function batchOf(timestamps: number[]): Buffer {
  const base = timestamps[0]!
  const records = Buffer.concat(timestamps.map((ts, i) => recordBytes({ offsetDelta: i, timestampDelta: ts - base, value: Buffer.from(`at ${ts}`) })))
  return batchBytes({ records, count: timestamps.length, baseTimestamp: BigInt(base), maxTimestamp: BigInt(Math.max(...timestamps)) })
}

function request(partitions: { partition?: number; timestamp: bigint; currentLeaderEpoch?: number }[], isolationLevel = 0): ListOffsetsRequest {
  return {
    replicaId: -1,
    isolationLevel,
    timeoutMs: 30_000,
    topics: [
      {
        name: 'readings',
        partitions: partitions.map((p) => ({ partitionIndex: p.partition ?? 0, currentLeaderEpoch: p.currentLeaderEpoch ?? -1, timestamp: p.timestamp, maxNumOffsets: 1 })),
      },
    ],
  }
}

describe('ListOffsets, in process', () => {
  let node: InProcessNode
  beforeEach(async () => {
    node = await openNode()
    await node.createTopic('readings')
    for (const timestamps of BATCHES) {
      const produce: ProduceRequest = { transactionalId: null, acks: 1, timeoutMs: 30_000, topicData: [{ name: 'readings', partitionData: [{ index: 0, records: batchOf(timestamps) }] }] }
      const answer = (await node.call<ProduceRequest, ProduceResponse>(produceHandler, produce, { apiVersion: 9 })) as ProduceResponse
      expect(answer.responses[0]!.partitionResponses[0]!.errorCode).toBe(Err.NONE)
    }
  })
  afterEach(async () => {
    await node?.close()
  })

  async function listOffsets(req: ListOffsetsRequest, apiVersion = 7): Promise<ListOffsetsResponseListOffsetsPartitionResponse[]> {
    const answer = (await node.call<ListOffsetsRequest, ListOffsetsResponse>(listOffsetsHandler, req, { apiVersion })) as ListOffsetsResponse
    return answer.topics.flatMap((t) => t.partitions)
  }

  async function at(timestamp: bigint): Promise<{ offset: bigint; timestamp: bigint }> {
    const [answer] = await listOffsets(request([{ timestamp }]))
    expect(answer!.errorCode).toBe(Err.NONE)
    return { offset: answer!.offset!, timestamp: answer!.timestamp! }
  }

  it('answers earliest and latest with the log start and the high watermark, in the current leader epoch', async () => {
    expect(await listOffsets(request([{ timestamp: EARLIEST }]))).toEqual([
      { partitionIndex: 0, errorCode: Err.NONE, oldStyleOffsets: [0n], timestamp: -1n, offset: 0n, leaderEpoch: 0 },
    ])
    expect(await listOffsets(request([{ timestamp: LATEST }], 1))).toMatchObject([{ offset: 6n, timestamp: -1n, leaderEpoch: 0 }])
    expect(await listOffsets(request([{ timestamp: LATEST }]), 0)).toMatchObject([{ oldStyleOffsets: [6n] }])
  })

  it('finds the first record at or after a timestamp, with timestamps out of order inside and across batches', async () => {
    expect(await at(0n)).toEqual({ offset: 0n, timestamp: 1000n })
    // Offset 1 (3000) comes before offset 2 (2000), which is the exact match.
    expect(await at(2000n)).toEqual({ offset: 1n, timestamp: 3000n })
    expect(await at(3000n)).toEqual({ offset: 1n, timestamp: 3000n })
    // Nothing in the first batch reaches 3500; offset 3 (1500) does not either.
    expect(await at(3500n)).toEqual({ offset: 4n, timestamp: 4500n })
    expect(await at(4500n)).toEqual({ offset: 4n, timestamp: 4500n })
    expect(await listOffsets(request([{ timestamp: 4501n }]))).toMatchObject([{ errorCode: Err.NONE, offset: -1n, timestamp: -1n, leaderEpoch: -1 }])
  })

  it('answers max timestamp (v7) with the record that holds it, and refuses it before v7', async () => {
    expect(await listOffsets(request([{ timestamp: MAX_TIMESTAMP }]))).toMatchObject([{ errorCode: Err.NONE, offset: 4n, timestamp: 4500n, leaderEpoch: 0 }])
    expect(await listOffsets(request([{ timestamp: MAX_TIMESTAMP }]), 6)).toMatchObject([{ errorCode: Err.UNSUPPORTED_VERSION }])
  })

  it('answers earliest local (-4) as earliest and latest tiered (-5) as none, and searches any other negative timestamp', async () => {
    await node.services.topics.partition('readings', 0)!.log.deleteBefore(1n)
    // No tiered storage: the local log start is the log start, and nothing is tiered (UnifiedLog.fetchOffsetByTimestamp).
    expect(await listOffsets(request([{ timestamp: -4n }]))).toMatchObject([{ errorCode: Err.NONE, offset: 1n, timestamp: -1n, leaderEpoch: 0 }])
    expect(await listOffsets(request([{ timestamp: -5n }]))).toMatchObject([{ errorCode: Err.NONE, offset: -1n, timestamp: -1n, leaderEpoch: -1 }])
    // v8 (KIP-405) and v9 (KIP-1005) are the versions clients send them at; v10 adds a timeout for remote lookups.
    expect(await listOffsets(request([{ timestamp: -4n }]), 8)).toMatchObject([{ errorCode: Err.NONE, offset: 1n, timestamp: -1n, leaderEpoch: 0 }])
    expect(await listOffsets(request([{ timestamp: -5n }]), 9)).toMatchObject([{ errorCode: Err.NONE, offset: -1n, timestamp: -1n, leaderEpoch: -1 }])
    expect(await listOffsets(request([{ timestamp: 2000n }]), 10)).toMatchObject([{ errorCode: Err.NONE, offset: 1n, timestamp: 3000n }])
    // Every record's timestamp is at or above -6: the first record at or above the log start.
    expect(await at(-6n)).toEqual({ offset: 1n, timestamp: 3000n })
    expect(await at(-9_223_372_036_854_775_808n)).toEqual({ offset: 1n, timestamp: 3000n })
  })

  it('never answers below a log start that moved into a batch', async () => {
    await node.services.topics.partition('readings', 0)!.log.deleteBefore(1n)
    expect(await listOffsets(request([{ timestamp: EARLIEST }]))).toMatchObject([{ offset: 1n }])
    expect(await at(0n)).toEqual({ offset: 1n, timestamp: 3000n })
    expect(await at(1500n)).toEqual({ offset: 1n, timestamp: 3000n })
    await node.services.topics.partition('readings', 0)!.log.deleteBefore(2n)
    expect(await at(0n)).toEqual({ offset: 2n, timestamp: 2000n })
    expect(await at(2000n)).toEqual({ offset: 2n, timestamp: 2000n })
  })

  it('refuses a partition named twice, unknown partitions and a leader epoch it does not have', async () => {
    expect(await listOffsets(request([{ timestamp: EARLIEST }, { timestamp: LATEST }, { partition: 1, timestamp: LATEST }]))).toMatchObject([
      { partitionIndex: 0, errorCode: Err.INVALID_REQUEST },
      { partitionIndex: 0, errorCode: Err.INVALID_REQUEST },
      { partitionIndex: 1, errorCode: Err.UNKNOWN_TOPIC_OR_PARTITION },
    ])
    expect(await listOffsets(request([{ timestamp: LATEST, currentLeaderEpoch: 1 }]))).toMatchObject([{ errorCode: Err.UNKNOWN_LEADER_EPOCH }])
  })

  it('as a leader just elected, whose high watermark is below its epoch start, sends consumers back to ask again', async () => {
    // What a replica elected a moment ago has: its epoch starts at its log end (6) and the high watermark it learned
    // as a follower is older (3) until its followers' next fetches move it.
    const partition = node.services.topics.partition('readings', 0)!
    partition.leaderEpoch = 1
    partition.log.assignEpochStartOffset(1)
    partition.setHighWatermark(3n)
    expect(await listOffsets(request([{ timestamp: LATEST }]))).toMatchObject([{ errorCode: Err.OFFSET_NOT_AVAILABLE }])
    expect(await listOffsets(request([{ timestamp: LATEST }]), 4)).toMatchObject([{ errorCode: Err.LEADER_NOT_AVAILABLE }])
    // Found below the high watermark: answered. Only at or past it: not yet.
    expect(await at(0n)).toEqual({ offset: 0n, timestamp: 1000n })
    expect(await listOffsets(request([{ timestamp: 3500n }]))).toMatchObject([{ errorCode: Err.OFFSET_NOT_AVAILABLE }])
    expect(await listOffsets(request([{ timestamp: MAX_TIMESTAMP }]))).toMatchObject([{ errorCode: Err.OFFSET_NOT_AVAILABLE }])
    expect(await listOffsets(request([{ timestamp: EARLIEST }]))).toMatchObject([{ errorCode: Err.NONE, offset: 0n }])
    // A debugging replica (-2) is answered from what the leader has.
    expect(await listOffsets({ ...request([{ timestamp: LATEST }]), replicaId: -2 })).toMatchObject([{ errorCode: Err.NONE, offset: 3n }])
    // Once the followers have moved the high watermark to the epoch start, latest is answered again.
    partition.setHighWatermark(6n)
    expect(await listOffsets(request([{ timestamp: LATEST }]))).toMatchObject([{ errorCode: Err.NONE, offset: 6n, leaderEpoch: 1 }])
    expect(await listOffsets(request([{ timestamp: MAX_TIMESTAMP }]))).toMatchObject([{ errorCode: Err.NONE, offset: 4n }])
  })

  it('answers the same after a restart', async () => {
    node = await node.reopen()
    expect(await at(2000n)).toEqual({ offset: 1n, timestamp: 3000n })
    expect(await listOffsets(request([{ timestamp: MAX_TIMESTAMP }]))).toMatchObject([{ offset: 4n, timestamp: 4500n }])
    expect(await listOffsets(request([{ timestamp: LATEST }]))).toMatchObject([{ offset: 6n }])
  })
})
