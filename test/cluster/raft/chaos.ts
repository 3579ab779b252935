/**
 * One seeded simulation run: a random quorum (1, 3 or 5 voters, maybe an observer) under a random fault schedule,
 * then a healed network and a liveness check. Everything random comes from the seed, so a seed replays exactly.
 *
 *   0 ────────── chaos (2-5 s simulated) ──────────> majority ──── liveness ────> heal ──── liveness ────> checks
 *      proposals every 5-80 ms to any node that     links cleared,  the majority     the rest    a new entry on
 *      claims to lead (stale leaders included); a   nodes back up,  elects a leader  back       every node
 *      fault every 100-600 ms: partitions (halves,  but a minority  and commits a
 *      one node cut off, one-way cuts, a bridge     still cut off   new entry
 *      node), lossy/duplicating/reordering links,   or down
 *      crashes (of any node or the leader, also
 *      between drain and write), restarts, bounces  Each liveness phase has LIVENESS_BOUND_MS of simulated time.
 *      (down and back within 60 ms), pauses of
 *      50-1500 ms, a leader resigning (half the time
 *      to stop: down once it knows its successor);
 *      crash points inside steps in some runs
 */
import type { RaftNode } from '../../../broker/cluster/raft/node.js'
import { SimCluster } from './sim-cluster.js'
import { RELIABLE_LINKS } from './sim/network.js'
import { Random } from './sim/random.js'

/** How long after healing a leader must be elected and a new entry applied on the connected nodes. */
export const LIVENESS_BOUND_MS = 10_000

export class LivenessFailure extends Error {
  override readonly name = 'LivenessFailure'
}

export interface RunSummary {
  readonly seed: number
  readonly voters: number
  readonly observers: number
  /** Simulated ms from a majority being connected until a new entry was applied on all of it. */
  readonly majorityRecoveryMs: number
  /** Simulated ms from healing until a new entry was applied on every node. */
  readonly recoveryMs: number
  readonly committedBatches: number
  readonly leaders: number
  readonly messages: number
  readonly snapshotFetches: number
}

export interface RunOptions {
  /** Trace every message (for replaying one seed). */
  traceMessages?: boolean
}

/**
 * Runs seed `seed`; throws a SafetyViolation, a LivenessFailure, or an error the core threw on one of its own
 * invariants, each with the cluster's last events attached as `trace`.
 */
export async function runSeed(seed: number, options: RunOptions = {}): Promise<RunSummary> {
  const random = new Random(seed)
  const voterCount = random.pick([1, 3, 3, 3, 5, 5])
  const voters = Array.from({ length: voterCount }, (_, i) => i + 1)
  const observers = random.chance(0.3) ? [voterCount + 1] : []
  const cluster = await SimCluster.start({
    voters,
    observers,
    seed: random.int(0, 2 ** 31),
    // 64 bytes is less than any batch: each fetch response then carries exactly one.
    config: { maxBytesBetweenSnapshots: random.int(20, 400), fetchMaxBytes: random.pick([64, 256, 4096]) },
    traceMessages: options.traceMessages ?? false,
  })
  try {
    return await chaos(cluster, random, seed, voters, observers)
  } catch (error) {
    if (error instanceof Error) Object.assign(error, { trace: cluster.trace.slice(-120) })
    throw error
  }
}

