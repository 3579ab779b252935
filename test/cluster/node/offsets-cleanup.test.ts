/**
 * Deleting a topic while a replica of the groups' __consumer_offsets partition is dead and not yet fenced (a session
 * timeout longer than the test): the partition's high watermark cannot move, so no coordinator write can be
 * replicated. The coordinator still removes every group's offsets for the topic at once (Kafka's
 * onPartitionsDeleted, whose tombstones do not wait for the ISR): an Empty group left with no offsets is gone, a group
 * with other offsets keeps those, and every live node deletes the topic's old log, so that a topic created again under
 * the name starts with no committed offsets. Before, the tombstones' replication timed out, the coordinator kept the
 * offsets and the topic's old log, and a consumer group read the new topic from the old offsets.
 *
 * Deleting a topic while the groups' coordinator itself is dead: no node holds the groups when the topic goes, so the
 * node elected leader of their __consumer_offsets partition finds the topic's offsets in it when it loads it, and
 * removes them then. Before, it kept them, and a consumer group read a topic created again under the name from them.
 */
import { describe, expect, it } from 'vitest'
import { QUICK_CLUSTER_ARGS, useCluster, type TestCluster } from '../../helpers/cluster.js'
import { waitFor } from '../../helpers/wait.js'
import { withClient } from '../../helpers/kafka.js'
import { brook } from '../../cli/run-brook.js'
import { ErrorCode } from '../../../protocol/errors.js'
import { CoordinatorType } from '../../../protocol/constants.js'
import { findCoordinator, type FindCoordinatorRequest, type FindCoordinatorResponse } from '../../../protocol/messages/find-coordinator.js'
import { offsetFetch, type OffsetFetchRequest, type OffsetFetchResponse } from '../../../protocol/messages/offset-fetch.js'

const TOPIC = 'short-lived'
const KEPT = 'long-lived'
const ONLY_DELETED = 'reads-the-deleted-topic'
const BOTH = 'reads-both-topics'

/** Every committed offset of `groupId`, as node `coordinator` answers OffsetFetch v8 for all topics: `topic-partition` -> offset. */
async function committedAt(cluster: TestCluster, coordinator: number, groupId: string): Promise<Record<string, string>> {
  return withClient(cluster.nodes.get(coordinator)!, async (client) => {
    const answer = await client.request<Partial<OffsetFetchRequest>, OffsetFetchResponse>(offsetFetch, 8, { groups: [{ groupId, memberId: null, memberEpoch: -1, topics: null }], requireStable: false })
    const group = answer.groups![0]!
    expect(group.errorCode).toBe(ErrorCode.NONE)
    return Object.fromEntries(group.topics.flatMap((t) => t.partitions.map((p) => [`${t.name}-${p.partitionIndex}`, String(p.committedOffset)])))
  })
}

/** The node that coordinates `groupId`, as node `asked` answers FindCoordinator v4 (once it names one). */
function coordinatorOf(cluster: TestCluster, asked: number, groupId: string): Promise<number> {
  return waitFor(`the coordinator of ${groupId}`, () =>
    withClient(cluster.nodes.get(asked)!, async (client) => {
      const answer = await client.request<Partial<FindCoordinatorRequest>, FindCoordinatorResponse>(findCoordinator, 4, { keyType: CoordinatorType.GROUP, coordinatorKeys: [groupId] })
      const found = answer.coordinators![0]!
      return found.errorCode === ErrorCode.NONE && found.nodeId
    }),
  )
}

