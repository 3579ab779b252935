/**
 * Groups across broker restarts and over time, with real broker processes and kafkajs: committed offsets and group
 * metadata come back after a clean stop and after kill -9 (they live in __consumer_offsets, replayed at start), the
 * offsets of a deleted topic do not (Kafka's coordinator removes them, with tombstones), and
 * offsets.retention.minutes expires the offsets of groups that stayed empty, never those of groups with members
 * (KIP-211).
 */
import { describe, it, type TestContext } from 'vitest'
import { Kafka, logLevel, type Admin, type Consumer, type Producer } from 'kafkajs'
import type { KafkaClient } from '../../../client/kafka-client.js'
import { startConfiguredBroker, FAST_GROUPS } from '../../helpers/broker-config.js'
import type { BrokerProcess } from '../../helpers/broker.js'
import { connect, createTopic } from '../../helpers/kafka.js'
import { commit, committedOffsets, formGroup, join, keepAlive } from '../../helpers/groups-wire.js'
import { waitFor } from '../../helpers/wait.js'
import { loggedErrors } from '../../helpers/broker-log.js'
import { brook } from '../../cli/run-brook.js'

const CONSUMER_TIMINGS = { sessionTimeout: 3000, rebalanceTimeout: 6000, heartbeatInterval: 300, maxWaitTimeInMs: 200 }

/** A broker with kafkajs clients that can be torn down and rebuilt around restarts. */
class Harness {
  kafka!: Kafka
  admin!: Admin
  producer!: Producer
  readonly consumers: Consumer[] = []
  readonly raw: KafkaClient[] = []

  constructor(public broker: BrokerProcess) {}

  static async start(config: Parameters<typeof startConfiguredBroker>[0]): Promise<Harness> {
    const harness = new Harness(await startConfiguredBroker(config))
    await harness.connectClients()
    return harness
  }

  async connectClients(): Promise<void> {
    this.kafka = new Kafka({ clientId: 'durability', brokers: [this.broker.address], logLevel: logLevel.NOTHING, retry: { retries: 20, initialRetryTime: 100, maxRetryTime: 1000 } })
    this.admin = this.kafka.admin()
    this.producer = this.kafka.producer()
    await this.admin.connect()
    await this.producer.connect()
  }

  async disconnectClients(): Promise<void> {
    for (const consumer of this.consumers.splice(0)) await consumer.disconnect()
    for (const client of this.raw.splice(0)) client.close()
    await this.producer.disconnect()
    await this.admin.disconnect()
  }

  async client(): Promise<KafkaClient> {
    const client = await connect(this.broker)
    this.raw.push(client)
    return client
  }

  consumer(groupId: string): Consumer {
    const consumer = this.kafka.consumer({ groupId, ...CONSUMER_TIMINGS })
    this.consumers.push(consumer)
    return consumer
  }

  /** A clean stop (clients first: a graceful stop waits for open connections) and a start on the same data. */
  async restart(): Promise<void> {
    await this.disconnectClients()
    await this.broker.stop()
    this.broker = await this.broker.restart()
    await this.connectClients()
  }

  async close(): Promise<void> {
    await this.disconnectClients().catch(() => undefined)
    await this.broker.kill()
    this.broker.cleanup()
  }
}

/**
 * A harness for the test of `context`, closed when that test ends, whose broker (the last one, after restarts) must
 * have logged no error by then.
 */
async function harnessFor(context: TestContext, config: Parameters<typeof startConfiguredBroker>[0]): Promise<Harness> {
  const harness = await Harness.start(config)
  context.onTestFinished(async () => {
    await harness.close()
    context.expect(loggedErrors(harness.broker)).toEqual([])
  })
  return harness
}

/**
 * Two lanes that run side by side, each test on a broker of its own: the restart tests one after another, and the
 * offsets.retention.minutes tests, whose expiry test spends a minute waiting for the retention to pass.
 */
