/**
 * Controlled shutdown (KIP-631's BrokerHeartbeat wantShutDown) on clusters of real processes:
 *
 * - three nodes, an RF=3 topic, an idempotent kafkajs producer writing with acks=all: SIGTERM to a partition's leader
 *   (not the active controller) hands its leadership to another ISR member before the process exits. The session
 *   timeout is long (20 s), so a leader change seen the moment the process is gone can only be the controlled
 *   shutdown's: the survivors' Metadata then already shows a new leader at a higher leader epoch and an ISR without
 *   the stopped node. The node is started again and the history checker finds every acknowledged record; the time
 *   without acknowledgements is printed, not asserted.
 * - a single-node cluster stops at once, without asking for a controlled shutdown.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import type { Kafka } from 'kafkajs'
import { clusterPerTest } from '../../helpers/cluster.js'
import { waitFor } from '../../helpers/wait.js'
import { partitionsOf } from '../../helpers/kafka.js'
import { History, readAll } from './history.js'

const TOPIC = 'handover'
const SESSION_TIMEOUT_MS = 20_000

describe('controlled shutdown', () => {
  const { start, running } = clusterPerTest()

  const kafka = (clientId: string, bootstrap: readonly number[]): Kafka => running().kafka(clientId, bootstrap, { requestTimeout: 5000 })

  async function createTopic(partitions: number, replicationFactor: number): Promise<void> {
    const admin = kafka('shutdown-admin', [1]).admin()
    await admin.connect()
    try {
      await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: partitions, replicationFactor }], waitForLeaders: true })
    } finally {
      await admin.disconnect()
    }
  }

  it('moves the leadership of a node stopped with SIGTERM to another ISR member before the process exits, losing no acknowledged record', async () => {
    await start({ nodes: 3, extraArgs: ['--broker-heartbeat-interval-ms', '500', '--broker-session-timeout-ms', String(SESSION_TIMEOUT_MS)] })
    await createTopic(3, 3)
    const controllerId = (await running().status(1)).leaderId
    const partitions = await waitFor('every partition with three replicas in its ISR', async () => {
      const found = await partitionsOf(running().nodes.get(controllerId)!, TOPIC)
      return found.length === 3 && found.every((p) => p.isrNodes.length === 3 && p.leaderId >= 0) && found
    })
    const before = partitions.find((p) => p.leaderId !== controllerId)!
    const partition = before.partitionIndex
    const victim = before.leaderId
    const survivors = running().nodeIds.filter((id) => id !== victim)

    const history = new History()
    const producer = kafka('shutdown-producer', running().nodeIds).producer({ idempotent: true, maxInFlightRequests: 1 })
    await producer.connect()
    let stop = false
    let next = 0
    let acknowledgedHere = 0
    let stopAtMs: number | null = null
    let firstAckAfterStopMs: number | null = null
    const produceLoop = (async () => {
      while (!stop) {
        const values = Array.from({ length: 5 }, () => `v-${next++}`)
        const startedAtMs = Date.now()
        try {
          const [answer] = await producer.send({ topic: TOPIC, acks: -1, messages: values.map((value) => ({ value, partition })) })
          history.acknowledge(TOPIC, partition, BigInt(answer!.baseOffset!), values)
          acknowledgedHere += values.length
          if (stopAtMs !== null && startedAtMs >= stopAtMs) firstAckAfterStopMs ??= Date.now()
        } catch {
          history.notAcknowledged(values.length)
          // A send that fails at once (a producer in a fatal state) must not loop without a pause: that would starve every
          // timer, the test's own timeout included.
          await sleep(100)
        }
      }
    })()

    try {
      await waitFor('200 records acknowledged', () => acknowledgedHere >= 200, { timeoutMs: 60_000 })
      stopAtMs = Date.now()
      await running().nodes.get(victim)!.stop()
      const stoppedInMs = Date.now() - stopAtMs
      // The node heartbeated until it exited and the session timeout is long: only its controlled shutdown can have
      // moved the leadership by now.
      const after = (await partitionsOf(running().nodes.get(survivors[0]!)!, TOPIC)).find((p) => p.partitionIndex === partition)!
      expect(survivors).toContain(after.leaderId)
      expect(after.leaderEpoch ?? -1).toBeGreaterThan(before.leaderEpoch ?? -1)
      expect(after.isrNodes).not.toContain(victim)
      const output = running().nodes.get(victim)!.output()
      const handedOver = output.indexOf('controlled shutdown: the controller')
      expect(handedOver).toBeGreaterThan(-1)
      expect(output.indexOf('] stopped', handedOver)).toBeGreaterThan(handedOver)
      await waitFor('200 more records acknowledged', () => acknowledgedHere >= 400, { timeoutMs: 60_000 })
      console.log(`SIGTERM of the leader: the process took ${stoppedInMs} ms to hand over and stop; no produce acknowledged for ${firstAckAfterStopMs === null ? '?' : firstAckAfterStopMs - stopAtMs} ms`)
    } finally {
      stop = true
      await produceLoop
      await producer.disconnect()
    }

    // The group reader needs __consumer_offsets, which the cluster creates with three replicas: with all three nodes.
    await running().restart(victim)
    await waitFor('three unfenced brokers again', async () => (await running().status(survivors[0]!)).liveBrokers.length === 3, { timeoutMs: 60_000 })
    const records = await readAll(kafka(`shutdown-reader-${Date.now()}`, running().nodeIds), TOPIC, partition, acknowledgedHere)
    history.consumed(TOPIC, partition, records, { rewinds: 'violation' })
    const { problems, summary } = history.check()
    console.log(summary)
    expect(problems).toEqual([])
  })

  it('stops a single-node cluster at once, without a controlled shutdown', async () => {
    await start({ nodes: 1, extraArgs: ['--broker-heartbeat-interval-ms', '500', '--broker-session-timeout-ms', String(SESSION_TIMEOUT_MS)] })
    await createTopic(2, 1)
    const node = running().nodes.get(1)!
    await node.stop()
    expect(node.child.exitCode).toBe(0)
    expect(node.output()).not.toContain('controlled shutdown')
    expect(node.output()).toMatch(/\] stopped/)
  })
})
