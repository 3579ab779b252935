/**
 * acks=all on a three-node cluster whose followers take a batch while the leader is still writing it: a replica
 * Fetch reads up to the leader's log end, past its durable end (cluster/replica-manager.ts, top comment), and the
 * high watermark counts only what each replica has written. What that must not change, through real processes and
 * kafkajs:
 *
 * - a consumer's Fetch (raw wire, to see each answer's high watermark beside its batches) never returns a batch that
 *   ends past the answer's high watermark while acks=all and acks=1 producers write, and every acks=all record
 *   acknowledged is below the high watermark and read back at its offset;
 * - kill -9 of the leader while idempotent acks=all producers keep several batches in its writes: the followers may
 *   hold batches the leader never wrote (a tail no one was told of), which the new leader keeps and the restarted old
 *   leader fetches; the history checker (history.ts) finds every acknowledged record, none twice, none out of order.
 *   Whether the kill fell while a follower held such a tail depends on timing: the test prints whether it did (the
 *   old epoch ends at the new leader past the log end the killed node recovered), it does not assert it (it did in
 *   one of the six runs made);
 * - the same tail made certain: a leader whose disk fills up (its data directory moved onto a full tmpfs; skipped,
 *   saying why, where none can be mounted) appends a batch, serves it to its followers and fails to write it. The
 *   producer is not told it was written (KAFKA_STORAGE_ERROR, or no answer: the failed write stops the node), and
 *   the successor elected once the node is gone holds the batch at the offsets it was given, with every acknowledged
 *   record; the old leader, restarted with space again, recovers without the batch, fetches it and rejoins the ISR.
 */
import { cpSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Producer } from 'kafkajs'
import { startCluster, type TestCluster } from '../../helpers/cluster.js'
import { startBroker } from '../../helpers/broker.js'
import { MiB, mountTmpfs } from '../../helpers/tmpfs.js'
import { waitFor } from '../../helpers/wait.js'
import { fetchPartition, partitionsOf, producePartition, readPartition, recordsOf, splitBatches, withClient } from '../../helpers/kafka.js'
import { ErrorCode } from '../../../protocol/errors.js'
import { encodeRecordBatch } from '../../../protocol/record-batch.js'
import { offsetForLeaderEpoch, type OffsetForLeaderEpochRequest, type OffsetForLeaderEpochResponse } from '../../../protocol/messages/offset-for-leader-epoch.js'
import type { MetadataResponsePartition } from '../../../protocol/messages/metadata.js'
import { History, readAll } from './history.js'

const READS = 'reads'
const KILLED = 'killed'
/** Where the node whose disk fills up keeps its data (the test that needs it is skipped, saying why, without one). */
const tmpfs = mountTmpfs(64 * MiB)
const noTmpfs = 'skipReason' in tmpfs ? tmpfs.skipReason : null
/** The node whose disk fills up. */
const FULL_NODE = 3

