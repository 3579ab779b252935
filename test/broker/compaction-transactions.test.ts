/**
 * Compaction of a partition that transactions write to, as Kafka's cleaner does it: nothing at or above the last
 * stable offset is cleaned (a record of an open transaction may yet be aborted), records of aborted transactions
 * supersede nothing, and the cleaner removes them (Kafka's LogCleaner discards an aborted transaction's batches
 * whole). A committed record must never be compacted away by a write that was aborted or is still open.
 * Driven by kafkajs's transactional producer; read back by kcat under read_committed and read_uncommitted, and by a
 * kafkajs consumer.
 */
import { afterEach, describe, expect, test } from 'vitest'
import { Kafka, logLevel, type Producer } from 'kafkajs'
import { FAST_GROUPS, startConfiguredBroker } from '../helpers/broker-config.js'
import type { BrokerProcess } from '../helpers/broker.js'
import { loggedErrors } from '../helpers/broker-log.js'
import { kcat } from '../helpers/kcat.js'
import { waitFor } from '../helpers/wait.js'

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
 * A broker whose cleaner runs every 200 ms, a compacted topic on it that is cleaned as soon as anything is dirty
 * (with `configs` besides), and a kafkajs client.
 */
async function start(topic: string, configs: { name: string; value: string }[] = []): Promise<Kafka> {
  broker = await startConfiguredBroker({ ...FAST_GROUPS, logRetentionCheckIntervalMs: 200 })
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
