/**
 * Directed checks of each replication rule on replicas driven by hand (bench.ts): the follower's caught-up time,
 * ISR shrink and expansion through AlterPartition with the maximal ISR, the high watermark (and a new leader's),
 * acks=all and min.insync.replicas, consumer reads up to the HW, truncation by divergingEpoch and by
 * OffsetForLeaderEpoch, and fencing of stale leader epochs.
 */
import { describe, expect, test } from 'vitest'
import { ErrorCode } from '../../../protocol/errors.js'
import type { ReplicationConfig } from '../../../broker/cluster/replication/config.js'
import type {
  PartitionState,
  ReplicaEnvelope,
  ReplicaFetchRequest,
  ReplicaFetchResponse,
} from '../../../broker/cluster/replication/messages.js'
import { Bench } from './bench.js'
import { ReplicationChecker, ReplicationViolation } from './checker.js'

function started(config: Partial<ReplicationConfig> = {}): Bench {
  const bench = new Bench([1, 2, 3], config)
  bench.publish()
  bench.deliver()
  return bench
}

function fetchFrom(replicaId: number, fetchOffset: bigint, options: { epoch?: number; lastFetchedEpoch?: number } = {}) {
  const message: ReplicaFetchRequest = {
    type: 'ReplicaFetchRequest',
    correlationId: 7,
    replicaId,
    currentLeaderEpoch: options.epoch ?? 0,
    fetchOffset,
    lastFetchedEpoch: options.lastFetchedEpoch ?? (fetchOffset === 0n ? -1 : 0),
    maxRecords: 100,
  }
  return { source: replicaId, destination: 1, message } satisfies ReplicaEnvelope
}

function responsesTo(bench: Bench, destination: number): ReplicaFetchResponse[] {
  return bench.queue.flatMap((envelope) =>
    envelope.destination === destination && envelope.message.type === 'ReplicaFetchResponse' ? [envelope.message] : [],
  )
}

