/**
 * Faults on a three-node cluster of real processes, seen through kafkajs as an application would see them. kill -9 of
 * the active controller: the survivors elect another, a kafkajs admin bootstrapped through them still creates
 * (replication factor up to the live brokers, the dead one given no replica) and deletes topics, and the killed node,
 * restarted on its data directory, is a live broker again. A transactional consume-transform-produce loop (kafkajs
 * idempotent transactional producer, `sendOffsets` to its consumer group) copies numbered records from one RF=3 topic
 * to another while the node of its transaction coordinator is killed with a transaction open; the loop recovers
 * through kafkajs's retries, or is restarted as an application would restart it (new producer and consumer, the same
 * transactional id and group), and a read_committed consumer of the output finds every input record exactly once.
 */
import { describe, expect, it } from 'vitest'
import type { Consumer, Kafka, Producer } from 'kafkajs'
import { useCluster } from '../../helpers/cluster.js'
import { waitFor } from '../../helpers/wait.js'
import { withClient } from '../../helpers/kafka.js'
import { ErrorCode } from '../../../protocol/errors.js'
import { CoordinatorType } from '../../../protocol/constants.js'
import { findCoordinator, type FindCoordinatorRequest, type FindCoordinatorResponse } from '../../../protocol/messages/find-coordinator.js'

const PARTITIONS = 6

