/**
 * ListOffsets by timestamp through the time index, as real clients see it: kafkajs fetchTopicOffsetsByTimestamp,
 * kcat `-o s@<ms>` and @platformatic/kafka's listOffsets with MAX_TIMESTAMP (-3, KIP-734), on a log of many index
 * blocks whose timestamps run out of order inside and across batches, after DeleteRecords moved the log start into a
 * batch, and after a kill -9 and a restart. Each answer is checked against the records as they were produced:
 * the first record at or above the log start whose timestamp is >= the target, or, for MAX_TIMESTAMP, the first
 * record with the largest timestamp.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Kafka, logLevel, type Admin, type Producer } from 'kafkajs'
import { Admin as PlatformaticAdmin } from '@platformatic/kafka'
import { startBroker, type BrokerProcess } from '../helpers/broker.js'
import { kcat } from '../helpers/kcat.js'

const TOPIC = 'sensor-readings'
const BATCHES = 120
const PER_BATCH = 10
const BASE = 1_700_000_000_000

interface Produced {
  offset: bigint
  timestamp: number
}

describe('ListOffsets by timestamp on a long log, with real clients', () => {
  let broker: BrokerProcess
  let kafka: Kafka
  let admin: Admin
  let producer: Producer
  const records: Produced[] = []
  let logStart = 0n

  async function connect(): Promise<void> {
    kafka = new Kafka({ clientId: 'list-offsets', brokers: [broker.address], logLevel: logLevel.NOTHING })
    admin = kafka.admin()
    producer = kafka.producer()
    await admin.connect()
    await producer.connect()
  }

  async function disconnect(): Promise<void> {
    await producer?.disconnect()
    await admin?.disconnect()
  }

  beforeAll(async () => {
    broker = await startBroker()
    await connect()
    await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: 1 }] })
    let seed = 3
    const next = (): number => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648
    for (let b = 0; b < BATCHES; b++) {
      // A reading every second or so, stamped by sensors whose clocks disagree by up to a minute either way.
      const timestamps = Array.from({ length: PER_BATCH }, (_, i) => BASE + (b * PER_BATCH + i) * 1000 + Math.round((next() - 0.5) * 120_000))
      const [sent] = await producer.send({
        topic: TOPIC,
        messages: timestamps.map((timestamp, i) => ({ key: `sensor-${i}`, value: `${b}/${i}`.padEnd(300, '.'), timestamp: String(timestamp) })),
      })
      const base = BigInt(sent!.baseOffset!)
      timestamps.forEach((timestamp, i) => records.push({ offset: base + BigInt(i), timestamp }))
    }
  })
  afterAll(async () => {
    await disconnect()
    await broker?.stop()
    broker?.cleanup()
  })

  /** The reference answer: the first record at or above the log start stamped at or after `timestamp`. */
  function firstAtOrAfter(timestamp: number): Produced | undefined {
    return records.find((r) => r.offset >= logStart && r.timestamp >= timestamp)
  }

  /** Targets between and around the produced timestamps, and past the last one. */
  function probes(): number[] {
    const sorted = records.map((r) => r.timestamp).sort((a, b) => a - b)
    return [BASE - 200_000, ...Array.from({ length: 25 }, (_, i) => sorted[Math.floor((i * sorted.length) / 25)]! + (i % 3) - 1), sorted.at(-1)! + 1]
  }

  async function expectAnswers(): Promise<void> {
    const end = BigInt(records.length)
    for (const timestamp of probes()) {
      const [answer] = await admin.fetchTopicOffsetsByTimestamp(TOPIC, timestamp)
      // Kafka answers -1 when no record is that late, and kafkajs turns that into the high watermark.
      expect(answer, `kafkajs at ${timestamp}`).toEqual({ partition: 0, offset: String(firstAtOrAfter(timestamp)?.offset ?? end) })
    }
    for (const timestamp of probes().filter((t) => firstAtOrAfter(t) !== undefined).slice(0, 8)) {
      const { stdout } = await kcat(['-b', broker.address, '-C', '-t', TOPIC, '-p', '0', '-o', `s@${timestamp}`, '-c', '1', '-e', '-q', '-f', '%o %T\n'])
      const expected = firstAtOrAfter(timestamp)!
      expect(stdout, `kcat at ${timestamp}`).toBe(`${expected.offset} ${expected.timestamp}\n`)
    }
    const platformatic = new PlatformaticAdmin({ clientId: 'list-offsets-max', bootstrapBrokers: [broker.address] })
    try {
      const [topic] = await platformatic.listOffsets({ topics: [{ name: TOPIC, partitions: [{ partitionIndex: 0, timestamp: -3n }] }] })
      const readable = records.filter((r) => r.offset >= logStart)
      const largest = readable.reduce((best, r) => (r.timestamp > best.timestamp ? r : best))
      expect(topic!.partitions[0]).toMatchObject({ offset: largest.offset, timestamp: BigInt(largest.timestamp) })
    } finally {
      await platformatic.close()
    }
  }

  it('answers by record, not by batch, from the first record on', async () => {
    await expectAnswers()
  })

  it('answers at or above a log start that DeleteRecords moved into a batch', async () => {
    logStart = BigInt((BATCHES / 3) * PER_BATCH + 4)
    await admin.deleteTopicRecords({ topic: TOPIC, partitions: [{ partition: 0, offset: String(logStart) }] })
    await expectAnswers()
  })

  it('answers the same after kill -9 and a restart', async () => {
    await disconnect()
    await broker.kill()
    broker = await broker.restart()
    await connect()
    await expectAnswers()
  })
})
