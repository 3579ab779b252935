/**
 * The broker is killed with -9 mid-stream and restarted on its data directory while a pipeline runs and a live fleet
 * keeps producing readings stamped with the wall clock. The readings made during the outage wait in the producer
 * and arrive after the restart, with their event times in order within each partition: none of them is late (the
 * outage is no quiet partition whose stream time follows the wall clock), and every window has the values of an
 * uninterrupted computation.
 */
import kafkajs, { type Kafka } from 'kafkajs'
import { afterEach, describe, expect, test } from 'vitest'
import { iotPipeline, runPipeline, type ProcessingGuarantee, type RunningPipeline } from '../../processor/index.js'
import { FAST_GROUPS, startConfiguredBroker } from '../helpers/broker-config.js'
import type { BrokerProcess } from '../helpers/broker.js'
import { waitFor } from '../helpers/wait.js'
import { expectedStats, windowsOf, type FleetReading } from './fleet.js'
import { readTopic, stateDir, values } from './helpers.js'

const { Kafka: KafkaClient, logLevel } = kafkajs

const PARTITIONS = 2
const DEVICES = 6
const WINDOW_MS = 1000
const GRACE_MS = 200
const IDLE_TIMEOUT_MS = 3000

/**
 * A fleet that makes one reading per device every 50 ms, stamped with the wall clock, and sends them in the order
 * made through an idempotent producer. While it is held (a producer backing off while the broker is down) the
 * readings queue up; they go out when it is released.
 */
function liveFleet(kafka: Kafka, topic: string) {
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
  const queue: FleetReading[] = []
  const sent: FleetReading[] = []
  let making = true
  let held = false
  let n = 0
  const maker = setInterval(() => {
    const ts = Date.now()
    for (let d = 0; d < DEVICES; d++) queue.push({ deviceId: `device-${d}`, sensor: 'temperature', value: 20 + d + (n % 7), unit: 'C', ts, partition: d % PARTITIONS })
    n++
  }, 50)
  const sending = (async () => {
    await producer.connect()
    while (making || queue.length > 0) {
      if (held || queue.length === 0) {
        await new Promise((resolve) => setTimeout(resolve, 20))
        continue
      }
      const batch = queue.splice(0, queue.length)
      await producer.send({ topic, acks: -1, messages: batch.map(({ partition, ...r }) => ({ key: r.deviceId, value: JSON.stringify(r), partition })) })
      sent.push(...batch)
    }
    // One reading per partition well after the others closes every window of the fleet by stream time alone.
    const last = Math.max(...sent.map((r) => r.ts))
    const closers = Array.from({ length: PARTITIONS }, (_, p): FleetReading => ({ deviceId: `closer-${p}`, sensor: 'temperature', value: 0, unit: 'C', ts: last + 10 * WINDOW_MS, partition: p }))
    await producer.send({ topic, acks: -1, messages: closers.map(({ partition, ...r }) => ({ key: r.deviceId, value: JSON.stringify(r), partition })) })
    sent.push(...closers)
    await producer.disconnect()
  })()
  return {
    sent,
    hold: () => void (held = true),
    release: () => void (held = false),
    /** Stops making readings; resolves once everything made has been sent. */
    async finish(): Promise<void> {
      making = false
      clearInterval(maker)
      await sending
    },
  }
}

let broker: BrokerProcess | undefined
let pipeline: RunningPipeline | undefined
afterEach(async () => {
  await pipeline?.stop()
  await broker?.kill()
  broker?.cleanup()
  pipeline = broker = undefined
})

