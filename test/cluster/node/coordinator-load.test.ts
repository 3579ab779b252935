/**
 * A group coordinator replays its partition of __consumer_offsets before it acts on the groups in it: a member read
 * from the log keeps its place while the partition loads (its session runs from the end of the load, as in Kafka's
 * onGroupLoaded), so a cluster started again costs a live group no rebalance, and the coordinator writes nothing for a
 * group it has not finished loading. The partition holds tens of thousands of offset records after the group's
 * membership and is read from disk after the restart, so its replay spans the coordinator's 100 ms deadline sweeps.
 *
 * The member speaks the group protocol by hand (helpers/groups-wire.ts), so that what it sends while the cluster
 * restarts is the test's choice: nothing until the partition is loaded, then one Heartbeat. A kafkajs consumer would
 * rejoin on its own (it treats the NOT_COORDINATOR of a stopping node as a rebalance), and what the coordinator kept
 * would be mixed with what kafkajs did after.
 */
import { afterAll, beforeAll, expect, it } from 'vitest'
import { Kafka, logLevel } from 'kafkajs'
import { startCluster, type TestCluster } from '../../helpers/cluster.js'
import { waitFor } from '../../helpers/wait.js'
import { withClient } from '../../helpers/kafka.js'
import { heartbeatOnce, joinWithMemberId, sync } from '../../helpers/groups-wire.js'
import { ErrorCode } from '../../../protocol/errors.js'
import { CoordinatorType } from '../../../protocol/constants.js'
import { findCoordinator, type FindCoordinatorRequest, type FindCoordinatorResponse } from '../../../protocol/messages/find-coordinator.js'
import { offsetCommit, type OffsetCommitRequest, type OffsetCommitResponse } from '../../../protocol/messages/offset-commit.js'

const GROUP = 'dashboards'
/** A group without members whose commits fill the same (only) partition of __consumer_offsets. */
const FILLER_GROUP = 'filler'
const FILLER_PARTITIONS = 100
const FILLER_COMMITS = 300

let cluster: TestCluster

beforeAll(async () => {
  cluster = await startCluster({
    nodes: 3,
    extraArgs: ['--broker-heartbeat-interval-ms', '500', '--broker-session-timeout-ms', '3000', '--offsets-topic-partitions', '1', '--group-initial-rebalance-delay-ms', '0'],
  })
  await waitFor('three unfenced brokers', async () => {
    const status = await cluster.status(1)
    return status.controllerId >= 0 && status.liveBrokers.length === 3
  })
})

afterAll(async () => {
  await cluster?.destroy()
})

function kafka(clientId: string): Kafka {
  const brokers = [...cluster.nodes.values()].map((node) => node.address)
  return new Kafka({ clientId, brokers, logLevel: logLevel.NOTHING, retry: { initialRetryTime: 100, retries: 12 } })
}

async function coordinatorOf(groupId: string, via: number): Promise<number | false> {
  const answer = await withClient(cluster.nodes.get(via)!, (client) =>
    client.request<Partial<FindCoordinatorRequest>, FindCoordinatorResponse>(findCoordinator, 4, { keyType: CoordinatorType.GROUP, coordinatorKeys: [groupId] }),
  )
  const coordinator = answer.coordinators![0]!
  return coordinator.errorCode === ErrorCode.NONE && coordinator.nodeId
}

it('keeps a loaded group\'s member while its coordinator replays the partition after a restart, and writes nothing for the group before that', async () => {
  const admin = kafka('setup').admin()
  await admin.connect()
  try {
    await admin.createTopics({ topics: [{ topic: 'readings', numPartitions: 3, replicationFactor: 3 }, { topic: 'filler', numPartitions: FILLER_PARTITIONS, replicationFactor: 1 }], waitForLeaders: true })

    // One member, joined and synced with a 30 s session: the group is Stable and its membership is in the log.
    // (Asked again while __consumer_offsets, created by the first FindCoordinator, gets its leader: NOT_COORDINATOR.)
    const { coordinatorBefore, memberId, generationId } = await waitFor('the member joined', async () => {
      const coordinator = await coordinatorOf(GROUP, 1)
      if (coordinator === false) return false
      return withClient(cluster.nodes.get(coordinator)!, async (client) => {
        const joined = await joinWithMemberId(client, { version: 5, groupId: GROUP, topics: ['readings'], sessionTimeoutMs: 30_000, rebalanceTimeoutMs: 30_000 })
        if (joined.errorCode === ErrorCode.NOT_COORDINATOR || joined.errorCode === ErrorCode.COORDINATOR_LOAD_IN_PROGRESS) return false
        expect(joined.errorCode).toBe(ErrorCode.NONE)
        const synced = await sync(client, { version: 3, groupId: GROUP, generationId: joined.generationId!, memberId: joined.memberId, assignments: { [joined.memberId]: { readings: [0, 1, 2] } } })
        expect(synced.errorCode).toBe(ErrorCode.NONE)
        return { coordinatorBefore: coordinator, memberId: joined.memberId, generationId: joined.generationId! }
      })
    })

    // The group's membership is in the log; tens of thousands of offset records (simple commits of a group without
    // members, to the same coordinator) follow it.
    await withClient(cluster.nodes.get(coordinatorBefore)!, async (client) => {
      const partitions = Array.from({ length: FILLER_PARTITIONS }, (_, partitionIndex) => ({ partitionIndex, committedOffset: 1n, committedLeaderEpoch: -1, commitTimestamp: -1n, committedMetadata: null }))
      for (let i = 0; i < FILLER_COMMITS; i++) {
        const answer = await client.request<OffsetCommitRequest, OffsetCommitResponse>(offsetCommit, 8, {
          groupId: FILLER_GROUP,
          generationIdOrMemberEpoch: -1,
          memberId: '',
          groupInstanceId: null,
          retentionTimeMs: -1n,
          topics: [{ name: 'filler', partitions }],
        })
        expect(answer.topics[0]!.partitions.every((p) => p.errorCode === ErrorCode.NONE)).toBe(true)
      }
    })
    // Every node stopped and started again: the coordinator replays the partition from disk.
    await Promise.all(cluster.nodeIds.map((id) => cluster.nodes.get(id)!.stop()))
    await Promise.all(cluster.nodeIds.map((id) => cluster.restart(id)))
    await waitFor('the partition loaded again', () =>
      cluster.nodeIds.some((id) => /loaded 2 groups from \d+ records of __consumer_offsets-0/.test(cluster.nodes.get(id)!.output())),
    )
    const described = await waitFor('the group stable again', async () => {
      const group = (await admin.describeGroups([GROUP])).groups[0]!
      return group.state === 'Stable' && group
    })
    expect(described.members.map((m) => m.memberId)).toEqual([memberId])
    // The member's first word after the restart is a Heartbeat of the generation it had: no rebalance asked of it.
    const coordinatorAfter = await waitFor('the coordinator', () => coordinatorOf(GROUP, cluster.nodeIds[0]!))
    expect(await withClient(cluster.nodes.get(coordinatorAfter)!, (client) => heartbeatOnce(client, { groupId: GROUP, generationId, memberId }))).toBe(ErrorCode.NONE)
    for (const id of cluster.nodeIds) expect(cluster.nodes.get(id)!.output(), `node ${id}`).not.toMatch(/could not store group/)
  } finally {
    await admin.disconnect()
  }
})
