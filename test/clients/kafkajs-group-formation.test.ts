/**
 * Group formation without the initial rebalance delay (group.initial.rebalance.delay.ms = 0). Members that start
 * together each get their MEMBER_ID_REQUIRED id at once, and the first member's join completes before the others come
 * back with theirs. Those members must stay pending (Kafka's onCompleteJoin keeps pendingMembers): their second
 * JoinGroup joins them and starts the next rebalance. A coordinator that forgot pending members answered it with
 * UNKNOWN_MEMBER_ID; kafkajs then started over with a fresh id, and a consumer that had already read the partitions
 * left nothing for the latecomers (the bench's rebalance scenario found it).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Kafka, logLevel, type Consumer } from 'kafkajs'
import type { KafkaClient } from '../../client/kafka-client.js'
import { startConfiguredBroker } from '../helpers/broker-config.js'
import type { BrokerProcess } from '../helpers/broker.js'
import { connect, createTopic } from '../helpers/kafka.js'
import { findGroupCoordinator, join } from '../helpers/groups-wire.js'
import { waitFor } from '../helpers/wait.js'
import { describeGroups, type DescribeGroupsRequest, type DescribeGroupsResponse } from '../../protocol/messages/describe-groups.js'

const MEMBER_ID_REQUIRED = 79
const NONE = 0

describe('group formation with no initial rebalance delay', () => {
  let broker: BrokerProcess
  const clients: KafkaClient[] = []
  const consumers: Consumer[] = []
  beforeAll(async () => {
    broker = await startConfiguredBroker({ groupInitialRebalanceDelayMs: 0, groupMinSessionTimeoutMs: 1000 })
    await createTopic(broker, 'formation', { partitions: 6 })
  })
  afterAll(async () => {
    await Promise.all(consumers.map((c) => c.disconnect().catch(() => undefined)))
    for (const client of clients) client.close()
    await broker.stop()
    broker.cleanup()
  })

  async function groupState(client: KafkaClient, groupId: string): Promise<string> {
    const response = await client.request<DescribeGroupsRequest, DescribeGroupsResponse>(describeGroups, 5, {
      groups: [groupId],
      includeAuthorizedOperations: false,
    })
    return response.groups[0]!.groupState
  }

  async function client(): Promise<KafkaClient> {
    const c = await connect(broker)
    clients.push(c)
    return c
  }

  it('a member that got its id while another join completed still joins with that id', async () => {
    const [a, b] = [await client(), await client()]
    await findGroupCoordinator(a, 'pending')
    const first = { version: 5, groupId: 'pending', topics: ['formation'] }
    const idA = (await join(a, first)).memberId
    const askB = await join(b, first)
    expect(askB.errorCode).toBe(MEMBER_ID_REQUIRED)
    // A comes back first: with no initial delay its join completes at once, B still pending.
    const joinedA = await join(a, { ...first, memberId: idA })
    expect(joinedA).toMatchObject({ errorCode: NONE, generationId: 1 })
    // B's second JoinGroup joins it and starts the next rebalance, which waits for A to rejoin. (A rejoining before
    // B arrived would just be told generation 1 again, so wait until the broker has B.)
    const joiningB = join(b, { ...first, memberId: askB.memberId })
    await waitFor('B to start a rebalance', async () => (await groupState(a, 'pending')) === 'PreparingRebalance')
    const rejoinedA = await join(a, { ...first, memberId: idA })
    expect(rejoinedA).toMatchObject({ errorCode: NONE, generationId: 2 })
    expect(await joiningB).toMatchObject({ errorCode: NONE, generationId: 2, memberId: askB.memberId })
  })

  it('three kafkajs members that start together all end in one generation, two partitions each', async () => {
    const kafka = new Kafka({ clientId: 'formation', brokers: [broker.address], logLevel: logLevel.NOTHING })
    const admin = kafka.admin()
    await admin.connect()
    const assigned = new Map<number, number[]>()
    await Promise.all(
      [0, 1, 2].map(async (i) => {
        const consumer = kafka.consumer({ groupId: 'formation', sessionTimeout: 6000, heartbeatInterval: 300, maxWaitTimeInMs: 200 })
        consumers.push(consumer)
        consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => assigned.set(i, payload.memberAssignment.formation ?? []))
        await consumer.connect()
        await consumer.subscribe({ topic: 'formation', fromBeginning: true })
        await consumer.run({ eachMessage: async () => undefined })
      }),
    )
    await waitFor('a stable group of three members with two partitions each', async () => {
      const [group] = (await admin.describeGroups(['formation'])).groups
      return group!.state === 'Stable' && group!.members.length === 3 && assigned.size === 3 && [...assigned.values()].every((p) => p.length === 2)
    }, { timeoutMs: 30_000 })
    expect([...assigned.values()].flat().sort()).toEqual([0, 1, 2, 3, 4, 5])
    await admin.disconnect()
  })
})
