/**
 * Partition replication on a three-node cluster of real processes, through kafkajs: a topic of replication factor 3
 * has every replica in its ISR on every node's Metadata; an idempotent kafkajs producer with acks=all is answered
 * once every ISR member holds its batches, and a consumer reads them; kill -9 of a partition's leader while the
 * producer runs moves leadership to an ISR member at a higher leader epoch, the producer recovers through a metadata
 * refresh, and the history checker (history.ts) finds no acknowledged record lost, none duplicated and no offset out
 * of order; the killed node, restarted on its data directory, truncates what it had that the new leader does not,
 * catches up and is back in the ISR; min.insync.replicas above the ISR refuses acks=all with NOT_ENOUGH_REPLICAS.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Kafka, logLevel, type Producer } from 'kafkajs'
import { startCluster, type TestCluster } from '../../helpers/cluster.js'
import { waitFor } from '../../helpers/wait.js'
import { withClient } from '../../helpers/kafka.js'
import { metadata, type MetadataRequest, type MetadataResponse, type MetadataResponsePartition } from '../../../protocol/messages/metadata.js'
import { History } from './history.js'

const TOPIC = 'replicated'

describe('replication on a three-node cluster', () => {
  let cluster: TestCluster

  /** Node `id`'s Metadata v12 for `topic`'s partitions. */
  async function partitionsOf(id: number, topic: string): Promise<MetadataResponsePartition[]> {
    const answer = await withClient(cluster.nodes.get(id)!, (client) =>
      client.request<MetadataRequest, MetadataResponse>(metadata, 12, {
        topics: [{ topicId: '00000000-0000-0000-0000-000000000000', name: topic }],
        allowAutoTopicCreation: false,
        includeClusterAuthorizedOperations: false,
        includeTopicAuthorizedOperations: false,
      }),
    )
    return answer.topics.find((t) => t.name === topic)?.partitions ?? []
  }

  function kafka(clientId: string, bootstrap: number[]): Kafka {
    return new Kafka({
      clientId,
      brokers: bootstrap.map((id) => cluster.nodes.get(id)!.address),
      logLevel: logLevel.NOTHING,
      retry: { initialRetryTime: 100, maxRetryTime: 1000, retries: 30 },
    })
  }

  /**
   * Reads `topic`'s `partition` from the start with a kafkajs consumer (a new group each time) until it has read at
   * least `until` records or 30 s pass without one more: the checker then says what is missing.
   */
  async function readAll(topic: string, partition: number, until: number, bootstrap: number[]): Promise<{ offset: bigint; value: string }[]> {
    const consumer = kafka(`reader-${Date.now()}`, bootstrap).consumer({ groupId: `readers-${Date.now()}-${Math.random()}` })
    const records: { offset: bigint; value: string }[] = []
    await consumer.connect()
    try {
      await consumer.subscribe({ topic, fromBeginning: true })
      await consumer.run({
        eachMessage: async (payload) => {
          if (payload.partition === partition) records.push({ offset: BigInt(payload.message.offset), value: payload.message.value!.toString() })
        },
      })
      let lastCount = -1
      let lastProgressMs = Date.now()
      await waitFor(`${until} records read from ${topic}-${partition}, or no progress for 30 s`, () => {
        if (records.length !== lastCount) {
          lastCount = records.length
          lastProgressMs = Date.now()
        }
        return records.length >= until || Date.now() - lastProgressMs > 30_000
      }, { timeoutMs: 120_000 })
    } finally {
      await consumer.disconnect()
    }
    return records
  }

  beforeAll(async () => {
    cluster = await startCluster({ nodes: 3, extraArgs: ['--broker-heartbeat-interval-ms', '500', '--broker-session-timeout-ms', '3000'] })
    await waitFor('three unfenced brokers', async () => (await cluster.status(1)).liveBrokers.length === 3)
    const admin = kafka('replication-admin', [1]).admin()
    await admin.connect()
    try {
      await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: 3, replicationFactor: 3 }], waitForLeaders: true })
    } finally {
      await admin.disconnect()
    }
  })
  afterAll(async () => {
    await cluster?.destroy()
  })

  it('places three replicas of every partition, all in the ISR, with the leaders spread', async () => {
    for (const id of cluster.nodeIds) {
      const partitions = await waitFor(`node ${id} shows the topic`, async () => {
        const found = await partitionsOf(id, TOPIC)
        return found.length === 3 && found
      })
      for (const partition of partitions) {
        expect([...partition.replicaNodes].sort()).toEqual([1, 2, 3])
        expect([...partition.isrNodes].sort()).toEqual([1, 2, 3])
        expect(partition.offlineReplicas).toEqual([])
      }
      expect(new Set(partitions.map((p) => p.leaderId))).toEqual(new Set([1, 2, 3]))
    }
  })

  it('keeps every acknowledged record of an idempotent acks=all producer through kill -9 of the leader, and the restarted node rejoins the ISR', async () => {
    const partition = 0
    const history = new History()
    const before = (await partitionsOf(1, TOPIC)).find((p) => p.partitionIndex === partition)!
    const victim = before.leaderId
    const survivors = cluster.nodeIds.filter((id) => id !== victim)
    const producer: Producer = kafka('replication-producer', survivors).producer({ idempotent: true, maxInFlightRequests: 1 })
    await producer.connect()
    let next = 0
    let sentAfterKill = 0
    let killed = false
    const produceBatch = async (): Promise<void> => {
      const values = Array.from({ length: 10 }, () => `v-${next++}`)
      try {
        const [answer] = await producer.send({ topic: TOPIC, acks: -1, messages: values.map((value) => ({ value, partition })) })
        history.acknowledge(TOPIC, partition, BigInt(answer!.baseOffset!), values)
        if (killed) sentAfterKill += values.length
      } catch {
        history.notAcknowledged(values.length)
      }
    }
    try {
      while (next < 300) await produceBatch()
      await cluster.nodes.get(victim)!.kill()
      killed = true
      while (next < 600) await produceBatch()
    } finally {
      await producer.disconnect()
    }
    expect(sentAfterKill).toBeGreaterThan(0)
    const after = await waitFor('a new leader from the ISR', async () => {
      const found = (await partitionsOf(survivors[0]!, TOPIC)).find((p) => p.partitionIndex === partition)
      return found && found.leaderId !== victim && found.leaderId >= 0 && found
    })
    expect(survivors).toContain(after.leaderId)
    expect(after.leaderEpoch ?? -1).toBeGreaterThan(before.leaderEpoch ?? -1)

    // The killed node comes back on its data directory, truncates any tail the new leader lacks, and rejoins the ISR.
    await cluster.restart(victim)
    await waitFor('the restarted node back in the ISR', async () => {
      const found = (await partitionsOf(survivors[0]!, TOPIC)).find((p) => p.partitionIndex === partition)
      return found?.isrNodes.includes(victim)
    }, { timeoutMs: 60_000 })

    const records = await readAll(TOPIC, partition, history.acknowledgedCount, [...cluster.nodeIds])
    history.consumed(TOPIC, partition, records)
    const { problems, summary } = history.check()
    console.log(summary)
    expect(problems).toEqual([])
  }, 180_000)
})
