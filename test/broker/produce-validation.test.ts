/**
 * Produce validates what it stores, as Kafka's LogValidator does: every kind of malformed batch, sent by a raw
 * client (no client library would send them), built by hand with a valid CRC so that only the intended damage is
 * present (test/helpers/wire.ts), gets Kafka's error code, and nothing of it is stored: the next good batch gets the
 * next offset, and at the end kcat and kafkajs read the partition cleanly. Timestamps outside a topic's bounds are
 * refused for a real kafkajs producer. Compressed payloads come from the codec libraries, not from Brook.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { gzipSync } from 'node:zlib'
import snappy from 'snappy'
import lz4 from 'lz4-napi'
import { ConfigResourceTypes, Kafka, logLevel } from 'kafkajs'
import { startConfiguredBroker, FAST_GROUPS } from '../helpers/broker-config.js'
import { startBroker, type BrokerProcess } from '../helpers/broker.js'
import { loggedErrors } from '../helpers/broker-log.js'
import { createTopic, producePartition, readPartition, withClient } from '../helpers/kafka.js'
import { kcat } from '../helpers/kcat.js'
import {
  RawConnection,
  batchBytes,
  handBuiltBatch,
  produceBody,
  produceResponseV8,
  recordBytes,
  requestFrame,
  type ProduceAnswerV8,
} from '../helpers/wire.js'

// Kafka's codes (Errors.java).
const CORRUPT_MESSAGE = 2
const MESSAGE_TOO_LARGE = 10
const INVALID_TIMESTAMP = 32
const INVALID_RECORD = 87
const CODECS = { gzip: 1, snappy: 2, lz4: 3, zstd: 4 } as const

const TOPIC = 'checked'

/** Three well-formed records' bytes, numbered from `first` in their values. */
const three = (first = 0): Buffer =>
  Buffer.concat([0, 1, 2].map((i) => recordBytes({ offsetDelta: i, value: Buffer.from(`bad-${first + i}`) })))

/** A record body after its length byte: attributes, timestampDelta 0, offsetDelta 0, then `rest`. */
const lyingRecord = (rest: number[], length?: number): Buffer => {
  const body = Buffer.from([0, 0, 0, ...rest])
  return Buffer.concat([Buffer.from([(length ?? body.length) * 2]), body])
}

const now = (): bigint => BigInt(Date.now())
const plainBatch = (records: Buffer, count: number, lastOffsetDelta?: number): Buffer =>
  batchBytes({ records, count, lastOffsetDelta, baseTimestamp: now() })
const codecBatch = (codec: number, payload: Buffer, count: number): Buffer =>
  batchBytes({ records: payload, count, attributes: codec, baseTimestamp: now() })

