/**
 * Idempotent producers of three clients against real broker processes, with the failures idempotence exists for:
 * - kcat (librdkafka 2.0.2) with enable.idempotence=true (and -E, so that it waits out the broker's absence rather
 *   than exit) writes 100,000 records while the broker is killed with
 *   SIGKILL and restarted in the middle: every record is there exactly once.
 * - kafkajs 2.2.4 (idempotent: true) loses the answer to a produce it sent (the broker wrote the batch, a proxy
 *   swallows the response and closes the connection): its retry is recognised and answered with the original
 *   offsets, so every record reads back exactly once, in order.
 * - @platformatic/kafka 1.35 (idempotent: true): its batches carry a producer id and consecutive sequences and read
 *   back once.
 */
import { afterEach, describe, expect, test } from 'vitest'
import { spawn } from 'node:child_process'
import { Kafka, logLevel } from 'kafkajs'
import { Producer, stringSerializers } from '@platformatic/kafka'
import { startBroker, type BrokerProcess } from '../helpers/broker.js'
import { createTopic, listOffset, readPartition, recordsOf, withClient } from '../helpers/kafka.js'
import { KCAT, kcat } from '../helpers/kcat.js'
import { startProxy, type TcpProxy } from '../helpers/tcp-proxy.js'
import { waitFor } from '../helpers/wait.js'
import { loggedErrors } from '../helpers/broker-log.js'

const PRODUCE = 0

let brokers: BrokerProcess[] = []
let proxy: TcpProxy | null = null
afterEach(async () => {
  await proxy?.close()
  proxy = null
  for (const broker of brokers) {
    await broker.stop()
    broker.cleanup()
  }
  brokers = []
})

/** The end offsets of a topic's partitions. */
async function endOffsets(broker: BrokerProcess, topic: string, partitions: number): Promise<bigint[]> {
  return withClient(broker, async (client) => {
    const ends: bigint[] = []
    for (let p = 0; p < partitions; p++) ends.push((await listOffset(client, topic, p, -1n)).offset)
    return ends
  })
}

