/**
 * Compaction of a partition that transactions write to, as Kafka's cleaner does it: nothing at or above the last
 * stable offset is cleaned (a record of an open transaction may yet be aborted), records of aborted transactions
 * supersede nothing, and the cleaner removes them (Kafka's LogCleaner discards an aborted transaction's batches
 * whole). A committed record must never be compacted away by a write that was aborted or is still open.
 * Driven by kafkajs's transactional producer; read back by kcat under read_committed and read_uncommitted, and by a
 * kafkajs consumer.
 *
 * And compaction keeps each active producer's last batch, emptied when none of its records stay (Kafka's
 * Cleaner.isBatchLastRecordOfProducer -> BatchRetention.RETAIN_EMPTY, "to preserve the state of active producers"), so
 * producer state rebuilt from the log knows every producer the node knew: after kill -9 (the node replays the log
 * past its last producer-state checkpoint, here never taken), a retry of a producer's last batch is still a duplicate
 * and its next batch still follows its sequence. Without it, the retry was written a second time (bringing back a
 * superseded value as the key's latest) and the next batch was refused as OUT_OF_ORDER_SEQUENCE_NUMBER, which
 * librdkafka and kafkajs treat as fatal. A kept empty batch goes once it is no longer its producer's last
 * (BatchRetention.DELETE_EMPTY). Clients read past empty batches: a kafkajs consumer and kcat from the beginning.
 */
import { afterEach, describe, expect, it, test } from 'vitest'
import { Kafka, logLevel, type Producer } from 'kafkajs'
import { FAST_GROUPS, startConfiguredBroker } from '../helpers/broker-config.js'
import { listOffset, producePartition, readPartition, recordsOf, withClient } from '../helpers/kafka.js'
import type { KafkaClient } from '../../client/kafka-client.js'
import { encodeRecordBatch } from '../../protocol/record-batch.js'
import { initProducerId, type InitProducerIdRequest, type InitProducerIdResponse } from '../../protocol/messages/init-producer-id.js'
import type { BrokerProcess } from '../helpers/broker.js'
import { loggedErrors } from '../helpers/broker-log.js'
import { kcat } from '../helpers/kcat.js'
import { waitFor } from '../helpers/wait.js'

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
 * A broker whose cleaner runs every 200 ms (and which takes no producer-state checkpoint), a compacted topic on it that is cleaned as soon as anything is dirty
 * (with `configs` besides), and a kafkajs client.
 */
async function start(topic: string, configs: { name: string; value: string }[] = []): Promise<Kafka> {
  // No producer-state checkpoint while a test runs: a restart after kill -9 rebuilds producer state from the log alone.
  broker = await startConfiguredBroker({ ...FAST_GROUPS, logRetentionCheckIntervalMs: 200, logFlushOffsetCheckpointIntervalMs: 3_600_000 })
  const kafka = new Kafka({ clientId: 'compaction-txn', brokers: [broker.address], logLevel: logLevel.NOTHING, retry: { retries: 5, initialRetryTime: 100 } })
  const admin = kafka.admin()
  await admin.connect()
  await admin.createTopics({
    topics: [{ topic, numPartitions: 1, configEntries: [{ name: 'cleanup.policy', value: 'compact' }, { name: 'min.cleanable.dirty.ratio', value: '0.01' }, ...configs] }],
  })
  await admin.disconnect()
  return kafka
}

async function transactional(kafka: Kafka, transactionalId: string): Promise<Producer> {
  const producer = kafka.producer({ transactionalId, idempotent: true, maxInFlightRequests: 1 })
  producers.push(producer)
  await producer.connect()
  return producer
}

/** `offset key=value` of every record kcat reads to the end of the topic under `isolation`. */
async function records(topic: string, isolation: 'read_committed' | 'read_uncommitted'): Promise<string[]> {
  const { stdout } = await kcat(['-C', '-b', broker!.address, '-t', topic, '-e', '-q', '-X', `isolation.level=${isolation}`, '-f', '%o %k=%s\\n'])
  return stdout.split('\n').filter((line) => line !== '')
}

