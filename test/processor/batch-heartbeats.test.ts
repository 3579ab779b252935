/**
 * The pipeline's group consumer stays a member while a task's commit waits out a partition it cannot produce to, as
 * Kafka's consumer does with its heartbeat thread (processor/runtime/fetch-guards.ts, guard 3). kafkajs heartbeats
 * between batches only, and its fetcher waits for its batches to be handled: a task's commit retries its sends to a
 * partition whose leader is down for up to about 25 s, holding the task's lock, and each batch of the records that keep
 * coming waits for that lock, so without the guard the member's 10 s session ran out on a coordinator that was up all
 * along, the group rebalanced and the task was initialized again.
 *
 * Here every Produce the pipeline sends fails with its connection (reset as the request is written, as at a kill) for
 * 15 s, longer than the pipeline's session timeout and shorter than its sends retry, while a record is written every
 * 250 ms. The member stays the same (same member id, no new assignment, no task initialized again; without the guard
 * its member id changed), and what was written during the outage is in the output once (read_committed) after it.
 *
 * A member the coordinator does drop (here removed with LeaveGroup v3+, as Kafka's
 * AdminClient.removeMembersFromConsumerGroup does) says so in one line when it joins again under its new member id:
 * without it, only the coordinator's side showed that the group rebalanced.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { TopologyBuilder, runPipeline, type RunningPipeline } from '../../processor/index.js'
import { FAST_GROUPS } from '../helpers/broker-config.js'
import { startKafkajsBroker, stopKafkajsBroker, type KafkajsBroker } from '../helpers/kafkajs-broker.js'
import { waitFor } from '../helpers/wait.js'
import { cuttingSockets, onlyMemberOf, readTopic, stateDir } from './helpers.js'
import { withClient } from '../helpers/kafka.js'
import { leave } from '../helpers/groups-wire.js'
import { produce } from '../../protocol/messages/produce.js'

/** How long the pipeline's Produce requests fail: past its 10 s session timeout, within its sends' retries. */
const OUTAGE_MS = 15_000

function topology() {
  const builder = new TopologyBuilder()
  builder
    .stream<{ n: number }>('bh-in')
    .map((r) => ({ n: r.n, doubled: r.n * 2 }))
    .to('bh-out')
  return builder.build()
}

describe('a partition the task cannot produce to for longer than its session timeout', () => {
  let setting: KafkajsBroker
  let pipeline: RunningPipeline
  const lines: string[] = []
  const outage = { on: false, cut: 0 }
  const send = (from: number, count: number) =>
    setting.producer.send({ topic: 'bh-in', messages: Array.from({ length: count }, (_, i) => ({ key: `k${from + i}`, value: JSON.stringify({ n: from + i }) })) })


  beforeAll(async () => {
    setting = await startKafkajsBroker(FAST_GROUPS, { clientId: 'processor-batch-heartbeats' })
    pipeline = await runPipeline(topology(), {
      applicationId: 'bh',
      bootstrapServers: setting.broker.address,
      stateDir: stateDir(),
      commitIntervalMs: 200,
      partitions: 1,
      // Every Produce cut while the outage lasts (the pipeline's consumer sends none).
      kafka: {
        socketFactory: cuttingSockets(produce.request.apiKey, () => {
          if (outage.on) outage.cut++
          return outage.on
        }),
      },
      log: (line) => lines.push(line),
    })
  })
  afterAll(async () => {
    await pipeline?.stop()
    await stopKafkajsBroker(setting)
  })

  test('keeps the member in its group while the commit retries, and what was sent meanwhile is in the output once', { timeout: 120_000 }, async () => {
    await send(0, 10)
    await readTopic(setting.kafka, 'bh-out', (r) => r.length >= 10)
    // From here on, a join means the member was evicted (or kafkajs started the consumer again).
    let joins = 0
    pipeline.events.on('assigned', () => joins++)
    const member = await onlyMemberOf(setting.admin, 'bh')

    // Records keep coming during the outage: each batch of them waits for the task's commit in retries.
    outage.on = true
    let sent = 10
    await send(sent++, 1)
    await waitFor('a Produce cut', () => outage.cut > 0)
    const ends = Date.now() + OUTAGE_MS
    while (Date.now() < ends) {
      await send(sent++, 1)
      await sleep(250)
    }
    outage.on = false

    const output = await readTopic(setting.kafka, 'bh-out', (r) => r.length >= sent)
    expect(output.map((r) => (JSON.parse(r.value!) as { doubled: number }).doubled).sort((a, b) => a - b)).toEqual(Array.from({ length: sent }, (_, i) => i * 2))
    expect(outage.cut).toBeGreaterThan(1)
    expect(await onlyMemberOf(setting.admin, 'bh')).toBe(member)
    expect(joins).toBe(0)
    expect(lines.filter((line) => line.includes('re-initializ')), lines.join('\n')).toEqual([])
  })

  test('a member the coordinator drops says so in one line when it joins again', { timeout: 120_000 }, async () => {
    const member = await onlyMemberOf(setting.admin, 'bh')
    const removed = await withClient(setting.broker, (client) => leave(client, 'bh', [{ memberId: member }]))
    expect(removed.members!.map((m) => [m.memberId, m.errorCode])).toEqual([[member, 0]])
    const rejoined = await waitFor('the pipeline joined again', async () => {
      const { groups } = await setting.admin.describeGroups(['bh'])
      const now = groups[0]?.state === 'Stable' ? groups[0].members[0]?.memberId : undefined
      return now !== undefined && now !== member ? now : undefined
    })
    const said = await waitFor('the new membership said', () => {
      const found = lines.filter((line) => line.includes('as a new member'))
      return found.length > 0 ? found : undefined
    })
    expect(said).toEqual([`the group consumer joined bh as a new member (${rejoined}, was ${member}): the coordinator dropped the old one (its session ran out, or it was removed or started again), so the group rebalanced and this instance's tasks start from their committed state`])
  })
})
