/**
 * ListOffsets across a partition leader change on a three-node cluster of real processes (KIP-207: "Offsets returned
 * by ListOffsetsResponse should be monotonically increasing even during a partition leader change"). Records go to an
 * RF=3 topic with acks=all (a plain one, a compacted one, one written in transactions), then the partition's leader is
 * killed with kill -9, and from that moment every survivor is asked, over and over, for the partition's earliest and
 * latest offsets (raw ListOffsets v1, and v7 read_uncommitted and read_committed), and a kafkajs admin asks
 * `fetchTopicOffsets` (ListOffsets read_committed at the leader it knows) beside them. An answer may be an error
 * (NOT_LEADER_OR_FOLLOWER from a follower, OFFSET_NOT_AVAILABLE from a leader whose high watermark has not caught up,
 * a connection refused by the dead node), but no answer may put the end of the partition below what was acknowledged
 * and answered before the kill: a stream processor reading that answer would take its changelog for empty.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import type { Kafka } from 'kafkajs'
import { QUICK_CLUSTER_ARGS, allUnfenced, useCluster } from '../../helpers/cluster.js'
import { waitFor } from '../../helpers/wait.js'
import { connect, listOffset, partitionsOf, withClient } from '../../helpers/kafka.js'
import type { KafkaClient } from '../../../client/kafka-client.js'
import { ErrorCode, errorInfo } from '../../../protocol/errors.js'
import { OffsetSpec } from '../../../protocol/constants.js'

/** How long the survivors are still asked once a new leader answers, and every node once the restarted one leads again. */
const SETTLED_MS = 2000

interface Answer {
  readonly via: string
  readonly spec: 'earliest' | 'latest'
  readonly errorCode: number
  readonly offset: bigint
}

