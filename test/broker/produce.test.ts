/**
 * Produce rules a client meets beyond bad bytes (those are in bad-input.test.ts): per-partition results in a
 * request for several topics, topic configs that govern appends (max.message.bytes, min.insync.replicas), the
 * legacy versions advertised only for librdkafka's sake, and internal topics that only their coordinators write.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startBroker, type BrokerProcess } from '../helpers/broker.js'
import { connect, createTopic, fetchPartition, producePartition } from '../helpers/kafka.js'
import { kcat } from '../helpers/kcat.js'
import { handBuiltBatch } from '../helpers/wire.js'
import type { KafkaClient } from '../../client/kafka-client.js'
import { produce, type ProduceRequest, type ProduceResponse } from '../../protocol/messages/produce.js'
import { offsetCommit, type OffsetCommitRequest, type OffsetCommitResponse } from '../../protocol/messages/offset-commit.js'

const ErrorCode = {
  NONE: 0,
  UNKNOWN_TOPIC_OR_PARTITION: 3,
  MESSAGE_TOO_LARGE: 10,
  INVALID_TOPIC_EXCEPTION: 17,
  NOT_ENOUGH_REPLICAS: 19,
  UNSUPPORTED_VERSION: 35,
} as const

describe('Produce', () => {
  let broker: BrokerProcess
  let client: KafkaClient
  beforeAll(async () => {
    broker = await startBroker()
    client = await connect(broker)
  })
  afterAll(async () => {
    client?.close()
    await broker?.stop()
    broker?.cleanup()
  })

  it('answers each partition of a multi-topic request on its own: good ones are written, bad ones named', async () => {
    await createTopic(broker, 'multi-a', { partitions: 2 })
    await createTopic(broker, 'multi-b')
    const response = await client.request<ProduceRequest, ProduceResponse>(produce, 9, {
      transactionalId: null,
      acks: -1,
      timeoutMs: 5_000,
      topicData: [
        { name: 'multi-a', partitionData: [{ index: 0, records: handBuiltBatch(['a0']) }, { index: 1, records: handBuiltBatch(['a1', 'a1b']) }, { index: 7, records: handBuiltBatch(['nope']) }] },
        { name: 'multi-b', partitionData: [{ index: 0, records: handBuiltBatch(['b0']) }] },
        { name: 'multi-missing', partitionData: [{ index: 0, records: handBuiltBatch(['gone']) }] },
      ],
    })
    expect(response.responses.map((t) => [t.name, t.partitionResponses.map((p) => [p.index, p.errorCode, p.baseOffset])])).toEqual([
      ['multi-a', [[0, ErrorCode.NONE, 0n], [1, ErrorCode.NONE, 0n], [7, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, -1n]]],
      ['multi-b', [[0, ErrorCode.NONE, 0n]]],
      ['multi-missing', [[0, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, -1n]]],
    ])
    expect((await fetchPartition(client, { topic: 'multi-a', partition: 1, offset: 0n })).highWatermark).toBe(2n)
  })

  it('max.message.bytes set on a topic bounds its batches (MESSAGE_TOO_LARGE)', async () => {
    await createTopic(broker, 'small-messages', { configs: { 'max.message.bytes': '1000' } })
    expect((await producePartition(client, 'small-messages', 0, handBuiltBatch(['x'.repeat(2_000)]))).errorCode).toBe(ErrorCode.MESSAGE_TOO_LARGE)
    expect((await producePartition(client, 'small-messages', 0, handBuiltBatch(['x'.repeat(500)]))).errorCode).toBe(ErrorCode.NONE)
  })

  it('min.insync.replicas above the replication factor asks for every replica, as Kafka\'s effectiveMinIsr: a single node\'s partition takes acks=-1', async () => {
    await createTopic(broker, 'needs-two', { configs: { 'min.insync.replicas': '2' } })
    expect((await producePartition(client, 'needs-two', 0, handBuiltBatch(['x']), { acks: -1 })).errorCode).toBe(ErrorCode.NONE)
    expect((await producePartition(client, 'needs-two', 0, handBuiltBatch(['y']), { acks: 1 })).errorCode).toBe(ErrorCode.NONE)
    const answer = await fetchPartition(client, { topic: 'needs-two', partition: 0, offset: 0n })
    expect(answer.highWatermark).toBe(2n)
  })

  it('v0-2 are advertised (librdkafka 2.0.2 compresses only when it sees Produce v0) but answered UNSUPPORTED_VERSION', async () => {
    await createTopic(broker, 'legacy')
    for (const version of [0, 1, 2]) {
      const answer = await producePartition(client, 'legacy', 0, handBuiltBatch(['old']), { acks: 1, version })
      expect(answer.errorCode, `v${version}`).toBe(ErrorCode.UNSUPPORTED_VERSION)
    }
    expect((await fetchPartition(client, { topic: 'legacy', partition: 0, offset: 0n })).highWatermark).toBe(0n)
  })

  it('a client cannot write to __consumer_offsets (INVALID_TOPIC_EXCEPTION, as Kafka): only the group coordinator does', async () => {
    // A standalone offset commit (generation -1, no membership) makes the coordinator create __consumer_offsets.
    await createTopic(broker, 'consumed')
    const commit = await client.request<Partial<OffsetCommitRequest>, OffsetCommitResponse>(offsetCommit, 2, {
      groupId: 'readers',
      generationIdOrMemberEpoch: -1,
      memberId: '',
      topics: [{ name: 'consumed', partitions: [{ partitionIndex: 0, committedOffset: 0n, committedLeaderEpoch: -1, commitTimestamp: -1n, committedMetadata: null }] }],
    })
    expect(commit.topics[0]!.partitions[0]!.errorCode).toBe(ErrorCode.NONE)
    expect((await fetchPartition(client, { topic: '__consumer_offsets', partition: 0, offset: 0n })).errorCode).toBe(ErrorCode.NONE)

    const answer = await producePartition(client, '__consumer_offsets', 0, handBuiltBatch(['forged']))
    expect(answer.errorCode).toBe(ErrorCode.INVALID_TOPIC_EXCEPTION)
    await expect(
      kcat(['-b', broker.address, '-P', '-t', '__consumer_offsets', '-p', '0', '-X', 'message.timeout.ms=5000'], { input: 'forged\n' }),
    ).rejects.toThrow(/Invalid topic|INVALID_TOPIC/i)
  })
})
