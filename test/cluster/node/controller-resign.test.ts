/**
 * A clean stop of the active controller on a three-node cluster of real processes: SIGTERM to the leader of the
 * controller quorum. After its controlled shutdown the node resigns (EndQuorumEpoch to the other voters, KIP-595)
 * and waits for its successor before it closes its listeners, so the survivors elect a new leader without waiting
 * out their fetch timeout (2000 ms, Kafka's). What is asserted is what can be asserted robustly, from the nodes'
 * logs: the stopped node learned of a leader of a later epoch before it stopped, and the new leader's election
 * followed the EndQuorumEpoch it got. How long the handover took is printed, not asserted. Topic creation then works
 * through both survivors.
 */
import { describe, expect, it } from 'vitest'
import { Kafka, logLevel } from 'kafkajs'
import { QUICK_CLUSTER_ARGS, useCluster } from '../../helpers/cluster.js'
import { waitFor } from '../../helpers/wait.js'

/** A node's log line matching `pattern` at or after `from`: where it is, its timestamp, its match. */
function logLine(output: string, pattern: RegExp, from = 0): { index: number; atMs: number; match: RegExpExecArray } | null {
  const global = new RegExp(`^(\\S+) \\S+ \\[[^\\]]*\\] .*?${pattern.source}`, 'gm')
  global.lastIndex = from
  const match = global.exec(output)
  if (!match) return null
  return { index: match.index, atMs: Date.parse(match[1]!), match }
}

describe('a clean stop of the active controller', () => {
  const cluster = useCluster({ nodes: 3, extraArgs: QUICK_CLUSTER_ARGS })

  function kafka(clientId: string, bootstrap: readonly number[]): Kafka {
    return new Kafka({
      clientId,
      brokers: bootstrap.map((id) => cluster().nodes.get(id)!.address),
      logLevel: logLevel.NOTHING,
      retry: { initialRetryTime: 100, maxRetryTime: 1000, retries: 12 },
    })
  }

  it('resigns on SIGTERM: the survivors elect a new controller started by EndQuorumEpoch, before the node exits', async () => {
    // Partitions with replicas on every node: the stopping controller first hands its leaderships over (controlled
    // shutdown, which its own controller commits), then resigns.
    const admin = kafka('resign-setup', [1]).admin()
    await admin.connect()
    try {
      expect(await admin.createTopics({ topics: [{ topic: 'before-resign', numPartitions: 3, replicationFactor: 3 }], waitForLeaders: true })).toBe(true)
    } finally {
      await admin.disconnect()
    }
    const before = await cluster().status(1)
    const stopped = before.leaderId
    const survivors = cluster().nodeIds.filter((id) => id !== stopped)

    const stopAtMs = Date.now()
    await cluster().nodes.get(stopped)!.stop()
    const stopTookMs = Date.now() - stopAtMs
    expect(cluster().nodes.get(stopped)!.child.exitCode).toBe(0)

    // The stopped node: resigned, then learned of a leader of a later epoch, then stopped.
    const oldOutput = cluster().nodes.get(stopped)!.output()
    const resigned = logLine(oldOutput, new RegExp(`controller quorum epoch ${before.leaderEpoch}: this node resigns before stopping`))
    expect(resigned, oldOutput).not.toBeNull()
    const learned = logLine(oldOutput, /controller quorum epoch (\d+): node (\d+) leads/, resigned!.index)
    expect(learned, oldOutput).not.toBeNull()
    const newEpoch = Number(learned!.match[2])
    const successor = Number(learned!.match[3])
    expect(newEpoch).toBeGreaterThan(before.leaderEpoch)
    expect(survivors).toContain(successor)
    expect(oldOutput.indexOf('] stopped', learned!.index)).toBeGreaterThan(learned!.index)

    // The new leader: told by EndQuorumEpoch, then elected. Its line saying so may reach this process a moment after
    // the stopped node heard of it (the log line follows the BeginQuorumEpoch it sends), so it is waited for.
    const newLeaderLog = () => cluster().nodes.get(successor)!.output()
    const told = logLine(newLeaderLog(), new RegExp(`controller quorum epoch ${before.leaderEpoch}: node ${stopped} resigns \\(EndQuorumEpoch`))
    expect(told, newLeaderLog()).not.toBeNull()
    const leadsLine = new RegExp(`controller quorum epoch ${newEpoch}: this node leads`)
    const leads = await waitFor('the new leader logs its election', async () => logLine(newLeaderLog(), leadsLine, told!.index) ?? false)

    const status = await waitFor('the survivors agree on the new controller', async () => {
      const seen = await cluster().status(survivors[0]!)
      return seen.controllerId === successor && seen.leaderEpoch === newEpoch && seen
    })
    expect(status.leaderId).toBe(successor)

    // Through each survivor: the new controller's own node and the one that forwards to it.
    for (const via of survivors) {
      const topic = `after-resign-via-${via}`
      const viaAdmin = kafka(`resign-admin-${via}`, [via]).admin()
      await viaAdmin.connect()
      try {
        expect(await viaAdmin.createTopics({ topics: [{ topic, numPartitions: 2, replicationFactor: 2 }], waitForLeaders: true })).toBe(true)
        const partitions = (await viaAdmin.fetchTopicMetadata({ topics: [topic] })).topics[0]!.partitions
        expect(partitions).toHaveLength(2)
        for (const partition of partitions) expect([...partition.replicas].sort()).toEqual(survivors)
      } finally {
        await viaAdmin.disconnect()
      }
    }
    console.log(
      `controller resignation: node ${stopped} (epoch ${before.leaderEpoch}) resigned on SIGTERM; node ${successor} led epoch ${newEpoch} ` +
        `${leads.atMs - resigned!.atMs} ms after the resignation (${leads.atMs - told!.atMs} ms after it got EndQuorumEpoch; the fetch ` +
        `timeout is 2000 ms); the process took ${stopTookMs} ms to stop`,
    )
  })
})
