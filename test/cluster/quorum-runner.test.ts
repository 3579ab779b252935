/**
 * The QuorumRunner in process, on a memory store, one of two voters whose peer is unreachable: what it logs of the
 * EndQuorumEpoch requests handed to it. A voter's resignation is logged as one (an election follows, or nothing when
 * it is from an epoch this node has left); one naming a leader that is not a voter is refused
 * (INCONSISTENT_VOTER_SET) and not logged as a resignation. test/cluster/node/controller-resign.test.ts shows a
 * resignation across real processes.
 *
 * Controller operations asked for together share one step and one write of the metadata log's store, in the order
 * asked: a node back with thousands of partitions asks for as many ISR changes at once, and one synced write each
 * held the quorum's own messages behind them past the followers' fetch timeout (a controller election followed).
 */
import { randomUUID } from 'node:crypto'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { QuorumRunner } from '../../broker/cluster/quorum-runner.js'
import type { EndQuorumEpochRequest } from '../../broker/cluster/raft/messages.js'
import { Logger } from '../../broker/logger.js'
import { MemoryRaftStore } from '../../storage/raft-memory-store.js'
import { waitFor } from '../helpers/wait.js'
import type { RaftWrite } from '../../storage/raft-store.js'

const CLUSTER_ID = 'MkU3OEVBNTcwNTJENDM2Qg'
const Err = { NONE: 0, FENCED_LEADER_EPOCH: 74, INCONSISTENT_VOTER_SET: 94 } as const

describe('QuorumRunner, in process', () => {
  let runner: QuorumRunner | null = null
  afterEach(async () => {
    await runner?.stop()
    runner = null
  })

  it('logs a resignation (EndQuorumEpoch) only when it is from a voter', async () => {
    const log = new Logger('node 1', 'info')
    const info = vi.spyOn(log, 'info').mockImplementation(() => {})
    vi.spyOn(log, 'warn').mockImplementation(() => {})
    runner = await QuorumRunner.start({
      nodeId: 1,
      clusterId: CLUSTER_ID,
      // Port 1: nothing listens there, so node 2 is never reached.
      voters: [
        { id: 1, host: '127.0.0.1', port: 1 },
        { id: 2, host: '127.0.0.1', port: 1 },
      ],
      store: new MemoryRaftStore(),
      log,
      brokerSessionTimeoutMs: 9000,
      onFatal: (error) => {
        throw error
      },
    })
    const endQuorumEpoch = (leaderId: number, leaderEpoch: number): EndQuorumEpochRequest => ({
      type: 'EndQuorumEpochRequest',
      clusterId: CLUSTER_ID,
      leaderId,
      leaderEpoch,
      preferredSuccessors: [1],
    })
    const resignations = () => info.mock.calls.map(([text]) => text).filter((text) => text.includes('resigns'))

    expect(await runner.receive(16777215, endQuorumEpoch(16777215, 50))).toMatchObject({ errorCode: Err.INCONSISTENT_VOTER_SET })
    expect(resignations()).toEqual([])

    expect(await runner.receive(2, endQuorumEpoch(2, 40))).toMatchObject({ errorCode: Err.NONE })
    expect(resignations()).toEqual(['controller quorum epoch 40: node 2 resigns (EndQuorumEpoch, preferred successors [1]); electing a new leader'])

    expect(await runner.receive(2, endQuorumEpoch(2, 30))).toMatchObject({ errorCode: Err.FENCED_LEADER_EPOCH })
    expect(resignations()[1]).toMatch(/^controller quorum epoch 30: node 2 resigns \(EndQuorumEpoch\), but this node is at epoch 4\d already; nothing to elect$/)
  })

  it('writes controller operations asked for together in one write of its store, each answered in the order asked', async () => {
    /** Counts the writes that append to the metadata log. */
    class CountingStore extends MemoryRaftStore {
      appends = 0
      override write(writes: readonly RaftWrite[]): Promise<void> {
        if (writes.some((write) => write.type === 'append')) this.appends++
        return super.write(writes)
      }
    }
    const store = new CountingStore()
    const log = new Logger('node 1', 'warn')
    runner = await QuorumRunner.start({
      nodeId: 1,
      clusterId: CLUSTER_ID,
      voters: [{ id: 1, host: '127.0.0.1', port: 1 }],
      store,
      log,
      brokerSessionTimeoutMs: 9000,
      onFatal: (error) => {
        throw error
      },
    })
    await waitFor('the lone voter leading', () => runner!.leaderId === 1)
    const registered = await runner.registerBroker({ brokerId: 1, incarnationId: randomUUID(), endPoints: [{ name: 'PLAINTEXT', host: '127.0.0.1', port: 9092, securityProtocol: 0 }], rack: null })
    if (!registered.ok) throw new Error(registered.message)
    const before = store.appends
    const blocks = await Promise.all(Array.from({ length: 100 }, () => runner!.allocateProducerIds({ brokerId: 1, brokerEpoch: registered.brokerEpoch })))
    const granted = blocks.map((block) => {
      if (!block.ok) throw new Error(block.message)
      return block
    })
    const starts = granted.map((block) => Number(block.producerIdStart))
    expect(starts).toEqual(starts.map((_, i) => starts[0]! + i * granted[0]!.producerIdLen))
    // One step took all hundred; a tick may have slipped in before it.
    expect(store.appends - before).toBeLessThanOrEqual(2)
  })
})
