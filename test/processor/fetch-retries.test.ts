/**
 * The pipeline's group consumer rides out a partition leader it cannot reach for a while, as Kafka's consumer does,
 * instead of crashing and joining the group again. kafkajs 2.2.4's fetch from a leader whose connection fails (its
 * node killed with kill -9 and not yet fenced: the connection is refused) stops the fetches of every partition and
 * counts as one retry of the consumer's fetch loop. With kafkajs's default retries the loop gave up before the
 * controller fenced the node: the consumer crashed, kafkajs started it again after its backoff and it joined the
 * group again, and on a 3-node `brook dev` whose repartition topic's leader was killed the output came 20-35 s after
 * the kill instead of soon after the new leader (processor/runtime/consumer-restarts.ts, GROUP_CONSUMER_RETRY).
 *
 * The pipeline's global tables' consumer retries the same way: stopped and started again by kafkajs, it would read
 * every table from its start again. And the group consumer keeps heartbeating while its fetches fail
 * (processor/runtime/fetch-guards.ts): kafkajs heartbeats only after a fetch that worked, so a leader gone for longer
 * than the session timeout got the member evicted by a coordinator that was up all along, and the group rebalanced.
 *
 * Here every Fetch the pipeline's clients send fails with its connection (reset as the request is written: a
 * KafkaJSConnectionError, as a refused connection is) for 20 s: longer than kafkajs's default retries last (about
 * 9.5 s with its defaults under NODE_ENV=test, 5-17 s otherwise), shorter than the group consumer's (about 44 s).
 * Neither consumer is stopped and the group consumer stays a member (its member id is the same after the outage,
 * which is twice the pipeline's 10 s session timeout): the pipeline does not join the group again nor say that it
 * waits for the group consumer or that the tables' consumer stopped, what was written during the outage is processed
 * once it ends, and a table row written during the outage reaches the records after it.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { TopologyBuilder, runPipeline, type RunningPipeline } from '../../processor/index.js'
import { FAST_GROUPS } from '../helpers/broker-config.js'
import { startKafkajsBroker, stopKafkajsBroker, type KafkajsBroker } from '../helpers/kafkajs-broker.js'
import { waitFor } from '../helpers/wait.js'
import { cuttingSockets, onlyMemberOf, readTopic, stateDir } from './helpers.js'
import { fetch as fetchApi } from '../../protocol/messages/fetch.js'

/** How long the leader cannot be fetched from: kafkajs's default retries give up within it, the group consumer's do not. */
const OUTAGE_MS = 20_000

function topology() {
  const builder = new TopologyBuilder()
  const tags = builder.globalTable<{ tag: string }>('fr-tags')
  builder
    .stream<{ n: number }>('fr-in')
    .enrich(tags, (r, t: { tag: string } | undefined) => ({ n: r.n, doubled: r.n * 2, tag: t?.tag ?? null }), { key: () => 'tag' })
    .to('fr-out')
  return builder.build()
}

interface Output {
  n: number
  doubled: number
  tag: string | null
}

describe('a partition leader the group consumer cannot fetch from for a while', () => {
  let setting: KafkajsBroker
  let pipeline: RunningPipeline
  const lines: string[] = []
  const outage = { on: false, failed: 0 }
  const send = (from: number, count: number) =>
    setting.producer.send({ topic: 'fr-in', messages: Array.from({ length: count }, (_, i) => ({ key: `k${from + i}`, value: JSON.stringify({ n: from + i }) })) })


  beforeAll(async () => {
    setting = await startKafkajsBroker(FAST_GROUPS, { clientId: 'processor-fetch-retries' })
    await setting.admin.createTopics({ topics: [{ topic: 'fr-tags', numPartitions: 1, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] }] })
    await setting.producer.send({ topic: 'fr-tags', messages: [{ key: 'tag', value: JSON.stringify({ tag: 'before' }) }] })
    pipeline = await runPipeline(topology(), {
      applicationId: 'fr',
      bootstrapServers: setting.broker.address,
      stateDir: stateDir(),
      commitIntervalMs: 200,
      partitions: 1,
      // Every Fetch cut while the outage lasts.
      kafka: { socketFactory: cuttingSockets(fetchApi.request.apiKey, () => {
        if (outage.on) outage.failed++
        return outage.on
      }) },
      log: (line) => lines.push(line),
    })
  })
  afterAll(async () => {
    await pipeline?.stop()
    await stopKafkajsBroker(setting)
  })

  test('stops neither the group consumer nor the tables\' consumer, and what was written meanwhile is processed after it', { timeout: 120_000 }, async () => {
    await send(0, 10)
    const first = await readTopic(setting.kafka, 'fr-out', (r) => r.length >= 10)
    expect(first.map((r) => (JSON.parse(r.value!) as Output).tag)).toEqual(Array(10).fill('before'))
    // From here on, a join means kafkajs stopped the consumer and started it again, or the member was evicted.
    let joins = 0
    pipeline.events.on('assigned', () => joins++)
    const member = await onlyMemberOf(setting.admin, 'fr')

    outage.on = true
    await send(10, 10)
    await setting.producer.send({ topic: 'fr-tags', messages: [{ key: 'tag', value: JSON.stringify({ tag: 'during' }) }] })
    await waitFor('a fetch failed', () => outage.failed > 0)
    await sleep(OUTAGE_MS)
    outage.on = false

    const output = await readTopic(setting.kafka, 'fr-out', (r) => r.length >= 20)
    expect(output.map((r) => (JSON.parse(r.value!) as Output).doubled).sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i * 2))
    // The tables' consumer reads the row written during the outage: a record sent once it has is enriched with it.
    let sent = 20
    await waitFor('a record enriched with the row written during the outage', async () => {
      await send(sent++, 1)
      const records = await readTopic(setting.kafka, 'fr-out', (r) => r.length >= sent)
      return records.some((r) => (JSON.parse(r.value!) as Output).tag === 'during')
    })
    expect(outage.failed).toBeGreaterThan(1)
    expect(lines.filter((line) => line.includes('the group consumer') || line.includes("the global tables' consumer")), lines.join('\n')).toEqual([])
    expect(await onlyMemberOf(setting.admin, 'fr')).toBe(member)
    expect(joins).toBe(0)
  })
})
