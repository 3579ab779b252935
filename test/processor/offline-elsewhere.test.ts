/**
 * A partition offline elsewhere in the cluster. kafkajs 2.2.4 asks a new client's first Metadata for every topic in
 * the cluster and fails the whole answer when any partition in it has no leader (processor/runtime/target-topics.ts):
 * an idempotent or transactional producer could not connect, an admin client could not create topics. The pipeline
 * and the simulator scope what their clients ask about to their own topics.
 *
 * On a three-node cluster of real processes, an unrelated topic has one replica per partition, one on each node. An
 * exactly_once pipeline runs once, stops, and a node that is not the controller is killed with kill -9: one partition
 * of the unrelated topic is offline. The pipeline starts again on the survivors with one more sink, whose topic it
 * creates (its admin client, its transactions probe and its task's new transactional producer all start with fresh
 * metadata), and processes a second batch; the read_committed output holds every doubled value once, and the new
 * sink the second batch's. A new application, whose topics do not exist yet, starts, creates them and processes. The
 * simulator's sender then writes to a topic that exists and to one it creates, whose
 * admin client starts with __consumer_offsets. (Without the scoping, the pipeline's start failed after 60 s: `could
 * not find out whether the cluster supports transactions`, and the simulator's with `cannot create topic`.)
 */
import { describe, expect, it } from 'vitest'
import { TopologyBuilder, runPipeline, type Topology } from '../../processor/index.js'
import { withTopicProducer } from '../../processor/simulator/connection.js'
import { QUICK_CLUSTER_ARGS, useCluster } from '../helpers/cluster.js'
import { waitFor } from '../helpers/wait.js'
import { readSettled, readTopic, stateDir, values } from './helpers.js'

const APP = 'offline-elsewhere'
const INPUT = 'offline-elsewhere-input'
const OUTPUT = 'offline-elsewhere-doubled'
/** A sink the second run adds: the pipeline creates it while the unrelated partition is offline. */
const ADDED = 'offline-elsewhere-added'
const READINGS = 'offline-elsewhere-readings'
/** A topic the simulator creates while the unrelated partition is offline. */
const NEW_READINGS = 'offline-elsewhere-new-readings'
/** One replica per partition: with one partition per node, any node's loss takes one offline. */
const UNRELATED = 'offline-elsewhere-unrelated'
const BATCH = 100

/** The topics of an application started after the node's loss, which it creates. */
const FRESH = { input: 'offline-elsewhere-fresh-input', output: 'offline-elsewhere-fresh-doubled' }

/** Doubles each value of `topics.input` into `topics.output` and, with `added`, also into ADDED. */
function doubling(added: boolean, topics = { input: INPUT, output: OUTPUT }): Topology {
  const b = new TopologyBuilder()
  const doubled = b.stream<{ n: number }>(topics.input).map((v) => ({ n: v.n * 2 }))
  doubled.to(topics.output)
  if (added) doubled.to(ADDED)
  return b.build()
}

