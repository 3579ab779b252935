/**
 * kafkajs 2.2.4 against one real broker process: the producer (acks 1 and -1, gzip) and the admin client, checked by
 * what a user sees, and the request versions kafkajs negotiates with us. kafkajs takes min(its max, our max) per API
 * and ignores our minimum (src/protocol/requests/index.js), so these versions follow from what Brook advertises;
 * a change to the advertised ranges shows up here first.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CompressionTypes, Kafka, logLevel, type Admin, type Producer } from 'kafkajs'
import { startBroker, type BrokerProcess } from '../helpers/broker.js'
import { fetchPartition, splitBatches, recordsOf, withClient } from '../helpers/kafka.js'
import { kcat } from '../helpers/kcat.js'

/** apiName -> versions kafkajs sent, from its public REQUEST instrumentation events. */
type SeenVersions = Map<string, Set<number>>

function noteVersion(seen: SeenVersions, { apiName, apiVersion }: { apiName: string; apiVersion: number }): void {
  if (!seen.has(apiName)) seen.set(apiName, new Set())
  seen.get(apiName)!.add(apiVersion)
}

function versionsOf(seen: SeenVersions): Record<string, number[]> {
  return Object.fromEntries([...seen].map(([api, versions]) => [api, [...versions].sort((a, b) => a - b)]))
}

