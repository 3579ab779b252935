/**
 * A cluster node whose storage fails: node 1 of three keeps its data on a small tmpfs (skipped, saying why, where
 * none can be mounted), which fills up while an idempotent kafkajs producer writes with acks=all to a topic with three
 * partitions, each on all three nodes, one led by node 1. The node's first failed write (its own append as a leader or
 * a follower's, or its metadata log) stops it at once, as a Kafka broker halts when its metadata log directory fails
 * (broker.ts, `halt`): its log says so in one line, with the cause, and nothing else at ERROR (no unhandled
 * rejection, no follower error repeated per partition), and it exits with code 1. The controller fences it, its
 * partition is led by another replica, producing goes on, and the history checker (history.ts) finds every
 * acknowledged record on the nodes left. How long no produce was acknowledged is printed, not asserted.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, describe, expect, it } from 'vitest'
import type { Producer } from 'kafkajs'
import { startCluster, QUICK_CLUSTER_ARGS, type TestCluster } from '../../helpers/cluster.js'
import { MiB, mountTmpfs } from '../../helpers/tmpfs.js'
import { loggedErrors } from '../../helpers/broker-log.js'
import { waitFor } from '../../helpers/wait.js'
import { partitionsOf, readPartition, recordsOf, withClient } from '../../helpers/kafka.js'
import { History } from './history.js'

const TOPIC = 'filling'
const PARTITIONS = 3
/** The node whose disk fills up. */
const FULL_NODE = 1
/** What the acks=1 producer's values start with (the history checks the acks=all producer's only). */
const SIDE = 'acks1-'

const tmpfs = mountTmpfs(16 * MiB)
const noTmpfs = 'skipReason' in tmpfs ? tmpfs.skipReason : null
if (noTmpfs !== null) console.log(`storage failure test skipped: ${noTmpfs}`)

