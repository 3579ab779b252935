/**
 * Directed checks of rules the seeded runs reach only rarely, on a RaftNode driven by hand: a vote survives a
 * crash, a follower truncates a divergent tail where the leader's epochs say (seed 16115 of 30000 found this one),
 * the high watermark counts an earlier epoch's entries only behind one of the current epoch (Raft's figure 8),
 * Kafka's rules for a fetcher's position, the leader-change notification, the drain/persist contract, no epoch of
 * INT32_MAX, and the leader's bounds on the observers it tracks.
 */
import { describe, expect, test } from 'vitest'
import { LeaderState } from '../../../broker/cluster/raft/leader-state.js'
import { RaftLog } from '../../../broker/cluster/raft/log.js'
import type {
  FetchRequest,
  FetchResponse,
  RaftEnvelope,
  VoteRequest,
  VoteResponse,
} from '../../../broker/cluster/raft/messages.js'
import { RaftNode } from '../../../broker/cluster/raft/node.js'
import { MemoryRaftStore } from '../../../storage/raft-memory-store.js'
import { RaftChecker } from './checker.js'
import { RecordingStateMachine } from './recording-state-machine.js'
import { data, leaderChange } from './store-contract.js'

function startNode(nodeId: number, voters: number[], store: MemoryRaftStore, nowMs: number): RaftNode {
  return new RaftNode({
    nodeId,
    voters,
    clusterId: 'test',
    stateMachine: new RecordingStateMachine(nodeId, new RaftChecker()),
    random: () => 0.5,
    persisted: store.loadSync(),
    nowMs,
  })
}

/** Drains, persists and acknowledges until nothing is left to write; returns the messages to send. */
function settle(node: RaftNode, store: MemoryRaftStore, nowMs: number): RaftEnvelope[] {
  const messages: RaftEnvelope[] = []
  for (;;) {
    const output = node.drain()
    messages.push(...output.messages)
    if (output.writes.length === 0) return messages
    store.writeSync(output.writes)
    node.persisted(nowMs)
  }
}

function vote(candidateId: number, epoch: number): RaftEnvelope<VoteRequest> {
  return {
    source: candidateId,
    destination: 3,
    correlationId: 1,
    message: {
      type: 'VoteRequest',
      clusterId: 'test',
      voterId: 3,
      candidateEpoch: epoch,
      candidateId,
      lastOffsetEpoch: -1,
      lastOffset: 0n,
      preVote: false,
    },
  }
}

function granted(messages: RaftEnvelope[]): boolean {
  const response = messages.find((envelope) => envelope.message.type === 'VoteResponse')
  return (response!.message as VoteResponse).voteGranted
}