describe('the leader tracks its followers', () => {
  test("a follower is caught up as of its fetch at the leader's LEO, or as of its previous fetch when it reaches the LEO of then", () => {
    const bench = new Bench([1, 2, 3])
    bench.publish([1])
    const follower = () => bench.replica(1).followerState(2)!
    bench.step(1, (r) => r.receive(fetchFrom(2, 0n), bench.now)) // leader LEO 0: caught up now
    expect(follower().lastCaughtUpTimeMs).toBe(1000)
    bench.now = 2000
    bench.produce(1, ['a'], { acks: 1 }) // leader LEO 1
    bench.now = 3000
    bench.step(1, (r) => r.receive(fetchFrom(2, 0n), bench.now)) // reached the LEO (0) of its previous fetch, at 1000
    expect(follower().lastCaughtUpTimeMs).toBe(1000)
    expect(follower().lastFetchLeaderLogEndOffset).toBe(1n)
    bench.now = 3500
    bench.produce(1, ['b'], { acks: 1 }) // leader LEO 2
    bench.now = 4000
    bench.step(1, (r) => r.receive(fetchFrom(2, 1n), bench.now)) // reached the LEO (1) of its previous fetch, at 3000
    expect(follower().lastCaughtUpTimeMs).toBe(3000)
    expect(follower().logEndOffset).toBe(1n)
    bench.now = 5000
    bench.step(1, (r) => r.receive(fetchFrom(2, 2n), bench.now)) // at the LEO: now
    expect(follower().lastCaughtUpTimeMs).toBe(5000)
  })

  test('the HW is the least LEO over the ISR, only moves forward, and reaches followers with their next fetch', () => {
    const bench = started()
    const request = bench.produce(1, ['a', 'b'], { acks: -1 })
    expect(bench.replica(1).highWatermark).toBe(0n)
    bench.deliver()
    expect(bench.results.get(request)).toEqual({ requestId: request, errorCode: ErrorCode.NONE, baseOffset: 0n })
    for (const id of [1, 2, 3]) expect(bench.replica(id).highWatermark).toBe(2n)
    // Follower 3 falls behind: the HW waits for it while it is in the ISR.
    bench.produce(1, ['c'], { acks: 1 })
    bench.deliver({ drop: (envelope) => envelope.source === 3 || envelope.destination === 3 })
    expect(bench.replica(1).highWatermark).toBe(2n)
    expect(bench.replica(2).logEndOffset).toBe(3n)
    expect(bench.replica(2).highWatermark).toBe(2n)
  })

  test("a new leader's HW waits until every ISR member has fetched in its epoch", () => {
    const bench = started()
    bench.produce(1, ['a'], { acks: -1 })
    bench.deliver()
    expect(bench.controller.moveLeader(2)).toBe(true)
    bench.publish()
    bench.produce(2, ['b'], { acks: 1 })
    // Only 3 fetches from the new leader: 1's fetches are lost.
    bench.deliver({ drop: (envelope) => envelope.source === 1 || envelope.destination === 1 })
    expect(bench.replica(3).logEndOffset).toBe(2n)
    expect(bench.replica(2).followerState(1)!.logEndOffset).toBe(-1n)
    expect(bench.replica(2).highWatermark).toBe(1n)
    bench.step(1, (r) => r.tick(bench.now + 30_000)) // 1's fetch timed out: it fetches again
    bench.deliver()
    expect(bench.replica(2).highWatermark).toBe(2n)
  })

  test('a leader re-elected after missing an epoch trusts no follower position from before it', () => {
    const bench = started()
    bench.produce(1, ['a'], { acks: -1 })
    bench.deliver()
    bench.produce(1, ['b'], { acks: 1 })
    bench.deliver({ drop: (envelope) => envelope.destination === 3 || envelope.source === 3 })
    expect(bench.replica(1).followerState(2)!.logEndOffset).toBe(2n)
    // Epoch 1, led by 3, which 1 never hears of: 2 truncates b away and takes c in its place.
    const replicas = [1, 2, 3]
    bench.controller.state = { leader: 3, leaderEpoch: 1, isr: [1, 2, 3], replicas, partitionEpoch: 1 }
    bench.publish([2, 3])
    bench.produce(3, ['c'], { acks: 1 })
    bench.deliver({ drop: (envelope) => envelope.destination === 1 })
    expect(bench.values(2)).toEqual(['e0:a', 'e1:c'])
    // Epoch 2, led by 1 again: 2's position of epoch 0 (2) no longer holds; the HW must not pass b on it.
    bench.controller.state = { leader: 1, leaderEpoch: 2, isr: [1, 2], replicas, partitionEpoch: 2 }
    bench.publish([1, 2])
    expect(bench.replica(1).followerState(2)!.logEndOffset).toBe(-1n)
    expect(bench.replica(1).highWatermark).toBe(1n)
    bench.deliver()
    expect(bench.values(2)).toEqual(['e0:a', 'e0:b'])
    expect(bench.replica(1).highWatermark).toBe(2n)
  })
})

