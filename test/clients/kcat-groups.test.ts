/**
 * kcat -G (librdkafka 2.0.2's balanced consumer, JoinGroup v5 / SyncGroup v3 / OffsetCommit v7) against a real broker
 * process: two kcat processes in one group split the partitions, together read every record exactly once, and the
 * offsets they auto-commit are what kafkajs's admin and `brook groups describe` report; a
 * static member (group.instance.id, which librdkafka supports and kafkajs does not) survives its own crash.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import type { Admin, Producer } from 'kafkajs'
import { FAST_GROUPS } from '../helpers/broker-config.js'
import { BROOK_CLI, type BrokerProcess } from '../helpers/broker.js'
import { startKcatGroupMember, type KcatGroupMember } from '../helpers/kcat-group.js'
import { waitFor } from '../helpers/wait.js'
import { startKafkajsBroker, stopKafkajsBroker } from '../helpers/kafkajs-broker.js'

const run = promisify(execFile)

describe('kcat -G consumer groups', () => {
  let broker: BrokerProcess
  let admin: Admin
  let producer: Producer
  const members: KcatGroupMember[] = []

  beforeAll(async () => {
    ;({ broker, admin, producer } = await startKafkajsBroker(FAST_GROUPS, { clientId: 'kcat-groups-test' }))
  })
  afterEach(async () => {
    for (const member of members.splice(0)) await member.stop()
  })
  afterAll(async () => {
    await stopKafkajsBroker({ broker, admin, producer })
  })

  it('two kcat -G processes split the partitions, read every record once, and their commits are visible to admins', async () => {
    const topic = 'telemetry'
    const groupId = 'kcat-readers'
    await admin.createTopics({ topics: [{ topic, numPartitions: 4 }] })
    const first = startKcatGroupMember({ broker: broker.address, groupId, topics: [topic] })
    const second = startKcatGroupMember({ broker: broker.address, groupId, topics: [topic] })
    members.push(first, second)

    // Produce only once both own partitions, so that each record is read by the member it was assigned to.
    await waitFor('both kcat members to be assigned partitions of one Stable generation', async () => {
      if (!first.assigned?.length || !second.assigned?.length) return false
      if ([...first.assigned, ...second.assigned].sort().join() !== '0,1,2,3') return false
      const [group] = (await admin.describeGroups([groupId])).groups
      return group!.state === 'Stable' && group!.members.length === 2
    })
    const values: string[] = []
    const messages = []
    for (let i = 0; i < 40; i++) {
      values.push(`reading-${i}`)
      messages.push({ partition: i % 4, value: `reading-${i}` })
    }
    await producer.send({ topic, messages })

    await waitFor('all 40 records to be read', () => first.records.length + second.records.length >= 40)
    const all = [...first.records, ...second.records]
    expect(all.map((r) => r.value).sort()).toEqual([...values].sort())
    for (const member of [first, second]) {
      expect(member.records.length).toBeGreaterThan(0)
      for (const record of member.records) expect(member.assigned).toContain(record.partition)
    }

    // librdkafka auto-commits the position after each record it handed out; kafkajs's admin reads them back.
    const committed = await waitFor('the commits to reach the end of every partition', async () => {
      const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] })
      return offsets!.partitions.every((p) => p.offset === '10') && offsets!.partitions
    })
    expect(committed.map((p) => p.partition).sort()).toEqual([0, 1, 2, 3])

    // SIGTERM: kcat closes its consumer cleanly (LeaveGroup), and the group is left Empty with its offsets.
    for (const member of members.splice(0)) expect(await member.stop()).toBe(0)
    await waitFor('the group to be empty', async () => (await admin.describeGroups([groupId])).groups[0]!.state === 'Empty')
    const [after] = await admin.fetchOffsets({ groupId, topics: [topic] })
    expect(after!.partitions.map((p) => p.offset)).toEqual(['10', '10', '10', '10'])

    // `brook groups describe` prints kafka-consumer-groups.sh's table: GROUP TOPIC PARTITION CURRENT-OFFSET
    // LOG-END-OFFSET LAG ...
    const { stdout } = await run(process.execPath, [BROOK_CLI, 'groups', 'describe', groupId, '--bootstrap-server', broker.address])
    for (let partition = 0; partition < 4; partition++) expect(stdout).toMatch(new RegExp(`^${groupId}\\s+${topic}\\s+${partition}\\s+10\\s+10\\s+0\\b`, 'm'))
  })

  it('a static kcat member (group.instance.id) that crashes and comes back gets its partitions back without a rebalance', async () => {
    const topic = 'telemetry-static'
    const groupId = 'kcat-static'
    await admin.createTopics({ topics: [{ topic, numPartitions: 4 }] })
    // The session outlives the crash, so the coordinator still holds the crashed member's place (KIP-345).
    const staticMember = (instance: string) =>
      startKcatGroupMember({ broker: broker.address, groupId, topics: [topic], config: { 'group.instance.id': instance, 'session.timeout.ms': '30000' } })
    const steady = staticMember('steady')
    const crashing = staticMember('crashing')
    members.push(steady, crashing)
    await waitFor('both static members to own two partitions', () => steady.assigned?.length === 2 && crashing.assigned?.length === 2)
    expect((await admin.describeGroups([groupId])).groups[0]!.state).toBe('Stable')
    const rebalancesOfSteady = steady.rebalances()
    const crashedPartitions = crashing.assigned!
    const crashedMemberId = crashing.memberId

    await crashing.kill()
    const restarted = staticMember('crashing')
    members.push(restarted)
    await waitFor('the restarted member to be assigned', () => restarted.assigned !== null)
    expect(restarted.assigned).toEqual(crashedPartitions)

    await producer.send({ topic, messages: Array.from({ length: 8 }, (_, i) => ({ partition: i % 4, value: `static-${i}` })) })
    await waitFor('all 8 records', () => steady.records.length + restarted.records.length >= 8)
    expect(restarted.records.map((r) => r.partition).sort()).toEqual([...crashedPartitions, ...crashedPartitions].sort())
    // The steady member never saw a rebalance, and the group kept its two members (the restarted one under a new id).
    expect(steady.rebalances()).toBe(rebalancesOfSteady)
    const [after] = (await admin.describeGroups([groupId])).groups
    expect(after!.state).toBe('Stable')
    expect(after!.members).toHaveLength(2)
    expect(after!.members.map((m) => m.memberId).sort()).toEqual([steady.memberId, restarted.memberId].sort())
    expect(restarted.memberId).not.toBe(crashedMemberId)
    // A static member's id starts with its group.instance.id (Kafka's GroupMetadata.generateMemberId), as the
    // consumer ids kafka-consumer-groups.sh lists show it; kcat's client id, rdkafka, would name none apart.
    expect([steady.memberId, crashedMemberId, restarted.memberId]).toEqual([
      expect.stringMatching(/^steady-/),
      expect.stringMatching(/^crashing-/),
      expect.stringMatching(/^crashing-/),
    ])
  })

  it('a kcat member that joins later takes over part of the partitions, and the group goes on from the committed offsets', async () => {
    const topic = 'telemetry-late'
    const groupId = 'kcat-late'
    await admin.createTopics({ topics: [{ topic, numPartitions: 2 }] })
    await producer.send({ topic, messages: Array.from({ length: 10 }, (_, i) => ({ partition: i % 2, value: `early-${i}` })) })
    const first = startKcatGroupMember({ broker: broker.address, groupId, topics: [topic] })
    members.push(first)
    await waitFor('the first member to read the early records', () => first.records.length >= 10)
    await waitFor('its commits', async () => (await admin.fetchOffsets({ groupId, topics: [topic] }))[0]!.partitions.every((p) => p.offset === '5'))

    const second = startKcatGroupMember({ broker: broker.address, groupId, topics: [topic] })
    members.push(second)
    await waitFor('one partition each', () => first.assigned?.length === 1 && second.assigned?.length === 1)
    await producer.send({ topic, messages: Array.from({ length: 10 }, (_, i) => ({ partition: i % 2, value: `late-${i}` })) })
    await waitFor('the late records', () => [...first.records, ...second.records].filter((r) => r.value.startsWith('late-')).length >= 10)
    // The newcomer starts from the group's committed offset, not from the beginning: no early record is read twice.
    expect(second.records.every((r) => r.value.startsWith('late-'))).toBe(true)
    const late = [...first.records, ...second.records].filter((r) => r.value.startsWith('late-')).map((r) => r.value)
    expect(late.sort()).toEqual(Array.from({ length: 10 }, (_, i) => `late-${i}`).sort())
  })
})