describe('raft node', () => {
  test('a voter restarted after granting its vote does not vote for another candidate in that epoch', () => {
    const store = new MemoryRaftStore()
    const before = startNode(3, [1, 2, 3], store, 0)
    settle(before, store, 0)
    before.receive(vote(1, 1), 10)
    const output = before.drain()
    // The vote goes out with the write that records it, to be sent only once that write is durable.
    expect(output.writes).toContainEqual({ type: 'election', election: { epoch: 1, leaderId: null, votedId: 1 } })
    expect(granted(output.messages)).toBe(true)
    store.writeSync(output.writes)
    before.persisted(10)

    const after = startNode(3, [1, 2, 3], store, 20)
    settle(after, store, 20)
    expect(after.votedId).toBe(1)
    after.receive(vote(2, 1), 30)
    expect(granted(settle(after, store, 30))).toBe(false)
    after.receive(vote(1, 1), 40)
    expect(granted(settle(after, store, 40))).toBe(true)
  })

  test('takes no epoch of INT32_MAX, after which no election could be held: a Vote or BeginQuorumEpoch naming it is INVALID_REQUEST and persists nothing', () => {
    const INT32_MAX = 0x7fffffff
    const INVALID_REQUEST = 42
    const store = new MemoryRaftStore()
    const node = startNode(3, [1, 2, 3], store, 0)
    settle(node, store, 0)
    const answer = <T>(messages: RaftEnvelope[], type: string): T => messages.find((envelope) => envelope.message.type === type)!.message as T

    node.receive(vote(1, INT32_MAX), 10)
    let output = node.drain()
    expect(output.writes).toEqual([])
    expect(answer<VoteResponse>(output.messages, 'VoteResponse')).toMatchObject({ errorCode: INVALID_REQUEST, voteGranted: false, leaderEpoch: 0 })
    node.receive({ ...vote(1, INT32_MAX), message: { ...vote(1, INT32_MAX).message, preVote: true } }, 20)
    output = node.drain()
    expect(output.writes).toEqual([])
    expect(answer<VoteResponse>(output.messages, 'VoteResponse')).toMatchObject({ errorCode: INVALID_REQUEST, voteGranted: false })
    node.receive({ source: 1, destination: 3, correlationId: 2, message: { type: 'BeginQuorumEpochRequest', clusterId: 'test', voterId: 3, leaderId: 1, leaderEpoch: INT32_MAX } }, 30)
    output = node.drain()
    expect(output.writes).toEqual([])
    expect(answer<{ errorCode: number }>(output.messages, 'BeginQuorumEpochResponse').errorCode).toBe(INVALID_REQUEST)
    expect(node.epoch).toBe(0)
    expect(node.votedId).toBeNull()

    // Nothing was persisted: restarted, it is in epoch 0 still, and the next election is held as usual.
    const after = startNode(3, [1, 2, 3], store, 40)
    settle(after, store, 40)
    expect(after.epoch).toBe(0)
    after.receive(vote(1, 1), 50)
    expect(granted(settle(after, store, 50))).toBe(true)
    expect(after.epoch).toBe(1)
  })

  test('a voter in epoch INT32_MAX - 1 does not stand for INT32_MAX', () => {
    const store = new MemoryRaftStore()
    store.writeSync([{ type: 'election', election: { epoch: 0x7ffffffe, leaderId: null, votedId: null } }])
    // A lone voter stands at once, and wins at once, when it can.
    const node = startNode(1, [1], store, 0)
    for (const nowMs of [0, 10_000, 20_000]) {
      node.tick(nowMs)
      settle(node, store, nowMs)
    }
    expect(node.role).not.toBe('Leader')
    expect(node.epoch).toBe(0x7ffffffe)
    expect(store.loadSync().election?.epoch).toBe(0x7ffffffe)
  })

  test('no call may come between a drain with writes and persisted()', () => {
    const store = new MemoryRaftStore()
    const node = startNode(3, [1, 2, 3], store, 0)
    settle(node, store, 0)
    node.receive(vote(1, 1), 10)
    expect(node.drain().writes.length).toBeGreaterThan(0)
    expect(() => node.tick(20)).toThrow(/persisted\(\)/)
    node.persisted(20)
    expect(() => node.tick(30)).not.toThrow()
  })

  test('a lone voter leads at once and is announced to its state machine after its epoch starts', () => {
    const store = new MemoryRaftStore()
    const machine = new RecordingStateMachine(1, new RaftChecker())
    const node = new RaftNode({
      nodeId: 1,
      voters: [1],
      clusterId: 'test',
      stateMachine: machine,
      random: () => 0.5,
      persisted: store.loadSync(),
      nowMs: 0,
    })
    expect(node.role).toBe('Leader')
    // Not yet: its leader-change batch is not durable, so not committed, so not applied.
    expect(machine.leaderChanges).toEqual([])
    settle(node, store, 0)
    expect(machine.leaderChanges).toEqual([{ leaderId: 1, epoch: 1 }])
    expect(node.propose([Buffer.from('x')], 1)).toEqual({ ok: true, baseOffset: 1n, lastOffset: 1n, epoch: 1 })
    expect(machine.records).toEqual([])
    settle(node, store, 1)
    expect(machine.records).toEqual([{ offset: 1n, value: 'x' }])
  })
})