// The two scenarios run side by side (describe { concurrent: true }), each on a cluster of its own: both mostly wait, for
// nodes to start, for a killed coordinator's partition to move.
describe('deleting a topic while a replica of the groups\' __consumer_offsets partition is dead', { concurrent: true }, () => {
  const cluster = useCluster({
    nodes: 3,
    // One __consumer_offsets partition holds every group; a dead node is not fenced (nor dropped from any ISR) for 60 s.
    extraArgs: ['--broker-heartbeat-interval-ms', '500', '--broker-session-timeout-ms', '60000', '--offsets-topic-partitions', '1', '--group-initial-rebalance-delay-ms', '0'],
  })

  const committed = (coordinator: number, groupId: string) => committedAt(cluster(), coordinator, groupId)

  it('removes every group\'s offsets for it at once, and every live node deletes its log', async () => {
    const admin = cluster().kafka('offsets-cleanup').admin()
    await admin.connect()
    try {
      await admin.createTopics({ topics: [TOPIC, KEPT].map((topic) => ({ topic, numPartitions: 1, replicationFactor: 3 })), waitForLeaders: true })
      await admin.setOffsets({ groupId: ONLY_DELETED, topic: TOPIC, partitions: [{ partition: 0, offset: '5' }] })
      await admin.setOffsets({ groupId: BOTH, topic: TOPIC, partitions: [{ partition: 0, offset: '7' }] })
      await admin.setOffsets({ groupId: BOTH, topic: KEPT, partitions: [{ partition: 0, offset: '9' }] })
      const coordinator = await coordinatorOf(cluster(), 1, BOTH)
      expect(await committed(coordinator, BOTH)).toEqual({ [`${TOPIC}-0`]: '7', [`${KEPT}-0`]: '9' })

      // A follower of __consumer_offsets-0 (RF 3: both other nodes are), not the active controller, dies.
      const { controllerId } = await cluster().status(coordinator)
      const victim = cluster().nodeIds.find((id) => id !== coordinator && id !== controllerId)!
      await cluster().nodes.get(victim)!.kill()
      const live = cluster().nodeIds.filter((id) => id !== victim)
      const survivors = cluster().kafka('offsets-cleanup-survivors', live).admin()
      await survivors.connect()
      try {
        await survivors.deleteTopics({ topics: [TOPIC] })
        // (ListGroups would go to every node in the Metadata, the dead one included: it is not fenced.)
        const described = (await survivors.describeGroups([BOTH, ONLY_DELETED])).groups
        expect(Object.fromEntries(described.map((g) => [g.groupId, g.state]))).toEqual({ [BOTH]: 'Empty', [ONLY_DELETED]: 'Dead' })
      } finally {
        await survivors.disconnect()
      }
      for (const id of live) {
        await waitFor(`node ${id} deleted the topic's log`, () => cluster().nodes.get(id)!.output().includes(`deleted topic '${TOPIC}'`))
      }
      expect(await committed(coordinator, BOTH)).toEqual({ [`${KEPT}-0`]: '9' })
      expect(await committed(coordinator, ONLY_DELETED)).toEqual({})
      expect(cluster().nodes.get(coordinator)!.output()).toContain(`group '${ONLY_DELETED}': 1 committed offset of deleted topic '${TOPIC}' removed; the group, left with no members and no offsets, is gone`)
    } finally {
      await admin.disconnect()
    }
  })
})

describe('deleting a topic while its groups\' coordinator is dead', { concurrent: true }, () => {
  const cluster = useCluster({ nodes: 3, extraArgs: [...QUICK_CLUSTER_ARGS, '--offsets-topic-partitions', '1'] })

  it('has the node that takes the groups over remove their offsets for it, so a topic created again under the name is read from the start', async () => {
    const admin = cluster().kafka('offsets-coordinator-away').admin()
    await admin.connect()
    try {
      await admin.createTopics({ topics: [TOPIC, KEPT].map((topic) => ({ topic, numPartitions: 1, replicationFactor: 3 })), waitForLeaders: true })
      await admin.setOffsets({ groupId: BOTH, topic: TOPIC, partitions: [{ partition: 0, offset: '7' }] })
      await admin.setOffsets({ groupId: BOTH, topic: KEPT, partitions: [{ partition: 0, offset: '9' }] })
    } finally {
      await admin.disconnect()
    }
    const coordinator = await coordinatorOf(cluster(), 1, BOTH)
    expect(await committedAt(cluster(), coordinator, BOTH)).toEqual({ [`${TOPIC}-0`]: '7', [`${KEPT}-0`]: '9' })

    // The coordinator dies (kill -9) and the topic is deleted before the controller fences it (`brook topics delete`
    // waits out the coordinator's node when it was the active controller too; kafkajs would go on asking it).
    await cluster().nodes.get(coordinator)!.kill()
    const live = cluster().nodeIds.filter((id) => id !== coordinator)
    const deleted = await brook(['topics', 'delete', TOPIC, '--bootstrap-server', live.map((id) => cluster().nodes.get(id)!.address).join(',')])
    expect(deleted.stderr).toBe('')
    const survivors = cluster().kafka('offsets-coordinator-away-survivors', live).admin()
    await survivors.connect()
    try {
      const successor = await waitFor('another node to coordinate the group', async () => {
        const found = await coordinatorOf(cluster(), live[0]!, BOTH)
        return found !== coordinator && found
      })
      // Once it has loaded the group, the deleted topic's offsets are gone from it, and a topic created again under
      // the name has none.
      expect(await waitFor('the loaded group', () => committedAt(cluster(), successor, BOTH))).toEqual({ [`${KEPT}-0`]: '9' })
      await survivors.createTopics({ topics: [{ topic: TOPIC, numPartitions: 1, replicationFactor: 2 }], waitForLeaders: true })
      expect(await committedAt(cluster(), successor, BOTH)).toEqual({ [`${KEPT}-0`]: '9' })
      expect(cluster().nodes.get(successor)!.output()).toContain(`group '${BOTH}': 1 committed offset of deleted topic '${TOPIC}' removed`)
    } finally {
      await survivors.disconnect()
    }
  })
})
