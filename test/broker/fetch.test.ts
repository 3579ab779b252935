/**
 * Fetch as consumers depend on it (reference/kafka-clients.md, pitfalls 3-5): long polls that park and wake on an
 * append, answers in request order on one connection, whole batches from the one holding the fetch offset, at least
 * one batch whatever maxBytes says, OFFSET_OUT_OF_RANGE, and both isolation levels.
 *
 * No assertion is about how long something took. Where a test must tell "woken by the append" from "answered at
 * maxWaitMs", maxWaitMs is far longer than the test could need, so only a broker that did not wake would fail.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startBroker, type BrokerProcess } from '../helpers/broker.js'
import { connect, createTopic, fetchPartition, fetchPartitionRequest, producePartition, recordsOf, splitBatches, withClient } from '../helpers/kafka.js'
import { fetch, type FetchRequest, type FetchResponse } from '../../protocol/messages/fetch.js'
import { Bytes, RawConnection, apiVersionsV0, handBuiltBatch, parseApiVersionsV0, requestFrame } from '../helpers/wire.js'
import type { KafkaClient } from '../../client/kafka-client.js'
import { deleteTopics } from '../../protocol/messages/delete-topics.js'

const OFFSET_OUT_OF_RANGE = 1
const UNKNOWN_TOPIC_OR_PARTITION = 3
const FETCH_SESSION_ID_NOT_FOUND = 70

/** 'settled' as soon as `promise` settles, 'pending' if it has not after `ms`: a parked request has not answered. */
async function stateAfter(promise: Promise<unknown>, ms: number): Promise<'settled' | 'pending'> {
  let timer: NodeJS.Timeout | undefined
  const settled = promise.then(
    () => 'settled' as const,
    () => 'settled' as const,
  )
  const pending = new Promise<'pending'>((resolve) => (timer = setTimeout(() => resolve('pending'), ms)))
  const state = await Promise.race([settled, pending])
  clearTimeout(timer)
  return state
}

/** Fetch v4 for one partition, by hand (FetchRequest.json): no session fields before v7, no log start before v5. */
function fetchV4Frame(correlationId: number, topic: string, fetchOffset: bigint, maxWaitMs: number): Buffer {
  const body = new Bytes()
    .int32(-1) // replicaId
    .int32(maxWaitMs)
    .int32(1) // minBytes
    .int32(1 << 20) // maxBytes
    .int8(0) // isolationLevel
    .int32(1)
    .string(topic)
    .int32(1)
    .int32(0) // partition
    .int64(fetchOffset)
    .int32(1 << 20) // partitionMaxBytes
    .build()
  return requestFrame({ apiKey: 1, apiVersion: 4, correlationId }, body)
}

