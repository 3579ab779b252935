/**
 * The replica manager of a cluster node (broker/cluster/replica-manager.ts) over a real node's logs in this process,
 * driven by metadata images built by hand: when a restarted node may serve as a partition's leader, a leadership
 * that comes while the replica truncates as a follower, a leader whose ISR change completed a reassignment that moves
 * it off the partition (KIP-455) before its image says so, a node taken off a partition and made its replica again
 * while its log is emptied, and a follower whose storage fails (its data directory on a
 * full tmpfs; skipped, saying why, where none can be mounted) appending a fetch of several batches.
 */
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { Logger } from '../../broker/logger.js'
import { ReplicaManager } from '../../broker/cluster/replica-manager.js'
import type { QuorumRunner } from '../../broker/cluster/quorum-runner.js'
import type { AlterPartitionRequest } from '../../broker/cluster/controller/controller.js'
import { ErrorCode } from '../../protocol/errors.js'
import { imageAt } from '../helpers/metadata-image.js'
import { waitFor } from '../helpers/wait.js'
import { openNode, type InProcessNode } from '../helpers/in-process-node.js'
import { producerBatch } from '../storage/batches.js'
import { AppendOrigin } from '../../storage/producer-state.js'
import type { FetchResponsePartitionData } from '../../protocol/messages/fetch.js'
import type { AlterPartitionRequest as AlterPartitionWireRequest, AlterPartitionResponse } from '../../protocol/messages/alter-partition.js'
import { encodeRecordBatch, setBaseOffset } from '../../protocol/record-batch.js'
import { StorageError, StorageOfflineError } from '../../storage/log-store.js'
import { MiB, mountTmpfs } from '../helpers/tmpfs.js'

const NODE_ID = 1

let node: InProcessNode | undefined
let manager: ReplicaManager | undefined
afterEach(async () => {
  manager?.stop()
  await node?.close()
  manager = undefined
  node = undefined
})

/**
 * A replica manager of node NODE_ID over `node`'s topics, as the node makes it, with the parts of the quorum member it
 * reads (`quorum`: the offset its member has applied, the controller it knows, and what a test drives).
 */
function managerOf(node: InProcessNode, quorum: object, options: { brokerEpoch?: bigint; config?: ConstructorParameters<typeof ReplicaManager>[0]['config'] } = {}): ReplicaManager {
  const brokerEpoch = options.brokerEpoch ?? null
  return new ReplicaManager({ nodeId: NODE_ID, topics: node.services.topics, quorum: quorum as QuorumRunner, brokerEpoch: () => brokerEpoch, log: new Logger('test', 'error'), config: options.config })
}

describe('a restarted node', () => {
  it('serves as leader only once its replicas have applied the metadata its quorum member had when it was unfenced', async () => {
    node = await openNode()
    const topic = await node.createTopic('changelog')
    // The quorum member has applied the metadata log up to offset 7, where the controller unfenced this node.
    manager = managerOf(node, { appliedOffset: 7n, leaderId: null })
    // The replicas still hold the image the node restarted with: it led the partition in epoch 0, which has ended.
    manager.apply(imageAt(3n, topic, { id: NODE_ID, leaderEpoch: 0 }))
    expect(manager.leads(topic.topicId, 0)).toBe(false)
    manager.markCaughtUp()
    expect(manager.leads(topic.topicId, 0)).toBe(false)
    // The image of the unfencing reaches the replicas: it leads again, in epoch 1.
    manager.apply(imageAt(7n, topic, { id: NODE_ID, leaderEpoch: 1 }))
    expect(manager.leads(topic.topicId, 0)).toBe(true)
  })
})

