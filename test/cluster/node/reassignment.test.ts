/**
 * Partition reassignment (KIP-455) on a three-node cluster of real processes:
 *
 * - an idempotent kafkajs producer writes with acks=all to two partitions while @platformatic/kafka's own
 *   AlterPartitionReassignments (sent to a node that is not the active controller, so it is forwarded) moves partition
 *   0 from [1] to [2, 3] and partition 1 from [2] to [3], whose leader must move; its ListPartitionReassignments shows
 *   them under way until the new replicas have caught up. Then every node's Metadata shows the new replicas, ISR and
 *   leaders at a later leader epoch, the nodes taken off say they emptied their logs, kcat reads every record from the
 *   new leaders, and the history checker finds every acknowledged record, none twice, offsets in order;
 * - with node 1 killed, a move to [3, 1] stays under way (node 1 cannot catch up); `brook topics reassignments` lists
 *   it (and `brook topics describe` shows what is added and removed, as kafka-topics.sh does), `brook topics reassign
 *   --cancel` takes it back to [3], and bad requests get Kafka's per-partition errors.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { Admin, alterPartitionReassignmentsV0, Connection, listPartitionReassignmentsV0 } from '@platformatic/kafka'
import { QUICK_CLUSTER_ARGS, useCluster } from '../../helpers/cluster.js'
import { waitFor } from '../../helpers/wait.js'
import { partitionsOf } from '../../helpers/kafka.js'
import { kcat } from '../../helpers/kcat.js'
import { brook } from '../../cli/run-brook.js'
import type { MetadataResponsePartition } from '../../../protocol/messages/metadata.js'
import { History, readAll } from './history.js'
import { ClusterClient } from '../../../client/cluster-client.js'
import { reassignPartitions } from '../../../client/reassignments.js'

const TOPIC = 'moving'

// Kafka's error codes, as the protocol guide lists them.
const UNKNOWN_TOPIC_OR_PARTITION = 3
const INVALID_REPLICA_ASSIGNMENT = 39
const NO_REASSIGNMENT_IN_PROGRESS = 85

describe('partition reassignment on a three-node cluster', () => {
  const cluster = useCluster({ nodes: 3, extraArgs: [...QUICK_CLUSTER_ARGS] })

  const partitionsAt = (id: number): Promise<MetadataResponsePartition[]> => partitionsOf(cluster().nodes.get(id)!, TOPIC)

  /** @platformatic/kafka's connection to node `id`, for its raw reassignment APIs. */
  async function connectTo(id: number): Promise<Connection> {
    const connection = new Connection(`reassign-${id}`)
    await connection.connect(cluster().host(id), cluster().nodes.get(id)!.port)
    return connection
  }

  /** AlterPartitionReassignments v0 through @platformatic/kafka; a partition's error is answered, not thrown. */
  async function reassign(connection: Connection, partitions: { partitionIndex: number; replicas: number[] }[], topic = TOPIC): Promise<number[]> {
    try {
      const answer = await alterPartitionReassignmentsV0.api.async(connection, 15_000, false, [{ name: topic, partitions }])
      return answer.responses.flatMap((t) => t.partitions.map((p) => p.errorCode))
    } catch (error) {
      // The client throws a ResponseError for any partition's error, carrying the decoded answer.
      const response = (error as { response?: { responses: { partitions: { errorCode: number }[] }[] } }).response
      if (!response) throw error
      return response.responses.flatMap((t) => t.partitions.map((p) => p.errorCode))
    }
  }

  async function ongoing(connection: Connection): Promise<{ partitionIndex: number; replicas: number[]; addingReplicas: number[]; removingReplicas: number[] }[]> {
    const answer = await listPartitionReassignmentsV0.api.async(connection, 15_000, [{ name: TOPIC, partitionIndexes: [0, 1] }])
    return answer.topics.flatMap((t) => t.partitions)
  }

  it('moves partitions to other nodes while a producer writes with acks=all, the leader too, losing no acknowledged record', async () => {
    const kafka = cluster().kafka('reassign', cluster().nodeIds, { requestTimeout: 5000 })
    const admin = kafka.admin()
    await admin.connect()
    try {
      await admin.createTopics({ topics: [{ topic: TOPIC, replicaAssignment: [{ partition: 0, replicas: [1] }, { partition: 1, replicas: [2] }] }], waitForLeaders: true })
    } finally {
      await admin.disconnect()
    }
    const before = await waitFor('both partitions led', async () => {
      const found = await partitionsAt(1)
      return found.length === 2 && found.every((p) => p.leaderId >= 0) && found
    })

    const history = new History()
    const acknowledgedIn = [0, 0]
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
    await producer.connect()
    let stop = false
    let sent = 0
    const produceLoop = (async () => {
      while (!stop) {
        for (const partition of [0, 1]) {
          const values = Array.from({ length: 20 }, () => `p${partition}-${sent++}`)
          try {
            const [answer] = await producer.send({ topic: TOPIC, acks: -1, messages: values.map((value) => ({ value, partition })) })
            history.acknowledge(TOPIC, partition, BigInt(answer!.baseOffset!), values)
            acknowledgedIn[partition]! += values.length
          } catch {
            history.notAcknowledged(values.length)
            await sleep(100)
          }
        }
      }
    })()
    const acknowledgedBy = (count: number) => waitFor(`${count} records acknowledged`, () => history.acknowledgedCount >= count, { timeoutMs: 60_000 })

    const status = await cluster().status(1)
    const asked = cluster().nodeIds.find((id) => id !== status.leaderId)!
    const connection = await connectTo(asked)
    try {
      await acknowledgedBy(2000)
      expect(await reassign(connection, [{ partitionIndex: 0, replicas: [2, 3] }, { partitionIndex: 1, replicas: [3] }])).toEqual([0, 0])
      // Under way at first (the new replicas copy the log), or already done when they were quick: never anything else.
      const first = await ongoing(connection)
      for (const partition of first) {
        expect([[2, 3, 1], [3, 2]]).toContainEqual(partition.replicas)
        expect(partition.removingReplicas).toHaveLength(1)
      }
      await waitFor('no reassignment under way', async () => (await ongoing(connection)).length === 0, { timeoutMs: 60_000 })
      await acknowledgedBy(history.acknowledgedCount + 1000)
    } finally {
      stop = true
      await produceLoop
      await producer.disconnect()
      await connection.close()
    }

    for (const id of cluster().nodeIds) {
      const after = await waitFor(`node ${id} shows the new replicas`, async () => {
        const found = await partitionsAt(id)
        const [p0, p1] = [found.find((p) => p.partitionIndex === 0), found.find((p) => p.partitionIndex === 1)]
        return p0 && p1 && p0.replicaNodes.join() === '2,3' && p1.replicaNodes.join() === '3' && p0.isrNodes.length === 2 && [p0, p1]
      })
      const [p0, p1] = after
      expect([...p0.isrNodes].sort()).toEqual([2, 3])
      expect([2, 3]).toContain(p0.leaderId)
      expect(p1).toMatchObject({ leaderId: 3, isrNodes: [3] })
      expect(p0.leaderEpoch!).toBeGreaterThan(before.find((p) => p.partitionIndex === 0)!.leaderEpoch!)
      expect(p1.leaderEpoch!).toBeGreaterThan(before.find((p) => p.partitionIndex === 1)!.leaderEpoch!)
    }
    await waitFor('the nodes taken off empty their logs', () =>
      cluster().nodes.get(1)!.output().includes(`${TOPIC}-0: this node is no longer a replica; its log is emptied`) &&
      cluster().nodes.get(2)!.output().includes(`${TOPIC}-1: this node is no longer a replica; its log is emptied`),
    )

    // DescribeLogDirs (@platformatic/kafka's Admin asks every node) lists each partition on its new replicas only,
    // the two copies of partition 0 of one size once node 3 has caught up; `brook topics log-dirs --json` agrees.
    const logDirs = new Admin({ clientId: 'log-dirs', bootstrapBrokers: [cluster().nodes.get(1)!.address] })
    try {
      const held = await waitFor('both copies of partition 0 of one size', async () => {
        const answers = await logDirs.describeLogDirs({ topics: [{ name: TOPIC, partitions: [0, 1, 2] }] })
        const byNode = new Map(answers.map((a) => [a.broker, a.results.flatMap((r) => r.topics.flatMap((t) => t.partitions.map((p) => [`${t.name}-${p.partitionIndex}`, p.partitionSize] as const)))]))
        const sizes = new Map([...byNode].map(([node, partitions]) => [node, new Map(partitions)]))
        return sizes.get(2)?.get(`${TOPIC}-0`) === sizes.get(3)?.get(`${TOPIC}-0`) && sizes
      })
      expect([...held.keys()].sort()).toEqual([1, 2, 3])
      expect([...held.get(1)!.keys()]).toEqual([])
      expect([...held.get(2)!.keys()]).toEqual([`${TOPIC}-0`])
      expect([...held.get(3)!.keys()].sort()).toEqual([`${TOPIC}-0`, `${TOPIC}-1`])
      expect(held.get(3)!.get(`${TOPIC}-0`)!).toBeGreaterThan(0n)
      expect(held.get(3)!.get(`${TOPIC}-1`)!).toBeGreaterThan(0n)
      const json = JSON.parse((await brook(['topics', 'log-dirs', TOPIC, '--json', '--bootstrap-server', cluster().nodes.get(1)!.address])).stdout) as {
        brokers: { broker: number; logDirs: { error: string | null; partitions: { partition: string; size: number; isFuture: boolean }[] }[] }[]
      }
      for (const { broker, logDirs: dirs } of json.brokers) {
        expect(dirs).toHaveLength(1)
        expect(dirs[0]!.error).toBeNull()
        expect(dirs[0]!.partitions.map((p) => [p.partition, BigInt(p.size), p.isFuture])).toEqual([...held.get(broker)!].map(([name, size]) => [name, size, false]))
      }
    } finally {
      await logDirs.close()
    }

    for (const partition of [0, 1]) {
      const records = await readAll(cluster().kafka(`reader-${partition}-${Date.now()}`, cluster().nodeIds), TOPIC, partition, acknowledgedIn[partition]!)
      history.consumed(TOPIC, partition, records, { rewinds: 'violation' })
      // kcat reads the same count from the new leader (-e: exit at the end of the partition).
      const read = await kcat(['-b', `${cluster().host(3)}:${cluster().nodes.get(3)!.port}`, '-C', '-t', TOPIC, '-p', String(partition), '-o', 'beginning', '-e', '-q', '-f', '%o\n'])
      expect(read.stdout.trim().split('\n').length).toBe(records.length)
    }
    const { problems, summary } = history.check()
    console.log(`partition reassignment while producing with acks=all: ${summary}`)
    expect(problems).toEqual([])
  })

  it('keeps a move to a dead node under way until cancelled (brook topics reassign --cancel), and refuses bad requests per partition', async () => {
    const bootstrap = `${cluster().host(3)}:${cluster().nodes.get(3)!.port}`
    await cluster().nodes.get(1)!.kill()
    await waitFor('node 1 fenced', async () => !(await cluster().status(3)).liveBrokers.some((b) => b.brokerId === 1), { timeoutMs: 30_000 })
    const connection = await connectTo(3)
    try {
      expect(await reassign(connection, [{ partitionIndex: 1, replicas: [3, 1] }])).toEqual([0])
      await sleep(2000)
      expect(await ongoing(connection)).toEqual([{ partitionIndex: 1, replicas: [3, 1], addingReplicas: [1], removingReplicas: [] }])
      const listed = await brook(['topics', 'reassignments', '--bootstrap-server', bootstrap])
      expect(listed.code).toBe(0)
      expect(listed.stdout).toMatch(/^TOPIC +PARTITION +REPLICAS +ADDING +REMOVING\nmoving +1 +3,1 +1 +-\n$/)
      // kafka-topics.sh --describe's layout: the partition being moved says what is added and removed.
      const described = (await brook(['topics', 'describe', TOPIC, '--bootstrap-server', bootstrap])).stdout.split('\n')
      expect(described.find((line) => line.includes('Partition: 1\t'))).toMatch(/\tReplicas: 3,1\tIsr: 3\tAdding Replicas: 1\tRemoving Replicas: \t/)
      expect(described.find((line) => line.includes('Partition: 0\t'))).not.toContain('Adding Replicas')

      const cancelled = await brook(['topics', 'reassign', TOPIC, '--cancel', '--bootstrap-server', bootstrap])
      expect(cancelled).toMatchObject({ code: 0, stdout: `Cancelled the reassignment of 1 partition of topic ${TOPIC}.\n` })
      expect(await ongoing(connection)).toEqual([])
      expect((await partitionsAt(3)).find((p) => p.partitionIndex === 1)).toMatchObject({ replicaNodes: [3], isrNodes: [3], leaderId: 3 })

      expect(await reassign(connection, [{ partitionIndex: 0, replicas: [2, 2] }, { partitionIndex: 1, replicas: [] }])).toEqual([INVALID_REPLICA_ASSIGNMENT, INVALID_REPLICA_ASSIGNMENT])
      expect(await reassign(connection, [{ partitionIndex: 0, replicas: [7] }])).toEqual([INVALID_REPLICA_ASSIGNMENT])
      expect(await reassign(connection, [{ partitionIndex: 5, replicas: [2] }])).toEqual([UNKNOWN_TOPIC_OR_PARTITION])
      expect(await reassign(connection, [{ partitionIndex: 0, replicas: [2] }], 'nothing-here')).toEqual([UNKNOWN_TOPIC_OR_PARTITION])
      const none = await brook(['topics', 'reassign', TOPIC, '--cancel', '--bootstrap-server', bootstrap])
      expect(none).toMatchObject({ code: 0, stdout: `No reassignment of topic ${TOPIC} is under way.\n` })
      // @platformatic/kafka cannot send a null replica list (a cancel): Brook's own client sends one for a partition with
      // nothing under way.
      const client = await ClusterClient.connect([{ host: cluster().host(3), port: cluster().nodes.get(3)!.port }])
      try {
        await expect(reassignPartitions(client, TOPIC, new Map([[0, null]]))).rejects.toMatchObject({ errorCode: NO_REASSIGNMENT_IN_PROGRESS })
      } finally {
        client.close()
      }
    } finally {
      await connection.close()
    }
  })
})
