/**
 * Compaction keeps each active producer's last batch, emptied when none of its records stay (Kafka's
 * Cleaner.isBatchLastRecordOfProducer -> BatchRetention.RETAIN_EMPTY, "to preserve the state of active producers"), so
 * producer state rebuilt from the log knows every producer the node knew: after kill -9 (the node replays the log
 * past its last producer-state checkpoint, here never taken), a retry of a producer's last batch is still a duplicate
 * and its next batch still follows its sequence. Without it, the retry was written a second time (bringing back a
 * superseded value as the key's latest) and the next batch was refused as OUT_OF_ORDER_SEQUENCE_NUMBER, which
 * librdkafka and kafkajs treat as fatal. A kept empty batch goes once it is no longer its producer's last
 * (BatchRetention.DELETE_EMPTY). Clients read past empty batches: a kafkajs consumer and kcat from the beginning.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { Kafka, logLevel, type Producer } from 'kafkajs'
import { FAST_GROUPS, startConfiguredBroker } from '../helpers/broker-config.js'
import type { BrokerProcess } from '../helpers/broker.js'
import { loggedErrors } from '../helpers/broker-log.js'
import { createTopic, producePartition, readPartition, recordsOf, withClient } from '../helpers/kafka.js'
import { kcat } from '../helpers/kcat.js'
import { waitFor } from '../helpers/wait.js'
import type { KafkaClient } from '../../client/kafka-client.js'
import { encodeRecordBatch } from '../../protocol/record-batch.js'
import { initProducerId, type InitProducerIdRequest, type InitProducerIdResponse } from '../../protocol/messages/init-producer-id.js'

const NONE = 0

let broker: BrokerProcess | undefined
const producers: Producer[] = []
afterEach(async () => {
  for (const producer of producers.splice(0)) await producer.disconnect().catch(() => undefined)
  await broker?.stop()
  expect(loggedErrors(broker!)).toEqual([])
  broker?.cleanup()
  broker = undefined
})

/**
 * A node whose cleaner runs every 200 ms and which takes no producer-state checkpoint while a test runs, so that a
 * restart after kill -9 rebuilds producer state from the log alone; a compacted topic on it, cleaned as soon as
 * anything is dirty.
 */
async function start(topic: string): Promise<void> {
  broker = await startConfiguredBroker({ ...FAST_GROUPS, logRetentionCheckIntervalMs: 200, logFlushOffsetCheckpointIntervalMs: 3_600_000 })
  await createTopic(broker, topic, { configs: { 'cleanup.policy': 'compact', 'min.cleanable.dirty.ratio': '0.01' } })
}

async function killAndRestart(): Promise<void> {
  await broker!.kill()
  broker = await broker!.restart()
}

async function newProducerId(client: KafkaClient): Promise<bigint> {
  const answer = await client.request<InitProducerIdRequest, InitProducerIdResponse>(initProducerId, 4, {
    transactionalId: null,
    transactionTimeoutMs: 60_000,
    producerId: -1n,
    producerEpoch: -1,
  })
  expect(answer.errorCode).toBe(NONE)
  return answer.producerId!
}

/** One batch of keyed records, from an idempotent producer when `producer` is given. */
function keyed(entries: [string, string][], producer?: { id: bigint; sequence: number }): Buffer {
  return encodeRecordBatch(
    entries.map(([key, value]) => ({ key: Buffer.from(key), value: Buffer.from(value) })),
    producer ? { producerId: producer.id, producerEpoch: 0, baseSequence: producer.sequence } : {},
  )
}

async function send(client: KafkaClient, topic: string, batch: Buffer): Promise<{ errorCode: number; baseOffset: bigint }> {
  const answer = await producePartition(client, topic, 0, batch)
  return { errorCode: answer.errorCode, baseOffset: answer.baseOffset }
}

/** The stored batches of partition 0 as `offset-range:records:producer`. */
async function layout(client: KafkaClient, topic: string): Promise<string[]> {
  const { batches } = await readPartition(client, topic, 0)
  return batches.map(({ header }) => `${header.baseOffset}-${header.baseOffset + BigInt(header.lastOffsetDelta)}:${header.recordsCount}:${header.producerId}`)
}

async function liveRecords(client: KafkaClient, topic: string): Promise<string[]> {
  const { batches } = await readPartition(client, topic, 0)
  return recordsOf(batches).map((r) => `${r.offset} ${r.key} ${r.value}`)
}

async function kcatRead(topic: string, isolation = 'read_uncommitted'): Promise<string[]> {
  const { stdout } = await kcat(['-C', '-b', broker!.address, '-t', topic, '-p', '0', '-o', 'beginning', '-e', '-q', '-X', `isolation.level=${isolation}`, '-f', '%o %k %s\\n'])
  return stdout.split('\n').filter((line) => line !== '')
}

/** What a kafkajs consumer reads of the topic from the beginning, once it has read `count` records. */
async function kafkajsRead(topic: string, count: number): Promise<string[]> {
  const kafka = new Kafka({ clientId: 'empty-batch-reader', brokers: [broker!.address], logLevel: logLevel.NOTHING })
  const consumer = kafka.consumer({ groupId: `readers-${topic}`, sessionTimeout: 6_000, heartbeatInterval: 500 })
  const read: string[] = []
  await consumer.connect()
  try {
    await consumer.subscribe({ topic, fromBeginning: true })
    await consumer.run({ eachMessage: async ({ message }) => void read.push(`${message.offset} ${message.key} ${message.value}`) })
    await waitFor(`kafkajs to read ${count} records of ${topic}`, () => read.length >= count)
  } finally {
    await consumer.disconnect()
  }
  return read
}

