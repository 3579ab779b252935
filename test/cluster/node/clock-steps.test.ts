/**
 * The active controller's wall clock steps (NTP correcting it, a laptop's resume) while a three-node cluster runs. The
 * controller quorum's timers and the brokers' sessions count durations on the monotonic clock (broker/clock.ts), as
 * Kafka's controller times broker sessions on time.nanoseconds() (BrokerHeartbeatTracker): a step forward fences no
 * broker and moves no leader, a step back neither costs the controller its leadership nor keeps a dead broker unfenced
 * for the step's length. Every node runs under libfaketime with only its wall clock faked (test/helpers/faketime.ts);
 * only the controller's is stepped.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, describe, expect, it } from 'vitest'
import { QUICK_CLUSTER_ARGS, useCluster } from '../../helpers/cluster.js'
import { fakeClock, faketimeMissing } from '../../helpers/faketime.js'
import { partitionsOf } from '../../helpers/kafka.js'
import { waitFor } from '../../helpers/wait.js'

const missing = faketimeMissing()
if (missing !== null) console.log(`cluster clock step test skipped: ${missing}`)

/** QUICK_CLUSTER_ARGS' broker.session.timeout.ms. */
const SESSION_MS = 3000
const TOPIC = 'clock-steps'

describe.skipIf(missing !== null)('a cluster whose active controller\'s wall clock steps', () => {
  const clocks = new Map([1, 2, 3].map((id) => [id, fakeClock()]))
  const running = useCluster({ nodes: 3, extraArgs: QUICK_CLUSTER_ARGS, env: Object.fromEntries([...clocks].map(([id, clock]) => [id, clock.env])) })
  afterAll(() => {
    for (const clock of clocks.values()) clock.remove()
  })

  it('fences no broker and moves no leader after a step forward of an hour, keeps its leadership after a step back, and still fences a killed broker within its session', async () => {
    const cluster = running()
    const admin = cluster.kafka('clock-steps-admin').admin()
    await admin.connect()
    try {
      await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: 3, replicationFactor: 3 }], waitForLeaders: true })
    } finally {
      await admin.disconnect()
    }
    /** Each partition's leader, leader epoch and ISR, as node `id` answers Metadata. */
    const partitions = async (id: number): Promise<string[]> =>
      (await partitionsOf(cluster.nodes.get(id)!, TOPIC)).map((p) => `${p.partitionIndex}: leader ${p.leaderId} epoch ${p.leaderEpoch} isr [${[...p.isrNodes].sort().join(',')}]`)
    await waitFor('every replica in the ISR on every node', async () => {
      for (const id of cluster.nodeIds) if ((await partitions(id)).filter((line) => line.endsWith('isr [1,2,3]')).length !== 3) return false
      return true
    })
    const before = await cluster.status(1)
    const controller = before.controllerId
    const others = cluster.nodeIds.filter((id) => id !== controller)
    const layout = await partitions(controller)
    const fencings = (): number => cluster.nodeIds.reduce((sum, id) => sum + cluster.nodes.get(id)!.output().split('\n').filter((line) => line.includes('fenced by the controller')).length, 0)
    const fencedBefore = fencings()

    // Forward: every session would look an hour old to a controller counting on the wall clock.
    clocks.get(controller)!.step('+1h')
    await sleep(3 * SESSION_MS)
    const afterForward = await cluster.status(others[0]!)
    expect({ controller: afterForward.controllerId, epoch: afterForward.leaderEpoch }).toEqual({ controller, epoch: before.leaderEpoch })
    expect(afterForward.liveBrokers.map((b) => b.brokerId).sort()).toEqual([1, 2, 3])
    expect(fencings()).toBe(fencedBefore)
    expect(await partitions(controller)).toEqual(layout)

    // Back to the real time, a step back of an hour: the leader's deadlines would lie an hour ahead.
    clocks.get(controller)!.step('+0')
    await sleep(3 * SESSION_MS)
    const afterBack = await cluster.status(others[0]!)
    expect({ controller: afterBack.controllerId, epoch: afterBack.leaderEpoch }).toEqual({ controller, epoch: before.leaderEpoch })
    expect(fencings()).toBe(fencedBefore)
    expect(await partitions(controller)).toEqual(layout)

    // The controller stepped back once more, then a broker killed: fenced after its session, not an hour later.
    clocks.get(controller)!.step('-1h')
    const victim = others[1]!
    await cluster.nodes.get(victim)!.kill()
    const killedAt = Date.now()
    await waitFor(`node ${victim} fenced`, async () => !(await cluster.status(others[0]!)).liveBrokers.some((b) => b.brokerId === victim), { timeoutMs: 30_000 })
    console.log(`node ${victim}, killed, was fenced ${Date.now() - killedAt} ms later (session ${SESSION_MS} ms) by a controller whose clock stepped back an hour`)
    clocks.get(controller)!.step('+0')
    await cluster.restart(victim)
  }, 120_000)
})
