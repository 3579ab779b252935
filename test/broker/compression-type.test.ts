/**
 * A topic's compression.type (Kafka's LogValidator recompresses a batch whose codec is not the topic's): against a
 * broker process, with kcat (librdkafka 2.0.2) and kafkajs producing and consuming, and Brook's wire client reading
 * the stored batches' codec bits. Every record, key, header and timestamp survives the rebuild, an idempotent
 * producer's retry of a rebuilt batch is still found as a duplicate, a batch that outgrows max.message.bytes once
 * rebuilt is MESSAGE_TOO_LARGE, batches are recompressed off the event loop (another client's request is answered
 * meanwhile), zstd is written at compression.zstd.level and refused to consumers below Fetch v10, and an unknown name
 * is INVALID_CONFIG.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CompressionTypes, type Admin, type Kafka } from 'kafkajs'
import type { BrokerProcess } from '../helpers/broker.js'
import { startKafkajsBroker, stopKafkajsBroker, type KafkajsBroker } from '../helpers/kafkajs-broker.js'
import { createTopic, fetchPartition, producePartition, readPartition, recordsOf, withClient } from '../helpers/kafka.js'
import { kcat } from '../helpers/kcat.js'
import { encodeRecordBatch } from '../../protocol/record-batch.js'
import { Compression } from '../../protocol/compression.js'
import { ErrorCode } from '../../protocol/errors.js'
import { initProducerId, type InitProducerIdRequest, type InitProducerIdResponse } from '../../protocol/messages/init-producer-id.js'
import { produce, type ProduceRequest, type ProduceResponse } from '../../protocol/messages/produce.js'
import { apiVersions, type ApiVersionsRequest, type ApiVersionsResponse } from '../../protocol/messages/api-versions.js'
import { batchBytes, recordBytes } from '../helpers/wire.js'
import { seededBelow } from '../helpers/random.js'
import { loggedErrors } from '../helpers/broker-log.js'

const codecOf = (attributes: number): number => attributes & 0x07

describe('compression.type on a topic', () => {
  let setting: KafkajsBroker
  let broker: BrokerProcess
  let kafka: Kafka
  let admin: Admin
  beforeAll(async () => {
    setting = await startKafkajsBroker({}, { clientId: 'compression-type', retry: { retries: 2 } })
    ;({ broker, kafka, admin } = setting)
  })
  afterAll(async () => {
    await stopKafkajsBroker(setting)
  })

  it('gzip: kcat\'s snappy batches are stored gzip, and kcat and kafkajs read every line back', async () => {
    const topic = 'ct-gzip'
    await createTopic(broker, topic, { configs: { 'compression.type': 'gzip', 'compression.gzip.level': '9' } })
    const lines = Array.from({ length: 2000 }, (_, i) => `key-${i}\treading ${i} ${'temperature '.repeat(3)}`)
    await kcat(['-b', broker.address, '-P', '-t', topic, '-K', '\t', '-z', 'snappy'], { input: `${lines.join('\n')}\n` })
    await withClient(broker, async (client) => {
      const { batches } = await readPartition(client, topic, 0)
      expect(batches.length).toBeGreaterThan(0)
      expect(batches.map((b) => codecOf(b.header.attributes)).filter((codec) => codec !== Compression.gzip)).toEqual([])
      expect(recordsOf(batches).map((r) => `${r.key}\t${r.value}`)).toEqual(lines)
    })
    const { stdout } = await kcat(['-b', broker.address, '-C', '-t', topic, '-e', '-q', '-f', '%k\t%s\n'])
    expect(stdout.split('\n').filter(Boolean)).toEqual(lines)
    const consumer = kafka.consumer({ groupId: 'ct-gzip-reader', maxWaitTimeInMs: 100 })
    const read: string[] = []
    await consumer.connect()
    try {
      await consumer.subscribe({ topic, fromBeginning: true })
      await consumer.run({ eachMessage: async ({ message }) => void read.push(`${message.key}\t${message.value}`) })
      const deadline = Date.now() + 20_000
      while (read.length < lines.length && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100))
    } finally {
      await consumer.disconnect()
    }
    expect(read).toEqual(lines)
  })

  it('lz4: a kafkajs idempotent producer\'s batches keep their producer fields, keys, headers and timestamps', async () => {
    const topic = 'ct-lz4'
    await createTopic(broker, topic, { configs: { 'compression.type': 'lz4' } })
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
    await producer.connect()
    const sent = Array.from({ length: 50 }, (_, i) => ({ key: `d${i % 5}`, value: `v${i}`, headers: { unit: 'C', seq: String(i) }, timestamp: String(1_700_000_000_000 + i * 1000) }))
    try {
      for (let i = 0; i < sent.length; i += 10) await producer.send({ topic, acks: -1, messages: sent.slice(i, i + 10) })
    } finally {
      await producer.disconnect()
    }
    await withClient(broker, async (client) => {
      const { batches } = await readPartition(client, topic, 0)
      expect(batches).toHaveLength(5)
      for (const [n, batch] of batches.entries()) {
        expect(codecOf(batch.header.attributes)).toBe(Compression.lz4)
        expect(batch.header.producerId).toBeGreaterThanOrEqual(0n)
        expect(batch.header.baseSequence).toBe(n * 10)
      }
      const records = recordsOf(batches)
      expect(records.map((r) => ({ key: r.key!.toString(), value: r.value!.toString(), headers: Object.fromEntries(r.headers.map((h) => [h.key, h.value!.toString()])), timestamp: String(r.timestamp) }))).toEqual(sent)
      expect(records.map((r) => r.offset)).toEqual(sent.map((_, i) => BigInt(i)))
    })
  })

  it('a retry of a rebuilt idempotent batch is answered as the duplicate it is, with its first offset', async () => {
    const topic = 'ct-retry'
    await createTopic(broker, topic, { configs: { 'compression.type': 'gzip' } })
    await withClient(broker, async (client) => {
      const { producerId, producerEpoch } = await client.request<InitProducerIdRequest, InitProducerIdResponse>(initProducerId, 4, { transactionalId: null, transactionTimeoutMs: 60_000, producerId: -1n, producerEpoch: -1 })
      const batch = (sequence: number, tag: string) => encodeRecordBatch(Array.from({ length: 3 }, (_, i) => ({ value: Buffer.from(`${tag}-${i}`) })), { producerId, producerEpoch, baseSequence: sequence })
      const first = await producePartition(client, topic, 0, batch(0, 'a'))
      const second = await producePartition(client, topic, 0, batch(3, 'b'))
      const retry = await producePartition(client, topic, 0, batch(0, 'a'))
      expect([first.errorCode, second.errorCode, retry.errorCode]).toEqual([ErrorCode.NONE, ErrorCode.NONE, ErrorCode.NONE])
      expect([first.baseOffset, second.baseOffset, retry.baseOffset]).toEqual([0n, 3n, 0n])
      const { batches } = await readPartition(client, topic, 0)
      expect(batches.map((b) => codecOf(b.header.attributes))).toEqual([Compression.gzip, Compression.gzip])
      expect(recordsOf(batches).map((r) => r.value!.toString())).toEqual(['a-0', 'a-1', 'a-2', 'b-0', 'b-1', 'b-2'])
    })
  })

  it('uncompressed: kafkajs gzip batches are stored uncompressed, and one that outgrows max.message.bytes is MESSAGE_TOO_LARGE', async () => {
    const topic = 'ct-none'
    await createTopic(broker, topic, { configs: { 'compression.type': 'uncompressed', 'max.message.bytes': '4000' } })
    const producer = kafka.producer({ retry: { retries: 0 } })
    await producer.connect()
    try {
      await producer.send({ topic, compression: CompressionTypes.GZIP, messages: [{ value: 'small one' }, { value: 'small two' }] })
      // 20,000 bytes of one letter: tens of bytes gzipped, 20 KB once stored uncompressed.
      const refused = await producer.send({ topic, compression: CompressionTypes.GZIP, messages: [{ value: 'x'.repeat(20_000) }] }).then(
        () => null,
        (error: { type?: string; message: string }) => error,
      )
      expect(refused?.type).toBe('MESSAGE_TOO_LARGE')
    } finally {
      await producer.disconnect()
    }
    await withClient(broker, async (client) => {
      const { batches, highWatermark } = await readPartition(client, topic, 0)
      expect(highWatermark).toBe(2n)
      expect(batches.map((b) => codecOf(b.header.attributes))).toEqual([Compression.none])
      expect(recordsOf(batches).map((r) => r.value!.toString())).toEqual(['small one', 'small two'])
    })
  })

  it('batches are recompressed off the event loop: another client is answered while gzip -9 rebuilds them', async () => {
    const topic = 'ct-large'
    const partitions = 6
    await createTopic(broker, topic, { partitions, configs: { 'compression.type': 'gzip', 'compression.gzip.level': '9' } })
    // Random a's and b's are slow work for gzip -9: each batch of 60 KB (below the 64 KiB a produce check reads on the
    // event loop) takes about 0.13 s.
    const below = seededBelow(7)
    const value = (): Buffer => Buffer.from(Array.from({ length: 1000 }, () => 'ab'[below(2)]).join(''))
    const batches = Array.from({ length: partitions }, () => {
      const records = Array.from({ length: 60 }, (_, i) => recordBytes({ offsetDelta: i, key: Buffer.from(`k${i}`), value: value() }))
      return batchBytes({ records: Buffer.concat(records), count: records.length, baseTimestamp: BigInt(Date.now()) })
    })
    await withClient(broker, async (producer) => {
      await withClient(broker, async (other) => {
        let done = false
        let answeredMeanwhile = 0
        let produceSent = false
        const probing = (async () => {
          while (!done) {
            await other.request<Partial<ApiVersionsRequest>, ApiVersionsResponse>(apiVersions, 0, {})
            if (produceSent && !done) answeredMeanwhile++
            await new Promise((resolve) => setTimeout(resolve, 5))
          }
        })()
        const sending = producer.request<ProduceRequest, ProduceResponse>(produce, 9, {
          transactionalId: null,
          acks: 1,
          timeoutMs: 30_000,
          topicData: [{ name: topic, partitionData: batches.map((records, index) => ({ index, records })) }],
        })
        produceSent = true
        const answer = await sending
        done = true
        await probing
        expect(answer.responses[0]!.partitionResponses.map((p) => p.errorCode)).toEqual(Array.from({ length: partitions }, () => ErrorCode.NONE))
        // The other client's requests keep being answered while the rebuilds run (tens of them, one at a time). On the
        // event loop the request's six gzips ran back to back (0.8 s), and at most the one or two asked before or
        // after that stretch were answered before the produce.
        expect(answeredMeanwhile).toBeGreaterThanOrEqual(10)
      })
      const { batches: stored } = await readPartition(producer, topic, 3)
      expect(stored.map((b) => codecOf(b.header.attributes))).toEqual([Compression.gzip])
      expect(recordsOf(stored).map((r) => r.key!.toString())).toEqual(Array.from({ length: 60 }, (_, i) => `k${i}`))
    })
    expect(loggedErrors(broker)).toEqual([])
  })

  it('timestamps at both ends of the int64 range, on a LogAppendTime topic, are rebuilt as Java\'s wrapping longs keep them', async () => {
    const topic = 'ct-far-timestamps'
    await createTopic(broker, topic, { configs: { 'compression.type': 'lz4', 'message.timestamp.type': 'LogAppendTime', 'cleanup.policy': 'compact' } })
    // As a producer lays them out: deltas from the first record's timestamp, 2^62, by long subtraction, which wraps
    // for -2^63 + 5 (DefaultRecord.writeTo). A LogAppendTime topic takes any record timestamp.
    const first = 2n ** 62n
    const timestamps = [first, -(2n ** 63n) + 5n, 2n ** 63n - 1n, -1n]
    const records = timestamps.map((timestamp, i) =>
      recordBytes({ offsetDelta: i, timestampDelta: BigInt.asIntN(64, timestamp - first), key: Buffer.from(`k${i}`), value: Buffer.from(`far-${i}`) }),
    )
    const batch = batchBytes({ records: Buffer.concat(records), count: records.length, baseTimestamp: first, maxTimestamp: 2n ** 63n - 1n })
    await withClient(broker, async (client) => {
      expect(await producePartition(client, topic, 0, batch)).toMatchObject({ errorCode: ErrorCode.NONE, baseOffset: 0n })
      const { batches } = await readPartition(client, topic, 0)
      expect(batches.map((b) => codecOf(b.header.attributes))).toEqual([Compression.lz4])
      expect(recordsOf(batches).map((r) => r.value!.toString())).toEqual(['far-0', 'far-1', 'far-2', 'far-3'])
    })
    const { stdout } = await kcat(['-b', broker.address, '-C', '-t', topic, '-e', '-q', '-f', '%k=%s\n'])
    expect(stdout.split('\n').filter(Boolean)).toEqual(['k0=far-0', 'k1=far-1', 'k2=far-2', 'k3=far-3'])
    expect(loggedErrors(broker)).toEqual([])
  })

  it('zstd: kcat\'s gzip batches are stored zstd at compression.zstd.level, kcat (librdkafka\'s libzstd) reads every line back, and a Fetch below v10 is UNSUPPORTED_COMPRESSION_TYPE', async () => {
    const lines = Array.from({ length: 3000 }, (_, i) => `sensor-${i % 7}\t{"deviceId":"sensor-${i % 7}","temperature":${(20 + (i % 50) / 10).toFixed(1)},"unit":"C"}`)
    const storedBytes: Record<string, number> = {}
    for (const level of ['1', '19']) {
      const topic = `ct-zstd-${level}`
      await createTopic(broker, topic, { configs: { 'compression.type': 'zstd', 'compression.zstd.level': level } })
      await kcat(['-b', broker.address, '-P', '-t', topic, '-K', '\t', '-z', 'gzip', '-X', 'linger.ms=200'], { input: `${lines.join('\n')}\n` })
      await withClient(broker, async (client) => {
        const { batches } = await readPartition(client, topic, 0)
        expect(batches.length).toBeGreaterThan(0)
        expect(batches.map((b) => codecOf(b.header.attributes)).filter((codec) => codec !== Compression.zstd)).toEqual([])
        expect(recordsOf(batches).map((r) => `${r.key}\t${r.value}`)).toEqual(lines)
        storedBytes[level] = batches.reduce((sum, b) => sum + b.bytes.length, 0)
        // Kafka's KafkaApis.maybeConvertFetchedData: a consumer too old for zstd gets the error, not the records.
        expect((await fetchPartition(client, { topic, partition: 0, offset: 0n, version: 9 })).errorCode).toBe(ErrorCode.UNSUPPORTED_COMPRESSION_TYPE)
        // Whatever else the fetch would have been answered, as Kafka converts every partition's answer.
        expect((await fetchPartition(client, { topic, partition: 0, offset: 1_000_000n, version: 9 })).errorCode).toBe(ErrorCode.UNSUPPORTED_COMPRESSION_TYPE)
        expect((await fetchPartition(client, { topic, partition: 0, offset: 0n, version: 10 })).errorCode).toBe(ErrorCode.NONE)
      })
      const { stdout } = await kcat(['-b', broker.address, '-C', '-t', topic, '-e', '-q', '-f', '%k\t%s\n'])
      expect(stdout.split('\n').filter(Boolean)).toEqual(lines)
    }
    // The level reaches the compressor: 19 packs the same records tighter than 1.
    expect(storedBytes['19']).toBeLessThan(storedBytes['1']!)
    expect(loggedErrors(broker)).toEqual([])
  })

  it('a name Kafka does not know is INVALID_CONFIG; the topic\'s value is described as set', async () => {
    await createTopic(broker, 'ct-described', { configs: { 'compression.type': 'snappy' } })
    const altered = await admin
      .alterConfigs({ validateOnly: false, resources: [{ type: 2, name: 'ct-described', configEntries: [{ name: 'compression.type', value: 'brotli' }] }] })
      .then(
        () => null,
        (error: { type?: string }) => error,
      )
    // kafkajs names the code only; the message is the broker's in parsing's own test (topic-configs.test.ts).
    expect(altered?.type).toBe('INVALID_CONFIG')
    const described = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: 2, name: 'ct-described', configNames: ['compression.type'] }] })
    expect(described.resources[0]!.configEntries).toMatchObject([{ configName: 'compression.type', configValue: 'snappy', isDefault: false }])
  })
})