async function chaos(
  cluster: SimCluster,
  random: Random,
  seed: number,
  voters: number[],
  observers: number[],
): Promise<RunSummary> {
  const ids = [...voters, ...observers]
  const chaosMs = random.int(2000, 5000)
  cluster.crashPointRate = random.pick([0, 0.0005, 0.002, 0.005])
  let proposals = 0
  const propose = async (): Promise<void> => {
    const leaders = cluster.leaders()
    if (leaders.length === 0) return
    const values = Array.from({ length: random.int(1, 3) }, () => `v${++proposals}`)
    await cluster.propose(random.pick(leaders).nodeId, values)
  }

  for (let at = random.int(5, 80); at < chaosMs; at += random.int(5, 80)) cluster.scheduler.at(at, propose)
  for (let at = random.int(100, 600); at < chaosMs; at += random.int(100, 600)) {
    cluster.scheduler.at(at, () => fault(cluster, random, ids, chaosMs))
  }
  await cluster.run(chaosMs)

  // A majority connected (a minority still cut off or down) must elect a leader and commit on its own.
  cluster.crashPointRate = 0
  cluster.network.heal()
  cluster.network.faults = { ...RELIABLE_LINKS, maxDelayMs: 10 }
  for (const id of ids) {
    const node = cluster.node(id)
    node.crashOnNextWrite = false
    if (node.paused) await cluster.resume(id)
    if (!node.alive) await cluster.restart(id)
  }
  const minority = random.shuffle(voters).slice(0, random.int(0, Math.floor((voters.length - 1) / 2)))
  const majority = ids.filter((id) => !minority.includes(id))
  for (const id of minority) {
    if (random.chance(0.5)) cluster.crash(id)
    else cluster.network.partition([[id], ids.filter((other) => other !== id)])
  }
  cluster.note(`majority ${JSON.stringify(majority)} connected, ${JSON.stringify(minority)} cut off`)
  const majorityRecoveryMs = await commitMarker(cluster, `majority-${seed}`, majority)

  cluster.note('heal')
  cluster.network.heal()
  for (const id of minority) await cluster.restart(id)
  const recoveryMs = await commitMarker(cluster, `marker-${seed}`, ids)
  // Let the last responses land, then check the logs and every state machine against the history.
  await cluster.run(100)
  cluster.checkAll({ final: true })
  return {
    seed,
    voters: voters.length,
    observers: observers.length,
    majorityRecoveryMs,
    recoveryMs,
    committedBatches: cluster.checker.committedBatches,
    leaders: cluster.checker.leaders.size,
    messages: cluster.network.stats.sent,
    snapshotFetches: cluster.delivered.get('FetchSnapshotRequest') ?? 0,
  }
}

/**
 * Proposes `marker` to the leader until every node of `ids` applied it, as a client would (again with each new
 * leader: the entry may be lost with the previous one); returns the simulated ms it took, or throws LivenessFailure.
 */
async function commitMarker(cluster: SimCluster, marker: string, ids: readonly number[]): Promise<number> {
  const start = cluster.now
  const proposedIn = new Set<string>()
  const applied = (): boolean => ids.every((id) => cluster.node(id).machine?.has(marker) ?? false)
  const retry = async (): Promise<void> => {
    if (applied()) return
    const leader = cluster.leaders().find((node) => ids.includes(node.nodeId))
    if (leader && !proposedIn.has(`${leader.nodeId}:${leader.epoch}`)) {
      proposedIn.add(`${leader.nodeId}:${leader.epoch}`)
      await cluster.propose(leader.nodeId, [marker])
    }
    cluster.scheduler.after(20, retry)
  }
  cluster.scheduler.after(0, retry)
  if (!(await cluster.runUntil(applied, LIVENESS_BOUND_MS))) {
    const states = [...cluster.nodes.values()].map(
      (node) => `n${node.id}: ${node.raft ? cluster.describe(node.raft) : 'down'}`,
    )
    throw new LivenessFailure(
      `${marker} not applied on ${JSON.stringify(ids)} within ${LIVENESS_BOUND_MS} ms\n${states.join('\n')}`,
    )
  }
  return cluster.now - start
}