describe('raft leader', () => {
  /** A Fetch from `replicaId` (an observer: not a voter) to leader 1 in `epoch`, from the log's start. */
  function observerFetch(replicaId: number, epoch: number): RaftEnvelope<FetchRequest> {
    return {
      source: replicaId,
      destination: 1,
      correlationId: 1,
      message: {
        type: 'FetchRequest',
        clusterId: 'test',
        replicaId,
        maxWaitMs: 0,
        maxBytes: 1 << 20,
        currentLeaderEpoch: epoch,
        fetchOffset: 0n,
        lastFetchedEpoch: -1,
        logStartOffset: 0n,
      },
    }
  }

  test('tracks an observer until it is silent for 300 s (Kafka\'s OBSERVER_SESSION_TIMEOUT_MS), and at most 1000 of them', () => {
    const store = new MemoryRaftStore()
    const node = startNode(1, [1], store, 0)
    settle(node, store, 0)
    expect(node.role).toBe('Leader')
    const fetchFrom = (replicaId: number, nowMs: number): void => {
      node.receive(observerFetch(replicaId, node.epoch), nowMs)
      const answer = settle(node, store, nowMs).find((envelope) => envelope.destination === replicaId)
      expect((answer?.message as FetchResponse).errorCode).toBe(0)
    }
    const observerIds = (nowMs: number): number[] => node.replicaStates(nowMs)!.observers.map((observer) => observer.replicaId)

    // 3000 made-up ids, one fetch each: every one is answered, the 1000 heard from last are tracked.
    for (let i = 0; i < 3000; i++) {
      fetchFrom(100 + i, 1000 + i)
      if (i % 500 === 499) expect(observerIds(1000 + i).length).toBe(Math.min(i + 1, 1000))
    }
    expect(observerIds(4000)).toEqual(Array.from({ length: 1000 }, (_, i) => 2100 + i))
    // One of the evicted fetches again: it is tracked anew, in place of the one heard from least recently.
    fetchFrom(100, 5000)
    expect(observerIds(5000)).toHaveLength(1000)
    expect(observerIds(5000)).not.toContain(2100)
    expect(node.replicaStates(5000)!.observers.at(-1)).toEqual({ replicaId: 100, endOffset: 0n, lastFetchMs: 5000 })

    // One keeps fetching; the others fall silent and are dropped 300 s after their last fetch.
    fetchFrom(3099, 200_000)
    // The first of them, 2101, fetched at 3001.
    node.tick(303_000)
    expect(observerIds(303_000)).toHaveLength(1000)
    node.tick(303_001)
    expect(observerIds(303_001)).toHaveLength(999)
    node.tick(304_000)
    expect(observerIds(304_000)).toEqual([100, 3099])
    node.tick(305_000)
    expect(observerIds(305_000)).toEqual([3099])
    node.tick(500_000)
    expect(observerIds(500_000)).toEqual([])
  })
})