describe('a follower truncating to its leader', () => {
  it('that is made leader meanwhile keeps its log and starts its epoch where its log ends', async () => {
    node = await openNode()
    const topic = await node.createTopic('changelog')
    const partition = topic.partitions[0]!
    manager = managerOf(node, { appliedOffset: 1n, leaderId: null })
    manager.apply(imageAt(1n, topic, { id: NODE_ID, leaderEpoch: 0 }))
    manager.markCaughtUp()
    for (const label of ['a', 'b', 'c']) await partition.appendAsLeader(producerBatch(label, 1), { origin: AppendOrigin.CLIENT })
    // Node 2 leads epoch 1; its answer says its epoch 0 ended at offset 1, so this follower would cut its log there.
    manager.apply(imageAt(2n, topic, { id: 2, leaderEpoch: 1 }))
    const replica = manager.get(topic.topicId, 0)!
    const diverging = { partitionIndex: 0, errorCode: 0, highWatermark: 1n, divergingEpoch: { epoch: 0, endOffset: 1n }, records: null } as unknown as FetchResponsePartitionData
    const applied = manager.applyFetched(replica, diverging)
    // Before the truncation runs, node 2 is gone and this node leads epoch 2 from its log end, 3.
    manager.apply(imageAt(3n, topic, { id: NODE_ID, leaderEpoch: 2 }))
    await applied
    expect(partition.logEndOffset).toBe(3n)
    expect(partition.log.epochCache.at(-1)).toEqual({ epoch: 2, startOffset: 3n })
    expect(replica.leader?.epochStartOffset).toBe(3n)
  })
})

describe('a leader whose ISR change completes a reassignment', () => {
  // The controller's first answer to the AlterPartition that takes node 3 in, whose change it committed all the same.
  const answers = [
    { when: 'answered before its image comes', answer: { ok: true, epoch: 1, lastOffset: 2n, leaderId: 3, leaderEpoch: 2, isr: [3], partitionEpoch: 2 } },
    {
      when: 'not answered (the controller lost its leadership; its successor committed the change)',
      answer: { ok: false, errorCode: ErrorCode.NOT_CONTROLLER, message: 'the controller lost its leadership before the change committed' },
    },
  ]
  it.each(answers)('acknowledges nothing its successor lacks until its image ends its leadership: $when', async ({ answer }) => {
    node = await openNode()
    const topic = await node.createTopic('moving')
    const partition = topic.partitions[0]!
    // Node 1 is the active controller, so its AlterPartition runs in process. The partition moves from [1, 2] to [3]
    // (KIP-455: replicas [3, 1, 2], adding 3, removing 1 and 2); the ISR change that takes 3 in completes it, as the
    // controller does: replicas [3], ISR [3], node 3 leading epoch 2. The image with it comes last. Asked again, the
    // controller finds the partition changed.
    const asked: (readonly number[])[] = []
    const quorum = {
      appliedOffset: 1n,
      leaderId: NODE_ID,
      alterPartition: async (request: AlterPartitionRequest) => {
        asked.push(request.newIsr)
        return asked.length === 1 ? answer : { ok: false, errorCode: ErrorCode.INVALID_UPDATE_VERSION, message: 'partition epoch 2, not 1' }
      },
    }
    manager = managerOf(node, quorum, { brokerEpoch: 1n, config: { replicaLagTimeMaxMs: 10_000 } })
    const moving = { replicas: [3, 1, 2], isr: [1, 2], addingReplicas: [3], removingReplicas: [1, 2] }
    manager.apply(imageAt(1n, topic, { id: NODE_ID, leaderEpoch: 1 }, [1, 2, 3], moving))
    manager.markCaughtUp()
    for (const label of ['a', 'b']) await partition.appendAsLeader(producerBatch(label, 1), { origin: AppendOrigin.CLIENT })
    const fetch = (replicaId: number, fetchOffset: bigint, nowMs: number) =>
      manager!.replicaFetch(topic.topicId, 0, { replicaId, currentLeaderEpoch: 1, fetchOffset, lastFetchedEpoch: -1, logStartOffset: 0n }, nowMs)
    const startMs = Date.now()
    expect(fetch(2, 2n, startMs)).toEqual({ kind: 'read' })
    expect(fetch(3, 2n, startMs)).toEqual({ kind: 'read' })
    // The change goes to the controller after this turn of the event loop, with any others asked in it.
    await new Promise((resolve) => setImmediate(resolve))
    expect(asked).toEqual([[1, 2, 3]])

    // Node 3 leads epoch 2 now and fetches from node 1 no more; node 2, which has not applied that image yet, still
    // does. A record appended at offset 2 meanwhile reaches node 2 only.
    await partition.appendAsLeader(producerBatch('c', 1), { origin: AppendOrigin.CLIENT })
    const acknowledged = manager.awaitHighWatermark(topic.topicId, 0, 3n, 60_000)
    // Past replica.lag.time.max.ms node 3 is no longer caught up; node 2 fetches past the record.
    expect(fetch(2, 3n, startMs + 30_000)).toEqual({ kind: 'read' })
    expect(partition.highWatermark).toBe(2n)
    // The image comes: node 1 leads no more, and the record was never acknowledged (node 3 never had it).
    manager.apply(imageAt(2n, topic, { id: 3, leaderEpoch: 2 }, [1, 2, 3], { replicas: [3, 1], isr: [3] }))
    expect(await acknowledged).toBe(ErrorCode.NOT_LEADER_OR_FOLLOWER)
  })
})