describe('produce validates the records it stores', () => {
  let broker: BrokerProcess
  let raw: RawConnection
  let correlationId = 0
  /** Records stored in TOPIC so far: the offset the next good batch must get. */
  let stored = 0n
  /** The values of the good records, in offset order. */
  const good: string[] = []

  beforeAll(async () => {
    broker = await startConfiguredBroker(FAST_GROUPS)
    await createTopic(broker, TOPIC)
    await createTopic(broker, 'compacted', { configs: { 'cleanup.policy': 'compact' } })
    await createTopic(broker, 'bounded', { configs: { 'message.timestamp.before.max.ms': '60000', 'message.timestamp.after.max.ms': '60000' } })
    // Batches of up to 9 MB, so up to 288 MB inflated: above what the zstd compressor takes at once (256 MiB).
    await createTopic(broker, 'zstd-large', { configs: { 'compression.type': 'zstd', 'max.message.bytes': '9000000' } })
    raw = await RawConnection.open(broker.port)
  })
  afterAll(async () => {
    raw?.destroy()
    await broker?.stop()
    expect(loggedErrors(broker)).toEqual([])
    broker?.cleanup()
  })

  /** Produce v8 (which carries recordErrors) on the raw connection; the partition's answer, waited for up to `timeoutMs`. */
  async function produceV8(records: Buffer, topic = TOPIC, timeoutMs?: number): Promise<ProduceAnswerV8> {
    const id = ++correlationId
    raw.send(requestFrame({ apiKey: 0, apiVersion: 8, correlationId: id }, produceBody(topic, 0, records)))
    const answer = produceResponseV8(await raw.nextFrame(timeoutMs))
    expect(answer.correlationId).toBe(id)
    return answer
  }

  /** A good batch after a bad one gets the next offset: the bad one moved nothing. */
  async function expectNothingStored(): Promise<void> {
    const value = `good-${good.length}`
    const answer = await produceV8(handBuiltBatch([value], { timestamp: now() }))
    expect(answer).toMatchObject({ errorCode: 0, baseOffset: stored })
    stored += 1n
    good.push(value)
  }

  const kinds: [string, () => Buffer, number][] = [
    ['2^31-1 records declared, 3 held', () => plainBatch(three(), 2147483647), INVALID_RECORD],
    ['1 record declared, 3 held (they would overlap the next batch)', () => plainBatch(three(), 1), INVALID_RECORD],
    ['a byte after the last record', () => plainBatch(Buffer.concat([three(), Buffer.from([0])]), 3), INVALID_RECORD],
    ['a record length beyond the batch', () => plainBatch(lyingRecord([1, 1, 0], 60), 1), INVALID_RECORD],
    ['a record length shorter than its fields', () => plainBatch(lyingRecord([1, 1, 0], 5), 1), INVALID_RECORD],
    ['a key length of -2', () => plainBatch(lyingRecord([3, 1, 0]), 1), INVALID_RECORD],
    ['a value length beyond the record', () => plainBatch(lyingRecord([1, 0x14, 0]), 1), INVALID_RECORD],
    ['a header count of -1', () => plainBatch(lyingRecord([1, 1, 1]), 1), INVALID_RECORD],
    ['a null header key', () => plainBatch(lyingRecord([1, 1, 2, 1, 1]), 1), INVALID_RECORD],
    ['a length varint of six bytes', () => plainBatch(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0, 0, 0, 1, 1, 0]), 1), INVALID_RECORD],
    ['records of 0xff bytes', () => plainBatch(Buffer.alloc(300, 0xff), 3), INVALID_RECORD],
    ...(['gzip', 'snappy', 'lz4', 'zstd'] as const).map((codec): [string, () => Buffer, number] => [`a ${codec} flag on bytes that are not compressed`, () => codecBatch(CODECS[codec], three(), 3), CORRUPT_MESSAGE]),
    ['truncated gzip', () => codecBatch(CODECS.gzip, gzipSync(three()).subarray(0, 20), 3), CORRUPT_MESSAGE],
    ['truncated snappy', () => codecBatch(CODECS.snappy, (snappy.compressSync(three()) as Buffer).subarray(0, 20), 3), CORRUPT_MESSAGE],
    ['truncated lz4', () => codecBatch(CODECS.lz4, lz4.compressFrameSync(three()).subarray(0, 20), 3), CORRUPT_MESSAGE],
    ['nested compression (gzip around gzipped records)', () => codecBatch(CODECS.gzip, gzipSync(gzipSync(three())), 3), INVALID_RECORD],
    ['a producer setting LogAppendTime', () => batchBytes({ records: three(), count: 3, attributes: 0x08, baseTimestamp: now() }), INVALID_TIMESTAMP],
  ]

  it.each(kinds)('%s: refused, nothing stored', async (_, build, errorCode) => {
    const answer = await produceV8(build())
    expect(answer).toMatchObject({ errorCode, baseOffset: -1n })
    expect(answer.errorMessage).toBeTruthy()
    await expectNothingStored()
  })

  it('offsetDeltas that repeat or skip: INVALID_RECORD with each bad record in recordErrors, nothing stored', async () => {
    const records = Buffer.concat([0, 0, 2, 7].map((offsetDelta) => recordBytes({ offsetDelta, value: Buffer.from('x') })))
    const answer = await produceV8(plainBatch(records, 4))
    expect(answer).toMatchObject({ errorCode: INVALID_RECORD })
    expect(answer.recordErrors.map((e) => e.batchIndex)).toEqual([1, 3])
    await expectNothingStored()
  })

  it('a gzip bomb within max.message.bytes that inflates past 32x it: MESSAGE_TOO_LARGE, nothing stored', async () => {
    // 40 MiB of well-formed records (1 MiB values of zeros) in about 40 KB.
    const big = Buffer.concat(Array.from({ length: 40 }, (_, i) => recordBytes({ offsetDelta: i, value: Buffer.alloc(1024 * 1024) })))
    const bomb = codecBatch(CODECS.gzip, gzipSync(big), 40)
    expect(bomb.length).toBeLessThan(1048588)
    expect(await produceV8(bomb)).toMatchObject({ errorCode: MESSAGE_TOO_LARGE })
    await expectNothingStored()
  })

  it('a zstd topic refuses a batch inflating past what its compressor takes at once (256 MiB) with MESSAGE_TOO_LARGE, and stores the next one', async () => {
    // 257 MiB of well-formed records (1 MiB values of zeros) in about 260 KB of gzip: within the topic's 32x bound
    // (288 MB), above ZSTD_MAX_INPUT_BYTES, so the refusal comes from the recompression into zstd, in a batch worker.
    const big = Buffer.concat(Array.from({ length: 257 }, (_, i) => recordBytes({ offsetDelta: i, value: Buffer.alloc(1024 * 1024) })))
    // Inflating and checking 257 MiB takes the broker a few seconds, and many more on a machine loaded with other work.
    const answer = await produceV8(codecBatch(CODECS.gzip, gzipSync(big), 257), 'zstd-large', 90_000)
    expect(answer).toMatchObject({ errorCode: MESSAGE_TOO_LARGE, baseOffset: -1n })
    expect(answer.errorMessage).toContain('zstd')
    expect(await produceV8(handBuiltBatch(['after-large'], { timestamp: now() }), 'zstd-large')).toMatchObject({ errorCode: 0, baseOffset: 0n })
    await withClient(broker, async (client) => {
      const { batches } = await readPartition(client, 'zstd-large', 0)
      expect(batches.map((b) => [b.header.baseOffset, b.header.attributes & 0x07])).toEqual([[0n, CODECS.zstd]])
    })
  })

  it('a compacted topic refuses keyless records, listing them in recordErrors', async () => {
    const records = Buffer.concat([recordBytes({ offsetDelta: 0, key: Buffer.from('k'), value: Buffer.from('v') }), recordBytes({ offsetDelta: 1, value: Buffer.from('v') })])
    const answer = await produceV8(plainBatch(records, 2), 'compacted')
    expect(answer).toMatchObject({ errorCode: INVALID_RECORD, recordErrors: [{ batchIndex: 1, message: 'a compacted topic cannot accept a record without a key' }] })
  })

  it('stores the largest record timestamp as maxTimestamp, whatever the producer wrote', async () => {
    const base = now()
    const records = Buffer.concat([recordBytes({ offsetDelta: 0, timestampDelta: 7, value: Buffer.from('good-ts-0') }), recordBytes({ offsetDelta: 1, value: Buffer.from('good-ts-1') })])
    const answer = await produceV8(batchBytes({ records, count: 2, baseTimestamp: base, maxTimestamp: 0n }))
    expect(answer).toMatchObject({ errorCode: 0, baseOffset: stored })
    stored += 2n
    good.push('good-ts-0', 'good-ts-1')
    await withClient(broker, async (client) => {
      const { batches } = await readPartition(client, TOPIC, 0)
      expect(batches.at(-1)!.header.maxTimestamp).toBe(base + 7n)
    })
  })

  it('keeps the order of pipelined produces to one partition, whichever is checked in a worker', async () => {
    // The first inflates to ~2 MB and is checked in the worker pool; the second is walked at once, yet must not
    // overtake it.
    const values = Array.from({ length: 2000 }, (_, i) => `big-${i}-${'x'.repeat(1000)}`)
    const big = codecBatch(CODECS.gzip, gzipSync(Buffer.concat(values.map((v, i) => recordBytes({ offsetDelta: i, value: Buffer.from(v) })))), values.length)
    const ids = [++correlationId, ++correlationId]
    raw.send(Buffer.concat([
      requestFrame({ apiKey: 0, apiVersion: 8, correlationId: ids[0]! }, produceBody(TOPIC, 0, big)),
      requestFrame({ apiKey: 0, apiVersion: 8, correlationId: ids[1]! }, produceBody(TOPIC, 0, handBuiltBatch(['after-big'], { timestamp: now() }))),
    ]))
    expect(produceResponseV8(await raw.nextFrame())).toMatchObject({ correlationId: ids[0], errorCode: 0, baseOffset: stored })
    expect(produceResponseV8(await raw.nextFrame())).toMatchObject({ correlationId: ids[1], errorCode: 0, baseOffset: stored + 2000n })
    stored += 2001n
    good.push(...values, 'after-big')
  })

  it('kafkajs: a record timestamped outside the topic\'s bounds is INVALID_TIMESTAMP; inside them it is stored', async () => {
    const kafka = new Kafka({ clientId: 'timestamps', brokers: [broker.address], logLevel: logLevel.NOTHING, retry: { retries: 0 } })
    const producer = kafka.producer()
    await producer.connect()
    try {
      for (const offsetMs of [-3_600_000, 3_600_000]) {
        await expect(producer.send({ topic: 'bounded', messages: [{ value: 'skewed', timestamp: String(Date.now() + offsetMs) }] })).rejects.toMatchObject({
          type: 'INVALID_TIMESTAMP',
        })
      }
      const [sent] = await producer.send({ topic: 'bounded', messages: [{ value: 'on time', timestamp: String(Date.now() - 5_000) }] })
      expect(sent).toMatchObject({ errorCode: 0, baseOffset: '0' })
    } finally {
      await producer.disconnect()
    }
  })

  it("by default (Kafka 4's message.timestamp.after.max.ms, one hour) kafkajs may not produce two hours ahead", async () => {
    const kafka = new Kafka({ clientId: 'ahead', brokers: [broker.address], logLevel: logLevel.NOTHING, retry: { retries: 0 } })
    const producer = kafka.producer()
    await producer.connect()
    try {
      await expect(producer.send({ topic: TOPIC, messages: [{ value: 'ahead', timestamp: String(Date.now() + 7_200_000) }] })).rejects.toMatchObject({ type: 'INVALID_TIMESTAMP' })
      const value = 'half an hour ahead'
      const [sent] = await producer.send({ topic: TOPIC, messages: [{ partition: 0, value, timestamp: String(Date.now() + 1_800_000) }] })
      expect(sent).toMatchObject({ errorCode: 0, baseOffset: String(stored) })
      stored += 1n
      good.push(value)
    } finally {
      await producer.disconnect()
    }
  })

  it('kcat and a kafkajs consumer then read the partition cleanly: every good record, in order', async () => {
    expect(good).toHaveLength(Number(stored))
    const { stdout } = await kcat(['-b', broker.address, '-C', '-t', TOPIC, '-p', '0', '-e', '-q', '-f', '%o %s\n'])
    expect(stdout.trim().split('\n')).toEqual(good.map((value, offset) => `${offset} ${value}`))

    const kafka = new Kafka({ clientId: 'reader', brokers: [broker.address], logLevel: logLevel.NOTHING })
    const consumer = kafka.consumer({ groupId: 'reader', maxWaitTimeInMs: 200 })
    await consumer.connect()
    try {
      await consumer.subscribe({ topic: TOPIC, fromBeginning: true })
      const read: string[] = []
      await new Promise<void>((resolve, reject) => {
        consumer
          .run({
            eachMessage: async ({ message }) => {
              expect(message.offset).toBe(String(read.length))
              read.push(message.value!.toString())
              if (read.length === good.length) resolve()
            },
          })
          .catch(reject)
      })
      expect(read).toEqual(good)
    } finally {
      await consumer.disconnect()
    }
  })
})

