/**
 * Retention and compaction, run by a real broker process whose cleaner passes every 200 ms
 * (log.retention.check.interval.ms), checked by what clients see: ListOffsets earliest, what a fetch and a kafkajs
 * consumer from the beginning return, and the offsets the producer was given.
 *
 * Kafka's rules (UnifiedLog.deleteOldSegments, LogCleaner): retention deletes whole units (segments there, batches
 * here) from the start of the log and stops at the first one that must stay, the newest one included, so a log whose
 * every record expired is left empty; retention.bytes deletes a unit only if the log stays at least retention.bytes
 * big without it (so retention.bytes=0 deletes everything); compaction keeps the newest record of each key at its
 * original offset, and drops tombstones once they are older than delete.retention.ms, even in a log nobody writes
 * to any more (KIP-534).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { ConfigResourceTypes, Kafka, logLevel, type Admin, type Consumer, type Producer } from 'kafkajs'
import type { KafkaClient } from '../../client/kafka-client.js'
import { FAST_GROUPS } from '../helpers/broker-config.js'
import type { BrokerProcess } from '../helpers/broker.js'
import { connect, createTopic, fetchPartition, listOffset, producePartition, readPartition, recordsOf, splitBatches } from '../helpers/kafka.js'
import { handBuiltBatch } from '../helpers/wire.js'
import { encodeRecordBatch } from '../../protocol/record-batch.js'
import { commit, committedOffsets } from '../helpers/groups-wire.js'
import { waitFor } from '../helpers/wait.js'
import { startKafkajsBroker, stopKafkajsBroker } from '../helpers/kafkajs-broker.js'
import { kcat } from '../helpers/kcat.js'

const EARLIEST = -2n
const OFFSET_OUT_OF_RANGE = 1
const CLEANER = { ...FAST_GROUPS, logRetentionCheckIntervalMs: 200 }

describe('retention and compaction', () => {
  let broker: BrokerProcess
  let client: KafkaClient
  let kafka: Kafka
  let admin: Admin
  let producer: Producer
  const consumers: Consumer[] = []

  beforeAll(async () => {
    ;({ broker, kafka, admin, producer } = await startKafkajsBroker(CLEANER, { clientId: 'cleaner-test' }))
    client = await connect(broker)
  })
  afterEach(async () => {
    for (const consumer of consumers.splice(0)) await consumer.disconnect()
  })
  afterAll(async () => {
    client?.close()
    await stopKafkajsBroker({ broker, admin, producer })
  })

  /** Appends one hand-built batch of `count` records stamped `timestamp`; returns its base offset. */
  async function appendBatch(topic: string, count: number, timestamp: bigint, valueBytes = 10): Promise<bigint> {
    const values = Array.from({ length: count }, (_, i) => String(i).padEnd(valueBytes, '.'))
    const answer = await producePartition(client, topic, 0, handBuiltBatch(values, { timestamp }))
    expect(answer.errorCode).toBe(0)
    return answer.baseOffset
  }

  /** `offset value` of every record kcat reads from the beginning of partition 0 until it reaches the end. */
  async function kcatRead(topic: string): Promise<string[]> {
    const { stdout } = await kcat(['-b', broker.address, '-C', '-t', topic, '-p', '0', '-o', 'beginning', '-e', '-q', '-f', '%o %s\n'])
    return stdout.split('\n').filter((line) => line !== '')
  }

  /**
   * Resolves after two cleaner passes that started after this call, each seen by a batch stamped ten minutes ago
   * that it removed from `witness` (a topic of its own with retention.ms one minute).
   */
  async function twoCleanerPasses(witness: string): Promise<void> {
    await createTopic(broker, witness, { configs: { 'retention.ms': '60000' } })
    for (let pass = 1; pass <= 2; pass++) {
      const base = await appendBatch(witness, 1, BigInt(Date.now() - 600_000))
      await waitFor(`cleaner pass ${pass} after the appends`, async () => (await earliest(witness)) === base + 1n)
    }
  }

  /** Appends one batch of keyed records all stamped `timestamp` (-1: none) to partition 0; returns its base offset. */
  async function appendKeyed(topic: string, entries: [string, string][], timestamp: bigint): Promise<bigint> {
    const records = entries.map(([key, value]) => ({ key: Buffer.from(key), value: Buffer.from(value), timestamp }))
    const answer = await producePartition(client, topic, 0, encodeRecordBatch(records))
    expect(answer.errorCode).toBe(0)
    return answer.baseOffset
  }

  async function earliest(topic: string): Promise<bigint> {
    const answer = await listOffset(client, topic, 0, EARLIEST)
    expect(answer.errorCode).toBe(0)
    return answer.offset
  }

  /** The offsets a kafkajs consumer from the beginning reads, once it has read `count` records. */
  async function consumeFromBeginning(topic: string, count: number): Promise<{ offset: string; key: string | null; value: string | null }[]> {
    const consumer = kafka.consumer({ groupId: `reader-of-${topic}`, maxWaitTimeInMs: 200 })
    consumers.push(consumer)
    const read: { offset: string; key: string | null; value: string | null }[] = []
    await consumer.connect()
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await consumer.run({
      eachMessage: async ({ message }) => void read.push({ offset: message.offset, key: message.key?.toString() ?? null, value: message.value?.toString() ?? null }),
    })
    await waitFor(`${count} records of ${topic}`, () => read.length >= count)
    return read
  }

  describe('retention (cleanup.policy=delete)', () => {
    it('batches older than retention.ms go, the log start moves to the first batch kept, and readers start there', async () => {
      await createTopic(broker, 'old-readings', { configs: { 'retention.ms': '60000' } })
      const tenMinutesAgo = BigInt(Date.now() - 600_000)
      for (let i = 0; i < 3; i++) await appendBatch('old-readings', 3, tenMinutesAgo)
      const firstKept = await appendBatch('old-readings', 3, BigInt(Date.now()))
      // An old batch after a young one stays: deletion only ever cuts a prefix of the log.
      await appendBatch('old-readings', 3, tenMinutesAgo)
      await appendBatch('old-readings', 3, BigInt(Date.now()))
      expect(firstKept).toBe(9n)

      await waitFor('the log start to move past the expired batches', async () => (await earliest('old-readings')) === 9n)
      // Give the cleaner a few more passes: they must not cut any further.
      await new Promise((resolve) => setTimeout(resolve, 600))
      expect(await earliest('old-readings')).toBe(9n)
      expect((await fetchPartition(client, { topic: 'old-readings', partition: 0, offset: 0n })).errorCode).toBe(OFFSET_OUT_OF_RANGE)
      const answer = await fetchPartition(client, { topic: 'old-readings', partition: 0, offset: 9n })
      expect(answer.logStartOffset).toBe(9n)
      expect(answer.highWatermark).toBe(18n)

      const read = await consumeFromBeginning('old-readings', 9)
      expect(read.map((r) => Number(r.offset))).toEqual([9, 10, 11, 12, 13, 14, 15, 16, 17])
      expect((await admin.fetchTopicOffsets('old-readings'))[0]).toMatchObject({ low: '9', high: '18' })
    })

    it('keeps a batch without timestamps (-1) until a batch after it expires, as Kafka dates a segment without them by its last append', async () => {
      const tenMinutesAgo = BigInt(Date.now() - 600_000)
      for (const topic of ['undated-alone', 'undated-kept', 'undated-gone']) await createTopic(broker, topic, { configs: { 'retention.ms': '60000' } })
      await appendBatch('undated-alone', 2, -1n)
      await appendBatch('undated-kept', 2, -1n)
      await appendBatch('undated-kept', 1, BigInt(Date.now()))
      await appendBatch('undated-gone', 2, -1n)
      await appendBatch('undated-gone', 1, tenMinutesAgo)
      await appendBatch('undated-gone', 1, BigInt(Date.now()))
      // Appended before the expired batch after it: it goes with that one.
      await waitFor('the undated batch to go with the expired batch after it', async () => (await earliest('undated-gone')) === 3n)
      await twoCleanerPasses('undated-witness')
      expect(await earliest('undated-alone')).toBe(0n)
      expect(await earliest('undated-kept')).toBe(0n)
      expect(await kcatRead('undated-kept')).toEqual(['0 0.........', '1 1.........', '2 0.........'])
    })

    it('a partition whose every batch expired is emptied: earliest = latest, nothing is readable, and the next record takes the old log end, also after kill -9', async () => {
      await admin.createTopics({ topics: [{ topic: 'hour-old', numPartitions: 1, configEntries: [{ name: 'retention.ms', value: '60000' }] }] })
      const anHourAgo = String(Date.now() - 3_600_000)
      const [sent] = await producer.send({ topic: 'hour-old', messages: ['a', 'b', 'c'].map((value) => ({ value, timestamp: anHourAgo })) })
      expect(sent).toMatchObject({ baseOffset: '0' })

      await waitFor('retention to delete the only batch', async () => (await earliest('hour-old')) === 3n)
      expect((await admin.fetchTopicOffsets('hour-old'))[0]).toMatchObject({ low: '3', high: '3' })
      expect(await kcatRead('hour-old')).toEqual([])
      expect((await fetchPartition(client, { topic: 'hour-old', partition: 0, offset: 0n })).errorCode).toBe(OFFSET_OUT_OF_RANGE)

      await kcat(['-b', broker.address, '-P', '-t', 'hour-old', '-p', '0'], { input: 'fresh\n' })
      expect(await kcatRead('hour-old')).toEqual(['3 fresh'])

      await restartBroker({ kill: true })
      expect((await admin.fetchTopicOffsets('hour-old'))[0]).toMatchObject({ low: '3', high: '4' })
      expect(await kcatRead('hour-old')).toEqual(['3 fresh'])
    })

    it('retention.bytes=0 deletes every batch as well, and producing continues at the old log end', async () => {
      await admin.createTopics({ topics: [{ topic: 'no-bytes', numPartitions: 1, configEntries: [{ name: 'retention.bytes', value: '0' }] }] })
      for (let i = 0; i < 3; i++) await producer.send({ topic: 'no-bytes', messages: [{ value: `first-${i}` }, { value: `second-${i}` }] })

      await waitFor('retention.bytes=0 to delete every batch', async () => (await earliest('no-bytes')) === 6n)
      expect((await admin.fetchTopicOffsets('no-bytes'))[0]).toMatchObject({ low: '6', high: '6' })
      expect(await kcatRead('no-bytes')).toEqual([])
      const [next] = await producer.send({ topic: 'no-bytes', messages: [{ value: 'after' }] })
      expect(next).toMatchObject({ baseOffset: '6' })
    })

    it('retention.bytes deletes the oldest batches while the rest stays at least that big (changed with alterConfigs)', async () => {
      await createTopic(broker, 'bulky', {})
      for (let i = 0; i < 10; i++) await appendBatch('bulky', 1, BigInt(Date.now()), 1000)
      const batchBytes = (await readPartition(client, 'bulky', 0)).batches[0]!.bytes.length
      expect(await earliest('bulky')).toBe(0n)

      // 3.5 batches' worth: Kafka deletes a unit only while the log keeps >= retention.bytes without it, so 4 stay.
      const retentionBytes = Math.floor(batchBytes * 3.5)
      await admin.alterConfigs({ validateOnly: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: 'bulky', configEntries: [{ name: 'retention.bytes', value: String(retentionBytes) }] }] })
      await waitFor('retention.bytes to cut the log', async () => (await earliest('bulky')) > 0n)
      // Give the cleaner a few more passes: they must not cut any further.
      await new Promise((resolve) => setTimeout(resolve, 600))
      expect(await earliest('bulky')).toBe(6n)
      const answer = await fetchPartition(client, { topic: 'bulky', partition: 0, offset: 6n })
      expect(answer.highWatermark).toBe(10n)
      const batches = splitBatches(answer.records)
      expect(batches.map((b) => Number(b.header.baseOffset))).toEqual([6, 7, 8, 9])
      expect(batches.reduce((sum, b) => sum + b.bytes.length, 0)).toBeGreaterThanOrEqual(retentionBytes)
    })
  })

  describe('compaction (cleanup.policy=compact)', () => {
    /** Sends each group of [key, value] as one batch to partition 0; returns key@value -> offset, from produce answers. */
    async function produceBatches(topic: string, batches: [string, string | null][][]): Promise<Map<string, string>> {
      const offsets = new Map<string, string>()
      for (const batch of batches) {
        const [result] = await producer.send({ topic, messages: batch.map(([key, value]) => ({ key, value, partition: 0 })) })
        batch.forEach(([key, value], i) => offsets.set(`${key}=${value ?? 'null'}`, String(BigInt(result!.baseOffset!) + BigInt(i))))
      }
      return offsets
    }

    const HISTORY: [string, string | null][][] = [
      [['thermostat-1', '19.5'], ['thermostat-2', '21.0'], ['thermostat-3', '18.0']],
      [['thermostat-1', '20.0'], ['thermostat-4', '22.5']],
      [['thermostat-2', null], ['thermostat-3', '18.5']],
      [['thermostat-1', '20.5']],
      // The newest batch is never compacted (Kafka leaves the active segment alone); this one only closes the log.
      [['thermostat-5', '17.0']],
    ]

    it('keeps the newest record of each key at the offset the producer got, and keeps young tombstones', async () => {
      await admin.createTopics({
        topics: [{ topic: 'device-state', numPartitions: 1, configEntries: [{ name: 'cleanup.policy', value: 'compact' }, { name: 'min.cleanable.dirty.ratio', value: '0.01' }] }],
      })
      const produced = await produceBatches('device-state', HISTORY)
      await waitFor('compaction to remove superseded values', async () => {
        const records = recordsOf((await readPartition(client, 'device-state', 0)).batches)
        return records.length === 5
      })
      const { batches, highWatermark } = await readPartition(client, 'device-state', 0)
      const survivors = recordsOf(batches).map((r) => [String(r.offset), r.key!.toString(), r.value?.toString() ?? null])
      // The default delete.retention.ms (a day) keeps the tombstone of thermostat-2; its older value is gone.
      expect(survivors).toEqual([
        [produced.get('thermostat-4=22.5'), 'thermostat-4', '22.5'],
        [produced.get('thermostat-2=null'), 'thermostat-2', null],
        [produced.get('thermostat-3=18.5'), 'thermostat-3', '18.5'],
        [produced.get('thermostat-1=20.5'), 'thermostat-1', '20.5'],
        [produced.get('thermostat-5=17.0'), 'thermostat-5', '17.0'],
      ])
      // Compaction moves no offsets: the log still starts at 0 and ends where it ended.
      expect(highWatermark).toBe(9n)
      expect(await earliest('device-state')).toBe(0n)
      // A fetch from an offset whose record was removed gets the next batch that has records.
      const fromRemoved = await fetchPartition(client, { topic: 'device-state', partition: 0, offset: 1n })
      expect(fromRemoved.errorCode).toBe(0)
      expect(recordsOf(splitBatches(fromRemoved.records))[0]!.offset).toBe(BigInt(produced.get('thermostat-4=22.5')!))

      const read = await consumeFromBeginning('device-state', 5)
      expect(read.map((r) => [r.offset, r.key, r.value])).toEqual(survivors)
    })

    it('under min.compaction.lag.ms, compacts a batch without timestamps (-1) only with a later batch old enough, as Kafka dates it by its segment\'s last append', async () => {
      const configs = { 'cleanup.policy': 'compact', 'min.cleanable.dirty.ratio': '0.01', 'min.compaction.lag.ms': '3600000' }
      for (const topic of ['undated-lagging', 'undated-lagged']) await createTopic(broker, topic, { configs })
      await appendKeyed('undated-lagging', [['sensor-1', 'a']], -1n)
      await appendKeyed('undated-lagging', [['sensor-1', 'b']], -1n)
      await appendKeyed('undated-lagging', [['sensor-2', 'c']], BigInt(Date.now()))
      await appendKeyed('undated-lagging', [['sensor-3', 'd']], BigInt(Date.now()))
      await appendKeyed('undated-lagged', [['sensor-1', 'a']], -1n)
      await appendKeyed('undated-lagged', [['sensor-1', 'b']], BigInt(Date.now() - 7_200_000))
      await appendKeyed('undated-lagged', [['sensor-2', 'c']], BigInt(Date.now()))
      const survivors = async (topic: string) => recordsOf((await readPartition(client, topic, 0)).batches).map((r) => `${r.offset} ${r.key} ${r.value}`)
      await waitFor('the undated record to be compacted with the old batch after it', async () => (await survivors('undated-lagged')).length === 2)
      expect(await survivors('undated-lagged')).toEqual(['1 sensor-1 b', '2 sensor-2 c'])
      await twoCleanerPasses('undated-lag-witness')
      expect(await survivors('undated-lagging')).toEqual(['0 sensor-1 a', '1 sensor-1 b', '2 sensor-2 c', '3 sensor-3 d'])
    })

    it('keeps a zstd topic\'s batches zstd when it compacts them (librdkafka reads what it wrote)', async () => {
      await admin.createTopics({
        topics: [
          {
            topic: 'zstd-state',
            numPartitions: 1,
            configEntries: [{ name: 'cleanup.policy', value: 'compact' }, { name: 'min.cleanable.dirty.ratio', value: '0.01' }, { name: 'compression.type', value: 'zstd' }],
          },
        ],
      })
      // Three kcat runs, a batch each as a rule (a long linger.ms keeps a run's lines together until kcat's flush at the end
      // of its input; a loaded machine may still split one, which changes how many batches are left, not their codec);
      // the newest is never compacted.
      for (const input of ['a\t1\nb\t1\nc\t1\n', 'a\t2\nb\t2\n', 'd\t1\n']) await kcat(['-b', broker.address, '-P', '-t', 'zstd-state', '-K', '\t', '-X', 'linger.ms=200'], { input })
      await waitFor('compaction to remove superseded values', async () => recordsOf((await readPartition(client, 'zstd-state', 0)).batches).length === 4)
      const { batches } = await readPartition(client, 'zstd-state', 0)
      // Every batch left, those the cleaner rewrote included, is zstd (codec 4 in the attributes' low bits).
      expect(batches.length).toBeGreaterThan(0)
      expect(batches.map((b) => b.header.attributes & 0x07)).toEqual(batches.map(() => 4))
      const { stdout } = await kcat(['-b', broker.address, '-C', '-t', 'zstd-state', '-e', '-q', '-f', '%o %k=%s\n'])
      expect(stdout.split('\n').filter(Boolean)).toEqual(['2 c=1', '3 a=2', '4 b=2', '5 d=1'])
    })

    it('drops the records without a key once their topic is switched to compaction, as Kafka\'s cleaner does', async () => {
      const settings = [{ name: 'min.cleanable.dirty.ratio', value: '0.01' }]
      await admin.createTopics({ topics: [{ topic: 'switched-state', numPartitions: 1, configEntries: settings }] })
      // Taken while the topic deletes: a compacted topic refuses records without a key.
      expect(await appendBatch('switched-state', 3, BigInt(Date.now()))).toBe(0n)
      const produced = await produceBatches('switched-state', HISTORY)
      await admin.alterConfigs({
        validateOnly: false,
        resources: [{ type: ConfigResourceTypes.TOPIC, name: 'switched-state', configEntries: [...settings, { name: 'cleanup.policy', value: 'compact' }] }],
      })
      await waitFor('compaction to remove the records without a key and superseded values', async () => {
        const records = recordsOf((await readPartition(client, 'switched-state', 0)).batches)
        return records.length === 5
      })
      const { batches, highWatermark } = await readPartition(client, 'switched-state', 0)
      expect(recordsOf(batches).map((r) => [String(r.offset), r.key?.toString() ?? null])).toEqual([
        [produced.get('thermostat-4=22.5'), 'thermostat-4'],
        [produced.get('thermostat-2=null'), 'thermostat-2'],
        [produced.get('thermostat-3=18.5'), 'thermostat-3'],
        [produced.get('thermostat-1=20.5'), 'thermostat-1'],
        [produced.get('thermostat-5=17.0'), 'thermostat-5'],
      ])
      expect(highWatermark).toBe(12n)
    })

    it('drops a tombstone once it is older than delete.retention.ms, even when nothing is written any more', async () => {
      await admin.createTopics({
        topics: [{
          topic: 'device-state-short',
          numPartitions: 1,
          configEntries: [
            { name: 'cleanup.policy', value: 'compact' },
            { name: 'min.cleanable.dirty.ratio', value: '0.01' },
            { name: 'delete.retention.ms', value: '1500' },
          ],
        }],
      })
      const produced = await produceBatches('device-state-short', HISTORY)
      await waitFor('the tombstone to be dropped', async () => {
        const records = recordsOf((await readPartition(client, 'device-state-short', 0)).batches)
        return records.length === 4
      })
      const { batches, highWatermark } = await readPartition(client, 'device-state-short', 0)
      expect(recordsOf(batches).map((r) => [String(r.offset), r.key!.toString(), r.value?.toString() ?? null])).toEqual([
        [produced.get('thermostat-4=22.5'), 'thermostat-4', '22.5'],
        [produced.get('thermostat-3=18.5'), 'thermostat-3', '18.5'],
        [produced.get('thermostat-1=20.5'), 'thermostat-1', '20.5'],
        [produced.get('thermostat-5=17.0'), 'thermostat-5', '17.0'],
      ])
      expect(highWatermark).toBe(9n)
    })

    it('__consumer_offsets compacts too, and committed offsets stay right across a restart', async () => {
      await createTopic(broker, 'meters', { partitions: 3 })
      // Many commits of the same three partitions: all but the newest of each are superseded.
      for (let round = 1; round <= 150; round++) {
        const codes = await commit(client, { groupId: 'meter-readers', offsets: { meters: { 0: BigInt(round), 1: BigInt(round * 2), 2: { offset: BigInt(round * 3), metadata: `round ${round}` } } } })
        expect(codes).toEqual({ meters: { 0: 0, 1: 0, 2: 0 } })
      }
      const partition = offsetsPartitionOf('meter-readers')
      await waitFor('__consumer_offsets to be compacted', async () => recordsOf((await readPartition(client, '__consumer_offsets', partition)).batches).length <= 6)

      await restartBroker()
      expect(await committedOffsets(client, 'meter-readers', { meters: [0, 1, 2] })).toEqual({ meters: { 0: 150n, 1: 300n, 2: 450n } })
      const { resources } = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: '__consumer_offsets' }] })
      expect(resources[0]!.configEntries.find((e) => e.configName === 'cleanup.policy')!.configValue).toBe('compact')
    })
  })

  /** Stops the broker (cleanly, or with kill -9) and starts it again on the same data, with fresh client connections. */
  async function restartBroker(options: { kill: boolean } = { kill: false }): Promise<void> {
    // Clients disconnect first: a broker's graceful stop waits for open connections to close.
    await producer.disconnect()
    await admin.disconnect()
    client.close()
    if (options.kill) await broker.kill()
    else await broker.stop()
    broker = await broker.restart()
    client = await connect(broker)
    kafka = new Kafka({ clientId: 'cleaner-test', brokers: [broker.address], logLevel: logLevel.NOTHING })
    admin = kafka.admin()
    producer = kafka.producer()
    await admin.connect()
    await producer.connect()
  }
})

