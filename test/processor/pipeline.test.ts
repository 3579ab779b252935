/**
 * The built-in IoT pipeline end to end on a real broker: fixed readings (in order, out of order, late) give exactly
 * the expected final windows and alerts; each late reading arrives on the late-records topic once. Bad input goes to the
 * dead-letter topic with its reason and stops nothing.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { HeaderNames, TopologyBuilder, count, iotPipeline, runPipeline, sum, type RunningPipeline } from '../../processor/index.js'
import { DEAD_LETTER_VALUE_MAX_BYTES } from '../../processor/runtime/task.js'
import { fetchesGuarded } from '../../processor/runtime/fetch-guards.js'
import { FAST_GROUPS } from '../helpers/broker-config.js'
import { startKafkajsBroker, stopKafkajsBroker, type KafkajsBroker } from '../helpers/kafkajs-broker.js'
import { waitFor } from '../helpers/wait.js'
import { readTopic, settled, stateDir, values } from './helpers.js'

const S = 1000
let setting: KafkajsBroker

beforeAll(async () => {
  setting = await startKafkajsBroker(FAST_GROUPS, { clientId: 'processor-e2e' })
})
afterAll(async () => {
  await stopKafkajsBroker(setting)
})

function reading(deviceId: string, sensor: string, tsSeconds: number, value: unknown) {
  return { key: deviceId, value: JSON.stringify({ deviceId, sensor, value, unit: sensor === 'temperature' ? 'C' : '%', ts: tsSeconds * S }) }
}

describe('the iot pipeline on fixed readings', () => {
  let pipeline: RunningPipeline
  const app = 'iot-fixed'
  const topics = { inputTopic: 'fixed-readings', statsTopic: 'fixed-stats', averagesTopic: 'fixed-avg', alertsTopic: 'fixed-alerts', lateTopic: 'fixed-late' }

  beforeAll(async () => {
    pipeline = await runPipeline(iotPipeline({ ...topics, zScoreMinBaselineWindows: 2, zScoreBaselineWindows: 3 }), {
      applicationId: app,
      bootstrapServers: setting.broker.address,
      stateDir: stateDir(),
      commitIntervalMs: 200,
      idleTimeoutMs: 10 * 60_000,
      log: () => {},
    })
    await setting.producer.send({
      topic: topics.inputTopic,
      messages: [
        reading('d1', 'temperature', 1, 10),
        reading('d1', 'humidity', 10, 5),
        reading('d1', 'temperature', 20, 20),
        reading('d1', 'temperature', 50, 30),
        reading('d1', 'temperature', 70, 40),
        reading('d1', 'temperature', 65, 50), // out of order, same window
        reading('d1', 'temperature', 125, 150),
        reading('d1', 'temperature', 130, 60), // stream time 130 s: [0, 60) and [60, 120) close (end + 10 s grace)
        reading('d1', 'temperature', 30, 99), // late for its 1-minute window, still on time for its 5-minute one, [0, 300)
        reading('d1', 'temperature', 1000, 1), // closes everything up to end 990 s
        reading('d1', 'temperature', 500, 77), // late for its 1-minute window and for all five 5-minute ones
      ],
    })
  })
  afterAll(async () => {
    await pipeline?.stop()
  })

  test('a running pipeline has kafkajs\'s consumer guarded against fetching after a stop and heartbeating only while fetches succeed (runtime/fetch-guards.ts)', () => {
    // Nothing else in this file installs the guard: without the runner's call, a Ctrl-C during a fetcher rebuild spins.
    expect(fetchesGuarded()).toBe(true)
  })

  // Percentiles are DDSketch's (1% relative accuracy): the value at rank floor(q * (n - 1)), no interpolation,
  // clamped to the window's min and max: a one-value window gives its value exactly, and the sketch's 59.75 for the
  // rank-0 value of [60, 150] comes out as 60. Windows closing at the same stream time come out in group order
  // (humidity before temperature).
  test('final 1-minute stats, once per window', async () => {
    const stats = values(await readTopic(setting.kafka, topics.statsTopic, (r) => r.length >= 4))
    // The temperature reading that moves stream time past the first window closes its own group's window first;
    // the other groups' windows due then follow in group order.
    expect(stats).toEqual([
      { deviceId: 'd1', sensor: 'temperature', windowStart: 0, windowEnd: 60 * S, count: 3, min: 10, max: 30, avg: 20, stddev: 10, p50: expect.closeTo(20, 0), p95: expect.closeTo(20, 0), p99: expect.closeTo(20, 0) },
      { deviceId: 'd1', sensor: 'humidity', windowStart: 0, windowEnd: 60 * S, count: 1, min: 5, max: 5, avg: 5, stddev: null, p50: 5, p95: 5, p99: 5 },
      { deviceId: 'd1', sensor: 'temperature', windowStart: 60 * S, windowEnd: 120 * S, count: 2, min: 40, max: 50, avg: 45, stddev: expect.closeTo(7.0710678, 6), p50: expect.closeTo(40, 0), p95: expect.closeTo(40, 0), p99: expect.closeTo(40, 0) },
      { deviceId: 'd1', sensor: 'temperature', windowStart: 120 * S, windowEnd: 180 * S, count: 2, min: 60, max: 150, avg: 105, stddev: expect.closeTo(63.6396103, 6), p50: 60, p95: 60, p99: 60 },
    ])
    expect((await settled(setting.kafka, topics.statsTopic, 4)).length).toBe(4)
  })

  test('5-minute hopping averages: the late reading counts only in the windows still open', async () => {
    const averages = values(await readTopic(setting.kafka, topics.averagesTopic, (r) => r.length >= 4))
    expect((await settled(setting.kafka, topics.averagesTopic, 4)).length).toBe(4)
    // No window starts before time 0 (as Kafka Streams' TimeWindows): the first is [0, 300 s).
    const temperature = averages.filter((a) => a.sensor === 'temperature').map((a) => [a.windowStart, a.count, a.avg])
    expect(temperature).toEqual([
      [0, 8, 57.375],
      [60 * S, 4, 75],
      [120 * S, 2, 105],
    ])
    expect(averages.filter((a) => a.sensor === 'humidity').map((a) => [a.windowStart, a.count, a.avg])).toEqual([[0, 1, 5]])
  })

  test('threshold and z-score alerts', async () => {
    // The default bands for temperature (above 40, below 5); humidity's min of 5 is not below its 5.
    const alerts = values(await readTopic(setting.kafka, topics.alertsTopic, (r) => r.length >= 3))
    expect((await settled(setting.kafka, topics.alertsTopic, 3)).length).toBe(3)
    expect(alerts).toEqual([
      { deviceId: 'd1', sensor: 'temperature', windowStart: 60 * S, windowEnd: 120 * S, value: 50, baseline: 40, score: 10, reason: 'max 50 above 40' },
      { deviceId: 'd1', sensor: 'temperature', windowStart: 120 * S, windowEnd: 180 * S, value: 150, baseline: 40, score: 110, reason: 'max 150 above 40' },
      { deviceId: 'd1', sensor: 'temperature', windowStart: 120 * S, windowEnd: 180 * S, value: 105, baseline: 32.5, score: expect.closeTo(4.101219, 5), reason: expect.stringMatching(/^avg z-score 4.10\d+ beyond ±4/) },
    ])
  })

  test('each late reading is on the late-records topic once, as it was read, naming the operators it was late for, and counted', async () => {
    const late = await readTopic(setting.kafka, topics.lateTopic, (r) => r.length >= 2)
    expect((await settled(setting.kafka, topics.lateTopic, 2)).length).toBe(2)
    expect(late.map((r) => JSON.parse(r.value!))).toEqual([
      { deviceId: 'd1', sensor: 'temperature', value: 99, unit: 'C', ts: 30 * S },
      { deviceId: 'd1', sensor: 'temperature', value: 77, unit: 'C', ts: 500 * S },
    ])
    expect(late.map((r) => r.key)).toEqual(['d1', 'd1'])
    expect(late.map((r) => [r.headers[HeaderNames.lateOperator], r.headers[HeaderNames.lateEventTime], r.headers[HeaderNames.lateStreamTime]])).toEqual([
      ['stats-1m', String(30 * S), String(130 * S)],
      ['stats-1m,avg-5m', String(500 * S), `${1000 * S},${1000 * S}`],
    ])
    await waitFor('the late counter', () => pipeline.metrics().late === 2)
  })
})

describe('bad input', () => {
  /** The iot pipeline as application `iot-<name>`, reading `<name>-readings` into `<name>-stats`, `-avg`, `-alerts` and `-late`. */
  function iotNamed(name: string): Promise<RunningPipeline> {
    const topics = { inputTopic: `${name}-readings`, statsTopic: `${name}-stats`, averagesTopic: `${name}-avg`, alertsTopic: `${name}-alerts`, lateTopic: `${name}-late` }
    return runPipeline(iotPipeline(topics), { applicationId: `iot-${name}`, bootstrapServers: setting.broker.address, stateDir: stateDir(), commitIntervalMs: 200 })
  }

  test('unreadable readings go to the dead-letter topic with the reason, counted, and processing goes on', async () => {
    const input = 'bad-readings'
    const pipeline = await iotNamed('bad')
    try {
      // exactly_once is the default on a cluster with transactions, as Brook is.
      expect(pipeline.processingGuarantee).toBe('exactly_once')
      await setting.producer.send({
        topic: input,
        messages: [
          { key: 'd1', value: 'not json {' },
          { key: 'd1', value: JSON.stringify({ deviceId: 'd1', sensor: 'temperature', ts: 1000 }) },
          { key: 'd1', value: JSON.stringify({ deviceId: 'd1', sensor: 'temperature', value: 'hot', ts: 2000 }) },
          { key: 'd1', value: JSON.stringify({ deviceId: 'd1', sensor: 'temperature', value: 20 }) },
          { key: 'd1', value: JSON.stringify({ deviceId: 'd1', sensor: 5, value: 20, ts: 2500 }) },
          // JSON.parse makes Infinity of it (which JSON.stringify would show as null).
          { key: 'd1', value: '{"deviceId":"d1","sensor":"temperature","value":1e400,"ts":2600}' },
          { key: 'd1', value: '{"deviceId":"d1","sensor":"temperature","value":20,"ts":1e400}' },
          reading('d1', 'temperature', 3, 21),
          reading('d1', 'temperature', 200, 22),
        ],
      })
      const dead = await readTopic(setting.kafka, 'iot-bad-dlq', (r) => r.length >= 7)
      expect(dead.map((r) => [r.value, r.headers[HeaderNames.errorCode], r.headers[HeaderNames.errorReason]])).toEqual([
        ['not json {', 'NOT_JSON', expect.stringMatching(/^value is not JSON/)],
        [expect.any(String), 'MISSING_FIELD', 'reading has no value'],
        [expect.any(String), 'NOT_NUMERIC', 'reading value is not a number: "hot"'],
        [expect.any(String), 'MISSING_FIELD', "value has no field 'ts'"],
        [expect.any(String), 'MISSING_FIELD', 'reading sensor is not a string: 5'],
        [expect.any(String), 'NOT_NUMERIC', 'reading value is not a finite number: Infinity'],
        [expect.any(String), 'BAD_TIMESTAMP', 'event time Infinity is not a timestamp in ms since the epoch'],
      ])
      expect(dead.map((r) => [r.headers[HeaderNames.errorTopic], r.headers[HeaderNames.errorPartition], r.headers[HeaderNames.errorOffset]])).toEqual([0, 1, 2, 3, 4, 5, 6].map((o) => [input, '0', String(o)]))
      const stats = values(await readTopic(setting.kafka, 'bad-stats', (r) => r.length >= 1))
      expect(stats[0]).toMatchObject({ deviceId: 'd1', windowStart: 0, count: 1, avg: 21 })
      await waitFor('the dead-letter counter', () => pipeline.metrics().deadLetters === 7)
    } finally {
      await pipeline.stop()
    }
  })

  test('a value too large for a dead letter is cut to DEAD_LETTER_VALUE_MAX_BYTES, with its size in a header, and processing goes on', async () => {
    // The input topic takes a 1,048,400-byte value (its batch within max.message.bytes, 1,048,588); with the error headers, written
    // whole to the dead-letter topic, it would be refused (MESSAGE_TOO_LARGE) at every retry and stop the pipeline.
    const input = 'huge-readings'
    const pipeline = await iotNamed('huge')
    try {
      await setting.producer.send({ topic: input, messages: [{ key: 'd1', value: 'x'.repeat(1_048_400) }] })
      await setting.producer.send({ topic: input, messages: [reading('d1', 'temperature', 3, 21), reading('d1', 'temperature', 200, 22)] })
      const [dead] = await readTopic(setting.kafka, 'iot-huge-dlq', (r) => r.length >= 1)
      expect(dead!.value).toBe('x'.repeat(DEAD_LETTER_VALUE_MAX_BYTES))
      expect(dead!.headers).toMatchObject({ [HeaderNames.errorCode]: 'NOT_JSON', [HeaderNames.errorOffset]: '0', [HeaderNames.errorValueBytes]: '1048400' })
      const stats = values(await readTopic(setting.kafka, 'huge-stats', (r) => r.length >= 1))
      expect(stats[0]).toMatchObject({ deviceId: 'd1', windowStart: 0, count: 1, avg: 21 })
    } finally {
      await pipeline.stop()
    }
  })

  test('a dead letter keeps a 600 KB key whole and cuts its value shorter, so that the two fit the dead-letter topic, and processing goes on', async () => {
    // 600,000 bytes of key and 448,400 of value: the input's batch fits its max.message.bytes (1,048,588); the key
    // beside the value's first 512 KiB, or the whole value with the error headers, would not fit the dead letter's.
    const input = 'bigkey-readings'
    const pipeline = await iotNamed('bigkey')
    try {
      const key = 'k'.repeat(600_000)
      // Partition 0 named: kafkajs's own partitioner would spend minutes hashing the key (runtime/key-partition.ts).
      await setting.producer.send({ topic: input, messages: [{ key, value: 'x'.repeat(448_400), partition: 0 }] })
      await setting.producer.send({ topic: input, messages: [reading('d1', 'temperature', 3, 21), reading('d1', 'temperature', 200, 22)] })
      const [dead] = await readTopic(setting.kafka, 'iot-bigkey-dlq', (r) => r.length >= 1)
      expect(dead!.key === key).toBe(true)
      expect(dead!.value === 'x'.repeat(960 * 1024 - 600_000)).toBe(true)
      expect(dead!.headers).toMatchObject({ [HeaderNames.errorCode]: 'NOT_JSON', [HeaderNames.errorOffset]: '0', [HeaderNames.errorValueBytes]: '448400' })
      const stats = values(await readTopic(setting.kafka, 'bigkey-stats', (r) => r.length >= 1))
      expect(stats[0]).toMatchObject({ deviceId: 'd1', windowStart: 0, count: 1, avg: 21 })
    } finally {
      await pipeline.stop()
    }
  })

  test('a late reading too large for the late-records topic is cut to DEAD_LETTER_VALUE_MAX_BYTES, with its size in a header, and processing goes on', async () => {
    // A valid reading of 1,048,480 bytes (its batch within the input topic's max.message.bytes, 1,048,588), late for
    // every window: written whole to the late-records topic with the late headers added, it would be refused
    // (MESSAGE_TOO_LARGE) at every retry and stop the pipeline.
    const input = 'huge-late-readings'
    const pipeline = await iotNamed('huge-late')
    try {
      const fields = { deviceId: 'd1', sensor: 'temperature', value: 23, unit: 'C', ts: 3 * S }
      const padding = 'x'.repeat(1_048_480 - JSON.stringify({ ...fields, padding: '' }).length)
      const huge = JSON.stringify({ ...fields, padding })
      await setting.producer.send({ topic: input, messages: [reading('d1', 'temperature', 1000, 20)] })
      await setting.producer.send({ topic: input, messages: [{ key: 'd1', value: huge }] })
      await setting.producer.send({ topic: input, messages: [reading('d1', 'temperature', 1001, 21), reading('d1', 'temperature', 2000, 22)] })
      const [late] = await readTopic(setting.kafka, 'huge-late-late', (r) => r.length >= 1)
      expect(late!.value!.length).toBe(DEAD_LETTER_VALUE_MAX_BYTES)
      expect(late!.value === huge.slice(0, DEAD_LETTER_VALUE_MAX_BYTES)).toBe(true)
      expect(late!.headers).toMatchObject({ [HeaderNames.lateOperator]: 'stats-1m,avg-5m', [HeaderNames.lateEventTime]: String(3 * S), [HeaderNames.lateValueBytes]: '1048480' })
      const stats = values(await readTopic(setting.kafka, 'huge-late-stats', (r) => r.length >= 1))
      expect(stats[0]).toMatchObject({ deviceId: 'd1', windowStart: 960 * S, count: 2, avg: 20.5 })
      await waitFor('the late counter', () => pipeline.metrics().late === 1)
    } finally {
      await pipeline.stop()
    }
  })

  test('a tombstone an aggregation reads a field of is a dead letter saying it is null, and the key\'s total goes on', async () => {
    const b = new TopologyBuilder()
    b.stream('tombstones-in').groupByKey().aggregate({ total: sum('value') }, { name: 'tombstone-total' }).to('tombstone-totals')
    const pipeline = await runPipeline(b.build(), { applicationId: 'tombstones', bootstrapServers: setting.broker.address, stateDir: stateDir(), commitIntervalMs: 200 })
    try {
      await setting.producer.send({ topic: 'tombstones-in', messages: [{ key: 'k', value: '{"value":1}' }, { key: 'k', value: null }, { key: 'k', value: '{"value":2}' }] })
      const totals = values(await readTopic(setting.kafka, 'tombstone-totals', (r) => values(r).some((v) => (v as { total: number }).total === 3)))
      expect(totals.at(-1)).toMatchObject({ key: 'k', total: 3 })
      const dead = await readTopic(setting.kafka, 'tombstones-dlq', (r) => r.length >= 1)
      expect(dead.map((r) => [r.value, r.headers[HeaderNames.errorCode], r.headers[HeaderNames.errorOffset], r.headers[HeaderNames.errorReason]])).toEqual([
        [null, 'MISSING_FIELD', '1', "value is null (a tombstone), so it has no field 'value'"],
      ])
    } finally {
      await pipeline.stop()
    }
  })

  test("a flatMap of an untyped pipeline that returns a string is a dead letter saying so, not one record per character", async () => {
    const b = new TopologyBuilder()
    // An untyped stream, as a JavaScript pipeline has: the type check that refuses a string returned does not apply.
    b.stream('flat-names-in')
      .flatMap((v) => v.names, { name: 'names' })
      .to('flat-names')
    const pipeline = await runPipeline(b.build(), { applicationId: 'flat-names', bootstrapServers: setting.broker.address, stateDir: stateDir(), commitIntervalMs: 200 })
    try {
      await setting.producer.send({
        topic: 'flat-names-in',
        messages: [{ key: 'k', value: '{"names":["ab","cd"]}' }, { key: 'k', value: '{"names":"ef"}' }, { key: 'k', value: '{"names":["gh"]}' }],
      })
      expect(values<string>(await readTopic(setting.kafka, 'flat-names', (r) => values<string>(r).includes('gh')))).toEqual(['ab', 'cd', 'gh'])
      const dead = await readTopic(setting.kafka, 'flat-names-dlq', (r) => r.length >= 1)
      expect(dead.map((r) => [r.value, r.headers[HeaderNames.errorCode], r.headers[HeaderNames.errorOffset], r.headers[HeaderNames.errorReason]])).toEqual([
        ['{"names":"ef"}', 'USER_FUNCTION_FAILED', '1', 'flatMap names returned string ef, not an array or another iterable: a string would give one record per character (return [text] for one record)'],
      ])
      await waitFor('the dead-letter counter', () => pipeline.metrics().deadLetters === 1)
    } finally {
      await pipeline.stop()
    }
  })

  test('a record one branch dead-letters still reaches the branches declared after it', async () => {
    // Branches of one source: a sum that needs `value`, a count that reads nothing, and a plain copy.
    const b = new TopologyBuilder()
    const source = b.stream('branch-in')
    source.groupByKey().aggregate({ total: sum('value') }, { name: 'branch-total' }).to('branch-totals')
    source.groupByKey().aggregate({ n: count() }, { name: 'branch-count' }).to('branch-counts')
    source.to('branch-copy')
    // A flatMap that returns null, not an iterable, for the same record: a dead letter of its own, saying so.
    source.flatMap((v: { value?: number }) => (v.value === undefined ? (null as unknown as number[]) : [v.value]), { name: 'branch-values' }).to('branch-values')
    // A keyBy that returns null (as a field missing from JSON reads): said to be null, not an object.
    source.keyBy((v: { value?: number }) => (v.value === undefined ? (null as unknown as string) : String(v.value)), { name: 'branch-key' }).to('branch-keyed')
    const pipeline = await runPipeline(b.build(), { applicationId: 'branches', bootstrapServers: setting.broker.address, stateDir: stateDir(), commitIntervalMs: 200 })
    try {
      await setting.producer.send({
        topic: 'branch-in',
        messages: [{ key: 'k', value: '{"value":1}' }, { key: 'k', value: '{"other":2}' }, { key: 'k', value: '{"value":3}' }],
      })
      const copies = await readTopic(setting.kafka, 'branch-copy', (r) => r.length >= 3)
      expect(copies.map((r) => r.value)).toEqual(['{"value":1}', '{"other":2}', '{"value":3}'])
      const counts = values(await readTopic(setting.kafka, 'branch-counts', (r) => values(r).some((v) => (v as { n: number }).n === 3)))
      expect(counts.at(-1)).toMatchObject({ key: 'k', n: 3 })
      const totals = values(await readTopic(setting.kafka, 'branch-totals', (r) => values(r).some((v) => (v as { total: number }).total === 4)))
      expect(totals.at(-1)).toMatchObject({ key: 'k', total: 4 })
      const dead = await readTopic(setting.kafka, 'branches-dlq', (r) => r.length >= 3)
      expect(dead.map((r) => [r.value, r.headers[HeaderNames.errorCode], r.headers[HeaderNames.errorOffset], r.headers[HeaderNames.errorReason]])).toEqual([
        ['{"other":2}', 'MISSING_FIELD', '1', "value has no field 'value'"],
        ['{"other":2}', 'USER_FUNCTION_FAILED', '1', 'flatMap branch-values returned null, not an array or another iterable'],
        ['{"other":2}', 'USER_FUNCTION_FAILED', '1', 'keyBy branch-key returned null, not a string'],
      ])
      expect(values(await readTopic(setting.kafka, 'branch-values', (r) => r.length >= 2))).toEqual([1, 3])
      expect((await readTopic(setting.kafka, 'branch-keyed', (r) => r.length >= 2)).map((r) => r.key).sort()).toEqual(['1', '3'])
      await waitFor('the dead-letter counter', () => pipeline.metrics().deadLetters === 3)
      // Only the three branches' dead letters: nothing else arrives.
      expect(await settled(setting.kafka, 'branches-dlq', 3)).toHaveLength(3)
    } finally {
      await pipeline.stop()
    }
  })
})
