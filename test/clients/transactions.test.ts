/**
 * Transactions with real clients against real broker processes: kafkajs 2.2.4's transactional producer (and its
 * sendOffsets), read back by kafkajs consumers and kcat (librdkafka 2.0.2) under both isolation levels.
 * - A committed transaction is visible to read_committed readers, an aborted one never is; read_uncommitted sees both;
 *   also when transactions of several producers interleave and end in another order than they began.
 * - sendOffsets commits the consumer offsets with the output, atomically: aborted, the group's offsets stay.
 * - Two producers with one transactional id: the older is fenced.
 * - A transaction left open past its timeout is aborted by the coordinator and never becomes visible.
 * - A read_committed consumer is held at the last stable offset while a transaction is open, and moves on after.
 */
import { afterEach, describe, expect, test } from 'vitest'
import { Kafka, logLevel, type Producer } from 'kafkajs'
import { startBroker, type BrokerProcess } from '../helpers/broker.js'
import { listOffset, withClient } from '../helpers/kafka.js'
import { kcat } from '../helpers/kcat.js'
import { waitFor } from '../helpers/wait.js'
import { loggedErrors } from '../helpers/broker-log.js'

let brokers: BrokerProcess[] = []
const producers: Producer[] = []
afterEach(async () => {
  for (const producer of producers.splice(0)) await producer.disconnect().catch(() => undefined)
  for (const broker of brokers) {
    await broker.stop()
    broker.cleanup()
  }
  brokers = []
})

/** A broker with `args`; its groups form at once (every reader here is a group of one, with nothing to wait for). */
async function start(args: string[] = []): Promise<{ broker: BrokerProcess; kafka: Kafka }> {
  const broker = await startBroker({ args: ['--group-initial-rebalance-delay-ms', '0', ...args] })
  brokers.push(broker)
  return { broker, kafka: new Kafka({ clientId: 'txn-test', brokers: [broker.address], logLevel: logLevel.NOTHING, retry: { retries: 5, initialRetryTime: 100 } }) }
}

async function createTopics(kafka: Kafka, topics: { topic: string; numPartitions?: number }[]): Promise<void> {
  const admin = kafka.admin()
  await admin.connect()
  await admin.createTopics({ topics: topics.map((t) => ({ topic: t.topic, numPartitions: t.numPartitions ?? 1 })) })
  await admin.disconnect()
}

async function transactional(kafka: Kafka, transactionalId: string, options: { transactionTimeout?: number } = {}): Promise<Producer> {
  const producer = kafka.producer({ transactionalId, idempotent: true, maxInFlightRequests: 1, transactionTimeout: options.transactionTimeout ?? 30_000 })
  producers.push(producer)
  await producer.connect()
  return producer
}

/** Every value of a topic as kcat reads it to the end, under `isolation`. */
async function kcatValues(broker: BrokerProcess, topic: string, isolation: 'read_committed' | 'read_uncommitted'): Promise<string[]> {
  const { stdout } = await kcat(['-C', '-b', broker.address, '-t', topic, '-e', '-q', '-X', `isolation.level=${isolation}`, '-f', '%s\\n'])
  return stdout.split('\n').filter((line) => line !== '')
}

/** Values a kafkajs consumer reads under `isolation` until it has `count` of them (or more). */
async function kafkajsValues(kafka: Kafka, topic: string, options: { readUncommitted: boolean; count: number }): Promise<string[]> {
  const consumer = kafka.consumer({ groupId: `reader-${topic}-${options.readUncommitted}`, readUncommitted: options.readUncommitted, maxWaitTimeInMs: 200 })
  const read: string[] = []
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  await consumer.run({ eachMessage: async ({ message }) => void read.push(message.value!.toString()) })
  try {
    await waitFor(`${options.count} records of ${topic}`, () => read.length >= options.count)
  } finally {
    await consumer.disconnect()
  }
  return read
}

