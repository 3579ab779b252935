/**
 * Targeted scenarios on the simulated cluster (fixed seeds, the checker watching every step): a returning
 * partitioned leader or follower does not disrupt the quorum, a divergent tail is truncated, a node far behind
 * catches up by snapshot, and nodes restart from state persisted in LevelDB.
 */
import { afterEach, describe, expect, test } from 'vitest'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Level } from 'level'
import type { RaftNode } from '../../../broker/cluster/raft/node.js'
import { LevelRaftStore } from '../../../storage/raft-level-store.js'
import { SimCluster } from './sim-cluster.js'

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