describe('compaction with transactions', () => {
  test('an aborted write of a key does not compact away its committed record', async () => {
    const topic = 'compact-aborted'
    const kafka = await start(topic)
    const producer = await transactional(kafka, 'compact-aborted-txn')
    let txn = await producer.transaction()
    await txn.send({ topic, messages: [{ key: 'k1', value: 'c1' }, { key: 'k2', value: 'c1' }] })
    await txn.commit()
    txn = await producer.transaction()
    await txn.send({ topic, messages: [{ key: 'k1', value: 'aborted' }, { key: 'k3', value: 'aborted' }] })
    await txn.abort()
    txn = await producer.transaction()
    await txn.send({ topic, messages: [{ key: 'k2', value: 'c2' }] })
    await txn.commit()
    // The newest batch is never compacted; this one only closes the log.
    const plain = kafka.producer()
    producers.push(plain)
    await plain.connect()
    await plain.send({ topic, messages: [{ key: 'k9', value: 'plain' }] })

    // k2=c1 (offset 1) is superseded by the committed k2=c2: its removal shows the cleaner has run.
    await waitFor('compaction of k2=c1', async () => !(await records(topic, 'read_uncommitted')).includes('1 k2=c1'))
    const committed = await records(topic, 'read_committed')
    expect(committed).toEqual([expect.stringMatching(/^0 k1=c1$/), expect.stringMatching(/^\d+ k2=c2$/), expect.stringMatching(/^\d+ k9=plain$/)])
  })

  test('an aborted record is compacted away: a consumer reading from the beginning, read_uncommitted, no longer gets it', async () => {
    const topic = 'compact-aborted-gone'
    const kafka = await start(topic, [{ name: 'delete.retention.ms', value: '1000' }])
    const producer = await transactional(kafka, 'compact-aborted-gone-txn')
    const txn = await producer.transaction()
    await txn.send({ topic, messages: [{ key: 'a', value: 'ABORTED' }] })
    await txn.abort()
    const plain = kafka.producer()
    producers.push(plain)
    await plain.connect()
    // 50 records over 5 keys, a batch of one record per key at a time. The last batch is never compacted, nor
    // superseded from, so the batch before it keeps its values too.
    for (let round = 0; round < 10; round++) {
      await plain.send({ topic, messages: Array.from({ length: 5 }, (_, key) => ({ key: `k${key}`, value: `v${round}` })) })
    }
    // The superseded values going shows the cleaner has run (it may have before the last sends, as often as it runs).
    await waitFor('compaction of the superseded values', async () => (await records(topic, 'read_uncommitted')).every((line) => /=(v8|v9|ABORTED)$/.test(line)))
    const consumer = kafka.consumer({ groupId: 'compact-aborted-gone-reader', readUncommitted: true, maxWaitTimeInMs: 200 })
    const read: string[] = []
    await consumer.connect()
    try {
      await consumer.subscribe({ topics: [topic], fromBeginning: true })
      await consumer.run({ eachMessage: async ({ message }) => void read.push(`${message.offset} ${message.key}=${message.value}`) })
      // Records arrive in offset order: the last one means every one before it has been read.
      await waitFor('the consumer to read the last record', () => read.some((line) => line.startsWith('51 ')))
    } finally {
      await consumer.disconnect()
    }
    expect(read).toEqual(['42 k0=v8', '43 k1=v8', '44 k2=v8', '45 k3=v8', '46 k4=v8', '47 k0=v9', '48 k1=v9', '49 k2=v9', '50 k3=v9', '51 k4=v9'])
    expect(await records(topic, 'read_committed')).toEqual(read)
  })

  test('a write of an open transaction does not compact away the committed record of its key', async () => {
    const topic = 'compact-open'
    const kafka = await start(topic)
    const plain = kafka.producer()
    producers.push(plain)
    await plain.connect()
    await plain.send({ topic, messages: [{ key: 'k1', value: 'committed' }] })
    await plain.send({ topic, messages: [{ key: 'k2', value: 'old' }] })
    await plain.send({ topic, messages: [{ key: 'k2', value: 'new' }] })
    const producer = await transactional(kafka, 'compact-open-txn')
    const txn = await producer.transaction()
    await txn.send({ topic, messages: [{ key: 'k1', value: 'open' }] })
    await plain.send({ topic, messages: [{ key: 'k5', value: 'after' }] })

    // k2=old lies below the open transaction: compacting it shows the cleaner ran while the transaction was open.
    await waitFor('compaction of k2=old', async () => !(await records(topic, 'read_uncommitted')).includes('1 k2=old'))
    expect(await records(topic, 'read_uncommitted')).toContain('0 k1=committed')
    await txn.abort()
    await plain.send({ topic, messages: [{ key: 'k6', value: 'closing' }] })
    const committed = await records(topic, 'read_committed')
    expect(committed.slice(0, 2)).toEqual(['0 k1=committed', '2 k2=new'])
    expect(committed.slice(2).map((line) => line.replace(/^\d+ /, ''))).toEqual(['k5=after', 'k6=closing'])
  })
})

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