describe('Fetch', () => {
  let broker: BrokerProcess
  let client: KafkaClient
  beforeAll(async () => {
    broker = await startBroker()
    client = await connect(broker, { timeoutMs: 60_000 })
  })
  afterAll(async () => {
    client?.close()
    await broker?.stop()
    broker?.cleanup()
  })

  describe('long poll', () => {
    it('a fetch with nothing to read parks, and answers with the record as soon as one is produced', async () => {
      await createTopic(broker, 'poll-wake')
      const parked = fetchPartition(client, { topic: 'poll-wake', partition: 0, offset: 0n, maxWaitMs: 50_000, minBytes: 1 })
      // Answering at once with nothing would make consumers spin (Redpanda #1115, KoP #699).
      expect(await stateAfter(parked, 300)).toBe('pending')
      await withClient(broker, (producer) => producePartition(producer, 'poll-wake', 0, handBuiltBatch(['wake up'])))
      expect(await stateAfter(parked, 15_000), 'the append woke the parked fetch (maxWaitMs is 50 s)').toBe('settled')
      const answer = await parked
      expect(answer.errorCode).toBe(0)
      expect(recordsOf(splitBatches(answer.records)).map((r) => r.value!.toString())).toEqual(['wake up'])
    })

    it('a fetch that gets nothing answers, empty and without error, once maxWaitMs has passed', async () => {
      await createTopic(broker, 'poll-quiet')
      const parked = fetchPartition(client, { topic: 'poll-quiet', partition: 0, offset: 0n, maxWaitMs: 1_000, minBytes: 1 })
      expect(await stateAfter(parked, 300), 'it waits rather than answering empty at once').toBe('pending')
      const answer = await parked
      expect(answer).toMatchObject({ errorCode: 0, highWatermark: 0n })
      expect(splitBatches(answer.records)).toEqual([])
    })

    it('minBytes: a fetch keeps waiting until enough bytes are readable', async () => {
      await createTopic(broker, 'poll-min-bytes')
      const parked = fetchPartition(client, { topic: 'poll-min-bytes', partition: 0, offset: 0n, maxWaitMs: 50_000, minBytes: 5_000 })
      await withClient(broker, async (producer) => {
        await producePartition(producer, 'poll-min-bytes', 0, handBuiltBatch(['small']))
        expect(await stateAfter(parked, 300), 'one small batch is below minBytes').toBe('pending')
        await producePartition(producer, 'poll-min-bytes', 0, handBuiltBatch(['x'.repeat(6_000)]))
      })
      expect(await stateAfter(parked, 15_000)).toBe('settled')
      expect(recordsOf(splitBatches((await parked).records))).toHaveLength(2)
    })

    it('a parked fetch on a topic that is deleted answers at once', async () => {
      await createTopic(broker, 'poll-deleted')
      const parked = fetchPartition(client, { topic: 'poll-deleted', partition: 0, offset: 0n, maxWaitMs: 50_000 })
      expect(await stateAfter(parked, 300)).toBe('pending')
      await withClient(broker, (admin) => admin.request(deleteTopics, 1, { topicNames: ['poll-deleted'], timeoutMs: 5_000 }))
      expect(await stateAfter(parked, 15_000)).toBe('settled')
      expect((await parked).errorCode).toBe(UNKNOWN_TOPIC_OR_PARTITION)
    })
  })

  it('answers in request order: a fast request behind a parked fetch waits for it', async () => {
    await createTopic(broker, 'ordered')
    const connection = await RawConnection.open(broker.port)
    try {
      connection.send(Buffer.concat([fetchV4Frame(1, 'ordered', 0n, 1_000), apiVersionsV0(2)]))
      const first = await connection.nextFrame(20_000)
      const second = await connection.nextFrame(20_000)
      // The protocol guide: "responses will return in that order" (docs/protocol.html).
      expect(first.readInt32BE(0)).toBe(1)
      expect(parseApiVersionsV0(second)).toMatchObject({ correlationId: 2, errorCode: 0 })
    } finally {
      connection.destroy()
    }
  })

  describe('what a fetch returns', () => {
    beforeAll(async () => {
      await createTopic(broker, 'reads')
      // Three batches: offsets 0-2, 3 (about 100 KB), 4-5.
      await producePartition(client, 'reads', 0, handBuiltBatch(['a', 'b', 'c']))
      await producePartition(client, 'reads', 0, handBuiltBatch(['big-' + 'x'.repeat(100_000)]))
      await producePartition(client, 'reads', 0, handBuiltBatch(['d', 'e']))
    })

    it('starts with the whole batch that holds the fetch offset', async () => {
      const answer = await fetchPartition(client, { topic: 'reads', partition: 0, offset: 1n })
      const batches = splitBatches(answer.records)
      expect(batches.map((b) => b.header.baseOffset)).toEqual([0n, 3n, 4n])
      expect(answer.highWatermark).toBe(6n)
    })

    it('returns at least one whole batch even when it is larger than maxBytes, and no more', async () => {
      const answer = await fetchPartition(client, { topic: 'reads', partition: 0, offset: 3n, maxBytes: 100 })
      const batches = splitBatches(answer.records)
      expect(batches.map((b) => b.header.baseOffset)).toEqual([3n])
    })

    it('at the high watermark: no records and no error; past it or below the log start: OFFSET_OUT_OF_RANGE', async () => {
      const atEnd = await fetchPartition(client, { topic: 'reads', partition: 0, offset: 6n })
      expect(atEnd.errorCode).toBe(0)
      expect(splitBatches(atEnd.records)).toEqual([])
      expect((await fetchPartition(client, { topic: 'reads', partition: 0, offset: 7n })).errorCode).toBe(OFFSET_OUT_OF_RANGE)
      expect((await fetchPartition(client, { topic: 'reads', partition: 0, offset: -1n })).errorCode).toBe(OFFSET_OUT_OF_RANGE)
    })

    it('read_committed and read_uncommitted see the same records when there are no transactions', async () => {
      const uncommitted = await fetchPartition(client, { topic: 'reads', partition: 0, offset: 0n, isolationLevel: 0 })
      const committed = await fetchPartition(client, { topic: 'reads', partition: 0, offset: 0n, isolationLevel: 1 })
      const served = (answer: typeof committed) => splitBatches(answer.records).map((b) => b.bytes.toString('base64'))
      expect(served(committed)).toEqual(served(uncommitted))
      expect(served(committed)).toHaveLength(3)
      // The last stable offset is the high watermark; read_committed gets an (empty) aborted-transactions list.
      expect(committed).toMatchObject({ errorCode: 0, highWatermark: 6n, lastStableOffset: 6n, abortedTransactions: [] })
      expect(uncommitted).toMatchObject({ errorCode: 0, highWatermark: 6n, lastStableOffset: 6n, abortedTransactions: null })
    })

    it('an incremental fetch of a session the node never gave a consumer is FETCH_SESSION_ID_NOT_FOUND, so the client starts afresh (KIP-227)', async () => {
      const request = { ...fetchPartitionRequest({ topic: 'reads', partition: 0, offset: 0n }), sessionId: 123, sessionEpoch: 5 }
      const incremental = await client.request<Partial<FetchRequest>, FetchResponse>(fetch, 12, request)
      expect(incremental).toMatchObject({ errorCode: FETCH_SESSION_ID_NOT_FOUND, sessionId: 0, responses: [] })
      // Session id 0 with an epoch below -1 is neither a full fetch nor a session the node has (FetchManager.newContext).
      const belowFinal = await client.request<Partial<FetchRequest>, FetchResponse>(fetch, 12, { ...request, sessionId: 0, sessionEpoch: -2 })
      expect(belowFinal).toMatchObject({ errorCode: FETCH_SESSION_ID_NOT_FOUND, sessionId: 0, responses: [] })
      // The full fetch that follows (epoch 0, or -1 without a session) is served, still without a session.
      for (const sessionEpoch of [0, -1]) {
        const full = await client.request<Partial<FetchRequest>, FetchResponse>(fetch, 12, { ...request, sessionId: 0, sessionEpoch })
        expect(full).toMatchObject({ errorCode: 0, sessionId: 0 })
        expect(splitBatches(full.responses[0]!.partitions[0]!.records)).toHaveLength(3)
      }
    })

    it('an unknown topic or partition is UNKNOWN_TOPIC_OR_PARTITION', async () => {
      expect((await fetchPartition(client, { topic: 'reads', partition: 9, offset: 0n })).errorCode).toBe(UNKNOWN_TOPIC_OR_PARTITION)
      expect((await fetchPartition(client, { topic: 'no-such-topic', partition: 0, offset: 0n })).errorCode).toBe(UNKNOWN_TOPIC_OR_PARTITION)
    })
  })
})
