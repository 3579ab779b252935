/**
 * Three controllers under seeded faults: the active controller crashes (sometimes between drain and write),
 * is cut off from the others, is paused; brokers die and come back as new incarnations; meanwhile topics are
 * created (some allowing unclean election) and deleted, partition leaders shrink and grow their ISRs (AlterPartition), partitions are reassigned to other brokers and
 * reassignments cancelled (AlterPartitionReassignments), leadership goes back to preferred replicas,
 * brokers are unregistered (UnregisterBroker; a dead one, or a live one, which registers again), and producer-id
 * blocks are handed out. The controller's
 * invariants (controller-sim.ts) and Raft's safety checks run throughout. Then the network heals and everything
 * restarts: every controller must hold the same image, with every broker registered and unfenced, what was
 * acknowledged and committed in it, and a new topic must be creatable.
 *
 *   BROOK_CONTROLLER_SEED=12 npx vitest run test/cluster/controller/simulation.test.ts   replay one seed
 *   BROOK_CONTROLLER_RUNS=2000 npx vitest run test/cluster/controller/simulation.test.ts more seeds (default 60)
 */
import { describe, expect, test } from 'vitest'
import { RELIABLE_LINKS } from '../raft/sim/network.js'
import { ControllerSim, SESSION_TIMEOUT_MS } from './controller-sim.js'

const BROKERS = [1, 2, 3, 4]
const replay = process.env.BROOK_CONTROLLER_SEED
const runs = Number(process.env.BROOK_CONTROLLER_RUNS ?? 60)
const seeds = replay !== undefined ? [Number(replay)] : Array.from({ length: runs }, (_, i) => i + 1)

interface Summary {
  failovers: number
  topics: number
  fencings: number
  registrations: number
  producerIdBlocks: number
  recoveryMs: number
  /** AlterPartition requests the controller took. */
  alterPartitions: number
  /** AlterPartitionReassignments (a new target or a cancel) the controller took, and reassignments that ended. */
  reassignments: number
  reassignmentsEnded: number
  /** UnregisterBroker requests the controller took. */
  unregistrations: number
  /** Partitions at the end, and how many are led by their preferred replica. */
  partitions: number
  preferredLeaders: number
  /** Fetch responses that sent a member to the leader's snapshot (it then restored the controller's image). */
  snapshotFetches: number
}

async function runSeed(seed: number): Promise<Summary> {
  const sim = await ControllerSim.start({ seed, brokerIds: BROKERS, maxBytesBetweenSnapshots: snapshotBytes(seed) })
  const { cluster, random } = sim
  let topicCount = 0
  let failovers = 0
  let fencings = 0
  let alterPartitions = 0
  let reassignments = 0
  let unregistrations = 0
  let lastActive: number | null = null
  const faultsUntil = cluster.now + random.int(4000, 8000)

  while (cluster.now < faultsUntil) {
    await sim.run(random.int(100, 400))
    const active = sim.activeIds()
    if (active[0] !== undefined && active[0] !== lastActive) {
      if (lastActive !== null) failovers++
      lastActive = active[0]
    }
    // Requests.
    if (random.chance(0.5)) {
      const name = `t${random.int(0, 12)}`
      const configs: Record<string, string> = random.chance(0.3) ? { 'unclean.leader.election.enable': 'true' } : {}
      const result = await sim.onActive((c) => c.createTopic({ name, numPartitions: random.int(1, 4), replicationFactor: random.int(1, 3), configs }, cluster.now))
      if (result?.ok) topicCount++
    }
    if (random.chance(0.15)) await sim.onActive((c) => c.deleteTopic(`t${random.int(0, 12)}`, cluster.now))
    if (random.chance(0.3)) await sim.allocateProducerIds(sim.brokers.get(random.pick(BROKERS))!)
    if (random.chance(0.6) && (await sim.alterPartition())) alterPartitions++
    if (random.chance(0.15) && (await sim.reassign(BROKERS))) reassignments++
    if (random.chance(0.08)) {
      // Mostly a broker that died, as an operator would; now and then a live one, which registers again.
      const dead = BROKERS.filter((id) => !sim.brokers.get(id)!.alive)
      const brokerId = dead.length > 0 && random.chance(0.8) ? random.pick(dead) : random.pick(BROKERS)
      if ((await sim.onActive((c) => c.unregisterBroker(brokerId, cluster.now)))?.ok) unregistrations++
    }
    // Faults.
    const target = active.length > 0 ? random.pick(active) : random.int(1, 3)
    switch (random.int(0, 9)) {
      case 0:
        cluster.note(`crash n${target}`)
        cluster.crash(target, { duringWrite: random.chance(0.3) })
        cluster.scheduler.after(random.int(50, 800), () => cluster.restart(target))
        break
      case 1: {
        cluster.note(`isolate n${target}`)
        cluster.network.partition([[target], [1, 2, 3].filter((id) => id !== target)])
        cluster.scheduler.after(random.int(200, 1500), () => cluster.network.heal())
        break
      }
      case 2:
        cluster.pause(target)
        cluster.scheduler.after(random.int(100, 1200), () => cluster.resume(target))
        break
      case 3:
      case 4: {
        const broker = random.pick(BROKERS)
        if (sim.brokers.get(broker)!.alive) {
          sim.killBroker(broker)
          fencings++
          cluster.scheduler.after(random.int(SESSION_TIMEOUT_MS / 2, 3 * SESSION_TIMEOUT_MS), () => sim.reviveBroker(broker))
        }
        break
      }
      case 5:
        cluster.network.faults = { lossRate: 0.05, duplicateRate: 0.05, minDelayMs: 1, maxDelayMs: 40 }
        break
      default:
        cluster.network.faults = RELIABLE_LINKS
    }
  }

  // Heal: every node up and connected, every broker alive.
  cluster.network.heal()
  cluster.network.faults = RELIABLE_LINKS
  for (const id of [1, 2, 3]) {
    cluster.node(id).crashOnNextWrite = false
    if (cluster.node(id).paused) await cluster.resume(id)
    if (!cluster.node(id).alive) await cluster.restart(id)
  }
  for (const broker of sim.brokers.values()) if (!broker.alive) sim.reviveBroker(broker.id)
  const healedAt = cluster.now
  await sim.runUntil(
    () =>
      sim.settledLeadership() &&
      sim.images().length === 3 &&
      sim.imagesAgree() &&
      sim.brokersSettled(),
    10_000,
    'after healing, one active controller, every image the same, every broker unfenced',
  )
  const recoveryMs = cluster.now - healedAt
  // A client's request: sent again if a leadership change lost it, answered once committed.
  const created = await sim.request((c) => c.createTopic({ name: `final-${seed}`, numPartitions: 4, replicationFactor: 3 }, cluster.now))
  expect(created, 'a topic can be created once healed').toMatchObject({ ok: true })
  // Committed after everything proposed before it: an unregistration still in flight when the brokers first settled
  // has committed too, and the broker it named (if alive) must have registered again since.
  await sim.runUntil(
    () => sim.imagesAgree() && sim.images()[0]!.image.topic(`final-${seed}`) !== undefined && sim.brokersSettled(),
    5000,
    'the new topic is in every image, and every broker registered and unfenced',
  )
  const image = sim.images()[0]!.image
  // Every partition of every topic has a live leader again, from its ISR.
  for (const topic of image.topicsById.values()) {
    for (const partition of topic.partitions.values()) expect(partition.isr, `'${topic.name}' has leader ${partition.leader}`).toContain(partition.leader)
  }
  const preferredLeaders = [...image.topicsById.values()].reduce(
    (count, topic) => count + [...topic.partitions.values()].filter((partition) => partition.leader === partition.replicas[0]).length,
    0,
  )
  cluster.checkAll({ final: true })
  const acknowledged = sim.checkAcknowledged(image)
  return { failovers, topics: topicCount, fencings, alterPartitions, reassignments, unregistrations, reassignmentsEnded: sim.reassignmentsEnded.size, partitions: [...image.topicsById.values()].reduce((n, t) => n + t.partitions.size, 0), preferredLeaders, ...acknowledged, recoveryMs, snapshotFetches: cluster.delivered.get('snapshotId') ?? 0 }
}

