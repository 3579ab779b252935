/**
 * Event-time alignment of source tasks writing to a repartition topic (processor/runtime/alignment.ts): the rules on
 * a hand-driven clock, and a backlog of two source partitions caught up through a keyBy into a window with a short
 * grace, where nothing may come out late (before alignment, one partition's whole backlog reached the repartition
 * topic ahead of the other's and most of the other's records were late).
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { TopologyBuilder, count, eventTime, runPipeline, tumbling, type Duration, type RunningPipeline } from '../../processor/index.js'
import { alignmentSlackMs, EventTimeAlignment, MIN_ALIGN_SLACK_MS } from '../../processor/runtime/alignment.js'
import { planTopology } from '../../processor/topology/plan.js'
import { FAST_GROUPS } from '../helpers/broker-config.js'
import { startKafkajsBroker, stopKafkajsBroker, type KafkajsBroker } from '../helpers/kafkajs-broker.js'
import { waitFor } from '../helpers/wait.js'
import { readSettled, readTopic, stateDir, values } from './helpers.js'

interface Reading { device: string; ts: number }

function topology(grace: Duration, input = 'al-readings', output = 'al-counts') {
  const builder = new TopologyBuilder()
  builder
    .stream<Reading>(input, { eventTime: eventTime.field('ts') })
    .keyBy(() => 'all', { name: 'everything' })
    .groupByKey()
    .windowedBy(tumbling({ size: '5s', grace }))
    .aggregate({ readings: count() }, { name: 'all-5s' })
    .to(output)
  return builder.build()
}

/**
 * 40 s of readings in each of two partitions, written before the pipeline starts: a backlog. Partition 0 has one
 * every 100 ms, partition 1 one every 300 ms, so the two cover the same event time in different numbers of records.
 * `expected`: readings per 5 s window start.
 */
const times = [100, 300].map((step) => Array.from({ length: Math.ceil(40_000 / step) }, (_, i) => i * step))
const readings = times[0]!.length + times[1]!.length
const expected = perWindow(times.flat())

/** How many of `timestamps` fall in each 5 s window (windowStart -> readings). */
function perWindow(timestamps: readonly number[]): Map<number, number> {
  const counts = new Map<number, number>()
  for (const ts of timestamps) counts.set(Math.floor(ts / 5000) * 5000, (counts.get(Math.floor(ts / 5000) * 5000) ?? 0) + 1)
  return counts
}

/** Makes `topic` with one partition per series and writes each series' readings (event times in ms) to its partition. */
async function writeBacklog(setting: KafkajsBroker, topic: string, series: readonly (readonly number[])[] = times): Promise<void> {
  await setting.admin.createTopics({ topics: [{ topic, numPartitions: series.length }] })
  for (const [partition, stamps] of series.entries()) {
    await setting.producer.send({ topic, messages: stamps.map((ts) => ({ partition, key: `d${partition}`, value: JSON.stringify({ device: `d${partition}`, ts }) })) })
  }
}

/** Per window, `windowStart: counted + late` for what was read, and the same with the expected count, to compare. */
function countedOrLate(counted: Map<number, number>, late: readonly Reading[], want: Map<number, number>): { seen: string[]; wanted: string[] } {
  const starts = [...want.keys()].sort((a, b) => a - b)
  return {
    seen: starts.map((start) => `${start}: ${(counted.get(start) ?? 0) + late.filter((r) => Math.floor(r.ts / 5000) * 5000 === start).length}`),
    wanted: starts.map((start) => `${start}: ${want.get(start)}`),
  }
}

/** The latest count of each window (windowStart -> readings) among the window results read. */
function latestCounts(records: Parameters<typeof values>[0]): Map<number, number> {
  const byWindow = new Map<number, number>()
  for (const v of values<{ windowStart: number; readings: number }>(records)) byWindow.set(v.windowStart, v.readings)
  return byWindow
}

const total = (byWindow: Map<number, number>) => [...byWindow.values()].reduce((a, b) => a + b, 0)

/** Waits until `output` counts every reading of `times`, then checks each window's count and that none was late. */
async function expectEveryReadingCounted(setting: KafkajsBroker, output: string, pipeline: RunningPipeline): Promise<void> {
  const records = await readSettled(setting.kafka, output, (r) => total(latestCounts(r)) === readings, (r) => `counted ${total(latestCounts(r))} of ${readings}, late ${pipeline.metrics().late}`)
  expect([...latestCounts(records)].sort((a, b) => a[0] - b[0])).toEqual([...expected].sort((a, b) => a[0] - b[0]))
  expect(pipeline.metrics().late).toBe(0)
}

