/**
 * The classic group protocol's edge cases, spoken by hand over the wire (test/helpers/groups-wire.ts) to one real
 * broker process: the errors Kafka answers (GroupCoordinator.scala / reference/kafka-clients.md §4 "Group
 * coordinator"), and that after each one the group it was aimed at carries on undisturbed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { KafkaClient } from '../../../client/kafka-client.js'
import { offsetFetch, type OffsetFetchRequest, type OffsetFetchResponse } from '../../../protocol/messages/offset-fetch.js'
import { listGroups, type ListGroupsRequest, type ListGroupsResponse } from '../../../protocol/messages/list-groups.js'
import { offsetDelete, type OffsetDeleteRequest, type OffsetDeleteResponse } from '../../../protocol/messages/offset-delete.js'
import { describeGroups, type DescribeGroupsRequest, type DescribeGroupsResponse } from '../../../protocol/messages/describe-groups.js'
import { leaveGroup, type LeaveGroupRequest, type LeaveGroupResponse } from '../../../protocol/messages/leave-group.js'
import { alterConfigs, type AlterConfigsRequest, type AlterConfigsResponse } from '../../../protocol/messages/alter-configs.js'
import {
  incrementalAlterConfigs,
  type IncrementalAlterConfigsRequest,
  type IncrementalAlterConfigsResponse,
} from '../../../protocol/messages/incremental-alter-configs.js'
import { describeConfigs, type DescribeConfigsRequest, type DescribeConfigsResponse } from '../../../protocol/messages/describe-configs.js'
import { startConfiguredBroker, FAST_GROUPS } from '../../helpers/broker-config.js'
import type { BrokerProcess } from '../../helpers/broker.js'
import { connect, createTopic } from '../../helpers/kafka.js'
import {
  commit,
  committedOffsets,
  findGroupCoordinator,
  formGroup,
  heartbeatOnce,
  join,
  joinWithMemberId,
  keepAlive,
  leave,
  readAssignment,
  readSubscription,
  subscriptionBytes,
  sync,
  type Assignment,
  type RawMember,
} from '../../helpers/groups-wire.js'
import { waitFor } from '../../helpers/wait.js'
import { loggedErrors } from '../../helpers/broker-log.js'

const Err = {
  NONE: 0,
  UNKNOWN_TOPIC_OR_PARTITION: 3,
  ILLEGAL_GENERATION: 22,
  INCONSISTENT_GROUP_PROTOCOL: 23,
  UNKNOWN_MEMBER_ID: 25,
  INVALID_SESSION_TIMEOUT: 26,
  REBALANCE_IN_PROGRESS: 27,
  MEMBER_ID_REQUIRED: 79,
  GROUP_SUBSCRIBED_TO_TOPIC: 86,
  GROUP_ID_NOT_FOUND: 69,
  INVALID_CONFIG: 40,
  INVALID_REQUEST: 42,
  INVALID_GROUP_ID: 24,
} as const

const TOPIC_RESOURCE = 2

describe('group protocol edge cases over the wire', () => {
  let broker: BrokerProcess
  const clients: KafkaClient[] = []

  /** A fresh connection: a pending JoinGroup holds its connection's later answers, so each member gets its own. */
  async function client(): Promise<KafkaClient> {
    const c = await connect(broker)
    clients.push(c)
    return c
  }

  async function describeGroup(groupId: string) {
    const c = await client()
    const response = await c.request<DescribeGroupsRequest, DescribeGroupsResponse>(describeGroups, 5, { groups: [groupId], includeAuthorizedOperations: false })
    return response.groups[0]!
  }

  /** The group still works: its member heartbeats without error and can commit. */
  async function expectUndisturbed(groupId: string, member: RawMember): Promise<void> {
    expect(await heartbeatOnce(member.client, { groupId, generationId: member.generationId, memberId: member.memberId })).toBe(Err.NONE)
    expect((await describeGroup(groupId)).groupState).toBe('Stable')
  }

  beforeAll(async () => {
    broker = await startConfiguredBroker(FAST_GROUPS)
    await createTopic(broker, 'events', { partitions: 4 })
    await createTopic(broker, 'audit', { partitions: 2 })
    const c = await client()
    expect((await findGroupCoordinator(c, 'any')).errorCode).toBe(Err.NONE)
  })
  afterAll(async () => {
    for (const c of clients) c.close()
    await broker?.stop()
    broker?.cleanup()
    // Checked once the process is gone, so that shutdown is included.
    if (broker) expect(loggedErrors(broker)).toEqual([])
  })

  describe('JoinGroup', () => {
    it('v3 joins directly with an empty member id; MEMBER_ID_REQUIRED comes only from v4 (KIP-394)', async () => {
      // kafka-go's v1 joins hung on a broker that sent MEMBER_ID_REQUIRED before v4 (reference/kafka-clients.md §4).
      const v3 = await join(await client(), { version: 3, groupId: 'join-v3', topics: ['events'] })
      expect(v3).toMatchObject({ errorCode: Err.NONE, generationId: 1 })
      expect(v3.memberId).not.toBe('')
      expect(v3.leader).toBe(v3.memberId)
      expect(v3.members.map((m) => m.memberId)).toEqual([v3.memberId])

      const c = await client()
      const first = await join(c, { version: 4, groupId: 'join-v4', topics: ['events'] })
      expect(first.errorCode).toBe(Err.MEMBER_ID_REQUIRED)
      expect(first.memberId).not.toBe('')
      expect((await describeGroup('join-v4')).members).toEqual([])
      const second = await join(c, { version: 4, groupId: 'join-v4', memberId: first.memberId, topics: ['events'] })
      expect(second).toMatchObject({ errorCode: Err.NONE, generationId: 1, memberId: first.memberId, leader: first.memberId })
    })

    it('a protocol type or protocols that do not match the group are INCONSISTENT_GROUP_PROTOCOL; the group carries on', async () => {
      const [member] = await formGroup([await client()], { groupId: 'consistent', topics: { events: 4 } })
      const stranger = await client()
      const attempts = [
        { protocolType: 'connect' },
        { protocolType: '' },
        { protocols: [] },
        { protocols: [{ name: 'roundrobin', metadata: subscriptionBytes(['events']) }] },
      ]
      for (const attempt of attempts) {
        const answer = await join(stranger, { version: 5, groupId: 'consistent', memberId: '', ...attempt })
        expect(answer.errorCode, JSON.stringify(attempt)).toBe(Err.INCONSISTENT_GROUP_PROTOCOL)
      }
      await expectUndisturbed('consistent', member!)
      expect((await describeGroup('consistent')).members.map((m) => m.memberId)).toEqual([member!.memberId])
    })

    it('session timeouts outside group.min/max.session.timeout.ms are INVALID_SESSION_TIMEOUT', async () => {
      const c = await client()
      // FAST_GROUPS sets the minimum to 1000 ms; the maximum is Kafka's default, 1800000 ms.
      for (const sessionTimeoutMs of [999, 1_800_001]) {
        const answer = await join(c, { version: 5, groupId: 'timeouts', sessionTimeoutMs, topics: ['events'] })
        expect(answer.errorCode, `session timeout ${sessionTimeoutMs}`).toBe(Err.INVALID_SESSION_TIMEOUT)
      }
      const ok = await joinWithMemberId(c, { version: 5, groupId: 'timeouts', sessionTimeoutMs: 1000, topics: ['events'] })
      expect(ok.errorCode).toBe(Err.NONE)
    })

    it('the group picks a protocol every member supports, by the members\' preferences', async () => {
      const subscription = subscriptionBytes(['events'])
      const [a, b] = [await client(), await client()]
      const [joinedA, joinedB] = await Promise.all([
        joinWithMemberId(a, { version: 5, groupId: 'selection', protocols: [{ name: 'cooperative-sticky', metadata: subscription }, { name: 'range', metadata: subscription }] }),
        joinWithMemberId(b, { version: 5, groupId: 'selection', protocols: [{ name: 'roundrobin', metadata: subscription }, { name: 'range', metadata: subscription }] }),
      ])
      expect(joinedA.protocolName).toBe('range')
      expect(joinedB.protocolName).toBe('range')
      expect(joinedA.generationId).toBe(joinedB.generationId)
    })
  })

  describe('SyncGroup and Heartbeat', () => {
    it('SyncGroup with a wrong generation is ILLEGAL_GENERATION and changes nothing', async () => {
      const [member] = await formGroup([await client()], { groupId: 'generations', topics: { events: 4 } })
      for (const generationId of [member!.generationId + 1, member!.generationId - 1]) {
        const answer = await sync(member!.client, { version: 3, groupId: 'generations', generationId, memberId: member!.memberId, assignments: { [member!.memberId]: { events: [0] } } })
        expect(answer.errorCode).toBe(Err.ILLEGAL_GENERATION)
      }
      // The real generation still has the assignment the leader gave, not the one sent with the wrong generation.
      const again = await sync(member!.client, { version: 3, groupId: 'generations', generationId: member!.generationId, memberId: member!.memberId })
      expect(readAssignment(again.assignment)).toEqual({ events: [0, 1, 2, 3] })
      await expectUndisturbed('generations', member!)
    })

    it('Heartbeat from an unknown member is UNKNOWN_MEMBER_ID, from a stale generation ILLEGAL_GENERATION', async () => {
      const [member] = await formGroup([await client()], { groupId: 'heartbeats', topics: { events: 4 } })
      const stranger = await client()
      expect(await heartbeatOnce(stranger, { groupId: 'heartbeats', generationId: member!.generationId, memberId: 'nobody' })).toBe(Err.UNKNOWN_MEMBER_ID)
      expect(await heartbeatOnce(stranger, { groupId: 'no-such-group', generationId: 1, memberId: 'nobody' })).toBe(Err.UNKNOWN_MEMBER_ID)
      expect(await heartbeatOnce(member!.client, { groupId: 'heartbeats', generationId: member!.generationId + 5, memberId: member!.memberId })).toBe(Err.ILLEGAL_GENERATION)
      await expectUndisturbed('heartbeats', member!)
    })

    it('Heartbeat and SyncGroup naming an instance id the group does not know are UNKNOWN_MEMBER_ID, and such a SyncGroup does not complete the rebalance (ClassicGroup.validateMember)', async () => {
      const c = await client()
      const joined = await joinWithMemberId(c, { version: 5, groupId: 'no-such-instance', topics: ['events'] })
      expect(joined.errorCode).toBe(Err.NONE)
      const identity = { groupId: 'no-such-instance', generationId: joined.generationId!, memberId: joined.memberId, groupInstanceId: 'not-registered' }
      expect(await heartbeatOnce(c, identity)).toBe(Err.UNKNOWN_MEMBER_ID)
      expect((await sync(c, { version: 5, ...identity, assignments: { [joined.memberId]: { events: [0, 1, 2, 3] } } })).errorCode).toBe(Err.UNKNOWN_MEMBER_ID)
      expect((await describeGroup('no-such-instance')).groupState).toBe('CompletingRebalance')
      expect((await sync(c, { version: 5, groupId: 'no-such-instance', generationId: joined.generationId!, memberId: joined.memberId, assignments: { [joined.memberId]: { events: [0, 1, 2, 3] } } })).errorCode).toBe(Err.NONE)
      expect((await describeGroup('no-such-instance')).groupState).toBe('Stable')
    })

    it('a Heartbeat while the group rebalances is REBALANCE_IN_PROGRESS, and the member rejoins into the next generation', async () => {
      const [first] = await formGroup([await client()], { groupId: 'rebalancing', topics: { events: 4 } })
      const newcomer = await client()
      // The newcomer's join parks until every member has rejoined: it starts the rebalance.
      const newcomerJoin = joinWithMemberId(newcomer, { version: 5, groupId: 'rebalancing', topics: ['events'] })
      const code = await waitFor('the group to start rebalancing', async () => {
        const c = await heartbeatOnce(first!.client, { groupId: 'rebalancing', generationId: first!.generationId, memberId: first!.memberId })
        return c !== Err.NONE && c
      })
      expect(code).toBe(Err.REBALANCE_IN_PROGRESS)
      const rejoined = await join(first!.client, { version: 5, groupId: 'rebalancing', memberId: first!.memberId, topics: ['events'] })
      const joined = await newcomerJoin
      expect(rejoined).toMatchObject({ errorCode: Err.NONE, generationId: first!.generationId + 1 })
      expect(joined).toMatchObject({ errorCode: Err.NONE, generationId: first!.generationId + 1, leader: first!.memberId })
      expect(rejoined.members.map((m) => m.memberId).sort()).toEqual([first!.memberId, joined.memberId].sort())
    })

    it('LeaveGroup v3+ answers each member of the batch on its own', async () => {
      const [a, b] = await formGroup([await client(), await client()], { groupId: 'leaving', topics: { events: 4 } })
      const answer = await leave(a!.client, 'leaving', [{ memberId: a!.memberId }, { memberId: 'nobody' }])
      expect(answer.errorCode).toBe(Err.NONE)
      expect(answer.members!.map((m) => [m.memberId, m.errorCode])).toEqual([
        [a!.memberId, Err.NONE],
        ['nobody', Err.UNKNOWN_MEMBER_ID],
      ])
      // The one left behind is asked to rejoin and then owns everything.
      expect(await heartbeatOnce(b!.client, { groupId: 'leaving', generationId: b!.generationId, memberId: b!.memberId })).toBe(Err.REBALANCE_IN_PROGRESS)
      const rejoined = await join(b!.client, { version: 5, groupId: 'leaving', memberId: b!.memberId, topics: ['events'] })
      expect(rejoined).toMatchObject({ errorCode: Err.NONE, generationId: b!.generationId + 1, leader: b!.memberId })
      expect(rejoined.members.map((m) => m.memberId)).toEqual([b!.memberId])
    })
  })

  describe('rebalances', () => {
    it('a member that does not rejoin within the rebalance timeout is dropped; the others complete without it', async () => {
      // The group waits for the longest rebalance timeout of its members: 1.5 s for all of them here.
      const [a, b] = await formGroup([await client(), await client()], { groupId: 'laggard', topics: { events: 4 }, rebalanceTimeoutMs: 1500 })
      const newcomer = await client()
      const newcomerJoin = joinWithMemberId(newcomer, { version: 5, groupId: 'laggard', topics: ['events'], rebalanceTimeoutMs: 1500 })
      await waitFor('the rebalance to start', async () => (await heartbeatOnce(a!.client, { groupId: 'laggard', generationId: a!.generationId, memberId: a!.memberId })) === Err.REBALANCE_IN_PROGRESS)
      // A rejoins; B stays silent (its session, 10 s, outlives the rebalance timeout).
      const [rejoined, joined] = await Promise.all([
        join(a!.client, { version: 5, groupId: 'laggard', memberId: a!.memberId, topics: ['events'], rebalanceTimeoutMs: 1500 }),
        newcomerJoin,
      ])
      expect(rejoined.generationId).toBe(a!.generationId + 1)
      expect(joined.generationId).toBe(a!.generationId + 1)
      const leaderAnswer = [rejoined, joined].find((j) => j.leader === j.memberId)!
      expect(leaderAnswer.members.map((m) => m.memberId).sort()).toEqual([a!.memberId, joined.memberId].sort())
      expect(await heartbeatOnce(b!.client, { groupId: 'laggard', generationId: b!.generationId, memberId: b!.memberId })).toBe(Err.UNKNOWN_MEMBER_ID)
    })

    it('a member that does not send SyncGroup within the rebalance timeout is removed, however it heartbeats, and the members waiting in SyncGroup are told to rejoin (GroupMetadataManager.expirePendingSync)', async () => {
      const options = { version: 5, groupId: 'never-syncs', topics: ['events'], rebalanceTimeoutMs: 1500, sessionTimeoutMs: 30_000 }
      const [first, second] = [await client(), await client()]
      const joined = await Promise.all([joinWithMemberId(first, options), joinWithMemberId(second, options)])
      const leader = joined.find((j) => j.leader === j.memberId)!
      const follower = joined.find((j) => j.leader !== j.memberId)!
      const [leaderClient, followerClient] = leader === joined[0] ? [first, second] : [second, first]
      // The leader heartbeats (its session, 30 s, never runs out here) but never sends SyncGroup.
      const beats = keepAlive(leaderClient, { groupId: 'never-syncs', generationId: leader.generationId!, memberId: leader.memberId })
      try {
        const waiting = await sync(followerClient, { version: 5, groupId: 'never-syncs', generationId: follower.generationId!, memberId: follower.memberId })
        expect(waiting.errorCode).toBe(Err.REBALANCE_IN_PROGRESS)
        await waitFor('the leader to be removed', () => beats.codes.at(-1) === Err.UNKNOWN_MEMBER_ID)
      } finally {
        beats.stop()
      }
    })

    it('DescribeGroups names the protocol and shows the members\' subscriptions only once the group is Stable again, not while the leader has yet to sync', async () => {
      const [a, b] = await formGroup([await client(), await client()], { groupId: 'mid-rebalance', topics: { events: 4 } })
      const leader = a!.isLeader ? a! : b!
      const follower = a!.isLeader ? b! : a!
      const stable = await describeGroup('mid-rebalance')
      expect(stable).toMatchObject({ groupState: 'Stable', protocolData: 'range' })
      expect(stable.members.map((m) => readSubscription(Buffer.from(m.memberMetadata)))).toEqual([['events'], ['events']])

      // Both rejoin: the join completes and the group waits for the leader's assignment (CompletingRebalance). Kafka's
      // GroupMetadata.summary answers a group in any state but Stable with no protocol and members without metadata
      // or assignment, which kafka-consumer-groups.sh shows as a rebalancing group.
      const [leaderJoin, followerJoin] = await Promise.all([
        join(leader.client, { version: 5, groupId: 'mid-rebalance', memberId: leader.memberId, topics: ['events', 'audit'] }),
        join(follower.client, { version: 5, groupId: 'mid-rebalance', memberId: follower.memberId, topics: ['events'] }),
      ])
      const completing = await describeGroup('mid-rebalance')
      expect(completing).toMatchObject({ groupState: 'CompletingRebalance', protocolType: 'consumer', protocolData: '' })
      expect(completing.members.map((m) => [m.memberMetadata.length, m.memberAssignment.length])).toEqual([[0, 0], [0, 0]])

      const assignments: Record<string, Assignment> = { [leader.memberId]: { events: [0, 1], audit: [0, 1] }, [follower.memberId]: { events: [2, 3] } }
      await Promise.all([
        sync(leader.client, { version: 3, groupId: 'mid-rebalance', generationId: leaderJoin.generationId!, memberId: leader.memberId, assignments }),
        sync(follower.client, { version: 3, groupId: 'mid-rebalance', generationId: followerJoin.generationId!, memberId: follower.memberId }),
      ])
      const again = await describeGroup('mid-rebalance')
      expect(again).toMatchObject({ groupState: 'Stable', protocolData: 'range' })
      expect(again.members.map((m) => readSubscription(Buffer.from(m.memberMetadata))).sort((x, y) => x.length - y.length)).toEqual([['events'], ['events', 'audit']])
    })

    it('when the leader leaves instead of syncing, the waiting members are told to rejoin and get a new leader', async () => {
      const [a, b] = await formGroup([await client(), await client()], { groupId: 'leaderless', topics: { events: 4 } })
      const leader = a!.isLeader ? a! : b!
      const follower = a!.isLeader ? b! : a!
      // The leader rejoins with a new subscription, which starts a rebalance; the follower rejoins into it, syncs and
      // waits for the leader's assignment.
      const leaderJoining = join(leader.client, { version: 5, groupId: 'leaderless', memberId: leader.memberId, topics: ['events', 'audit'] })
      await waitFor('the rebalance to start', async () => (await describeGroup('leaderless')).groupState === 'PreparingRebalance')
      const [leaderJoin, followerJoin] = await Promise.all([
        leaderJoining,
        join(follower.client, { version: 5, groupId: 'leaderless', memberId: follower.memberId, topics: ['events'] }),
      ])
      expect(leaderJoin.leader).toBe(leader.memberId)
      expect(followerJoin.generationId).toBe(leader.generationId + 1)
      const waiting = sync(follower.client, { version: 3, groupId: 'leaderless', generationId: followerJoin.generationId!, memberId: follower.memberId })
      // The follower's heartbeats are fine while it waits (CompletingRebalance).
      const observer = await client()
      expect(await heartbeatOnce(observer, { groupId: 'leaderless', generationId: followerJoin.generationId!, memberId: follower.memberId })).toBe(Err.NONE)
      expect((await describeGroup('leaderless')).groupState).toBe('CompletingRebalance')

      await leave(observer, 'leaderless', [{ memberId: leader.memberId }])
      expect((await waiting).errorCode).toBe(Err.REBALANCE_IN_PROGRESS)
      const again = await join(follower.client, { version: 5, groupId: 'leaderless', memberId: follower.memberId, topics: ['events'] })
      expect(again).toMatchObject({ errorCode: Err.NONE, generationId: followerJoin.generationId! + 1, leader: follower.memberId })
      const synced = await sync(follower.client, { version: 3, groupId: 'leaderless', generationId: again.generationId!, memberId: follower.memberId, assignments: { [follower.memberId]: { events: [0, 1, 2, 3] } } })
      expect(readAssignment(synced.assignment)).toEqual({ events: [0, 1, 2, 3] })
    })
  })

  describe('offsets', () => {
    it('OffsetCommit to an unknown topic or partition fails for those partitions only; the rest are committed', async () => {
      const [member] = await formGroup([await client()], { groupId: 'partial-commit', topics: { events: 4 } })
      const codes = await commit(member!.client, {
        groupId: 'partial-commit',
        generationId: member!.generationId,
        memberId: member!.memberId,
        offsets: { events: { 0: 10n, 1: 11n, 9: 5n }, 'no-such-topic': { 0: 1n } },
      })
      expect(codes).toEqual({ events: { 0: Err.NONE, 1: Err.NONE, 9: Err.UNKNOWN_TOPIC_OR_PARTITION }, 'no-such-topic': { 0: Err.UNKNOWN_TOPIC_OR_PARTITION } })
      expect(await committedOffsets(member!.client, 'partial-commit', { events: [0, 1, 2, 9], 'no-such-topic': [0] })).toEqual({
        events: { 0: 10n, 1: 11n, 2: -1n, 9: -1n },
        'no-such-topic': { 0: -1n },
      })
      await expectUndisturbed('partial-commit', member!)
    })

    it('OffsetCommit from a stranger or a stale generation is refused and commits nothing', async () => {
      const [member] = await formGroup([await client()], { groupId: 'guarded', topics: { events: 4 } })
      const stranger = await client()
      expect(await commit(stranger, { groupId: 'guarded', generationId: member!.generationId, memberId: 'nobody', offsets: { events: { 0: 5n } } })).toEqual({ events: { 0: Err.UNKNOWN_MEMBER_ID } })
      expect(await commit(member!.client, { groupId: 'guarded', generationId: member!.generationId + 1, memberId: member!.memberId, offsets: { events: { 0: 5n } } })).toEqual({ events: { 0: Err.ILLEGAL_GENERATION } })
      // A standalone commit (generation -1, no member) is only for groups without members (validateOffsetCommit in
      // GroupCoordinator.scala: "When the group is non-empty, only members can commit offsets").
      expect(await commit(stranger, { groupId: 'guarded', offsets: { events: { 0: 5n } } })).toEqual({ events: { 0: Err.UNKNOWN_MEMBER_ID } })
      // A generation for a group that does not exist is from an older generation (handleCommitOffsets).
      expect(await commit(stranger, { groupId: 'never-formed', generationId: 3, memberId: 'ghost', offsets: { events: { 0: 5n } } })).toEqual({ events: { 0: Err.ILLEGAL_GENERATION } })
      // From v9, GROUP_ID_NOT_FOUND (OffsetMetadataManager.validateOffsetCommit).
      expect(await commit(stranger, { version: 9, groupId: 'never-formed', generationId: 3, memberId: 'ghost', offsets: { events: { 0: 5n } } })).toEqual({ events: { 0: Err.GROUP_ID_NOT_FOUND } })
      expect(await commit(stranger, { groupId: 'never-formed', memberId: 'ghost', offsets: { events: { 0: 5n } } })).toEqual({ events: { 0: Err.UNKNOWN_MEMBER_ID } })
      expect(await committedOffsets(stranger, 'never-formed', { events: [0] })).toEqual({ events: { 0: -1n } })
      expect(await committedOffsets(stranger, 'guarded', { events: [0] })).toEqual({ events: { 0: -1n } })
      await expectUndisturbed('guarded', member!)
    })

    it('generation -1 into an Empty group is a standalone commit, whatever member or instance id it names (ClassicGroup.validateOffsetCommit)', async () => {
      const [member] = await formGroup([await client()], { groupId: 'left-behind', topics: { events: 4 } })
      expect((await leave(member!.client, 'left-behind', [{ memberId: member!.memberId }])).errorCode).toBe(Err.NONE)
      await waitFor('the group to be Empty', async () => (await describeGroup('left-behind')).groupState === 'Empty')
      // A consumer that left the group and commits with its old member id, and an admin naming an instance id.
      expect(await commit(member!.client, { groupId: 'left-behind', memberId: member!.memberId, offsets: { events: { 0: 11n } } })).toEqual({ events: { 0: Err.NONE } })
      expect(await commit(member!.client, { groupId: 'left-behind', groupInstanceId: 'some-instance', offsets: { events: { 1: 12n } } })).toEqual({ events: { 1: Err.NONE } })
      expect(await committedOffsets(member!.client, 'left-behind', { events: [0, 1] })).toEqual({ events: { 0: 11n, 1: 12n } })
    })

    it('the empty group id takes standalone commits and fetches, as Kafka keeps it for old consumers (GroupCoordinatorService.commitOffsets)', async () => {
      const c = await client()
      for (const version of [0, 2, 8]) {
        expect(await commit(c, { version, groupId: '', offsets: { events: { 0: BigInt(10 + version) } } }), `v${version}`).toEqual({ events: { 0: Err.NONE } })
        expect(await committedOffsets(c, '', { events: [0] })).toEqual({ events: { 0: BigInt(10 + version) } })
      }
      // The group APIs that GroupCoordinatorService checks with isGroupIdNotEmpty refuse it, even once it holds offsets.
      expect(await heartbeatOnce(c, { groupId: '', generationId: 1, memberId: 'someone' })).toBe(Err.INVALID_GROUP_ID)
      expect((await sync(c, { version: 5, groupId: '', generationId: 1, memberId: 'someone' })).errorCode).toBe(Err.INVALID_GROUP_ID)
      expect((await leave(c, '', [{ memberId: 'someone' }])).errorCode).toBe(Err.INVALID_GROUP_ID)
      // v0-2 name one member at the top level, and carry the refusal there too.
      expect((await c.request<Partial<LeaveGroupRequest>, LeaveGroupResponse>(leaveGroup, 0, { groupId: '', memberId: 'someone' })).errorCode).toBe(Err.INVALID_GROUP_ID)
      const deleted = await c.request<OffsetDeleteRequest, OffsetDeleteResponse>(offsetDelete, 0, { groupId: '', topics: [{ name: 'events', partitions: [{ partitionIndex: 0 }] }] })
      expect(deleted.errorCode).toBe(Err.INVALID_GROUP_ID)
      expect(await committedOffsets(c, '', { events: [0] })).toEqual({ events: { 0: 18n } })
    })

    it('OffsetFetch v8 answers several groups at once (KIP-709), each with its own offsets, -1 where there are none', async () => {
      const c = await client()
      await commit(c, { groupId: 'multi-a', offsets: { events: { 0: 3n, 2: 7n } } })
      await commit(c, { groupId: 'multi-b', offsets: { audit: { 1: { offset: 42n, metadata: 'checkpoint', leaderEpoch: 0 } } } })
      const response = await c.request<Partial<OffsetFetchRequest>, OffsetFetchResponse>(offsetFetch, 8, {
        groups: [
          { groupId: 'multi-a', memberId: null, memberEpoch: -1, topics: [{ name: 'events', partitionIndexes: [0, 1, 2] }] },
          { groupId: 'multi-b', memberId: null, memberEpoch: -1, topics: null },
          { groupId: 'multi-unknown', memberId: null, memberEpoch: -1, topics: [{ name: 'events', partitionIndexes: [0] }] },
        ],
        requireStable: false,
      })
      const byGroup = Object.fromEntries(
        response.groups!.map((g) => [
          g.groupId,
          { errorCode: g.errorCode, topics: g.topics.map((t) => ({ name: t.name, partitions: t.partitions.map((p) => [p.partitionIndex, p.committedOffset, p.committedLeaderEpoch, p.metadata, p.errorCode]) })) },
        ]),
      )
      expect(byGroup).toEqual({
        'multi-a': { errorCode: 0, topics: [{ name: 'events', partitions: [[0, 3n, -1, '', 0], [1, -1n, -1, '', 0], [2, 7n, -1, '', 0]] }] },
        'multi-b': { errorCode: 0, topics: [{ name: 'audit', partitions: [[1, 42n, 0, 'checkpoint', 0]] }] },
        'multi-unknown': { errorCode: 0, topics: [{ name: 'events', partitions: [[0, -1n, -1, '', 0]] }] },
      })
    })

    it('OffsetDelete during a group\'s first rebalance counts every topic as subscribed, its members\' subscriptions not being known yet (ClassicGroup.isSubscribedToTopic)', async () => {
      const c = await client()
      expect(await commit(c, { groupId: 'first-rebalance', offsets: { audit: { 0: 4n } } })).toEqual({ audit: { 0: Err.NONE } })
      // A member joins (v3: at once) and the group waits its initial delay in PreparingRebalance, generation 0.
      const joining = join(await client(), { version: 3, groupId: 'first-rebalance', topics: ['audit'] })
      const deleted = await c.request<OffsetDeleteRequest, OffsetDeleteResponse>(offsetDelete, 0, { groupId: 'first-rebalance', topics: [{ name: 'audit', partitions: [{ partitionIndex: 0 }] }] })
      expect(deleted.topics[0]!.partitions[0]!.errorCode).toBe(Err.GROUP_SUBSCRIBED_TO_TOPIC)
      expect((await joining).errorCode).toBe(Err.NONE)
      expect(await committedOffsets(c, 'first-rebalance', { audit: [0] })).toEqual({ audit: { 0: 4n } })
    })

    it('OffsetDelete refuses topics the group consumes (GROUP_SUBSCRIBED_TO_TOPIC) and deletes the others', async () => {
      const [member] = await formGroup([await client()], { groupId: 'deleting', topics: { events: 4 } })
      await commit(member!.client, { groupId: 'deleting', generationId: member!.generationId, memberId: member!.memberId, offsets: { events: { 0: 5n }, audit: { 0: 6n } } })
      const response = await member!.client.request<OffsetDeleteRequest, OffsetDeleteResponse>(offsetDelete, 0, {
        groupId: 'deleting',
        topics: [
          { name: 'events', partitions: [{ partitionIndex: 0 }] },
          { name: 'audit', partitions: [{ partitionIndex: 0 }] },
        ],
      })
      expect(response.errorCode).toBe(Err.NONE)
      expect(response.topics.map((t) => [t.name, t.partitions.map((p) => p.errorCode)])).toEqual([
        ['events', [Err.GROUP_SUBSCRIBED_TO_TOPIC]],
        ['audit', [Err.NONE]],
      ])
      expect(await committedOffsets(member!.client, 'deleting', { events: [0], audit: [0] })).toEqual({ events: { 0: 5n }, audit: { 0: -1n } })
      const unknown = await member!.client.request<OffsetDeleteRequest, OffsetDeleteResponse>(offsetDelete, 0, { groupId: 'no-such-group', topics: [] })
      expect(unknown.errorCode).toBe(Err.GROUP_ID_NOT_FOUND)
      await expectUndisturbed('deleting', member!)
    })
  })

  describe('topic configs', () => {
    async function topicConfigs(c: KafkaClient, topic: string): Promise<Record<string, string | null>> {
      const response = await c.request<Partial<DescribeConfigsRequest>, DescribeConfigsResponse>(describeConfigs, 4, {
        resources: [{ resourceType: TOPIC_RESOURCE, resourceName: topic, configurationKeys: null }],
      })
      return Object.fromEntries(response.results[0]!.configs.map((e) => [e.name, e.value]))
    }

    it('bad values are INVALID_CONFIG with a message naming the config (a null value INVALID_REQUEST, as Kafka\'s ConfigAdminManager answers), and nothing of the request is applied', async () => {
      const c = await client()
      await createTopic(broker, 'tuned', { configs: { 'retention.ms': '60000' } })
      const before = await topicConfigs(c, 'tuned')
      const cases: { configs: { name: string; value: string | null }[]; names: string }[] = [
        { configs: [{ name: 'retention.ms', value: 'forever' }], names: 'retention.ms' },
        { configs: [{ name: 'segment.ms', value: '1000' }, { name: 'cleanup.policy', value: 'compact,shred' }], names: 'cleanup.policy' },
        { configs: [{ name: 'min.cleanable.dirty.ratio', value: '2' }], names: 'min.cleanable.dirty.ratio' },
        { configs: [{ name: 'max.message.bytes', value: '99999999999' }], names: 'max.message.bytes' },
        { configs: [{ name: 'retention.bytes', value: null }], names: 'retention.bytes' },
        { configs: [{ name: 'log.flush.everything', value: 'true' }], names: 'log.flush.everything' },
      ]
      for (const { configs, names } of cases) {
        const legacy = await c.request<AlterConfigsRequest, AlterConfigsResponse>(alterConfigs, 2, {
          resources: [{ resourceType: TOPIC_RESOURCE, resourceName: 'tuned', configs }],
          validateOnly: false,
        })
        const refusal = configs.some((config) => config.value === null) ? Err.INVALID_REQUEST : Err.INVALID_CONFIG
        expect(legacy.responses[0]!.errorCode, JSON.stringify(configs)).toBe(refusal)
        expect(legacy.responses[0]!.errorMessage).toContain(names)
        const incremental = await c.request<IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse>(incrementalAlterConfigs, 1, {
          resources: [{ resourceType: TOPIC_RESOURCE, resourceName: 'tuned', configs: configs.map((config) => ({ ...config, configOperation: 0 })) }],
          validateOnly: false,
        })
        expect(incremental.responses[0]!.errorCode, JSON.stringify(configs)).toBe(refusal)
        expect(incremental.responses[0]!.errorMessage).toContain(names)
      }
      expect(await topicConfigs(c, 'tuned')).toEqual(before)

      // The topic still takes a good change afterwards.
      const good = await c.request<IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse>(incrementalAlterConfigs, 1, {
        resources: [{ resourceType: TOPIC_RESOURCE, resourceName: 'tuned', configs: [{ name: 'retention.ms', configOperation: 0, value: '120000' }] }],
        validateOnly: false,
      })
      expect(good.responses[0]).toMatchObject({ errorCode: Err.NONE, errorMessage: null })
      expect((await topicConfigs(c, 'tuned'))['retention.ms']).toBe('120000')
    })
  })

  it('ListGroups v4 filters by state, case-insensitively', async () => {
    await formGroup([await client()], { groupId: 'listed-stable', topics: { events: 4 } })
    await commit(await client(), { groupId: 'listed-empty', offsets: { events: { 0: 1n } } })
    const c = await client()
    const list = async (statesFilter: string[]) => {
      const response = await c.request<Partial<ListGroupsRequest>, ListGroupsResponse>(listGroups, 4, { statesFilter })
      expect(response.errorCode).toBe(Err.NONE)
      return new Map(response.groups.map((g) => [g.groupId, g.groupState]))
    }
    const all = await list([])
    expect(all.get('listed-stable')).toBe('Stable')
    expect(all.get('listed-empty')).toBe('Empty')
    const stable = await list(['Stable'])
    expect(stable.has('listed-stable')).toBe(true)
    expect(stable.has('listed-empty')).toBe(false)
    expect([...stable.values()].every((state) => state === 'Stable')).toBe(true)
    const empty = await list(['empty'])
    expect(empty.has('listed-empty')).toBe(true)
    expect([...empty.values()].every((state) => state === 'Empty')).toBe(true)
    expect((await list(['Dead'])).size).toBe(0)
  })
})