describe("compaction keeps an active producer's last batch", () => {
  it('emptied when another producer superseded its records: after kill -9 its retry is a duplicate and its next batch follows on; readers skip the empty batch', async () => {
    const topic = 'compact-producer-last'
    await start(topic)
    await withClient(broker!, async (client) => {
      const id = await newProducerId(client)
      expect(await send(client, topic, keyed([['device-1', 'stale']], { id, sequence: 0 }))).toEqual({ errorCode: NONE, baseOffset: 0n })
      // Another writer (not idempotent) supersedes the producer's only record; a last batch keeps the first cleanable.
      expect((await send(client, topic, keyed([['device-1', 'current']]))).errorCode).toBe(NONE)
      expect((await send(client, topic, keyed([['device-2', 'tail']]))).errorCode).toBe(NONE)
      await waitFor('compaction to empty the producer batch', async () => (await layout(client, topic))[0] === `0-0:0:${id}`)
      expect(await liveRecords(client, topic)).toEqual(['1 device-1 current', '2 device-2 tail'])
    })
    expect(await kcatRead(topic)).toEqual(['1 device-1 current', '2 device-2 tail'])
    expect(await kafkajsRead(topic, 2)).toEqual(['1 device-1 current', '2 device-2 tail'])

    await killAndRestart()
    await withClient(broker!, async (client) => {
      const id = BigInt((await layout(client, topic))[0]!.split(':')[2]!)
      // The producer retries its batch (its answer was lost): answered with the original offset, written nowhere.
      expect(await send(client, topic, keyed([['device-1', 'stale']], { id, sequence: 0 }))).toEqual({ errorCode: NONE, baseOffset: 0n })
      expect(await liveRecords(client, topic)).toEqual(['1 device-1 current', '2 device-2 tail'])
      // Its next batch follows its sequence.
      expect(await send(client, topic, keyed([['device-3', 'next']], { id, sequence: 1 }))).toEqual({ errorCode: NONE, baseOffset: 3n })
    })
  })

  it('goes once the producer has a later batch: only the last one stays, emptied', async () => {
    const topic = 'compact-producer-later'
    await start(topic)
    await withClient(broker!, async (client) => {
      const id = await newProducerId(client)
      expect((await send(client, topic, keyed([['a', 'a1']], { id, sequence: 0 }))).errorCode).toBe(NONE)
      expect((await send(client, topic, keyed([['a', 'a2']]))).errorCode).toBe(NONE)
      expect((await send(client, topic, keyed([['z', 'filler']]))).errorCode).toBe(NONE)
      await waitFor('the first batch emptied', async () => (await layout(client, topic))[0] === `0-0:0:${id}`)
      expect((await send(client, topic, keyed([['b', 'b1'], ['c', 'c1']], { id, sequence: 1 }))).errorCode).toBe(NONE)
      expect((await send(client, topic, keyed([['b', 'b2'], ['c', 'c2']]))).errorCode).toBe(NONE)
      expect((await send(client, topic, keyed([['z', 'filler2']]))).errorCode).toBe(NONE)
      await waitFor('the old empty batch removed and the new last one emptied', async () => {
        const batches = await layout(client, topic)
        // The filler at 2 stays: its newer record is in the last batch, which compaction never reads.
        return batches.join(' ') === `1-1:1:-1 2-2:1:-1 3-4:0:${id} 5-6:2:-1 7-7:1:-1`
      })
    })
    await killAndRestart()
    await withClient(broker!, async (client) => {
      const { batches } = await readPartition(client, topic, 0)
      const id = batches.find(({ header }) => header.recordsCount === 0)!.header.producerId
      // The retry of the producer's last batch (sequences 1-2) is a duplicate; its next batch starts at 3.
      expect(await send(client, topic, keyed([['b', 'b1'], ['c', 'c1']], { id, sequence: 1 }))).toEqual({ errorCode: NONE, baseOffset: 3n })
      expect(await send(client, topic, keyed([['d', 'd1']], { id, sequence: 3 }))).toEqual({ errorCode: NONE, baseOffset: 8n })
    })
  })

  it("emptied when its transaction aborted: the ABORT marker stays with it, and after kill -9 the producer's next transaction commits", async () => {
    const topic = 'compact-producer-aborted'
    await start(topic)
    const kafka = new Kafka({ clientId: 'compaction-aborted', brokers: [broker!.address], logLevel: logLevel.NOTHING, retry: { retries: 8, initialRetryTime: 100 } })
    const producer = kafka.producer({ transactionalId: 'compact-aborted-then-committed', idempotent: true, maxInFlightRequests: 1 })
    producers.push(producer)
    await producer.connect()
    const aborted = await producer.transaction()
    await aborted.send({ topic, messages: [{ key: 'door', value: 'open (aborted)' }] })
    await aborted.abort()
    const plain = kafka.producer()
    producers.push(plain)
    await plain.connect()
    await plain.send({ topic, messages: [{ key: 'door', value: 'closed' }] })
    await plain.send({ topic, messages: [{ key: 'window', value: 'closed' }] })
    await withClient(broker!, async (client) => {
      await waitFor('compaction to empty the aborted batch', async () => (await layout(client, topic))[0]?.startsWith('0-0:0:') === true)
      // The ABORT marker (offset 1) stays while its transaction's batch does.
      expect((await layout(client, topic))[1]).toMatch(/^1-1:1:\d+$/)
    })

    await killAndRestart()
    const committed = await producer.transaction()
    await committed.send({ topic, messages: [{ key: 'door', value: 'locked' }] })
    await committed.commit()
    expect(await kcatRead(topic, 'read_committed')).toEqual(['2 door closed', '3 window closed', '4 door locked'])
  })
})
