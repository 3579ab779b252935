/**
 * The Fetch handler in process, over real services on a real LevelDB database (test/helpers/in-process-node.ts):
 * which batches it returns, its errors, and its long poll, woken by a Produce through the Produce handler or ended
 * by a closed connection or a deleted topic; a follower's Fetch (a ReplicaManager driven with a metadata image built
 * by hand) over a partition whose LevelDB block is damaged, and followers' fetch sessions: none for a replica id that
 * is no broker; a partition of a topic not known yet kept; partitions served in turn under a small maxBytes. test/broker/fetch.test.ts shows the same through real
 * clients.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { fetchHandler } from '../../../broker/handlers/fetch.js'
import { produceHandler } from '../../../broker/handlers/produce.js'
import type { FetchRequest, FetchResponse, FetchResponsePartitionData } from '../../../protocol/messages/fetch.js'
import type { ProduceRequest } from '../../../protocol/messages/produce.js'
import { lastOffsetOf } from '../../../protocol/record-batch.js'
import { handBuiltBatch } from '../../helpers/wire.js'
import { openNode, type InProcessNode } from '../../helpers/in-process-node.js'
import { seededBelow } from '../../helpers/random.js'
import { damageLargestTable } from '../../helpers/corrupt-table.js'
import { producerBatch } from '../../storage/batches.js'
import { AppendOrigin } from '../../../storage/producer-state.js'
import { Logger } from '../../../broker/logger.js'
import { ReplicaManager } from '../../../broker/cluster/replica-manager.js'
import type { QuorumRunner } from '../../../broker/cluster/quorum-runner.js'
import { imageAt } from '../../helpers/metadata-image.js'

const Err = {
  NONE: 0,
  OFFSET_OUT_OF_RANGE: 1,
  UNKNOWN_TOPIC_OR_PARTITION: 3,
  NOT_LEADER_OR_FOLLOWER: 6,
  KAFKA_STORAGE_ERROR: 56,
  UNKNOWN_LEADER_EPOCH: 75,
  UNKNOWN_TOPIC_ID: 100,
} as const
const ZERO_UUID = '00000000-0000-0000-0000-000000000000'
/** Long enough that a wait that is not woken fails the test by its timeout, never by a clock here. */
const NEVER_MS = 600_000

interface Wanted {
  topic: string
  topicId?: string
  partition?: number
  offset: bigint
  currentLeaderEpoch?: number
  partitionMaxBytes?: number
}

/** A consumer's Fetch, or with `replicaId` a follower's (KIP-903's ReplicaState, v15+), outside any fetch session. */
function request(wanted: Wanted[], options: { maxWaitMs?: number; minBytes?: number; maxBytes?: number; replicaId?: number } = {}): FetchRequest {
  return {
    clusterId: null,
    replicaId: -1,
    replicaState: { replicaId: options.replicaId ?? -1, replicaEpoch: -1n },
    maxWaitMs: options.maxWaitMs ?? 0,
    minBytes: options.minBytes ?? 1,
    maxBytes: options.maxBytes ?? 50 * 1024 * 1024,
    isolationLevel: 0,
    sessionId: 0,
    sessionEpoch: -1,
    topics: wanted.map((w) => ({
      topic: w.topic,
      topicId: w.topicId ?? ZERO_UUID,
      partitions: [
        {
          partition: w.partition ?? 0,
          currentLeaderEpoch: w.currentLeaderEpoch ?? -1,
          fetchOffset: w.offset,
          lastFetchedEpoch: -1,
          logStartOffset: -1n,
          partitionMaxBytes: w.partitionMaxBytes ?? 1024 * 1024,
          replicaDirectoryId: ZERO_UUID,
        },
      ],
    })),
    forgottenTopicsData: [],
    rackId: '',
  }
}

/** The base offsets of the batches in a fetched partition's records. */
function baseOffsets(data: FetchResponsePartitionData): bigint[] {
  return (data.records as Buffer[]).map((batch) => batch.readBigInt64BE(0))
}

