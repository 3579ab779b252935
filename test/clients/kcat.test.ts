/**
 * kcat 1.7.1 on librdkafka 2.0.2 (Debian bookworm) against one real broker process: metadata, producing 100,000
 * keyed lines with every codec and reading them back, and the consumer's start positions (-o).
 *
 * librdkafka gates features on exact version overlaps (reference/kafka-clients.md, rdkafka_feature.c): gzip,
 * snappy and lz4 need Produce v0 advertised, lz4 also FindCoordinator v0, zstd Produce 7 and Fetch 10. When a
 * feature is off it sends the batch uncompressed without an error ("Broker does not support compression type"), so
 * the compression tests read the stored batches back and check their codec bits.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CompressionTypes, Kafka, logLevel } from 'kafkajs'
import { startBroker, type BrokerProcess } from '../helpers/broker.js'
import { createTopic, readPartition, recordsOf, withClient } from '../helpers/kafka.js'
import { kcat, sentVersions } from '../helpers/kcat.js'

const LINES = 100_000
const PARTITIONS = 4
const CODEC_BITS = { none: 0, gzip: 1, snappy: 2, lz4: 3, zstd: 4 } as const

interface Consumed {
  partition: number
  offset: number
  key: string
  value: string
}

/** Parses `-f '%p\t%o\t%k\t%s\n'` output. */
function parseConsumed(stdout: string): Consumed[] {
  return stdout
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => {
      const [partition, offset, key, value] = line.split('\t')
      return { partition: Number(partition), offset: Number(offset), key: key!, value: value! }
    })
}

const FORMAT = ['-f', '%p\t%o\t%k\t%s\n']