describe('idempotent producers', () => {
  test('kcat -X enable.idempotence=true: 100,000 records across kill -9 and a restart, none lost, none twice', async () => {
    let broker = await startBroker()
    brokers.push(broker)
    await createTopic(broker, 'idem-kcat', { partitions: 3 })
    const total = 100_000
    const lines = Array.from({ length: total }, (_, i) => `r${String(i).padStart(6, '0')}`)
    const producer = spawn(KCAT, ['-P', '-E', '-b', broker.address, '-t', 'idem-kcat', '-X', 'enable.idempotence=true', '-X', 'linger.ms=5'], {
      stdio: ['pipe', 'ignore', 'pipe'],
    })
    let stderr = ''
    producer.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    const exited = new Promise<number | null>((resolve) => producer.once('close', resolve))
    producer.stdin.on('error', () => undefined)
    producer.stdin.write(lines.slice(0, total / 2).join('\n') + '\n')
    // Killed while the first half is still being written: some batches are in flight, written or not.
    await waitFor('part of the first half to be written', async () => {
      const written = (await endOffsets(broker, 'idem-kcat', 3)).reduce((a, b) => a + b, 0n)
      return written >= 10_000n
    })
    await broker.kill()
    const before = broker
    broker = await before.restart()
    brokers = [broker]
    producer.stdin.end(lines.slice(total / 2).join('\n') + '\n')
    expect(await exited, stderr).toBe(0)

    const { stdout } = await kcat(['-C', '-b', broker.address, '-t', 'idem-kcat', '-e', '-q'], { timeoutMs: 120_000 })
    const read = stdout.split('\n').filter((line) => line !== '')
    const counts = new Map<string, number>()
    for (const value of read) counts.set(value, (counts.get(value) ?? 0) + 1)
    expect([...counts].filter(([, n]) => n > 1), 'records written twice').toEqual([])
    expect(lines.filter((line) => !counts.has(line)), 'records lost').toEqual([])
    expect(read.length).toBe(total)
    // Every stored batch came from the idempotent producer: it carries a producer id.
    await withClient(broker, async (client) => {
      for (let p = 0; p < 3; p++) {
        const { batches } = await readPartition(client, 'idem-kcat', p)
        expect(batches.every((b) => b.header.producerId >= 0n)).toBe(true)
      }
    })
    expect(loggedErrors(before)).toEqual([])
  }, 240_000)

  test('kafkajs: a produce answer lost on the way back is retried, and the retry is not written again', async () => {
    // The broker listens on 127.0.0.2 and advertises 127.0.0.1, where the proxy listens with the same port. The group
    // of the reader at the end, its only member, forms at once.
    const broker = await startBroker({ args: ['--host', '127.0.0.2', '--advertised-host', '127.0.0.1', '--group-initial-rebalance-delay-ms', '0'] })
    brokers.push(broker)
    proxy = await startProxy({ listenHost: '127.0.0.1', targetHost: '127.0.0.2', port: broker.port })
    const kafka = new Kafka({ clientId: 'idem-kafkajs', brokers: [`127.0.0.1:${broker.port}`], logLevel: logLevel.NOTHING, retry: { initialRetryTime: 50, retries: 8 } })
    const admin = kafka.admin()
    await admin.connect()
    await admin.createTopics({ topics: [{ topic: 'idem-kafkajs', numPartitions: 1 }] })
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
    await producer.connect()
    const sent: string[] = []
    const offsets: string[] = []
    try {
      for (let i = 0; i < 40; i++) {
        if (i === 10 || i === 25) proxy.dropNextAnswer(PRODUCE)
        const value = `m${i}`
        const [result] = await producer.send({ topic: 'idem-kafkajs', messages: [{ value }] })
        sent.push(value)
        offsets.push(result!.baseOffset!)
      }
    } finally {
      await producer.disconnect()
    }
    expect(proxy.dropped).toBe(2)
    // Each lost answer made kafkajs send the same batch again.
    expect(proxy.requests.get(PRODUCE)).toBe(42)
    // The retries were answered with the offsets of the batches they repeated.
    expect(offsets).toEqual(sent.map((_, i) => String(i)))

    const consumer = kafka.consumer({ groupId: 'idem-reader', maxWaitTimeInMs: 200 })
    const read: string[] = []
    await consumer.connect()
    await consumer.subscribe({ topic: 'idem-kafkajs', fromBeginning: true })
    await consumer.run({ eachMessage: async ({ message }) => void read.push(message.value!.toString()) })
    await waitFor('every record to be read', () => read.length >= sent.length)
    await consumer.disconnect()
    await admin.disconnect()
    expect(read).toEqual(sent)
    expect(await endOffsets(broker, 'idem-kafkajs', 1)).toEqual([40n])
  }, 120_000)

  test('@platformatic/kafka: idempotent batches carry a producer id and consecutive sequences, and read back once', async () => {
    const broker = await startBroker()
    brokers.push(broker)
    await createTopic(broker, 'idem-plt', { partitions: 1 })
    const producer = new Producer({ clientId: 'idem-plt', bootstrapBrokers: [broker.address], serializers: stringSerializers, idempotent: true })
    try {
      for (let round = 0; round < 5; round++) {
        await producer.send({ messages: Array.from({ length: 3 }, (_, i) => ({ topic: 'idem-plt', value: `v${round * 3 + i}`, partition: 0 })) })
      }
    } finally {
      await producer.close()
    }
    await withClient(broker, async (client) => {
      const { batches } = await readPartition(client, 'idem-plt', 0)
      const producerIds = new Set(batches.map((b) => b.header.producerId))
      expect(producerIds.size).toBe(1)
      expect([...producerIds][0]! >= 0n).toBe(true)
      expect(batches.map((b) => b.header.baseSequence)).toEqual(batches.map((_, i) => i * 3))
      expect(recordsOf(batches).map((r) => r.value!.toString())).toEqual(Array.from({ length: 15 }, (_, i) => `v${i}`))
    })
  }, 60_000)
})
