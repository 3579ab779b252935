/**
 * The DSL's operators on a real broker, each with a Spark Streaming counterpart (processor/README.md maps them):
 * filter/map/flatMap, keyBy (through its repartition topic), enrichment from a static dataset and from a global
 * table read from a compacted topic, countByValue, reduce (reduceByKey), updateStateByKey (and its deletion of a
 * key's state, a changelog tombstone a restore applies), windowed aggregation after a repartition, session windows
 * (a closed session is never reopened: a record within its gap is late or starts a new session, as Kafka Streams
 * decides), and the console sink. Also what describeTopology prints for it, and where progress lines go without a log option.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { HeaderNames, TopologyBuilder, count, describeTopology, eventTime, runPipeline, session, staticTable, sum, tumbling, type RunningPipeline, type Topology } from '../../processor/index.js'
import { FAST_GROUPS } from '../helpers/broker-config.js'
import { startKafkajsBroker, stopKafkajsBroker, type KafkajsBroker } from '../helpers/kafkajs-broker.js'
import { waitFor } from '../helpers/wait.js'
import { readTopic, stateDir, values } from './helpers.js'

interface Event {
  device: string
  kind: string
  n: number
  ts: number
}

function topology(): Topology {
  const b = new TopologyBuilder()
  const sites = staticTable('sites', { d1: 'north', d2: 'south' })
  const limits = b.globalTable<{ limit: number }>('dsl-limits')
  const events = b.stream<Event>('dsl-events', { eventTime: eventTime.field('ts') })
  events
    .filter((e) => e.n >= 0)
    .flatMap((e) => (e.kind === 'pair' ? [e, { ...e, kind: 'pair-copy' }] : [e]))
    .map((e) => ({ ...e, n: e.n * 10 }))
    .enrich(sites, (e, site: string | undefined) => ({ ...e, site: site ?? 'unknown' }))
    .enrich(limits, (e, limit: { limit: number } | undefined) => ({ ...e, limit: limit?.limit ?? null }))
    .to('dsl-enriched')
  events.countByValue((e) => e.kind, { name: 'kinds', window: tumbling({ size: '10s', grace: 0 }) }).to('dsl-kinds')
  events.groupByKey().reduce((a, b) => ({ ...b, n: a.n + b.n }), { name: 'device-total' }).to('dsl-totals')
  events.groupByKey().updateStateByKey<{ seen: number; last: string }>((state, e) => ({ seen: (state?.seen ?? 0) + 1, last: e.kind }), { name: 'device-state' }).to('dsl-states')
  events
    .keyBy((e) => e.kind, { name: 'by-kind', partitions: 2 })
    .groupByKey()
    .windowedBy(tumbling({ size: '10s', grace: 0 }))
    .aggregate({ events: count(), total: sum('n') }, { name: 'kind-10s' })
    .to('dsl-kind-10s')
  events
    .groupByKey()
    .windowedBy(tumbling({ size: '10s', grace: 0 }))
    .aggregate({ events: count() }, { name: 'device-live', emit: 'update' })
    .to('dsl-device-live')
  events.filter((e) => e.kind === 'alarm').print({ format: (e, c) => `ALARM ${c.key} ${e.n}` })
  return b.build()
}

describe('describeTopology', () => {
  test('shows sub-topologies, repartition and changelog topics, windows and sinks', () => {
    const text = describeTopology(topology(), { applicationId: 'dsl' })
    expect(text).toContain('Sub-topology 0 (dsl-events): one task per partition of dsl-events')
    expect(text).toContain('-> keyBy kinds-by-value -> dsl-kinds-by-value-repartition')
    expect(text).toContain('-> keyBy by-kind -> dsl-by-kind-repartition (2 partitions)')
    expect(text).toContain('Sub-topology 2 (by-kind): one task per partition of dsl-by-kind-repartition')
    expect(text).toContain('aggregate kind-10s by key: { events: count, total: sum(n) }; tumbling 10s, grace 0ms, emit final, late -> dsl-late')
    expect(text).toContain('store dsl-events-store (device-total, device-state, device-live) <-> changelog dsl-dsl-events-store-changelog')
    expect(text).toContain('enrich enrich-4 from static table sites (2 entries) (left join)')
    expect(text).toContain('enrich enrich-5 from global table dsl-limits (left join)')
    expect(text).toContain('Global table dsl-limits <- dsl-limits')
  })
})

describe('the DSL on a broker', () => {
  let setting: KafkajsBroker
  let pipeline: RunningPipeline
  const printed: string[] = []

  beforeAll(async () => {
    setting = await startKafkajsBroker(FAST_GROUPS, { clientId: 'processor-dsl' })
    await setting.admin.createTopics({ topics: [{ topic: 'dsl-limits', numPartitions: 2, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] }] })
    await setting.producer.send({ topic: 'dsl-limits', messages: [{ key: 'd1', value: JSON.stringify({ limit: 7 }) }, { key: 'd2', value: JSON.stringify({ limit: 9 }) }] })
    pipeline = await runPipeline(topology(), {
      applicationId: 'dsl',
      bootstrapServers: setting.broker.address,
      stateDir: stateDir(),
      commitIntervalMs: 200,
      // Some repartition partitions only get a record or two: their windows close once they have been idle.
      idleTimeoutMs: 1500,
      // One source partition: records reach the repartition topics in event-time order, so none is late there.
      partitions: 1,
      log: () => {},
      print: (line) => printed.push(line),
    })
    const event = (device: string, kind: string, n: number, seconds: number) => ({ key: device, value: JSON.stringify({ device, kind, n, ts: seconds * 1000 }) })
    await setting.producer.send({
      topic: 'dsl-events',
      messages: [event('d1', 'read', 1, 1), event('d2', 'pair', 2, 2), event('d3', 'read', -5, 3), event('d1', 'alarm', 3, 4), event('d2', 'read', 4, 12), event('d1', 'read', 5, 29)],
    })
  })
  afterAll(async () => {
    await pipeline?.stop()
    await stopKafkajsBroker(setting)
  })

  test('filter, flatMap, map and enrichment from a static dataset and a global table', async () => {
    const enriched = values(await readTopic(setting.kafka, 'dsl-enriched', (r) => r.length >= 6))
    expect(enriched.map((e) => [e.device, e.kind, e.n, e.site, e.limit]).sort()).toEqual(
      [
        ['d1', 'read', 10, 'north', 7],
        ['d2', 'pair', 20, 'south', 9],
        ['d2', 'pair-copy', 20, 'south', 9],
        ['d1', 'alarm', 30, 'north', 7],
        ['d2', 'read', 40, 'south', 9],
        ['d1', 'read', 50, 'north', 7],
      ].sort(),
    )
  })

  test('countByValue per window, through its repartition topic', async () => {

    const kinds = values(await readTopic(setting.kafka, 'dsl-kinds', (r) => r.length >= 5))
    expect(kinds.map((k) => [k.value, k.windowStart, k.count]).sort()).toEqual([
      ['alarm', 0, 1],
      ['pair', 0, 1],
      ['read', 0, 2],
      ['read', 10_000, 1],
      ['read', 20_000, 1],
    ])
  })

  test('reduce (reduceByKey) and updateStateByKey keep per-key state', async () => {
    // A running reduce writes each changed key's result at commits: the last one per key is the total.
    await waitFor('running totals', async () => {
      const last = new Map<string | null, number>()
      for (const r of await readTopic(setting.kafka, 'dsl-totals', (x) => x.length >= 3)) last.set(r.key, (JSON.parse(r.value!) as { value: Event }).value.n)
      return last.get('d1') === 9 && last.get('d2') === 6 && last.get('d3') === -5
    })
    const states = await readTopic(setting.kafka, 'dsl-states', (r) => r.length >= 6)
    expect(states).toHaveLength(6)
    expect(states.filter((r) => r.key === 'd1').map((r) => JSON.parse(r.value!))).toEqual([
      { seen: 1, last: 'read' },
      { seen: 2, last: 'alarm' },
      { seen: 3, last: 'read' },
    ])
  })

  test('keyBy repartitions, then a windowed aggregate per new key', async () => {
    const windows = await readTopic(setting.kafka, 'dsl-kind-10s', (r) => r.length >= 5)
    expect(windows.map((r) => [r.key, JSON.parse(r.value!).windowStart, JSON.parse(r.value!).events, JSON.parse(r.value!).total]).sort()).toEqual([
      ['alarm', 0, 1, 3],
      ['pair', 0, 1, 2],
      ['read', 0, 2, -4],
      ['read', 10_000, 1, 4],
      ['read', 20_000, 1, 5],
    ])
    // What the tasks committed is deleted from the repartition topic (it keeps records with retention.ms=-1).
    await waitFor('the repartition topic purged', async () => (await setting.admin.fetchTopicOffsets('dsl-by-kind-repartition')).some((p) => Number(p.low) > 0))
  })

  test('emit mode update: changed windows at commits, the last update of each window is its final count', async () => {
    const expected = new Map([['d1|0', 2], ['d2|0', 1], ['d3|0', 1], ['d2|10000', 1], ['d1|20000', 1]])
    const updates = await readTopic(setting.kafka, 'dsl-device-live', (records) => {
      const last = new Map(values(records).map((v) => [`${v.key}|${v.windowStart}`, v.events]))
      return [...expected].every(([k, n]) => last.get(k) === n)
    })
    const last = new Map(values(updates).map((v) => [`${v.key}|${v.windowStart}`, v.events]))
    expect(Object.fromEntries(last)).toEqual(Object.fromEntries(expected))
  })

  test('nothing was late or unreadable', () => {
    expect(pipeline.metrics()).toMatchObject({ late: 0, deadLetters: 0 })
  })

  test('the console sink prints after commit', async () => {
    await waitFor('the alarm line', () => printed.includes('ALARM d1 3'))
  })

  test('without a log option, the progress lines go to stderr prefixed brook processor:', async () => {
    const b = new TopologyBuilder()
    b.stream<{ n: number }>('dsl-default-log-in').to('dsl-default-log-out')
    const written: string[] = []
    const write = process.stderr.write
    process.stderr.write = ((chunk: string | Uint8Array, ...rest: never[]) => {
      if (String(chunk).startsWith('brook process')) written.push(String(chunk))
      else return write.call(process.stderr, chunk, ...rest)
      return true
    }) as typeof process.stderr.write
    try {
      const running = await runPipeline(b.build(), { applicationId: 'dsl-default-log', bootstrapServers: setting.broker.address, stateDir: stateDir(), partitions: 1 })
      await running.stop()
    } finally {
      process.stderr.write = write
    }
    expect(written.find((line) => line.includes('instance'))).toMatch(/^brook processor: dsl-default-log: instance \S+ started \(exactly_once, 1 sub-topology\)\n$/)
  })

  test("updateStateByKey: an update that returns undefined deletes the key's state (Spark's None), with a changelog tombstone that a restore from the changelog applies", async () => {
    const b = new TopologyBuilder()
    b.stream<{ n?: number; reset?: boolean }>('dsl-tallies')
      .groupByKey()
      .updateStateByKey<{ total: number }>((state, e) => (e.reset ? undefined : { total: (state?.total ?? 0) + e.n! }), { name: 'tally' })
      .to('dsl-tally-states')
    const run = () => runPipeline(b.build(), { applicationId: 'dsl-tally', bootstrapServers: setting.broker.address, stateDir: stateDir(), commitIntervalMs: 200, partitions: 1, log: () => {} })
    const tally = (key: string, value: object) => ({ key, value: JSON.stringify(value) })
    let tallies = await run()
    try {
      await setting.producer.send({ topic: 'dsl-tallies', messages: [tally('a', { n: 1 }), tally('a', { n: 2 }), tally('b', { n: 5 }), tally('a', { reset: true })] })
      // The deletion itself is not emitted: the states written are those the update returned.
      const states = await readTopic(setting.kafka, 'dsl-tally-states', (r) => r.length >= 3)
      expect(states.map((r) => [r.key, JSON.parse(r.value!)])).toEqual([
        ['a', { total: 1 }],
        ['a', { total: 3 }],
        ['b', { total: 5 }],
      ])
      // The changelog's last record of a's group is a tombstone.
      const changelog = await readTopic(setting.kafka, 'dsl-tally-dsl-tallies-store-changelog', (r) => r.some((x) => x.key === '\x01a' && x.value === null))
      expect(changelog.filter((r) => r.key === '\x01a').at(-1)!.value).toBeNull()
    } finally {
      await tallies.stop()
    }
    // A new instance on an empty state directory restores from the changelog: a starts afresh, b goes on.
    tallies = await run()
    try {
      await setting.producer.send({ topic: 'dsl-tallies', messages: [tally('a', { n: 10 }), tally('b', { n: 1 })] })
      const states = await readTopic(setting.kafka, 'dsl-tally-states', (r) => r.length >= 5)
      expect(states.slice(3).map((r) => [r.key, JSON.parse(r.value!)])).toEqual([
        ['a', { total: 10 }],
        ['b', { total: 6 }],
      ])
    } finally {
      await tallies.stop()
    }
  })

  test("session windows: a record within the gap of a closed session never reopens it: late by its own session's close time (ts + gap + grace < stream time) it goes to the late-records topic, otherwise it starts a new session, as in Kafka Streams", async () => {
    // Kafka Streams (KStreamSessionWindowAggregate) drops a record as late when the session it would make, merged with
    // the sessions its store returns within the gap, ends before stream time - gap - grace; its session store (retention
    // gap + grace) no longer returns a session that closed, so the test falls on the record's own [ts, ts].
    const b = new TopologyBuilder()
    b.stream<Event>('dsl-visits', { eventTime: eventTime.field('ts') })
      .groupByKey()
      .windowedBy(session({ gap: '10s', grace: '5s' }))
      .aggregate({ visits: count() }, { name: 'visits' })
      .to('dsl-visit-sessions')
    const visits = await runPipeline(b.build(), { applicationId: 'dsl-visits', bootstrapServers: setting.broker.address, stateDir: stateDir(), commitIntervalMs: 200, partitions: 1, log: () => {} })
    try {
      const visit = (device: string, seconds: number) => ({ key: device, value: JSON.stringify({ device, kind: 'visit', n: 1, ts: seconds * 1000 }) })
      await setting.producer.send({
        topic: 'dsl-visits',
        messages: [
          visit('d1', 0), // d1's session [0 s, 0 s], closed once stream time passes 0 + 10 + 5 s
          visit('d2', 20), // stream time 20 s: d1's session closes
          visit('d1', 4), // within the gap of the closed session, and 4 + 10 + 5 < 20: late
          visit('d1', 8), // within the gap of the closed session, but 8 + 10 + 5 >= 20: a new session
          visit('d2', 100), // closes the rest
        ],
      })
      const sessions = values(await readTopic(setting.kafka, 'dsl-visit-sessions', (r) => r.length >= 3))
      // Sessions closing at one stream time come out in group order, the group of the record that moved it first.
      expect(sessions.map((v) => [v.key, v.windowStart, v.windowEnd, v.visits]).sort()).toEqual([
        ['d1', 0, 1, 1],
        ['d1', 8_000, 8_001, 1],
        ['d2', 20_000, 20_001, 1],
      ])
      const late = await readTopic(setting.kafka, 'dsl-visits-late', (r) => r.length >= 1)
      expect(late.map((r) => [r.key, JSON.parse(r.value!).ts, r.headers[HeaderNames.lateOperator], r.headers[HeaderNames.lateEventTime], r.headers[HeaderNames.lateStreamTime]])).toEqual([['d1', 4_000, 'visits', '4000', '20000']])
      await waitFor('the late counter', () => visits.metrics().late === 1)
    } finally {
      await visits.stop()
    }
  })

  test('session windows in emit mode update retract the sessions a record merges, as Kafka Streams forwards tombstones for them', async () => {
    const b = new TopologyBuilder()
    b.stream<Event>('dsl-taps', { eventTime: eventTime.field('ts') })
      .groupByKey()
      .windowedBy(session({ gap: '10s', grace: '1m' }))
      .aggregate({ taps: count() }, { name: 'taps-live', emit: 'update' })
      .to('dsl-taps-live')
    const sessions = await runPipeline(b.build(), { applicationId: 'dsl-sessions', bootstrapServers: setting.broker.address, stateDir: stateDir(), commitIntervalMs: 200, partitions: 1, log: () => {} })
    try {
      const tap = (seconds: number) => ({ key: 'd1', value: JSON.stringify({ device: 'd1', kind: 'tap', n: 1, ts: seconds * 1000 }) })
      // Two sessions, 11 s apart (more than the gap), each written at a commit.
      await setting.producer.send({ topic: 'dsl-taps', messages: [tap(1), tap(12)] })
      await readTopic(setting.kafka, 'dsl-taps-live', (r) => r.length >= 2)
      // A tap between them joins both into one session [1 s, 12 s].
      await setting.producer.send({ topic: 'dsl-taps', messages: [tap(6.5)] })
      const written = values(await readTopic(setting.kafka, 'dsl-taps-live', (r) => r.length >= 5))
      expect(written.map((v) => [v.windowStart, v.windowEnd, v.retracted ? 'retracted' : v.taps])).toEqual([
        [1_000, 1_001, 1],
        [12_000, 12_001, 1],
        [1_000, 1_001, 'retracted'],
        [12_000, 12_001, 'retracted'],
        [1_000, 12_001, 3],
      ])
      expect(written[2]).toEqual({ key: 'd1', windowStart: 1_000, windowEnd: 1_001, retracted: true })
    } finally {
      await sessions.stop()
    }
  })
})