describe('group durability', () => {
  /** Runs a consumer that records what it reads; autocommits after every batch. */
  async function runConsumer(h: Harness, groupId: string, topic: string) {
    const consumer = h.consumer(groupId)
    const read: { partition: number; offset: bigint }[] = []
    await consumer.connect()
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await consumer.run({ autoCommitThreshold: 1, eachMessage: async ({ partition, message }) => void read.push({ partition, offset: BigInt(message.offset) }) })
    return { consumer, read }
  }

  /** Every committed offset of a group, as kafkajs's admin lists them (OffsetFetch for all topics): topic -> offsets. */
  async function allCommitted(h: Harness, groupId: string): Promise<Record<string, string[]>> {
    const topics = await h.admin.fetchOffsets({ groupId })
    return Object.fromEntries(topics.map((t) => [t.topic, t.partitions.sort((a, b) => a.partition - b.partition).map((p) => p.offset)]))
  }

  async function committed(h: Harness, groupId: string, topic: string): Promise<string[]> {
    const [offsets] = await h.admin.fetchOffsets({ groupId, topics: [topic] })
    return offsets!.partitions.sort((a, b) => a.partition - b.partition).map((p) => p.offset)
  }

  // Concurrent with the retention lane; its own tests run one after another.
  describe('across restarts', { concurrent: true }, () => {
    it.sequential('committed offsets and group metadata survive a clean restart; the next consumer resumes from them', async (context) => {
      const { expect } = context
      const h = await harnessFor(context, FAST_GROUPS)
      await h.admin.createTopics({ topics: [{ topic: 'orders', numPartitions: 2 }] })
      await h.producer.send({ topic: 'orders', messages: Array.from({ length: 10 }, (_, i) => ({ partition: i % 2, value: `o${i}` })) })
      await runConsumer(h, 'fulfilment', 'orders')
      await waitFor('the commits of all ten records', async () => (await committed(h, 'fulfilment', 'orders')).join() === '5,5')

      await h.restart()
      expect(await committed(h, 'fulfilment', 'orders')).toEqual(['5', '5'])
      const [group] = (await h.admin.describeGroups(['fulfilment'])).groups
      expect(group).toMatchObject({ groupId: 'fulfilment', state: 'Empty', protocolType: 'consumer', members: [] })
      expect((await h.admin.listGroups()).groups).toContainEqual({ groupId: 'fulfilment', protocolType: 'consumer' })

      await h.producer.send({ topic: 'orders', messages: [{ partition: 0, value: 'late-0' }, { partition: 1, value: 'late-1' }] })
      const next = await runConsumer(h, 'fulfilment', 'orders')
      await waitFor('the two new records', () => next.read.length >= 2)
      expect(next.read.map((r) => [r.partition, r.offset]).sort()).toEqual([[0, 5n], [1, 5n]])
    })

    it.sequential('after kill -9 the broker comes back with the group: a running consumer carries on from its commits', async (context) => {
      const { expect } = context
      const h = await harnessFor(context, FAST_GROUPS)
      await h.admin.createTopics({ topics: [{ topic: 'sensor-events', numPartitions: 2 }] })
      await h.producer.send({ topic: 'sensor-events', messages: Array.from({ length: 20 }, (_, i) => ({ partition: i % 2, value: `e${i}` })) })
      const running = await runConsumer(h, 'alerting', 'sensor-events')
      await waitFor('the commits of the first twenty records', async () => (await committed(h, 'alerting', 'sensor-events')).join() === '10,10')
      const readBeforeKill = running.read.length

      await h.broker.kill()
      h.broker = await h.broker.restart()
      // The commits were acknowledged, so they were written: they are there after the crash.
      const client = await h.client()
      expect(await committedOffsets(client, 'alerting', { 'sensor-events': [0, 1] })).toEqual({ 'sensor-events': { 0: 10n, 1: 10n } })

      // kafkajs reconnects by itself (same address); new records reach the same consumer, and nothing committed before
      // the crash is read again.
      const producer = new Kafka({ clientId: 'after-crash', brokers: [h.broker.address], logLevel: logLevel.NOTHING }).producer()
      await producer.connect()
      await producer.send({ topic: 'sensor-events', messages: Array.from({ length: 10 }, (_, i) => ({ partition: i % 2, value: `f${i}` })) })
      await producer.disconnect()
      await waitFor('the consumer to read the new records', () => running.read.filter((r) => r.offset >= 10n).length >= 10, { timeoutMs: 60_000 })
      expect(running.read.slice(readBeforeKill).every((r) => r.offset >= 10n)).toBe(true)
      expect(running.read.filter((r) => r.offset >= 10n).map((r) => `${r.partition}:${r.offset}`).sort()).toEqual(
        [0, 1].flatMap((p) => [10, 11, 12, 13, 14].map((o) => `${p}:${o}`)).sort(),
      )
      await waitFor('the new commits', async () => (await committedOffsets(client, 'alerting', { 'sensor-events': [0, 1] }))['sensor-events']![0] === 15n)
    })

    it.sequential('a broker asked to stop while group members are connected stops, and its groups come back', async (context) => {
      const { expect } = context
      const h = await harnessFor(context, FAST_GROUPS)
      await createTopic(h.broker, 'heartbeats', { partitions: 2 })
      const members = await formGroup([await h.client(), await h.client()], { groupId: 'connected', topics: { heartbeats: 2 } })
      await commit(members[0]!.client, { groupId: 'connected', generationId: members[0]!.generationId, memberId: members[0]!.memberId, offsets: { heartbeats: { 0: 3n } } })

      // SIGTERM with the members' connections (and kafkajs's) still open: a stopping broker closes them itself.
      const stopped = await Promise.race([
        h.broker.stop().then(() => true),
        new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 15_000)),
      ])
      expect(stopped, 'the broker did not exit within 15 s of SIGTERM while clients were connected').toBe(true)
      await h.disconnectClients().catch(() => undefined)
      h.broker = await h.broker.restart()
      await h.connectClients()
      const client = await h.client()
      expect(await committedOffsets(client, 'connected', { heartbeats: [0] })).toEqual({ heartbeats: { 0: 3n } })
      expect((await h.admin.describeGroups(['connected'])).groups[0]!.protocolType).toBe('consumer')
    })

    it.sequential('deleting a topic removes every group\'s committed offsets for it, for good: a consumer of the topic created again starts at its first record', async (context) => {
      const { expect } = context
      const h = await harnessFor(context, FAST_GROUPS)
      await h.admin.createTopics({ topics: [{ topic: 'meters', numPartitions: 1 }, { topic: 'valves', numPartitions: 1 }] })
      await h.producer.send({ topic: 'meters', messages: Array.from({ length: 12 }, (_, i) => ({ value: `old-${i}` })) })
      await h.producer.send({ topic: 'valves', messages: Array.from({ length: 5 }, (_, i) => ({ value: `valve-${i}` })) })

      // 'billing' is a kafkajs group that commits meters/0 = 10 and valves/0 = 3, then leaves; 'audit' only commits.
      const billing = h.consumer('billing')
      await billing.connect()
      await billing.subscribe({ topics: ['meters', 'valves'], fromBeginning: true })
      await billing.run({ autoCommit: false, eachMessage: async () => undefined })
      await waitFor('billing to be Stable', async () => (await h.admin.describeGroups(['billing'])).groups[0]!.state === 'Stable')
      await billing.commitOffsets([{ topic: 'meters', partition: 0, offset: '10' }, { topic: 'valves', partition: 0, offset: '3' }])
      h.consumers.splice(h.consumers.indexOf(billing), 1)
      await billing.disconnect()
      await h.admin.setOffsets({ groupId: 'audit', topic: 'meters', partitions: [{ partition: 0, offset: '10' }] })
      expect(await allCommitted(h, 'billing')).toEqual({ meters: ['10'], valves: ['3'] })
      expect(await allCommitted(h, 'audit')).toEqual({ meters: ['10'] })

      await h.admin.deleteTopics({ topics: ['meters'] })
      const expectGone = async (): Promise<void> => {
        expect(await allCommitted(h, 'billing')).toEqual({ valves: ['3'] })
        // A group left with neither members nor offsets is gone, as Kafka's coordinator drops it.
        expect((await h.admin.listGroups()).groups.map((g) => g.groupId)).not.toContain('audit')
        expect(await allCommitted(h, 'audit')).toEqual({})
      }
      await expectGone()

      // The removal was written (tombstones in __consumer_offsets): a crash does not bring the offsets back.
      await h.disconnectClients()
      await h.broker.kill()
      h.broker = await h.broker.restart()
      await h.connectClients()
      await expectGone()

      await h.admin.createTopics({ topics: [{ topic: 'meters', numPartitions: 1 }] })
      await h.producer.send({ topic: 'meters', messages: Array.from({ length: 12 }, (_, i) => ({ value: `new-${i}` })) })
      expect(await committed(h, 'billing', 'meters')).toEqual(['-1'])
      const described = await brook(['groups', 'describe', 'billing', '--bootstrap-server', h.broker.address])
      expect(described.code).toBe(0)
      expect(described.stdout.split('\n').filter((line) => line.startsWith('billing ')).map((line) => line.split(/\s+/).slice(1, 4))).toEqual([['valves', '0', '3']])

      await h.restart()
      await expectGone()
      expect(await committed(h, 'billing', 'meters')).toEqual(['-1'])

      // A consumer of the new topic reads it from its first record, not from the old topic's offset 10.
      const next = h.consumer('billing')
      const read: { topic: string; offset: string; value: string }[] = []
      await next.connect()
      await next.subscribe({ topics: ['meters', 'valves'], fromBeginning: true })
      await next.run({ eachMessage: async ({ topic, message }) => void read.push({ topic, offset: message.offset, value: message.value!.toString() }) })
      await waitFor('all twelve new records and the two uncommitted valve records', () => read.length >= 14)
      expect(read.filter((r) => r.topic === 'meters').map((r) => `${r.offset}:${r.value}`)).toEqual(Array.from({ length: 12 }, (_, i) => `${i}:new-${i}`))
      expect(read.filter((r) => r.topic === 'valves').map((r) => r.offset)).toEqual(['3', '4'])
    })
  })

  describe('offsets.retention.minutes', { concurrent: true }, () => {
    // offsets.retention.minutes is a whole number of minutes (at least 1, as in Kafka), so this test takes a minute;
    // the check runs every 200 ms.
    const RETENTION = { ...FAST_GROUPS, offsetsRetentionMinutes: 1, offsetsRetentionCheckIntervalMs: 200 }

    it('expires the offsets of groups that stay empty and forgets them; a group with members keeps its offsets', { timeout: 180_000 }, async (context) => {
      const { expect } = context
      const h = await harnessFor(context, RETENTION)
      await createTopic(h.broker, 'metrics', { partitions: 2 })

      // 'live' commits first and keeps a member (heartbeating) for the whole test.
      const [member] = await formGroup([await h.client()], { groupId: 'live', topics: { metrics: 2 }, sessionTimeoutMs: 10_000 })
      const alive = keepAlive(member!.client, { groupId: 'live', generationId: member!.generationId, memberId: member!.memberId })
      // It also commits for a topic it does not subscribe to: that offset expires by its age even so.
      await createTopic(h.broker, 'unrelated', { partitions: 1 })
      const live = { groupId: 'live', generationId: member!.generationId, memberId: member!.memberId }
      expect(await commit(member!.client, { ...live, offsets: { metrics: { 0: 11n, 1: 12n }, unrelated: { 0: 4n } } })).toEqual({ metrics: { 0: 0, 1: 0 }, unrelated: { 0: 0 } })

      // 'standalone' only commits (no members ever); 'drained' is a kafkajs group whose consumer leaves.
      const client = await h.client()
      expect(await commit(client, { groupId: 'standalone', offsets: { metrics: { 0: 7n } } })).toEqual({ metrics: { 0: 0 } })
      const drained = h.consumer('drained')
      await drained.connect()
      await drained.subscribe({ topics: ['metrics'], fromBeginning: true })
      await drained.run({ eachMessage: async () => undefined })
      await waitFor('the drained group to be Stable', async () => (await h.admin.describeGroups(['drained'])).groups[0]!.state === 'Stable')
      await drained.commitOffsets([{ topic: 'metrics', partition: 0, offset: '1' }])
      h.consumers.splice(h.consumers.indexOf(drained), 1)
      await drained.disconnect()

      const listed = async () => new Set((await h.admin.listGroups()).groups.map((g) => g.groupId))
      await waitFor('the empty groups to expire', async () => {
        const groups = await listed()
        return !groups.has('standalone') && !groups.has('drained')
      }, { timeoutMs: 100_000, intervalMs: 500 })
      expect(await committedOffsets(client, 'standalone', { metrics: [0] })).toEqual({ metrics: { 0: -1n } })
      expect(await committedOffsets(client, 'drained', { metrics: [0] })).toEqual({ metrics: { 0: -1n } })
      // 'live' committed before the others, but its member keeps it and the offsets of the topic it consumes (KIP-211).
      expect((await listed()).has('live')).toBe(true)
      expect(await committedOffsets(client, 'live', { metrics: [0, 1], unrelated: [0] })).toEqual({ metrics: { 0: 11n, 1: 12n }, unrelated: { 0: -1n } })
      expect(alive.codes.every((code) => code === 0)).toBe(true)
      alive.stop()

      // The expiry was written (tombstones): after a restart the expired groups stay gone.
      await h.restart()
      const after = await h.client()
      expect(await committedOffsets(after, 'standalone', { metrics: [0] })).toEqual({ metrics: { 0: -1n } })
      expect(await listed()).not.toContain('drained')
    })

    it('does not forget a new group while a member handed its id (MEMBER_ID_REQUIRED) has yet to join', async (context) => {
      const { expect } = context
      const harness = await harnessFor(context, RETENTION)
      const client = await harness.client()
      await createTopic(harness.broker, 'metrics', { partitions: 1 })
      const first = await join(client, { version: 4, groupId: 'newborn', topics: ['metrics'] })
      expect(first.errorCode).toBe(79)
      // An empty group without offsets is otherwise forgotten by the next expiry check (every 200 ms here): give it
      // several checks before the member comes back.
      await new Promise((resolve) => setTimeout(resolve, 1000))
      const second = await join(client, { version: 4, groupId: 'newborn', memberId: first.memberId, topics: ['metrics'] })
      expect(second).toMatchObject({ errorCode: 0, memberId: first.memberId, leader: first.memberId })
    })
  })
})
