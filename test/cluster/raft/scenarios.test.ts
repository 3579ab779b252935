/**
 * Targeted scenarios on the simulated cluster (fixed seeds, the checker watching every step): a returning
 * partitioned leader or follower does not disrupt the quorum, a divergent tail is truncated, a node far behind
 * catches up by snapshot, a resigning leader hands over before any fetch timeout (KIP-595's EndQuorumEpoch, with
 * KIP-996's pre-vote), and nodes restart from state persisted in LevelDB.
 */
import { afterEach, describe, expect, test } from 'vitest'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Level } from 'level'
import type { RaftNode } from '../../../broker/cluster/raft/node.js'
import { LevelRaftStore } from '../../../storage/raft-level-store.js'
import { ErrorCode } from '../../../protocol/errors.js'
import { SIM_RAFT_CONFIG, SimCluster } from './sim-cluster.js'

const VOTERS = [1, 2, 3]

/** The leader among `ids` (the newest epoch if several claim it), once one is elected. */
async function leaderAmong(cluster: SimCluster, ids: readonly number[]): Promise<RaftNode> {
  const find = (): RaftNode | undefined => cluster.leaders().find((leader) => ids.includes(leader.nodeId))
  expect(await cluster.runUntil(() => find() !== undefined, 5_000), `a leader among ${ids}`).toBe(true)
  return find()!
}

/** Proposes `values` on the leader and runs until every node of `ids` applied them. */
async function commit(cluster: SimCluster, leader: RaftNode, values: string[], ids: readonly number[]): Promise<void> {
  const result = await cluster.propose(leader.nodeId, values)
  expect(result?.ok).toBe(true)
  const applied = (): boolean => ids.every((id) => values.every((value) => cluster.node(id).machine?.has(value)))
  expect(await cluster.runUntil(applied, 5_000), `${values} applied on ${ids}`).toBe(true)
}

function values(cluster: SimCluster, id: number): string[] {
  return cluster.node(id).machine!.records.map((record) => record.value)
}

