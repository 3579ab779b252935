/**
 * A windowed operator started again with another window size keeps its name, and so its state: state kept in slices
 * of one size would be read as windows of the other and counted wrong (a trial restarted the iot pipeline with
 * `--stats-window 30s` on a 1-minute state and wrote 30-second windows holding a minute's readings). Each commit's
 * marker names every windowed operator's state layout; a task whose operator now has another is refused with one
 * error that says what to do, from its own state directory and from the changelog alike. A changed grace reads the
 * same state, and goes on.
 */
import { afterAll, beforeAll, expect, test } from 'vitest'
import { count, eventTime, runPipeline, TopologyBuilder, tumbling, type Duration, type Topology } from '../../processor/index.js'
import { FAST_GROUPS } from '../helpers/broker-config.js'
import { startKafkajsBroker, stopKafkajsBroker, type KafkajsBroker } from '../helpers/kafkajs-broker.js'
import { waitFor } from '../helpers/wait.js'
import { readTopic, stateDir, values } from './helpers.js'

let setting: KafkajsBroker

beforeAll(async () => {
  setting = await startKafkajsBroker(FAST_GROUPS, { clientId: 'processor-window-change' })
})
afterAll(async () => {
  await stopKafkajsBroker(setting)
})

const APP = 'window-change'
const BASE = Date.UTC(2024, 0, 1)

function topology(size: Duration, grace: Duration): Topology {
  const builder = new TopologyBuilder()
  builder
    .stream<{ deviceId: string; ts: number }>('wc-readings', { eventTime: eventTime.field('ts') })
    .groupByKey()
    .windowedBy(tumbling({ size, grace }))
    .aggregate({ n: count() }, { name: 'per-window' })
    .to('wc-counts')
  return builder.build()
}

/** Runs `size`/`grace` on `dir` until it has processed `records` input records, then stops it; or returns its error. */
async function run(size: Duration, grace: Duration, dir: string, records: number): Promise<Error | null> {
  const started = await runPipeline(topology(size, grace), { applicationId: APP, bootstrapServers: setting.broker.address, stateDir: dir, commitIntervalMs: 100, idleTimeoutMs: 3_600_000, log: () => {} }).catch((error: Error) => error)
  if (started instanceof Error) return started
  let failure: Error | null = null
  void started.closed.catch((error: Error) => (failure = error))
  try {
    await waitFor(`${records} records processed, or a failure`, () => failure !== null || started.metrics().recordsIn >= records, { timeoutMs: 60_000 })
  } finally {
    await started.stop().catch(() => {})
  }
  return failure
}

const reading = (seconds: number) => ({ key: 'd1', value: JSON.stringify({ deviceId: 'd1', ts: BASE + seconds * 1000 }) })

test('a windowed operator whose window size changed is refused, from its state directory and from the changelog; a changed grace goes on', async () => {
  await setting.admin.createTopics({ topics: [{ topic: 'wc-readings', numPartitions: 1 }] })
  // Two readings in the window [0 s, 60 s): it stays open (stream time 40 s).
  await setting.producer.send({ topic: 'wc-readings', messages: [reading(10), reading(40)] })
  const dir = stateDir()
  expect(await run('1m', 0, dir, 2)).toBeNull()

  const refused = /task 0_0: operator per-window holds state for windows tumbling 1m, but its window is now tumbling 30s: state kept in slices of one size does not make windows of another\. Give the operator another name to start it afresh, or reset the application/
  expect((await run('30s', 0, dir, 2))?.message).toMatch(refused)
  // A new instance restores the task from the changelog, whose last marker names the layout too.
  expect((await run('30s', 0, stateDir(), 2))?.message).toMatch(refused)

  // The same size with another grace reads the same state: the window [0 s, 60 s) closes with both readings.
  await setting.producer.send({ topic: 'wc-readings', messages: [reading(70)] })
  expect(await run('1m', '5s', dir, 1)).toBeNull()
  await setting.producer.send({ topic: 'wc-readings', messages: [reading(200)] })
  expect(await run('1m', '5s', dir, 1)).toBeNull()
  const counts = values(await readTopic(setting.kafka, 'wc-counts', (r) => r.length >= 2))
  expect(counts.map((c) => [c.windowStart, c.n])).toEqual([
    [BASE, 2],
    [BASE + 60_000, 1],
  ])
}, 180_000)