describe("a leader's ISR changes", () => {
  it('go to a controller on another node as Kafka\'s AlterPartitionManager sends them: those asked together in one AlterPartition, at most one in flight', async () => {
    node = await openNode()
    const topic = await node.createTopic('many', { partitions: 4 })
    // Node 2 is the active controller: the changes go over the wire. Each request waits for the test to answer it.
    const requests: { body: AlterPartitionWireRequest; answer: (errorCode?: number) => void }[] = []
    const quorum = {
      appliedOffset: 1n,
      leaderId: 2,
      requestActiveController: (_api: unknown, _version: number, body: AlterPartitionWireRequest) =>
        new Promise<AlterPartitionResponse>((resolve) => {
          const answer = (errorCode: number = ErrorCode.NONE) => {
            const topics = body.topics.map((t) => ({
              topicId: t.topicId,
              partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, errorCode: ErrorCode.NONE, leaderId: NODE_ID, leaderEpoch: p.leaderEpoch, isr: p.newIsr, leaderRecoveryState: 0, partitionEpoch: p.partitionEpoch + 1 })),
            }))
            resolve({ throttleTimeMs: 0, errorCode, topics: errorCode === ErrorCode.NONE ? topics : [] })
          }
          requests.push({ body, answer })
        }),
    }
    manager = managerOf(node, quorum, { brokerEpoch: 1n })
    // Node 1 leads all four partitions with ISR [1, 2]; node 3, a replica of each, catches up on all of them.
    manager.apply(imageAt(1n, topic, { id: NODE_ID, leaderEpoch: 1 }, [1, 2, 3], { replicas: [1, 2, 3], isr: [1, 2] }))
    manager.markCaughtUp()
    const catchUp = (index: number) => manager!.replicaFetch(topic.topicId, index, { replicaId: 3, currentLeaderEpoch: 1, fetchOffset: 0n, lastFetchedEpoch: -1, logStartOffset: 0n }, Date.now())
    const asked = (request: { body: AlterPartitionWireRequest }) => request.body.topics.flatMap((t) => t.partitions.map((p) => [p.partitionIndex, p.newIsr]))
    const isrs = () => topic.partitions.map((p) => p.isr)
    /** Node 3 catches up on `indexes` while a request is in flight: nothing more goes out until that one is answered. */
    const catchUpWhileInFlight = async (...indexes: number[]) => {
      const sent = requests.length
      for (const index of indexes) catchUp(index)
      await new Promise((resolve) => setTimeout(resolve, 50))
      expect(requests).toHaveLength(sent)
    }

    // Two caught up in one turn: one request for both, after that turn.
    catchUp(0)
    catchUp(1)
    await waitFor('the first AlterPartition', () => requests.length === 1)
    expect(asked(requests[0]!)).toEqual([[0, [1, 2, 3]], [1, [1, 2, 3]]])
    // The other two while it is in flight: they wait for its answer, then go together.
    await catchUpWhileInFlight(2, 3)
    // The controller refuses the whole first request: each of its changes is refused, and asked again at the next fetch.
    requests[0]!.answer(ErrorCode.STALE_BROKER_EPOCH)
    await waitFor('the second AlterPartition', () => requests.length === 2)
    expect(asked(requests[1]!)).toEqual([[2, [1, 2, 3]], [3, [1, 2, 3]]])
    await catchUpWhileInFlight(0, 1)
    requests[1]!.answer()
    await waitFor('the third AlterPartition', () => requests.length === 3)
    expect(asked(requests[2]!)).toEqual([[0, [1, 2, 3]], [1, [1, 2, 3]]])
    requests[2]!.answer()
    // Each partition took its own answer.
    await waitFor('every ISR grown', () => isrs().every((isr) => isr.length === 3))
    expect(isrs()).toEqual([[1, 2, 3], [1, 2, 3], [1, 2, 3], [1, 2, 3]])
    expect(topic.partitions.map((p) => manager!.get(topic.topicId, p.index)!.state.partitionEpoch)).toEqual([2, 2, 2, 2])
  })
})

