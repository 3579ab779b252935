/**
 * @platformatic/kafka 1.35 against a three-node cluster of real processes. This client speaks the flexible versions
 * only (Metadata v12, Produce v9+, Fetch v12+ by topic id, the group APIs' latest), so it is the test of what a
 * cluster adds to those encodings: Metadata's replicas, ISR, offline replicas and leader epochs, the same from every
 * node, and the leader change a client must follow after a kill -9 (refused connections, then Metadata again).
 *
 * The fault: kill -9 of the leader of partition 0 while a platformatic producer sends numbered records with acks=all
 * to an RF=3 topic, one send at a time. Every send the client reports as acknowledged is kept (topic, partition,
 * offset, value); a platformatic consumer group then reads the topic from the start through the new leaders, and the
 * history checker (cluster/node/history.ts) fails on any acknowledged record missing or read at another offset than
 * its acknowledgement gave, and any offset read out of order. A send the client reports as failed (the request in
 * flight on the killed connection, which platformatic does not resend) may or may not be there; the summary counts it.
 */
import { afterAll, describe, expect, it } from 'vitest'
import { Admin, Consumer, Producer, ProduceAcks, stringDeserializers, stringSerializers, type Message } from '@platformatic/kafka'
import { QUICK_CLUSTER_ARGS, useCluster } from '../helpers/cluster.js'
import { waitFor } from '../helpers/wait.js'
import { History } from '../cluster/node/history.js'

/** A platformatic error with its nested causes' codes: `Producing messages failed. (NOT_LEADER_OR_FOLLOWER, PLT_KFK_NETWORK)`. */
function describeError(error: unknown): string {
  const leaves: string[] = []
  const walk = (e: { errors?: unknown[]; apiId?: string; code?: string; message?: string }): void => {
    if (e.errors?.length) for (const inner of e.errors) walk(inner as typeof e)
    else leaves.push(e.apiId ?? e.code ?? e.message ?? String(e))
  }
  walk(error as Parameters<typeof walk>[0])
  return `${(error as Error).message} (${[...new Set(leaves)].join(', ')})`
}

