/**
 * The initial rebalance delay as kafkajs meets it, with Kafka's default group.initial.rebalance.delay.ms (3000).
 * Kafka's InitialDelayedJoin: an Empty group's first join waits one delay; it waits once more only if a member joined
 * the new group during the wait (GroupCoordinator.addMemberAndRebalance sets newMemberAdded only while the group is
 * PreparingRebalance in generation 0). kafkajs joins twice (JoinGroup v5 answers MEMBER_ID_REQUIRED first), and the
 * member's own second join must not count as a newcomer: a lone consumer gets its partitions after one delay, and
 * consumers that start together share the first generation.
 *
 * The tests assert what the members see: how many generations each joined (kafkajs's GROUP_JOIN events), the
 * generation id (a Heartbeat with generation 1 is accepted, with 2 refused: ILLEGAL_GENERATION), the members and
 * their assignment. How long the joins take is measured by the bench (bench/group-scenarios.ts), not asserted here.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { Kafka, logLevel, type Admin, type Consumer, type ConsumerGroupJoinEvent } from 'kafkajs'
import type { KafkaClient } from '../../client/kafka-client.js'
import { startConfiguredBroker } from '../helpers/broker-config.js'
import type { BrokerProcess } from '../helpers/broker.js'
import { connect } from '../helpers/kafka.js'
import { heartbeatOnce } from '../helpers/groups-wire.js'
import { waitFor } from '../helpers/wait.js'
import { loggedErrors } from '../helpers/broker-log.js'

const NONE = 0
const ILLEGAL_GENERATION = 22

describe('the initial rebalance delay (Kafka default, 3 s) with kafkajs members', () => {
  let broker: BrokerProcess
  let kafka: Kafka
  let admin: Admin
  let client: KafkaClient
  const consumers: Consumer[] = []

  beforeAll(async () => {
    broker = await startConfiguredBroker({ groupMinSessionTimeoutMs: 1000 })
    kafka = new Kafka({ clientId: 'initial-delay', brokers: [broker.address], logLevel: logLevel.NOTHING })
    admin = kafka.admin()
    await admin.connect()
    await admin.createTopics({ topics: [{ topic: 'readings', numPartitions: 6 }] })
    const producer = kafka.producer()
    await producer.connect()
    await producer.send({ topic: 'readings', messages: Array.from({ length: 12 }, (_, i) => ({ partition: i % 6, value: `r${i}` })) })
    await producer.disconnect()
    client = await connect(broker)
  })
  afterEach(async () => {
    await Promise.all(consumers.splice(0).map((consumer) => consumer.disconnect()))
  })
  afterAll(async () => {
    client?.close()
    await admin?.disconnect()
    await broker?.stop()
    broker?.cleanup()
    if (broker) expect(loggedErrors(broker)).toEqual([])
  })

  interface Member {
    joins: ConsumerGroupJoinEvent['payload'][]
    records: number
  }

  /** Starts kafkajs consumers of one group together; each records its joins and counts the records it reads. */
  async function startMembers(groupId: string, count: number): Promise<Member[]> {
    return Promise.all(
      Array.from({ length: count }, async () => {
        const consumer = kafka.consumer({ groupId, sessionTimeout: 10_000, heartbeatInterval: 500, maxWaitTimeInMs: 200 })
        consumers.push(consumer)
        const member: Member = { joins: [], records: 0 }
        consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => void member.joins.push(payload))
        await consumer.connect()
        await consumer.subscribe({ topics: ['readings'], fromBeginning: true })
        await consumer.run({ eachMessage: async () => void member.records++ })
        return member
      }),
    )
  }

  /** The member ids of a Stable group, as kafkajs's admin describes it. */
  async function membersOf(groupId: string): Promise<string[]> {
    const [group] = (await admin.describeGroups([groupId])).groups
    expect(group!.state).toBe('Stable')
    return group!.members.map((m) => m.memberId).sort()
  }

  /** The group's generation as the coordinator sees it, probed the way a member would: a Heartbeat per generation. */
  async function heartbeatCodes(groupId: string, memberId: string): Promise<number[]> {
    return [await heartbeatOnce(client, { groupId, generationId: 1, memberId }), await heartbeatOnce(client, { groupId, generationId: 2, memberId })]
  }

  it('a lone consumer joins once: generation 1, one member with every partition', async () => {
    const [member] = await startMembers('lone', 1)
    await waitFor('the lone consumer to read all twelve records', () => member!.records === 12)
    expect(member!.joins).toHaveLength(1)
    const [join] = member!.joins
    expect(join).toMatchObject({ isLeader: true, leaderId: join!.memberId })
    expect(join!.memberAssignment.readings!.sort()).toEqual([0, 1, 2, 3, 4, 5])
    expect(await heartbeatCodes('lone', join!.memberId)).toEqual([NONE, ILLEGAL_GENERATION])
    expect(await membersOf('lone')).toEqual([join!.memberId])
  })

  it('three consumers that start together share generation 1: one join each, two partitions each', async () => {
    const members = await startMembers('trio', 3)
    await waitFor('the three consumers to read all twelve records', () => members.reduce((sum, m) => sum + m.records, 0) === 12)
    for (const member of members) expect(member.joins).toHaveLength(1)
    const joins = members.map((m) => m.joins[0]!)
    const leaderId = joins[0]!.leaderId
    expect(joins.every((j) => j.leaderId === leaderId)).toBe(true)
    expect(joins.filter((j) => j.isLeader)).toHaveLength(1)
    expect(joins.map((j) => j.memberAssignment.readings!.length)).toEqual([2, 2, 2])
    expect(joins.flatMap((j) => j.memberAssignment.readings!).sort()).toEqual([0, 1, 2, 3, 4, 5])
    for (const join of joins) expect(await heartbeatCodes('trio', join.memberId)).toEqual([NONE, ILLEGAL_GENERATION])
    expect(await membersOf('trio')).toEqual(joins.map((j) => j.memberId).sort())
  })
})