describe('a node taken off a partition (KIP-455)', () => {
  it('empties its log, and, made a replica again meanwhile, follows only once the log is empty', async () => {
    node = await openNode()
    const topic = await node.createTopic('moved-away')
    const partition = topic.partitions[0]!
    manager = managerOf(node, { appliedOffset: 1n, leaderId: null })
    manager.apply(imageAt(1n, topic, { id: NODE_ID, leaderEpoch: 1 }))
    manager.markCaughtUp()
    for (const label of ['a', 'b']) await partition.appendAsLeader(producerBatch(label, 1), { origin: AppendOrigin.CLIENT })
    expect(partition.logEndOffset).toBe(2n)
    // Moved to [2, 3], then back to [2, 1] in the same turn, before the log could be emptied: a follower made at once
    // would fetch from offset 2 of a log about to start again at 0.
    manager.apply(imageAt(2n, topic, { id: 2, leaderEpoch: 2 }, [], { replicas: [2, 3], isr: [2] }))
    manager.apply(imageAt(3n, topic, { id: 2, leaderEpoch: 3 }, [], { replicas: [2, 1], isr: [2] }))
    expect(manager.get(topic.topicId, 0)).toBeUndefined()
    await waitFor('the replica made again', () => manager!.get(topic.topicId, 0) !== undefined)
    expect(partition.logEndOffset).toBe(0n)
    expect(manager.get(topic.topicId, 0)!.state).toMatchObject({ leader: 2, leaderEpoch: 3, replicas: [2, 1] })
  })
})

describe('a follower whose storage fails', () => {
  const tmpfs = mountTmpfs(16 * MiB)
  const noTmpfs = 'skipReason' in tmpfs ? tmpfs.skipReason : null
  if (noTmpfs !== null) console.log(`follower storage failure test skipped: ${noTmpfs}`)
  afterAll(() => {
    if (!('skipReason' in tmpfs)) tmpfs.unmount()
  })

  it.skipIf(noTmpfs !== null)('rejects a fetch of several batches once, with every append awaited: none is an unhandled rejection', async () => {
    if ('skipReason' in tmpfs) return
    const unhandled: unknown[] = []
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason)
    process.on('unhandledRejection', onUnhandled)
    try {
      node = await openNode({}, join(tmpfs.dir, 'node'))
      const topic = await node.createTopic('followed')
      manager = managerOf(node, { appliedOffset: 1n, leaderId: null })
      manager.apply(imageAt(1n, topic, { id: 2, leaderEpoch: 0 }))
      manager.markCaughtUp()
      const replica = manager.get(topic.topicId, 0)!
      // Answers of three batches of the leader each, which the follower appends together.
      const fetched = (from: number): FetchResponsePartitionData => {
        const batches = [0, 1, 2].map((i) => {
          const batch = encodeRecordBatch([{ value: Buffer.alloc(256 * 1024, i) }])
          setBaseOffset(batch, BigInt(from + i))
          return batch
        })
        return { partitionIndex: 0, errorCode: 0, highWatermark: 0n, logStartOffset: 0n, records: Buffer.concat(batches) } as unknown as FetchResponsePartitionData
      }
      tmpfs.fill({ leaveBytes: 0 })

      // The write of the first three fails (they took offsets 0-2); the next three are refused, taking none.
      const failed = await manager.applyFetched(replica, fetched(0)).catch((error: unknown) => error)
      expect(failed).toBeInstanceOf(StorageError)
      expect((failed as Error).message).toMatch(/No space left on device/)
      const refused = await manager.applyFetched(replica, fetched(3)).catch((error: unknown) => error)
      expect(refused).toBeInstanceOf(StorageOfflineError)
      expect(topic.partitions[0]!.logEndOffset).toBe(3n)
      expect(topic.partitions[0]!.log.durableEndOffset).toBe(0n)
      // Node reports a rejection nobody handled after the microtasks of the turn it was made in.
      await new Promise((resolve) => setTimeout(resolve, 50))
      expect(unhandled).toEqual([])
    } finally {
      process.off('unhandledRejection', onUnhandled)
      manager?.stop()
      manager = undefined
      await node?.close()
      node = undefined
      tmpfs.free()
    }
  })
})