describe('ISR changes through AlterPartition', () => {
  test('a follower not caught up for replica.lag.time.max.ms is proposed out; the ISR shrinks when the controller answers', () => {
    const bench = started({ minInsyncReplicas: 2 })
    bench.produce(1, ['a'], { acks: -1 })
    bench.deliver()
    bench.crash(3)
    const waiting = bench.produce(1, ['b'], { acks: -1, timeoutMs: 120_000 })
    bench.deliver()
    for (let i = 0; i < 3; i++) {
      // 15 s, 30 s after 3's last caught-up fetch: still in sync (Kafka's <=).
      expect(bench.alterRequests).toEqual([])
      bench.advance(15_000)
      bench.deliver()
    }
    expect(bench.alterRequests.map((entry) => entry.request.newIsr)).toEqual([[1, 2]])
    // Pending: the HW still counts 3 (the maximal ISR is the committed one), and no second change is proposed.
    expect(bench.replica(1).maximalIsr).toEqual([1, 2, 3])
    expect(bench.replica(1).highWatermark).toBe(1n)
    bench.advance(15_000)
    bench.deliver()
    expect(bench.alterRequests).toHaveLength(1)
    expect(bench.results.has(waiting)).toBe(false)
    bench.answerAlterPartitions()
    expect(bench.replica(1).state!.isr).toEqual([1, 2])
    expect(bench.replica(1).highWatermark).toBe(2n)
    expect(bench.results.get(waiting)!.errorCode).toBe(ErrorCode.NONE)
  })

  test('an AlterPartition left unanswered is sent again after the request timeout', () => {
    const bench = started({ requestTimeoutMs: 10_000, replicaLagTimeMaxMs: 20_000 })
    bench.crash(3) // its last fetch, held by the leader, still counts when answered at the first check
    bench.produce(1, ['a'], { acks: 1 }) // (a follower at the leader's LEO is in sync however long ago it fetched)
    for (let i = 0; i < 3; i++) {
      bench.advance(10_000)
      bench.deliver()
    }
    expect(bench.alterRequests.map((entry) => entry.request.newIsr)).toEqual([[1, 2]])
    bench.alterRequests = [] // lost
    bench.advance(10_000)
    expect(bench.alterRequests.map((entry) => entry.request.newIsr)).toEqual([[1, 2]])
    bench.answerAlterPartitions()
    expect(bench.replica(1).state!.isr).toEqual([1, 2])
    expect(bench.replica(1).isrChangePending).toBe(false)
  })

  test('a follower that reaches the HW and the start of the leader epoch is proposed in; the HW counts it while pending', () => {
    const bench = started()
    bench.crash(3)
    bench.controller.fence(3)
    bench.publish()
    bench.produce(1, ['a', 'b'], { acks: -1 })
    bench.deliver()
    expect(bench.replica(1).highWatermark).toBe(2n)
    bench.start(3)
    bench.controller.unfence(3)
    bench.publish()
    bench.deliver()
    expect(bench.replica(3).logEndOffset).toBe(2n)
    expect(bench.alterRequests.map((entry) => entry.request.newIsr)).toEqual([[1, 2, 3]])
    expect(bench.replica(1).maximalIsr).toEqual([1, 2, 3])
    // While the change is pending, 3 holds the HW back as if it were in the ISR already.
    bench.produce(1, ['c'], { acks: 1 })
    bench.deliver({ drop: (envelope) => envelope.source === 3 || envelope.destination === 3 })
    expect(bench.replica(2).logEndOffset).toBe(3n)
    expect(bench.replica(1).highWatermark).toBe(2n)
    bench.answerAlterPartitions()
    expect(bench.replica(1).state!.isr).toEqual([1, 2, 3])
    expect(bench.controller.state.isr).toEqual([1, 2, 3])
  })

  test('a refused change returns to the committed ISR; a stale one waits for newer metadata', () => {
    const bench = started()
    bench.crash(3)
    bench.controller.fence(3)
    bench.publish()
    bench.start(3)
    bench.publish([3])
    // The leader's metadata does not show 3 fenced yet: it proposes 3, which the controller refuses.
    bench.step(1, (r) => r.setIneligibleReplicas([], bench.now))
    bench.deliver()
    expect(bench.alterRequests.map((entry) => entry.request.newIsr)).toEqual([[1, 2, 3]])
    bench.answerAlterPartitions() // INELIGIBLE_REPLICA
    expect(bench.replica(1).isrChangePending).toBe(false)
    expect(bench.replica(1).maximalIsr).toEqual([1, 2])
    bench.controller.unfence(3)
    bench.publish([1])
    bench.advance(500) // 3's held fetch is answered, it fetches again, and is proposed again
    bench.deliver()
    expect(bench.alterRequests).toHaveLength(1)
    bench.controller.moveLeader(2) // the partition moved on meanwhile
    bench.answerAlterPartitions()
    expect(bench.replica(1).isrChangePending).toBe(true) // FENCED_LEADER_EPOCH: nothing is sent again
    bench.advance(30_000)
    expect(bench.alterRequests).toEqual([])
    bench.publish()
    expect(bench.replica(1).role).toBe('Follower')
  })
})