/** One batch of keyed records (stamped `timestamp`, or now), from an idempotent producer when `producer` is given. */
function keyed(entries: [string, string][], producer?: { id: bigint; sequence: number }, timestamp?: bigint): Buffer {
  return encodeRecordBatch(
    entries.map(([key, value]) => ({ key: Buffer.from(key), value: Buffer.from(value), timestamp })),
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
  return recordsOf(batches).map((r) => `${r.offset} ${r.key}=${r.value}`)
}

/** What a kafkajs consumer reads of the topic from the beginning, once it has read `count` records. */
async function kafkajsRead(topic: string, count: number): Promise<string[]> {
  const kafka = new Kafka({ clientId: 'empty-batch-reader', brokers: [broker!.address], logLevel: logLevel.NOTHING })
  const consumer = kafka.consumer({ groupId: `readers-${topic}`, sessionTimeout: 6_000, heartbeatInterval: 500 })
  const read: string[] = []
  await consumer.connect()
  try {
    await consumer.subscribe({ topic, fromBeginning: true })
    await consumer.run({ eachMessage: async ({ message }) => void read.push(`${message.offset} ${message.key}=${message.value}`) })
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
      // The producer's record is stamped ten minutes ahead (a fast device clock), later than the records that stay.
      const now = BigInt(Date.now())
      expect(await send(client, topic, keyed([['device-1', 'stale']], { id, sequence: 0 }, now + 600_000n))).toEqual({ errorCode: NONE, baseOffset: 0n })
      // Another writer (not idempotent) supersedes the producer's only record; a last batch keeps the first cleanable.
      expect((await send(client, topic, keyed([['device-1', 'current']], undefined, now))).errorCode).toBe(NONE)
      expect((await send(client, topic, keyed([['device-2', 'tail']], undefined, now + 1_000n))).errorCode).toBe(NONE)
      await waitFor('compaction to empty the producer batch', async () => (await layout(client, topic))[0] === `0-0:0:${id}`)
      expect(await liveRecords(client, topic)).toEqual(['1 device-1=current', '2 device-2=tail'])
      // MAX_TIMESTAMP answers the newest record left, not the emptied batch, whose header keeps the removed record's time.
      expect(await listOffset(client, topic, 0, -3n)).toEqual({ errorCode: NONE, offset: 2n, timestamp: now + 1_000n })
    })
    expect(await records(topic, 'read_uncommitted')).toEqual(['1 device-1=current', '2 device-2=tail'])
    expect(await kafkajsRead(topic, 2)).toEqual(['1 device-1=current', '2 device-2=tail'])

    await killAndRestart()
    await withClient(broker!, async (client) => {
      const id = BigInt((await layout(client, topic))[0]!.split(':')[2]!)
      // The producer retries its batch (its answer was lost): answered with the original offset, written nowhere.
      expect(await send(client, topic, keyed([['device-1', 'stale']], { id, sequence: 0 }))).toEqual({ errorCode: NONE, baseOffset: 0n })
      expect(await liveRecords(client, topic)).toEqual(['1 device-1=current', '2 device-2=tail'])
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
    const kafka = await start(topic)
    const producer = await transactional(kafka, 'compact-aborted-then-committed')
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
    // The cleaner (every 200 ms here) may already have removed door=closed (offset 2), which door=locked supersedes.
    const read = await records(topic, 'read_committed')
    expect(read.filter((line) => line !== '2 door=closed')).toEqual(['3 window=closed', '4 door=locked'])
  })
})