/** Kafka's partitionFor(groupId): abs(String.hashCode) % offsets.topic.num.partitions (50). */
function offsetsPartitionOf(groupId: string): number {
  let hash = 0
  for (let i = 0; i < groupId.length; i++) hash = (Math.imul(hash, 31) + groupId.charCodeAt(i)) | 0
  return (hash === -2147483648 ? 0 : Math.abs(hash)) % 50
}

describe('the node\'s retention defaults (log.retention.ms, log.retention.bytes)', () => {
  it('apply to topics that set no retention of their own, which DescribeConfigs shows as STATIC_BROKER_CONFIG; a topic\'s retention.ms overrides them', async () => {
    const { broker, admin, producer } = await startKafkajsBroker({ ...CLEANER, logRetentionMs: 60_000 }, { clientId: 'retention-defaults' })
    const client = await connect(broker)
    try {
      await admin.createTopics({
        topics: [
          { topic: 'defaulted', numPartitions: 1 },
          { topic: 'kept', numPartitions: 1, configEntries: [{ name: 'retention.ms', value: '-1' }] },
        ],
      })
      const anHourAgo = String(Date.now() - 3_600_000)
      for (const topic of ['defaulted', 'kept']) await producer.send({ topic, messages: ['a', 'b'].map((value) => ({ value, timestamp: anHourAgo })) })

      await waitFor('retention to delete the hour-old batch of defaulted', async () => (await listOffset(client, 'defaulted', 0, EARLIEST)).offset === 2n)
      // Several more passes of the cleaner leave the topic that keeps everything as it was.
      await new Promise((resolve) => setTimeout(resolve, 600))
      expect((await listOffset(client, 'kept', 0, EARLIEST)).offset).toBe(0n)

      const { resources } = await admin.describeConfigs({ resources: [{ type: ConfigResourceTypes.TOPIC, name: 'defaulted', configNames: ['retention.ms', 'retention.bytes'] }], includeSynonyms: false })
      const entries = resources[0]!.configEntries.map((e) => [e.configName, e.configValue, (e as { configSource?: number }).configSource])
      expect(entries.sort()).toEqual([
        ['retention.bytes', '-1', 5],
        ['retention.ms', '60000', 4],
      ])
    } finally {
      client.close()
      await stopKafkajsBroker({ broker, admin, producer })
    }
  })
})