describe('kafkajs transactions', () => {
  test('committed records are visible read_committed (kafkajs and kcat), aborted never; read_uncommitted sees both', async () => {
    const { broker, kafka } = await start()
    await createTopics(kafka, [{ topic: 'txn-out', numPartitions: 2 }])
    const producer = await transactional(kafka, 'txn-visibility')
    let txn = await producer.transaction()
    await txn.send({ topic: 'txn-out', messages: [{ value: 'c1', partition: 0 }, { value: 'c2', partition: 1 }] })
    await txn.commit()
    txn = await producer.transaction()
    await txn.send({ topic: 'txn-out', messages: [{ value: 'a1', partition: 0 }, { value: 'a2', partition: 1 }] })
    await txn.abort()
    txn = await producer.transaction()
    await txn.send({ topic: 'txn-out', messages: [{ value: 'c3', partition: 0 }, { value: 'c4', partition: 1 }] })
    await txn.commit()

    expect((await kcatValues(broker, 'txn-out', 'read_committed')).sort()).toEqual(['c1', 'c2', 'c3', 'c4'])
    expect((await kcatValues(broker, 'txn-out', 'read_uncommitted')).sort()).toEqual(['a1', 'a2', 'c1', 'c2', 'c3', 'c4'])
    const committed = await kafkajsValues(kafka, 'txn-out', { readUncommitted: false, count: 4 })
    expect(committed.sort()).toEqual(['c1', 'c2', 'c3', 'c4'])
    const all = await kafkajsValues(kafka, 'txn-out', { readUncommitted: true, count: 6 })
    expect(all.sort()).toEqual(['a1', 'a2', 'c1', 'c2', 'c3', 'c4'])
    // Every partition ends with the last COMMIT marker: its end offset is stable.
    await withClient(broker, async (client) => {
      for (const p of [0, 1]) {
        const latest = await listOffset(client, 'txn-out', p, -1n)
        expect(latest.offset).toBe(6n)
      }
    })
    expect(loggedErrors(broker)).toEqual([])
  }, 120_000)

  test('interleaved transactions of three producers, two aborted in the opposite order of their start: read_committed kafkajs sees only the committed one', async () => {
    const { broker, kafka } = await start()
    await createTopics(kafka, [{ topic: 'txn-interleaved' }])
    const first = await transactional(kafka, 'txn-first')
    const second = await transactional(kafka, 'txn-second')
    const third = await transactional(kafka, 'txn-third')
    const a = await first.transaction()
    await a.send({ topic: 'txn-interleaved', messages: [{ value: 'a1' }] })
    const b = await second.transaction()
    await b.send({ topic: 'txn-interleaved', messages: [{ value: 'b1' }] })
    const c = await third.transaction()
    await c.send({ topic: 'txn-interleaved', messages: [{ value: 'c1' }] })
    await a.send({ topic: 'txn-interleaved', messages: [{ value: 'a2' }] })
    // The second producer's abort is indexed before the first's, though the first started earlier.
    await b.abort()
    await a.abort()
    await c.commit()
    expect(await kafkajsValues(kafka, 'txn-interleaved', { readUncommitted: false, count: 1 })).toEqual(['c1'])
    expect(await kcatValues(broker, 'txn-interleaved', 'read_committed')).toEqual(['c1'])
  }, 120_000)

  test('sendOffsets commits the consumed offsets with the output; an aborted transaction leaves them as they were', async () => {
    const { kafka } = await start()
    await createTopics(kafka, [{ topic: 'txn-in' }, { topic: 'txn-sink' }])
    const admin = kafka.admin()
    await admin.connect()
    const plain = kafka.producer()
    await plain.connect()
    await plain.send({ topic: 'txn-in', messages: Array.from({ length: 10 }, (_, i) => ({ value: `in${i}` })) })
    await plain.disconnect()
    const producer = await transactional(kafka, 'txn-offsets')

    let txn = await producer.transaction()
    await txn.send({ topic: 'txn-sink', messages: [{ value: 'out-0-4' }] })
    await txn.sendOffsets({ consumerGroupId: 'txn-group', topics: [{ topic: 'txn-in', partitions: [{ partition: 0, offset: '5' }] }] })
    await txn.commit()
    const afterCommit = await admin.fetchOffsets({ groupId: 'txn-group', topics: ['txn-in'] })
    expect(afterCommit[0]!.partitions[0]!.offset).toBe('5')

    txn = await producer.transaction()
    await txn.send({ topic: 'txn-sink', messages: [{ value: 'out-5-9' }] })
    await txn.sendOffsets({ consumerGroupId: 'txn-group', topics: [{ topic: 'txn-in', partitions: [{ partition: 0, offset: '10' }] }] })
    await txn.abort()
    const afterAbort = await admin.fetchOffsets({ groupId: 'txn-group', topics: ['txn-in'] })
    expect(afterAbort[0]!.partitions[0]!.offset).toBe('5')
    expect(await kafkajsValues(kafka, 'txn-sink', { readUncommitted: false, count: 1 })).toEqual(['out-0-4'])
    await admin.disconnect()
  }, 120_000)

  test('a second producer with the same transactional id fences the first', async () => {
    const { broker, kafka } = await start()
    await createTopics(kafka, [{ topic: 'txn-fence' }])
    const older = await transactional(kafka, 'txn-zombie')
    const olderTxn = await older.transaction()
    await olderTxn.send({ topic: 'txn-fence', messages: [{ value: 'zombie' }] })
    const newer = await transactional(kafka, 'txn-zombie')
    // kafkajs sends InitProducerId for a transactional id when its first transaction begins: that aborts the older
    // producer's open transaction and bumps the epoch.
    const txn = await newer.transaction()
    await expect(olderTxn.send({ topic: 'txn-fence', messages: [{ value: 'zombie-2' }] })).rejects.toThrow(/epoch|fenced/i)
    await expect(olderTxn.commit()).rejects.toThrow()
    await txn.send({ topic: 'txn-fence', messages: [{ value: 'newer' }] })
    await txn.commit()
    expect(await kcatValues(broker, 'txn-fence', 'read_committed')).toEqual(['newer'])
  }, 120_000)

  test('a transaction open past its timeout is aborted by the coordinator and never visible', async () => {
    const { broker, kafka } = await start(['--transaction-abort-timed-out-transaction-cleanup-interval-ms', '200'])
    await createTopics(kafka, [{ topic: 'txn-timeout' }])
    const producer = await transactional(kafka, 'txn-slow', { transactionTimeout: 1000 })
    const txn = await producer.transaction()
    await txn.send({ topic: 'txn-timeout', messages: [{ value: 'too-late' }] })
    // The coordinator aborts it: the partition gets its ABORT marker and becomes stable again.
    await waitFor('the timed-out transaction to be aborted', async () =>
      withClient(broker, async (client) => (await listOffset(client, 'txn-timeout', 0, -1n, 7)).offset === 2n),
    )
    await expect(txn.commit()).rejects.toThrow()
    expect(await kcatValues(broker, 'txn-timeout', 'read_committed')).toEqual([])
    expect(await kcatValues(broker, 'txn-timeout', 'read_uncommitted')).toEqual(['too-late'])
  }, 60_000)

  test('a read_committed consumer is held at the last stable offset while a transaction is open, and moves on when it commits', async () => {
    const { broker, kafka } = await start()
    await createTopics(kafka, [{ topic: 'txn-lso' }])
    const plain = kafka.producer()
    await plain.connect()
    await plain.send({ topic: 'txn-lso', messages: [{ value: 'before' }] })
    const producer = await transactional(kafka, 'txn-held')
    const txn = await producer.transaction()
    await txn.send({ topic: 'txn-lso', messages: [{ value: 'inside' }] })
    // Written after the transaction's first record: below the high watermark, above the last stable offset.
    await plain.send({ topic: 'txn-lso', messages: [{ value: 'after' }] })
    await plain.disconnect()

    const consumer = kafka.consumer({ groupId: 'txn-lso-reader', readUncommitted: false, maxWaitTimeInMs: 100 })
    const read: string[] = []
    await consumer.connect()
    await consumer.subscribe({ topic: 'txn-lso', fromBeginning: true })
    await consumer.run({ eachMessage: async ({ message }) => void read.push(message.value!.toString()) })
    try {
      await waitFor('the record before the transaction', () => read.length >= 1)
      // ListOffsets latest: the high watermark read_uncommitted, the last stable offset (the transaction's first
      // offset) read_committed.
      await withClient(broker, async (client) => {
        expect((await listOffset(client, 'txn-lso', 0, -1n)).offset).toBe(3n)
        expect((await listOffset(client, 'txn-lso', 0, -1n, 7, { readCommitted: true })).offset).toBe(1n)
      })
      // Held: its fetches (every 100 ms) come back with nothing past the last stable offset for a second.
      await new Promise((resolve) => setTimeout(resolve, 1000))
      expect(read).toEqual(['before'])
      await txn.commit()
      await waitFor('the rest once the transaction commits', () => read.length >= 3)
    } finally {
      await consumer.disconnect()
    }
    expect(read).toEqual(['before', 'inside', 'after'])
  }, 60_000)
})