describe('@platformatic/kafka 1.35 against a three-node cluster', () => {
  const cluster = useCluster({ nodes: 3, extraArgs: [...QUICK_CLUSTER_ARGS, '--offsets-topic-partitions', '3'] })
  const closers: (() => Promise<void>)[] = []
  afterAll(async () => {
    for (const close of closers.reverse()) await close().catch(() => undefined)
  })

  const bootstrapBrokers = (): string[] => cluster().nodeIds.map((id) => `${cluster().host(id)}:${cluster().nodes.get(id)!.port}`)
  function admin(): Admin {
    const client = new Admin({ clientId: `plt-admin-${closers.length}`, bootstrapBrokers: bootstrapBrokers(), retries: 20, retryDelay: 250 })
    closers.push(() => client.close())
    return client
  }

  it('Metadata v12 names every replica, the ISR and the leader epoch of an RF=3 topic, the same through every node', async () => {
    const client = admin()
    const [created] = await client.createTopics({ topics: ['plt-placed'], partitions: 3, replicas: 3 })
    expect(created).toMatchObject({ name: 'plt-placed', partitions: 3, replicas: 3 })
    const described = await waitFor('every partition with its whole ISR', async () => {
      const metadata = await client.metadata({ topics: ['plt-placed'], forceUpdate: true })
      const partitions = metadata.topics.get('plt-placed')?.partitions ?? []
      return partitions.length === 3 && partitions.every((p) => p.isr.length === 3 && p.leader >= 1) && metadata
    })
    expect([...described.brokers.keys()].sort()).toEqual([1, 2, 3])
    const partitions = described.topics.get('plt-placed')!.partitions
    for (const partition of partitions) {
      expect([...partition.replicas].sort()).toEqual([1, 2, 3])
      expect([...partition.isr].sort()).toEqual([1, 2, 3])
      expect(partition.offlineReplicas).toEqual([])
      expect(partition.leader).toBe(partition.replicas[0])
      expect(partition.leaderEpoch).toBeGreaterThanOrEqual(0)
    }
    // Leaders are spread: three partitions on three nodes, each led by a different one.
    expect(new Set(partitions.map((p) => p.leader)).size).toBe(3)
    // Each node answers with the same placement (its own metadata image).
    for (const id of cluster().nodeIds) {
      const one = new Admin({ clientId: `plt-admin-via-${id}`, bootstrapBrokers: [`${cluster().host(id)}:${cluster().nodes.get(id)!.port}`] })
      try {
        // A node applies the topic's records a moment after the controller commits them.
        const seen = await waitFor(`node ${id}'s metadata to hold the topic`, async () =>
          (await one.metadata({ topics: ['plt-placed'], forceUpdate: true }).catch(() => undefined))?.topics.get('plt-placed'),
        )
        expect(seen.partitions).toEqual(partitions)
      } finally {
        await one.close()
      }
    }
  })

  /** A member of `groupId` reading `topic`'s two partitions from the earliest offset, committing nothing. */
  async function reader(groupId: string, topic: string, clientId: string) {
    const consumer = new Consumer<string, string, string, string>({
      clientId,
      groupId,
      bootstrapBrokers: bootstrapBrokers(),
      deserializers: stringDeserializers,
      sessionTimeout: 6000,
      heartbeatInterval: 500,
      retries: 20,
      retryDelay: 250,
    })
    closers.push(async () => void (await consumer.close(true)))
    const stream = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false, maxWaitTime: 200 })
    const read: { offset: bigint; value: string }[][] = [[], []]
    stream.on('data', (message: Message<string, string, string, string>) => read[message.partition]!.push({ offset: message.offset, value: message.value }))
    const distinct = (): number => read.reduce((sum, records) => sum + new Set(records.map((r) => r.offset)).size, 0)
    return { consumer, stream, read, distinct }
  }

  it('kill -9 of a partition leader while producing with acks=all: the producer follows the new leader, a consumer group reads every acknowledged record at its offset', async () => {
    const topic = 'plt-failover'
    const client = admin()
    await client.createTopics({ topics: [topic], partitions: 2, replicas: 3 })
    const leaderOf0 = await waitFor('partition 0 led, with its whole ISR', async () => {
      const partition = (await client.metadata({ topics: [topic], forceUpdate: true })).topics.get(topic)?.partitions[0]
      return partition && partition.isr.length === 3 && partition.leader >= 1 && partition.leader
    })

    const producer = new Producer({
      clientId: 'plt-failover-producer',
      bootstrapBrokers: bootstrapBrokers(),
      serializers: stringSerializers,
      retries: 40,
      retryDelay: 250,
      timeout: 5000,
    })
    closers.push(() => producer.close())
    const history = new History()
    let sent = 0
    let failed = 0
    const errors = new Set<string>()
    let stop = false
    const acknowledgedOn = [0, 0]
    const sending = (async () => {
      while (!stop) {
        const value = `v-${sent++}`
        const partition = sent % 2
        try {
          const result = await producer.send({ acks: ProduceAcks.ALL, messages: [{ topic, partition, key: value, value }] })
          const offset = result.offsets!.find((o) => o.partition === partition)!.offset
          history.acknowledge(topic, partition, offset, [value])
          acknowledgedOn[partition]!++
        } catch (error) {
          history.notAcknowledged(1)
          failed++
          errors.add(describeError(error))
        }
      }
    })()

    await waitFor('acknowledged records on both partitions', () => acknowledgedOn[0]! >= 20 && acknowledgedOn[1]! >= 20)
    // The group reads before the fault too, so __consumer_offsets exists: created after it, with one of three nodes
    // dead, it would be refused as in Kafka (offsets.topic.replication.factor 3 needs three live brokers).
    const early = await reader('plt-failover-readers', topic, 'plt-early-reader')
    await waitFor('the group reading', () => early.distinct() >= 10)
    await early.stream.close()
    await early.consumer.close(true)
    const before = history.acknowledgedCount
    const before0 = acknowledgedOn[0]!
    await cluster().nodes.get(leaderOf0)!.kill()
    await waitFor('records acknowledged on partition 0 after the kill', () => acknowledgedOn[0]! >= before0 + 30, { timeoutMs: 60_000 })
    stop = true
    await sending

    const moved = (await client.metadata({ topics: [topic], forceUpdate: true })).topics.get(topic)!.partitions[0]!
    expect(moved.leader).not.toBe(leaderOf0)
    expect(moved.leader).toBeGreaterThanOrEqual(1)
    expect(moved.isr).not.toContain(leaderOf0)

    // Then the group reads both partitions from the start through their new leaders. (A platformatic fetch retries
    // the node it was sent to, so a member reading across the kill gives up on the dead leader after its retries.)
    const { stream, read, distinct } = await reader('plt-failover-readers', topic, 'plt-reader')
    const acknowledged = history.acknowledgedCount
    await waitFor('every acknowledged record read back', () => distinct() >= acknowledged, { timeoutMs: 60_000 }).catch(() => undefined)
    await stream.close()
    // A rebalance (the group's coordinator may have been on the killed node) starts the member again from the
    // earliest offset, as it commits nothing: such a rewind is not an order violation.
    read.forEach((records, partition) => history.consumed(topic, partition, records, { rewinds: 'allowed' }))
    const { problems, summary } = history.check()
    console.log(`platformatic failover: ${summary}; ${failed} sends failed (${[...errors].join('; ') || 'none'})`)
    expect(problems).toEqual([])
    expect(acknowledged).toBeGreaterThanOrEqual(before + 30)
  }, 180_000)
})