describe('the alignment rules', () => {
  const running = new Set(['a', 'b', 'c'])
  const make = () => new EventTimeAlignment<string>(1000, (k) => running.has(k), 1000)

  test('a task past the head of a lagging task plus the slack is held until the other catches up', () => {
    const al = make()
    al.join('a', true, 0)
    al.join('b', true, 0)
    // b's head is unknown while it lags: a may not go past it.
    expect(al.limit('a', 0)).toBe(Number.NEGATIVE_INFINITY)
    al.processed('b', 10_000, true, false, 1)
    expect(al.limit('a', 1)).toBe(11_000)
    al.processed('a', 40_000, true, true, 2)
    expect(al.held('a')).toBe(true)
    // b is limited by a's head now, and a stays held while b is far behind.
    expect(al.limit('b', 2)).toBe(41_000)
    expect(al.released(3)).toEqual([])
    al.processed('b', 39_500, true, false, 4)
    expect(al.released(5)).toEqual(['a'])
    expect(al.held('a')).toBe(false)
  })

  test('a caught-up task with a batch in hand holds the others back from its first record until it is processed', () => {
    const al = make()
    al.join('a', false, 0)
    al.join('b', false, 0)
    al.processed('b', 2_000, false, false, 1)
    expect(al.limit('a', 1)).toBe(Number.POSITIVE_INFINITY)
    // A burst: b's batch starts at 3 s; a may go 1 s past that, and no further, until b has processed it.
    al.arrived('b', 3_000, 2)
    expect(al.limit('a', 2)).toBe(4_000)
    // A batch whose first record cannot be read keeps the head b had.
    al.arrived('b', null, 3)
    expect(al.limit('a', 3)).toBe(4_000)
    al.processed('b', 40_000, false, false, 4)
    expect(al.limit('a', 4)).toBe(Number.POSITIVE_INFINITY)
    // A held task takes no batch: its head stays the record it stopped before.
    al.processed('a', 50_000, true, true, 5)
    al.arrived('a', 1_000, 6)
    expect(al.limit('b', 6)).toBe(51_000)
  })

  test('a caught-up task, a quiet one and a suspended one hold nothing back', () => {
    const al = make()
    al.join('a', true, 0)
    al.join('b', false, 0)
    expect(al.limit('a', 0)).toBe(Number.POSITIVE_INFINITY)
    // b lagged at its last batch, but no news came for the wait: it no longer counts.
    al.processed('b', 5_000, true, false, 10)
    expect(al.limit('a', 500)).toBe(6_000)
    expect(al.limit('a', 1010)).toBe(Number.POSITIVE_INFINITY)
    al.processed('b', 5_000, true, false, 2000)
    running.delete('b')
    try {
      expect(al.limit('a', 2001)).toBe(Number.POSITIVE_INFINITY)
    } finally {
      running.add('b')
    }
  })

  test('a task assigned but not running yet holds the others back until it joins, for the wait at most', () => {
    const al = make()
    // d is assigned with a and still initializing (not running): a, the first to run, may not take its backlog past it.
    al.expect('a', 0)
    al.expect('d', 0)
    al.join('a', true, 10)
    expect(al.limit('a', 10)).toBe(Number.NEGATIVE_INFINITY)
    al.processed('a', 20_000, true, true, 20)
    expect(al.released(500)).toEqual([])
    // d joins (its partition has records): a stays held until d's records catch up.
    al.join('d', true, 600)
    running.add('d')
    try {
      expect(al.released(700)).toEqual([])
      al.processed('d', 19_500, true, false, 800)
      expect(al.released(801)).toEqual(['a'])
    } finally {
      running.delete('d')
    }
    // A task that restores for longer than the wait holds nothing back after it.
    al.expect('e', 1000)
    expect(al.limit('a', 1999)).toBe(Number.NEGATIVE_INFINITY)
    expect(al.limit('a', 2000)).toBe(Number.POSITIVE_INFINITY)
  })

  test('a held task goes on after the wait even when a record far in the future made its head unreachable', () => {
    const al = make()
    al.join('a', true, 0)
    al.join('b', true, 0)
    al.processed('b', 1_000, true, false, 0)
    al.processed('a', 4_102_444_800_000, true, true, 0)
    expect(al.released(999)).toEqual([])
    expect(al.released(1000)).toEqual(['a'])
  })

  test('of two held tasks the one behind goes on first, and the other waits for it', () => {
    const al = make()
    al.join('a', true, 0)
    al.join('b', true, 0)
    al.join('c', false, 0)
    al.processed('a', 20_000, true, true, 1)
    al.processed('b', 5_000, true, true, 1)
    expect(al.released(2)).toEqual(['b'])
    expect(al.held('a')).toBe(true)
  })

  test('a task released by the wait lets its next record through once', () => {
    const al = make()
    al.join('a', true, 0)
    al.join('b', true, 0)
    al.processed('a', 90_000, true, true, 0)
    al.processed('b', 1_000, true, false, 900)
    expect(al.takeMustGo('a')).toBe(false)
    expect(al.released(1000)).toEqual(['a'])
    expect(al.takeMustGo('a')).toBe(true)
    expect(al.takeMustGo('a')).toBe(false)
  })

  test('a window two keyBys away aligns the source tasks and the tasks between', () => {
    const builder = new TopologyBuilder()
    builder
      .stream<Reading>('al-chain', { eventTime: eventTime.field('ts') })
      .keyBy((r) => r.device, { name: 'first' })
      .keyBy(() => 'all', { name: 'second' })
      .groupByKey()
      .windowedBy(tumbling({ size: '5s', grace: '3s' }))
      .aggregate({ readings: count() }, { name: 'chain-5s' })
      .to('al-chain-counts')
    const plan = planTopology(builder.build(), { applicationId: 'al' })
    expect(plan.subtopologies.map((sub) => alignmentSlackMs(plan, sub))).toEqual([1500, 1500, null])
  })

  test('the slack is half the smallest grace of the windows reading the repartition topic, never below the least', () => {
    const plan = (grace: Duration) => planTopology(topology(grace), { applicationId: 'al' })
    const sourceOf = (p: ReturnType<typeof plan>) => p.subtopologies.find((s) => s.repartitionTopics.length > 0)!
    expect(alignmentSlackMs(plan('4s'), sourceOf(plan('4s')))).toBe(2000)
    expect(alignmentSlackMs(plan(0), sourceOf(plan(0)))).toBe(MIN_ALIGN_SLACK_MS)
    const downstream = plan('4s').subtopologies.find((s) => s.repartitionTopics.length === 0)!
    expect(alignmentSlackMs(plan('4s'), downstream)).toBeNull()
  })
})