describe('acks and min.insync.replicas', () => {
  test('NOT_ENOUGH_REPLICAS before the append; NOT_ENOUGH_REPLICAS_AFTER_APPEND when the ISR shrinks below the minimum', () => {
    const bench = started({ minInsyncReplicas: 2 })
    bench.crash(2)
    bench.crash(3)
    const waiting = bench.produce(1, ['a'], { acks: -1, timeoutMs: 120_000 })
    expect(bench.replica(1).logEndOffset).toBe(1n)
    for (let i = 0; i < 3; i++) bench.advance(15_000)
    expect(bench.alterRequests.map((entry) => entry.request.newIsr)).toEqual([[1]])
    expect(bench.results.has(waiting)).toBe(false)
    bench.answerAlterPartitions()
    expect(bench.results.get(waiting)!.errorCode).toBe(ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND)
    expect(bench.replica(1).highWatermark).toBe(0n)
    const refused = bench.produce(1, ['b'], { acks: -1 })
    expect(bench.results.get(refused)!.errorCode).toBe(ErrorCode.NOT_ENOUGH_REPLICAS)
    expect(bench.replica(1).logEndOffset).toBe(1n)
    const single = bench.produce(1, ['c'], { acks: 1 })
    expect(bench.results.get(single)).toEqual({ requestId: single, errorCode: ErrorCode.NONE, baseOffset: 1n })
  })

  test('an acks=all produce the ISR does not reach in time gets REQUEST_TIMED_OUT', () => {
    const bench = started()
    bench.crash(3)
    const waiting = bench.produce(1, ['a'], { acks: -1, timeoutMs: 5000 })
    bench.deliver()
    bench.advance(4999)
    expect(bench.results.has(waiting)).toBe(false)
    bench.advance(1)
    expect(bench.results.get(waiting)!.errorCode).toBe(ErrorCode.REQUEST_TIMED_OUT)
  })

  test('a waiting produce fails with NOT_LEADER_OR_FOLLOWER when leadership moves; a produce to a follower too', () => {
    const bench = started()
    bench.crash(3)
    const waiting = bench.produce(1, ['a'], { acks: -1 })
    bench.controller.moveLeader(2)
    bench.publish([1, 2])
    expect(bench.results.get(waiting)!.errorCode).toBe(ErrorCode.NOT_LEADER_OR_FOLLOWER)
    const toFollower = bench.produce(1, ['b'], { acks: 1 })
    expect(bench.results.get(toFollower)!.errorCode).toBe(ErrorCode.NOT_LEADER_OR_FOLLOWER)
    const badAcks = bench.produce(2, ['c'], { acks: 2 })
    expect(bench.results.get(badAcks)!.errorCode).toBe(ErrorCode.INVALID_REQUIRED_ACKS)
  })

  test('consumers read up to the HW, from the leader only', () => {
    const bench = started()
    bench.produce(1, ['a'], { acks: 1 })
    const read = () => bench.replica(1).fetch({ fetchOffset: 0n, currentLeaderEpoch: 0, maxRecords: 10 })
    expect(read()).toEqual({ errorCode: ErrorCode.NONE, highWatermark: 0n, batches: [] })
    bench.deliver()
    expect(read().batches.map((batch) => batch.records.map(String))).toEqual([['a']])
    expect(bench.replica(2).fetch({ fetchOffset: 0n, currentLeaderEpoch: 0, maxRecords: 10 }).errorCode).toBe(
      ErrorCode.NOT_LEADER_OR_FOLLOWER,
    )
    expect(bench.replica(1).fetch({ fetchOffset: 5n, currentLeaderEpoch: 0, maxRecords: 10 }).errorCode).toBe(
      ErrorCode.OFFSET_OUT_OF_RANGE,
    )
    expect(bench.replica(1).fetch({ fetchOffset: 0n, currentLeaderEpoch: 1, maxRecords: 10 }).errorCode).toBe(
      ErrorCode.UNKNOWN_LEADER_EPOCH,
    )
  })
})