describe('a partition offline elsewhere in the cluster', () => {
  const cluster = useCluster({ nodes: 3, extraArgs: QUICK_CLUSTER_ARGS })

  it('does not keep exactly_once pipelines from starting, creating their topics and processing, nor the simulator from sending', { timeout: 150_000 }, async () => {
    const admin = cluster().kafka('offline-elsewhere-admin').admin()
    await admin.connect()
    try {
      await admin.createTopics({
        topics: [
          { topic: INPUT, numPartitions: 1, replicationFactor: 3 },
          { topic: READINGS, numPartitions: 1, replicationFactor: 3 },
          { topic: UNRELATED, numPartitions: 3, replicationFactor: 1 },
        ],
        waitForLeaders: true,
      })
      // The readers' groups need __consumer_offsets: made now, while every node is up, it has three replicas.
      await admin.describeGroups([APP])
    } finally {
      await admin.disconnect()
    }
    const controller = (await cluster().status(1)).controllerId
    const victim = cluster().nodeIds.find((id) => id !== controller)!
    const survivors = cluster().nodeIds.filter((id) => id !== victim)
    const servers = survivors.map((id) => cluster().nodes.get(id)!.address)
    const run = (added: boolean, logged: string[]) =>
      runPipeline(doubling(added), {
        applicationId: APP,
        bootstrapServers: servers,
        stateDir: stateDir(),
        processingGuarantee: 'exactly_once',
        commitIntervalMs: 100,
        // Two: the second run creates a topic while one of the three nodes is dead.
        replicationFactor: 2,
        log: (line) => logged.push(line),
      })
    const batch = (from: number) => Array.from({ length: BATCH }, (_, i) => ({ key: `k${from + i}`, value: JSON.stringify({ n: from + i }) }))
    const producer = cluster().kafka('offline-elsewhere-input', survivors).producer({ idempotent: true })
    await producer.connect()
    try {
      const first = await run(false, [])
      try {
        await producer.send({ topic: INPUT, messages: batch(0), acks: -1 })
        await readTopic(cluster().kafka('offline-elsewhere-first', survivors), OUTPUT, (records) => records.length >= BATCH)
      } finally {
        await first.stop()
      }

      await cluster().nodes.get(victim)!.kill()
      // Once the controller has fenced the node, its partition of UNRELATED has no leader, and kafkajs fails any
      // Metadata answer that holds it.
      const looker = cluster().kafka('offline-elsewhere-looker', survivors, { retries: 0 }).admin()
      await looker.connect()
      try {
        await waitFor(`a partition of ${UNRELATED} to be offline`, () =>
          looker.fetchTopicMetadata({ topics: [UNRELATED] }).then(
            () => false,
            (error: { type?: string; cause?: { type?: string } }) => (error.cause ?? error).type === 'LEADER_NOT_AVAILABLE',
          ),
        )
      } finally {
        await looker.disconnect()
      }

      const logged: string[] = []
      const second = await run(true, logged)
      try {
        await producer.send({ topic: INPUT, messages: batch(BATCH), acks: -1 })
        const output = await readSettled(cluster().kafka('offline-elsewhere-check', survivors), OUTPUT, (read) => read.length >= 2 * BATCH, () => `the pipeline logged:\n${logged.join('\n')}`, { timeoutMs: 60_000 })
        const doubled = values<{ n: number }>(output).map((v) => v.n).sort((p, q) => p - q)
        expect(doubled).toEqual(Array.from({ length: 2 * BATCH }, (_, i) => 2 * i))
        const added = await readTopic(cluster().kafka('offline-elsewhere-added', survivors), ADDED, (read) => read.length >= BATCH)
        expect(values<{ n: number }>(added).map((v) => v.n).sort((p, q) => p - q)).toEqual(Array.from({ length: BATCH }, (_, i) => 2 * (BATCH + i)))
      } finally {
        await second.stop()
      }

      // A new application, none of whose topics exist yet: its clients start with __consumer_offsets.
      const fresh = await runPipeline(doubling(false, FRESH), {
        applicationId: `${APP}-fresh`,
        bootstrapServers: servers,
        stateDir: stateDir(),
        processingGuarantee: 'exactly_once',
        commitIntervalMs: 100,
        replicationFactor: 2,
        log: () => {},
      })
      try {
        await producer.send({ topic: FRESH.input, messages: batch(0), acks: -1 })
        const output = await readTopic(cluster().kafka('offline-elsewhere-fresh-check', survivors), FRESH.output, (read) => read.length >= BATCH)
        expect(values<{ n: number }>(output).map((v) => v.n).sort((p, q) => p - q)).toEqual(Array.from({ length: BATCH }, (_, i) => 2 * i))
      } finally {
        await fresh.stop()
      }
    } finally {
      await producer.disconnect()
    }

    // The simulator's sender, to a topic that exists (it creates nothing) and to one it creates (its admin client asks
    // about __consumer_offsets meanwhile); its idempotent producer connects either way.
    const lines: string[] = []
    const log = { info: (m: string) => void lines.push(m), warn: (m: string) => void lines.push(`warning: ${m}`) }
    for (const [topic, created] of [[READINGS, false], [NEW_READINGS, true]] as const) {
      const sent = await withTopicProducer({ bootstrapServers: servers }, { topic, partitions: 1, oldestTs: Date.now(), retentionWarning: 'deleted-on-arrival' }, log, async (producer, prepared) => {
        const answer = await producer.send({ topic, messages: batch(0), acks: -1 })
        return { created: prepared.created, offsets: answer.length }
      })
      expect(sent, lines.join('\n')).toEqual({ created, offsets: 1 })
      // Its admin client read the topic's configs too: no warning that it could not.
      expect(lines.filter((line) => line.startsWith('warning: '))).toEqual([])
      const readings = await readTopic(cluster().kafka(`offline-elsewhere-${topic}`, survivors), topic, (records) => records.length >= BATCH)
      expect(readings).toHaveLength(BATCH)
    }
  })
})