describe.skipIf(noTmpfs !== null)('a cluster node whose disk fills up', () => {
  let cluster: TestCluster | undefined

  afterAll(async () => {
    // The node on the tmpfs goes first, so that the mount point is gone before the cluster removes data directories.
    await cluster?.nodes.get(FULL_NODE)?.kill()
    if (!('skipReason' in tmpfs)) tmpfs.unmount()
    await cluster?.destroy()
  })

  it('stops at its first failed write with one line, and the others keep every acknowledged record', async () => {
    if ('skipReason' in tmpfs) return
    cluster = await startCluster({ nodes: 3, extraArgs: QUICK_CLUSTER_ARGS, dataDirs: { [FULL_NODE]: tmpfs.dir } })
    await waitFor('three unfenced brokers', async () => (await cluster!.status(2)).liveBrokers.length === 3)
    const admin = cluster.kafka('storage-failure-admin', [2]).admin()
    await admin.connect()
    try {
      await admin.createTopics({
        topics: [{ topic: TOPIC, numPartitions: PARTITIONS, replicationFactor: 3, configEntries: [{ name: 'min.insync.replicas', value: '2' }] }],
        waitForLeaders: true,
      })
    } finally {
      await admin.disconnect()
    }
    const full = cluster.nodes.get(FULL_NODE)!
    const history = new History()
    // kafkajs gives a batch that failed the sequence numbers of the one it sends next, which the leader answers as a
    // duplicate of the failed one where that was written after all (here by the followers of the node that failed to):
    // a new producer (a new producer id) follows a failure. A send whose leader's connection closed may even resolve
    // without that partition's answer: the partition's records are then not acknowledged, which is a failure too.
    const newProducer = async (): Promise<Producer> => {
      const created = cluster!.kafka('storage-failure-producer').producer({ idempotent: true, maxInFlightRequests: 1 })
      await created.connect()
      return created
    }
    let producer = await newProducer()
    // An acks=1 producer beside it keeps the leaders appending while node 1 fails, so that its followers fetch several
    // batches at a time (all but the last of a fetch's appends were once left unawaited: an unhandled rejection each).
    const side = cluster.kafka('storage-failure-acks1').producer()
    await side.connect()
    let producing = true
    const sideWrites = (async () => {
      for (let round = 0; producing; round++) {
        const messages = Array.from({ length: PARTITIONS }, (_, partition) => ({ partition, value: `${SIDE}${round}-${partition}` }))
        await side.send({ topic: TOPIC, acks: 1, messages }).catch(() => sleep(100))
      }
    })()
    /** Per partition, the offset after its last acknowledged record. */
    const acknowledgedEnd = Array.from({ length: PARTITIONS }, () => 0n)
    let sends = 0
    let filledAt = 0
    let exitedAt = 0
    let sendsAfterExit = 0
    let lastAckMs = Date.now()
    let longestWithoutAckMs = 0
    full.child.once('exit', () => (exitedAt = Date.now()))
    try {
      // A few rounds on a disk with space, then it fills; producing goes on until the node is gone and ten more
      // rounds were acknowledged by the others.
      while (sendsAfterExit < 10) {
        if (sends === 5) {
          tmpfs.fill({ leaveBytes: 0 })
          filledAt = Date.now()
        }
        if (filledAt > 0 && exitedAt === 0 && Date.now() - filledAt > 30_000) break
        const round = sends++
        const messages = Array.from({ length: PARTITIONS * 20 }, (_, i) => ({ partition: i % PARTITIONS, value: `${round}-${i}-`.padEnd(2000, '.') }))
        const answers = await producer.send({ topic: TOPIC, acks: -1, messages }).catch(() => [])
        for (const answer of answers) {
          const values = messages.filter((m) => m.partition === answer.partition).map((m) => m.value)
          history.acknowledge(TOPIC, answer.partition, BigInt(answer.baseOffset!), values)
          acknowledgedEnd[answer.partition] = BigInt(answer.baseOffset!) + BigInt(values.length)
        }
        const unanswered = messages.filter((m) => !answers.some((answer) => answer.partition === m.partition))
        if (unanswered.length > 0) {
          history.notAcknowledged(unanswered.length)
          await producer.disconnect()
          producer = await newProducer()
          continue
        }
        longestWithoutAckMs = Math.max(longestWithoutAckMs, Date.now() - lastAckMs)
        lastAckMs = Date.now()
        if (exitedAt > 0) sendsAfterExit++
      }
    } finally {
      producing = false
      await sideWrites
      await Promise.all([producer.disconnect(), side.disconnect()])
    }

    // It stopped by itself, soon after its disk filled, saying why in one line.
    expect(exitedAt, `node ${FULL_NODE} still running 30 s after its disk filled; its log:\n${full.output().slice(-4000)}`).toBeGreaterThan(0)
    expect(full.child.exitCode).toBe(1)
    expect(full.output()).not.toContain('unhandled rejection')
    const errors = loggedErrors(full)
    expect(errors).toHaveLength(1)
    expect(errors[0]).toMatch(/No space left on device\. A cluster node cannot write its metadata log nor replicate without its storage: stopping the node/)
    console.log(`node ${FULL_NODE} exited ${exitedAt - filledAt} ms after its disk filled; no produce was acknowledged for ${longestWithoutAckMs} ms at most`)

    // Every acknowledged record is on the partitions' leaders among the nodes left.
    const others = cluster.nodeIds.filter((id) => id !== FULL_NODE)
    for (let partition = 0; partition < PARTITIONS; partition++) {
      const leaderId = await waitFor(`a leader of ${TOPIC}-${partition} other than node ${FULL_NODE}`, async () => {
        const found = (await partitionsOf(cluster!.nodes.get(others[0]!)!, TOPIC))[partition]
        return found && others.includes(found.leaderId) && found.leaderId
      })
      // A leader just elected moves its high watermark once the other follower has fetched.
      const read = await waitFor(`${TOPIC}-${partition} readable up to its last acknowledged record`, () =>
        withClient(cluster!.nodes.get(leaderId)!, async (client) => {
          const { batches, highWatermark } = await readPartition(client, TOPIC, partition)
          return highWatermark >= acknowledgedEnd[partition]! && recordsOf(batches)
        }),
      )
      const values = read.map((record) => ({ offset: record.offset, value: record.value!.toString() }))
      history.consumed(TOPIC, partition, values.filter((record) => !record.value.startsWith(SIDE)), { rewinds: 'violation' })
    }
    const { problems, summary } = history.check()
    console.log(summary)
    expect(problems).toEqual([])
  }, 120_000)
})
