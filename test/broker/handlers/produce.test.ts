/**
 * The Produce handler in process, over real services on a real LevelDB database (test/helpers/in-process-node.ts):
 * what it answers and what it leaves in the log, for the cases a client would see as one error code among many.
 * test/broker/produce.test.ts and produce-validation.test.ts show the same through real clients.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { produceHandler } from '../../../broker/handlers/produce.js'
import { CLOSE_CONNECTION, NO_RESPONSE } from '../../../broker/handler.js'
import type { ProduceRequest, ProduceResponse, ProduceResponsePartitionProduceResponse } from '../../../protocol/messages/produce.js'
import { batchBytes, handBuiltBatch, recordBytes } from '../../helpers/wire.js'
import { openNode, type InProcessNode } from '../../helpers/in-process-node.js'
import { waitFor } from '../../helpers/wait.js'
import { encodeRecordBatch } from '../../../protocol/record-batch.js'

/** ErrorCode values, written out as Kafka's protocol guide lists them. */
const Err = {
  NONE: 0,
  CORRUPT_MESSAGE: 2,
  UNKNOWN_TOPIC_OR_PARTITION: 3,
  MESSAGE_TOO_LARGE: 10,
  INVALID_TOPIC_EXCEPTION: 17,
  INVALID_REQUIRED_ACKS: 21,
  UNSUPPORTED_VERSION: 35,
  INVALID_RECORD: 87,
} as const

function request(topic: string, partitions: { index: number; records: Buffer | null }[], acks = -1): ProduceRequest {
  return { transactionalId: null, acks, timeoutMs: 30_000, topicData: [{ name: topic, partitionData: partitions }] }
}

/** Offsets of the records stored in a partition, read through its log. */
async function storedOffsets(node: InProcessNode, topic: string, partition = 0): Promise<bigint[]> {
  const p = node.services.topics.partition(topic, partition)!
  const offsets: bigint[] = []
  for await (const batch of p.log.batches(p.logStartOffset, p.highWatermark)) {
    for (let offset = batch.baseOffset; offset <= batch.lastOffset; offset++) offsets.push(offset)
  }
  return offsets
}