describe('kcat against one node', () => {
  let broker: BrokerProcess
  let dir: string
  let inputFile: string
  beforeAll(async () => {
    broker = await startBroker()
    dir = mkdtempSync(join(tmpdir(), 'brook-kcat-'))
    inputFile = join(dir, 'lines.txt')
    // Keyed lines (`-K '\t'`); the value repeats its key so compressed batches are much smaller than plain ones.
    const lines = Array.from({ length: LINES }, (_, i) => `key-${i}\tvalue-${i}-${'abcdefgh'.repeat(4)}`)
    writeFileSync(inputFile, lines.join('\n') + '\n')
  })
  afterAll(async () => {
    await broker?.stop()
    broker?.cleanup()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  it('-L lists the broker as controller and the topics with their partitions', async () => {
    await createTopic(broker, 'listed', { partitions: PARTITIONS })
    const { stdout } = await kcat(['-b', broker.address, '-L'])
    expect(stdout).toContain(`broker 1 at ${broker.address} (controller)`)
    expect(stdout).toContain('topic "listed" with 4 partitions:')
    for (let p = 0; p < PARTITIONS; p++) expect(stdout).toContain(`partition ${p}, leader 1, replicas: 1, isrs: 1`)

    const { stdout: one } = await kcat(['-b', broker.address, '-L', '-t', 'listed', '-J'])
    const json = JSON.parse(one) as { topics: { topic: string; partitions: { partition: number; leader: number }[] }[] }
    expect(json.topics.map((t) => t.topic)).toEqual(['listed'])
    expect(json.topics[0]!.partitions.map((p) => p.leader)).toEqual([1, 1, 1, 1])
  })

  it('negotiates the versions librdkafka 2.0.2 is known to use, with the MsgVer2, ZSTD and LZ4 features on', async () => {
    await createTopic(broker, 'versions')
    const produced = await kcat(['-b', broker.address, '-P', '-t', 'versions', '-d', 'protocol,feature'], { input: 'one\n' })
    const consumed = await kcat(['-b', broker.address, '-C', '-t', 'versions', '-e', '-d', 'protocol'])
    const versions = { ...sentVersions(produced.stderr), ...sentVersions(consumed.stderr) }
    expect(versions).toMatchObject({
      ApiVersion: [3],
      Metadata: [4],
      Produce: [7],
      ListOffsets: [2],
      Fetch: [11],
    })
    // MsgVer2 needs Produce 3 and Fetch 4, ZSTD Produce 7 and Fetch 10, LZ4 FindCoordinator 0 (rdkafka_feature.c).
    expect(produced.stderr).toContain('Enabling feature MsgVer2')
    expect(produced.stderr).toContain('Enabling feature ZSTD')
    expect(produced.stderr).toContain('Enabling feature LZ4')
  })

  for (const codec of ['none', 'gzip', 'snappy', 'lz4', 'zstd'] as const) {
    it(`-P ${LINES} keyed lines${codec === 'none' ? '' : ` with -z ${codec}`}, then -C -e returns exactly those lines, each partition in order`, async () => {
      const topic = `lines-${codec}`
      await createTopic(broker, topic, { partitions: PARTITIONS })
      const compression = codec === 'none' ? [] : ['-z', codec]
      await kcat(['-b', broker.address, '-P', '-t', topic, '-K', '\t', ...compression, '-l', inputFile])
      const { stdout } = await kcat(['-b', broker.address, '-C', '-t', topic, '-e', '-q', ...FORMAT])
      const consumed = parseConsumed(stdout)

      // Exactly the input: as many lines, no key twice, every key one of ours, each value the one sent with its key.
      expect(consumed).toHaveLength(LINES)
      expect(new Set(consumed.map((c) => c.key)).size).toBe(LINES)
      expect(consumed.filter((c) => !/^key-\d+$/.test(c.key) || Number(c.key.slice(4)) >= LINES), 'keys not in the input').toEqual([])
      expect(consumed.filter((record) => !record.value.startsWith(`value-${record.key.slice(4)}-`)), 'values paired with their keys').toEqual([])
      // Within a partition, offsets run 0, 1, 2, ... and lines keep the order of the input file.
      for (let p = 0; p < PARTITIONS; p++) {
        const mine = consumed.filter((c) => c.partition === p)
        expect(mine.length, `partition ${p} got some of the lines`).toBeGreaterThan(0)
        expect(mine.every((c, i) => c.offset === i)).toBe(true)
        const order = mine.map((c) => Number(c.key.slice(4)))
        expect(order.every((n, i) => i === 0 || n > order[i - 1]!), `partition ${p} in input order`).toBe(true)
      }

      // The stored batches carry the codec kcat was asked for (attributes bits 0-2), not a silent fallback.
      // librdkafka sends a batch uncompressed when compressing would not make it smaller (a batch of a record or
      // two, where the codec's framing outweighs the saving), so an uncompressed batch is allowed only if tiny.
      await withClient(broker, async (client) => {
        let stored = 0
        for (let p = 0; p < PARTITIONS; p++) {
          const { batches } = await readPartition(client, topic, p)
          const compressed = batches.filter((b) => (b.header.attributes & 0x07) === CODEC_BITS[codec])
          const others = batches.filter((b) => (b.header.attributes & 0x07) !== CODEC_BITS[codec])
          expect(compressed.length, `compressed batches in partition ${p}`).toBeGreaterThan(0)
          expect(
            others.filter((b) => (b.header.attributes & 0x07) !== 0 || b.header.recordsCount > 2).map((b) => b.header),
            `batches in partition ${p} stored without ${codec} (only a tiny uncompressed one is acceptable)`,
          ).toEqual([])
          stored += recordsOf(batches).length
        }
        expect(stored).toBe(LINES)
      })
    })
  }

  it('-z zstd to a topic whose max.message.bytes is 10000 stores the small batches (librdkafka writes a 2 MiB window into each zstd frame)', async () => {
    // The broker used to refuse a zstd frame whose window exceeded 32x max.message.bytes, so every batch kcat sent to
    // such a topic was MESSAGE_TOO_LARGE, however small; Kafka bounds only the compressed batch.
    const topic = 'small-zstd'
    await createTopic(broker, topic, { configs: { 'max.message.bytes': '10000' } })
    const small = join(dir, 'small.txt')
    writeFileSync(small, Array.from({ length: 20 }, (_, i) => `reading ${i} ${'abcdefgh'.repeat(4)}`).join('\n') + '\n')
    await kcat(['-b', broker.address, '-P', '-t', topic, '-z', 'zstd', '-l', small])
    await withClient(broker, async (client) => {
      const { batches } = await readPartition(client, topic, 0)
      expect(batches.some((b) => (b.header.attributes & 0x07) === CODEC_BITS.zstd), 'a zstd batch stored').toBe(true)
      expect(recordsOf(batches)).toHaveLength(20)
    })
  })

  describe('start positions (-o)', () => {
    const topic = 'positions'
    /**
     * 100 records on one partition, timestamps 1000 ms apart from BASE, sent as 10 kafkajs batches, every other one
     * gzip-compressed, so that a timestamp search must look inside compressed batches too.
     */
    const BASE = 1_700_000_000_000
    const COUNT = 100
    beforeAll(async () => {
      await createTopic(broker, topic)
      const kafka = new Kafka({ clientId: 'kcat-positions', brokers: [broker.address], logLevel: logLevel.NOTHING })
      const producer = kafka.producer()
      await producer.connect()
      for (let batch = 0; batch < 10; batch++) {
        await producer.send({
          topic,
          compression: batch % 2 === 0 ? CompressionTypes.None : CompressionTypes.GZIP,
          messages: Array.from({ length: 10 }, (_, j) => {
            const i = batch * 10 + j
            return { partition: 0, key: `k${i}`, value: `v${i}`, timestamp: String(BASE + i * 1000) }
          }),
        })
      }
      await producer.disconnect()
    })

    const consume = async (offset: string): Promise<Consumed[]> =>
      parseConsumed((await kcat(['-b', broker.address, '-C', '-t', topic, '-p', '0', '-o', offset, '-e', '-q', ...FORMAT])).stdout)

    it('-o -10 returns the last ten records', async () => {
      const got = await consume('-10')
      expect(got.map((c) => c.offset)).toEqual(Array.from({ length: 10 }, (_, i) => COUNT - 10 + i))
      expect(got.map((c) => c.value)).toEqual(Array.from({ length: 10 }, (_, i) => `v${COUNT - 10 + i}`))
    })

    it('-o <offset> starts at that offset, inside a batch', async () => {
      const got = await consume('37')
      expect(got.map((c) => c.offset)).toEqual(Array.from({ length: COUNT - 37 }, (_, i) => 37 + i))
      expect(got[0]!.key).toBe('k37')
    })

    it('-o s@<timestamp> starts at the first record at or after that time', async () => {
      const exact = await consume(`s@${BASE + 42 * 1000}`)
      expect(exact.map((c) => c.key)).toEqual(Array.from({ length: COUNT - 42 }, (_, i) => `k${42 + i}`))
      const between = await consume(`s@${BASE + 42 * 1000 + 1}`)
      expect(between[0]!.key).toBe('k43')
      expect(between).toHaveLength(COUNT - 43)
      const before = await consume(`s@${BASE - 1}`)
      expect(before).toHaveLength(COUNT)
    })

    it('-C -f %T shows the CreateTime each record was produced with', async () => {
      const { stdout } = await kcat(['-b', broker.address, '-C', '-t', topic, '-o', '5', '-c', '3', '-e', '-q', '-f', '%k %T\n'])
      expect(stdout.trim().split('\n')).toEqual([5, 6, 7].map((i) => `k${i} ${BASE + i * 1000}`))
    })
  })
})
