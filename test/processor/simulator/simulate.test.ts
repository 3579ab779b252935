/**
 * The simulated fleet against a real broker process, read back with a kafkajs consumer: what a pipeline consuming
 * the readings topic gets, for a seed. Its producer is idempotent, as Kafka's producers are by default: a produce
 * answer lost on the way back (a proxy swallows it and closes the connection) is retried without writing any
 * reading twice.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ConfigResourceTypes, Kafka, logLevel, type Admin } from 'kafkajs'
import {
  DELIVERY_HEADER,
  FAULT_HEADER,
  Fleet,
  SENSOR_MODELS,
  deviceIds,
  resolveFleetOptions,
  simulateFleet,
  type FleetOptions,
  type Log,
  type Progress,
} from '../../../processor/simulator/index.js'
import { LONG_MAX } from '../../../processor/simulator/topic.js'
import { FAST_GROUPS, startConfiguredBroker } from '../../helpers/broker-config.js'
import type { BrokerProcess } from '../../helpers/broker.js'
import { loggedErrors } from '../../helpers/broker-log.js'
import { readTopic, type Consumed } from './read-back.js'
import { brokerBehindProxy } from '../../helpers/tcp-proxy.js'
import { produce } from '../../../protocol/messages/produce.js'

/** A fixed event-time origin, so that runs can be compared reading for reading. */
const START_MS = Date.UTC(2026, 0, 5, 8, 0, 0)

function capture(): Log & { lines: string[] } {
  const lines: string[] = []
  return { lines, info: (m) => void lines.push(`info: ${m}`), warn: (m) => void lines.push(`warn: ${m}`) }
}

