/**
 * A task id names its sub-topology by its place in the topology (`<sub>_<partition>`), and so does its state
 * directory. A pipeline changed between runs by a stream (or a keyBy) added, removed or moved numbers its
 * sub-topologies otherwise, and a task would find another sub-topology's store under its id. Before, it took that
 * store as its own: a stateless stream added first resumed its source at the other source's offset and skipped its
 * first records, and two stateful streams declared the other way round counted from each other's state (their
 * changelogs ending at the same offset, each store passed for current). Kafka Streams names its stores, so the other
 * sub-topology's state is never read; here each store records its changelog, and a task discards one written from
 * another.
 */
import { afterAll, beforeAll, expect, test } from 'vitest'
import { count, runPipeline, TopologyBuilder, type Topology } from '../../processor/index.js'
import { FAST_GROUPS } from '../helpers/broker-config.js'
import { startKafkajsBroker, stopKafkajsBroker, type KafkajsBroker } from '../helpers/kafkajs-broker.js'
import { waitFor } from '../helpers/wait.js'
import { readSettled, stateDir, values } from './helpers.js'

let setting: KafkajsBroker

beforeAll(async () => {
  setting = await startKafkajsBroker(FAST_GROUPS, { clientId: 'processor-renumbered-tasks' })
})
afterAll(async () => {
  await stopKafkajsBroker(setting)
})

/** The streams in the order given: `counted` ones count per key into `<topic>-counts`, the others copy to `<topic>-copies`. */
function topology(streams: readonly { topic: string; counted: boolean }[]): Topology {
  const builder = new TopologyBuilder()
  for (const { topic, counted } of streams) {
    const stream = builder.stream(topic)
    if (counted) stream.groupByKey().aggregate({ n: count() }, { name: `${topic}-count` }).to(`${topic}-counts`)
    else stream.map((value) => value).to(`${topic}-copies`)
  }
  return builder.build()
}

/** Runs `topology` on `dir` until it has processed `records` input records, then stops it. */
async function run(app: string, topology: Topology, dir: string, records: number): Promise<string[]> {
  const lines: string[] = []
  const pipeline = await runPipeline(topology, { applicationId: app, bootstrapServers: setting.broker.address, stateDir: dir, commitIntervalMs: 100, log: (line) => lines.push(line) })
  try {
    await waitFor(`${records} records processed`, () => pipeline.metrics().recordsIn >= records, { timeoutMs: 60_000 })
  } finally {
    await pipeline.stop()
  }
  return lines
}

async function send(topic: string, ns: readonly number[]): Promise<void> {
  await setting.producer.send({ topic, messages: ns.map((n) => ({ key: 'k', value: JSON.stringify({ n }) })) })
}

test('a stateless stream added before a stateful one reads its source from the start, not from the other one\'s offset', async () => {
  await setting.admin.createTopics({ topics: [{ topic: 'rn-counted', numPartitions: 1 }, { topic: 'rn-added', numPartitions: 1 }] })
  const dir = stateDir()
  await send('rn-counted', [1, 2, 3, 4, 5])
  await run('rn-added-app', topology([{ topic: 'rn-counted', counted: true }]), dir, 5)

  // rn-added becomes sub-topology 0, whose directory holds rn-counted's state at input offset 5.
  await send('rn-added', [1, 2, 3, 4, 5, 6, 7])
  await send('rn-counted', [6, 7])
  const lines = await run('rn-added-app', topology([{ topic: 'rn-added', counted: false }, { topic: 'rn-counted', counted: true }]), dir, 9)
  expect(lines.join('\n')).toContain('task 0_0: local state was written from rn-added-app-rn-counted-store-changelog, not this sub-topology, which keeps no state')
  const copies = values<{ n: number }>(await readSettled(setting.kafka, 'rn-added-copies', (r) => r.length >= 7))
  expect(copies.map((c) => c.n)).toEqual([1, 2, 3, 4, 5, 6, 7])
  const counts = values<{ n: number }>(await readSettled(setting.kafka, 'rn-counted-counts', (r) => r.length >= 2))
  expect(counts.map((c) => c.n)).toEqual([5, 7])
}, 120_000)

test('two stateful streams declared the other way round each go on from their own state', async () => {
  await setting.admin.createTopics({ topics: [{ topic: 'rn-first', numPartitions: 1 }, { topic: 'rn-second', numPartitions: 1 }] })
  const dir = stateDir()
  // As many records each, in one commit each: both changelogs end at the same offset.
  await send('rn-first', [1, 2, 3, 4, 5])
  await send('rn-second', [1, 2, 3, 4, 5])
  await run('rn-swap-app', topology([{ topic: 'rn-first', counted: true }, { topic: 'rn-second', counted: true }]), dir, 10)

  await send('rn-first', [6, 7])
  await send('rn-second', [6, 7])
  await run('rn-swap-app', topology([{ topic: 'rn-second', counted: true }, { topic: 'rn-first', counted: true }]), dir, 4)
  for (const topic of ['rn-first-counts', 'rn-second-counts']) {
    const counts = values<{ n: number }>(await readSettled(setting.kafka, topic, (r) => r.length >= 2))
    expect(counts.map((c) => c.n), topic).toEqual([5, 7])
  }
}, 120_000)

test('a state directory used again under another application id is another application\'s state: discarded, saying so', async () => {
  await setting.admin.createTopics({ topics: [{ topic: 'rn-renamed', numPartitions: 1 }] })
  const dir = stateDir()
  await send('rn-renamed', [1, 2, 3])
  await run('rn-old-app', topology([{ topic: 'rn-renamed', counted: true }]), dir, 3)
  const lines = await run('rn-new-app', topology([{ topic: 'rn-renamed', counted: true }]), dir, 3)
  expect(lines.join('\n')).toContain(
    "task 0_0: local state was written from rn-old-app-rn-renamed-store-changelog, not rn-new-app-rn-renamed-store-changelog: it is another application's state, not rn-new-app's (the state directory was used with another application id); discarding it",
  )
  // The new application counts the topic from its start on its own.
  const counts = values<{ n: number }>(await readSettled(setting.kafka, 'rn-renamed-counts', (r) => r.length >= 2))
  expect(counts.map((c) => c.n)).toEqual([3, 3])
}, 120_000)
