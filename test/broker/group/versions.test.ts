/**
 * Every advertised version of the group APIs, end to end against one broker process: for JoinGroup v0..v9 a member
 * finds its coordinator, joins, syncs, heartbeats, commits, fetches its commit, is listed and described, and leaves,
 * each API at the version a client of that JoinGroup generation would pair with it. The real clients cover only their
 * own versions (kafkajs 5/3/3/3, librdkafka 5/3/3/1, @platformatic/kafka 9/5/4/5); this covers the rest, including
 * the version-dependent shapes: no rebalance timeout before JoinGroup v1, MEMBER_ID_REQUIRED from v4, nullable
 * protocol names from v7, batched LeaveGroup from v3, batched FindCoordinator from v4, OffsetFetch's multi-group
 * layout from v8.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { KafkaClient } from '../../../client/kafka-client.js'
import { findCoordinator, type FindCoordinatorRequest, type FindCoordinatorResponse } from '../../../protocol/messages/find-coordinator.js'
import { offsetFetch, type OffsetFetchRequest, type OffsetFetchResponse } from '../../../protocol/messages/offset-fetch.js'
import { describeGroups, type DescribeGroupsRequest, type DescribeGroupsResponse } from '../../../protocol/messages/describe-groups.js'
import { listGroups, type ListGroupsRequest, type ListGroupsResponse } from '../../../protocol/messages/list-groups.js'
import { leaveGroup, type LeaveGroupRequest, type LeaveGroupResponse } from '../../../protocol/messages/leave-group.js'
import { deleteGroups, type DeleteGroupsRequest, type DeleteGroupsResponse } from '../../../protocol/messages/delete-groups.js'
import { startConfiguredBroker, FAST_GROUPS } from '../../helpers/broker-config.js'
import type { BrokerProcess } from '../../helpers/broker.js'
import { connect, createTopic } from '../../helpers/kafka.js'
import { commit, committedOffsets, heartbeatOnce, join, readAssignment, readSubscription, sync } from '../../helpers/groups-wire.js'
import { loggedErrors } from '../../helpers/broker-log.js'

const MEMBER_ID_REQUIRED = 79

describe('every version of the group APIs', () => {
  let broker: BrokerProcess
  let client: KafkaClient

  beforeAll(async () => {
    broker = await startConfiguredBroker(FAST_GROUPS)
    client = await connect(broker)
    await createTopic(broker, 'ticks', { partitions: 2 })
  })
  afterAll(async () => {
    client?.close()
    await broker?.stop()
    broker?.cleanup()
    // Checked once the process is gone, so that shutdown is included.
    if (broker) expect(loggedErrors(broker)).toEqual([])
  })

  async function fetchCommitted(version: number, groupId: string): Promise<{ offset: bigint; metadata: string | null }> {
    const topics = [{ name: 'ticks', partitionIndexes: [1] }]
    const response = await client.request<Partial<OffsetFetchRequest>, OffsetFetchResponse>(
      offsetFetch,
      version,
      version >= 8 ? { groups: [{ groupId, memberId: null, memberEpoch: -1, topics }], requireStable: false } : { groupId, topics, requireStable: false },
    )
    const partition = (version >= 8 ? response.groups![0]!.topics : response.topics!)[0]!.partitions[0]!
    expect(partition.errorCode).toBe(0)
    return { offset: partition.committedOffset, metadata: partition.metadata }
  }

  for (let version = 0; version <= 9; version++) {
    it(`JoinGroup v${version} with its companions`, async () => {
      const groupId = `versions-${version}`
      const companions = {
        findCoordinator: Math.min(version, 4),
        syncGroup: Math.min(version, 5),
        heartbeat: Math.min(version, 4),
        // OffsetCommit v0 carries no generation or member: it is a standalone commit, refused for a group with members.
        offsetCommit: Math.max(version, 1),
        offsetFetch: Math.max(version, 1),
        describeGroups: Math.min(version, 5),
        listGroups: Math.min(version, 5),
        leaveGroup: Math.min(version, 5),
      }

      const coordinator = await client.request<Partial<FindCoordinatorRequest>, FindCoordinatorResponse>(
        findCoordinator,
        companions.findCoordinator,
        companions.findCoordinator >= 4 ? { keyType: 0, coordinatorKeys: [groupId] } : { key: groupId, keyType: 0 },
      )
      const found = companions.findCoordinator >= 4 ? coordinator.coordinators![0]! : coordinator
      expect(found).toMatchObject({ errorCode: 0, nodeId: 1, host: '127.0.0.1', port: broker.port })

      let joined = await join(client, { version, groupId, topics: ['ticks'], sessionTimeoutMs: 6000 })
      if (version >= 4) {
        expect(joined.errorCode).toBe(MEMBER_ID_REQUIRED)
        joined = await join(client, { version, groupId, memberId: joined.memberId, topics: ['ticks'], sessionTimeoutMs: 6000 })
      }
      expect(joined).toMatchObject({ errorCode: 0, generationId: 1, protocolName: 'range', leader: joined.memberId })
      if (version >= 7) expect(joined.protocolType).toBe('consumer')
      expect(joined.members.map((m) => [m.memberId, readSubscription(m.metadata)])).toEqual([[joined.memberId, ['ticks']]])

      const identity = { groupId, generationId: joined.generationId!, memberId: joined.memberId }
      const synced = await sync(client, {
        version: companions.syncGroup,
        ...identity,
        protocolType: companions.syncGroup >= 5 ? 'consumer' : null,
        protocolName: companions.syncGroup >= 5 ? 'range' : null,
        assignments: { [joined.memberId]: { ticks: [0, 1] } },
      })
      expect(synced.errorCode).toBe(0)
      expect(readAssignment(synced.assignment)).toEqual({ ticks: [0, 1] })
      if (companions.syncGroup >= 5) expect(synced).toMatchObject({ protocolType: 'consumer', protocolName: 'range' })
      expect(await heartbeatOnce(client, { version: companions.heartbeat, ...identity })).toBe(0)

      const codes = await commit(client, {
        version: companions.offsetCommit,
        ...identity,
        offsets: { ticks: { 1: { offset: BigInt(100 + version), metadata: `v${version}` } } },
      })
      expect(codes).toEqual({ ticks: { 1: 0 } })
      expect(await fetchCommitted(companions.offsetFetch, groupId)).toEqual({ offset: BigInt(100 + version), metadata: `v${version}` })

      const listed = await client.request<Partial<ListGroupsRequest>, ListGroupsResponse>(listGroups, companions.listGroups, { statesFilter: [], typesFilter: [] })
      const entry = listed.groups.find((g) => g.groupId === groupId)
      expect(entry).toMatchObject({ protocolType: 'consumer' })
      if (companions.listGroups >= 4) expect(entry!.groupState).toBe('Stable')
      if (companions.listGroups >= 5) {
        // KIP-848's types: every group here is a classic one; the filter reads types in any case.
        expect(entry!.groupType).toBe('classic')
        const typed = async (typesFilter: string[]) =>
          (await client.request<Partial<ListGroupsRequest>, ListGroupsResponse>(listGroups, 5, { statesFilter: [], typesFilter })).groups.map((g) => g.groupId)
        expect(await typed(['Classic'])).toContain(groupId)
        expect(await typed(['consumer', 'share'])).toEqual([])
      }

      const described = await client.request<Partial<DescribeGroupsRequest>, DescribeGroupsResponse>(describeGroups, companions.describeGroups, { groups: [groupId] })
      expect(described.groups[0]).toMatchObject({ errorCode: 0, groupState: 'Stable', protocolType: 'consumer', protocolData: 'range' })
      expect(readAssignment(described.groups[0]!.members[0]!.memberAssignment)).toEqual({ ticks: [0, 1] })

      const left = await client.request<Partial<LeaveGroupRequest>, LeaveGroupResponse>(
        leaveGroup,
        companions.leaveGroup,
        companions.leaveGroup >= 3 ? { groupId, members: [{ memberId: joined.memberId, groupInstanceId: null, reason: null }] } : { groupId, memberId: joined.memberId },
      )
      expect(left.errorCode).toBe(0)
      if (companions.leaveGroup >= 3) expect(left.members!.map((m) => m.errorCode)).toEqual([0])
      const after = await client.request<Partial<DescribeGroupsRequest>, DescribeGroupsResponse>(describeGroups, companions.describeGroups, { groups: [groupId] })
      expect(after.groups[0]).toMatchObject({ groupState: 'Empty', members: [] })
    })
  }

  it('OffsetCommit v0 is a standalone commit, and DeleteGroups v0-2 delete empty groups', async () => {
    expect(await commit(client, { version: 0, groupId: 'standalone-v0', offsets: { ticks: { 0: 5n } } })).toEqual({ ticks: { 0: 0 } })
    expect(await committedOffsets(client, 'standalone-v0', { ticks: [0] })).toEqual({ ticks: { 0: 5n } })
    for (let version = 0; version <= 2; version++) {
      const response = await client.request<DeleteGroupsRequest, DeleteGroupsResponse>(deleteGroups, version, { groupsNames: [`versions-${version}`, 'no-such-group'] })
      expect(response.results.map((r) => [r.groupId, r.errorCode])).toEqual([
        [`versions-${version}`, 0],
        ['no-such-group', 69],
      ])
    }
  })
})