async function throughBrokerRestart(guarantee: ProcessingGuarantee) {
  // What the pipeline logged (the commits the outage broke, its recoveries), printed with the result.
  const log: string[] = []
  const app = `broker-restart-${guarantee}`
  const topics = { inputTopic: `${app}-readings`, statsTopic: `${app}-stats`, averagesTopic: `${app}-avg`, alertsTopic: `${app}-alerts`, lateTopic: `${app}-late` }
  broker = await startConfiguredBroker(FAST_GROUPS)
  // Clients (the pipeline's too) that wait out the outage, retrying often, instead of giving up or backing off long.
  const retry = { retries: 100, initialRetryTime: 100, maxRetryTime: 500 }
  const kafka = new KafkaClient({ brokers: [broker.address], clientId: app, logLevel: logLevel.NOTHING, retry })
  const admin = kafka.admin()
  await admin.connect()
  await admin.createTopics({ topics: [{ topic: topics.inputTopic, numPartitions: PARTITIONS }] })
  await admin.disconnect()
  const running = await runPipeline(iotPipeline({ ...topics, statsWindow: `${WINDOW_MS}ms`, grace: `${GRACE_MS}ms`, averageWindow: '2s', averageAdvance: '1s' }), {
    applicationId: app,
    bootstrapServers: broker.address,
    stateDir: stateDir(),
    processingGuarantee: guarantee,
    commitIntervalMs: 200,
    // Shorter than the outage: a partition the outage made look quiet would have its windows closed by it.
    idleTimeoutMs: IDLE_TIMEOUT_MS,
    sessionTimeoutMs: 10_000,
    kafka: { retry },
    log: (line) => log.push(line),
  })
  pipeline = running
  await waitFor('the tasks to run', () => running.metrics().tasks.filter((t) => t.state === 'running').length === PARTITIONS)
  const fleet = liveFleet(kafka, topics.inputTopic)
  await waitFor('readings to be processed', () => running.metrics().recordsIn >= 20 * DEVICES)
  fleet.hold()
  await broker.kill()
  // Longer than the idle timeout, and than the window and grace of the readings made meanwhile.
  await new Promise((resolve) => setTimeout(resolve, IDLE_TIMEOUT_MS + 2000))
  broker = await broker.restart()
  // The fleet comes back a while after the broker (its producer's backoff), well within the idle timeout.
  await new Promise((resolve) => setTimeout(resolve, IDLE_TIMEOUT_MS / 3))
  fleet.release()
  await new Promise((resolve) => setTimeout(resolve, 2000))
  await fleet.finish()
  const readings = fleet.sent.filter((r) => !r.deviceId.startsWith('closer-'))
  const expected = expectedStats(fleet.sent, WINDOW_MS, GRACE_MS)
  // Every reading processed means each task's position at its partition's end. Not recordsIn: it counts work redone
  // after a commit the outage broke, so it reaches the number sent while the last readings still wait.
  await admin.connect()
  const inputEnds = new Map((await admin.fetchTopicOffsets(topics.inputTopic)).map((o) => [`0_${o.partition}`, BigInt(o.high)]))
  await admin.disconnect()
  await waitFor('every reading to be processed', () => running.metrics().tasks.length === PARTITIONS && running.metrics().tasks.every((t) => t.state === 'running' && t.position !== null && BigInt(t.position) >= inputEnds.get(t.id)!))
  const { late, recordsIn } = running.metrics()
  // A clean stop commits every task: all the pipeline will ever write is then in the topics.
  await running.stop()
  pipeline = undefined
  const deadline = Date.now() + 15_000
  const output = await readTopic(kafka, topics.statsTopic, (records) => Date.now() > deadline || [...expected.keys()].every((key) => windowsOf(values(records)).windows.has(key)))
  await admin.connect()
  const lateEnds = await admin.fetchTopicOffsets(topics.lateTopic)
  await admin.disconnect()
  const lateWritten = lateEnds.reduce((sum, o) => sum + Number(o.high), 0)
  return { readings, sent: fleet.sent.length, recordsIn, expected, late, lateWritten, log, ...windowsOf(values(output)) }
}

describe('the broker killed with -9 and restarted mid-stream', () => {
  for (const guarantee of ['at_least_once', 'exactly_once'] as const) {
    test(`${guarantee}: nothing is late, every window has the uninterrupted values`, async () => {
      const result = await throughBrokerRestart(guarantee)
      console.log(`${guarantee}, the pipeline's log:\n${result.log.join('\n')}`)
      expect(result.late).toBe(0)
      expect(result.lateWritten).toBe(0)
      expect(result.conflicting).toEqual([])
      if (guarantee === 'exactly_once') expect(result.duplicates).toBe(0)
      const windows = new Map([...result.windows].filter(([key]) => result.expected.has(key)))
      expect(windows.size).toBe(result.expected.size)
      for (const [key, stats] of result.expected) {
        const got = windows.get(key)!
        expect({ key, count: got.count, min: got.min, max: got.max }).toEqual({ key, count: stats.count, min: stats.min, max: stats.max })
        expect(got.avg).toBeCloseTo(stats.avg, 9)
      }
      console.log(`${guarantee}: ${result.readings.length} readings through a broker restart (${result.recordsIn - result.sent} processed twice: work redone after the outage), ${result.expected.size} windows`)
    })
  }
})