describe('raft follower', () => {
  // Follower 5 of leader 1 in epoch 7. Its log: 0 LC(e3) | 1-2 e3 | 3-4 e3 | 5 LC(e5). The leader's: 0 LC(e3) |
  // 1-2 e3 | 3 LC(e4) | 4 LC(e7): it never had offsets 3-5 of this log.
  function follower(): { node: RaftNode; store: MemoryRaftStore } {
    const store = new MemoryRaftStore()
    store.writeSync([
      { type: 'election', election: { epoch: 7, leaderId: 1, votedId: null } },
      {
        type: 'append',
        batches: [leaderChange(0n, 3, 2), data(1n, 3, 'a', 'b'), data(3n, 3, 'c', 'd'), leaderChange(5n, 5, 5)],
      },
    ])
    const node = startNode(5, [1, 2, 3, 4, 5], store, 0)
    return { node, store }
  }

  function fetchSent(messages: RaftEnvelope[]): RaftEnvelope<FetchRequest> {
    const fetch = messages.find((envelope) => envelope.message.type === 'FetchRequest')
    expect(fetch).toBeDefined()
    return fetch as RaftEnvelope<FetchRequest>
  }

  function diverging(
    request: RaftEnvelope<FetchRequest>,
    epoch: number,
    endOffset: bigint,
  ): RaftEnvelope<FetchResponse> {
    return {
      source: 1,
      destination: 5,
      correlationId: request.correlationId,
      message: {
        type: 'FetchResponse',
        errorCode: 0,
        highWatermark: 3n,
        logStartOffset: 0n,
        divergingEpoch: { epoch, endOffset },
        snapshotId: null,
        currentLeader: { leaderId: 1, leaderEpoch: 7 },
        records: [],
      },
    }
  }

  test('truncates a divergent tail where the leader says, narrowing down epoch by epoch', () => {
    const { node, store } = follower()
    let fetch = fetchSent(settle(node, store, 0))
    expect(fetch.message).toMatchObject({ fetchOffset: 6n, lastFetchedEpoch: 5 })
    // The leader's last epoch up to 5 is 4, which ends at 4: inside this log's batch 3-4 of epoch 3, which it kept
    // longer. It cuts at the end of its own epoch 3 instead, then learns where epoch 3 ends at the leader.
    node.receive(diverging(fetch, 4, 4n), 10)
    fetch = fetchSent(settle(node, store, 10))
    expect(fetch.message).toMatchObject({ fetchOffset: 5n, lastFetchedEpoch: 3 })
    node.receive(diverging(fetch, 3, 3n), 20)
    fetch = fetchSent(settle(node, store, 20))
    expect(fetch.message).toMatchObject({ fetchOffset: 3n, lastFetchedEpoch: 3 })
    expect(store.loadSync().batches.map((batch) => batch.baseOffset)).toEqual([0n, 1n])
  })
})

describe('leader state', () => {
  // Three voters; the leader of epoch 3 starts its epoch at offset 5 (its leader-change batch).
  const leaderOfEpoch3 = (): LeaderState =>
    new LeaderState(1, 3, 5n, [1, 2], new Set([1, 2, 3]), 0, { checkQuorumMs: 3000, beginQuorumEpochMs: 1000 })

  test("an earlier epoch's entries on a majority are not committed until an entry of this epoch is (figure 8)", () => {
    const leader = leaderOfEpoch3()
    leader.updateReplicaEndOffset(2, 5n, 0)
    expect(leader.majorityEndOffset(6n)).toBeNull()
    leader.updateReplicaEndOffset(2, 6n, 0)
    expect(leader.majorityEndOffset(6n)).toBe(6n)
  })

  test('the leader counts only what it persisted, and a late duplicate fetch lowers nothing', () => {
    const leader = leaderOfEpoch3()
    leader.updateReplicaEndOffset(2, 7n, 0)
    expect(leader.majorityEndOffset(5n)).toBeNull()
    expect(leader.majorityEndOffset(7n)).toBe(7n)
    expect(leader.updateReplicaEndOffset(2, 6n, 0)).toBe(false)
    expect(leader.majorityEndOffset(7n)).toBe(7n)
  })

  test('check-quorum: the leader keeps its lease only while a majority fetches', () => {
    const leader = leaderOfEpoch3()
    leader.recordVoterFetch(2, 2000)
    expect(leader.hasCheckQuorumExpired(4999)).toBe(false)
    expect(leader.hasCheckQuorumExpired(5000)).toBe(true)
  })

  test('BeginQuorumEpoch goes to every voter at once, then every period to those that stopped fetching', () => {
    const leader = leaderOfEpoch3()
    expect(leader.takeVotersToAnnounceTo(0)).toEqual([2, 3])
    expect(leader.takeVotersToAnnounceTo(500)).toEqual([])
    leader.recordVoterFetch(2, 600)
    leader.recordVoterFetch(3, 900)
    expect(leader.takeVotersToAnnounceTo(1000)).toEqual([])
    leader.recordVoterFetch(2, 1500)
    expect(leader.takeVotersToAnnounceTo(2000)).toEqual([3])
  })
})

