/**
 * kafkajs 2.2.4 can resolve a send without writing one of its partitions (processor/runtime/whole-sends.ts): when a
 * partition's leader dies mid-send and the partition moves to a broker that already answered the same send, kafkajs's
 * retry has no broker left to send it to. The simulator's sender sends each partition's readings as a send of its own
 * (sendPerPartition), so the moved partition's send is retried at its new leader. Here, on a three-node cluster of
 * real processes, a topic has a partition X on nodes A and B (A leading) and a partition Y led by B. The simulator's
 * sender (its producer, its placement and its check of every answer) sends a first batch; then A is paused with
 * SIGSTOP and a second batch goes out over every partition. Once B has answered Y, A is killed with kill -9: kafkajs's
 * request to A fails, the controller fences A after the session timeout and B takes X, and kafkajs sends X to B. The
 * topic ends up with every reading exactly once, and the sender had nothing to send again. (When one kafkajs send
 * covered every partition, kafkajs resolved it without X and the sender sent those readings again; a sender that
 * trusted kafkajs's answer lost them.)
 */
import { describe, expect, it } from 'vitest'
import { Fleet, resolveFleetOptions, type Log } from '../../../processor/simulator/index.js'
import { withTopicProducer } from '../../../processor/simulator/connection.js'
import type { Outgoing } from '../../../processor/simulator/reading.js'
import { sendPaced } from '../../../processor/simulator/sender.js'
import { agreedPlacement, QUICK_CLUSTER_ARGS, useCluster } from '../../helpers/cluster.js'
import { latestOffsetAt } from '../../helpers/kafka.js'
import { waitFor } from '../../helpers/wait.js'
import { readTopic } from './read-back.js'

const TOPIC = 'cut-short'
/** Readings per batch: a first one while every node answers, then the one kafkajs cuts short. */
const BATCH = 300

describe('the simulator when a leader dies mid-send', () => {
  const cluster = useCluster({ nodes: 3, extraArgs: QUICK_CLUSTER_ARGS })

  it('writes the readings of a partition whose leader died mid-send at its new leader, and the topic holds each reading once', { timeout: 120_000 }, async () => {
    // The controller places RF=2 replicas round the nodes, so some partition X is led by a node A that is not the
    // active controller (the simulator's admin client asks the controller for the topic's configs), with node B as
    // its other replica, and B leads another partition Y.
    const admin = cluster().kafka('cut-short-admin').admin()
    await admin.connect()
    try {
      await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: 3, replicationFactor: 2 }], waitForLeaders: true })
      // The read-back at the end is a consumer group: its coordinator's topic (__consumer_offsets, three replicas) is
      // made now, while every node is up; made with one node dead it would wait for that node, as Kafka's does.
      await admin.describeGroups(['cut-short-reader'])
    } finally {
      await admin.disconnect()
    }
    const controller = (await cluster().status(1)).controllerId
    // Every node's metadata, which the clients bootstrap from, has each partition led by its first replica.
    const placed = await agreedPlacement(cluster(), TOPIC, 3, 2)
    const x = placed.find((p) => p.leaderId !== controller && placed.some((y) => y.leaderId === p.replicaNodes[1]))
    expect(x, JSON.stringify(placed.map((p) => p.replicaNodes))).toBeDefined()
    const a = x!.replicaNodes[0]!
    const bootstrap = cluster().nodeIds.filter((id) => id !== a)

    const lines: string[] = []
    const log: Log = { info: (m) => void lines.push(m), warn: (m) => void lines.push(`warning: ${m}`) }
    const y = placed.find((p) => p.leaderId === x!.replicaNodes[1])!
    const victim = cluster().nodes.get(a)!
    const startMs = Date.now() - 60_000
    const bootstrapServers = bootstrap.map((id) => cluster().nodes.get(id)!.address)
    const fleet = new Fleet({ ...resolveFleetOptions({ bootstrapServers, seed: 5, devices: 20, rate: 100 }), startMs })
    // The source gives a first batch (which makes the producer's connections and metadata), then waits at `gate`.
    let firstAcked!: () => void
    const acked = new Promise<void>((resolve) => (firstAcked = resolve))
    let openGate!: () => void
    const gate = new Promise<void>((resolve) => (openGate = resolve))
    let given = 0
    const next = async (): Promise<Outgoing | null> => {
      if (given === BATCH) await gate
      return given < 2 * BATCH ? (given++, fleet.nextOf(2 * BATCH)) : null
    }
    const connection = { bootstrapServers, kafka: { retry: { retries: 20, initialRetryTime: 200, maxRetryTime: 1000 } } }
    const run = withTopicProducer(connection, { topic: TOPIC, oldestTs: startMs, retentionWarning: 'deleted-on-arrival' }, log, (producer, _topic, sends) =>
      sendPaced(next, { producer, sends, topic: TOPIC, speedup: 'as-fast-as-possible', batchSize: BATCH, log, onAcked: () => firstAcked() }),
    )
    try {
      await acked
      // A stops answering; the second batch's request for X sits in its socket. Once B has answered Y, A dies:
      // kafkajs's request to it fails on the closed connection, and kafkajs retries X at A until the controller has
      // fenced A (3 s after its last heartbeat) and moved X to B. (A request to a leader that only stops answering
      // times out and goes to the same leader again: the kill is what sends kafkajs to the metadata.)
      victim.child.kill('SIGSTOP')
      const written = await latestOffsetAt(cluster().nodes.get(y.leaderId)!, TOPIC, y.partitionIndex)
      openGate()
      await waitFor(`B to have written the second batch to partition ${y.partitionIndex}`, async () => (await latestOffsetAt(cluster().nodes.get(y.leaderId)!, TOPIC, y.partitionIndex)) > written, { intervalMs: 20 })
    } finally {
      openGate()
      await victim.kill()
    }
    const summary = await run

    expect(summary.sent).toBe(2 * BATCH)
    // Read from B and C (A stays dead: the cluster goes with the file).
    const reader = cluster().kafka('cut-short-reader', bootstrap)
    const readerAdmin = reader.admin()
    await readerAdmin.connect()
    try {
      const read = await readTopic(reader, readerAdmin, TOPIC)
      const identities = read.map((r) => `${r.reading.deviceId}/${r.reading.sensor}/${r.reading.ts}`)
      expect(new Set(identities).size).toBe(identities.length)
      expect(read).toHaveLength(2 * BATCH)
    } finally {
      await readerAdmin.disconnect()
    }
    // Nothing was cut short: no reading had to be sent again.
    expect(lines.filter((line) => line.startsWith('kafkajs ended a send without writing')), lines.join('\n')).toEqual([])
  })
})