describe.each(['exactly_once', 'at_least_once'] as const)('a backlog of two partitions through a keyBy into a window (%s)', (guarantee) => {
  let setting: KafkajsBroker
  let pipeline: RunningPipeline | undefined
  const input = `al-readings-${guarantee}`
  const output = `al-counts-${guarantee}`

  beforeAll(async () => {
    setting = await startKafkajsBroker(FAST_GROUPS, { clientId: `processor-alignment-${guarantee}` })
    await writeBacklog(setting, input)
  })
  afterAll(async () => {
    await pipeline?.stop()
    await stopKafkajsBroker(setting)
  })

  test('every reading is counted in its window and none is late', async () => {
    // A held task waits up to 10 s for the others rather than the default 1 s: on a loaded machine a fetch can take
    // longer than a second, and a task released by the wait runs ahead by design (its records can then be late).
    pipeline = await runPipeline(topology('2s', input, output), { applicationId: `al-${guarantee}`, bootstrapServers: setting.broker.address, stateDir: stateDir(), commitIntervalMs: 200, processingGuarantee: guarantee, eventTimeAlignment: { maxWaitMs: 10_000 }, log: () => {} })
    const started = pipeline
    // Both sub-topologies have read every reading (the source tasks, then the window's tasks from the repartition topic).
    await waitFor('the backlog processed', () => started.metrics().recordsIn >= 2 * readings, { timeoutMs: 60_000 })
    await expectEveryReadingCounted(setting, output, started)
  })
})

test('an eventTimeAlignment.maxWaitMs that is not a positive number of ms is refused before anything connects', async () => {
  for (const maxWaitMs of [0, -5, Number.NaN, Number.POSITIVE_INFINITY]) {
    await expect(runPipeline(topology('2s'), { applicationId: 'al-bad-wait', bootstrapServers: '127.0.0.1:1', stateDir: stateDir(), eventTimeAlignment: { maxWaitMs }, log: () => {} }))
      .rejects.toThrow(`eventTimeAlignment.maxWaitMs must be a positive number of ms, not ${maxWaitMs}`)
  }
})

