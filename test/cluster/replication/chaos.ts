/**
 * One seeded run of replication under faults (sim.ts): a producer sends acks=all and acks=1 batches to whichever
 * replica the controller names leader (sometimes to any replica), and a consumer reads there, while, every 100-500
 * ms of simulated time, a fault strikes: a crash with a restart from what was persisted, a pause, a node (the
 * controller too) cut off, the replicas split, a one-way cut, lossy links that also duplicate and reorder, or
 * leadership moved. Then everything heals, and the run must converge: one leader, every replica in the ISR at the
 * same log end and HW, the logs identical and holding every acks=all acknowledged record. The checker looks at
 * every step throughout.
 */
import { RELIABLE_LINKS } from '../raft/sim/network.js'
import { Random } from '../raft/sim/random.js'
import { CONTROLLER, REPLICAS, ReplicationSim, SIM_REPLICATION_CONFIG, type SimSummary } from './sim.js'
import { entryAt, ReplicationViolation } from './checker.js'

const CHAOS_MS = 3000
const SETTLE_MS = 400
const CONVERGE_TIMEOUT_MS = 8000

export class RunFailure extends Error {
  override readonly name = 'RunFailure'
  trace: string[] = []
}

export async function runSeed(seed: number, options: { traceMessages: boolean }): Promise<SimSummary> {
  const choose = new Random(seed).fork(7)
  const config = {
    ...SIM_REPLICATION_CONFIG,
    minInsyncReplicas: choose.pick([1, 2, 2]),
    truncation: choose.pick(['divergingEpoch', 'offsetForLeaderEpoch'] as const),
  }
  const sim = new ReplicationSim(seed, config, options)
  const random = sim.random.fork(2)
  sim.crashPointRate = random.chance(0.3) ? 0.003 : 0
  sim.note(`seed ${seed}: min.insync.replicas=${config.minInsyncReplicas} truncation=${config.truncation}`)
  try {
    sim.start()
    let producing = true
    const produce = (): void => {
      if (!producing) return
      sim.produce({ acks: random.chance(0.7) ? -1 : 1, toAny: random.chance(0.1), timeoutMs: 500 })
      sim.consume({ toAny: random.chance(0.1) })
      sim.scheduler.after(random.int(5, 25), produce)
    }
    produce()
    const chaosEnd = sim.now + CHAOS_MS
    const strike = (): void => {
      if (sim.now >= chaosEnd) return
      fault(sim, random.int(0, 7))
      sim.scheduler.after(random.int(100, 500), strike)
    }
    sim.scheduler.after(random.int(100, 500), strike)
    await sim.scheduler.runUntil(chaosEnd)

    sim.note('healing')
    sim.network.heal()
    sim.network.faults = { ...RELIABLE_LINKS }
    for (const id of REPLICAS) {
      sim.restart(id)
      await sim.resume(id)
    }
    await sim.scheduler.runUntil(sim.now + SETTLE_MS)
    producing = false
    await sim.scheduler.runUntil(sim.now + CONVERGE_TIMEOUT_MS, () => sim.converged())
    if (!sim.converged()) {
      const state = sim.controller.state
      const replicas = REPLICAS.map((id) => {
        const replica = sim.node(id).replica
        return `r${id}: ${replica ? sim.describe(replica) : 'down'}`
      })
      throw new RunFailure(
        `no convergence ${CONVERGE_TIMEOUT_MS} ms after healing: controller leader=${state.leader} ` +
          `e${state.leaderEpoch} isr=[${state.isr}]; ${replicas.join('; ')}`,
      )
    }
    sim.checkAll()
    const leader = sim.node(sim.controller.state.leader).replica!
    sim.checker.checkHoldsAcknowledged(leader.replicaId, leader.batches())
    for (const id of REPLICAS) {
      const batches = sim.node(id).replica!.batches()
      for (let offset = 0; offset < Number(leader.logEndOffset); offset++) {
        if (entryAt(batches, offset) !== entryAt(leader.batches(), offset))
          throw new ReplicationViolation(`after convergence r${id} differs from the leader at offset ${offset}`)
      }
    }
    return sim.summary()
  } catch (caught) {
    const error = caught instanceof Error ? caught : new Error(String(caught))
    const failure = new RunFailure(`${error.name}: ${error.message}`, { cause: error })
    failure.trace = sim.trace
    throw failure
  }
}

function fault(sim: ReplicationSim, kind: number): void {
  const random = sim.random
  const replica = random.pick(REPLICAS)
  const later = (min: number, max: number, run: () => void | Promise<void>): void =>
    sim.scheduler.after(random.int(min, max), run)
  switch (kind) {
    case 0:
      sim.crash(replica)
      later(50, 600, () => sim.restart(replica))
      break
    case 1:
      sim.pause(replica)
      later(100, 800, () => sim.resume(replica))
      break
    case 2: {
      const isolated = random.pick([CONTROLLER, ...REPLICAS])
      sim.note(`n${isolated} cut off`)
      sim.network.partition([[isolated], [CONTROLLER, ...REPLICAS].filter((id) => id !== isolated)])
      later(100, 800, () => sim.network.heal())
      break
    }
    case 3: {
      const [a, b, c] = random.shuffle(REPLICAS)
      const withController = random.chance(0.5)
      sim.note(`split [${a}${withController ? ',controller' : ''}] | [${b},${c}]`)
      sim.network.partition([withController ? [a!, CONTROLLER] : [a!], [b!, c!]])
      later(100, 800, () => sim.network.heal())
      break
    }
    case 4: {
      const [a, b] = random.shuffle([CONTROLLER, ...REPLICAS])
      sim.note(`link n${a} -> n${b} cut`)
      sim.network.block(a!, b!)
      later(100, 800, () => sim.network.heal())
      break
    }
    case 5:
    case 6:
      sim.note('lossy links')
      sim.network.faults = {
        lossRate: random.int(5, 30) / 100,
        duplicateRate: random.int(0, 15) / 100,
        minDelayMs: 1,
        maxDelayMs: random.int(5, 60),
      }
      later(200, 800, () => {
        sim.network.faults = { ...sim.network.faults, lossRate: 0, duplicateRate: 0, maxDelayMs: 5 }
      })
      break
    default:
      sim.moveLeader()
  }
}