describe('raft log', () => {
  // offsets: 0 LC(e1) | 1-2 e1 | 3-4 e3 | 5 LC(e5)
  const log = (): RaftLog =>
    new RaftLog(null, [leaderChange(0n, 1, 1), data(1n, 1, 'a', 'b'), data(3n, 3, 'c', 'd'), leaderChange(5n, 5, 2)])

  test('end offsets by epoch, as OffsetsForLeaderEpoch answers them', () => {
    expect(log().endOffsetForEpoch(0)).toEqual({ epoch: -1, endOffset: 0n })
    expect(log().endOffsetForEpoch(1)).toEqual({ epoch: 1, endOffset: 3n })
    expect(log().endOffsetForEpoch(2)).toEqual({ epoch: 1, endOffset: 3n })
    expect(log().endOffsetForEpoch(3)).toEqual({ epoch: 3, endOffset: 5n })
    expect(log().endOffsetForEpoch(9)).toEqual({ epoch: 5, endOffset: 6n })
  })

  test("a fetcher's position is valid, diverging (truncate there) or below the log start (fetch the snapshot)", () => {
    expect(log().validateFetch(0n, -1)).toEqual({ kind: 'valid' })
    expect(log().validateFetch(3n, 1)).toEqual({ kind: 'valid' })
    expect(log().validateFetch(6n, 5)).toEqual({ kind: 'valid' })
    // It has epoch 2 entries the leader never had, or more of epoch 1 than the leader has.
    expect(log().validateFetch(4n, 2)).toEqual({ kind: 'diverging', epoch: 1, endOffset: 3n })
    expect(log().validateFetch(4n, 1)).toEqual({ kind: 'diverging', epoch: 1, endOffset: 3n })
    expect(log().validateFetch(7n, 5)).toEqual({ kind: 'diverging', epoch: 5, endOffset: 6n })

    const compacted = log()
    compacted.compactTo({ endOffset: 3n, epoch: 1, data: Buffer.from('state') })
    const snapshot = { kind: 'snapshot', snapshotId: { endOffset: 3n, epoch: 1 } }
    expect(compacted.validateFetch(2n, 1)).toEqual(snapshot)
    expect(compacted.validateFetch(3n, 0)).toEqual(snapshot)
    expect(compacted.validateFetch(3n, 1)).toEqual({ kind: 'valid' })
    expect(compacted.validateFetch(4n, 2)).toEqual({ kind: 'diverging', epoch: 1, endOffset: 3n })
  })

  test('reads whole batches: at least one, then as many as fit', () => {
    expect(
      log()
        .read(1n, 1)
        .map((batch) => batch.baseOffset),
    ).toEqual([1n])
    expect(
      log()
        .read(1n, 1000)
        .map((batch) => batch.baseOffset),
    ).toEqual([1n, 3n, 5n])
    expect(log().read(6n, 1000)).toEqual([])
  })

  test('truncation and compaction cut at batch boundaries only', () => {
    expect(() => log().truncateTo(2n)).toThrow(/batch boundary/)
    const truncated = log()
    truncated.truncateTo(3n)
    expect(truncated.endOffset).toBe(3n)
    expect(truncated.lastFetchedEpoch).toBe(1)
    expect(() => log().compactTo({ endOffset: 4n, epoch: 3, data: Buffer.alloc(0) })).toThrow(/batch boundary/)
  })
})