describe('Fetch, in process', () => {
  let node: InProcessNode
  beforeEach(async () => {
    node = await openNode()
    await node.createTopic('events')
  })
  afterEach(async () => {
    await node?.close()
  })

  async function produce(values: string[]): Promise<void> {
    const req: ProduceRequest = { transactionalId: null, acks: 1, timeoutMs: 30_000, topicData: [{ name: 'events', partitionData: [{ index: 0, records: handBuiltBatch(values) }] }] }
    await node.call(produceHandler, req, { apiVersion: 9 })
  }

  async function fetch(req: FetchRequest, options: { apiVersion?: number; signal?: AbortSignal; onParked?: () => void; unsent?: (() => void)[] } = {}): Promise<FetchResponsePartitionData[]> {
    const answer = (await node.call<FetchRequest, FetchResponse>(fetchHandler, req, { apiVersion: options.apiVersion ?? 12, ...options })) as FetchResponse
    expect(answer).toMatchObject({ errorCode: Err.NONE, sessionId: 0 })
    return answer.responses.flatMap((t) => t.partitions)
  }

  it('returns whole batches from the one holding the fetch offset up to the high watermark', async () => {
    await produce(['a', 'b'])
    await produce(['c', 'd', 'e'])
    await produce(['f'])
    const [fromMiddle] = await fetch(request([{ topic: 'events', offset: 3n }]))
    expect(fromMiddle).toMatchObject({ errorCode: Err.NONE, highWatermark: 6n, lastStableOffset: 6n, logStartOffset: 0n })
    expect(baseOffsets(fromMiddle!)).toEqual([2n, 5n])
    const [atEnd] = await fetch(request([{ topic: 'events', offset: 6n }]))
    expect(atEnd).toMatchObject({ errorCode: Err.NONE, highWatermark: 6n, records: [] })
  })

  it('answers a partition the request names twice once, from the later entry\'s offset, as Kafka keys a Fetch by partition', async () => {
    await produce(['a', 'b'])
    await produce(['c'])
    const twice = request([{ topic: 'events', offset: 0n }, { topic: 'events', offset: 2n }])
    const answers = await fetch(twice)
    expect(answers).toHaveLength(1)
    expect(baseOffsets(answers[0]!)).toEqual([2n])
  })

  it('returns at least one whole batch, however small partitionMaxBytes and maxBytes are', async () => {
    await produce(['x'.repeat(1000)])
    await produce(['y'.repeat(1000)])
    const [one] = await fetch(request([{ topic: 'events', offset: 0n, partitionMaxBytes: 10 }], { maxBytes: 10 }))
    expect(baseOffsets(one!)).toEqual([0n])
  })

  it('answers offsets outside the log, unknown topics, ids, partitions and leader epochs with their errors', async () => {
    await produce(['a'])
    const topicId = node.services.topics.get('events')!.topicId
    expect(await fetch(request([{ topic: 'events', offset: 2n }]))).toMatchObject([{ errorCode: Err.OFFSET_OUT_OF_RANGE, highWatermark: -1n }])
    expect(await fetch(request([{ topic: 'nothing', offset: 0n }]))).toMatchObject([{ errorCode: Err.UNKNOWN_TOPIC_OR_PARTITION }])
    expect(await fetch(request([{ topic: 'events', offset: 0n, currentLeaderEpoch: 1 }]))).toMatchObject([{ errorCode: Err.UNKNOWN_LEADER_EPOCH }])
    // v13+ name topics by id only.
    expect(await fetch(request([{ topic: '', topicId: '6f0b1f10-0000-4000-8000-000000000000', offset: 0n }]), { apiVersion: 13 })).toMatchObject([
      { errorCode: Err.UNKNOWN_TOPIC_ID },
    ])
    const [byId] = await fetch(request([{ topic: '', topicId, offset: 0n }]), { apiVersion: 13 })
    expect(baseOffsets(byId!)).toEqual([0n])
    // A partition missing from a topic id the node knows: the topic exists, the partition does not, as Kafka answers
    // (ReplicaManager.getPartitionOrException), not UNKNOWN_TOPIC_ID.
    expect(await fetch(request([{ topic: '', topicId, partition: 9, offset: 0n }]), { apiVersion: 13 })).toMatchObject([{ errorCode: Err.UNKNOWN_TOPIC_OR_PARTITION }])
  })

  /** Starts a long-polling fetch of `events` from `offset`; resolves `parked` once it waits. */
  function parkedFetch(offset: bigint, options: { signal?: AbortSignal } = {}): { answer: Promise<FetchResponsePartitionData[]>; parked: Promise<void> } {
    let onParked!: () => void
    const parked = new Promise<void>((resolve) => (onParked = resolve))
    const answer = fetch(request([{ topic: 'events', offset }], { maxWaitMs: NEVER_MS }), { ...options, onParked })
    return { answer, parked }
  }

  it('answers a Fetch naming no partition at once, without parking it for its maxWaitMs (Kafka\'s ReplicaManager.fetchMessages: fetchInfos.isEmpty)', async () => {
    let onParked!: () => void
    const parked = new Promise<'parked'>((resolve) => (onParked = () => resolve('parked')))
    const closed = new AbortController()
    try {
      const answer = fetch(request([], { maxWaitMs: NEVER_MS }), { onParked, signal: closed.signal })
      expect(await Promise.race([answer, parked])).toEqual([])
    } finally {
      closed.abort()
    }
  })

  it('parks a fetch at the high watermark and answers it once a produce appends', async () => {
    await produce(['a'])
    const { answer: waiting, parked } = parkedFetch(1n)
    await parked
    await produce(['b', 'c'])
    const [woken] = await waiting
    expect(woken).toMatchObject({ errorCode: Err.NONE, highWatermark: 3n })
    expect(baseOffsets(woken!)).toEqual([1n])
  })

  it('answers a parked fetch at once when its connection closes, and when its topic is deleted', async () => {
    const closing = new AbortController()
    const closed = parkedFetch(0n, { signal: closing.signal })
    await closed.parked
    closing.abort()
    expect(await closed.answer).toMatchObject([{ errorCode: Err.NONE, records: [] }])

    const deleted = parkedFetch(0n)
    await deleted.parked
    await node.services.topics.delete(node.services.topics.get('events')!)
    expect(await deleted.answer).toMatchObject([{ errorCode: Err.UNKNOWN_TOPIC_OR_PARTITION }])
  })

  it('keeps within the node\'s fetch.max.bytes whatever the client asks for', async () => {
    await node.close()
    node = await openNode({ fetchMaxBytes: 1024 })
    await node.createTopic('events')
    for (const value of ['p', 'q', 'r']) await produce([value.repeat(600)])
    const [capped] = await fetch(request([{ topic: 'events', offset: 0n, partitionMaxBytes: 1 << 30 }], { maxBytes: 1 << 30 }))
    expect(baseOffsets(capped!)).toEqual([0n])
  })

  it('shares queued.max.response.bytes between answers not yet sent: a fetch that finds none left gets one batch', async () => {
    await node.close()
    node = await openNode({ queuedMaxResponseBytes: 2500 })
    await node.createTopic('events')
    for (const value of ['p', 'q', 'r', 's']) await produce([value.repeat(1000)])
    const everything = request([{ topic: 'events', offset: 0n }])

    // Two batches fit the pool; the answer stays in its socket, holding them.
    const unsent: (() => void)[] = []
    const first = await fetch(everything, { unsent })
    expect(baseOffsets(first[0]!)).toEqual([0n, 1n])
    expect(node.services.answers.bytes).toBeGreaterThan(2000)

    // Nothing is left: the next fetch still progresses, by one batch.
    const [squeezed] = await fetch(everything)
    expect(baseOffsets(squeezed!)).toEqual([0n])

    // Once the first answer has left the socket, its bytes are back and a fetch reads up to the pool again.
    for (const sent of unsent) sent()
    expect(node.services.answers.bytes).toBe(0)
    const [again] = await fetch(everything)
    expect(baseOffsets(again!)).toEqual([0n, 1n])
    expect(node.services.answers.bytes).toBe(0)
  })

  it('holds nothing of the pool while a fetch is parked', async () => {
    await node.close()
    node = await openNode({ queuedMaxResponseBytes: 2500 })
    await node.createTopic('events')
    await produce(['a'.repeat(1000)])
    let onParked!: () => void
    const parked = new Promise<void>((resolve) => (onParked = resolve))
    const waiting = fetch(request([{ topic: 'events', offset: 0n }], { maxWaitMs: NEVER_MS, minBytes: 1 << 20 }), { onParked })
    await parked
    expect(node.services.answers.bytes).toBe(0)
    // Woken by each append, it reads, finds less than minBytes and waits again, giving back what it read.
    await produce(['b'.repeat(1000)])
    await produce(['c'.repeat(3000)])
    await node.services.topics.delete(node.services.topics.get('events')!)
    await waiting
    expect(node.services.answers.bytes).toBe(0)
  })

  it('answers a fetch of many partitions as reading them one after another would, from the cache and after a restart', async () => {
    // Partitions are read several at once; what each returns must still follow request order: partition i gets at
    // most min(partitionMaxBytes, maxBytes - the bytes before it), the first with data at least one whole batch.
    const PARTITIONS = 7
    const below = seededBelow(20261130)
    await node.close()
    node = await openNode()
    await node.createTopic('wide', { partitions: PARTITIONS })
    /** Per partition, each batch's base offset, last offset and size as stored. */
    const stored: { base: bigint; last: bigint; size: number }[][] = Array.from({ length: PARTITIONS }, () => [])
    for (let i = 0; i < 120; i++) {
      const p = below(PARTITIONS)
      const values = Array.from({ length: 1 + below(4) }, () => 'v'.repeat(1 + below(900)))
      const batch = handBuiltBatch(values)
      const req: ProduceRequest = { transactionalId: null, acks: 1, timeoutMs: 30_000, topicData: [{ name: 'wide', partitionData: [{ index: p, records: batch }] }] }
      await node.call(produceHandler, req, { apiVersion: 9 })
    }
    const check = async (seed: number): Promise<number> => {
      const pick = seededBelow(seed)
      let checked = 0
      for (let round = 0; round < 200; round++) {
        const order = Array.from({ length: PARTITIONS }, (_, i) => i)
        for (let i = order.length - 1; i > 0; i--) {
          const j = pick(i + 1)
          ;[order[i], order[j]] = [order[j]!, order[i]!]
        }
        order.length = 1 + pick(PARTITIONS)
        const wanted = order.map((partition) => {
          const batches = stored[partition]!
          const offset = batches.length === 0 ? 0n : batches[pick(batches.length)]!.base + BigInt(pick(2))
          return { topic: 'wide', partition, offset, partitionMaxBytes: 1 + pick(4000) }
        })
        const maxBytes = 1 + pick(12000)
        const answer = await fetch(request(wanted, { maxBytes }))
        // The reference: partitions one after another, from the sizes stored.
        let bytes = 0
        const expected = wanted.map(({ partition, offset, partitionMaxBytes }) => {
          const budget = Math.min(partitionMaxBytes, maxBytes - bytes)
          const from = stored[partition]!.filter((batch) => batch.last >= offset)
          const taken: bigint[] = []
          let size = 0
          for (const batch of from) {
            if (!(bytes === 0 && taken.length === 0) && size + batch.size > budget) break
            taken.push(batch.base)
            size += batch.size
          }
          bytes += size
          return taken
        })
        expect(answer.map(baseOffsets), `seed ${seed} round ${round}`).toEqual(expected)
        checked += expected.filter((t) => t.length > 0).length
      }
      return checked
    }
    for (let p = 0; p < PARTITIONS; p++) {
      const [all] = await fetch(request([{ topic: 'wide', partition: p, offset: 0n, partitionMaxBytes: 1 << 30 }], { maxBytes: 1 << 30 }))
      for (const batch of all!.records as Buffer[]) stored[p]!.push({ base: batch.readBigInt64BE(0), last: lastOffsetOf(batch), size: batch.length })
    }
    expect(stored.every((batches) => batches.length > 0)).toBe(true)
    expect(await check(1)).toBeGreaterThan(0)
    node = await node.reopen()
    expect(await check(2)).toBeGreaterThan(0)
  })
})