describe('simulateFleet against a broker', () => {
  let broker: BrokerProcess
  let kafka: Kafka
  let admin: Admin
  let bootstrapServers: string[]

  beforeAll(async () => {
    // Kafka's retention default, which decides what simulateFleet sets on the topics it creates.
    broker = await startConfiguredBroker(FAST_GROUPS, { logRetentionMs: 'kafka-default' })
    bootstrapServers = [broker.address]
    kafka = new Kafka({ brokers: bootstrapServers, logLevel: logLevel.NOTHING })
    admin = kafka.admin()
    await admin.connect()
  })
  afterAll(async () => {
    await admin?.disconnect()
    await broker?.stop()
    broker?.cleanup()
    expect(loggedErrors(broker)).toEqual([])
  })

  function run(options: Partial<FleetOptions>) {
    return simulateFleet({ bootstrapServers, log: capture(), ...options })
  }

  /** Records as comparable values: one partition's records in offset order. */
  const records = (consumed: Consumed[]) => consumed.map(({ partition, key, reading, timestamp, headers }) => ({ partition, key, reading, timestamp, headers }))

  it('gives the same readings for the same seed, reading for reading, and exactly the Fleet stream', async () => {
    const options = { seed: 7, devices: 25, rate: 50, count: 3000, startMs: START_MS, partitions: 3, speedup: 'as-fast-as-possible' as const, lateFraction: 0.02, faultRate: 0.01 }
    const first = await run({ ...options, topic: 'fleet-seed-a' })
    const second = await run({ ...options, topic: 'fleet-seed-b' })
    expect(first.sent).toBe(3000)
    expect(second.sent).toBe(3000)
    const a = await readTopic(kafka, admin, 'fleet-seed-a')
    const b = await readTopic(kafka, admin, 'fleet-seed-b')
    expect(a).toHaveLength(3000)
    expect(records(b)).toEqual(records(a))

    // What was consumed is the first 3000 readings of the pure stream, each on its key's partition in stream order.
    const fleet = new Fleet({ ...resolveFleetOptions({ bootstrapServers, ...options }), startMs: START_MS })
    const expected = Array.from({ length: 3000 }, () => fleet.nextOf(3000)!)
    for (const partition of [0, 1, 2]) {
      const onPartition = a.filter((r) => r.partition === partition)
      const keys = new Set(onPartition.map((r) => r.key))
      expect(onPartition.map((r) => r.reading)).toEqual(expected.filter((e) => keys.has(e.reading.deviceId)).map((e) => e.reading))
    }
    // A device's readings all land on one partition.
    const partitionOf = new Map<string, number>()
    for (const r of a) expect(partitionOf.get(r.key) ?? partitionOf.set(r.key, r.partition).get(r.key)).toBe(r.partition)
  })

  it('sends the configured devices and sensors, keyed by deviceId, stamped with ts, with the configured share of late, out-of-order and faulted readings', async () => {
    const latenessMs = 30_000
    const summary = await run({
      topic: 'fleet-shape',
      partitions: 1,
      seed: 11,
      devices: 40,
      sensors: ['temperature', 'vibration'],
      // 20,000 readings at 20 per second of event time: 1,000 s, over thirty times the lateness.
      rate: 20,
      count: 20_000,
      startMs: START_MS,
      speedup: 'as-fast-as-possible',
      latenessMs,
      lateFraction: 0.02,
      outOfOrderFraction: 0.05,
      faultRate: 0.01,
      gapFraction: 0.05,
    })
    const consumed = await readTopic(kafka, admin, 'fleet-shape')
    expect(consumed).toHaveLength(20_000)
    expect(summary.sent).toBe(20_000)
    expect(summary.slots).toBe(summary.sent + summary.gapped + summary.held)

    expect(new Set(consumed.map((r) => r.key))).toEqual(new Set(deviceIds(40)))
    expect(new Set(consumed.map((r) => r.reading.sensor))).toEqual(new Set(['temperature', 'vibration']))
    let streamTime = -Infinity
    const seen = { late: 0, 'out-of-order': 0, faulted: 0 }
    for (const { key, reading, timestamp, headers } of consumed) {
      expect(key).toBe(reading.deviceId)
      expect(timestamp).toBe(reading.ts)
      expect(Object.keys(reading)).toEqual(['deviceId', 'sensor', 'value', 'unit', 'ts'])
      const model = SENSOR_MODELS[reading.sensor as 'temperature' | 'vibration']
      expect(reading.unit).toBe(model.unit)
      expect(typeof reading.value).toBe('number')
      if (headers[FAULT_HEADER] === undefined) {
        expect(reading.value).toBeGreaterThanOrEqual(model.min)
        expect(reading.value).toBeLessThanOrEqual(model.max)
      } else {
        seen.faulted++
        expect(['spike', 'stuck', 'dropout']).toContain(headers[FAULT_HEADER])
        if (headers[FAULT_HEADER] === 'dropout') expect(reading.value).toBe(model.dropoutValue)
      }
      // On one partition, the delivery label is exactly what a consumer observes against its stream time.
      const observed = reading.ts >= streamTime ? undefined : streamTime - reading.ts > latenessMs ? 'late' : 'out-of-order'
      expect(headers[DELIVERY_HEADER]).toBe(observed)
      if (observed !== undefined) seen[observed]++
      streamTime = Math.max(streamTime, reading.ts)
    }
    expect(seen.late).toBe(summary.delivery.late)
    expect(seen['out-of-order']).toBe(summary.delivery['out-of-order'])
    expect(seen.faulted).toBe(summary.faults.spike + summary.faults.stuck + summary.faults.dropout)
    expect(seen.late / 20_000).toBeGreaterThan(0.02 * 0.7)
    expect(seen.late / 20_000).toBeLessThan(0.02 * 1.3)
    expect(seen['out-of-order'] / 20_000).toBeGreaterThan(0.05 * 0.7)
    expect(seen['out-of-order'] / 20_000).toBeLessThan(0.05 * 1.3)
    expect(seen.faulted / 20_000).toBeGreaterThan(0.01 * 0.5)
    expect(seen.faulted / 20_000).toBeLessThan(0.01 * 1.5)
    // Gaps are rare and long (30 s to 5 min), too few in this run for a share; fleet.test.ts checks it on a long one.
    expect(summary.gapped).toBeGreaterThan(0)
  })

  it('holds the requested rate: a 3 s run at 1000 readings/s sends about 3000', async () => {
    const summary = await run({ topic: 'fleet-rate', rate: 1000, durationMs: 3000, gapFraction: 0, lateFraction: 0, outOfOrderFraction: 0 })
    expect(summary.aborted).toBe(false)
    expect(summary.sent).toBeGreaterThan(3000 * 0.7)
    expect(summary.sent).toBeLessThan(3000 * 1.3)
    const consumed = await readTopic(kafka, admin, 'fleet-rate')
    expect(consumed).toHaveLength(summary.sent)
  })

  it('stops on abort with a summary of what the cluster acknowledged', async () => {
    const controller = new AbortController()
    const progress: Progress[] = []
    const summary = await run({
      topic: 'fleet-abort',
      rate: 2000,
      batchSize: 100,
      signal: controller.signal,
      onProgress: (p) => {
        progress.push(p)
        if (p.sent >= 500) controller.abort()
      },
    })
    expect(summary.aborted).toBe(true)
    expect(summary.sent).toBeGreaterThanOrEqual(500)
    expect(progress.at(-1)!.sent).toBe(summary.sent)
    expect(progress.every((p) => p.total === null)).toBe(true)
    const consumed = await readTopic(kafka, admin, 'fleet-abort')
    expect(consumed).toHaveLength(summary.sent)
  })

  it('creates its topic with the cluster defaults and logs it', async () => {
    const log = capture()
    await simulateFleet({ bootstrapServers, log, topic: 'fleet-created', count: 10, speedup: 'as-fast-as-possible', partitions: 2 })
    expect(log.lines).toEqual(['info: created topic fleet-created'])
    const described = await admin.describeConfigs({ resources: [{ type: ConfigResourceTypes.TOPIC, name: 'fleet-created', configNames: ['retention.ms'] }], includeSynonyms: false })
    expect(described.resources[0]!.configEntries[0]!.configValue).toBe('604800000')
    expect((await admin.fetchTopicMetadata({ topics: ['fleet-created'] })).topics[0]!.partitions).toHaveLength(2)
  })

  it('sets the configs that keep its readings on a topic it creates whose cluster defaults would delete or refuse the oldest', async () => {
    // A cluster that refuses records stamped more than a day back, and deletes them after 7 days (the default).
    const strict = await startConfiguredBroker({ ...FAST_GROUPS, logMessageTimestampBeforeMaxMs: 86_400_000 }, { logRetentionMs: 'kafka-default' })
    const strictKafka = new Kafka({ brokers: [strict.address], logLevel: logLevel.NOTHING })
    const strictAdmin = strictKafka.admin()
    try {
      await strictAdmin.connect()
      const log = capture()
      const startMs = Date.now() - 30 * 86_400_000
      const summary = await simulateFleet({ bootstrapServers: [strict.address], log, topic: 'fleet-old', count: 10, startMs, speedup: 'as-fast-as-possible' })
      expect(summary.sent).toBe(10)
      expect(log.lines).toEqual([
        'info: created topic fleet-old',
        `info: set retention.ms=-1, message.timestamp.before.max.ms=${LONG_MAX} on topic fleet-old: the readings start at ${new Date(startMs).toISOString().replace(/\.\d{3}Z$/, 'Z')}, and the cluster's default retention.ms=604800000 would delete them minutes after they are written, and its message.timestamp.before.max.ms=86400000 would refuse them`,
      ])
      const described = await strictAdmin.describeConfigs({ resources: [{ type: ConfigResourceTypes.TOPIC, name: 'fleet-old', configNames: ['retention.ms', 'message.timestamp.before.max.ms'] }], includeSynonyms: false })
      expect(Object.fromEntries(described.resources[0]!.configEntries.map((e) => [e.configName, e.configValue]))).toEqual({ 'retention.ms': '-1', 'message.timestamp.before.max.ms': LONG_MAX })
      expect(await readTopic(strictKafka, strictAdmin, 'fleet-old')).toHaveLength(10)
    } finally {
      await strictAdmin.disconnect()
      await strict.stop()
      strict.cleanup()
    }
  })

  it('writes no reading twice when a produce answer is lost and kafkajs sends the batch again: the producer is idempotent', async () => {
    const setup = await brokerBehindProxy(FAST_GROUPS)
    const proxied = new Kafka({ brokers: [setup.address], logLevel: logLevel.NOTHING })
    const proxiedAdmin = proxied.admin()
    try {
      await proxiedAdmin.connect()
      // The second batch's answer is lost: the broker has written it, the producer never hears so and sends it again.
      let produces = 0
      setup.proxy.dropNextAnswer(produce.request.apiKey, () => ++produces === 2)
      const summary = await simulateFleet({ bootstrapServers: [setup.address], log: capture(), seed: 3, devices: 20, rate: 50, count: 2000, batchSize: 500, startMs: START_MS, partitions: 2, speedup: 'as-fast-as-possible', kafka: { retry: { retries: 5, initialRetryTime: 100 } } })
      expect(setup.proxy.dropped).toBe(1)
      expect(summary.sent).toBe(2000)
      const read = await readTopic(proxied, proxiedAdmin, 'readings')
      const identities = read.map((r) => `${r.reading.deviceId}/${r.reading.sensor}/${r.reading.ts}`)
      expect(new Set(identities).size).toBe(identities.length)
      expect(read).toHaveLength(2000)
    } finally {
      await proxiedAdmin.disconnect()
      await setup.close()
    }
  })
})