describe('the settings', () => {
  it('--log-message-timestamp-after-max-ms is the default of the topic config, which DescribeConfigs shows', async () => {
    const broker = await startBroker({ args: ['--log-message-timestamp-after-max-ms', '1000'] })
    const kafka = new Kafka({ clientId: 'settings', brokers: [broker.address], logLevel: logLevel.NOTHING, retry: { retries: 0 } })
    const admin = kafka.admin()
    const producer = kafka.producer()
    try {
      await admin.connect()
      await producer.connect()
      await admin.createTopics({ topics: [{ topic: 'strict' }] })
      const described = await admin.describeConfigs({
        resources: [{ type: ConfigResourceTypes.TOPIC, name: 'strict', configNames: ['message.timestamp.after.max.ms', 'message.timestamp.before.max.ms'] }],
        includeSynonyms: false,
      })
      expect(described.resources[0]!.configEntries.map((e) => [e.configName, e.configValue, e.configSource])).toEqual([
        ['message.timestamp.after.max.ms', '1000', 4], // STATIC_BROKER_CONFIG
        ['message.timestamp.before.max.ms', '9223372036854775807', 5], // DEFAULT_CONFIG: Kafka's Long.MAX_VALUE
      ])
      // The broker's own configs: the one set is STATIC_BROKER_CONFIG, one left at its default DEFAULT_CONFIG, as
      // Kafka describes an unset broker config; neither read-only, as topic configs' defaults are dynamic broker configs
      // (test/broker/dynamic-broker-configs.test.ts).
      const node = await admin.describeConfigs({
        resources: [{ type: ConfigResourceTypes.BROKER, name: '1', configNames: ['log.message.timestamp.after.max.ms', 'message.max.bytes'] }],
        includeSynonyms: true,
      })
      const entries = node.resources[0]!.configEntries.map((e) => [e.configName, e.configValue, e.configSource, e.isDefault, e.readOnly, e.configSynonyms.map((s) => s.configSource)])
      expect(entries.sort((a, b) => String(a[0]).localeCompare(String(b[0])))).toEqual([
        ['log.message.timestamp.after.max.ms', '1000', 4, false, false, [4, 5]],
        ['message.max.bytes', '1048588', 5, true, false, [5]],
      ])
      await expect(producer.send({ topic: 'strict', messages: [{ value: 'ahead', timestamp: String(Date.now() + 60_000) }] })).rejects.toMatchObject({ type: 'INVALID_TIMESTAMP' })
    } finally {
      await producer.disconnect()
      await admin.disconnect()
      await broker.stop()
      broker.cleanup()
    }
  })

  it('--no-record-validation checks only batch headers, except on compacted topics and those that recompress', async () => {
    const broker = await startBroker({ args: ['--no-record-validation'] })
    try {
      await createTopic(broker, 'trusted')
      await createTopic(broker, 'keyed', { configs: { 'cleanup.policy': 'compact' } })
      await createTopic(broker, 'rebuilt', { configs: { 'compression.type': 'gzip' } })
      await withClient(broker, async (client) => {
        const garbage = plainBatch(Buffer.alloc(300, 0xff), 3)
        expect(await producePartition(client, 'trusted', 0, garbage)).toMatchObject({ errorCode: 0 })
        const keyless = plainBatch(three(), 3)
        expect(await producePartition(client, 'keyed', 0, keyless)).toMatchObject({ errorCode: INVALID_RECORD })
        // A topic whose compression.type rebuilds the batch reads every record, as LogValidator does: records that
        // do not hold up are the producer's INVALID_RECORD, and a payload that does not inflate its CORRUPT_MESSAGE,
        // not a failure of the node's.
        expect(await producePartition(client, 'rebuilt', 0, garbage)).toMatchObject({ errorCode: INVALID_RECORD })
        expect(await producePartition(client, 'rebuilt', 0, codecBatch(CODECS.snappy, three(), 3))).toMatchObject({ errorCode: CORRUPT_MESSAGE })
        expect(await producePartition(client, 'rebuilt', 0, plainBatch(three(), 3))).toMatchObject({ errorCode: 0, baseOffset: 0n })
        // The header is still checked: a bad CRC is refused.
        garbage[garbage.length - 1] ^= 1
        expect(await producePartition(client, 'trusted', 0, garbage)).toMatchObject({ errorCode: CORRUPT_MESSAGE })
      })
      expect(loggedErrors(broker)).toEqual([])
    } finally {
      await broker.stop()
      broker.cleanup()
    }
  })
})