describe('ListOffsets while a partition leader is replaced (KIP-207)', () => {
  const cluster = useCluster({ nodes: 3, extraArgs: QUICK_CLUSTER_ARGS })

  const kafka = (clientId: string, bootstrap: readonly number[] = cluster().nodeIds): Kafka => cluster().kafka(clientId, bootstrap, { retries: 5 })

  async function createTopic(topic: string, configs: Record<string, string> = {}): Promise<void> {
    const admin = kafka(`create-${topic}`).admin()
    await admin.connect()
    try {
      await admin.createTopics({
        topics: [{ topic, numPartitions: 1, replicationFactor: 3, configEntries: Object.entries(configs).map(([name, value]) => ({ name, value })) }],
        waitForLeaders: true,
      })
    } finally {
      await admin.disconnect()
    }
    await waitFor(`${topic} with three replicas in its ISR`, async () => (await partitionsOf(cluster().nodes.get(1)!, topic))[0]?.isrNodes.length === 3)
  }

  /** The leader's latest offset (read_committed when `readCommitted`), once the leader answers it. */
  async function latestAt(leader: number, topic: string, options: { readCommitted: boolean }): Promise<bigint> {
    return withClient(cluster().nodes.get(leader)!, async (client) => {
      const answer = await listOffset(client, topic, 0, OffsetSpec.LATEST, 7, options)
      if (answer.errorCode !== ErrorCode.NONE) throw new Error(`the leader answered ${errorInfo(answer.errorCode).name}`)
      return answer.offset
    })
  }

  /**
   * Kills `topic`'s leader and asks every survivor, and a kafkajs admin, for the partition's offsets until a survivor
   * has answered the latest offset (the dead node fenced, a survivor elected) and SETTLED_MS more; then starts the
   * killed node again and asks every node until the restarted one leads the partition again (the controller moves
   * leadership back to a returning preferred replica) and SETTLED_MS more. Returns every answer.
   */
  async function killLeaderAndAsk(topic: string): Promise<Answer[]> {
    const victim = (await partitionsOf(cluster().nodes.get(1)!, topic))[0]!.leaderId
    const survivors = cluster().nodeIds.filter((id) => id !== victim)
    const clients = new Map<number, KafkaClient>()
    for (const id of survivors) clients.set(id, await connect(cluster().nodes.get(id)!, { timeoutMs: 5000 }))
    const admin = kafka(`offsets-${topic}`, survivors).admin()
    await admin.connect()
    await admin.fetchTopicOffsets(topic)
    const answers: Answer[] = []
    let probing = true
    const answeredLatest = (): boolean => answers.some((a) => a.spec === 'latest' && a.errorCode === ErrorCode.NONE && a.via.startsWith('node'))
    const raw = (async () => {
      while (probing || !answeredLatest()) {
        for (const [id, client] of clients) {
          for (const { version, readCommitted } of [{ version: 1, readCommitted: false }, { version: 7, readCommitted: false }, { version: 7, readCommitted: true }]) {
            const via = `node ${id} v${version}${readCommitted ? ' read_committed' : ''}`
            for (const spec of ['latest', 'earliest'] as const) {
              try {
                const answer = await listOffset(client, topic, 0, spec === 'latest' ? OffsetSpec.LATEST : OffsetSpec.EARLIEST, version, { readCommitted })
                answers.push({ via, spec, errorCode: answer.errorCode, offset: answer.offset })
              } catch {
                // A node starting again may not answer yet.
              }
            }
          }
        }
        await sleep(20)
      }
    })()
    const viaKafkajs = (async () => {
      while (probing) {
        try {
          for (const { low, high } of await admin.fetchTopicOffsets(topic)) {
            answers.push({ via: 'kafkajs', spec: 'latest', errorCode: ErrorCode.NONE, offset: BigInt(high) })
            answers.push({ via: 'kafkajs', spec: 'earliest', errorCode: ErrorCode.NONE, offset: BigInt(low) })
          }
        } catch {
          await sleep(50)
        }
      }
    })()
    try {
      await cluster().nodes.get(victim)!.kill()
      // Through the fencing of the dead node (3 s) to a survivor answering as the new leader, and a while after.
      await waitFor('a survivor answering the latest offset as the new leader', answeredLatest, { timeoutMs: 60_000 })
      await sleep(SETTLED_MS)
      // Asked from the moment it listens: it serves as a leader only once it caught up with the metadata log.
      clients.set(victim, await connect(await cluster().restart(victim), { timeoutMs: 5000 }))
      await allUnfenced(cluster())
      await waitFor(`node ${victim} leading ${topic} again`, async () => (await partitionsOf(cluster().nodes.get(survivors[0]!)!, topic))[0]?.leaderId === victim, { timeoutMs: 60_000 })
      await waitFor(`node ${victim} answering as ${topic}'s leader`, () => answers.some((a) => a.via.startsWith(`node ${victim} `) && a.errorCode === ErrorCode.NONE))
      await sleep(SETTLED_MS)
    } finally {
      probing = false
      await Promise.all([raw, viaKafkajs])
      await admin.disconnect()
      for (const client of clients.values()) client.close()
    }
    return answers
  }

  /** The answers that put the partition's end below `acknowledged`, or its start above 0 (nothing was deleted). */
  function wrongAnswers(answers: readonly Answer[], acknowledged: bigint): string[] {
    return answers
      .filter((a) => a.errorCode === ErrorCode.NONE && (a.spec === 'latest' ? a.offset < acknowledged : a.offset !== 0n))
      .map((a) => `${a.via} ${a.spec}: ${a.offset}`)
  }

  /**
   * Latest offsets that went back: per asker (a node, version and isolation level, or kafkajs, which follows the
   * leader), each answer after the first is at or above the one before (KIP-207's monotonic offsets).
   */
  function regressions(answers: readonly Answer[]): string[] {
    const last = new Map<string, bigint>()
    const found: string[] = []
    for (const a of answers) {
      if (a.spec !== 'latest' || a.errorCode !== ErrorCode.NONE) continue
      const before = last.get(a.via)
      if (before !== undefined && a.offset < before) found.push(`${a.via}: ${before} then ${a.offset}`)
      last.set(a.via, a.offset)
    }
    return found
  }

  /** Each answer kind with how often it came: errors by name, offsets as their range. */
  function summary(answers: readonly Answer[]): string {
    const kinds = new Map<string, { n: number; min: bigint; max: bigint }>()
    for (const a of answers) {
      const key = `${a.spec} ${a.errorCode === ErrorCode.NONE ? 'offset' : errorInfo(a.errorCode).name}`
      const kind = kinds.get(key) ?? { n: 0, min: a.offset, max: a.offset }
      kind.n++
      if (a.offset < kind.min) kind.min = a.offset
      if (a.offset > kind.max) kind.max = a.offset
      kinds.set(key, kind)
    }
    return [...kinds].map(([key, { n, min, max }]) => (key.endsWith('offset') ? `${key} ${min}..${max} x${n}` : `${key} x${n}`)).join(', ')
  }

  for (const { kind, configs } of [
    { kind: 'plain', configs: {} },
    { kind: 'compacted', configs: { 'cleanup.policy': 'compact' } },
  ]) {
    it(`never answers a ${kind} partition's end below its acknowledged records after kill -9 of its leader`, async () => {
      const topic = `offsets-failover-${kind}`
      await createTopic(topic, configs)
      const producer = kafka(`producer-${topic}`).producer({ idempotent: true, maxInFlightRequests: 1 })
      await producer.connect()
      try {
        for (let i = 0; i < 8; i++) {
          await producer.send({ topic, acks: -1, messages: Array.from({ length: 10 }, (_, j) => ({ partition: 0, key: `key-${i * 10 + j}`, value: `value-${i * 10 + j}` })) })
        }
      } finally {
        await producer.disconnect()
      }
      const leader = (await partitionsOf(cluster().nodes.get(1)!, topic))[0]!.leaderId
      const acknowledged = await latestAt(leader, topic, { readCommitted: false })
      expect(acknowledged).toBe(80n)
      const answers = await killLeaderAndAsk(topic)
      console.log(`${topic}: ${summary(answers)}`)
      expect(wrongAnswers(answers, acknowledged)).toEqual([])
      expect(regressions(answers)).toEqual([])
    }, 90_000)
  }

  it('never answers a transactional partition\'s last stable offset below its committed records after kill -9 of its leader', async () => {
    const topic = 'offsets-failover-transactional'
    await createTopic(topic, { 'cleanup.policy': 'compact' })
    const producer = kafka(`producer-${topic}`).producer({ transactionalId: `${topic}-txn`, idempotent: true, maxInFlightRequests: 1 })
    await producer.connect()
    try {
      for (let i = 0; i < 8; i++) {
        const transaction = await producer.transaction()
        await transaction.send({ topic, acks: -1, messages: Array.from({ length: 10 }, (_, j) => ({ partition: 0, key: `key-${i * 10 + j}`, value: `value-${i * 10 + j}` })) })
        await transaction.commit()
      }
    } finally {
      await producer.disconnect()
    }
    const leader = (await partitionsOf(cluster().nodes.get(1)!, topic))[0]!.leaderId
    // Eight transactions of ten records, each with its COMMIT marker, all decided.
    const acknowledged = await waitFor('every marker below the last stable offset', async () => {
      const stable = await latestAt(leader, topic, { readCommitted: true })
      return stable === 88n && stable
    })
    const answers = await killLeaderAndAsk(topic)
    console.log(`${topic}: ${summary(answers)}`)
    expect(wrongAnswers(answers, acknowledged)).toEqual([])
    expect(regressions(answers)).toEqual([])
  }, 90_000)

  it('never answers a transactional partition\'s last stable offset below its committed records while transactions go on through kill -9 of its leader', async () => {
    const topic = 'offsets-failover-ongoing'
    await createTopic(topic, { 'cleanup.policy': 'compact' })
    let writing = true
    let committed = 0
    const writer = (async () => {
      let n = 0
      while (writing) {
        const producer = kafka(`writer-${topic}-${n}`).producer({ transactionalId: `${topic}-txn`, idempotent: true, maxInFlightRequests: 1 })
        try {
          await producer.connect()
          while (writing) {
            const transaction = await producer.transaction()
            await transaction.send({ topic, acks: -1, messages: Array.from({ length: 5 }, () => ({ partition: 0, key: `key-${n % 20}`, value: `value-${n++}` })) })
            await transaction.commit()
            committed++
          }
        } catch {
          await sleep(100)
        } finally {
          await producer.disconnect().catch(() => {})
        }
      }
    })()
    try {
      await waitFor('ten transactions committed', () => committed >= 10)
      const leader = (await partitionsOf(cluster().nodes.get(1)!, topic))[0]!.leaderId
      const acknowledged = await latestAt(leader, topic, { readCommitted: true })
      expect(acknowledged).toBeGreaterThan(0n)
      const answers = await killLeaderAndAsk(topic)
      console.log(`${topic}: ${committed} transactions, ${summary(answers)}`)
      expect(wrongAnswers(answers, acknowledged)).toEqual([])
      expect(regressions(answers)).toEqual([])
    } finally {
      writing = false
      await writer
    }
  }, 120_000)
})
