/**
 * A pipeline reads topics whatever codec their batches carry (processor/runtime/codecs.ts): kafkajs 2.2.4 reads gzip
 * only and fails a fetch holding snappy, lz4 or zstd. On a broker process: a topic whose compression.type stores lz4,
 * and kcat's (librdkafka's) snappy and zstd batches, read by one pipeline into one output, every value exactly once.
 * A pipeline asked for zstd (compressionType) writes its outputs and changelog so, and a kafkajs producer in the
 * same process writes zstd too; kcat reads both. In process: snappy in xerial's stream format,
 * as Java producers write it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import snappy from 'snappy'
import { TopologyBuilder, count, runPipeline, type RunningPipeline } from '../../processor/index.js'
import { registerCodecs, unsnappy } from '../../processor/runtime/codecs.js'
import { CompressionTypes } from 'kafkajs'
import { FAST_GROUPS } from '../helpers/broker-config.js'
import { startKafkajsBroker, stopKafkajsBroker, type KafkajsBroker } from '../helpers/kafkajs-broker.js'
import { createTopic, readPartition, withClient } from '../helpers/kafka.js'
import { kcat } from '../helpers/kcat.js'
import { readTopic, stateDir } from './helpers.js'
import { xerialSnappy } from '../helpers/wire.js'

const COUNT = 200

describe('snappy framings', () => {
  it('reads raw snappy and xerial\'s stream format (magic, versions, length-prefixed blocks)', () => {
    const text = Buffer.from('{"deviceId":"d1","value":21.5}\n'.repeat(300))
    expect(unsnappy(snappy.compressSync(text) as Buffer).equals(text)).toBe(true)
    const xerial = xerialSnappy(text, 4000)
    expect(unsnappy(xerial).equals(text)).toBe(true)
    expect(() => unsnappy(Buffer.concat([xerial.subarray(0, 16), Buffer.from([0, 0, 1, 0, 1, 2])]))).toThrow('runs past the payload')
  })
})

describe('a pipeline reading lz4, snappy and zstd batches', () => {
  let setting: KafkajsBroker
  let pipeline: RunningPipeline | undefined

  beforeAll(async () => {
    setting = await startKafkajsBroker(FAST_GROUPS, { clientId: 'processor-codecs' })
    await createTopic(setting.broker, 'cx-lz4', { configs: { 'compression.type': 'lz4' } })
    await createTopic(setting.broker, 'cx-snappy')
    await createTopic(setting.broker, 'cx-zstd')
    await createTopic(setting.broker, 'cx-zstd-out')
    await createTopic(setting.broker, 'cx-zin')
    const lines = (codec: string) => `${Array.from({ length: COUNT }, (_, n) => JSON.stringify({ codec, n })).join('\n')}\n`
    await setting.producer.send({ topic: 'cx-lz4', messages: lines('lz4').trim().split('\n').map((value) => ({ value })) })
    await kcat(['-b', setting.broker.address, '-P', '-t', 'cx-snappy', '-z', 'snappy'], { input: lines('snappy') })
    await kcat(['-b', setting.broker.address, '-P', '-t', 'cx-zstd', '-z', 'zstd'], { input: lines('zstd') })
  })
  afterAll(async () => {
    await pipeline?.stop()
    await stopKafkajsBroker(setting)
  })

  it('every value of the three topics reaches the output once', async () => {
    // The batches really carry the three codecs (librdkafka sends a batch uncompressed only when it is tiny).
    await withClient(setting.broker, async (client) => {
      for (const [topic, codec] of [['cx-lz4', 3], ['cx-snappy', 2], ['cx-zstd', 4]] as const) {
        const { batches } = await readPartition(client, topic, 0)
        expect(batches.some((b) => (b.header.attributes & 0x07) === codec), `${topic} holds ${codec} batches`).toBe(true)
      }
    })
    const b = new TopologyBuilder()
    for (const topic of ['cx-lz4', 'cx-snappy', 'cx-zstd']) b.stream<{ codec: string; n: number }>(topic).map((v) => ({ ...v, read: true })).to('cx-out')
    pipeline = await runPipeline(b.build(), { applicationId: 'cx', bootstrapServers: setting.broker.address, stateDir: stateDir(), commitIntervalMs: 200, partitions: 1, log: () => {} })
    const out = await readTopic(setting.kafka, 'cx-out', (r) => r.length >= 3 * COUNT)
    const seen = out.map((r) => JSON.parse(r.value!) as { codec: string; n: number; read: boolean })
    expect(seen).toHaveLength(3 * COUNT)
    for (const codec of ['lz4', 'snappy', 'zstd']) {
      expect(seen.filter((v) => v.codec === codec).map((v) => v.n).sort((x, y) => x - y)).toEqual(Array.from({ length: COUNT }, (_, n) => n))
    }
    expect(pipeline.metrics()).toMatchObject({ deadLetters: 0 })
  })

  it('a pipeline with compressionType zstd writes its outputs and its changelog as zstd batches, which kcat reads', async () => {
    await setting.producer.send({ topic: 'cx-zin', messages: Array.from({ length: COUNT }, (_, n) => ({ key: `d${n % 4}`, value: JSON.stringify({ n }) })) })
    const b = new TopologyBuilder()
    b.stream<{ n: number }>('cx-zin').groupByKey().aggregate({ n: count() }, { name: 'cx-zcount' }).to('cx-zcounts')
    const zipped = await runPipeline(b.build(), { applicationId: 'cxz', bootstrapServers: setting.broker.address, stateDir: stateDir(), commitIntervalMs: 200, partitions: 1, compressionType: 'zstd', log: () => {} })
    try {
      const finals = (records: { key: string | null; value: string | null }[]) => records.filter((r) => (JSON.parse(r.value!) as { n: number }).n === COUNT / 4)
      const out = await readTopic(setting.kafka, 'cx-zcounts', (r) => finals(r).length === 4)
      expect(finals(out).map((r) => r.key).sort()).toEqual(['d0', 'd1', 'd2', 'd3'])
      const changelog = (await setting.admin.listTopics()).find((topic) => topic.startsWith('cxz-') && topic.endsWith('-changelog'))
      expect(changelog).toBeDefined()
      await withClient(setting.broker, async (client) => {
        for (const topic of ['cx-zcounts', changelog!]) {
          // Transaction markers are the broker's own control batches, uncompressed as in Kafka.
          const data = (await readPartition(client, topic, 0)).batches.filter((batch) => (batch.header.attributes & 0x20) === 0)
          expect(data.length, `${topic} holds batches`).toBeGreaterThan(0)
          expect(data.map((batch) => batch.header.attributes & 0x07).filter((codec) => codec !== 4), `${topic}'s codecs`).toEqual([])
        }
      })
      const { stdout } = await kcat(['-b', setting.broker.address, '-C', '-t', 'cx-zcounts', '-e', '-q', '-X', 'isolation.level=read_committed', '-f', '%k %s\n'])
      expect(stdout.split('\n').filter(Boolean)).toEqual(out.map((r) => `${r.key} ${r.value}`))
    } finally {
      await zipped.stop()
    }
  })

  it('a kafkajs producer in the pipeline\'s process writes zstd batches that the broker stores as sent and kcat (librdkafka) reads', async () => {
    registerCodecs()
    const values = Array.from({ length: COUNT }, (_, n) => JSON.stringify({ deviceId: `d${n % 5}`, value: 20 + n / 10 }))
    await setting.producer.send({ topic: 'cx-zstd-out', compression: CompressionTypes.ZSTD, messages: values.map((value) => ({ value })) })
    await withClient(setting.broker, async (client) => {
      const { batches } = await readPartition(client, 'cx-zstd-out', 0)
      expect(batches.map((b) => b.header.attributes & 0x07)).toEqual([4])
    })
    const { stdout } = await kcat(['-b', setting.broker.address, '-C', '-t', 'cx-zstd-out', '-e', '-q'])
    expect(stdout.split('\n').filter(Boolean)).toEqual(values)
  })
})