describe('a follower truncates to where its log leaves the leader', () => {
  for (const truncation of ['divergingEpoch', 'offsetForLeaderEpoch'] as const) {
    test(`a returning leader drops its unreplicated tail (${truncation})`, () => {
      const bench = started({ truncation })
      bench.produce(1, ['a'], { acks: -1 })
      bench.deliver()
      bench.produce(1, ['x'], { acks: 1 }) // acknowledged by 1 alone
      bench.crash(1)
      bench.controller.fence(1)
      bench.publish()
      bench.produce(2, ['b', 'c'], { acks: -1 })
      bench.deliver()
      bench.start(1)
      expect(bench.values(1)).toEqual(['e0:a', 'e0:x'])
      bench.controller.unfence(1)
      bench.publish()
      bench.deliver()
      expect(bench.values(1)).toEqual(['e0:a', 'e1:b', 'e1:c'])
      expect(bench.values(3)).toEqual(bench.values(1))
      bench.answerAlterPartitions()
      expect(bench.controller.state.isr).toEqual([2, 3, 1])
    })

    test(`truncation walks back through an epoch the leader never saw (${truncation})`, () => {
      const bench = new Bench([1, 2, 3], { truncation })
      const publish = (state: Omit<PartitionState, 'replicas'>, ids: number[]): void => {
        bench.controller.state = { ...state, replicas: [1, 2, 3] }
        bench.publish(ids)
      }
      publish({ leader: 1, leaderEpoch: 0, isr: [1, 2, 3], partitionEpoch: 0 }, [1, 2, 3])
      bench.deliver()
      bench.produce(1, ['a'], { acks: -1 })
      bench.deliver()
      // Epochs that 1 and 2 each lead without the other hearing of it.
      // (3 stays in each ISR and hears of none, so no HW moves past a.)
      publish({ leader: 2, leaderEpoch: 1, isr: [2, 3], partitionEpoch: 1 }, [2])
      bench.produce(2, ['p'], { acks: 1 })
      publish({ leader: 1, leaderEpoch: 2, isr: [1, 3], partitionEpoch: 2 }, [1])
      bench.produce(1, ['y'], { acks: 1 })
      publish({ leader: 2, leaderEpoch: 3, isr: [2, 3], partitionEpoch: 3 }, [2])
      bench.produce(2, ['q'], { acks: 1 })
      bench.queue = []
      expect(bench.values(1)).toEqual(['e0:a', 'e2:y'])
      expect(bench.replica(2).endOffsetForEpoch(2)).toEqual({ epoch: 1, endOffset: 2n })
      publish({ leader: 2, leaderEpoch: 3, isr: [2, 3], partitionEpoch: 4 }, [1, 3])
      bench.deliver()
      expect(bench.values(1)).toEqual(['e0:a', 'e1:p', 'e3:q'])
      expect(bench.values(3)).toEqual(bench.values(1))
    })
  }
})

describe('an unclean election', () => {
  test('a leader from outside the ISR makes followers give up records below their HW, as in Kafka', () => {
    const bench = started()
    bench.crash(3)
    bench.controller.fence(3)
    bench.publish()
    bench.produce(1, ['a', 'b'], { acks: -1 })
    bench.deliver()
    expect(bench.replica(1).highWatermark).toBe(2n)
    bench.crash(1)
    bench.crash(2)
    bench.start(3) // with an empty log
    // unclean.leader.election.enable: the only live replica leads, out of the ISR, and is the ISR alone.
    bench.controller.state = { ...bench.controller.state, leader: 3, leaderEpoch: 1, isr: [3], partitionEpoch: 9 }
    bench.publish([3])
    bench.produce(3, ['z'], { acks: 1 })
    bench.start(1)
    bench.publish([1])
    bench.deliver()
    expect(bench.values(1)).toEqual(['e1:z'])
    expect(bench.replica(1).highWatermark).toBe(1n)
    expect(bench.stores.get(1)!.highWatermark).toBe(1n)
  })
})

