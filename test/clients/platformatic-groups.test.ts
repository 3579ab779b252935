/**
 * @platformatic/kafka 1.35 consumer groups against a real broker process: the flexible versions of the group APIs
 * (FindCoordinator v4+ with batched keys, JoinGroup v9, SyncGroup v5, Heartbeat v4, OffsetCommit v8+, OffsetFetch
 * v8+ multi-group layout, LeaveGroup v5) from a client that sends nothing else. Its consumers read, as a group,
 * what kafkajs wrote, and their commits are what kafkajs's admin reads back.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { Consumer, stringDeserializers, type Message } from '@platformatic/kafka'
import type { Admin, Producer } from 'kafkajs'
import { FAST_GROUPS } from '../helpers/broker-config.js'
import type { BrokerProcess } from '../helpers/broker.js'
import { waitFor } from '../helpers/wait.js'
import { startKafkajsBroker, stopKafkajsBroker } from '../helpers/kafkajs-broker.js'

type StringMessage = Message<string, string, string, string>

describe('@platformatic/kafka consumer groups', () => {
  let broker: BrokerProcess
  let admin: Admin
  let producer: Producer
  const consumers: Consumer<string, string, string, string>[] = []

  beforeAll(async () => {
    // A first rebalance that waits long enough for both consumers of a test to arrive together.
    ;({ broker, admin, producer } = await startKafkajsBroker({ ...FAST_GROUPS, groupInitialRebalanceDelayMs: 1500 }, { clientId: 'platformatic-groups-test' }))
  })
  afterEach(async () => {
    for (const consumer of consumers.splice(0)) await consumer.close(true)
  })
  afterAll(async () => {
    await stopKafkajsBroker({ broker, admin, producer })
  })

  async function startConsumer(groupId: string, topic: string, options: { groupInstanceId?: string } = {}) {
    const consumer = new Consumer<string, string, string, string>({
      clientId: `plt-${consumers.length}`,
      groupId,
      bootstrapBrokers: [broker.address],
      sessionTimeout: 3000,
      rebalanceTimeout: 6000,
      heartbeatInterval: 300,
      deserializers: stringDeserializers,
      ...options,
    })
    consumers.push(consumer)
    const received: StringMessage[] = []
    const stream = await consumer.consume({ topics: [topic], mode: 'committed', fallbackMode: 'earliest', autocommit: 200, maxWaitTime: 200 })
    stream.on('data', (message: StringMessage) => received.push(message))
    return { consumer, received }
  }

  it('a group of two reads every record kafkajs wrote, once, with keys and headers, and commits where it stopped', async () => {
    const topic = 'orders-plt'
    const groupId = 'plt-readers'
    await admin.createTopics({ topics: [{ topic, numPartitions: 4 }] })
    // The second member is static (group.instance.id, JoinGroup v9 with an instance id).
    const [first, second] = await Promise.all([startConsumer(groupId, topic), startConsumer(groupId, topic, { groupInstanceId: 'plt-static' })])

    const owned = (consumer: Consumer<string, string, string, string>) => (consumer.assignments ?? []).flatMap((a) => a.partitions)
    await waitFor('both consumers to own two partitions of one Stable generation', async () => {
      if (owned(first.consumer).length !== 2 || owned(second.consumer).length !== 2) return false
      if (first.consumer.generationId !== second.consumer.generationId) return false
      const [group] = (await admin.describeGroups([groupId])).groups
      return group!.state === 'Stable' && group!.members.length === 2
    })
    // platformatic pushes whatever a fetch returns, even for partitions it lost in a rebalance since the fetch was
    // sent (clients/consumer/messages-stream.js #pushRecords). If the members did not meet in the first generation,
    // let any fetch from before the last rebalance run out (maxWaitTime is 200 ms) before producing.
    if (first.consumer.generationId > 1) await new Promise((resolve) => setTimeout(resolve, 1000))
    const [described] = (await admin.describeGroups([groupId])).groups
    expect(described!.members.map((m) => m.clientId).sort()).toEqual(['plt-0', 'plt-1'])

    const sent = Array.from({ length: 40 }, (_, i) => ({ partition: i % 4, key: `order-${i}`, value: JSON.stringify({ order: i }), headers: { source: 'kafkajs' } }))
    await producer.send({ topic, messages: sent })
    await waitFor('all 40 records', () => first.received.length + second.received.length >= 40)

    const received = [...first.received, ...second.received]
    expect(received.map((m) => m.key).sort()).toEqual(sent.map((m) => m.key).sort())
    for (const message of received) {
      expect(message.value).toBe(JSON.stringify({ order: Number(message.key.split('-')[1]) }))
      expect(message.headers.get('source')).toBe('kafkajs')
      expect(message.partition).toBe(Number(message.key.split('-')[1]) % 4)
    }
    for (const { consumer, received: mine } of [first, second]) {
      expect(mine.length).toBeGreaterThan(0)
      for (const message of mine) expect(owned(consumer)).toContain(message.partition)
    }

    await waitFor('the autocommits to reach the end of every partition', async () => {
      const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] })
      return offsets!.partitions.every((p) => p.offset === '10')
    })
    // platformatic reads its commits back through OffsetFetch v8+ (one group of the multi-group layout).
    const committed = await first.consumer.listCommittedOffsets({ topics: [{ topic, partitions: [0, 1, 2, 3] }] })
    expect(committed.get(topic)).toEqual([10n, 10n, 10n, 10n])
  })

  it('a consumer that closes leaves the group (LeaveGroup v5) and the other one takes over from the committed offsets', async () => {
    const topic = 'payments-plt'
    const groupId = 'plt-takeover'
    await admin.createTopics({ topics: [{ topic, numPartitions: 2 }] })
    const [staying, leaving] = await Promise.all([startConsumer(groupId, topic), startConsumer(groupId, topic)])
    await waitFor('one partition each', () => staying.consumer.assignments?.[0]?.partitions.length === 1 && leaving.consumer.assignments?.[0]?.partitions.length === 1)
    // As in the test above: a fetch sent before the last rebalance runs out before anything is produced.
    if (staying.consumer.generationId > 1) await new Promise((resolve) => setTimeout(resolve, 1000))
    await producer.send({ topic, messages: Array.from({ length: 10 }, (_, i) => ({ partition: i % 2, key: `before-${i}`, value: 'x' })) })
    await waitFor('the records before the leave', () => staying.received.length + leaving.received.length >= 10)
    await waitFor('their commits', async () => (await admin.fetchOffsets({ groupId, topics: [topic] }))[0]!.partitions.every((p) => p.offset === '5'))

    await leaving.consumer.close(true)
    consumers.splice(consumers.indexOf(leaving.consumer), 1)
    await waitFor('the remaining consumer to own both partitions', () => staying.consumer.assignments?.[0]?.partitions.length === 2)
    await producer.send({ topic, messages: Array.from({ length: 10 }, (_, i) => ({ partition: i % 2, key: `after-${i}`, value: 'y' })) })
    const keys = (): string[] => staying.received.map((m) => `${m.key}@${m.partition}/${m.offset}`)
    await waitFor('the records after the leave', () => new Set(staying.received.filter((m) => m.key.startsWith('after-')).map((m) => m.key)).size === 10)
    // It resumed at the committed offsets: it read none of the records from before of the partition it took over,
    // and those of its own partition once. (A record from after may come twice: platformatic hands over what a fetch
    // sent before the rebalance returns, then fetches again from the committed offset, as an at-least-once consumer
    // may.)
    const before = staying.received.filter((m) => m.key.startsWith('before-'))
    const own = before[0]!.partition
    expect(before.map((m) => m.partition), keys().join(' ')).toEqual([own, own, own, own, own])
    expect(new Set(before.map((m) => m.key)).size, keys().join(' ')).toBe(5)
  })
})