describe('failover on a three-node cluster', () => {
  const cluster = useCluster({
    nodes: 3,
    extraArgs: [
      '--broker-heartbeat-interval-ms', '500',
      '--broker-session-timeout-ms', '3000',
      '--offsets-topic-partitions', String(PARTITIONS),
      '--transaction-state-log-num-partitions', String(PARTITIONS),
      '--group-initial-rebalance-delay-ms', '0',
    ],
  })

  const kafka = (clientId: string, bootstrap: readonly number[]): Kafka => cluster().kafka(clientId, bootstrap, { retries: 12 })

  /** The node coordinating `key` (a group or a transactional id), as node `via` answers FindCoordinator v4. */
  async function coordinatorOf(via: number, keyType: number, key: string): Promise<number> {
    return waitFor(`a coordinator for ${key}`, async () => {
      const answer = await withClient(cluster().nodes.get(via)!, (client) =>
        client.request<Partial<FindCoordinatorRequest>, FindCoordinatorResponse>(findCoordinator, 4, { keyType, coordinatorKeys: [key] }),
      )
      const coordinator = answer.coordinators![0]!
      return coordinator.errorCode === ErrorCode.NONE && coordinator.nodeId
    })
  }

  async function liveBrokers(via: number): Promise<number[]> {
    const status = await cluster().status(via)
    return status.controllerId >= 0 ? status.liveBrokers.map((broker) => broker.brokerId).sort() : []
  }

  it('keeps creating and deleting topics through the survivors when the active controller is killed, and takes the node back as a broker', async () => {
    const before = await cluster().status(1)
    const killed = before.controllerId
    const survivors = cluster().nodeIds.filter((id) => id !== killed)
    await cluster().nodes.get(killed)!.kill()
    const after = await waitFor('a new controller that fenced the killed node', async () => {
      const seen = await cluster().status(survivors[0]!)
      const live = seen.liveBrokers.map((broker) => broker.brokerId).sort()
      return seen.controllerId >= 0 && seen.controllerId !== killed && JSON.stringify(live) === JSON.stringify(survivors) && seen
    })
    expect(survivors).toContain(after.controllerId)
    expect(after.leaderEpoch).toBeGreaterThan(before.leaderEpoch)
    // Each survivor said, at WARN, that it could not reach the voter that was killed, as Kafka's NetworkClient does.
    for (const id of survivors) expect(cluster().nodes.get(id)!.output()).toMatch(new RegExp(` WARN \\[node ${id}\\] controller quorum: cannot reach voter ${killed}: `))

    // Through each survivor in turn: the controller's own node and the one that forwards to it.
    const created: string[] = []
    for (const via of survivors) {
      const topic = `after-failover-via-${via}`
      const admin = kafka(`admin-via-${via}`, [via]).admin()
      await admin.connect()
      try {
        expect(await admin.createTopics({ topics: [{ topic, numPartitions: 4, replicationFactor: 2 }], waitForLeaders: true })).toBe(true)
        const partitions = (await admin.fetchTopicMetadata({ topics: [topic] })).topics[0]!.partitions
        expect(partitions).toHaveLength(4)
        for (const partition of partitions) {
          expect([...partition.replicas].sort()).toEqual(survivors)
          expect(survivors).toContain(partition.leader)
        }
        // Three replicas need three live brokers.
        await expect(admin.createTopics({ topics: [{ topic: `${topic}-rf3`, numPartitions: 1, replicationFactor: 3 }] })).rejects.toThrow()
        created.push(topic)
      } finally {
        await admin.disconnect()
      }
    }
    const admin = kafka('deleter', survivors).admin()
    await admin.connect()
    try {
      await admin.deleteTopics({ topics: [created[0]!] })
      await waitFor('the deleted topic gone from the survivors\' topics', async () => {
        const topics = await admin.listTopics()
        return !topics.includes(created[0]!) && topics.includes(created[1]!)
      })
      expect(await admin.listTopics()).not.toContain(`${created[0]}-rf3`)
    } finally {
      await admin.disconnect()
    }

    await cluster().restart(killed)
    await waitFor('the killed node live again', async () => JSON.stringify(await liveBrokers(killed)) === JSON.stringify(cluster().nodeIds))
    const status = await cluster().status(killed)
    expect(status.controllerId).toBe(after.controllerId)
    const rejoined = kafka('admin-via-restarted', [killed]).admin()
    await rejoined.connect()
    try {
      await rejoined.deleteTopics({ topics: [created[1]!] })
      await waitFor('the second topic deleted through the restarted node', async () => !(await rejoined.listTopics()).includes(created[1]!))
    } finally {
      await rejoined.disconnect()
    }
    console.log(`controller failover: killed controller ${killed}, new controller ${after.controllerId} (quorum epoch ${before.leaderEpoch} -> ${after.leaderEpoch}), ${created.length} topics created and deleted through the survivors, node ${killed} back: ${status.liveBrokers.length} live brokers`)
  })

  it('copies every record exactly once with a transactional consume-transform-produce loop while its transaction coordinator\'s node is killed', async () => {
    const input = 'orders'
    const output = 'orders-copied'
    const groupId = 'copier'
    const transactionalId = 'copier-txn'
    const total = 600
    const chunk = 10
    await waitFor('three live brokers', async () => (await liveBrokers(1)).length === 3)
    const setup = kafka('setup', cluster().nodeIds).admin()
    await setup.connect()
    try {
      await setup.createTopics({
        topics: [input, output].map((topic) => ({ topic, numPartitions: PARTITIONS, replicationFactor: 3 })),
        waitForLeaders: true,
      })
    } finally {
      await setup.disconnect()
    }
    const expected = Array.from({ length: total }, (_, i) => `record-${String(i).padStart(4, '0')}`)
    const filler = kafka('filler', cluster().nodeIds).producer({ idempotent: true })
    await filler.connect()
    try {
      await filler.send({ topic: input, acks: -1, messages: expected.map((value, i) => ({ partition: i % PARTITIONS, value })) })
    } finally {
      await filler.disconnect()
    }

    const victim = await coordinatorOf(1, CoordinatorType.TRANSACTION, transactionalId)
    const groupCoordinator = await coordinatorOf(1, CoordinatorType.GROUP, groupId)
    const outputLeaders = (await (async () => {
      const admin = kafka('leaders', cluster().nodeIds).admin()
      await admin.connect()
      try {
        return (await admin.fetchTopicMetadata({ topics: [output] })).topics[0]!.partitions.filter((p) => p.leader === victim).map((p) => p.partitionId)
      } finally {
        await admin.disconnect()
      }
    })()).sort()

    // The kill happens once a third of the records are copied, while the transaction that crosses that mark is open
    // (records sent, offsets and commit not yet): the loop waits at that point for the kill to be done.
    let committedRecords = 0
    let killDone: () => void = () => {}
    const killed = new Promise<void>((resolve) => (killDone = resolve))
    let gateUsed = false
    let copiedAtKill = 0
    let transactions = 0
    let aborted = 0
    const failures: string[] = []

    interface Copier { failed: Promise<Error>; close(): Promise<void> }
    async function startCopier(generation: number): Promise<Copier> {
      const client = kafka(`copier-${generation}`, cluster().nodeIds)
      const producer: Producer = client.producer({ transactionalId, idempotent: true, maxInFlightRequests: 1 })
      const consumer: Consumer = client.consumer({ groupId, sessionTimeout: 10_000, heartbeatInterval: 500, maxWaitTimeInMs: 200, retry: { initialRetryTime: 100, maxRetryTime: 1000, retries: 12, restartOnFailure: async () => false } })
      let fail: (error: Error) => void = () => {}
      const failed = new Promise<Error>((resolve) => (fail = resolve))
      consumer.on(consumer.events.CRASH, ({ payload }) => fail(payload.error))
      const close = async (): Promise<void> => {
        await consumer.disconnect().catch(() => {})
        await producer.disconnect().catch(() => {})
      }
      try {
        // The producer first: InitProducerId fences the previous generation and completes or aborts its transaction
        // before this generation's consumer reads the group's committed offsets.
        await producer.connect()
        await consumer.connect()
        await consumer.subscribe({ topic: input, fromBeginning: true })
        await consumer.run({
          autoCommit: false,
          eachBatchAutoResolve: false,
          eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
            for (let start = 0; start < batch.messages.length; start += chunk) {
              if (!isRunning() || isStale()) return
              const messages = batch.messages.slice(start, start + chunk)
              const last = messages[messages.length - 1]!
              const transaction = await producer.transaction()
              try {
                await transaction.send({ topic: output, acks: -1, messages: messages.map((m) => ({ partition: batch.partition, value: m.value })) })
                if (!gateUsed && committedRecords + messages.length >= total / 3) {
                  gateUsed = true
                  copiedAtKill = committedRecords
                  await killed
                }
                await transaction.sendOffsets({ consumerGroupId: groupId, topics: [{ topic: input, partitions: [{ partition: batch.partition, offset: String(BigInt(last.offset) + 1n) }] }] })
                await transaction.commit()
              } catch (error) {
                aborted++
                await transaction.abort().catch(() => {})
                fail(error as Error)
                throw error
              }
              transactions++
              committedRecords += messages.length
              resolveOffset(last.offset)
              await heartbeat()
            }
          },
        })
      } catch (error) {
        fail(error as Error)
      }
      return { failed, close }
    }

    // The application: a copier, replaced by a new one (same transactional id and group) whenever it fails.
    let stopping = false
    let generations = 0
    const app = (async () => {
      while (!stopping) {
        const copier = await startCopier(++generations)
        const outcome = await Promise.race([copier.failed, waitFor('the copier to be stopped', () => stopping, { timeoutMs: 300_000 })])
        await copier.close()
        if (outcome instanceof Error) failures.push(outcome.message)
      }
    })()

    const offsetsAdmin = kafka('progress', cluster().nodeIds).admin()
    try {
      await waitFor('a third of the records copied and a transaction open', () => gateUsed, { timeoutMs: 60_000 })
      await cluster().nodes.get(victim)!.kill()
      killDone()
      const killedAtMs = Date.now()
      const survivors = cluster().nodeIds.filter((id) => id !== victim)
      await offsetsAdmin.connect()
      await waitFor('the group\'s committed offsets at the end of the input', async () => {
        const [committed] = await offsetsAdmin.fetchOffsets({ groupId, topics: [input] })
        return committed!.partitions.reduce((sum, p) => sum + Math.max(0, Number(p.offset)), 0) === total
      }, { timeoutMs: 120_000 })
      const copiedMs = Date.now() - killedAtMs
      stopping = true
      await app

      // A plain record after everything in each output partition: once a read_committed consumer has it, it has
      // passed every transaction before it.
      const marker = kafka('marker', survivors).producer({ idempotent: true })
      await marker.connect()
      try {
        await marker.send({ topic: output, acks: -1, messages: Array.from({ length: PARTITIONS }, (_, partition) => ({ partition, value: 'end' })) })
      } finally {
        await marker.disconnect()
      }
      const values: string[] = []
      const ended = new Set<number>()
      const reader = kafka('reader', survivors).consumer({ groupId: 'copied-readers', readUncommitted: false, maxWaitTimeInMs: 200 })
      await reader.connect()
      try {
        await reader.subscribe({ topic: output, fromBeginning: true })
        await reader.run({
          eachMessage: async ({ partition, message }) => {
            const value = message.value!.toString()
            if (value === 'end') ended.add(partition)
            else values.push(value)
          },
        })
        await waitFor('the end marker of every output partition read', () => ended.size === PARTITIONS, { timeoutMs: 60_000 })
      } finally {
        await reader.disconnect()
      }
      const readMs = Date.now() - killedAtMs - copiedMs
      const counts = new Map<string, number>()
      for (const value of values) counts.set(value, (counts.get(value) ?? 0) + 1)
      const duplicated = [...counts].filter(([, count]) => count > 1).map(([value]) => value)
      const missing = expected.filter((value) => !counts.has(value))
      console.log(
        `transactional loop: killed node ${victim} (transaction coordinator; group coordinator ${groupCoordinator}; leader of output partitions [${outputLeaders.join(',')}]) with a transaction of ${chunk} records open after ${copiedAtKill} of ${total} were copied; ` +
          `${transactions} transactions committed, ${aborted} aborted, ${generations} copier generations (${failures.length} restarts: ${failures.join(' | ') || 'none'}); copy done ${copiedMs} ms after the kill, output read in ${readMs} ms; read_committed output: ${values.length} records, ${counts.size} distinct, ${missing.length} missing, ${duplicated.length} duplicated`,
      )
      expect({ missing, duplicated }).toEqual({ missing: [], duplicated: [] })
      expect(values.sort()).toEqual(expected)
    } catch (error) {
      console.log(`transactional loop failed: kill after ${copiedAtKill} records, ${committedRecords} copied, ${transactions} transactions committed, ${aborted} aborted, ${generations} copier generations (${failures.join(' | ') || 'no failures'})`)
      throw error
    } finally {
      stopping = true
      await app.catch(() => {})
      await offsetsAdmin.disconnect()
    }
  }, 200_000)
})