describe('stale leader epochs are fenced', () => {
  test('older partition states are ignored', () => {
    const bench = started()
    bench.controller.moveLeader(2)
    bench.publish()
    const stale: PartitionState = { leader: 1, leaderEpoch: 0, isr: [1, 2, 3], replicas: [1, 2, 3], partitionEpoch: 0 }
    expect(bench.step(1, (r) => r.applyPartitionState(stale, bench.now))).toBe(false)
    const sameEpochOlder = { ...bench.controller.state, isr: [2], partitionEpoch: 0 }
    expect(bench.step(1, (r) => r.applyPartitionState(sameEpochOlder, bench.now))).toBe(false)
    expect(bench.replica(1).role).toBe('Follower')
  })

  test('a fetch in an older epoch gets FENCED_LEADER_EPOCH, in a newer one UNKNOWN_LEADER_EPOCH, from a follower NOT_LEADER_OR_FOLLOWER', () => {
    const bench = started()
    bench.queue = []
    bench.step(1, (r) => r.receive(fetchFrom(2, 0n, { epoch: 1 }), bench.now))
    expect(responsesTo(bench, 2).map((r) => r.errorCode)).toEqual([ErrorCode.UNKNOWN_LEADER_EPOCH])
    bench.controller.moveLeader(1 === bench.controller.state.leader ? 2 : 1)
    bench.controller.moveLeader(1)
    bench.publish([1])
    bench.queue = []
    bench.step(1, (r) => r.receive(fetchFrom(2, 0n, { epoch: 0 }), bench.now))
    expect(responsesTo(bench, 2).map((r) => r.errorCode)).toEqual([ErrorCode.FENCED_LEADER_EPOCH])
    bench.queue = []
    const toFollower = { ...fetchFrom(3, 0n, { epoch: 0 }), destination: 2 }
    bench.step(2, (r) => r.receive(toFollower, bench.now))
    expect(responsesTo(bench, 3).map((r) => r.errorCode)).toEqual([ErrorCode.NOT_LEADER_OR_FOLLOWER])
    expect(bench.replica(1).offsetForLeaderEpoch(0, 0).errorCode).toBe(ErrorCode.FENCED_LEADER_EPOCH)
  })

  test('a fenced follower stops fetching until newer metadata reaches it; a leader behind it is retried', () => {
    const bench = started()
    bench.controller.moveLeader(2)
    bench.controller.moveLeader(1)
    bench.publish([1])
    bench.advance(500) // held fetches of epoch 0 are answered: FENCED_LEADER_EPOCH
    bench.deliver()
    expect(bench.replica(3).nextDeadlineMs()).toBe(Infinity)
    bench.publish([3])
    bench.deliver()
    expect(bench.replica(1).followerState(3)!.logEndOffset).toBe(0n)
    // 2 learns of a newer epoch before its leader does: UNKNOWN_LEADER_EPOCH, retried after the backoff.
    bench.controller.moveLeader(2)
    bench.controller.moveLeader(1)
    bench.publish([2])
    bench.deliver()
    expect(bench.replica(2).nextDeadlineMs()).toBe(bench.now + 1000)
    bench.publish([1, 3])
    bench.advance(1000)
    bench.deliver()
    expect(bench.replica(1).followerState(2)!.logEndOffset).toBe(0n)
  })
})

describe('acks=1 can lose acknowledged records', () => {
  test('a record acknowledged by the leader alone is gone after failover, and the checker would call it lost', () => {
    const bench = started()
    bench.produce(1, ['a'], { acks: -1 })
    bench.deliver()
    const single = bench.produce(1, ['x'], { acks: 1 })
    expect(bench.results.get(single)!.errorCode).toBe(ErrorCode.NONE)
    bench.queue = [] // the fetch responses carrying x are lost with the leader
    bench.crash(1)
    bench.controller.fence(1)
    bench.publish()
    bench.produce(2, ['b'], { acks: -1 })
    bench.deliver()
    bench.start(1)
    bench.controller.unfence(1)
    bench.publish([1])
    bench.deliver()
    expect(bench.values(1)).toEqual(['e0:a', 'e1:b'])
    // Had x been acknowledged with acks=all, the checker would report it lost.
    const checker = new ReplicationChecker()
    checker.acknowledge(0n, ['a'], 0, 0)
    checker.acknowledge(1n, ['x'], 0, 0)
    expect(() => checker.checkHoldsAcknowledged(2, bench.replica(2).batches())).toThrow(ReplicationViolation)
    expect(() => checker.checkHoldsAcknowledged(2, bench.replica(2).batches())).toThrow(/e0:x at offset 1/)
  })
})
