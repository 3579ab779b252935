/**
 * kafkajs 2.2.4 consumer groups against real broker processes: the partitions of a topic are shared out among the
 * members, move to the survivors when a member leaves cleanly (LeaveGroup) or dies (session timeout), and a member
 * that commits, stops and comes back (across a broker restart) resumes right after its last commit.
 *
 * The broker runs with a short group.initial.rebalance.delay.ms and group.min.session.timeout.ms (FAST_GROUPS), and
 * consumers heartbeat often, so rebalances take a second or two instead of Kafka's defaults' tens of seconds.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { Kafka, logLevel, type Consumer, type Producer, type Admin } from 'kafkajs'
import { FAST_GROUPS } from '../helpers/broker-config.js'
import type { BrokerProcess } from '../helpers/broker.js'
import { startChildConsumer, type ChildConsumer } from '../helpers/child-consumer.js'
import { waitFor } from '../helpers/wait.js'
import { startKafkajsBroker, stopKafkajsBroker } from '../helpers/kafkajs-broker.js'

interface Member {
  consumer: Consumer
  /** Partitions of the latest assignment. */
  assigned: number[] | null
  messages: { partition: number; offset: bigint; value: string }[]
}

const TIMINGS = { heartbeatInterval: 300, rebalanceTimeout: 6000 }

const RETRY = { retries: 10, initialRetryTime: 100 }

function kafkaFor(broker: BrokerProcess, clientId: string): Kafka {
  return new Kafka({ clientId, brokers: [broker.address], logLevel: logLevel.NOTHING, retry: RETRY })
}

async function startMember(kafka: Kafka, options: { groupId: string; topic: string; sessionTimeout: number }): Promise<Member> {
  const consumer = kafka.consumer({ groupId: options.groupId, sessionTimeout: options.sessionTimeout, maxWaitTimeInMs: 200, ...TIMINGS })
  const member: Member = { consumer, assigned: null, messages: [] }
  consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
    member.assigned = [...(payload.memberAssignment[options.topic] ?? [])].sort((a, b) => a - b)
  })
  await consumer.connect()
  await consumer.subscribe({ topics: [options.topic], fromBeginning: true })
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      member.messages.push({ partition, offset: BigInt(message.offset), value: message.value!.toString() })
    },
  })
  return member
}

/** One record per partition and round, valued `${label}-${partition}-${round}`; returns the values sent. */
async function produceRound(producer: Producer, topic: string, label: string, partitions: number, rounds: number): Promise<string[]> {
  const values: string[] = []
  const messages = []
  for (let round = 0; round < rounds; round++) {
    for (let partition = 0; partition < partitions; partition++) {
      const value = `${label}-${partition}-${round}`
      values.push(value)
      messages.push({ partition, value })
    }
  }
  await producer.send({ topic, messages })
  return values
}

function partitionOf(value: string): number {
  return Number(value.split('-')[1])
}