/** One random fault; a clean stop it starts ends by `chaosEndMs`, before the liveness phases set the nodes up. */
async function fault(cluster: SimCluster, random: Random, ids: number[], chaosEndMs: number): Promise<void> {
  const network = cluster.network
  const shuffled = random.shuffle(ids)
  switch (random.int(0, 12)) {
    case 0: {
      const cut = random.int(1, ids.length - 1)
      network.partition([shuffled.slice(0, cut), shuffled.slice(cut)])
      cluster.note(`partition ${JSON.stringify([shuffled.slice(0, cut), shuffled.slice(cut)])}`)
      return
    }
    case 1: {
      const [alone, ...rest] = shuffled
      network.partition([[alone!], rest])
      cluster.note(`isolate n${alone}`)
      return
    }
    case 2: {
      // One-way: `from` can no longer reach some nodes, which still reach it.
      const [from, ...rest] = shuffled
      for (const to of rest) if (random.chance(0.6)) network.block(from!, to)
      cluster.note(`one-way cut from n${from}`)
      return
    }
    case 3: {
      if (ids.length < 3) return
      // A bridge: two sides that only the bridge node hears.
      const [bridge, ...rest] = shuffled
      const half = Math.floor(rest.length / 2)
      network.partition([rest.slice(0, half), rest.slice(half)])
      cluster.note(
        `bridge n${bridge} between ${JSON.stringify(rest.slice(0, half))} and ${JSON.stringify(rest.slice(half))}`,
      )
      return
    }
    case 4:
      network.heal()
      cluster.note('links restored')
      return
    case 5: {
      const maxDelayMs = random.pick([5, 20, 80])
      network.faults = {
        lossRate: random.pick([0, 0.05, 0.2]),
        duplicateRate: random.pick([0, 0.05, 0.1]),
        minDelayMs: 1,
        maxDelayMs,
      }
      cluster.note(`links ${JSON.stringify(network.faults)}`)
      return
    }
    case 6:
    case 7: {
      const target = random.chance(0.5) ? (cluster.leaders()[0]?.nodeId ?? random.pick(ids)) : random.pick(ids)
      cluster.crash(target, { duringWrite: random.chance(0.4) })
      return
    }
    case 8: {
      const down = ids.filter((id) => !cluster.node(id).alive)
      if (down.length > 0) await cluster.restart(random.pick(down))
      return
    }
    case 9: {
      const id = random.pick(ids)
      cluster.pause(id)
      cluster.scheduler.after(random.int(50, 1500), () => cluster.resume(id))
      return
    }
    case 10: {
      const leader = cluster.leaders()[0]
      if (!leader) return
      await cluster.resign(leader.nodeId)
      // Half the time a clean stop, as a node stops: it goes down once it knows a leader of a later epoch, or after an
      // election timeout (QuorumRunner.resign), whatever the network is doing meanwhile.
      if (random.chance(0.5)) stopOnceHandedOver(cluster, leader, chaosEndMs)
      return
    }
    case 11:
    case 12: {
      // A bounce: down and straight back up, so what it promised before the crash is tested against what it does now.
      cluster.bounce(random.pick(ids))
      return
    }
  }
}

/**
 * Crashes `resigned`'s node once it knows a leader of a later epoch or an election timeout has passed (not after
 * `chaosEndMs`: then it just lives on, resigned).
 */
function stopOnceHandedOver(cluster: SimCluster, resigned: RaftNode, chaosEndMs: number): void {
  const { nodeId, epoch } = resigned
  const deadlineMs = cluster.now + resigned.config.electionTimeoutMs
  const check = (): void => {
    // Crashed (and maybe restarted) meanwhile: that incarnation is gone already.
    if (cluster.node(nodeId).raft !== resigned || cluster.now >= chaosEndMs) return
    if ((resigned.epoch > epoch && resigned.leaderId !== null) || cluster.now >= deadlineMs) {
      cluster.note(`n${nodeId} stops after resigning`)
      cluster.crash(nodeId)
      return
    }
    cluster.scheduler.after(5, check)
  }
  cluster.note(`n${nodeId} resigned to stop`)
  cluster.scheduler.after(0, check)
}

/** An error from a run, with the cluster's last events. */
export type RunFailure = Error & { trace?: string[] }