describe('Produce, in process', () => {
  let node: InProcessNode
  beforeEach(async () => {
    node = await openNode()
  })
  afterEach(async () => {
    await node?.close()
  })

  async function produce(req: ProduceRequest, apiVersion = 9): Promise<ProduceResponsePartitionProduceResponse[]> {
    const answer = (await node.call<ProduceRequest, ProduceResponse>(produceHandler, req, { apiVersion })) as ProduceResponse
    return answer.responses.flatMap((t) => t.partitionResponses)
  }

  it('assigns offsets batch after batch, and the batches outlive a restart', async () => {
    await node.createTopic('events', { partitions: 2 })
    expect(await produce(request('events', [{ index: 0, records: handBuiltBatch(['a', 'b', 'c']) }]))).toMatchObject([
      { index: 0, errorCode: Err.NONE, baseOffset: 0n, logStartOffset: 0n },
    ])
    expect(await produce(request('events', [{ index: 0, records: handBuiltBatch(['d']) }, { index: 1, records: handBuiltBatch(['e', 'f']) }]))).toMatchObject([
      { index: 0, errorCode: Err.NONE, baseOffset: 3n },
      { index: 1, errorCode: Err.NONE, baseOffset: 0n },
    ])
    node = await node.reopen()
    expect(await storedOffsets(node, 'events', 0)).toEqual([0n, 1n, 2n, 3n])
    expect(await storedOffsets(node, 'events', 1)).toEqual([0n, 1n])
    expect(node.services.topics.partition('events', 0)!.highWatermark).toBe(4n)
  })

  it('answers each partition on its own, and writes nothing for one that fails', async () => {
    await node.createTopic('events', { partitions: 2 })
    const corrupt = handBuiltBatch(['x'])
    corrupt[corrupt.length - 1]! ^= 0xff
    const answers = await produce({
      transactionalId: null,
      acks: 1,
      timeoutMs: 30_000,
      topicData: [
        { name: 'events', partitionData: [{ index: 0, records: corrupt }, { index: 7, records: handBuiltBatch(['y']) }] },
        { name: 'missing', partitionData: [{ index: 0, records: handBuiltBatch(['z']) }] },
        { name: 'events', partitionData: [{ index: 1, records: null }] },
      ],
    })
    expect(answers.map((a) => [a.index, a.errorCode])).toEqual([
      [0, Err.CORRUPT_MESSAGE],
      [7, Err.UNKNOWN_TOPIC_OR_PARTITION],
      [0, Err.UNKNOWN_TOPIC_OR_PARTITION],
      [1, Err.INVALID_RECORD],
    ])
    expect(answers.every((a) => a.baseOffset === -1n && a.errorMessage)).toBe(true)
    expect(await storedOffsets(node, 'events')).toEqual([])
  })

  it('appends only the last batch of a partition the request names twice, and answers it once, as Kafka keys a Produce by partition', async () => {
    await node.createTopic('events', { partitions: 2 })
    const answers = await node.call<ProduceRequest, ProduceResponse>(
      produceHandler,
      {
        transactionalId: null,
        acks: 1,
        timeoutMs: 30_000,
        topicData: [
          { name: 'events', partitionData: [{ index: 0, records: handBuiltBatch(['first']) }, { index: 1, records: handBuiltBatch(['other']) }] },
          { name: 'events', partitionData: [{ index: 0, records: handBuiltBatch(['second', 'third']) }] },
        ],
      },
      { apiVersion: 9 },
    )
    expect((answers as ProduceResponse).responses.map((t) => [t.name, t.partitionResponses.map((p) => [p.index, p.errorCode, p.baseOffset])])).toEqual([
      ['events', [[0, Err.NONE, 0n], [1, Err.NONE, 0n]]],
    ])
    expect(await storedOffsets(node, 'events', 0)).toEqual([0n, 1n])
    expect(await storedOffsets(node, 'events', 1)).toEqual([0n])
  })

  it('refuses acks other than -1, 0 and 1, produce v0-2, and clients writing to an internal topic', async () => {
    await node.createTopic('events')
    await node.createTopic('__consumer_offsets', { configs: { 'cleanup.policy': 'compact' } })
    expect(await produce(request('events', [{ index: 0, records: handBuiltBatch(['a']) }], 2))).toMatchObject([{ errorCode: Err.INVALID_REQUIRED_ACKS }])
    expect(await produce(request('events', [{ index: 0, records: handBuiltBatch(['a']) }]), 2)).toMatchObject([{ errorCode: Err.UNSUPPORTED_VERSION }])
    expect(await produce(request('__consumer_offsets', [{ index: 0, records: handBuiltBatch(['a']) }]))).toMatchObject([
      { errorCode: Err.INVALID_TOPIC_EXCEPTION, errorMessage: "cannot produce to the internal topic '__consumer_offsets'" },
    ])
    expect(await storedOffsets(node, 'events')).toEqual([])
    expect(await storedOffsets(node, '__consumer_offsets')).toEqual([])
  })

  it('with acks=0 answers nothing, or closes the connection when a partition failed', async () => {
    await node.createTopic('events')
    expect(await node.call(produceHandler, request('events', [{ index: 0, records: handBuiltBatch(['a']) }], 0), { apiVersion: 9 })).toBe(NO_RESPONSE)
    expect(await node.call(produceHandler, request('events', [{ index: 3, records: handBuiltBatch(['b']) }], 0), { apiVersion: 9 })).toBe(CLOSE_CONNECTION)
    expect(await storedOffsets(node, 'events')).toEqual([0n])
  })

  it('answers an idempotent producer\'s retry on a LogAppendTime topic with the time stamped on the original, which is what is stored (UnifiedLog.append)', async () => {
    await node.createTopic('stamped', { configs: { 'message.timestamp.type': 'LogAppendTime' } })
    const batch = () => encodeRecordBatch([{ value: Buffer.from('once') }], { producerId: 7n, producerEpoch: 0, baseSequence: 0 })
    const [first] = await produce(request('stamped', [{ index: 0, records: batch() }]))
    expect(first).toMatchObject({ errorCode: Err.NONE, baseOffset: 0n })
    const stampedAt = first!.logAppendTimeMs!
    // The clock moves past the original's stamp before the retry.
    await waitFor('the clock to pass the first append time', () => BigInt(Date.now()) > stampedAt)
    const [retry] = await produce(request('stamped', [{ index: 0, records: batch() }]))
    expect(retry).toMatchObject({ errorCode: Err.NONE, baseOffset: 0n, logAppendTimeMs: stampedAt })
    const partition = node.services.topics.partition('stamped', 0)!
    const stored = []
    for await (const b of partition.log.batches(0n, partition.highWatermark)) stored.push(b.maxTimestamp)
    expect(stored).toEqual([stampedAt])
  })

  it('applies a topic\'s configs from the moment they are set: max.message.bytes, LogAppendTime, compaction keys', async () => {
    const topic = await node.createTopic('tuned')
    const batch = handBuiltBatch(['x'.repeat(200)])
    expect(await produce(request('tuned', [{ index: 0, records: batch }]))).toMatchObject([{ errorCode: Err.NONE }])

    await node.services.topics.setConfig(topic, node.services.topics.parseConfig({ 'max.message.bytes': String(batch.length - 1) }))
    expect(await produce(request('tuned', [{ index: 0, records: handBuiltBatch(['x'.repeat(200)]) }]))).toMatchObject([{ errorCode: Err.MESSAGE_TOO_LARGE }])

    await node.services.topics.setConfig(topic, node.services.topics.parseConfig({ 'message.timestamp.type': 'LogAppendTime' }))
    const before = BigInt(Date.now())
    const [stamped] = await produce(request('tuned', [{ index: 0, records: handBuiltBatch(['y'], { timestamp: 1n }) }]))
    expect(stamped).toMatchObject({ errorCode: Err.NONE, baseOffset: 1n })
    expect(stamped!.logAppendTimeMs).toBeGreaterThanOrEqual(before)

    await node.services.topics.setConfig(topic, node.services.topics.parseConfig({ 'cleanup.policy': 'compact' }))
    const keyless = batchBytes({ records: recordBytes({ offsetDelta: 0, key: null, value: Buffer.from('v') }), count: 1 })
    expect(await produce(request('tuned', [{ index: 0, records: keyless }]))).toMatchObject([{ errorCode: Err.INVALID_RECORD }])
    expect(await storedOffsets(node, 'tuned')).toEqual([0n, 1n])
  })
})