describe('kafkajs consumer groups', () => {
  let broker: BrokerProcess
  let admin: Admin
  let producer: Producer
  const cleanup: (() => Promise<unknown>)[] = []

  beforeAll(async () => {
    ;({ broker, admin, producer } = await startKafkajsBroker(FAST_GROUPS, { clientId: 'groups-test', retry: RETRY }))
  })
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step().catch(() => undefined)
  })
  afterAll(async () => {
    await stopKafkajsBroker({ broker, admin, producer })
  })

  it('three consumers own two of six partitions each; a killed one and then a cleanly leaving one hand theirs to the rest', async () => {
    const topic = 'meter-readings'
    const groupId = 'billing'
    await admin.createTopics({ topics: [{ topic, numPartitions: 6 }] })

    // A and B run here; C runs in its own process so that it can be killed with SIGKILL (a crash: no LeaveGroup).
    // B's session timeout is far longer than the test's deadlines, so its partitions can only move through its
    // LeaveGroup, never through an expired session.
    const a = await startMember(kafkaFor(broker, 'member-a'), { groupId, topic, sessionTimeout: 3000 })
    cleanup.push(() => a.consumer.disconnect())
    const b = await startMember(kafkaFor(broker, 'member-b'), { groupId, topic, sessionTimeout: 120_000 })
    cleanup.push(() => b.consumer.disconnect())
    const c: ChildConsumer = startChildConsumer({ brokers: [broker.address], groupId, topic, sessionTimeout: 3000, clientId: 'member-c', ...TIMINGS })
    cleanup.push(() => c.kill())

    const sorted = (lists: (number[] | null)[]) => lists.flatMap((l) => l ?? []).sort((x, y) => x - y)
    await waitFor('three members with two partitions each', async () => {
      const owners = [a.assigned, b.assigned, c.assigned]
      if (!owners.every((p) => p?.length === 2) || sorted(owners).join() !== '0,1,2,3,4,5') return false
      const [group] = (await admin.describeGroups([groupId])).groups
      return group!.state === 'Stable' && group!.members.length === 3
    })
    const firstRound = await produceRound(producer, topic, 'first', 6, 3)
    await waitFor('every record of the first round to be consumed', () => a.messages.length + b.messages.length + c.messages.length >= firstRound.length)
    // In a stable group each record goes to the member that owns its partition, exactly once.
    for (const [member, name] of [[a, 'a'], [b, 'b'], [c, 'c']] as const) {
      for (const message of member.messages) expect(member.assigned, `${name} got ${message.value}`).toContain(message.partition)
    }
    expect([...a.messages, ...b.messages, ...c.messages].map((m) => m.value).sort()).toEqual([...firstRound].sort())

    // C crashes: the coordinator notices only when its session times out, then A and B split its partitions.
    await c.kill()
    await waitFor('A and B to take over the partitions of the killed member', async () => {
      if (a.assigned?.length !== 3 || b.assigned?.length !== 3 || sorted([a.assigned, b.assigned]).join() !== '0,1,2,3,4,5') return false
      const [group] = (await admin.describeGroups([groupId])).groups
      return group!.state === 'Stable' && group!.members.length === 2
    })
    const secondRound = await produceRound(producer, topic, 'second', 6, 3)
    const ofRound = (member: Member, label: string) => member.messages.filter((m) => m.value.startsWith(`${label}-`))
    await waitFor('the second round to be consumed by A and B', () => ofRound(a, 'second').length + ofRound(b, 'second').length >= secondRound.length)
    expect([...ofRound(a, 'second'), ...ofRound(b, 'second')].map((m) => m.value).sort()).toEqual([...secondRound].sort())
    for (const m of ofRound(a, 'second')) expect(a.assigned).toContain(partitionOf(m.value))

    // B leaves cleanly (disconnect sends LeaveGroup): A gets everything, long before B's session could expire.
    await b.consumer.disconnect()
    await waitFor('A to own all six partitions after B left', async () => {
      if (a.assigned?.join() !== '0,1,2,3,4,5') return false
      const [group] = (await admin.describeGroups([groupId])).groups
      return group!.state === 'Stable' && group!.members.length === 1
    })
    const thirdRound = await produceRound(producer, topic, 'third', 6, 2)
    await waitFor('A to consume the third round', () => ofRound(a, 'third').length >= thirdRound.length)
    expect(ofRound(a, 'third').map((m) => m.value).sort()).toEqual([...thirdRound].sort())
  })

  it('a consumer that commits, stops and restarts across a broker restart resumes right after its last commit', async () => {
    const topic = 'invoices'
    const groupId = 'invoicing'
    await admin.createTopics({ topics: [{ topic, numPartitions: 2 }] })
    await produceRound(producer, topic, 'old', 2, 50)

    // Commit after offset 29 of each partition, then go on reading to 49 without committing.
    const kafka = kafkaFor(broker, 'invoicer')
    const consumer = kafka.consumer({ groupId, sessionTimeout: 3000, maxWaitTimeInMs: 200, ...TIMINGS })
    const seen: { partition: number; offset: bigint }[] = []
    await consumer.connect()
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        seen.push({ partition, offset: BigInt(message.offset) })
        if (message.offset === '29') await consumer.commitOffsets([{ topic, partition, offset: '30' }])
      },
    })
    await waitFor('the first consumer to read all 100 records', () => seen.length >= 100)
    await consumer.disconnect()
    expect(await admin.fetchOffsets({ groupId, topics: [topic] })).toEqual([
      { topic, partitions: expect.arrayContaining([{ partition: 0, offset: '30', metadata: null }, { partition: 1, offset: '30', metadata: null }]) },
    ])

    // The broker restarts on the same data directory and port; the group's commits must survive it.
    await admin.disconnect()
    await producer.disconnect()
    await broker.stop()
    broker = await broker.restart()
    const restartedKafka = kafkaFor(broker, 'groups-test')
    admin = restartedKafka.admin()
    producer = restartedKafka.producer()
    await admin.connect()
    await producer.connect()
    await produceRound(producer, topic, 'new', 2, 10)

    const resumed: { partition: number; offset: bigint }[] = []
    const again = kafkaFor(broker, 'invoicer').consumer({ groupId, sessionTimeout: 3000, maxWaitTimeInMs: 200, ...TIMINGS })
    cleanup.push(() => again.disconnect())
    await again.connect()
    await again.subscribe({ topics: [topic], fromBeginning: true })
    await again.run({ eachMessage: async ({ partition, message }) => void resumed.push({ partition, offset: BigInt(message.offset) }) })
    await waitFor('the restarted consumer to reach offset 59 of both partitions', () => resumed.filter((r) => r.offset === 59n).length === 2)
    // Exactly the uncommitted 30-49 again, then the new 50-59: nothing skipped, nothing from before the commit.
    for (const partition of [0, 1]) {
      const offsets = resumed.filter((r) => r.partition === partition).map((r) => Number(r.offset))
      expect(offsets).toEqual(Array.from({ length: 30 }, (_, i) => 30 + i))
    }
  })
})