describe('a follower\'s Fetch', () => {
  // imageAt's replicas: this node leads, node 2 follows; both are registered brokers, no other id is.
  const LEADER = 1
  const FOLLOWER = 2
  let node: InProcessNode | undefined
  let replicas: ReplicaManager | undefined
  afterEach(async () => {
    replicas?.stop()
    await node?.close()
    replicas = node = undefined
  })

  it('answers KAFKA_STORAGE_ERROR for the damaged partition only, the other partition its records, and logs the partition and offset, as to a consumer', async () => {
    node = await openNode()
    let topic = await node.createTopic('changelog', { partitions: 2 })
    // About 4 MB of compressible values in partition 0 (LevelDB snappy-compresses its blocks; one table holds them),
    // a few batches in partition 1.
    for (let i = 0; i < 400; i++) await topic.partitions[0]!.appendAsLeader(producerBatch(`b${i}`, 10, { valueBytes: 1000 }), { origin: AppendOrigin.CLIENT })
    for (const label of ['x', 'y']) await topic.partitions[1]!.appendAsLeader(producerBatch(label, 2), { origin: AppendOrigin.CLIENT })
    // The first reopen writes LevelDB's log out as a table; the second finds a block in its middle damaged.
    node = await node.reopen()
    node = await node.reopen({ whileClosed: () => damageLargestTable(node!.dataDir) })
    topic = node.services.topics.get('changelog')!
    const quorum = { appliedOffset: 1n, leaderId: null } as unknown as QuorumRunner
    replicas = new ReplicaManager({ nodeId: LEADER, topics: node.services.topics, quorum, brokerEpoch: () => null, log: new Logger('test', 'error') })
    replicas.apply(imageAt(1n, topic, { id: LEADER, leaderEpoch: 0 }, [LEADER, FOLLOWER]))
    replicas.markCaughtUp()
    const logged = vi.spyOn(node.services.log, 'error').mockImplementation(() => {})

    // Node 2 fetches as a follower does, from where its log ends, partition 0 (damaged) first, with a budget that
    // reaches the damaged block: the batches before the block come, as to a consumer.
    const fetchBoth = async (offsets: readonly bigint[], as: 'follower' | 'consumer'): Promise<FetchResponsePartitionData[]> => {
      const wanted = offsets.map((offset, partition) => ({ topic: topic.name, topicId: topic.topicId, partition, offset, partitionMaxBytes: 64 << 20 }))
      const req = request(wanted, { maxBytes: 64 << 20, ...(as === 'follower' ? { replicaId: FOLLOWER } : {}) })
      const answer = (await node!.call<FetchRequest, FetchResponse>(fetchHandler, req, { apiVersion: 17, ...(as === 'follower' ? { replicas } : {}) })) as FetchResponse
      expect(answer.errorCode).toBe(Err.NONE)
      return answer.responses.flatMap((t) => t.partitions)
    }
    const [before] = await fetchBoth([0n], 'follower')
    expect(before).toMatchObject({ partitionIndex: 0, errorCode: Err.NONE })
    const blockAt = lastOffsetOf((before!.records as Buffer[]).at(-1)!) + 1n
    expect(blockAt).toBeLessThan(4000n)
    expect(logged).not.toHaveBeenCalled()

    // The fetch that reaches the block: KAFKA_STORAGE_ERROR for that partition, its records for the other; the
    // same as a consumer's fetch (on a single node: no replicas) gets.
    for (const as of ['follower', 'consumer'] as const) {
      const [damaged, intact] = await fetchBoth([blockAt, 0n], as)
      expect(damaged, as).toMatchObject({ partitionIndex: 0, errorCode: Err.KAFKA_STORAGE_ERROR, records: [] })
      expect(intact, as).toMatchObject({ partitionIndex: 1, errorCode: Err.NONE, highWatermark: 4n })
      expect(baseOffsets(intact!), as).toEqual([0n, 2n])
    }
    const line = new RegExp(`^fetch of changelog-0 at offset ${blockAt}: partition 0 of topic ${topic.topicId}: LevelDB cannot read every batch of offsets ${blockAt} to 3999: Corruption: `)
    expect(logged.mock.calls).toEqual([[expect.stringMatching(line)], [expect.stringMatching(line)]])
  })

  describe('in its fetch session', () => {

    /** A replica Fetch v17 from `replicaId` in session `sessionId` at `sessionEpoch`. */
    async function replicaFetch(replicaId: number, sessionId: number, sessionEpoch: number, wanted: Wanted[]): Promise<FetchResponse> {
      const req = { ...request(wanted, { replicaId }), sessionId, sessionEpoch }
      return (await node!.call<FetchRequest, FetchResponse>(fetchHandler, req, { apiVersion: 17, replicas })) as FetchResponse
    }

    it('answers a follower\'s Fetch naming no partition at once, as a consumer\'s (ReplicaManager.fetchMessages: fetchInfos.isEmpty)', async () => {
      node = await openNode()
      const topic = await node.createTopic('quiet')
      const quorum = { appliedOffset: 1n, leaderId: null } as unknown as QuorumRunner
      replicas = new ReplicaManager({ nodeId: LEADER, topics: node.services.topics, quorum, brokerEpoch: () => null, log: new Logger('test', 'error') })
      replicas.apply(imageAt(1n, topic, { id: LEADER, leaderEpoch: 0 }, [LEADER, FOLLOWER]))
      replicas.markCaughtUp()
      let onParked!: () => void
      const parked = new Promise<'parked'>((resolve) => (onParked = () => resolve('parked')))
      const closed = new AbortController()
      try {
        const req = request([], { replicaId: FOLLOWER, maxWaitMs: NEVER_MS })
        const answer = node.call<FetchRequest, FetchResponse>(fetchHandler, req, { apiVersion: 17, replicas, onParked, signal: closed.signal })
        expect(await Promise.race([answer, parked])).toMatchObject({ errorCode: Err.NONE, sessionId: 0, responses: [] })
      } finally {
        closed.abort()
      }
    })

    it('serves its partitions in turn under a maxBytes one batch fills: a partition an answer carries goes to the end of the session (Kafka\'s IncrementalFetchContext)', async () => {
      node = await openNode()
      const topic = await node.createTopic('turns', { partitions: 2 })
      for (const partition of topic.partitions) {
        for (let i = 0; i < 6; i++) await partition.appendAsLeader(producerBatch(`p${partition.index}-${i}`, 1), { origin: AppendOrigin.CLIENT })
      }
      const quorum = { appliedOffset: 1n, leaderId: null } as unknown as QuorumRunner
      replicas = new ReplicaManager({ nodeId: LEADER, topics: node.services.topics, quorum, brokerEpoch: () => null, log: new Logger('test', 'error') })
      replicas.apply(imageAt(1n, topic, { id: LEADER, leaderEpoch: 0 }, [LEADER, FOLLOWER]))
      replicas.markCaughtUp()

      // The follower names both partitions at the offsets it has reached, with a maxBytes of 1: each answer carries
      // one batch (the first partition read with data returns one whole batch, minOneMessage), nothing more.
      const offsets = [0n, 0n]
      const fetchOnce = async (sessionId: number, sessionEpoch: number): Promise<{ sessionId: number; served: number[] }> => {
        const wanted = [0, 1].map((partition) => ({ topic: topic.name, topicId: topic.topicId, partition, offset: offsets[partition]!, currentLeaderEpoch: 0 }))
        const req = { ...request(wanted, { replicaId: FOLLOWER, maxBytes: 1 }), sessionId, sessionEpoch }
        const answer = (await node!.call<FetchRequest, FetchResponse>(fetchHandler, req, { apiVersion: 17, replicas })) as FetchResponse
        expect(answer.errorCode).toBe(Err.NONE)
        const served = answer.responses.flatMap((t) => t.partitions).filter((p) => (p.records as Buffer[]).length > 0)
        for (const p of served) offsets[p.partitionIndex] = lastOffsetOf((p.records as Buffer[]).at(-1)!) + 1n
        return { sessionId: answer.sessionId!, served: served.map((p) => p.partitionIndex) }
      }
      const opened = await fetchOnce(0, 0)
      expect(opened.served).toEqual([0])
      const turns: number[][] = []
      for (let epoch = 1; epoch <= 6; epoch++) turns.push((await fetchOnce(opened.sessionId, epoch)).served)
      // Partition 1 is not starved: both are served as often. An answer also carries the partition whose high
      // watermark the follower's fetch moved (without records), and it goes to the end after the one served, so the
      // turns come in pairs; without the rotation partition 0 took every answer.
      expect(turns).toEqual([[0], [1], [1], [0], [0], [1]])
    })

    it('opens no session for replica ids that are no broker (NOT_LEADER_OR_FOLLOWER), one for a real follower, which keeps a partition of a topic the node does not know yet', async () => {
      node = await openNode()
      const topic = await node.createTopic('events', { partitions: 2 })
      await topic.partitions[0]!.appendAsLeader(producerBatch('a', 3), { origin: AppendOrigin.CLIENT })
      const quorum = { appliedOffset: 1n, leaderId: null } as unknown as QuorumRunner
      replicas = new ReplicaManager({ nodeId: LEADER, topics: node.services.topics, quorum, brokerEpoch: () => null, log: new Logger('test', 'error') })
      replicas.apply(imageAt(1n, topic, { id: LEADER, leaderEpoch: 0 }, [LEADER, FOLLOWER]))
      replicas.markCaughtUp()
      const both: Wanted[] = [0, 1].map((partition) => ({ topic: topic.name, topicId: topic.topicId, partition, offset: 0n }))
      const strangerTopic = (i: number): Wanted => ({ topic: '', topicId: `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`, offset: 0n })

      // Made-up replica ids asking for new sessions: each is answered at once, every partition NOT_LEADER_OR_FOLLOWER,
      // with no session, and the node keeps none.
      for (let id = 3; id < 2003; id++) {
        const answer = await replicaFetch(id, 0, 0, [...both, strangerTopic(id)])
        expect(answer).toMatchObject({ errorCode: Err.NONE, sessionId: 0 })
        expect(answer.responses.flatMap((t) => t.partitions.map((p) => p.errorCode))).toEqual([Err.NOT_LEADER_OR_FOLLOWER, Err.NOT_LEADER_OR_FOLLOWER, Err.NOT_LEADER_OR_FOLLOWER])
      }
      expect(replicas.fetchSessions.size).toBe(0)

      // The real follower gets its session: a full answer, then incremental ones.
      const opened = await replicaFetch(FOLLOWER, 0, 0, both)
      expect(opened.errorCode).toBe(Err.NONE)
      const sessionId = opened.sessionId!
      expect(sessionId).toBeGreaterThan(0)
      const [first, second] = opened.responses.flatMap((t) => t.partitions)
      expect(first).toMatchObject({ partitionIndex: 0, errorCode: Err.NONE })
      expect(baseOffsets(first!)).toEqual([0n])
      expect(second).toMatchObject({ partitionIndex: 1, errorCode: Err.NONE, records: [] })
      expect(replicas.fetchSessions.size).toBe(1)
      // It wrote partition 0's batch and names only that partition: partition 1, without news, is not answered.
      const next = await replicaFetch(FOLLOWER, sessionId, 1, [{ topic: topic.name, topicId: topic.topicId, partition: 0, offset: 3n }])
      expect(next).toMatchObject({ errorCode: Err.NONE, sessionId })
      expect(next.responses.flatMap((t) => t.partitions).map((p) => p.partitionIndex)).not.toContain(1)

      // A partition of a topic id the node does not know (yet: a follower's image may hold a new topic before its
      // leader made its log) stays in the session, answered UNKNOWN_TOPIC_ID in each incremental answer until it
      // exists: the follower names it once.
      expect((await replicaFetch(FOLLOWER, sessionId, 2, [strangerTopic(1)])).responses.flatMap((t) => t.partitions.map((p) => p.errorCode))).toEqual([Err.UNKNOWN_TOPIC_ID])
      const again = await replicaFetch(FOLLOWER, sessionId, 3, [])
      expect(again).toMatchObject({ errorCode: Err.NONE, sessionId })
      expect(again.responses.flatMap((t) => t.partitions.map((p) => p.errorCode))).toEqual([Err.UNKNOWN_TOPIC_ID])
      expect(replicas.fetchSessions.partitionCount).toBe(3)
      const last = await replicaFetch(FOLLOWER, sessionId, 4, [{ topic: topic.name, topicId: topic.topicId, partition: 1, offset: 0n, currentLeaderEpoch: 0 }])
      expect(last).toMatchObject({ errorCode: Err.NONE, sessionId })
      expect(replicas.fetchSessions.size).toBe(1)

      // A node no longer registered loses its session.
      replicas.apply(imageAt(2n, topic, { id: LEADER, leaderEpoch: 0 }, [LEADER]))
      expect(replicas.fetchSessions.size).toBe(0)
    })
  })
})