describe('kafkajs 2.2.4 against one node', () => {
  let broker: BrokerProcess
  let kafka: Kafka
  let admin: Admin
  let producer: Producer
  const seen: SeenVersions = new Map()

  beforeAll(async () => {
    broker = await startBroker()
    kafka = new Kafka({ clientId: 'kafkajs-test', brokers: [broker.address], logLevel: logLevel.NOTHING })
    admin = kafka.admin()
    producer = kafka.producer()
    admin.on(admin.events.REQUEST, (event) => noteVersion(seen, event.payload))
    producer.on(producer.events.REQUEST, (event) => noteVersion(seen, event.payload))
    await admin.connect()
    await producer.connect()
  })
  afterAll(async () => {
    await producer?.disconnect()
    await admin?.disconnect()
    await broker?.stop()
    broker?.cleanup()
  })

  describe('producer', () => {
    beforeAll(async () => {
      await admin.createTopics({ topics: [{ topic: 'orders', numPartitions: 3 }] })
    })

    for (const acks of [1, -1] as const) {
      it(`acks=${acks}: each send reports its partition and offset, and the records read back as sent`, async () => {
        const topic = `acks${acks === 1 ? '1' : 'all'}`
        await admin.createTopics({ topics: [{ topic, numPartitions: 2 }] })
        const first = await producer.send({
          topic,
          acks,
          messages: [
            { partition: 0, key: 'a', value: 'one', headers: { source: 'test', trace: Buffer.from([1, 2, 3]) } },
            { partition: 0, key: 'b', value: 'two' },
            { partition: 1, key: null, value: 'three' },
          ],
        })
        expect(first.map((r) => [r.partition, r.errorCode, r.baseOffset]).sort()).toEqual([
          [0, 0, '0'],
          [1, 0, '0'],
        ])
        const second = await producer.send({ topic, acks, messages: [{ partition: 0, key: 'c', value: 'four' }] })
        expect(second).toMatchObject([{ topicName: topic, partition: 0, errorCode: 0, baseOffset: '2' }])

        await withClient(broker, async (client) => {
          const answer = await fetchPartition(client, { topic, partition: 0, offset: 0n })
          expect(answer.highWatermark).toBe(3n)
          const records = recordsOf(splitBatches(answer.records))
          expect(records.map((r) => [r.offset, r.key?.toString(), r.value?.toString()])).toEqual([
            [0n, 'a', 'one'],
            [1n, 'b', 'two'],
            [2n, 'c', 'four'],
          ])
          expect(records[0]!.headers.map((h) => [h.key, h.value])).toEqual([
            ['source', Buffer.from('test')],
            ['trace', Buffer.from([1, 2, 3])],
          ])
          const other = recordsOf(splitBatches((await fetchPartition(client, { topic, partition: 1, offset: 0n })).records))
          expect(other.map((r) => [r.key, r.value?.toString()])).toEqual([[null, 'three']])
        })
      })
    }

    it('acks=0: nothing comes back, the records are still stored, and later requests on the connection are answered', async () => {
      await admin.createTopics({ topics: [{ topic: 'fire-and-forget', numPartitions: 1 }] })
      // kafkajs expects no response for acks=0 (requests/produce/v*/request.js expectResponse), so a broker that
      // answered would desynchronise its connection; the acks=1 send behind it proves it did not.
      expect(await producer.send({ topic: 'fire-and-forget', acks: 0, messages: [{ value: 'first' }, { value: 'second' }] })).toEqual([])
      const [next] = await producer.send({ topic: 'fire-and-forget', acks: 1, messages: [{ value: 'third' }] })
      expect(next).toMatchObject({ errorCode: 0, baseOffset: '2' })
      const { stdout } = await kcat(['-b', broker.address, '-C', '-t', 'fire-and-forget', '-e', '-q'])
      expect(stdout).toBe('first\nsecond\nthird\n')
    })

    it('sendBatch writes several topics and partitions in one Produce request', async () => {
      await admin.createTopics({ topics: [{ topic: 'batch-a', numPartitions: 2 }, { topic: 'batch-b', numPartitions: 1 }] })
      const results = await producer.sendBatch({
        acks: -1,
        topicMessages: [
          { topic: 'batch-a', messages: [{ partition: 0, value: 'a0' }, { partition: 1, value: 'a1' }, { partition: 1, value: 'a1-again' }] },
          { topic: 'batch-b', messages: [{ partition: 0, value: 'b0' }] },
        ],
      })
      expect(results.map((r) => [r.topicName, r.partition, r.errorCode, r.baseOffset]).sort()).toEqual([
        ['batch-a', 0, 0, '0'],
        ['batch-a', 1, 0, '0'],
        ['batch-b', 0, 0, '0'],
      ])
      expect(await admin.fetchTopicOffsets('batch-a')).toEqual(
        expect.arrayContaining([expect.objectContaining({ partition: 1, high: '2' }), expect.objectContaining({ partition: 0, high: '1' })]),
      )
    })

    it('gzip: the batch is stored gzip-compressed and reads back intact with kcat', async () => {
      const values = Array.from({ length: 500 }, (_, i) => `reading-${i}-${'x'.repeat(50)}`)
      const [result] = await producer.send({
        topic: 'orders',
        compression: CompressionTypes.GZIP,
        messages: values.map((value, i) => ({ partition: 2, key: `k${i}`, value })),
      })
      expect(result).toMatchObject({ partition: 2, errorCode: 0, baseOffset: '0' })
      await withClient(broker, async (client) => {
        const batches = splitBatches((await fetchPartition(client, { topic: 'orders', partition: 2, offset: 0n })).records)
        expect(batches.map((b) => b.header.attributes & 0x07)).toEqual([1])
        // Stored as sent: far smaller than the 500 values it holds.
        expect(batches[0]!.bytes.length).toBeLessThan(values.join('').length / 4)
      })
      const { stdout } = await kcat(['-b', broker.address, '-C', '-t', 'orders', '-p', '2', '-e', '-q', '-f', '%k=%s\n'])
      expect(stdout.trim().split('\n')).toEqual(values.map((value, i) => `k${i}=${value}`))
    })

    it('a send to an unknown topic auto-creates it (kafkajs asks Metadata with allowAutoTopicCreation)', async () => {
      const [result] = await producer.send({ topic: 'created-on-send', messages: [{ value: 'hello' }] })
      expect(result!.errorCode).toBe(0)
      expect(await admin.listTopics()).toContain('created-on-send')
    })
  })

  describe('admin', () => {
    it('createTopics creates, then reports an existing topic as not created', async () => {
      expect(await admin.createTopics({ topics: [{ topic: 'inventory', numPartitions: 4, configEntries: [{ name: 'retention.ms', value: '3600000' }] }] })).toBe(true)
      expect(await admin.createTopics({ topics: [{ topic: 'inventory', numPartitions: 4 }] })).toBe(false)
      expect(await admin.listTopics()).toContain('inventory')
      const described = await admin.describeConfigs({ resources: [{ type: 2, name: 'inventory', configNames: ['retention.ms'] }], includeSynonyms: false })
      expect(described.resources[0]!.configEntries).toMatchObject([{ configName: 'retention.ms', configValue: '3600000', isDefault: false }])
    })

    it('createTopics with validateOnly checks the topic without creating it', async () => {
      // waitForLeaders would poll Metadata for a topic that, by design, does not exist (as against Kafka).
      await admin.createTopics({ validateOnly: true, waitForLeaders: false, topics: [{ topic: 'dry-run', numPartitions: 2 }] })
      await expect(
        admin.createTopics({ validateOnly: true, waitForLeaders: false, topics: [{ topic: 'dry-run', numPartitions: 0 }] }),
      ).rejects.toMatchObject({ errors: [expect.objectContaining({ type: 'INVALID_PARTITIONS' })] })
      expect(await admin.listTopics()).not.toContain('dry-run')
    })

    it('createTopics rejects a bad name, a bad partition count and a bad config with the Kafka error', async () => {
      await expect(admin.createTopics({ topics: [{ topic: 'no spaces allowed' }] })).rejects.toMatchObject({
        errors: [expect.objectContaining({ type: 'INVALID_TOPIC_EXCEPTION' })],
      })
      await expect(admin.createTopics({ topics: [{ topic: 'zero-partitions', numPartitions: 0 }] })).rejects.toMatchObject({
        errors: [expect.objectContaining({ type: 'INVALID_PARTITIONS' })],
      })
      await expect(
        admin.createTopics({ topics: [{ topic: 'bad-config', configEntries: [{ name: 'cleanup.policy', value: 'shred' }] }] }),
      ).rejects.toMatchObject({ errors: [expect.objectContaining({ type: 'INVALID_CONFIG' })] })
      expect(await admin.listTopics()).not.toEqual(expect.arrayContaining(['zero-partitions', 'bad-config']))
    })

    it('fetchTopicMetadata describes every partition with this broker as leader, replica and ISR', async () => {
      await admin.createTopics({ topics: [{ topic: 'described', numPartitions: 3 }] })
      const { topics } = await admin.fetchTopicMetadata({ topics: ['described'] })
      expect(topics).toEqual([
        {
          name: 'described',
          partitions: [0, 1, 2].map((partitionId) => ({
            partitionErrorCode: 0,
            partitionId,
            leader: 1,
            replicas: [1],
            isr: [1],
            offlineReplicas: [],
          })),
        },
      ])
    })

    it('fetchTopicOffsets gives each partition its low and high watermark', async () => {
      await admin.createTopics({ topics: [{ topic: 'offsets', numPartitions: 2 }] })
      await producer.send({ topic: 'offsets', messages: Array.from({ length: 7 }, (_, i) => ({ partition: 1, value: `v${i}` })) })
      const offsets = await admin.fetchTopicOffsets('offsets')
      expect(offsets.sort((a, b) => a.partition - b.partition)).toEqual([
        { partition: 0, offset: '0', high: '0', low: '0' },
        { partition: 1, offset: '7', high: '7', low: '0' },
      ])
    })

    it('fetchTopicOffsetsByTimestamp finds the first offset at or after a time, and the end after the last record', async () => {
      await admin.createTopics({ topics: [{ topic: 'timed', numPartitions: 1 }] })
      const base = 1_700_000_000_000
      for (let batch = 0; batch < 4; batch++) {
        await producer.send({
          topic: 'timed',
          messages: Array.from({ length: 5 }, (_, j) => ({ value: `v${batch * 5 + j}`, timestamp: String(base + (batch * 5 + j) * 60_000) })),
        })
      }
      expect(await admin.fetchTopicOffsetsByTimestamp('timed', base + 11 * 60_000)).toEqual([{ partition: 0, offset: '11' }])
      expect(await admin.fetchTopicOffsetsByTimestamp('timed', base + 11 * 60_000 - 1)).toEqual([{ partition: 0, offset: '11' }])
      expect(await admin.fetchTopicOffsetsByTimestamp('timed', base - 1)).toEqual([{ partition: 0, offset: '0' }])
      // No record that late: Kafka answers -1 and kafkajs turns it into the high watermark.
      expect(await admin.fetchTopicOffsetsByTimestamp('timed', base + 100 * 60_000)).toEqual([{ partition: 0, offset: '20' }])
    })

    it('deleteTopics removes the topic; its name can then be created afresh, empty', async () => {
      await admin.createTopics({ topics: [{ topic: 'doomed', numPartitions: 1 }] })
      await producer.send({ topic: 'doomed', messages: [{ value: 'old' }] })
      await admin.deleteTopics({ topics: ['doomed'] })
      expect(await admin.listTopics()).not.toContain('doomed')
      await expect(admin.fetchTopicMetadata({ topics: ['doomed'] })).rejects.toMatchObject({ type: 'UNKNOWN_TOPIC_OR_PARTITION' })
      expect(await admin.createTopics({ topics: [{ topic: 'doomed', numPartitions: 1 }] })).toBe(true)
      expect(await admin.fetchTopicOffsets('doomed')).toEqual([{ partition: 0, offset: '0', high: '0', low: '0' }])
    })

    it('describeCluster names this broker, as controller, and the cluster id', async () => {
      const cluster = await admin.describeCluster()
      expect(cluster).toEqual({
        brokers: [{ nodeId: 1, host: '127.0.0.1', port: broker.port }],
        controller: 1,
        clusterId: expect.stringMatching(/^[A-Za-z0-9_-]{22}$/),
      })
    })
  })

  it('negotiated the versions kafkajs 2.2.4 picks against Brook', () => {
    // kafkajs max per API (reference/kafka-clients.md) capped by ours; ApiVersions v2 is kafkajs's first try.
    expect(versionsOf(seen)).toMatchObject({
      ApiVersions: [2],
      Metadata: [6],
      Produce: [7],
      CreateTopics: [3],
      DeleteTopics: [1],
      ListOffsets: [3],
      DescribeConfigs: [2],
    })
  })
})