describe('a task that fails after writing ahead into its transaction (exactly_once)', () => {
  let setting: KafkajsBroker
  let pipeline: RunningPipeline | undefined
  const input = 'al-fail-readings'
  const output = 'al-fail-counts'

  beforeAll(async () => {
    setting = await startKafkajsBroker(FAST_GROUPS, { clientId: 'processor-alignment-failure' })
    await writeBacklog(setting, input)
  })
  afterAll(async () => {
    await pipeline?.stop()
    await stopKafkajsBroker(setting)
  })

  test('what it wrote ahead is aborted with the transaction and redone once: each reading is counted or late, once', async () => {
    // A running sum per device beside the keyBy; its reduce throws the first time it meets the reading at 30 s, which
    // fails the task mid-transaction (after its repartition output has been written ahead many times: the commit
    // interval is longer than the whole backlog takes) and makes it start again from its last commit. What it redoes
    // reaches the repartition topic after the other task's records of the same time, so some of it may be late
    // (processor/README.md, "After a keyBy"); none may be lost or counted twice.
    let thrown = 0
    const builder = new TopologyBuilder()
    const readingsStream = builder.stream<Reading>(input, { eventTime: eventTime.field('ts') })
    readingsStream
      .groupByKey()
      .reduce((a, b) => {
        if (b.ts === 30_000 && thrown++ === 0) throw new Error('a reduce that fails once')
        return { device: b.device, ts: Math.max(a.ts, b.ts) }
      }, { name: 'latest' })
      .to('al-fail-latest')
    readingsStream
      .keyBy(() => 'all', { name: 'everything' })
      .groupByKey()
      .windowedBy(tumbling({ size: '5s', grace: '2s' }))
      .aggregate({ readings: count() }, { name: 'all-5s' })
      .to(output)
    const logged: string[] = []
    pipeline = await runPipeline(builder.build(), { applicationId: 'al-fail', bootstrapServers: setting.broker.address, stateDir: stateDir(), commitIntervalMs: 3000, log: (line) => logged.push(line) })
    const started = pipeline
    await waitFor('the failure', () => thrown > 0, { timeoutMs: 60_000 })
    const records = await readSettled(setting.kafka, output, (r) => total(latestCounts(r)) + started.metrics().late >= readings, (r) => `counted ${total(latestCounts(r))} and ${started.metrics().late} late of ${readings}`, { timeoutMs: 60_000 })
    const late = values<Reading>(await readTopic(setting.kafka, 'al-fail-late', (r) => r.length >= started.metrics().late))
    const { seen, wanted } = countedOrLate(latestCounts(records), late, expected)
    expect(seen).toEqual(wanted)
    expect(logged.some((line) => line.includes('a reduce that fails once') && line.includes('re-initializing'))).toBe(true)
  })
})

describe('a partition whose backlog starts later, through one keyBy and through two', () => {
  let setting: KafkajsBroker
  const pipelines: RunningPipeline[] = []
  const input = 'al-later-readings'
  // Partition 0 from 0 s, partition 1 from 20 s, both to 40 s, one reading every 100 ms: partition 1's first record is
  // 20 s ahead of partition 0's, which a task must not let through before partition 0 has caught up.
  const later = [0, 20_000].map((from) => Array.from({ length: (40_000 - from) / 100 }, (_, i) => from + i * 100))
  const laterReadings = later[0]!.length + later[1]!.length
  const laterExpected = perWindow(later.flat())

  beforeAll(async () => {
    setting = await startKafkajsBroker(FAST_GROUPS, { clientId: 'processor-alignment-later' })
    await writeBacklog(setting, input, later)
  })
  afterAll(async () => {
    for (const pipeline of pipelines) await pipeline.stop()
    await stopKafkajsBroker(setting)
  })

  const run = async (keyBys: number) => {
    const builder = new TopologyBuilder()
    let stream = builder.stream<Reading>(input, { eventTime: eventTime.field('ts') })
    if (keyBys === 2) stream = stream.keyBy((r) => r.device, { name: 'by-device' })
    const output = `al-later-counts-${keyBys}`
    stream
      .keyBy(() => 'all', { name: 'everything' })
      .groupByKey()
      .windowedBy(tumbling({ size: '5s', grace: '2s' }))
      .aggregate({ readings: count() }, { name: 'all-5s' })
      .to(output)
    // A 10 s wait, as in the backlog test above: alignment, not the machine's load, is what is tested.
    const pipeline = await runPipeline(builder.build(), { applicationId: `al-later-${keyBys}`, bootstrapServers: setting.broker.address, stateDir: stateDir(), commitIntervalMs: 200, eventTimeAlignment: { maxWaitMs: 10_000 }, log: () => {} })
    pipelines.push(pipeline)
    const records = await readSettled(setting.kafka, output, (r) => total(latestCounts(r)) + pipeline.metrics().late >= laterReadings, (r) => `counted ${total(latestCounts(r))} of ${laterReadings}, late ${pipeline.metrics().late}`)
    const late = values<Reading>(await readTopic(setting.kafka, `al-later-${keyBys}-late`, (r) => r.length >= pipeline.metrics().late))
    return { counted: latestCounts(records), late }
  }

  test('through one keyBy: every reading is counted in its window and none is late', async () => {
    const { counted, late } = await run(1)
    expect([...counted].sort((a, b) => a[0] - b[0])).toEqual([...laterExpected].sort((a, b) => a[0] - b[0]))
    expect(late).toEqual([])
  })

  test('through two keyBys: each reading is counted or late, once (the second stage reads what the first committed, in commit order)', async () => {
    const { counted, late } = await run(2)
    const { seen, wanted } = countedOrLate(counted, late, laterExpected)
    expect(seen).toEqual(wanted)
    console.log(`through two keyBys: ${late.length} of ${laterReadings} readings late`)
  })
})
