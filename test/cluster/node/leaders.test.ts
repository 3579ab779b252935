/**
 * Preferred leaders on three-node clusters of real processes:
 *
 * - with `auto.leader.rebalance.enable` (the default): an RF=3 topic's leaders start on their preferred (first)
 *   replicas, spread over the three nodes; kill -9 of one node moves its partitions to the others while an idempotent
 *   kafkajs producer writes to every partition with acks=all; the node restarted on its data directory is taken back
 *   into the ISR, and then leads its partitions again at a higher leader epoch, on every node's Metadata, without
 *   waiting for `leader.imbalance.check.interval.seconds`; the history checker (history.ts) finds every acknowledged
 *   record, none twice, offsets in order;
 * - with `--no-auto-leader-rebalance`: a returning node stays a follower until ElectLeaders (43, on the raw wire, to
 *   send what no client sends: v0, an unknown election type) asks, sent to a node that is not the active controller so it is forwarded: PREFERRED_LEADER_NOT_AVAILABLE
 *   while the preferred replica is down, then NONE (elected, a higher leader epoch) for the one partition that needed it
 *   when every partition is asked for, ELECTION_NOT_NEEDED, UNKNOWN_TOPIC_OR_PARTITION, v0 (no election type) as
 *   PREFERRED, an unknown election type INVALID_REQUEST;
 * - a preferred replica killed while DeleteRecords moved the log start inside its log (its log end already the
 *   leader's) does not serve the deleted records when it leads again: it rejoins the ISR only once its fetch reports
 *   the leader's log start.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import type { Kafka } from 'kafkajs'
import { QUICK_CLUSTER_ARGS, clusterPerTest } from '../../helpers/cluster.js'
import { waitFor } from '../../helpers/wait.js'
import { partitionsOf } from '../../helpers/kafka.js'
import { electLeadersBody, electLeadersResponse, RawConnection, requestFrame, type ElectLeadersAnswer } from '../../helpers/wire.js'
import type { MetadataResponsePartition } from '../../../protocol/messages/metadata.js'
import { History, readAll } from './history.js'

const TOPIC = 'spread'
const PARTITIONS = 3

// Kafka's error codes, as the protocol guide lists them.
const NONE = 0
const UNKNOWN_TOPIC_OR_PARTITION = 3
const INVALID_REQUEST = 42
const PREFERRED_LEADER_NOT_AVAILABLE = 80
const ELECTION_NOT_NEEDED = 84

describe('preferred leaders on a three-node cluster', () => {
  const { start, running } = clusterPerTest()

  const partitionsAt = (id: number): Promise<MetadataResponsePartition[]> => partitionsOf(running().nodes.get(id)!, TOPIC)

  const kafka = (clientId: string, bootstrap: readonly number[]): Kafka => running().kafka(clientId, bootstrap, { requestTimeout: 5000 })

  /** Three nodes and TOPIC (RF=3), each partition led by its preferred replica, the leaders on all three nodes. */
  async function startWithTopic(extraArgs: string[] = []): Promise<MetadataResponsePartition[]> {
    await start({ nodes: 3, extraArgs: [...QUICK_CLUSTER_ARGS, ...extraArgs] })
    const admin = kafka('leaders-admin', [1]).admin()
    await admin.connect()
    try {
      await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: PARTITIONS, replicationFactor: 3 }], waitForLeaders: true })
    } finally {
      await admin.disconnect()
    }
    const partitions = await waitFor('every partition led by its preferred replica', async () => {
      const found = await partitionsAt(1)
      return found.length === PARTITIONS && found.every((p) => p.leaderId === p.replicaNodes[0] && p.isrNodes.length === 3) && found
    })
    expect(new Set(partitions.map((p) => p.leaderId))).toEqual(new Set([1, 2, 3]))
    return partitions
  }

  /** `victim`'s preferred partition, once node `observer` shows it led by another node. */
  async function movedOff(victim: number, partition: number, observer: number): Promise<MetadataResponsePartition> {
    return waitFor(`partition ${partition} led by a survivor`, async () => {
      const found = (await partitionsAt(observer)).find((p) => p.partitionIndex === partition)
      return found && found.leaderId !== victim && found.leaderId >= 0 && found
    })
  }

  it('gives leadership back to a restarted node once it is back in the ISR, at a higher leader epoch, losing no acknowledged record', async () => {
    const initial = await startWithTopic()
    const victim = 2
    const preferredOfVictim = initial.find((p) => p.replicaNodes[0] === victim)!.partitionIndex
    const survivors = running().nodeIds.filter((id) => id !== victim)

    const history = new History()
    const producer = kafka('leaders-producer', running().nodeIds).producer({ idempotent: true, maxInFlightRequests: 1 })
    await producer.connect()
    let stop = false
    let sent = 0
    const acknowledgedIn = Array.from({ length: PARTITIONS }, () => 0)
    let lastAckMs = Date.now()
    let longestGapMs = 0
    const produceLoop = (async () => {
      while (!stop) {
        for (let partition = 0; partition < PARTITIONS && !stop; partition++) {
          const values = Array.from({ length: 5 }, () => `p${partition}-${sent++}`)
          try {
            const [answer] = await producer.send({ topic: TOPIC, acks: -1, messages: values.map((value) => ({ value, partition })) })
            history.acknowledge(TOPIC, partition, BigInt(answer!.baseOffset!), values)
            acknowledgedIn[partition]! += values.length
            const now = Date.now()
            longestGapMs = Math.max(longestGapMs, now - lastAckMs)
            lastAckMs = now
          } catch {
            history.notAcknowledged(values.length)
            // A send that fails at once (a producer in a fatal state) must not loop without a pause: that would starve every
            // timer, the test's own timeout included.
            await sleep(100)
          }
        }
      }
    })()
    const acknowledgedBy = (count: number) => waitFor(`${count} records acknowledged`, () => history.acknowledgedCount >= count, { timeoutMs: 60_000 })

    try {
      await acknowledgedBy(150)
      await running().nodes.get(victim)!.kill()
      const moved = await movedOff(victim, preferredOfVictim, survivors[0]!)
      // The followers of its partitions say they cannot fetch from it, at WARN, as Kafka's fetchers do.
      for (const id of survivors) expect(running().nodes.get(id)!.output()).toMatch(new RegExp(` WARN \\[node ${id}\\] replica fetch from node ${victim} failed: .+; retrying every \\d+ ms\\n`))
      await acknowledgedBy(history.acknowledgedCount + 150)

      await running().restart(victim)
      // Every node, the returning one too, shows the partition led by its preferred replica again, in a later epoch.
      for (const id of running().nodeIds) {
        const back = await waitFor(
          `node ${id} shows node ${victim} leading partition ${preferredOfVictim} again`,
          async () => {
            const found = (await partitionsAt(id)).find((p) => p.partitionIndex === preferredOfVictim)
            return found && found.leaderId === victim && found
          },
          { timeoutMs: 60_000 },
        )
        expect(back.isrNodes).toContain(victim)
        expect(back.leaderEpoch ?? -1).toBeGreaterThan(moved.leaderEpoch ?? -1)
      }
      const final = await partitionsAt(survivors[0]!)
      expect(final.map((p) => p.leaderId)).toEqual(final.map((p) => p.replicaNodes[0]))
      await acknowledgedBy(history.acknowledgedCount + 150)
    } finally {
      stop = true
      await produceLoop
      await producer.disconnect()
    }

    for (let partition = 0; partition < PARTITIONS; partition++) {
      const records = await readAll(kafka(`reader-${partition}-${Date.now()}`, running().nodeIds), TOPIC, partition, acknowledgedIn[partition]!)
      history.consumed(TOPIC, partition, records, { rewinds: 'violation' })
    }
    const { problems, summary } = history.check()
    console.log(`kill -9, restart and return of a preferred leader: ${summary}; longest time without an acknowledgement ${longestGapMs} ms`)
    expect(problems).toEqual([])
  })

  // A preferred replica away while DeleteRecords moved the log start inside its log (its log end already at the
  // leader's) came back with its fetch offset at the leader's log end: taken into the ISR on that fetch, before it had
  // applied the answer carrying the leader's log start, it was elected at once and served the deleted records again.
  // The leaders hold a follower's fetch with nothing new for 5 s (--replica-fetch-wait-max-ms): the answer that
  // carries the log start then comes after the controller has made the returning node leader, whenever that fetch
  // took it into the ISR.
  it('does not serve records DeleteRecords removed while it was away when a returning preferred replica leads again', async () => {
    await start({ nodes: 3, extraArgs: ['--broker-session-timeout-ms', '6000', '--replica-lag-time-max-ms', '10000', '--replica-fetch-wait-max-ms', '5000'] })
    const topic = 'trimmed-while-away'
    const victim = 2
    const observer = 1
    // DeleteRecords is answered once every follower's log start has moved, which a follower learns from the answer to
    // a fetch the leader may hold those 5 s: kafkajs must wait longer than that for the answer.
    const admin = running().kafka('trimmed-admin', running().nodeIds, { requestTimeout: 30_000 }).admin()
    await admin.connect()
    try {
      // A partition node 2 follows from node 1 that comes before the topic: the returning node 2's fetcher to node 1
      // starts with it alone, and asks for the topic only with its next fetch, when node 2 is unfenced already, so
      // that fetch takes it into the ISR at once (before that, a fetch whose answer told it the log start came first).
      await admin.createTopics({ topics: [{ topic: 'a-before', replicaAssignment: [{ partition: 0, replicas: [observer, victim, 3] }] }], waitForLeaders: true })
      await admin.createTopics({ topics: [{ topic, replicaAssignment: [{ partition: 0, replicas: [victim, 1, 3] }], configEntries: [{ name: 'min.insync.replicas', value: '2' }] }], waitForLeaders: true })
      const partitionAt = async (id: number) => (await partitionsOf(running().nodes.get(id)!, topic))[0]
      await waitFor('node 2 leading with every replica in the ISR', async () => {
        const found = await partitionAt(observer)
        return found?.leaderId === victim && found.isrNodes.length === 3
      })
      const producer = kafka('trimmed-producer', running().nodeIds).producer({ idempotent: true, maxInFlightRequests: 1 })
      await producer.connect()
      try {
        for (let next = 0; next < 100; next += 10) {
          await producer.send({ topic, acks: -1, messages: Array.from({ length: 10 }, (_, i) => ({ value: `d-${next + i}`, partition: 0 })) })
        }
      } finally {
        await producer.disconnect()
      }
      // A consumer group's read: __consumer_offsets (50 partitions, some led by node 2's peers) is there too.
      expect(await readAll(kafka(`trimmed-first-reader-${Date.now()}`, running().nodeIds), topic, 0, 100)).toHaveLength(100)
      await admin.fetchTopicMetadata({ topics: [topic] })
      await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '30' }] })

      await running().nodes.get(victim)!.kill()
      await waitFor('a survivor leading', async () => {
        const found = await partitionAt(observer)
        return found !== undefined && found.leaderId >= 0 && found.leaderId !== victim && !found.isrNodes.includes(victim)
      }, { timeoutMs: 60_000 })
      // The survivors' log starts move to 60; node 2's stays at 30 on its disk.
      await waitFor('DeleteRecords at the new leader', async () => {
        await admin.fetchTopicMetadata({ topics: [topic] })
        await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '60' }] })
        return true
      }, { timeoutMs: 30_000 })

      await running().restart(victim)
      await waitFor('node 2 leading again', async () => (await partitionAt(observer))?.leaderId === victim, { timeoutMs: 60_000 })
      const offsets = await waitFor('the returned leader to answer ListOffsets', async () => {
        await admin.fetchTopicMetadata({ topics: [topic] })
        return (await admin.fetchTopicOffsets(topic))[0]
      }, { timeoutMs: 30_000 })
      expect([offsets.low, offsets.high]).toEqual(['60', '100'])
    } finally {
      await admin.disconnect()
    }
    const values = (await readAll(kafka(`trimmed-reader-${Date.now()}`, running().nodeIds), topic, 0, 40)).map((record) => record.value)
    expect(values).toEqual(Array.from({ length: 40 }, (_, i) => `d-${60 + i}`))
  })

  it('with --no-auto-leader-rebalance leaves a returning node a follower until ElectLeaders asks (forwarded to the controller)', async () => {
    const initial = await startWithTopic(['--no-auto-leader-rebalance'])
    const status = await running().status(1)
    // The victim is not the active controller, and ElectLeaders goes to the third node, which forwards it.
    const victim = running().nodeIds.find((id) => id !== status.leaderId)!
    const asked = running().nodeIds.find((id) => id !== status.leaderId && id !== victim)!
    const ofVictim = initial.find((p) => p.replicaNodes[0] === victim)!.partitionIndex
    const others = initial.filter((p) => p.partitionIndex !== ofVictim).map((p) => p.partitionIndex)

    let correlationId = 0
    async function electLeaders(version: 0 | 1, body: Parameters<typeof electLeadersBody>[0]): Promise<ElectLeadersAnswer> {
      const connection = await RawConnection.open(running().nodes.get(asked)!.port)
      try {
        connection.send(requestFrame({ apiKey: 43, apiVersion: version, correlationId: ++correlationId, clientId: 'leaders-test' }, electLeadersBody(body)))
        const answer = electLeadersResponse(await connection.nextFrame(), version)
        expect(answer.correlationId).toBe(correlationId)
        return answer
      } finally {
        connection.destroy()
      }
    }
    const codes = (answer: ElectLeadersAnswer) => answer.results.map(({ topic, partitionId, errorCode }) => [topic, partitionId, errorCode])

    await running().nodes.get(victim)!.kill()
    const moved = await movedOff(victim, ofVictim, asked)
    const down = await electLeaders(1, { version: 1, electionType: 0, topicPartitions: [{ topic: TOPIC, partitions: [ofVictim] }] })
    expect(down.errorCode).toBe(NONE)
    expect(codes(down)).toEqual([[TOPIC, ofVictim, PREFERRED_LEADER_NOT_AVAILABLE]])
    expect(down.results[0]!.errorMessage).toContain(`preferred replica ${victim}`)

    await running().restart(victim)
    await waitFor(`node ${victim} back in the ISR of partition ${ofVictim}`, async () => (await partitionsAt(asked)).find((p) => p.partitionIndex === ofVictim)?.isrNodes.includes(victim), {
      timeoutMs: 60_000,
    })
    // Nothing moved it back: asked for every partition, the controller elects it and answers for that partition only.
    const elected = await electLeaders(1, { version: 1, electionType: 0, topicPartitions: null })
    expect(elected.errorCode).toBe(NONE)
    expect(codes(elected)).toEqual([[TOPIC, ofVictim, NONE]])
    const back = await waitFor(`node ${asked} shows node ${victim} leading partition ${ofVictim}`, async () => {
      const found = (await partitionsAt(asked)).find((p) => p.partitionIndex === ofVictim)
      return found && found.leaderId === victim && found
    })
    expect(back.leaderEpoch ?? -1).toBeGreaterThan(moved.leaderEpoch ?? -1)

    const again = await electLeaders(1, { version: 1, electionType: 0, topicPartitions: [{ topic: TOPIC, partitions: [ofVictim, ...others, 99] }, { topic: 'nothing', partitions: [0] }] })
    expect(codes(again)).toEqual([
      [TOPIC, ofVictim, ELECTION_NOT_NEEDED],
      ...others.map((partition) => [TOPIC, partition, ELECTION_NOT_NEEDED]),
      [TOPIC, 99, UNKNOWN_TOPIC_OR_PARTITION],
      ['nothing', 0, UNKNOWN_TOPIC_OR_PARTITION],
    ])
    // v0 has no election type: it elects preferred replicas.
    const v0 = await electLeaders(0, { version: 0, topicPartitions: [{ topic: TOPIC, partitions: [ofVictim] }] })
    expect(v0.errorCode).toBeUndefined()
    expect(codes(v0)).toEqual([[TOPIC, ofVictim, ELECTION_NOT_NEEDED]])
    const unknownType = await electLeaders(1, { version: 1, electionType: 5, topicPartitions: [{ topic: TOPIC, partitions: [ofVictim] }] })
    expect(unknownType.errorCode).toBe(INVALID_REQUEST)
    expect(codes(unknownType)).toEqual([[TOPIC, ofVictim, INVALID_REQUEST]])
  })
})
