/**
 * A windowed operator started again with another window size keeps its name, and so its state: state kept in slices
 * of one size would be read as windows of the other and counted wrong (a trial restarted the iot pipeline with
 * `--stats-window 30s` on a 1-minute state and wrote 30-second windows holding a minute's readings). Each commit's
 * marker names every windowed operator's state layout; a task whose operator now has another is refused with one
 * error that says what to do, from its own state directory and from the changelog alike. A changed grace reads the
 * same state, and goes on. So are aggregations whose accumulators are laid out otherwise (a `max` added before a
 * `sum`: a restart read a sum of 6 as the max of 1 to 5), windowed or not, and an aggregate made a reduce under its
 * name (whose state failed to decode at every start, the task waiting "for the cluster"); an output that keeps the
 * layout goes on.
 */
import { afterAll, beforeAll, expect, test } from 'vitest'
import { avg, count, eventTime, hopping, max, runPipeline, sum, TopologyBuilder, tumbling, type AggregationsOf, type Duration, type Topology, type WindowSpec } from '../../processor/index.js'
import { planTopology } from '../../processor/topology/plan.js'
import { FAST_GROUPS } from '../helpers/broker-config.js'
import { startKafkajsBroker, stopKafkajsBroker, type KafkajsBroker } from '../helpers/kafkajs-broker.js'
import { waitFor } from '../helpers/wait.js'
import { readTopic, stateDir, values } from './helpers.js'
import { COMMIT_ID_BYTES, decodeMarker, encodeMarker, POSITION_KEY } from '../../processor/state/task-store.js'
import { Level } from 'level'
import { join } from 'node:path'

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
function run(size: Duration, grace: Duration, dir: string, records: number): Promise<Error | null> {
  return runUntil(topology(size, grace), APP, dir, records)
}