/** Some seeds take snapshots often, so lagging and restarted members restore the controller's image from one. */
function snapshotBytes(seed: number): number {
  return seed % 3 === 0 ? 300 : 1 << 20
}

describe('controllers under simulation', () => {
  test(`${seeds.length} seeded runs keep the controller's invariants and agree once healed`, { timeout: 120_000 + 400 * seeds.length }, async () => {
    const summaries: Summary[] = []
    for (const seed of seeds) {
      try {
        summaries.push(await runSeed(seed))
      } catch (error) {
        throw new Error(
          `seed ${seed}: ${(error as Error).message}\nreplay: BROOK_CONTROLLER_SEED=${seed} npx vitest run test/cluster/controller/simulation.test.ts`,
          { cause: error },
        )
      }
    }
    const sum = (pick: (s: Summary) => number): number => summaries.reduce((total, s) => total + pick(s), 0)
    const recovery = summaries.map((s) => s.recoveryMs).sort((a, b) => a - b)
    console.log(
      `controller simulation: ${summaries.length} runs, ${sum((s) => s.failovers)} controller failovers, ` +
        `${sum((s) => s.topics)} topics created, ${sum((s) => s.fencings)} brokers killed, ` +
        `${sum((s) => s.alterPartitions)} ISR changes by AlterPartition, ${sum((s) => s.reassignments)} reassignments taken and ${sum((s) => s.reassignmentsEnded)} ended, ${sum((s) => s.unregistrations)} brokers unregistered, ${sum((s) => s.registrations)} registrations and ${sum((s) => s.producerIdBlocks)} producer-id blocks committed, ` +
        `${summaries.filter((s) => s.snapshotFetches > 0).length} runs with a snapshot fetch, ` +
        `${sum((s) => s.preferredLeaders)} of ${sum((s) => s.partitions)} partitions led by their preferred replica at the end; ` +
        `simulated time from healing to agreement p50 ${recovery[Math.floor(recovery.length / 2)]} ms, max ${recovery.at(-1)} ms`,
    )
    expect(sum((s) => s.failovers)).toBeGreaterThan(0)
    expect(sum((s) => s.producerIdBlocks)).toBeGreaterThan(0)
    expect(sum((s) => s.alterPartitions)).toBeGreaterThan(0)
    expect(sum((s) => s.reassignmentsEnded)).toBeGreaterThan(0)
    expect(sum((s) => s.unregistrations)).toBeGreaterThan(0)
    if (seeds.length >= 10) expect(summaries.filter((s) => s.snapshotFetches > 0).length).toBeGreaterThan(0)
  })

  test('a seed replays the same run', async () => {
    expect(await runSeed(seeds[0]!)).toEqual(await runSeed(seeds[0]!))
  })
})
