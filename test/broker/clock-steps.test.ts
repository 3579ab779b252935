/**
 * A step of the node's wall clock (NTP correcting it, a laptop's suspend and resume) moves no timeout measured in
 * durations: group members' sessions and a parked Fetch's maxWaitMs run on the monotonic clock (broker/clock.ts), as
 * Kafka's delayed operations run on SystemTimer (System.nanoTime). The node runs under libfaketime with only its wall
 * clock faked (test/helpers/faketime.ts), stepped while it runs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { FAST_GROUPS, startConfiguredBroker } from '../helpers/broker-config.js'
import type { BrokerProcess } from '../helpers/broker.js'
import { formGroup, keepAlive } from '../helpers/groups-wire.js'
import { connect, createTopic, fetchPartition } from '../helpers/kafka.js'
import { waitFor } from '../helpers/wait.js'
import { fakeClock, faketimeMissing } from '../helpers/faketime.js'
import { ErrorCode } from '../../protocol/errors.js'
import type { KafkaClient } from '../../client/kafka-client.js'
import { describeGroups, type DescribeGroupsRequest, type DescribeGroupsResponse } from '../../protocol/messages/describe-groups.js'

const missing = faketimeMissing()
if (missing !== null) console.log(`wall-clock step test skipped: ${missing}`)

describe.skipIf(missing !== null)('a node whose wall clock steps', () => {
  const clock = fakeClock()
  const step = clock.step
  let broker: BrokerProcess
  const clients: KafkaClient[] = []
  const client = async (): Promise<KafkaClient> => {
    const made = await connect(broker, { timeoutMs: 10_000 })
    clients.push(made)
    return made
  }

  beforeAll(async () => {
    step('+0')
    broker = await startConfiguredBroker(FAST_GROUPS, { env: { ...clock.env } })
    await createTopic(broker, 'clock-steps', { partitions: 2 })
  })
  afterAll(async () => {
    for (const made of clients) made.close()
    await broker?.stop()
    broker?.cleanup()
    clock.remove()
  })

  it('keeps a heartbeating member through a step forward of an hour: its session counts durations, not the wall clock', async () => {
    step('+0')
    const [member] = await formGroup([await client()], { groupId: 'forward-step', topics: { 'clock-steps': 2 }, sessionTimeoutMs: 10_000 })
    const alive = keepAlive(member!.client, { groupId: 'forward-step', generationId: member!.generationId, memberId: member!.memberId }, 500)
    try {
      await waitFor('a heartbeat answered before the step', () => alive.codes.length >= 1)
      step('+1h')
      const before = alive.codes.length
      // Several heartbeats, and the coordinator's expiry checks between them, after the step.
      await waitFor('four heartbeats answered after the step', () => alive.codes.length >= before + 4)
      expect(alive.codes).toEqual(alive.codes.map(() => ErrorCode.NONE))
    } finally {
      alive.stop()
      step('+0')
    }
  })

  it('still expires a member that stops heartbeating after a step back of an hour', async () => {
    step('+0')
    const [member] = await formGroup([await client()], { groupId: 'backward-step', topics: { 'clock-steps': 2 }, sessionTimeoutMs: 3000 })
    step('-1h')
    try {
      // No heartbeat from now on: its session of 3 s ends in 3 s, not in an hour and 3 s.
      // (Asked with DescribeGroups: a heartbeat naming the member would renew its session.)
      const asking = await client()
      const members = async (): Promise<string[]> => {
        const response = await asking.request<DescribeGroupsRequest, DescribeGroupsResponse>(describeGroups, 5, { groups: ['backward-step'], includeAuthorizedOperations: false })
        return response.groups[0]!.members.map((m) => m.memberId)
      }
      expect(await members()).toEqual([member!.memberId])
      await waitFor('the silent member removed after its session', async () => (await members()).length === 0, { timeoutMs: 30_000 })
    } finally {
      step('+0')
    }
  })

  it('answers a parked Fetch after its maxWaitMs when the clock steps back while it waits', async () => {
    step('+0')
    const fetcher = await client()
    // Parked on an empty partition for 2 s; the step comes while it waits.
    const answered = fetchPartition(fetcher, { topic: 'clock-steps', partition: 0, offset: 0n, maxWaitMs: 2000 })
    await new Promise((resolve) => setTimeout(resolve, 500))
    step('-1h')
    try {
      // The client gives up after 10 s: a wait measured on the wall clock would last an hour more.
      const partition = await answered
      expect(partition.errorCode).toBe(ErrorCode.NONE)
      expect(partition.highWatermark).toBe(0n)
    } finally {
      step('+0')
    }
  })
})