describe('acks=all with the followers writing beside the leader', () => {
  let cluster: TestCluster

  /** The partition 0 of `topic` as node `id` answers Metadata. */
  const partitionAt = async (id: number, topic: string): Promise<MetadataResponsePartition | undefined> => (await partitionsOf(cluster.nodes.get(id)!, topic))[0]

  /** Partition 0 of `topic` once every replica is in its ISR, as node `id` sees it. */
  const whole = (id: number, topic: string): Promise<MetadataResponsePartition> =>
    waitFor(`every replica of ${topic} in the ISR`, async () => {
      const found = await partitionAt(id, topic)
      return found?.isrNodes.length === 3 && found.leaderId >= 0 && found
    }, { timeoutMs: 60_000 })

  beforeAll(async () => {
    // Leadership stays with the node that took over, so the killed node returns as a follower.
    cluster = await startCluster({ nodes: 3, extraArgs: ['--broker-heartbeat-interval-ms', '500', '--broker-session-timeout-ms', '3000', '--no-auto-leader-rebalance'] })
    await waitFor('three unfenced brokers', async () => (await cluster.status(1)).liveBrokers.length === 3)
    const admin = cluster.kafka('acks-all-admin', [1]).admin()
    await admin.connect()
    try {
      await admin.createTopics({
        topics: [READS, KILLED].map((topic) => ({ topic, numPartitions: 1, replicationFactor: 3, configEntries: [{ name: 'min.insync.replicas', value: '2' }] })),
        waitForLeaders: true,
      })
    } finally {
      await admin.disconnect()
    }
  }, 120_000)
  afterAll(async () => {
    // The node on the tmpfs goes first, so that the mount point is gone before the cluster removes data directories.
    if (!('skipReason' in tmpfs)) {
      await cluster?.nodes.get(FULL_NODE)?.kill()
      tmpfs.unmount()
    }
    await cluster?.destroy()
  })

  it('asks min.insync.replicas above the replication factor only for every replica (Kafka\'s effectiveMinIsr): acks=all is taken and the high watermark moves', async () => {
    const admin = cluster.kafka('min-isr-admin', [1]).admin()
    const producer = cluster.kafka('min-isr-producer').producer()
    await Promise.all([admin.connect(), producer.connect()])
    try {
      const topics = [
        { topic: 'one-replica', replicationFactor: 1, minIsr: '2' },
        { topic: 'two-replicas', replicationFactor: 2, minIsr: '3' },
      ]
      await admin.createTopics({
        topics: topics.map(({ topic, replicationFactor, minIsr }) => ({ topic, numPartitions: 1, replicationFactor, configEntries: [{ name: 'min.insync.replicas', value: minIsr }] })),
        waitForLeaders: true,
      })
      for (const { topic, replicationFactor } of topics) {
        const partition = await waitFor(`${topic} with its whole ISR`, async () => {
          const found = await partitionAt(1, topic)
          return found?.isrNodes.length === replicationFactor && found.leaderId >= 0 && found
        })
        const [acksOne] = await producer.send({ topic, acks: 1, messages: [{ value: 'acks=1', partition: 0 }] })
        const [acksAll] = await producer.send({ topic, acks: -1, messages: [{ value: 'acks=all', partition: 0 }] })
        expect([acksOne!.errorCode, acksAll!.errorCode, acksAll!.baseOffset], topic).toEqual([ErrorCode.NONE, ErrorCode.NONE, '1'])
        // Both records readable at the leader: its high watermark passed the acks=1 record too.
        const read = await withClient(cluster.nodes.get(partition.leaderId)!, (client) => readPartition(client, topic, 0))
        expect(read.highWatermark, topic).toBe(2n)
        expect(recordsOf(read.batches).map((record) => record.value?.toString()), topic).toEqual(['acks=1', 'acks=all'])
      }
    } finally {
      await producer.disconnect()
      await admin.disconnect()
    }
  })

  it('never lets a consumer read past the high watermark while acks=all and acks=1 producers write', async () => {
    const { leaderId } = await whole(1, READS)
    const history = new History()
    const producers = await Promise.all(
      [-1, 1].map(async (acks) => {
        const producer = cluster.kafka(`reads-producer-${acks}`).producer()
        await producer.connect()
        return { acks, producer }
      }),
    )
    let producing = true
    const writes = Promise.all(
      producers.map(async ({ acks, producer }) => {
        try {
          for (let batch = 0; batch < 150; batch++) {
            const values = Array.from({ length: 10 }, (_, i) => `acks${acks}-${batch}-${i}`)
            const [answer] = await producer.send({ topic: READS, acks, messages: values.map((value) => ({ value, partition: 0 })) })
            if (acks === -1) history.acknowledge(READS, 0, BigInt(answer!.baseOffset!), values)
          }
        } finally {
          await producer.disconnect()
        }
      }),
    ).finally(() => (producing = false))

    let answersWithRecords = 0
    let highWatermark = 0n
    await withClient(cluster.nodes.get(leaderId)!, async (client) => {
      let next = 0n
      // Reads on at the tail while the producers write, and then until it has reached the last high watermark.
      while (producing || next < highWatermark) {
        const answer = await fetchPartition(client, { topic: READS, partition: 0, offset: next, maxWaitMs: 100 })
        expect(answer.errorCode).toBe(0)
        highWatermark = answer.highWatermark
        const batches = splitBatches(answer.records)
        for (const { header } of batches) {
          expect(header.baseOffset + BigInt(header.lastOffsetDelta), `a batch read at ${next} against the high watermark ${highWatermark}`).toBeLessThan(highWatermark)
        }
        if (batches.length > 0) {
          answersWithRecords++
          const last = batches.at(-1)!.header
          next = last.baseOffset + BigInt(last.lastOffsetDelta) + 1n
        }
      }
    })
    await writes
    expect(answersWithRecords).toBeGreaterThan(0)
    const records = await readAll(cluster.kafka(`reads-reader-${Date.now()}`), READS, 0, 3000)
    history.consumed(READS, 0, records, { rewinds: 'violation' })
    const { problems, summary } = history.check()
    console.log(`${summary}; ${answersWithRecords} consumer fetch answers with records, none past its high watermark`)
    expect(problems).toEqual([])
    expect(records.length).toBe(3000)
  }, 180_000)

  it('loses nothing acknowledged when the leader is killed with kill -9 while its followers may hold batches it has not written', async () => {
    const before = await whole(1, KILLED)
    const victim = before.leaderId
    const survivors = cluster.nodeIds.filter((id) => id !== victim)
    const history = new History()
    // Several idempotent producers, one request in flight each, with batches of about 100 KB: the leader is writing
    // batches of several of them at almost any moment.
    const producers: Producer[] = await Promise.all(
      [0, 1, 2, 3].map(async (p) => {
        const producer = cluster.kafka(`killed-producer-${p}`, survivors, { requestTimeout: 5000 }).producer({ idempotent: true, maxInFlightRequests: 1 })
        await producer.connect()
        return producer
      }),
    )
    let stop = false
    let killedAtCount: number | null = null
    const loops = producers.map(async (producer, p) => {
      for (let batch = 0; !stop; batch++) {
        const values = Array.from({ length: 50 }, (_, i) => `p${p}-${batch}-${i}-`.padEnd(2000, '.'))
        try {
          const [answer] = await producer.send({ topic: KILLED, acks: -1, messages: values.map((value) => ({ value, partition: 0 })) })
          history.acknowledge(KILLED, 0, BigInt(answer!.baseOffset!), values)
        } catch {
          history.notAcknowledged(values.length)
          // A send that fails at once must not spin without yielding to timers.
          await new Promise((resolve) => setTimeout(resolve, 100))
        }
      }
    })
    try {
      await waitFor('1,500 records acknowledged before the kill', () => history.acknowledgedCount >= 1500, { timeoutMs: 90_000 })
      killedAtCount = history.acknowledgedCount
      await cluster.nodes.get(victim)!.kill()
      await waitFor('1,500 more records acknowledged by the new leader', () => history.acknowledgedCount >= killedAtCount! + 1500, { timeoutMs: 90_000 })
    } finally {
      stop = true
      await Promise.all(loops)
      await Promise.all(producers.map((producer) => producer.disconnect()))
    }
    const after = await waitFor('a new leader from the ISR', async () => {
      const found = await partitionAt(survivors[0]!, KILLED)
      return found && found.leaderId !== victim && found.leaderId >= 0 && found
    })
    expect(survivors).toContain(after.leaderId)
    expect(after.leaderEpoch ?? -1).toBeGreaterThan(before.leaderEpoch ?? -1)

    const restarted = await cluster.restart(victim)
    await waitFor('the restarted node back in the ISR', async () => (await partitionAt(survivors[0]!, KILLED))?.isrNodes.includes(victim), { timeoutMs: 60_000 })
    // The log end the killed node recovered (its first line about the partition), against where the old epoch ends at
    // the new leader: past it, the new leader holds batches of the old epoch that the old leader never wrote.
    const recovered = new RegExp(`(?:leading|following) ${KILLED}-0 .*from offset (\\d+)`).exec(restarted.output())
    expect(recovered).not.toBeNull()
    const oldEpochEnd = await withClient(cluster.nodes.get(after.leaderId)!, async (client) => {
      const answer = await client.request<OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse>(offsetForLeaderEpoch, 4, {
        replicaId: -1,
        topics: [{ topic: KILLED, partitions: [{ partition: 0, currentLeaderEpoch: -1, leaderEpoch: before.leaderEpoch ?? 0 }] }],
      })
      const epochEnd = answer.topics[0]!.partitions[0]!
      expect(epochEnd.errorCode).toBe(0)
      return epochEnd.endOffset ?? -1n
    })
    const tail = oldEpochEnd - BigInt(recovered![1]!)
    console.log(
      tail > 0n
        ? `the new leader kept ${tail} offsets of the old epoch that the killed leader had not written (recovered to ${recovered![1]}, the epoch ends at ${oldEpochEnd})`
        : `the killed leader had written everything of its epoch that its followers took (recovered to ${recovered![1]}, the epoch ends at ${oldEpochEnd})`,
    )

    const records = await readAll(cluster.kafka(`killed-reader-${Date.now()}`), KILLED, 0, history.acknowledgedCount)
    history.consumed(KILLED, 0, records, { rewinds: 'violation' })
    const { problems, summary } = history.check()
    console.log(summary)
    expect(problems).toEqual([])
  }, 300_000)
  it.skipIf(noTmpfs !== null)('acknowledges nothing of a batch whose write failed on the leader though its followers took it, and loses nothing acknowledged when a follower holding it takes over', async () => {
    if ('skipReason' in tmpfs) return
    // The node moves onto the tmpfs: stopped cleanly, its data copied there, started again on it (same id and port).
    const before = cluster.nodes.get(FULL_NODE)!
    await before.stop()
    cpSync(before.dataDir, tmpfs.dir, { recursive: true })
    // The cluster now removes the tmpfs copy's directory, not this one.
    before.cleanup()
    cluster.nodes.set(FULL_NODE, await startBroker({ host: before.host, port: before.port, dataDir: tmpfs.dir, args: cluster.args(FULL_NODE) }))
    await waitFor('three unfenced brokers', async () => (await cluster.status(1)).liveBrokers.length === 3, { timeoutMs: 60_000 })
    // Topics until one is led by that node (the controller spreads leaders over the nodes).
    let topic = ''
    for (let i = 0; topic === '' && i < 6; i++) {
      const admin = cluster.kafka(`full-admin-${i}`, [1]).admin()
      await admin.connect()
      try {
        await admin.createTopics({ topics: [{ topic: `full-${i}`, numPartitions: 1, replicationFactor: 3 }], waitForLeaders: true })
      } finally {
        await admin.disconnect()
      }
      if ((await whole(1, `full-${i}`)).leaderId === FULL_NODE) topic = `full-${i}`
    }
    expect(topic).not.toBe('')
    const leader = await whole(1, topic)
    const history = new History()
    const producer = cluster.kafka('full-producer').producer({ idempotent: true, maxInFlightRequests: 1 })
    await producer.connect()
    try {
      for (let batch = 0; batch < 20; batch++) {
        const values = Array.from({ length: 10 }, (_, i) => `before-${batch}-${i}`)
        const [answer] = await producer.send({ topic, acks: -1, messages: values.map((value) => ({ value, partition: 0 })) })
        history.acknowledge(topic, 0, BigInt(answer!.baseOffset!), values)
      }
    } finally {
      await producer.disconnect()
    }

    // The disk fills: batches go on being appended until one's write fails (tmpfs takes small appends into the last
    // page it gave a file); that one took its offsets and was served to the followers, who write it. The failed write
    // stops the node (a cluster node halts when its storage fails, broker.ts): its answer is KAFKA_STORAGE_ERROR, or
    // none if the connection closes first.
    tmpfs.fill({ leaveBytes: 0 })
    const full = cluster.nodes.get(FULL_NODE)!
    let tail: { baseOffset: bigint; values: string[] } | null = null
    await withClient(full, async (client) => {
      for (let batch = 0; tail === null && batch < 500; batch++) {
        const values = Array.from({ length: 4 }, (_, i) => `full-${batch}-${i}-`.padEnd(4000, '.'))
        // acks=all: every batch before this one is below the high watermark, so this one starts there.
        const endBefore = (await fetchPartition(client, { topic, partition: 0, offset: 0n, maxBytes: 1 })).highWatermark
        const answer = await producePartition(client, topic, 0, encodeRecordBatch(values.map((value) => ({ value: Buffer.from(value) }))), { acks: -1 }).catch(() => null)
        if (answer?.errorCode === ErrorCode.NONE) history.acknowledge(topic, 0, answer.baseOffset, values)
        else {
          if (answer) expect(answer.errorCode).toBe(ErrorCode.KAFKA_STORAGE_ERROR)
          history.notAcknowledged(values.length)
          tail = { baseOffset: endBefore, values }
        }
      }
    })
    expect(tail).not.toBeNull()
    const { baseOffset: tailOffset, values: tailValues } = tail!
    await waitFor('the leader whose write failed to stop', () => full.child.exitCode !== null)
    expect(full.child.exitCode).toBe(1)
    expect(full.output()).toMatch(/No space left on device\. A cluster node cannot write its metadata log nor replicate without its storage: stopping the node/)

    // The leader is gone; a follower takes over with the batch the old leader never wrote.
    await full.kill()
    const after = await waitFor('a new leader from the ISR', async () => {
      const found = await partitionAt(1, topic)
      return found && found.leaderId !== FULL_NODE && found.leaderId >= 0 && found
    })
    expect(after.leaderEpoch ?? -1).toBeGreaterThan(leader.leaderEpoch ?? -1)
    // Read from the new leader (raw Fetch: a consumer group needs __consumer_offsets, which may not exist yet and cannot
    // be created with a node down), once its high watermark has passed the batch.
    const newLeader = cluster.nodes.get(after.leaderId)!
    await waitFor('the new leader\'s high watermark past the batch', () =>
      withClient(newLeader, async (client) => (await fetchPartition(client, { topic, partition: 0, offset: 0n, maxBytes: 1 })).highWatermark >= tailOffset + 4n),
    )
    const read = await withClient(newLeader, async (client) =>
      recordsOf((await readPartition(client, topic, 0)).batches).map((record) => ({ offset: record.offset, value: record.value!.toString() })),
    )
    expect(read.filter((record) => record.offset >= tailOffset).map((record) => [record.offset, record.value])).toEqual(
      tailValues.map((value, i) => [tailOffset + BigInt(i), value]),
    )
    history.consumed(topic, 0, read, { rewinds: 'violation' })
    const { problems, summary } = history.check()
    console.log(`${summary}; the batch the leader failed to write (not acknowledged) is at offsets ${tailOffset}-${tailOffset + 3n} on its successor`)
    expect(problems).toEqual([])

    // With space again, the old leader comes back: it recovered without the batch, fetches it and rejoins the ISR.
    tmpfs.free()
    const restarted = await full.restart()
    cluster.nodes.set(FULL_NODE, restarted)
    await waitFor('the old leader back in the ISR', async () => (await partitionAt(1, topic))?.isrNodes.includes(FULL_NODE), { timeoutMs: 60_000 })
    expect(restarted.output()).toMatch(new RegExp(`(?:leading|following) ${topic}-0 .*from offset ${tailOffset}\\b`))
  }, 300_000)
})