describe('raft scenarios', () => {
  test('a leader cut off from the quorum resigns, and coming back does not disrupt the new leader', async () => {
    const cluster = await SimCluster.start({ voters: VOTERS, seed: 11 })
    const old = await leaderAmong(cluster, VOTERS)
    await commit(cluster, old, ['a'], VOTERS)
    const others = VOTERS.filter((id) => id !== old.nodeId)
    cluster.network.partition([[old.nodeId], others])

    const leader = await leaderAmong(cluster, others)
    await commit(cluster, leader, ['b'], others)
    // Long enough for many elections: the cut-off node would have raised its epoch each time without pre-vote.
    await cluster.run(3_000)
    expect(old.role).not.toBe('Leader')
    expect(old.epoch).toBeLessThanOrEqual(leader.epoch)

    const elections = cluster.checker.leaders.size
    cluster.network.heal()
    await cluster.run(2_000)
    expect(leader.role).toBe('Leader')
    expect(cluster.checker.leaders.size).toBe(elections)
    expect(old.role).toBe('Follower')
    expect(old.leaderId).toBe(leader.nodeId)
    expect(old.epoch).toBe(leader.epoch)
    expect(values(cluster, old.nodeId)).toEqual(['a', 'b'])
    cluster.checkAll({ final: true })
  })

  test('a follower cut off for many election timeouts rejoins without an election', async () => {
    const cluster = await SimCluster.start({ voters: [1, 2, 3, 4, 5], seed: 12 })
    const leader = await leaderAmong(cluster, [1, 2, 3, 4, 5])
    const follower = cluster.raft([1, 2, 3, 4, 5].find((id) => id !== leader.nodeId)!)
    // Cut off with a log as up to date as anyone's: only the pre-vote rule keeps it from winning an election.
    await commit(cluster, leader, ['before'], [1, 2, 3, 4, 5])
    expect(await cluster.runUntil(() => follower.highWatermark === leader.logEndOffset, 1_000)).toBe(true)
    const epoch = leader.epoch
    const elections = cluster.checker.leaders.size
    cluster.network.partition([[follower.nodeId], [1, 2, 3, 4, 5].filter((id) => id !== follower.nodeId)])
    await cluster.run(3_000)
    // It kept asking for pre-votes, which change no epoch. Heal while it asks: its up-to-date log would win votes.
    expect(await cluster.runUntil(() => follower.role === 'Prospective', 1_000)).toBe(true)
    expect(follower.epoch).toBe(epoch)

    cluster.network.heal()
    await cluster.run(1_000)
    expect(leader.role).toBe('Leader')
    expect(leader.epoch).toBe(epoch)
    expect(follower.role).toBe('Follower')
    expect(cluster.checker.leaders.size).toBe(elections)
    await commit(cluster, leader, ['after'], [1, 2, 3, 4, 5])
    cluster.checkAll({ final: true })
  })

  test('a leader cut off with entries it could not commit truncates them when it comes back', async () => {
    const cluster = await SimCluster.start({ voters: VOTERS, seed: 13 })
    const old = await leaderAmong(cluster, VOTERS)
    await commit(cluster, old, ['a'], VOTERS)
    const others = VOTERS.filter((id) => id !== old.nodeId)
    cluster.network.partition([[old.nodeId], others])
    expect((await cluster.propose(old.nodeId, ['lost-1']))?.ok).toBe(true)
    expect((await cluster.propose(old.nodeId, ['lost-2', 'lost-3']))?.ok).toBe(true)
    const divergentEnd = old.logEndOffset

    const leader = await leaderAmong(cluster, others)
    await commit(cluster, leader, ['b'], others)
    await commit(cluster, leader, ['c'], others)
    cluster.network.heal()
    await commit(cluster, leader, ['d'], VOTERS)

    expect(cluster.delivered.get('divergingEpoch') ?? 0).toBeGreaterThan(0)
    expect(values(cluster, old.nodeId)).toEqual(['a', 'b', 'c', 'd'])
    const records = old.entries().flatMap((batch) => (batch.type === 'data' ? batch.records.map(String) : []))
    expect(records.filter((value) => value.startsWith('lost'))).toEqual([])
    expect(old.logEndOffset).toBe(leader.logEndOffset)
    expect(divergentEnd).toBeGreaterThan(0n)
    cluster.checkAll({ final: true })
  })

  test('a node far behind catches up by fetching a snapshot', async () => {
    const cluster = await SimCluster.start({
      voters: VOTERS,
      seed: 14,
      config: { maxBytesBetweenSnapshots: 40, fetchMaxBytes: 100 },
    })
    const leader = await leaderAmong(cluster, VOTERS)
    const lagging = VOTERS.find((id) => id !== leader.nodeId)!
    await commit(cluster, leader, ['first'], VOTERS)
    const endBeforeCrash = cluster.raft(lagging).logEndOffset
    cluster.crash(lagging)

    const up = VOTERS.filter((id) => id !== lagging)
    for (let i = 0; i < 40; i++) await commit(cluster, leader, [`value-${i}`], up)
    expect(leader.logStartOffset).toBeGreaterThan(endBeforeCrash)

    await cluster.restart(lagging)
    await commit(cluster, leader, ['last'], VOTERS)
    expect(cluster.delivered.get('snapshotId') ?? 0).toBeGreaterThan(0)
    expect(cluster.delivered.get('FetchSnapshotResponse') ?? 0).toBeGreaterThan(1)
    expect(cluster.node(lagging).machine!.restores).toBeGreaterThan(0)
    expect(values(cluster, lagging)).toEqual(values(cluster, leader.nodeId))
    cluster.checkAll({ final: true })
  })

  test("a leader stopped for a while, needed for the majority, resigns on its return: its successor dates it from then", async () => {
    const cluster = await SimCluster.start({ voters: VOTERS, seed: 21 })
    const old = await leaderAmong(cluster, VOTERS)
    await commit(cluster, old, ['a'], VOTERS)
    const [successor, down] = VOTERS.filter((id) => id !== old.nodeId)
    cluster.crash(down!)
    // Stopped far longer than a fetch timeout: no majority elects anyone without it. Cut off from the successor until
    // just after its return, so that its first act is its own check of the quorum (as when a stopped process's timers
    // fire before it reads its sockets): it resigns.
    cluster.network.partition([[old.nodeId], [successor!]])
    await cluster.run(20) // what was on its way arrives
    cluster.pause(old.nodeId)
    await cluster.run(30_000)
    expect(cluster.leaders()).toEqual([])
    const resumedAt = cluster.now
    await cluster.resume(old.nodeId)
    expect(old.role).toBe('Resigned')
    cluster.network.heal()

    const next = await leaderAmong(cluster, [successor!])
    // Its state machine hears of its leadership once it applied all before its epoch.
    const changes = cluster.node(successor!).machine!.leaderChanges
    expect(await cluster.runUntil(() => changes.at(-1)?.leaderId === successor, 5_000)).toBe(true)
    const change = changes.at(-1)!
    expect(change).toMatchObject({ leaderId: successor, epoch: next.epoch, predecessor: { leaderId: old.nodeId } })
    // Its resignation and its vote came after the pause: the successor dates it from them, not from its last fetch
    // answer before the pause.
    expect(change.predecessor!.lastHeardMs).toBeGreaterThanOrEqual(resumedAt)
    await commit(cluster, next, ['b'], [old.nodeId, successor!])
    cluster.checkAll({ final: true })
  })

  describe('a leader that resigns (a clean stop)', () => {
    // Without EndQuorumEpoch no follower would ask for a vote before its fetch timeout: an election within it is
    // the resignation's doing. Time here is simulated, so the bound is exact.
    const { fetchTimeoutMs } = SIM_RAFT_CONFIG

    /** A leader of VOTERS with 'a' applied everywhere, and the other voters, first preferred successor first. */
    async function resignable(seed: number): Promise<{ cluster: SimCluster; old: RaftNode; first: number; second: number }> {
      const cluster = await SimCluster.start({ voters: VOTERS, seed })
      const old = await leaderAmong(cluster, VOTERS)
      await commit(cluster, old, ['a'], VOTERS)
      // Both followers hold the whole log once they fetched past 'a': the tie goes to the lower id.
      await cluster.run(100)
      const [first, second] = VOTERS.filter((id) => id !== old.nodeId)
      return { cluster, old, first: first!, second: second! }
    }

    /** Runs until a leader of a later epoch than `epoch` is elected, at most a fetch timeout; returns it. */
    async function successorOf(cluster: SimCluster, epoch: number): Promise<RaftNode> {
      const find = (): RaftNode | undefined => cluster.leaders().find((leader) => leader.epoch > epoch)
      expect(await cluster.runUntil(() => find() !== undefined, fetchTimeoutMs!), 'a leader within a fetch timeout').toBe(true)
      return find()!
    }

    test('refuses proposals and hands over to its most caught-up voter at once', async () => {
      const { cluster, old, first } = await resignable(16)
      const epoch = old.epoch
      await cluster.resign(old.nodeId)
      expect(old.role).toBe('Resigned')
      const refused = await cluster.propose(old.nodeId, ['refused'])
      expect(refused).toMatchObject({ ok: false, errorCode: ErrorCode.NOT_LEADER_OR_FOLLOWER, epoch })

      const next = await successorOf(cluster, epoch)
      expect(next.nodeId).toBe(first)
      expect(next.epoch).toBe(epoch + 1)
      // The resigned node follows its successor and keeps every entry.
      await commit(cluster, next, ['b'], VOTERS)
      expect(old.role).toBe('Follower')
      expect(old.leaderId).toBe(first)
      for (const id of VOTERS) expect(values(cluster, id)).toEqual(['a', 'b'])
      cluster.checkAll({ final: true })
    })

    test('a voter told by EndQuorumEpoch grants the successor its pre-vote though it fetched from the leader until then', async () => {
      const { cluster, old, first, second } = await resignable(17)
      const epoch = old.epoch
      await cluster.resign(old.nodeId)
      // Gone as soon as both followers were told: the first successor needs the second's pre-vote and vote. The
      // second still has a fetch from the leader this epoch; refusing the pre-vote for it would leave the first to
      // lose its round and the second to win once its own backoff ran out.
      const told = (): boolean => (cluster.delivered.get('EndQuorumEpochRequest') ?? 0) >= 2
      expect(await cluster.runUntil(told, fetchTimeoutMs!)).toBe(true)
      cluster.crash(old.nodeId)
      expect(cluster.raft(second).role).toBe('Follower')

      const next = await successorOf(cluster, epoch)
      expect(next.nodeId).toBe(first)
      expect(next.epoch).toBe(epoch + 1)
      await commit(cluster, next, ['b'], [first, second])
      cluster.checkAll({ final: true })
    })

    test('with its EndQuorumEpoch lost to one voter, its own pre-vote and vote elect the successor, and then it stops', async () => {
      const { cluster, old, first, second } = await resignable(18)
      const epoch = old.epoch
      cluster.network.block(old.nodeId, second)
      await cluster.resign(old.nodeId)
      // The second voter still takes the old leader as alive and refuses pre-votes (KIP-996) until its fetch timeout;
      // the resigned leader grants them, and its vote in the new epoch, to the up-to-date first successor.
      const next = await successorOf(cluster, epoch)
      expect(next.nodeId).toBe(first)
      expect(await cluster.runUntil(() => old.epoch > epoch && old.leaderId === first, fetchTimeoutMs!)).toBe(true)
      cluster.crash(old.nodeId)
      cluster.network.heal()
      await commit(cluster, next, ['b'], [first, second])
      expect(cluster.raft(second).leaderId).toBe(first)
      cluster.checkAll({ final: true })
    })
  })

  describe('on LevelDB', () => {
    const dbs = new Map<number, Level<Buffer, Buffer>>()
    const dirs = new Map<number, string>()
    afterEach(async () => {
      for (const db of dbs.values()) await db.close()
      for (const dir of dirs.values()) await rm(dir, { recursive: true, force: true })
      dbs.clear()
      dirs.clear()
    })

    /** Opens (or reopens) node `id`'s database and a store on its 'raft' sublevel. */
    async function levelStore(id: number): Promise<LevelRaftStore> {
      await dbs.get(id)?.close()
      if (!dirs.has(id)) dirs.set(id, await mkdtemp(join(tmpdir(), `brook-raft-node-${id}-`)))
      const db = new Level<Buffer, Buffer>(dirs.get(id)!, { keyEncoding: 'buffer', valueEncoding: 'buffer' })
      await db.open()
      dbs.set(id, db)
      return new LevelRaftStore(db.sublevel<Buffer, Buffer>('raft', { keyEncoding: 'buffer', valueEncoding: 'buffer' }))
    }

    test('crashed nodes restart from what they persisted: a follower rejoins, a leader comes back', async () => {
      const stores = new Map<number, LevelRaftStore>()
      for (const id of VOTERS) stores.set(id, await levelStore(id))
      const cluster = await SimCluster.start({
        voters: VOTERS,
        seed: 15,
        store: (id) => stores.get(id)!,
        config: { maxBytesBetweenSnapshots: 3 },
      })
      const leader = await leaderAmong(cluster, VOTERS)
      for (const value of ['a', 'b', 'c', 'd', 'e', 'f']) await commit(cluster, leader, [value], VOTERS)

      const followerId = VOTERS.find((id) => id !== leader.nodeId)!
      const before = cluster.raft(followerId)
      const { epoch, logEndOffset, logStartOffset, votedId } = before
      cluster.crash(followerId)
      await cluster.restart(followerId, { store: await levelStore(followerId) })
      const restarted = cluster.raft(followerId)
      expect(restarted).not.toBe(before)
      expect({
        epoch: restarted.epoch,
        logEndOffset: restarted.logEndOffset,
        logStartOffset: restarted.logStartOffset,
        votedId: restarted.votedId,
      }).toEqual({ epoch, logEndOffset, logStartOffset, votedId })
      expect(restarted.role).toBe('Follower')
      expect(logStartOffset).toBeGreaterThan(0n)
      await commit(cluster, leader, ['g'], VOTERS)
      expect(values(cluster, followerId)).toEqual(['a', 'b', 'c', 'd', 'e', 'f', 'g'])

      const leaderEpoch = leader.epoch
      cluster.crash(leader.nodeId)
      await cluster.restart(leader.nodeId, { store: await levelStore(leader.nodeId) })
      // A restarted leader neither leads nor votes again in its epoch.
      expect(cluster.raft(leader.nodeId).role).toBe('Resigned')
      expect(cluster.raft(leader.nodeId).epoch).toBe(leaderEpoch)
      const next = await leaderAmong(cluster, VOTERS)
      expect(next.epoch).toBeGreaterThan(leaderEpoch)
      await commit(cluster, next, ['h'], VOTERS)
      for (const id of VOTERS) expect(values(cluster, id)).toEqual(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'])
      cluster.checkAll({ final: true })
    })
  })
})