/** Runs `built` as `applicationId` on `dir` until it has processed `records` input records, then stops it; or returns its error. */
async function runUntil(built: Topology, applicationId: string, dir: string, records: number, log: (line: string) => void = () => {}): Promise<Error | null> {
  const started = await runPipeline(built, { applicationId, bootstrapServers: setting.broker.address, stateDir: dir, commitIntervalMs: 100, idleTimeoutMs: 3_600_000, log }).catch((error: Error) => error)
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

/**
 * `aggregations` of `value` per key (or a reduce summing it), in 1-minute windows and running; started on `dir` until
 * `records` are in.
 */
async function runAggregations(aggregations: AggregationsOf<{ value: number; ts: number }> | 'reduce', dir: string, records: number): Promise<Error | null> {
  const builder = new TopologyBuilder()
  const readings = builder.stream<{ value: number; ts: number }>('ac-readings', { eventTime: eventTime.field('ts') })
  const adding = (a: { value: number; ts: number }, b: { value: number; ts: number }) => ({ ...b, value: a.value + b.value })
  const windowed = readings.groupByKey().windowedBy(tumbling({ size: '1m', grace: 0 }))
  const running = readings.groupByKey()
  if (aggregations === 'reduce') {
    windowed.reduce(adding, { name: 'per-minute' }).to('ac-windows')
    running.reduce(adding, { name: 'running' }).to('ac-running')
  } else {
    windowed.aggregate(aggregations, { name: 'per-minute' }).to('ac-windows')
    running.aggregate(aggregations, { name: 'running' }).to('ac-running')
  }
  return runUntil(builder.build(), 'aggregation-change', dir, records)
}

test('an aggregate whose accumulators are laid out otherwise, or that is now a reduce, is refused, from its state directory and from the changelog; outputs of the same layout go on', async () => {
  await setting.admin.createTopics({ topics: [{ topic: 'ac-readings', numPartitions: 1 }] })
  const value = (v: number, seconds: number) => ({ key: 'd1', value: JSON.stringify({ value: v, ts: BASE + seconds * 1000 }) })
  await setting.producer.send({ topic: 'ac-readings', messages: [value(1, 1), value(2, 2), value(3, 3)] })
  const dir = stateDir()
  expect(await runAggregations({ n: count(), total: sum('value') }, dir, 3)).toBeNull()

  const refused = (now: string) =>
    new RegExp(`task 0_0: operator per-minute holds the state of a windowed aggregate of moments of field 'value', but is now a windowed ${now}: the state of one would be read as the other's\\. Give the operator another name to start it afresh, or reset the application`)
  const otherParts = refused("aggregate of max of field 'value', moments of field 'value'")
  expect((await runAggregations({ top: max('value'), total: sum('value') }, dir, 1))?.message).toMatch(otherParts)
  expect((await runAggregations({ top: max('value'), total: sum('value') }, stateDir(), 1))?.message).toMatch(otherParts)
  expect((await runAggregations('reduce', dir, 1))?.message).toMatch(refused('reduce'))

  // An average beside the sum reads the same moments, and a count takes no part of its own.
  await setting.producer.send({ topic: 'ac-readings', messages: [value(4, 4), value(5, 70)] })
  expect(await runAggregations({ total: sum('value'), mean: avg('value') }, dir, 2)).toBeNull()
  const windows = values(await readTopic(setting.kafka, 'ac-windows', (r) => r.length >= 1))
  expect(windows).toEqual([{ key: 'd1', windowStart: BASE, windowEnd: BASE + 60_000, total: 10, mean: 2.5 }])
  const running = values(await readTopic(setting.kafka, 'ac-running', (r) => r.length >= 2))
  expect(running.at(-1)).toEqual({ key: 'd1', total: 15, mean: 3 })
}, 180_000)

/** Counts per key in `window` from `input` to `output` as the operator 'per-window'. */
function counting(input: string, output: string, window: WindowSpec): Topology {
  const builder = new TopologyBuilder()
  builder.stream<{ deviceId: string; ts: number }>(input, { eventTime: eventTime.field('ts') }).groupByKey().windowedBy(window).aggregate({ n: count() }, { name: 'per-window' }).to(output)
  return builder.build()
}

const keyed = (key: string, seconds: number) => ({ key, value: JSON.stringify({ deviceId: key, ts: BASE + seconds * 1000 }) })

test('a hopping window that advances by its size reads the state of the tumbling window of that size: the same windows', async () => {
  await setting.admin.createTopics({ topics: [{ topic: 'hw-readings', numPartitions: 1 }] })
  await setting.producer.send({ topic: 'hw-readings', messages: [keyed('d1', 10), keyed('d1', 40)] })
  const dir = stateDir()
  expect(await runUntil(counting('hw-readings', 'hw-counts', tumbling({ size: '1m', grace: 0 })), 'hop-window', dir, 2)).toBeNull()
  await setting.producer.send({ topic: 'hw-readings', messages: [keyed('d1', 50), keyed('d1', 70)] })
  expect(await runUntil(counting('hw-readings', 'hw-counts', hopping({ size: '1m', advance: '1m', grace: 0 })), 'hop-window', dir, 2)).toBeNull()
  const counts = values(await readTopic(setting.kafka, 'hw-counts', (r) => r.length >= 1))
  expect(counts.map((c) => [c.windowStart, c.n])).toEqual([[BASE, 3]])
}, 120_000)

test('a group offset moved forward past the state\'s input offset is where the task goes on, as in Kafka Streams: the records skipped are not counted', async () => {
  await setting.admin.createTopics({ topics: [{ topic: 'sk-readings', numPartitions: 1 }] })
  const built = counting('sk-readings', 'sk-counts', tumbling({ size: '1m', grace: 0 }))
  await setting.producer.send({ topic: 'sk-readings', messages: [keyed('d1', 10), keyed('d1', 20)] })
  const dir = stateDir()
  expect(await runUntil(built, 'skip-ahead', dir, 2)).toBeNull()
  // A backlog the operator skips: the group's offset set past it by hand (kafka-consumer-groups.sh --reset-offsets).
  await setting.producer.send({ topic: 'sk-readings', messages: [30, 31, 32, 33, 34].map((seconds) => keyed('d1', seconds)) })
  await setting.admin.setOffsets({ groupId: 'skip-ahead', topic: 'sk-readings', partitions: [{ partition: 0, offset: '7' }] })
  await setting.producer.send({ topic: 'sk-readings', messages: [keyed('d1', 40), keyed('d1', 200)] })
  expect(await runUntil(built, 'skip-ahead', dir, 2)).toBeNull()
  const counts = values(await readTopic(setting.kafka, 'sk-counts', (r) => r.length >= 1))
  expect(counts.map((c) => [c.windowStart, c.n])).toEqual([[BASE, 3]])
}, 120_000)

test('a changelog deleted while an instance kept its local state is written whole again: the instance that takes the task over next restores every group', async () => {
  await setting.admin.createTopics({ topics: [{ topic: 'dc-readings', numPartitions: 1 }] })
  const built = counting('dc-readings', 'dc-counts', tumbling({ size: '1m', grace: 0 }))
  const changelog = planTopology(built, { applicationId: 'dropped-changelog' }).subtopologies[0]!.changelogTopic!
  await setting.producer.send({ topic: 'dc-readings', messages: [10, 11, 12, 13, 14].flatMap((seconds) => [keyed('d1', seconds), keyed('d2', seconds)]) })
  const dir = stateDir()
  expect(await runUntil(built, 'dropped-changelog', dir, 10)).toBeNull()
  await setting.admin.deleteTopics({ topics: [changelog] })
  await waitFor(`${changelog} deleted`, async () => !(await setting.admin.listTopics()).includes(changelog))
  // The instance on the kept state goes on (creating the changelog again); only d1 changes in its run.
  await setting.producer.send({ topic: 'dc-readings', messages: [keyed('d1', 20), keyed('d1', 21)] })
  expect(await runUntil(built, 'dropped-changelog', dir, 2)).toBeNull()
  // Another instance, on no state of its own, restores from the changelog.
  await setting.producer.send({ topic: 'dc-readings', messages: [keyed('d1', 30), keyed('d2', 30), keyed('d1', 200)] })
  expect(await runUntil(built, 'dropped-changelog', stateDir(), 3)).toBeNull()
  const counts = values(await readTopic(setting.kafka, 'dc-counts', (r) => r.length >= 2))
  expect(counts.filter((c) => c.windowStart === BASE).map((c) => [c.key, c.n]).sort()).toEqual([
    ['d1', 8],
    ['d2', 6],
  ])
}, 180_000)

for (const older of [false, true]) {
  test(`an operator removed from the pipeline has its state dropped, and the start says so${older ? ', from a marker written before operators were named in it' : ''}`, async () => {
    const [input, applicationId] = older ? ['ro-old-readings', 'removed-operator-old'] : ['ro-readings', 'removed-operator']
    await setting.admin.createTopics({ topics: [{ topic: input, numPartitions: 1 }] })
    const both = (withSecond: boolean): Topology => {
      const builder = new TopologyBuilder()
      const grouped = builder.stream<{ deviceId: string; ts: number }>(input, { eventTime: eventTime.field('ts') }).groupByKey()
      grouped.windowedBy(tumbling({ size: '10s', grace: 0 })).aggregate({ n: count() }, { name: 'cnt' }).to(`${input}-counts`)
      if (withSecond) grouped.windowedBy(tumbling({ size: '20s', grace: 0 })).aggregate({ n: count() }, { name: 's2' }).to(`${input}-s2`)
      return builder.build()
    }
    await setting.producer.send({ topic: input, messages: [keyed('d1', 1), keyed('d1', 2)] })
    const dir = stateDir()
    expect(await runUntil(both(true), applicationId, dir, 2)).toBeNull()
    if (older) await forgetOperators(join(dir, '0_0'))
    await setting.producer.send({ topic: input, messages: [keyed('d1', 3)] })
    const lines: string[] = []
    expect(await runUntil(both(false), applicationId, dir, 1, (line) => lines.push(line))).toBeNull()
    expect(lines).toContain('task 0_0: its state holds operator s2, which this pipeline no longer has: that state is dropped (an operator added back under the name later starts afresh)')
  }, 120_000)
}

/** Rewrites a task store's marker as a Brook before the operators' names were kept in it wrote it: `windows` only. */
async function forgetOperators(taskDir: string): Promise<void> {
  const db = new Level<string, Buffer>(taskDir, { keyEncoding: 'utf8', valueEncoding: 'buffer' })
  await db.open()
  try {
    const bytes = (await db.get(POSITION_KEY))!
    const { operators, ...marker } = decodeMarker(bytes)
    expect(Object.keys(operators ?? {}).sort()).toEqual(['cnt', 's2'])
    await db.put(POSITION_KEY, encodeMarker(marker, bytes.subarray(1, 1 + COMMIT_ID_BYTES)))
  } finally {
    await db.close()
  }
}
