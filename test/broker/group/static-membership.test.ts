/**
 * Static membership (KIP-345, group.instance.id) over the wire: kafkajs 2.2.4 has no group.instance.id, so the
 * members here are Brook's wire client with the generated JoinGroup v5+ definitions. A static member that restarts
 * with the same instance id takes its old place (same generation, same assignment) without the others noticing a
 * rebalance, and its previous member id is fenced (FENCED_INSTANCE_ID) everywhere it could still act. (librdkafka
 * does have group.instance.id: test/clients/kcat-groups.test.ts crashes and restarts a static kcat.)
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { KafkaClient } from '../../../client/kafka-client.js'
import { describeGroups, type DescribeGroupsRequest, type DescribeGroupsResponse } from '../../../protocol/messages/describe-groups.js'
import { startConfiguredBroker, FAST_GROUPS } from '../../helpers/broker-config.js'
import type { BrokerProcess } from '../../helpers/broker.js'
import { connect, createTopic } from '../../helpers/kafka.js'
import { commit, formGroup, heartbeatOnce, join, keepAlive, leave, readAssignment, subscriptionBytes, sync } from '../../helpers/groups-wire.js'
import { waitFor } from '../../helpers/wait.js'
import { loggedErrors } from '../../helpers/broker-log.js'

const FENCED_INSTANCE_ID = 82
const REBALANCE_IN_PROGRESS = 27

describe('static membership (KIP-345)', () => {
  let broker: BrokerProcess
  let opened: KafkaClient[] = []
  const stopKeepAlives: (() => void)[] = []

  async function client(): Promise<KafkaClient> {
    const c = await connect(broker)
    opened.push(c)
    return c
  }

  async function describeGroup(groupId: string) {
    const c = await client()
    return (await c.request<DescribeGroupsRequest, DescribeGroupsResponse>(describeGroups, 5, { groups: [groupId], includeAuthorizedOperations: false })).groups[0]!
  }

  beforeAll(async () => {
    broker = await startConfiguredBroker(FAST_GROUPS)
    await createTopic(broker, 'readings', { partitions: 4 })
  })
  afterEach(() => {
    for (const stop of stopKeepAlives.splice(0)) stop()
    for (const c of opened) c.close()
    opened = []
  })
  afterAll(async () => {
    await broker?.stop()
    broker?.cleanup()
    // Checked once the process is gone, so that shutdown is included.
    if (broker) expect(loggedErrors(broker)).toEqual([])
  })

  it('a restarted static member gets its old assignment back in the same generation; the others never rebalance', async () => {
    const members = await formGroup([await client(), await client()], { groupId: 'static', topics: { readings: 4 }, instanceIds: ['sensor-a', 'sensor-b'] })
    const restarting = members.find((m) => !m.isLeader)!
    const other = members.find((m) => m.isLeader)!
    const others = keepAlive(other.client, { groupId: 'static', generationId: other.generationId, memberId: other.memberId, groupInstanceId: other.groupInstanceId })
    stopKeepAlives.push(others.stop)

    // "Restart": the process and its connection go away, and a new process joins with no member id.
    restarting.client.close()
    const restarted = await client()
    const rejoined = await join(restarted, { version: 5, groupId: 'static', groupInstanceId: restarting.groupInstanceId, topics: ['readings'] })
    expect(rejoined.errorCode).toBe(0)
    expect(rejoined.generationId).toBe(restarting.generationId)
    expect(rejoined.memberId).not.toBe(restarting.memberId)
    expect(rejoined.leader).toBe(other.memberId)
    const synced = await sync(restarted, { version: 5, groupId: 'static', generationId: rejoined.generationId!, memberId: rejoined.memberId, groupInstanceId: restarting.groupInstanceId })
    expect(synced.errorCode).toBe(0)
    expect(readAssignment(synced.assignment)).toEqual(restarting.assignment)
    expect(Object.keys(restarting.assignment)).toEqual(['readings'])

    // The other member kept heartbeating the whole time and was never asked to rejoin.
    const seen = others.codes.length
    await waitFor('two more heartbeats of the other member', () => others.codes.length >= seen + 2)
    expect(others.codes.every((code) => code === 0)).toBe(true)
    const group = await describeGroup('static')
    expect(group.groupState).toBe('Stable')
    expect(group.members.map((m) => [m.groupInstanceId, m.memberId]).sort()).toEqual(
      [
        [restarting.groupInstanceId, rejoined.memberId],
        [other.groupInstanceId, other.memberId],
      ].sort(),
    )
  })

  it('the replaced member id is fenced: Heartbeat, SyncGroup, OffsetCommit, JoinGroup and LeaveGroup get FENCED_INSTANCE_ID', async () => {
    const [a] = await formGroup([await client()], { groupId: 'fencing', topics: { readings: 4 }, instanceIds: ['sensor-a'] })
    const successor = await client()
    const rejoined = await join(successor, { version: 5, groupId: 'fencing', groupInstanceId: 'sensor-a', topics: ['readings'] })
    expect(rejoined.errorCode).toBe(0)

    const stale = { groupId: 'fencing', generationId: a!.generationId, memberId: a!.memberId, groupInstanceId: 'sensor-a' }
    expect(await heartbeatOnce(a!.client, stale)).toBe(FENCED_INSTANCE_ID)
    expect((await sync(a!.client, { version: 5, ...stale })).errorCode).toBe(FENCED_INSTANCE_ID)
    expect(await commit(a!.client, { version: 7, ...stale, offsets: { readings: { 0: 1n } } })).toEqual({ readings: { 0: FENCED_INSTANCE_ID } })
    expect((await join(a!.client, { version: 5, groupId: 'fencing', memberId: a!.memberId, groupInstanceId: 'sensor-a', topics: ['readings'] })).errorCode).toBe(FENCED_INSTANCE_ID)
    const left = await leave(a!.client, 'fencing', [{ memberId: a!.memberId, groupInstanceId: 'sensor-a' }])
    expect(left.members!.map((m) => m.errorCode)).toEqual([FENCED_INSTANCE_ID])

    // None of that disturbed the successor.
    const current = { groupId: 'fencing', generationId: rejoined.generationId!, memberId: rejoined.memberId, groupInstanceId: 'sensor-a' }
    expect(await heartbeatOnce(successor, current)).toBe(0)
    expect(await commit(successor, { version: 7, ...current, offsets: { readings: { 0: 1n } } })).toEqual({ readings: { 0: 0 } })
    expect((await describeGroup('fencing')).members.map((m) => m.memberId)).toEqual([rejoined.memberId])
  })

  it('a restarted static leader is not made to run its assignor for a Stable group (v5: the old leader id; v9: skipAssignment)', async () => {
    const members = await formGroup([await client(), await client()], { groupId: 'static-leader', topics: { readings: 4 }, instanceIds: ['lead', 'follow'] })
    const leader = members.find((m) => m.isLeader)!
    const follower = members.find((m) => !m.isLeader)!

    // Before v9 the answer names the leader as it was (GroupCoordinator.updateStaticMemberAndRebalance): the restarted
    // member, whose id changed, does not take itself for the leader and computes no assignment that a Stable group
    // would ignore.
    const v5 = await join(await client(), { version: 5, groupId: 'static-leader', groupInstanceId: leader.groupInstanceId, topics: ['readings'] })
    expect(v5).toMatchObject({ errorCode: 0, generationId: leader.generationId, leader: leader.memberId, members: [] })
    expect(v5.memberId).not.toBe(leader.memberId)

    // From v9 (KIP-814) it learns that it leads, with skipAssignment set, and gets the members to watch.
    const v9 = await join(await client(), { version: 9, groupId: 'static-leader', groupInstanceId: leader.groupInstanceId, topics: ['readings'] })
    expect(v9).toMatchObject({ errorCode: 0, generationId: leader.generationId, leader: v9.memberId, skipAssignment: true })
    expect(v9.members.map((m) => m.groupInstanceId).sort()).toEqual(['follow', 'lead'])

    const followerIdentity = { groupId: 'static-leader', generationId: follower.generationId, memberId: follower.memberId, groupInstanceId: follower.groupInstanceId }
    expect(await heartbeatOnce(follower.client, followerIdentity)).toBe(0)
    const synced = await sync(follower.client, { version: 5, ...followerIdentity })
    expect(readAssignment(synced.assignment)).toEqual(follower.assignment)
  })

  it('a static member that comes back with another subscription keeps the generation; one whose return changes the selected protocol makes the group rebalance', async () => {
    // Kafka compares only the protocol the group would select (GroupMetadataManager
    // .updateStaticMemberThenRebalanceOrCompleteJoin), not the member's metadata: noticing a changed subscription is
    // the client's job once it has its assignment.
    await createTopic(broker, 'alerts', { partitions: 2 })
    const [a, b] = await formGroup([await client(), await client()], { groupId: 'resubscribe', topics: { readings: 4 }, instanceIds: ['a', 'b'] })
    const resubscribed = await join(await client(), {
      version: 5,
      groupId: 'resubscribe',
      groupInstanceId: 'a',
      protocols: [{ name: 'range', metadata: subscriptionBytes(['readings', 'alerts']) }],
    })
    expect(resubscribed.errorCode).toBe(0)
    expect(resubscribed.generationId).toBe(a!.generationId)
    expect(await heartbeatOnce(b!.client, { groupId: 'resubscribe', generationId: b!.generationId, memberId: b!.memberId, groupInstanceId: 'b' })).toBe(0)

    // A lone member that offered range first and now offers roundrobin first: the group's vote changes.
    const both = (first: string, second: string) => [first, second].map((name) => ({ name, metadata: subscriptionBytes(['readings']) }))
    const loneClient = await client()
    const lone = await join(loneClient, { version: 5, groupId: 'reprotocol', groupInstanceId: 'lone', protocols: both('range', 'roundrobin') })
    expect(lone.protocolName).toBe('range')
    expect((await sync(loneClient, { version: 5, groupId: 'reprotocol', generationId: lone.generationId!, memberId: lone.memberId, groupInstanceId: 'lone', assignments: { [lone.memberId]: { readings: [0, 1, 2, 3] } } })).errorCode).toBe(0)
    const returned = await join(await client(), { version: 5, groupId: 'reprotocol', groupInstanceId: 'lone', protocols: both('roundrobin', 'range') })
    expect(returned.protocolName).toBe('roundrobin')
    expect(returned.generationId).toBe(lone.generationId! + 1)
  })

  it('a static member leaves by instance id alone (LeaveGroup v3+, as AdminClient.removeMembersFromConsumerGroup does)', async () => {
    const [a, b] = await formGroup([await client(), await client()], { groupId: 'removal', topics: { readings: 4 }, instanceIds: ['a', 'b'] })
    const admin = await client()
    const answer = await leave(admin, 'removal', [{ memberId: '', groupInstanceId: 'a' }])
    expect(answer.members!.map((m) => [m.groupInstanceId, m.errorCode])).toEqual([['a', 0]])
    expect(await heartbeatOnce(b!.client, { groupId: 'removal', generationId: b!.generationId, memberId: b!.memberId, groupInstanceId: 'b' })).toBe(REBALANCE_IN_PROGRESS)
    expect(await heartbeatOnce(a!.client, { groupId: 'removal', generationId: a!.generationId, memberId: a!.memberId, groupInstanceId: 'a' })).toBe(25)
    const rejoined = await join(b!.client, { version: 5, groupId: 'removal', memberId: b!.memberId, groupInstanceId: 'b', topics: ['readings'] })
    expect(rejoined.members.map((m) => m.groupInstanceId)).toEqual(['b'])
  })
})

describe('a static member replaced in a Stable group, and the node killed at once', () => {
  /**
   * The new incarnation's JoinGroup is answered only once the group record naming its new member id is written
   * (Kafka's updateStaticMemberThenRebalanceOrCompleteJoin waits for the append): a node killed the moment the answer
   * arrives comes back knowing the new id, and the live new incarnation goes on. Answered before the write, the node
   * could come back with only the old id and fence the new incarnation for good (FENCED_INSTANCE_ID is fatal to the
   * Java consumer). Three groups, a kill -9 after each answer.
   */
  it('comes back knowing the new member id: its Heartbeat and JoinGroup are answered, not fenced', async () => {
    let broker = await startConfiguredBroker(FAST_GROUPS)
    try {
      await createTopic(broker, 'readings', { partitions: 2 })
      for (let attempt = 1; attempt <= 3; attempt++) {
        const groupId = `static-crash-${attempt}`
        const first = await connect(broker)
        const [member] = await formGroup([first], { groupId, topics: { readings: 2 }, instanceIds: ['sensor-a'] })
        const second = await connect(broker)
        const replaced = await join(second, { version: 5, groupId, groupInstanceId: 'sensor-a', topics: ['readings'] })
        await broker.kill()
        first.close()
        second.close()
        expect(replaced.errorCode).toBe(0)
        expect(replaced.memberId).not.toBe(member!.memberId)
        broker = await broker.restart()
        const after = await connect(broker)
        try {
          const alive = { groupId, generationId: replaced.generationId!, memberId: replaced.memberId, groupInstanceId: 'sensor-a' }
          expect(await heartbeatOnce(after, alive), `attempt ${attempt}`).toBe(0)
          const rejoined = await join(after, { version: 5, groupId, memberId: replaced.memberId, groupInstanceId: 'sensor-a', topics: ['readings'] })
          expect(rejoined.errorCode, `attempt ${attempt}`).toBe(0)
        } finally {
          after.close()
        }
      }
    } finally {
      await broker.stop()
      broker.cleanup()
    }
  })
})
