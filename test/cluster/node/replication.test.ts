/**
 * Partition replication on a three-node cluster of real processes, through kafkajs: a topic of replication factor 3
 * has every replica in its ISR on every node's Metadata; an idempotent kafkajs producer with acks=all is answered
 * once every ISR member holds its batches, and a consumer reads them; kill -9 of a partition's leader while the
 * producer and kcat (acks=all, idempotent) run moves leadership to an ISR member at a higher leader epoch, the producer recovers through a metadata
 * refresh, and the history checker (history.ts) finds no acknowledged record lost, none duplicated and no offset out
 * of order; the killed node, restarted on its data directory, truncates what it had that the new leader does not,
 * catches up and is back in the ISR; a leader paused with SIGSTOP past the session timeout is fenced and replaced,
 * and once resumed follows the new leader and rejoins the ISR, with the same checks; an ISR below min.insync.replicas refuses acks=all with NOT_ENOUGH_REPLICAS
 * (and writes nothing) while acks=1 is taken. OffsetForLeaderEpoch (raw wire: no client here sends it) answers from
 * the new leader's epoch cache, which holds the leader's epoch from its election on, before it appends anything; a
 * former leader that led an epoch without appending drops that epoch when it follows and rejoins the ISR. A follower
 * stopped while the leader's DeleteRecords moved the log start past its log end starts its log afresh at the leader's
 * log start when it returns (at the base offset of the batch that log start is inside of), and rejoins the ISR; a follower in the ISR moves its log start with the leader's DeleteRecords,
 * which is answered only once it has (a follower asked is NOT_LEADER_OR_FOLLOWER), so the deleted records stay deleted
 * when it leads after kill -9 of the leader right after the answer. A follower stopped while the leader's compaction removed whole
 * batches it had not copied takes the leader's next batch past the gap when it returns (its log keeps the same
 * offsets), catches up and rejoins the ISR. Leadership a kill -9 moved stays moved once the node is back in the ISR
 * (--no-auto-leader-rebalance) until `brook topics elect-leaders` (kafka-leader-election.sh, ElectLeaders at the
 * controller) gives every partition back to its preferred replica, on every node's Metadata.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { beforeAll, describe, expect, it } from 'vitest'
import { Kafka, logLevel, type Producer } from 'kafkajs'
import { QUICK_CLUSTER_ARGS, useCluster } from '../../helpers/cluster.js'
import { waitFor } from '../../helpers/wait.js'
import { fetchPartition, partitionsOf, readPartition, recordsOf, withClient } from '../../helpers/kafka.js'
import { listOffsets, type ListOffsetsRequest, type ListOffsetsResponse } from '../../../protocol/messages/list-offsets.js'
import { offsetForLeaderEpoch, type OffsetForLeaderEpochRequest, type OffsetForLeaderEpochResponse } from '../../../protocol/messages/offset-for-leader-epoch.js'
import { kcat } from '../../helpers/kcat.js'
import { metadata, type MetadataRequest, type MetadataResponse, type MetadataResponsePartition } from '../../../protocol/messages/metadata.js'
import { brook } from '../../cli/run-brook.js'
import { deleteRecords, type DeleteRecordsRequest, type DeleteRecordsResponse } from '../../../protocol/messages/delete-records.js'
import { ErrorCode } from '../../../protocol/errors.js'
import { History, readAll } from './history.js'

const TOPIC = 'replicated'

describe('replication on a three-node cluster', () => {
  // Leadership stays with the ISR member that took over, whose state the tests read after the old leader returns
  // (leaders.test.ts checks that leadership goes back to a returning preferred replica).
  // Retention and compaction run every second, for the compacted topic whose leader removes batches a stopped
  // follower has not copied.
  const cluster = useCluster({ nodes: 3, extraArgs: [...QUICK_CLUSTER_ARGS, '--no-auto-leader-rebalance', '--log-retention-check-interval-ms', '1000'] })

  /** Node `id`'s Metadata v12 for `topic`'s partitions. */
  const partitionsAt = (id: number, topic: string): Promise<MetadataResponsePartition[]> => partitionsOf(cluster().nodes.get(id)!, topic)

  function kafka(clientId: string, bootstrap: number[]): Kafka {
    return new Kafka({
      clientId,
      brokers: bootstrap.map((id) => cluster().nodes.get(id)!.address),
      logLevel: logLevel.NOTHING,
      retry: { initialRetryTime: 100, maxRetryTime: 1000, retries: 30 },
    })
  }

  beforeAll(async () => {
    const admin = kafka('replication-admin', [1]).admin()
    await admin.connect()
    try {
      await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: 3, replicationFactor: 3 }], waitForLeaders: true })
    } finally {
      await admin.disconnect()
    }
  })

  it('places three replicas of every partition, all in the ISR, with the leaders spread', async () => {
    for (const id of cluster().nodeIds) {
      const partitions = await waitFor(`node ${id} shows the topic`, async () => {
        const found = await partitionsAt(id, TOPIC)
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

  /**
   * Produces to `partition` of TOPIC into `history` with an idempotent kafkajs producer (batches of 10 values, acks=all)
   * and, beside it, kcat (runs of 20 lines, acks=all, idempotence on): 300 kafkajs values, then `fault`, then 300
   * more. A kafkajs consumer reads the partition meanwhile; its group may rebalance through the fault and read again
   * from its committed offset (or the beginning), which the history counts as rewinds. Returns how long after the fault no produce was
   * acknowledged (printed, not asserted).
   */
  async function produceThrough(partition: number, history: History, bootstrap: number[], fault: () => Promise<void>): Promise<number> {
    const producer: Producer = new Kafka({
      clientId: `producer-${partition}`,
      brokers: bootstrap.map((id) => cluster().nodes.get(id)!.address),
      logLevel: logLevel.NOTHING,
      requestTimeout: 5000,
      retry: { initialRetryTime: 100, maxRetryTime: 1000, retries: 30 },
    }).producer({ idempotent: true, maxInFlightRequests: 1 })
    await producer.connect()
    const watcher = new Kafka({ clientId: `watcher-${partition}`, brokers: bootstrap.map((id) => cluster().nodes.get(id)!.address), logLevel: logLevel.NOTHING, requestTimeout: 5000 }).consumer({
      groupId: `watchers-${partition}`,
      maxWaitTimeInMs: 200,
    })
    const watched: { offset: bigint; value: string }[] = []
    await watcher.connect()
    await watcher.subscribe({ topic: TOPIC, fromBeginning: true })
    await watcher.run({
      eachMessage: async (payload) => {
        if (payload.partition === partition) watched.push({ offset: BigInt(payload.message.offset), value: payload.message.value!.toString() })
      },
    })
    let faultAtMs: number | null = null
    let firstAckAfterFaultMs: number | null = null
    // The stall is measured from the fault to the first acknowledgement of a produce started after it.
    const acknowledged = (startedAtMs: number): void => {
      if (faultAtMs !== null && startedAtMs >= faultAtMs) firstAckAfterFaultMs ??= Date.now()
    }
    let kcatRuns = 0
    let stopKcat = false
    const kcatLoop = (async () => {
      while (!stopKcat) {
        const values = Array.from({ length: 20 }, (_, i) => `k${partition}-${kcatRuns}-${i}`)
        kcatRuns++
        const brokers = bootstrap.map((id) => cluster().nodes.get(id)!.address).join(',')
        const startedAtMs = Date.now()
        try {
          await kcat(['-P', '-b', brokers, '-t', TOPIC, '-p', String(partition), '-X', 'acks=all', '-X', 'enable.idempotence=true', '-X', 'message.timeout.ms=60000', '-X', 'request.timeout.ms=5000'], {
            input: values.join('\n') + '\n',
            timeoutMs: 90_000,
          })
          history.acknowledgeUnplaced(TOPIC, partition, values)
          acknowledged(startedAtMs)
        } catch {
          history.notAcknowledged(values.length)
          // A send that fails at once (a producer in a fatal state) must not loop without a pause: that would starve every
          // timer, the test's own timeout included.
          await sleep(100)
        }
      }
    })()
    let next = 0
    const produceBatch = async (): Promise<void> => {
      const values = Array.from({ length: 10 }, () => `v${partition}-${next++}`)
      const startedAtMs = Date.now()
      try {
        const [answer] = await producer.send({ topic: TOPIC, acks: -1, messages: values.map((value) => ({ value, partition })) })
        history.acknowledge(TOPIC, partition, BigInt(answer!.baseOffset!), values)
        acknowledged(startedAtMs)
      } catch {
        history.notAcknowledged(values.length)
        // A send that fails at once (a producer in a fatal state) must not loop without a pause: that would starve every
        // timer, the test's own timeout included.
        await sleep(100)
      }
    }
    try {
      while (next < 300) await produceBatch()
      faultAtMs = Date.now()
      await fault()
      while (next < 600) await produceBatch()
    } finally {
      stopKcat = true
      await kcatLoop
      await producer.disconnect()
    }
    try {
      let lastCount = -1
      let lastProgressMs = Date.now()
      await waitFor('the watching consumer has read everything acknowledged, or made no progress for 30 s', () => {
        if (watched.length !== lastCount) {
          lastCount = watched.length
          lastProgressMs = Date.now()
        }
        return watched.length >= history.acknowledgedCount || Date.now() - lastProgressMs > 30_000
      }, { timeoutMs: 120_000 })
    } finally {
      await watcher.disconnect()
    }
    history.consumed(TOPIC, partition, watched, { rewinds: 'allowed' })
    expect(kcatRuns).toBeGreaterThan(1)
    expect(firstAckAfterFaultMs).not.toBeNull()
    return firstAckAfterFaultMs! - faultAtMs!
  }

  /** `partition` of TOPIC as node `id` answers Metadata. */
  async function partitionOf(id: number, partition: number): Promise<MetadataResponsePartition | undefined> {
    return (await partitionsAt(id, TOPIC)).find((p) => p.partitionIndex === partition)
  }

  it('keeps every acknowledged record of idempotent acks=all producers (kafkajs, kcat) through kill -9 of the leader, and the restarted node rejoins the ISR', async () => {
    const partition = 0
    const history = new History()
    const before = (await partitionOf(1, partition))!
    const victim = before.leaderId
    const survivors = cluster().nodeIds.filter((id) => id !== victim)
    const stalledMs = await produceThrough(partition, history, survivors, () => cluster().nodes.get(victim)!.kill())
    console.log(`kill -9 of the leader: no produce acknowledged for ${stalledMs} ms`)
    const after = await waitFor('a new leader from the ISR', async () => {
      const found = await partitionOf(survivors[0]!, partition)
      return found && found.leaderId !== victim && found.leaderId >= 0 && found
    })
    expect(survivors).toContain(after.leaderId)
    expect(after.leaderEpoch ?? -1).toBeGreaterThan(before.leaderEpoch ?? -1)

    // The killed node comes back on its data directory, truncates any tail the new leader lacks, and rejoins the ISR.
    await cluster().restart(victim)
    await waitFor('the restarted node back in the ISR', async () => (await partitionOf(survivors[0]!, partition))?.isrNodes.includes(victim), { timeoutMs: 60_000 })

    const truncations = cluster().nodes.get(victim)!.output().split('\n').filter((line) => line.includes('truncating'))
    console.log(`the restarted node truncated ${truncations.length === 0 ? 'nothing (it had no tail the new leader lacked)' : truncations.join('; ')}`)
    const records = await readAll(kafka(`reader-${Date.now()}`, [...cluster().nodeIds]), TOPIC, partition, history.acknowledgedCount)
    history.consumed(TOPIC, partition, records, { rewinds: 'violation' })
    const { problems, summary } = history.check()
    console.log(summary)
    expect(problems).toEqual([])

    // OffsetForLeaderEpoch at the new leader answers from its epoch cache: the old epoch ends where the first batch of
    // the new leader's epoch starts, the latest ends at the log end, an unknown newer one is undefined.
    const newLeader = cluster().nodes.get(after.leaderId)!
    const { batches, highWatermark } = await withClient(newLeader, (client) => readPartition(client, TOPIC, partition))
    const firstOfNewEpoch = batches.find((batch) => batch.header.partitionLeaderEpoch > (before.leaderEpoch ?? 0))!
    const endOffsets = await withClient(newLeader, (client) =>
      client.request<OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse>(offsetForLeaderEpoch, 4, {
        replicaId: -1,
        topics: [{ topic: TOPIC, partitions: [before.leaderEpoch ?? 0, firstOfNewEpoch.header.partitionLeaderEpoch, 1000].map((leaderEpoch) => ({ partition, currentLeaderEpoch: -1, leaderEpoch })) }],
      }),
    )
    const [old, latest, unknown] = endOffsets.topics[0]!.partitions
    expect([old!.errorCode, old!.leaderEpoch, old!.endOffset]).toEqual([0, before.leaderEpoch ?? 0, firstOfNewEpoch.header.baseOffset])
    expect([latest!.errorCode, latest!.leaderEpoch]).toEqual([0, firstOfNewEpoch.header.partitionLeaderEpoch])
    expect(latest!.endOffset).toBeGreaterThanOrEqual(highWatermark)
    expect([unknown!.errorCode, unknown!.leaderEpoch, unknown!.endOffset]).toEqual([0, -1, -1n])
  }, 180_000)

  it('keeps every acknowledged record through SIGSTOP of the leader past the session timeout: it is fenced, a new leader takes over, and after SIGCONT it follows, truncates any divergent tail and rejoins the ISR', async () => {
    const partition = 1
    const history = new History()
    const before = await waitFor('every replica in the ISR', async () => {
      const found = await partitionOf(1, partition)
      return found?.isrNodes.length === 3 && found
    }, { timeoutMs: 60_000 })
    const victim = before.leaderId
    const survivors = cluster().nodeIds.filter((id) => id !== victim)
    const paused = cluster().nodes.get(victim)!
    // kafkajs and librdkafka send again to a leader that does not answer until it answers or the connection breaks,
    // not to the new leader: the producers move on once the resumed node says it no longer leads.
    let after: MetadataResponsePartition | null = null
    const stalledMs = await produceThrough(partition, history, survivors, async () => {
      paused.child.kill('SIGSTOP')
      try {
        after = await waitFor('a new leader from the ISR', async () => {
          const found = await partitionOf(survivors[0]!, partition)
          return found && found.leaderId !== victim && found.leaderId >= 0 && found
        })
      } finally {
        paused.child.kill('SIGCONT')
      }
    })
    console.log(`SIGSTOP of the leader until a new one was elected: no produce acknowledged for ${stalledMs} ms`)
    expect(after!.leaderEpoch ?? -1).toBeGreaterThan(before.leaderEpoch ?? -1)
    await waitFor('the resumed node back in the ISR', async () => (await partitionOf(survivors[0]!, partition))?.isrNodes.includes(victim), { timeoutMs: 60_000 })
    const output = paused.output()
    const truncations = output.split('\n').filter((line) => line.includes('truncating'))
    console.log(`the resumed node truncated ${truncations.length === 0 ? 'nothing (it had no tail the new leader lacked)' : truncations.join('; ')}`)
    expect(output).toMatch(new RegExp(`following ${TOPIC}-${partition} from node \\d in leader epoch`))
    const records = await readAll(kafka(`reader-${Date.now()}`, [...cluster().nodeIds]), TOPIC, partition, history.acknowledgedCount)
    history.consumed(TOPIC, partition, records, { rewinds: 'violation' })
    const { problems, summary } = history.check()
    console.log(summary)
    expect(problems).toEqual([])
  }, 240_000)

  it('refuses acks=all with NOT_ENOUGH_REPLICAS while the ISR is below min.insync.replicas, takes acks=1, and takes acks=all again once the ISR is whole', async () => {
    const topic = 'strict'
    await waitFor('three unfenced brokers', async () => (await cluster().status(1)).liveBrokers.length === 3)
    const admin = kafka('strict-admin', [1]).admin()
    await admin.connect()
    try {
      await admin.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor: 3, configEntries: [{ name: 'min.insync.replicas', value: '3' }] }], waitForLeaders: true })
    } finally {
      await admin.disconnect()
    }
    const isrOf = async () => (await partitionsAt(1, topic))[0]
    const whole = await waitFor('every replica in the ISR', async () => {
      const found = await isrOf()
      return found?.isrNodes.length === 3 && found
    })
    // Node 1 may know the new topic before its leader does (each learns it from the metadata log): the producer, which
    // does not retry, sends only once the leader has it too.
    await waitFor('the leader to know the topic', async () => (await partitionsAt(whole.leaderId, topic))[0]?.isrNodes.length === 3)
    const follower = cluster().nodeIds.find((id) => id !== whole.leaderId && id !== 1)!
    const producer = new Kafka({ clientId: 'strict-producer', brokers: [cluster().nodes.get(1)!.address], logLevel: logLevel.NOTHING, retry: { retries: 0 } }).producer()
    await producer.connect()
    const send = async (acks: number, value: string): Promise<string> => {
      try {
        await producer.send({ topic, acks, messages: [{ value, partition: 0 }] })
        return 'ok'
      } catch (error) {
        const failure = error as { type?: string; cause?: { type?: string }; originalError?: { type?: string } }
        return failure.type ?? failure.cause?.type ?? failure.originalError?.type ?? String(error)
      }
    }
    try {
      expect(await send(-1, 'all-three')).toBe('ok')
      await cluster().nodes.get(follower)!.kill()
      await waitFor('the killed follower out of the ISR', async () => (await isrOf())?.isrNodes.length === 2)
      expect(await send(-1, 'two-of-three')).toBe('NOT_ENOUGH_REPLICAS')
      expect(await send(1, 'acks-one')).toBe('ok')
      await cluster().restart(follower)
      await waitFor('the follower back in the ISR', async () => (await isrOf())?.isrNodes.length === 3, { timeoutMs: 60_000 })
      await waitFor('acks=all taken again', async () => (await send(-1, 'whole-again')) === 'ok')
    } finally {
      await producer.disconnect()
    }
    const values = (await readAll(kafka(`reader-${Date.now()}`, [...cluster().nodeIds]), topic, 0, 3)).map((record) => record.value)
    expect(values.slice(0, 3)).toEqual(['all-three', 'acks-one', 'whole-again'])
  }, 180_000)

  it('puts a new leader\'s epoch in its epoch cache at its log end before it appends: OffsetForLeaderEpoch answers it, and a leader of an epoch without appends rejoins the ISR once it follows', async () => {
    const topic = 'epochs'
    await waitFor('three unfenced brokers', async () => (await cluster().status(1)).liveBrokers.length === 3)
    const admin = kafka('epochs-admin', [1]).admin()
    await admin.connect()
    try {
      await admin.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor: 3 }], waitForLeaders: true })
    } finally {
      await admin.disconnect()
    }
    const partitionAt = async (id: number) => (await partitionsAt(id, topic))[0]
    const whole = await waitFor('every replica in the ISR', async () => {
      const found = await partitionAt(1)
      return found?.isrNodes.length === 3 && found
    }, { timeoutMs: 60_000 })
    const producer = kafka('epochs-producer', [...cluster().nodeIds]).producer()
    await producer.connect()
    try {
      await producer.send({ topic, acks: -1, messages: Array.from({ length: 20 }, (_, i) => ({ value: `e-${i}`, partition: 0 })) })
    } finally {
      await producer.disconnect()
    }
    // Nothing is produced to the topic from here on: every leader after this one leads without appending.
    const logEnd = 20n
    /** OffsetForLeaderEpoch v4 at node `id` for each of `epochs`, in the leader epoch `current` it should lead. */
    const endOffsets = (id: number, current: number, epochs: number[]) =>
      withClient(cluster().nodes.get(id)!, async (client) => {
        const response = await client.request<OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse>(offsetForLeaderEpoch, 4, {
          replicaId: -1,
          topics: [{ topic, partitions: epochs.map((leaderEpoch) => ({ partition: 0, currentLeaderEpoch: current, leaderEpoch })) }],
        })
        return response.topics[0]!.partitions.map((p) => [p.errorCode, p.leaderEpoch, p.endOffset])
      })
    /** Waits for a leader other than `previous` with a later epoch, as node `by` sees it. */
    const nextLeader = (previous: MetadataResponsePartition, by: number) =>
      waitFor(`a leader after node ${previous.leaderId}`, async () => {
        const found = await partitionAt(by)
        return found && found.leaderId >= 0 && found.leaderId !== previous.leaderId && (found.leaderEpoch ?? -1) > (previous.leaderEpoch ?? -1) && found
      })
    /** Waits until the leader (as node `by` sees it) is asked in its own epoch and answers. */
    const answered = (leader: MetadataResponsePartition, epochs: number[]) =>
      waitFor(`node ${leader.leaderId} answers OffsetForLeaderEpoch in epoch ${leader.leaderEpoch}`, async () => {
        const answer = await endOffsets(leader.leaderId, leader.leaderEpoch!, epochs)
        return answer.every(([errorCode]) => errorCode === 0) && answer
      })

    // kill -9 of the leader: the new one, in a later epoch, has appended nothing in it.
    const first = whole
    await cluster().nodes.get(first.leaderId)!.kill()
    const second = await nextLeader(first, cluster().nodeIds.find((id) => id !== first.leaderId)!)
    expect(await answered(second, [second.leaderEpoch!, first.leaderEpoch!])).toEqual([
      [0, second.leaderEpoch, logEnd],
      [0, first.leaderEpoch, logEnd],
    ])

    // A follower checks the leader epoch before leadership, as Kafka's Partition.getLocalLog: an older epoch is
    // FENCED_LEADER_EPOCH, a newer one UNKNOWN_LEADER_EPOCH, and only its own NOT_LEADER_OR_FOLLOWER (Fetch, ListOffsets).
    const follower = cluster().nodeIds.find((id) => id !== first.leaderId && id !== second.leaderId)!
    const atFollower = (currentLeaderEpoch: number) =>
      withClient(cluster().nodes.get(follower)!, async (client) => {
        const fetched = await fetchPartition(client, { topic, partition: 0, offset: 0n, currentLeaderEpoch })
        const listed = await client.request<Partial<ListOffsetsRequest>, ListOffsetsResponse>(listOffsets, 7, {
          replicaId: -1,
          isolationLevel: 0,
          topics: [{ name: topic, partitions: [{ partitionIndex: 0, currentLeaderEpoch, timestamp: -1n, maxNumOffsets: 1 }] }],
        })
        return [fetched.errorCode, listed.topics[0]!.partitions[0]!.errorCode]
      })
    const epoch = second.leaderEpoch!
    await waitFor(`node ${follower} following in epoch ${epoch}`, async () => (await atFollower(epoch)).every((code) => code === ErrorCode.NOT_LEADER_OR_FOLLOWER))
    expect(await atFollower(epoch - 1)).toEqual([ErrorCode.FENCED_LEADER_EPOCH, ErrorCode.FENCED_LEADER_EPOCH])
    expect(await atFollower(epoch + 1)).toEqual([ErrorCode.UNKNOWN_LEADER_EPOCH, ErrorCode.UNKNOWN_LEADER_EPOCH])

    // The killed node comes back; then the leader (which has led its epoch without appending) is paused past its
    // session and replaced. Once resumed it follows with that epoch in its cache, which the next leader's log does
    // not hold: it drops it (its log loses nothing) and rejoins the ISR.
    await cluster().restart(first.leaderId)
    const current = await waitFor('every replica back in the ISR', async () => {
      const found = await partitionAt(second.leaderId)
      return found?.isrNodes.length === 3 && found.leaderId >= 0 && found
    }, { timeoutMs: 60_000 })
    const paused = cluster().nodes.get(current.leaderId)!
    const observer = cluster().nodeIds.find((id) => id !== current.leaderId)!
    let third: MetadataResponsePartition
    /** DeleteRecords to offset 7 at the leader `third`: answered once every live replica's log start is there. */
    const deleteBefore7 = (timeoutMs: number) =>
      withClient(cluster().nodes.get(third.leaderId)!, async (client) =>
        (await client.request<DeleteRecordsRequest, DeleteRecordsResponse>(deleteRecords, 2, { topics: [{ name: topic, partitions: [{ partitionIndex: 0, offset: 7n }] }], timeoutMs })).topics[0]!.partitions[0]!)
    paused.child.kill('SIGSTOP')
    try {
      third = await nextLeader(current, observer)
      // While the paused node is away (fenced, so not waited for), DeleteRecords moves the log start to 7.
      expect(await waitFor('DeleteRecords answered by the new leader', async () => {
        const answer = await deleteBefore7(10_000)
        return answer.errorCode === 0 && answer
      })).toMatchObject({ lowWatermark: 7n })
    } finally {
      paused.child.kill('SIGCONT')
    }
    const [own, older] = await answered(third, [third.leaderEpoch!, current.leaderEpoch!])
    expect(own).toEqual([0, third.leaderEpoch, logEnd])
    // The paused leader's epoch is not in this log: the answer is the latest epoch before it, which ends here too.
    expect([older![0], older![2]]).toEqual([0, logEnd])
    expect(older![1]).toBeLessThan(current.leaderEpoch!)
    await waitFor(`node ${current.leaderId} back in the ISR`, async () => (await partitionAt(observer))?.isrNodes.length === 3, { timeoutMs: 60_000 })
    // Back in the ISR, the resumed node must have taken the log start too, though its first fetch after the deletion
    // was sent to truncate (its epoch) and it had nothing to append: the leader answers DeleteRecords to 7 again only
    // once every live replica's log start is there, so records deleted never come back when this node leads.
    expect(await deleteBefore7(15_000)).toMatchObject({ errorCode: 0, lowWatermark: 7n })
    const values = (await readAll(kafka(`reader-${Date.now()}`, [...cluster().nodeIds]), topic, 0, 13)).map((record) => record.value)
    expect(values).toEqual(Array.from({ length: 13 }, (_, i) => `e-${i + 7}`))
  }, 180_000)

  // DeleteRecords' offset need not be a batch's first: from 155, in the middle of the batch 150-159, the leader's first
  // batch for the follower starts below the log start it starts afresh at, and the follower starts its log at the
  // batch's base offset to take it (Kafka's Partition.appendRecordsToFollowerOrFutureReplica). Skipping that batch, it
  // asked for it again at every fetch and never rejoined the ISR.
  it.each([
    { logStart: 150, topic: 'trimmed' },
    { logStart: 155, topic: 'trimmed-mid-batch' },
  ])('starts a returning follower\'s log afresh at the leader\'s log start ($logStart) when DeleteRecords moved it past the follower\'s log end, and takes it back into the ISR', async ({ logStart, topic }) => {
    await waitFor('three unfenced brokers', async () => (await cluster().status(1)).liveBrokers.length === 3, { timeoutMs: 60_000 })
    const admin = kafka('trimmed-admin', [...cluster().nodeIds]).admin()
    await admin.connect()
    try {
      await admin.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor: 3 }], waitForLeaders: true })
      const partitionAt = async (id: number) => (await partitionsAt(id, topic))[0]
      const whole = await waitFor('every replica in the ISR', async () => {
        const found = await partitionAt(1)
        return found?.isrNodes.length === 3 && found
      }, { timeoutMs: 60_000 })
      const follower = cluster().nodeIds.find((id) => id !== whole.leaderId)!
      const observer = cluster().nodeIds.find((id) => id !== follower)!
      const producer = kafka('trimmed-producer', [...cluster().nodeIds]).producer()
      await producer.connect()
      const produce = async (from: number, to: number): Promise<void> => {
        for (let next = from; next < to; next += 10) {
          await producer.send({ topic, acks: -1, messages: Array.from({ length: 10 }, (_, i) => ({ value: `t-${next + i}`, partition: 0 })) })
        }
      }
      try {
        await produce(0, 100)
        await cluster().nodes.get(follower)!.stop()
        await waitFor(`node ${follower} out of the ISR`, async () => {
          const found = await partitionAt(observer)
          return found !== undefined && !found.isrNodes.includes(follower)
        })
        await produce(100, 200)
        // kafkajs sends DeleteRecords to the leader its metadata names, which it loads only on request.
        await admin.fetchTopicMetadata({ topics: [topic] })
        await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: String(logStart) }] })
        const [offsets] = await admin.fetchTopicOffsets(topic)
        expect([offsets!.low, offsets!.high]).toEqual([String(logStart), '200'])

        const returned = await cluster().restart(follower)
        await waitFor(`node ${follower} back in the ISR`, async () => (await partitionAt(observer))?.isrNodes.includes(follower), { timeoutMs: 60_000 })
        expect(returned.output()).toContain(`${topic}-0: the log ends at 100, below the leader's log start ${logStart}: starting it afresh there`)
        // The returned follower is in the ISR: acks=all now waits for it too.
        await produce(200, 210)
        // And it holds what the leader holds: kafka-log-dirs' sizes agree. (Skipping the batch its log start is inside
        // of, it appended the next one past a gap of five records, and the ISR took it back all the same.)
        const everyNode = ['--bootstrap-server', cluster().nodeIds.map((id) => cluster().nodes.get(id)!.address).join(',')]
        const sizes = async (): Promise<number[]> => {
          const { stdout } = await brook(['topics', 'log-dirs', topic, '--json', ...everyNode])
          const { brokers } = JSON.parse(stdout) as { brokers: { logDirs: { partitions: { size: number }[] }[] }[] }
          return brokers.flatMap((broker) => broker.logDirs.flatMap((dir) => dir.partitions.map((partition) => partition.size)))
        }
        const held = await waitFor('every replica holding the same bytes', async () => {
          const found = await sizes()
          return found.length === 3 && new Set(found).size === 1 && found
        }, { timeoutMs: 15_000 })
        expect(held[0]).toBeGreaterThan(0)
        // Batches of ten records: a log start inside one makes the follower start its log at that batch's first offset.
        if (logStart % 10 !== 0) expect(returned.output()).toContain(`${topic}-0: the leader's first batch starts at ${logStart - (logStart % 10)}, below the log start ${logStart}: starting the log there`)
      } finally {
        await producer.disconnect()
      }
    } finally {
      await admin.disconnect()
    }
    const values = (await readAll(kafka(`reader-${Date.now()}`, [...cluster().nodeIds]), topic, 0, 210 - logStart)).map((record) => record.value)
    expect(values).toEqual(Array.from({ length: 210 - logStart }, (_, i) => `t-${logStart + i}`))
  }, 180_000)

  it('answers DeleteRecords once the followers\' log starts have moved with the leader\'s: records deleted there do not come back when a follower leads after kill -9 of the leader', async () => {
    const topic = 'trimmed-live'
    await waitFor('three unfenced brokers', async () => (await cluster().status(1)).liveBrokers.length === 3, { timeoutMs: 60_000 })
    const admin = kafka('trimmed-live-admin', [...cluster().nodeIds]).admin()
    await admin.connect()
    let leader = 0
    try {
      await admin.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor: 3 }], waitForLeaders: true })
      const whole = await waitFor('every replica in the ISR', async () => {
        const found = (await partitionsAt(1, topic))[0]
        return found?.isrNodes.length === 3 && found
      }, { timeoutMs: 60_000 })
      leader = whole.leaderId
      const observer = cluster().nodeIds.find((id) => id !== leader)!
      const producer = kafka('trimmed-live-producer', [...cluster().nodeIds]).producer()
      await producer.connect()
      try {
        for (let next = 0; next < 100; next += 10) {
          await producer.send({ topic, acks: -1, messages: Array.from({ length: 10 }, (_, i) => ({ value: `l-${next + i}`, partition: 0 })) })
        }
        // A follower refuses it: only the leader moves the log start, and the followers follow.
        const refused = await withClient(cluster().nodes.get(observer)!, (client) =>
          client.request<DeleteRecordsRequest, DeleteRecordsResponse>(deleteRecords, 2, { topics: [{ name: topic, partitions: [{ partitionIndex: 0, offset: 60n }] }], timeoutMs: 5000 }),
        )
        expect(refused.topics[0]!.partitions[0]).toMatchObject({ errorCode: ErrorCode.NOT_LEADER_OR_FOLLOWER, lowWatermark: -1n })
        await admin.fetchTopicMetadata({ topics: [topic] })
        await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '60' }] })
      } finally {
        await producer.disconnect()
      }
      // Answered once every live replica's log start has reached 60 (DelayedDeleteRecords): the leader may die at once.
      await cluster().nodes.get(leader)!.kill()
      await waitFor(`a leader other than node ${leader}`, async () => {
        const found = (await partitionsAt(observer, topic))[0]
        return found !== undefined && found.leaderId >= 0 && found.leaderId !== leader
      }, { timeoutMs: 60_000 })
      await admin.fetchTopicMetadata({ topics: [topic] })
      // A leader elected a moment ago answers ListOffsets with LEADER_NOT_AVAILABLE until its high watermark is known
      // (KIP-207), which kafkajs's admin does not retry: ask again until it answers (waitFor takes a throw as not yet).
      const offsets = await waitFor('the new leader to answer ListOffsets', async () => (await admin.fetchTopicOffsets(topic))[0], { timeoutMs: 30_000 })
      expect([offsets.low, offsets.high]).toEqual(['60', '100'])
    } finally {
      await admin.disconnect()
      if (leader) await cluster().restart(leader)
    }
    // Leadership stays where it moved (--no-auto-leader-rebalance): the reader reads the follower that took over.
    const values = (await readAll(kafka(`trimmed-live-reader-${Date.now()}`, [...cluster().nodeIds]), topic, 0, 40)).map((record) => record.value)
    expect(values).toEqual(Array.from({ length: 40 }, (_, i) => `l-${60 + i}`))
  }, 180_000)

  it('copies the offset gaps of a compacted leader to a returning follower, which catches up and rejoins the ISR', async () => {
    const topic = 'compacted-gaps'
    await waitFor('three unfenced brokers', async () => (await cluster().status(1)).liveBrokers.length === 3, { timeoutMs: 60_000 })
    const admin = kafka('gaps-admin', [...cluster().nodeIds]).admin()
    await admin.connect()
    const producer = kafka('gaps-producer', [...cluster().nodeIds]).producer()
    await producer.connect()
    const send = (key: string, value: string) => producer.send({ topic, acks: -1, messages: [{ key, value, partition: 0 }] })
    try {
      const configEntries = [
        { name: 'cleanup.policy', value: 'compact' },
        { name: 'min.cleanable.dirty.ratio', value: '0.01' },
      ]
      await admin.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor: 3, configEntries }], waitForLeaders: true })
      const partitionAt = async (id: number) => (await partitionsAt(id, topic))[0]
      const whole = await waitFor('every replica in the ISR', async () => {
        const found = await partitionAt(1)
        return found?.isrNodes.length === 3 && found
      }, { timeoutMs: 60_000 })
      const leader = whole.leaderId
      const follower = cluster().nodeIds.find((id) => id !== leader)!
      const observer = cluster().nodeIds.find((id) => id !== follower && id !== leader)!
      // Offsets 0-9, ten keys: every replica has them.
      for (let i = 0; i < 10; i++) await send(`k-${i}`, `v-${i}`)
      await waitFor(`node ${follower} has offsets 0-9`, async () => (await partitionAt(observer))?.isrNodes.length === 3)
      await cluster().nodes.get(follower)!.stop()
      await waitFor(`node ${follower} out of the ISR`, async () => {
        const found = await partitionAt(observer)
        return found !== undefined && !found.isrNodes.includes(follower)
      })
      // Offsets 10-49 all of one key, then 50: compaction leaves 49 of the forty, and the batches of 10-48 go whole.
      for (let i = 10; i < 50; i++) await send('same', `v-${i}`)
      await send('last', 'v-50')
      const offsetsAtLeader = async (): Promise<string[]> =>
        withClient(cluster().nodes.get(leader)!, async (client) => recordsOf((await readPartition(client, topic, 0)).batches).map((r) => `${r.offset}:${r.value}`))
      const expected = [...Array.from({ length: 10 }, (_, i) => `${i}:v-${i}`), '49:v-49', '50:v-50']
      await waitFor('the leader compacted the partition', async () => JSON.stringify(await offsetsAtLeader()) === JSON.stringify(expected), { timeoutMs: 30_000 })

      // The returning follower fetches from 10; the leader's first batch from there starts at 49.
      const returned = await cluster().restart(follower)
      await waitFor(`node ${follower} back in the ISR`, async () => (await partitionAt(observer))?.isrNodes.includes(follower), { timeoutMs: 60_000 })
      expect(returned.output()).not.toContain("applying the leader's batches failed")
      await send('after', 'v-51')

      // The leader goes; whichever replica takes over serves the same offsets and values.
      await cluster().nodes.get(leader)!.stop()
      const next = await waitFor('a new leader', async () => {
        const found = await partitionAt(observer)
        return found !== undefined && found.leaderId !== leader && found.leaderId >= 0 && found
      }, { timeoutMs: 60_000 })
      const servedBy = async (id: number): Promise<string[]> =>
        withClient(cluster().nodes.get(id)!, async (client) => recordsOf((await readPartition(client, topic, 0)).batches).map((r) => `${r.offset}:${r.value}`))
      // A new leader's high watermark reaches its log end only once its followers have fetched from it (KIP-207):
      // offset 51 shows after that round.
      await waitFor('the new leader to serve offset 51', async () => (await servedBy(next.leaderId)).length > expected.length, { timeoutMs: 30_000 }).catch(() => undefined)
      const served = await servedBy(next.leaderId)
      console.log(`compacted-gaps: node ${next.leaderId} took over (${next.leaderId === follower ? 'the returned follower' : 'the observer'}) and serves ${served.length} records`)
      expect(served).toEqual([...expected, '51:v-51'])
      await cluster().restart(leader)
    } finally {
      await producer.disconnect()
      await admin.disconnect()
    }
  }, 240_000)

  it('keeps leadership where a kill -9 moved it after the node is back in the ISR, until brook topics elect-leaders gives every partition back to its preferred replica', async () => {
    const topic = 'elections'
    /** Node `id`'s Metadata of every topic: each partition, named `topic-partition`. */
    const everyPartition = async (id: number): Promise<{ name: string; partition: MetadataResponsePartition }[]> => {
      const answer = await withClient(cluster().nodes.get(id)!, (client) =>
        client.request<MetadataRequest, MetadataResponse>(metadata, 12, { topics: null, allowAutoTopicCreation: false, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false }),
      )
      return answer.topics.flatMap((t) => t.partitions.map((partition) => ({ name: `${t.name}-${partition.partitionIndex}`, partition })))
    }
    const settled = async (id: number): Promise<boolean> => (await everyPartition(id)).every(({ partition }) => partition.isrNodes.length === partition.replicaNodes.length)
    await waitFor('three unfenced brokers', async () => (await cluster().status(1)).liveBrokers.length === 3, { timeoutMs: 60_000 })
    const admin = kafka('elections-admin', [...cluster().nodeIds]).admin()
    await admin.connect()
    try {
      await admin.createTopics({ topics: [{ topic, numPartitions: 3, replicationFactor: 3 }], waitForLeaders: true })
    } finally {
      await admin.disconnect()
    }
    const initial = await waitFor('every partition of the topic led by its preferred replica with its whole ISR', async () => {
      const found = await partitionsAt(1, topic)
      return found.length === 3 && found.every((p) => p.leaderId === p.replicaNodes[0] && p.isrNodes.length === 3) && found
    }, { timeoutMs: 60_000 })
    const moved = initial.find((p) => p.partitionIndex === 0)!
    const victim = moved.leaderId
    const observer = cluster().nodeIds.find((id) => id !== victim)!

    await cluster().nodes.get(victim)!.kill()
    const takenOver = await waitFor(`partition 0 led by a node other than ${victim}`, async () => {
      const found = (await partitionsAt(observer, topic)).find((p) => p.partitionIndex === 0)
      return found && found.leaderId >= 0 && found.leaderId !== victim && found
    }, { timeoutMs: 60_000 })
    await cluster().restart(victim)
    // Back in every ISR (the topics of the tests before too), so that every preferred replica can be elected.
    await waitFor(`node ${victim} back in the ISR of every partition`, () => settled(observer), { timeoutMs: 60_000 })
    const stillMoved = (await partitionsAt(observer, topic)).find((p) => p.partitionIndex === 0)!
    expect(stillMoved.leaderId).toBe(takenOver.leaderId)

    // What needed no election is left out of the answer to "every partition"; the partitions the kill moved (partition 0
    // of the topic, and those of other topics the tests before moved) are elected, and nothing fails.
    const everyNode = ['--bootstrap-server', cluster().nodeIds.map((id) => cluster().nodes.get(id)!.address).join(',')]
    const elected = await brook(['topics', 'elect-leaders', '--type', 'preferred', ...everyNode])
    expect(elected).toMatchObject({ code: 0, stderr: '' })
    const line = /^Successfully completed leader election \(PREFERRED\) for partitions (.+)\n$/.exec(elected.stdout)
    expect(line, elected.stdout).not.toBeNull()
    const named = line![1]!.split(', ')
    expect(named).toContain(`${topic}-0`)
    expect(named).not.toContain(`${topic}-1`)
    expect(named).not.toContain(`${topic}-2`)

    for (const id of cluster().nodeIds) {
      await waitFor(`node ${id} shows every partition led by its preferred replica`, async () => (await everyPartition(id)).every(({ partition }) => partition.leaderId === partition.replicaNodes[0]))
      const back = (await partitionsAt(id, topic)).find((p) => p.partitionIndex === 0)!
      expect(back.leaderId).toBe(victim)
      expect(back.leaderEpoch ?? -1).toBeGreaterThan(takenOver.leaderEpoch ?? -1)
    }
    // Asked again for the topic, every partition's preferred replica leads it already.
    expect(await brook(['topics', 'elect-leaders', topic, ...everyNode])).toEqual({
      code: 0,
      stdout: `Valid replica already elected for partitions ${topic}-0, ${topic}-1, ${topic}-2\n`,
      stderr: '',
    })
  }, 180_000)
})
