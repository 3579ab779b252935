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
import { readSettled, stateDir, values } from './helpers.js'

interface Reading { device: string; ts: number }

function topology(grace: Duration, input = 'al-readings') {
  const builder = new TopologyBuilder()
  builder
    .stream<Reading>(input, { eventTime: eventTime.field('ts') })
    .keyBy(() => 'all', { name: 'everything' })
    .groupByKey()
    .windowedBy(tumbling({ size: '5s', grace }))
    .aggregate({ readings: count() }, { name: 'all-5s' })
    .to('al-counts')
  return builder.build()
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

  test('the slack is half the smallest grace of the windows reading the repartition topic, never below the least', () => {
    const plan = (grace: Duration) => planTopology(topology(grace), { applicationId: 'al' })
    const sourceOf = (p: ReturnType<typeof plan>) => p.subtopologies.find((s) => s.repartitionTopics.length > 0)!
    expect(alignmentSlackMs(plan('4s'), sourceOf(plan('4s')))).toBe(2000)
    expect(alignmentSlackMs(plan(0), sourceOf(plan(0)))).toBe(MIN_ALIGN_SLACK_MS)
    const downstream = plan('4s').subtopologies.find((s) => s.repartitionTopics.length === 0)!
    expect(alignmentSlackMs(plan('4s'), downstream)).toBeNull()
  })
})

describe('a backlog of two partitions through a keyBy into a window', () => {
  let setting: KafkajsBroker
  let pipeline: RunningPipeline | undefined
  const perPartition = 400
  const stepMs = 100

  beforeAll(async () => {
    setting = await startKafkajsBroker(FAST_GROUPS, { clientId: 'processor-alignment' })
    await setting.admin.createTopics({ topics: [{ topic: 'al-readings', numPartitions: 2 }] })
    // 40 s of readings in each partition, ten a second, written before the pipeline starts: a backlog.
    for (const partition of [0, 1]) {
      const messages = Array.from({ length: perPartition }, (_, i) => ({ partition, key: `d${partition}`, value: JSON.stringify({ device: `d${partition}`, ts: i * stepMs }) }))
      await setting.producer.send({ topic: 'al-readings', messages })
    }
  })
  afterAll(async () => {
    await pipeline?.stop()
    await stopKafkajsBroker(setting)
  })

  test('every reading is counted in its window and none is late', async () => {
    pipeline = await runPipeline(topology('2s'), { applicationId: 'al', bootstrapServers: setting.broker.address, stateDir: stateDir(), commitIntervalMs: 200, partitions: 2, log: () => {} })
    const started = pipeline
    // Both sub-topologies have read every reading (the source tasks 800, the window's task 800 from the repartition topic).
    await waitFor('the backlog processed', () => started.metrics().recordsIn >= 4 * perPartition, { timeoutMs: 60_000 })
    const latest = (records: Parameters<typeof values>[0]) => {
      const byWindow = new Map<number, number>()
      for (const v of values<{ windowStart: number; readings: number }>(records)) byWindow.set(v.windowStart, v.readings)
      return byWindow
    }
    const total = (byWindow: Map<number, number>) => [...byWindow.values()].reduce((a, b) => a + b, 0)
    const records = await readSettled(setting.kafka, 'al-counts', (r) => total(latest(r)) === 2 * perPartition, (r) => `counted ${total(latest(r))} of ${2 * perPartition}, late ${started.metrics().late}`)
    // Eight 5 s windows, each with 50 readings of each partition.
    expect([...latest(records)].sort((a, b) => a[0] - b[0])).toEqual(Array.from({ length: 8 }, (_, i) => [i * 5000, 100]))
    expect(started.metrics().late).toBe(0)
  })
})
